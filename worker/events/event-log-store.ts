/**
 * One log line of an event. Its `seq` orders it: as captured in the container, the agent's seq
 * (per execution, used to drop resent lines); once stored, the event's own seq, the one clients
 * page and resume with.
 */
export interface EventLogRecord {
  seq: number;
  /** When the line was written (epoch ms). */
  ts: number;
  stream: "stdout" | "stderr" | "platform";
  line: string;
}

/** A log line as captured in the container and relayed by the instance (seq is the agent's). */
export type LogRecord = EventLogRecord;
/** A stored log line (seq is the event's own). */
export type StoredLogRecord = EventLogRecord;

/**
 * Log text stored per event, in characters; every line counts its length + 1 (its line break), so
 * a flood of empty lines fills it too. Past it, lines are counted and dropped (one marker line).
 */
export const MAX_STORED_LOG_CHARS = 10 * 1024 * 1024;
/** Captured lines stored per event; past it, lines are counted and dropped (one marker line). */
export const MAX_STORED_LOG_LINES = 200_000;

/**
 * An event's log in its Durable Object's SQLite. Captured lines are de-duplicated by the agent's
 * seq (relays may resend after a restart); platform lines are the event's own.
 */
export class EventLogStore {
  private storedChars: number;
  private storedLines: number;
  private dropped: number;

  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS logs (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, source_seq INTEGER UNIQUE, ts INTEGER NOT NULL,
      stream TEXT NOT NULL, line TEXT NOT NULL)`);
    sql.exec("CREATE TABLE IF NOT EXISTS log_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)");
    this.storedChars = this.meta("stored_chars");
    this.storedLines = this.meta("stored_lines");
    this.dropped = this.meta("dropped");
  }

  /** Stores captured lines not seen before; returns what was stored, in order. */
  appendCaptured(records: readonly LogRecord[]): StoredLogRecord[] {
    const stored: StoredLogRecord[] = [];
    for (const record of records) {
      if (this.isFull()) {
        const seen = this.sql.exec("SELECT 1 FROM logs WHERE source_seq = ?", record.seq).toArray().length > 0;
        if (!seen) this.dropped += 1;
        continue;
      }
      const inserted = this.sql
        .exec<{ seq: number }>(
          "INSERT OR IGNORE INTO logs (source_seq, ts, stream, line) VALUES (?, ?, ?, ?) RETURNING seq",
          record.seq,
          record.ts,
          record.stream,
          record.line,
        )
        .toArray()[0];
      if (!inserted) continue;
      this.storedChars += record.line.length + 1;
      this.storedLines += 1;
      stored.push({ seq: inserted.seq, ts: record.ts, stream: record.stream, line: record.line });
      if (this.isFull()) {
        const bound =
          this.storedLines >= MAX_STORED_LOG_LINES
            ? `${MAX_STORED_LOG_LINES} lines`
            : `${MAX_STORED_LOG_CHARS} characters`;
        stored.push(this.appendPlatform(`[PLATFORM] Log reached ${bound}: later lines are not stored`));
      }
    }
    this.setMeta("stored_chars", this.storedChars);
    this.setMeta("stored_lines", this.storedLines);
    this.setMeta("dropped", this.dropped);
    return stored;
  }

  /** True once either bound is reached: captured lines are then dropped. */
  private isFull(): boolean {
    return this.storedChars >= MAX_STORED_LOG_CHARS || this.storedLines >= MAX_STORED_LOG_LINES;
  }

  /** Stores one line written by the platform itself. */
  appendPlatform(line: string, ts = Date.now()): StoredLogRecord {
    const row = this.sql
      .exec<{ seq: number }>(
        "INSERT INTO logs (source_seq, ts, stream, line) VALUES (NULL, ?, 'platform', ?) RETURNING seq",
        ts,
        line,
      )
      .one();
    return { seq: row.seq, ts, stream: "platform", line };
  }

  /**
   * Lines with seq > after, oldest first: at most `limit` lines and, past the first line, at most
   * `maxChars` characters (each line counting its length + 1). Rows are read from the cursor one by
   * one, so a page of long lines is never loaded whole.
   */
  read(after: number, limit: number, maxChars = Number.POSITIVE_INFINITY): StoredLogRecord[] {
    const cursor = this.sql.exec<{ seq: number; ts: number; stream: string; line: string }>(
      "SELECT seq, ts, stream, line FROM logs WHERE seq > ? ORDER BY seq LIMIT ?",
      after,
      limit,
    );
    const records: StoredLogRecord[] = [];
    let chars = 0;
    for (const row of cursor) {
      chars += row.line.length + 1;
      if (records.length > 0 && chars > maxChars) break;
      records.push({ seq: row.seq, ts: row.ts, stream: row.stream as StoredLogRecord["stream"], line: row.line });
    }
    return records;
  }

  /** Lines dropped over the limit so far. */
  droppedLines(): number {
    return this.dropped;
  }

  private meta(key: string): number {
    const row = this.sql.exec<{ value: number }>("SELECT value FROM log_meta WHERE key = ?", key).toArray()[0];
    return row?.value ?? 0;
  }

  private setMeta(key: string, value: number): void {
    this.sql.exec(
      "INSERT INTO log_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      key,
      value,
    );
  }
}
