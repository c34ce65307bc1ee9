// The event object's log side: its stored log (recent lines in SQLite, older ones in R2
// segments), its live followers, the platform's START and END lines, the download, and the log
// excerpt of function-log answers.
import { effectiveLogLimitMb } from "../functions/instance-types";
import { INSTANCE_CLASSES } from "../shared/objects";
import { SegmentReader } from "./event-log-segments";
import {
  EventLogStore,
  type LogFilter,
  type LogOwner,
  type LogPage,
  type LogRecord,
  type LogStats,
  type LogUsageLedger,
  type StoredLogRecord,
} from "./event-log-store";
import { type EventState, isTerminal, type PublicEvent, publicEvent, publicStatus } from "./event-machine";
import { type PublicProgress, publicProgress } from "./event-progress";
import { newTimelineEntries, type PublicTimelineEntry, publicTimelineEntry } from "./event-timeline";
import { LogFollowers, type LogStreamEnd } from "./log-followers";
import { truncateUtf8 } from "./text-bounds";

/** Largest number of log records one append call may carry (the rest are ignored). */
export const MAX_LOG_RECORDS_PER_APPEND = 1_000;
/** Most log lines one read returns (and a follower's backlog is sent in pages of this size). */
export const MAX_LOG_READ = 1_000;
/** Characters of log one page of `logs()` returns at most (besides its first line). */
export const MAX_LOG_PAGE_CHARS = 1024 * 1024;
/**
 * Lines one filtered page reads at most: a filter that matches little answers a short (or empty)
 * page with `lastSeq` moved on, and the client asks again from there.
 */
export const MAX_LOG_SCAN_LINES = 100_000;
/**
 * Room for the platform's own lines (START, END, markers, verdicts) beside the function's log
 * limit, which the agent applies to captured output: the event stores both.
 */
export const PLATFORM_LOG_MARGIN_CHARS = 1024 * 1024;
/** Bytes of a result's JSON a function-log entry carries (the whole result: read the event). */
export const FUNCTION_LOG_RESULT_BYTES = 4 * 1024;

const encoder = new TextEncoder();

/** One line of the text download: its time, its stream and the line. */
export function downloadLine(record: StoredLogRecord): string {
  return `${new Date(record.ts).toISOString()} ${record.stream} ${record.line}\n`;
}

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

/** One event's log: stored in its object's SQLite and R2, and sent live to its followers. */
export class EventLog {
  /** The store, opened at the log's first use (see `store`). */
  private opened: EventLogStore | undefined;
  private readonly open: () => EventLogStore;
  private readonly followers: LogFollowers;

  constructor(sql: SqlStorage, bucket: R2Bucket, owner: () => LogOwner | undefined, usage: LogUsageLedger) {
    this.open = () => new EventLogStore(sql, new SegmentReader(bucket), bucket, owner, usage);
    this.followers = new LogFollowers(
      (after, limit, filter) => this.store.read(after, limit, MAX_LOG_PAGE_CHARS, filter),
      MAX_LOG_READ,
    );
  }

  /**
   * The store, opened (its tables created, its counters read) at the first use of the log, not when
   * the object starts: accepting an event, the hot path, creates no log table in its new object.
   */
  private get store(): EventLogStore {
    this.opened ??= this.open();
    return this.opened;
  }

  /**
   * Stores captured lines (at most MAX_LOG_RECORDS_PER_APPEND, repeats ignored), sends them live,
   * then rolls the oldest lines into R2 when the tail is full (the caller waits: a relay is slowed
   * to the speed of the store). A failed roll leaves the lines in SQLite and is tried again.
   */
  async appendCaptured(records: readonly LogRecord[]): Promise<void> {
    this.followers.publish(this.store.appendCaptured(records.slice(0, MAX_LOG_RECORDS_PER_APPEND)));
    if (!this.store.needsRoll()) return;
    try {
      this.followers.publish(await this.store.rollSegments());
    } catch (error) {
      console.warn("log segment roll failed; the lines stay in the event and the roll is retried", String(error));
    }
  }

  /**
   * One page of stored lines with seq > after that pass the filter, oldest first (bounded by
   * MAX_LOG_READ, MAX_LOG_PAGE_CHARS and MAX_LOG_SCAN_LINES).
   */
  async page(after: number, limit: number, filter?: LogFilter): Promise<LogPage> {
    return this.store.read(after, Math.min(limit, MAX_LOG_READ), MAX_LOG_PAGE_CHARS, filter, MAX_LOG_SCAN_LINES);
  }

