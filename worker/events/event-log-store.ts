// An event's log: the recent lines in its Durable Object's SQLite (the tail), older ones rolled
// into compressed segments in R2 (event-log-segments.ts), read as one sequence by seq.
import { LOG_STREAMS } from "../contract/agent-records";
import {
  deleteSegments,
  encodeSegment,
  SEGMENT_MAX_CHARS,
  SEGMENT_MAX_LINES,
  type SegmentReader,
  type SegmentRow,
  segmentKey,
  segmentPrefix,
  TAIL_MAX_CHARS,
  TAIL_MAX_LINES,
} from "./event-log-segments";

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

/** Which lines a reader wants: those containing a text (case-sensitive) and of some streams. */
export interface LogFilter {
  contains?: string;
  streams?: readonly EventLogRecord["stream"][];
}

/** One page of a log read: the lines, and the seq read through (the `after` of the next page). */
export interface LogPage {
  records: StoredLogRecord[];
  /** Every stored line up to this seq was read (sent, or left out by the filter). */
  lastSeq: number;
  /** True when lines after lastSeq were stored when the page was read. */
  more: boolean;
}

/** True when a line passes a filter. */
export function matchesFilter(record: StoredLogRecord, filter: LogFilter | undefined): boolean {
  if (!filter) return true;
  if (filter.streams && !filter.streams.includes(record.stream)) return false;
  return filter.contains === undefined || record.line.includes(filter.contains);
}

/** Who owns the log, as the event object knows it once its state is loaded. */
export interface LogOwner {
  namespace: string;
  requestId: string;
  /** Characters of captured output the event stores at most (lines counting length + 1). */
  limitChars: number;
}

/** The namespace-wide bound on stored log bytes (see NamespaceLogUsage in event-log-usage.ts). */
export interface LogUsageLedger {
  /** Adds bytes to the namespace's total; answers true when the total is now over the bound. */
  add(namespace: string, bytes: number): Promise<boolean>;
  /** Takes bytes off the namespace's total (an event's segments were deleted). */
  release(namespace: string, bytes: number): Promise<void>;
}

/** The line an event stores once its namespace's stored logs pass NAMESPACE_LOG_LIMIT_BYTES. */
export const NAMESPACE_FULL_MARKER =
  "[PLATFORM] The namespace's stored logs reached their bound (NAMESPACE_LOG_LIMIT_BYTES): later lines of this event are not stored";

/** What an event's log holds where: its R2 segments (lines, characters, compressed bytes) and its tail. */
export interface LogStats {
  segments: number;
  segmentLines: number;
  segmentChars: number;
  segmentBytes: number;
  tailLines: number;
  droppedLines: number;
}

type Row = { seq: number; source_seq: number | null; ts: number; stream: string; line: string };

function recordOf(row: Row): StoredLogRecord {
  return { seq: row.seq, ts: row.ts, stream: row.stream as StoredLogRecord["stream"], line: row.line };
}

/**
 * Characters of JSON bound to one insert at most: well under Durable Object SQLite's 2 MB bound on
 * a value, whatever the lines' characters (at most 3 UTF-8 bytes each).
 */
const INSERT_RUN_CHARS = 512 * 1024;

/**
 * Lines as JSON arrays of `[seq, ts, stream, line]` rows, each at most INSERT_RUN_CHARS (a longer
 * single line goes alone), with the lines each holds.
 */
function jsonChunks(records: readonly LogRecord[]): [string, readonly LogRecord[]][] {
  const chunks: [string, readonly LogRecord[]][] = [];
  let rows: string[] = [];
  let first = 0;
  let chars = 2;
  records.forEach((record, index) => {
    const row = JSON.stringify([record.seq, record.ts, record.stream, record.line]);
    if (rows.length > 0 && chars + row.length + 1 > INSERT_RUN_CHARS) {
      chunks.push([`[${rows.join(",")}]`, records.slice(first, index)]);
      rows = [];
      first = index;
      chars = 2;
    }
    rows.push(row);
    chars += row.length + 1;
  });
  if (rows.length > 0) chunks.push([`[${rows.join(",")}]`, records.slice(first)]);
  return chunks;
}

