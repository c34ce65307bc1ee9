// The event object's log side: its stored log, its live followers, the platform's START and END
// lines, and the log excerpt of function-log answers.
import { EventLogStore, type LogRecord, type StoredLogRecord } from "./event-log-store";
import { type EventState, isTerminal, type PublicEvent, publicEvent, publicStatus } from "./event-machine";
import { LogFollowers, type LogStreamEnd } from "./log-followers";
import { truncateUtf8 } from "./text-bounds";

/** Largest number of log records one append call may carry (the rest are ignored). */
const MAX_LOG_RECORDS_PER_APPEND = 1_000;
/** Most log lines one read returns (and a follower's backlog is sent in pages of this size). */
export const MAX_LOG_READ = 1_000;
/** Characters of log one page of `logs()` returns at most (besides its first line). */
export const MAX_LOG_PAGE_CHARS = 1024 * 1024;
/** Bytes of a result's JSON a function-log entry carries (the whole result: read the event). */
export const FUNCTION_LOG_RESULT_BYTES = 4 * 1024;

/** An event's public view with the start of its log as text. */
export type EventWithLog = PublicEvent & {
  log: string;
  /** The result's JSON cut to FUNCTION_LOG_RESULT_BYTES (null without a result); `result` is null here. */
  resultPreview: string | null;
};

/** What a follower receives when the event ends: its final status. */
export function streamEndOf(state: EventState): LogStreamEnd {
  return {
    requestId: state.requestId,
    status: publicStatus(state.phase),
    statusCode: state.statusCode ?? null,
    durationMs: state.durationMs ?? null,
    errorMessage: state.errorMessage ?? null,
  };
}

/**
 * A function-log entry: the public view with `log` (the start of the log as text), the result cut
 * to a preview and the stack left out, since one answer carries many events.
 */
export function eventWithLog(state: EventState, log: string): EventWithLog {
  const resultPreview = state.result !== undefined ? truncateUtf8(state.result, FUNCTION_LOG_RESULT_BYTES) : null;
  return { ...publicEvent(state), result: null, errorStack: null, log, resultPreview };
}

/** One event's log: stored in its object's SQLite and sent live to its followers. */
export class EventLog {
  private readonly store: EventLogStore;
  private readonly followers: LogFollowers;

  constructor(sql: SqlStorage) {
    this.store = new EventLogStore(sql);
    this.followers = new LogFollowers((after, limit) => this.store.read(after, limit), MAX_LOG_READ);
  }

  /** Stores captured lines (at most MAX_LOG_RECORDS_PER_APPEND, repeats ignored) and sends them live. */
  appendCaptured(records: readonly LogRecord[]): void {
    this.followers.publish(this.store.appendCaptured(records.slice(0, MAX_LOG_RECORDS_PER_APPEND)));
  }

  /** One page of stored lines with seq > after, oldest first (bounded by MAX_LOG_READ and MAX_LOG_PAGE_CHARS). */
  page(after: number, limit: number): StoredLogRecord[] {
    return this.store.read(after, Math.min(limit, MAX_LOG_READ), MAX_LOG_PAGE_CHARS);
  }

  /**
   * A new follower's Server-Sent Events stream from `after` (ending at once after its backlog when
   * the event has ended), or undefined when the event already has the most followers allowed.
   */
  follow(after: number, state: EventState): ReadableStream<Uint8Array> | undefined {
    return this.followers.open(after, isTerminal(state.phase) ? streamEndOf(state) : undefined);
  }

  /**
   * The first lines of the log as one text of at most `maxChars` characters, each line prefixed with
   * its time; a cut log ends with a marker line.
   */
  excerpt(maxChars: number): string {
    let log = "";
    for (const record of this.store.read(0, MAX_LOG_READ, maxChars + 1)) {
      const line = `${new Date(record.ts).toISOString()} ${record.line}\n`;
      if (log.length + line.length > maxChars) {
        log += "…[truncated: read the whole log by RequestId]\n";
        break;
      }
      log += line;
    }
    return log;
  }

  /**
   * Platform lines for a transition: the start (instance, cold or warm) and the end, sent live;
   * at the end, the followers get the final status and their streams close.
   */
  narrate(before: EventState, after: EventState): void {
    const lines: StoredLogRecord[] = [];
    if (after.phase === "running" && before.phase !== "running") {
      lines.push(
        this.store.appendPlatform(
          `[PLATFORM] START RequestId: ${after.requestId} Instance: ${after.instanceId} (${after.cold ? "cold" : "warm"} start)`,
          after.startedAt,
        ),
      );
    }
    if (isTerminal(after.phase) && !isTerminal(before.phase)) {
      const memory = after.memoryUsageKb !== undefined ? ` Memory: ${(after.memoryUsageKb / 1024).toFixed(1)} MB` : "";
      const error = after.errorMessage ? ` Error: ${after.errorMessage}` : "";
      lines.push(
        this.store.appendPlatform(
          `[PLATFORM] END RequestId: ${after.requestId} Status: ${publicStatus(after.phase)} StatusCode: ${after.statusCode} Duration: ${after.durationMs ?? 0} ms${memory}${error}`,
          after.endedAt,
        ),
      );
    }
    this.followers.publish(lines);
    if (isTerminal(after.phase)) this.followers.end(streamEndOf(after));
  }
}