  /**
   * A new follower's Server-Sent Events stream from `after` (ending at once after its backlog when
   * the event has ended), or undefined when the event already has the most followers allowed.
   */
  follow(after: number, state: EventState, filter?: LogFilter): ReadableStream<Uint8Array> | undefined {
    return this.followers.open(
      after,
      isTerminal(state.phase) ? streamEndOf(state) : undefined,
      filter,
      (state.timeline ?? []).map(publicTimelineEntry),
      publicProgress(state.progress),
    );
  }

  /**
   * The whole stored log as text (downloadLine per line), read page by page as the client reads:
   * what is stored when each page is read, so a running event's download ends at its latest line.
   */
  download(filter?: LogFilter): ReadableStream<Uint8Array> {
    let cursor = 0;
    return new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          for (;;) {
            const page = await this.store.read(cursor, MAX_LOG_READ, MAX_LOG_PAGE_CHARS, filter, MAX_LOG_SCAN_LINES);
            cursor = page.lastSeq;
            if (page.records.length > 0) controller.enqueue(encoder.encode(page.records.map(downloadLine).join("")));
            if (!page.more) {
              controller.close();
              return;
            }
            if (page.records.length > 0) return;
          }
        },
      },
      { highWaterMark: 0 },
    );
  }

  /** The seq of the last stored line (0: none). */
  lastSeq(): number {
    return this.store.lastSeq();
  }

  /** Segments and stored bytes of the log, and lines dropped over a bound. */
  stats(): LogStats {
    return this.store.stats();
  }

  /** Deletes the log's R2 segments (the event is being deleted). */
  deleteSegments(namespace: string, requestId: string): Promise<void> {
    return this.store.deleteSegments(namespace, requestId);
  }

  /**
   * The first lines of the log as one text of at most `maxChars` characters, each line prefixed with
   * its time; a cut log ends with a marker line.
   */
  async excerpt(maxChars: number): Promise<string> {
    let log = "";
    for (const record of (await this.store.read(0, MAX_LOG_READ, maxChars + 1)).records) {
      const line = `${new Date(record.ts).toISOString()} ${record.line}\n`;
      if (log.length + line.length > maxChars) {
        log += "…[truncated: read the whole log by RequestId]\n";
        break;
      }
      log += line;
    }
    return log;
  }

  /** Stores one platform line that is not a transition's (the deadline warning) and sends it live. */
  platformNote(line: string, at: number): void {
    this.followers.publish([this.store.appendPlatform(line, at)]);
  }

  /** Sends a progress update live (see AsyncEventObject.reportProgress). */
  publishProgress(progress: PublicProgress): void {
    this.followers.publishProgress(progress);
  }

  /** Sends timeline entries recorded outside a transition (see AsyncEventObject.recordTimeline) live. */
  publishTimeline(entries: readonly PublicTimelineEntry[]): void {
    this.followers.publishTimeline(entries);
  }

  /**
   * The transition's new timeline entries and platform lines, sent live: the start (instance, cold
   * or warm) and the end; at the end, the followers get the final status and their streams close.
   */
  narrate(before: EventState, after: EventState): void {
    this.followers.publishTimeline(newTimelineEntries(before.timeline, after.timeline).map(publicTimelineEntry));
    const lines: StoredLogRecord[] = [];
    if (after.phase === "running" && before.phase !== "running") {
      lines.push(
        this.store.appendPlatform(
          `[PLATFORM] START RequestId: ${after.requestId} Instance: ${after.instanceId} (${after.cold ? "cold" : "warm"} start)`,
          after.startedAt,
        ),
      );
      const clamp = logLimitClampLine(after);
      if (clamp) lines.push(this.store.appendPlatform(clamp, after.startedAt));
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

/**
 * The [PLATFORM] line written after START when the function's logLimitMb is more than the disk of
 * its container class holds (accepted under other compute sizes): the instance clamps the execution's
 * log limit to that class's cap (instances/instance-execution.ts clampedSpecOf). Undefined when it
 * fits, and for an event claimed before compute sizes (its class is not recorded).
 */
export function logLimitClampLine(state: EventState): string | undefined {
  // An image event records its Cloudflare type too (the image class picks it per start).
  const instanceType = INSTANCE_CLASSES.find((entry) => entry.instanceType === state.instanceType)?.instanceType;
  if (!instanceType || instanceType === "image") return undefined;
  const { limitMb, clamped, configuredMb } = effectiveLogLimitMb(state.function.logLimitMb, instanceType);
  if (!clamped) return undefined;
  return `[PLATFORM] Log limit: logLimitMb ${configuredMb} MiB does not fit the disk of instance type ${instanceType} (memorySize ${state.function.memoryMb} MB); this execution keeps at most ${limitMb} MiB of log`;
}