/**
 * An event's log. Captured lines are de-duplicated by the agent's seq (relays may resend after a
 * restart); platform lines are the event's own. The tail is rolled into R2 segments once it holds
 * more than TAIL_MAX_LINES or TAIL_MAX_CHARS: a segment's object is written before its lines leave
 * SQLite (in one synchronous step with the segment's row), so a crash in between leaves the lines
 * in the tail and the roll is done again, to the same key.
 */
export class EventLogStore {
  private storedChars: number;
  private dropped: number;
  private tailChars: number;
  private tailLines: number;
  /** The last seq held by a segment (0: none); the tail starts after it. */
  private rolledThrough: number;
  /** The highest agent seq among rolled lines: a resent line at or below it was stored already. */
  private rolledSourceSeq: number;
  /** 1 once the namespace's stored logs passed their bound: later captured lines are dropped. */
  private namespaceFull: number;
  private rolling: Promise<StoredLogRecord[]> | undefined;
  /** The counters' values as stored in log_meta: saveCounters writes only those that changed since. */
  private readonly savedCounters = new Map<string, number>();

  constructor(
    private readonly sql: SqlStorage,
    private readonly segments: SegmentReader,
    private readonly bucket: R2Bucket,
    private readonly owner: () => LogOwner | undefined,
    private readonly usage: LogUsageLedger,
  ) {
    sql.exec(`CREATE TABLE IF NOT EXISTS logs (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, source_seq INTEGER UNIQUE, ts INTEGER NOT NULL,
      stream TEXT NOT NULL, line TEXT NOT NULL)`);
    sql.exec("CREATE TABLE IF NOT EXISTS log_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)");
    sql.exec(`CREATE TABLE IF NOT EXISTS log_segments (
      first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL, key TEXT NOT NULL,
      lines INTEGER NOT NULL, chars INTEGER NOT NULL, stored_bytes INTEGER NOT NULL)`);
    this.storedChars = this.meta("stored_chars");
    this.dropped = this.meta("dropped");
    this.tailChars = this.meta("tail_chars");
    this.tailLines = this.meta("tail_lines");
    this.rolledThrough = this.meta("rolled_through");
    this.rolledSourceSeq = this.meta("rolled_source_seq");
    this.namespaceFull = this.meta("namespace_full");
    for (const [key, value] of this.counters()) this.savedCounters.set(key, value);
    // Logs stored before segments existed counted lines only in stored_lines: the tail is all of them.
    if (this.tailLines === 0 && this.rolledThrough === 0) this.recountTail();
  }

  /**
   * Stores captured lines not seen before; returns what was stored, in order. The lines go in runs,
   * each one INSERT of many rows (insertRun): a run ends at the line that reaches the event's limit
   * (if every line of it is new), so exactly the lines up to that one are stored, then the marker.
   */
  appendCaptured(records: readonly LogRecord[]): StoredLogRecord[] {
    const stored: StoredLogRecord[] = [];
    const limit = this.owner()?.limitChars ?? Number.POSITIVE_INFINITY;
    // Lines not rolled into a segment yet, each once (a batch may repeat a line).
    const seen = new Set<number>();
    const fresh = records.filter((record) => {
      if (record.seq <= this.rolledSourceSeq || seen.has(record.seq)) return false;
      seen.add(record.seq);
      return true;
    });
    let next = 0;
    while (next < fresh.length && !this.isFull(limit)) {
      let end = next;
      let chars = 0;
      while (end < fresh.length && this.storedChars + chars < limit) {
        chars += (fresh[end]?.line.length ?? 0) + 1;
        end += 1;
      }
      for (const record of this.insertRun(fresh.slice(next, end))) {
        this.count(record.line);
        this.storedChars += record.line.length + 1;
        stored.push(record);
      }
      next = end;
      if (this.isFull(limit)) {
        stored.push(this.appendPlatform(`[PLATFORM] Log reached ${limit} characters: later lines are not stored`));
      }
    }
    if (next < fresh.length) this.dropped += this.unseen(fresh.slice(next));
    this.saveCounters();
    return stored;
  }

  /**
   * Inserts lines (each seq once) in as few statements as their size allows (INSERT_RUN_CHARS of
   * JSON each, one row a line read from it with json_each), skipping those stored before (by agent
   * seq); answers the stored ones with their new seq, in order.
   */
  private insertRun(run: readonly LogRecord[]): StoredLogRecord[] {
    const stored: StoredLogRecord[] = [];
    for (const [json, part] of jsonChunks(run)) {
      const seqs = new Map<number, number>();
      for (const row of this.sql.exec<{ seq: number; source_seq: number }>(
        // Lines stored before are left out by the WHERE, not by the conflict: an ignored row would
        // still use up a seq, and the tail's seqs are contiguous.
        `INSERT OR IGNORE INTO logs (source_seq, ts, stream, line)
         SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
                json_extract(value, '$[3]')
         FROM json_each(?)
         WHERE NOT EXISTS (SELECT 1 FROM logs WHERE source_seq = json_extract(value, '$[0]'))
         ORDER BY key RETURNING seq, source_seq`,
        json,
      )) {
        seqs.set(row.source_seq, row.seq);
      }
      // The rows went in in the order of the lines (ORDER BY key), so their seqs rise with it.
      for (const record of part) {
        const seq = seqs.get(record.seq);
        if (seq !== undefined) stored.push({ seq, ts: record.ts, stream: record.stream, line: record.line });
      }
    }
    return stored;
  }

  /**
   * How many of the lines are not stored. A dropped line is never stored, so one that a relay
   * resends is counted again.
   */
  private unseen(records: readonly LogRecord[]): number {
    const seqs = JSON.stringify(records.map((record) => record.seq));
    return this.sql
      .exec<{ n: number }>(
        "SELECT COUNT(*) AS n FROM json_each(?) WHERE NOT EXISTS (SELECT 1 FROM logs WHERE source_seq = json_each.value)",
        seqs,
      )
      .one().n;
  }

  /** True once the event's bound or the namespace's is reached: captured lines are then dropped. */
  private isFull(limit: number): boolean {
    return this.storedChars >= limit || this.namespaceFull === 1;
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
    this.count(line);
    this.saveCounters();
    return { seq: row.seq, ts, stream: "platform", line };
  }

  /** True when the tail holds more than it keeps: rollSegments() has work. */
  needsRoll(): boolean {
    return this.tailLines > TAIL_MAX_LINES || this.tailChars > TAIL_MAX_CHARS;
  }

  /**
   * Rolls the oldest tail lines into segments until the tail is within its bounds. One roll at a
   * time: a second call while one runs waits for it. Answers the platform lines it stored (the
   * marker when the namespace's bound was passed), for the live followers.
   */
  rollSegments(): Promise<StoredLogRecord[]> {
    if (!this.needsRoll()) return Promise.resolve([]);
    this.rolling ??= this.rollWhileNeeded().finally(() => {
      this.rolling = undefined;
    });
    return this.rolling;
  }

  private async rollWhileNeeded(): Promise<StoredLogRecord[]> {
    const markers: StoredLogRecord[] = [];
    while (this.needsRoll()) {
      const owner = this.owner();
      if (!owner) return markers;
      const rows: Row[] = [];
      let chars = 0;
      let sourceSeq = this.rolledSourceSeq;
      const cursor = this.sql.exec<Row>(
        "SELECT seq, source_seq, ts, stream, line FROM logs ORDER BY seq LIMIT ?",
        SEGMENT_MAX_LINES,
      );
      for (const row of cursor) {
        if (rows.length > 0 && chars + row.line.length + 1 > SEGMENT_MAX_CHARS) break;
        rows.push(row);
        chars += row.line.length + 1;
        if (row.source_seq !== null) sourceSeq = Math.max(sourceSeq, row.source_seq);
      }
      const first = rows[0];
      const last = rows.at(-1);
      if (!first || !last) return markers;
      const body = await encodeSegment(rows.map(recordOf));
      const key = segmentKey(owner.namespace, owner.requestId, first.seq, last.seq);
      // Before the first object exists: the event's deletion then knows to look in R2.
      if (!this.meta("roll_started")) this.setMeta("roll_started", 1);
      await this.bucket.put(key, body, {
        httpMetadata: { contentType: "application/x-ndjson", contentEncoding: "gzip" },
      });
      // The segment is durable: its row and the removal of its lines from the tail are one step.
      this.sql.exec(
        "INSERT OR REPLACE INTO log_segments (first_seq, last_seq, key, lines, chars, stored_bytes) VALUES (?, ?, ?, ?, ?, ?)",
        first.seq,
        last.seq,
        key,
        rows.length,
        chars,
        body.byteLength,
      );
      this.sql.exec("DELETE FROM logs WHERE seq <= ?", last.seq);
      this.tailLines -= rows.length;
      this.tailChars -= chars;
      this.rolledThrough = last.seq;
      this.rolledSourceSeq = sourceSeq;
      this.saveCounters();
      // Every segment is counted (the bytes given back at deletion are exactly those counted).
      const full = await this.usage.add(owner.namespace, body.byteLength);
      this.setMeta("counted_bytes", this.meta("counted_bytes") + body.byteLength);
      if (full && !this.namespaceFull) {
        this.namespaceFull = 1;
        this.setMeta("namespace_full", 1);
        markers.push(this.appendPlatform(NAMESPACE_FULL_MARKER));
      }
    }
    return markers;
  }

  /**
   * Lines with seq > after, oldest first: at most `limit` lines and, past the first line, at most
   * `maxChars` characters (each counting its length + 1), among at most `maxScan` lines read when a
   * filter leaves lines out. Synchronous when `after` is in the tail, a promise when segments are
   * read first (a follower relies on this: its switch to live follows a synchronous tail read).
   */
  read(
    after: number,
    limit: number,
    maxChars = Number.POSITIVE_INFINITY,
    filter?: LogFilter,
    maxScan = Number.POSITIVE_INFINITY,
  ): LogPage | Promise<LogPage> {
    if (after >= this.rolledThrough) return this.readTail(after, limit, maxChars, filter, maxScan, []);
    return this.readSegmentsThenTail(after, limit, maxChars, filter, maxScan);
  }

  private async readSegmentsThenTail(
    after: number,
    limit: number,
    maxChars: number,
    filter: LogFilter | undefined,
    maxScan: number,
  ): Promise<LogPage> {
    const records: StoredLogRecord[] = [];
    let cursor = after;
    let chars = 0;
    let scanned = 0;
    while (cursor < this.rolledThrough) {
      const segment = this.segmentAfter(cursor);
      if (!segment) break;
      for (const record of await this.segments.records(segment)) {
        if (record.seq <= cursor) continue;
        if (matchesFilter(record, filter)) {
          const size = record.line.length + 1;
          if (records.length > 0 && chars + size > maxChars) return this.pageOf(records, cursor);
          records.push(record);
          chars += size;
        }
        cursor = record.seq;
        scanned += 1;
        if (records.length >= limit || scanned >= maxScan) return this.pageOf(records, cursor);
      }
      // A segment whose object ended before its last seq (never written so) is skipped past.
      cursor = Math.max(cursor, segment.lastSeq);
    }
    return this.readTail(cursor, limit, maxChars, filter, maxScan - scanned, records, chars);
  }

  /** Reads on from the tail (synchronously), appending to what the segments gave. */
  private readTail(
    after: number,
    limit: number,
    maxChars: number,
    filter: LogFilter | undefined,
    maxScan: number,
    records: StoredLogRecord[],
    chars = 0,
  ): LogPage {
    // The tail's seqs are contiguous: a scan bound is a seq bound.
    const upTo = Number.isFinite(maxScan) ? after + Math.max(0, maxScan) : Number.MAX_SAFE_INTEGER;
    const streams = filter?.streams ?? LOG_STREAMS;
    const contains = filter?.contains ?? "";
    const cursor = this.sql.exec<Row>(
      `SELECT seq, source_seq, ts, stream, line FROM logs
       WHERE seq > ? AND seq <= ? AND stream IN (${streams.map(() => "?").join(", ")}) AND instr(line, ?) > 0
       ORDER BY seq LIMIT ?`,
      after,
      upTo,
      ...streams,
      contains,
      Math.max(0, limit - records.length),
    );
    let read = after;
    let stopped = false;
    for (const row of cursor) {
      const size = row.line.length + 1;
      if (records.length > 0 && chars + size > maxChars) {
        stopped = true;
        break;
      }
      records.push(recordOf(row));
      chars += size;
      read = row.seq;
    }
    const lastStored = this.lastSeq();
    if (!stopped && records.length < limit) read = Math.min(Math.max(read, upTo), Math.max(lastStored, after));
    return this.pageOf(records, read, lastStored);
  }

  private pageOf(records: StoredLogRecord[], lastSeq: number, lastStored = this.lastSeq()): LogPage {
    return { records, lastSeq, more: lastSeq < lastStored };
  }

  /** The seq of the last stored line (0: none). */
  lastSeq(): number {
    const row = this.sql.exec<{ seq: number | null }>("SELECT MAX(seq) AS seq FROM logs").one();
    return row.seq ?? this.rolledThrough;
  }

  /** The segment holding the first line after `after`. */
  private segmentAfter(after: number): SegmentRow | undefined {
    const row = this.sql
      .exec<{ first_seq: number; last_seq: number; key: string; lines: number; chars: number; stored_bytes: number }>(
        "SELECT first_seq, last_seq, key, lines, chars, stored_bytes FROM log_segments WHERE last_seq > ? ORDER BY first_seq LIMIT 1",
        after,
      )
      .toArray()[0];
    if (!row) return undefined;
    return {
      firstSeq: row.first_seq,
      lastSeq: row.last_seq,
      key: row.key,
      lines: row.lines,
      chars: row.chars,
      storedBytes: row.stored_bytes,
    };
  }

  /** Segments and stored bytes of the log, and lines dropped over a bound. */
  stats(): LogStats {
    const row = this.sql
      .exec<{ n: number; lines: number | null; chars: number | null; bytes: number | null }>(
        "SELECT COUNT(*) AS n, SUM(lines) AS lines, SUM(chars) AS chars, SUM(stored_bytes) AS bytes FROM log_segments",
      )
      .one();
    return {
      segments: row.n,
      segmentLines: row.lines ?? 0,
      segmentChars: row.chars ?? 0,
      segmentBytes: row.bytes ?? 0,
      tailLines: this.tailLines,
      droppedLines: this.dropped,
    };
  }

  /**
   * Deletes the log's segments from R2 (every object under the event's prefix, recorded or not)
   * and gives their bytes back to the namespace's total. Its SQLite goes with the object's storage.
   */
  async deleteSegments(namespace: string, requestId: string): Promise<void> {
    // Given back once, even when a later step fails and the deletion is retried.
    const counted = this.meta("counted_bytes");
    if (counted > 0) {
      await this.usage.release(namespace, counted);
      this.setMeta("counted_bytes", 0);
    }
    // Listed only when a roll ever began (most events never roll: no R2 operation for them).
    if (this.meta("roll_started")) await deleteSegments(this.bucket, segmentPrefix(namespace, requestId));
    this.sql.exec("DELETE FROM log_segments");
  }

  /** Lines dropped over the limit so far. */
  droppedLines(): number {
    return this.dropped;
  }

  private count(line: string): void {
    this.tailLines += 1;
    this.tailChars += line.length + 1;
  }

  private recountTail(): void {
    const row = this.sql
      .exec<{ n: number; chars: number | null }>("SELECT COUNT(*) AS n, SUM(length(line) + 1) AS chars FROM logs")
      .one();
    this.tailLines = row.n;
    this.tailChars = row.chars ?? 0;
  }

  /** The counters kept in log_meta, by key, with their values in memory. */
  private counters(): [string, number][] {
    return [
      ["stored_chars", this.storedChars],
      ["dropped", this.dropped],
      ["tail_chars", this.tailChars],
      ["tail_lines", this.tailLines],
      ["rolled_through", this.rolledThrough],
      ["rolled_source_seq", this.rolledSourceSeq],
    ];
  }

  /**
   * Stores the counters that changed since they were last stored, in one statement (a platform
   * line changes two of the six, a captured batch three): one SQL write per append, not six.
   */
  private saveCounters(): void {
    const changed = this.counters().filter(([key, value]) => this.savedCounters.get(key) !== value);
    if (changed.length === 0) return;
    this.sql.exec(
      `INSERT INTO log_meta (key, value) VALUES ${changed.map(() => "(?, ?)").join(", ")}
       ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
      ...changed.flat(),
    );
    for (const [key, value] of changed) this.savedCounters.set(key, value);
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
