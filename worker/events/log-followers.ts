import { type LogFilter, type LogPage, matchesFilter, type StoredLogRecord } from "./event-log-store";
import type { PublicProgress } from "./event-progress";
import { MAX_TIMELINE_ENTRIES, type PublicTimelineEntry } from "./event-timeline";

/** What a follower receives when the event ends. */
export interface LogStreamEnd {
  requestId: string;
  status: string;
  statusCode: number | null;
  durationMs: number | null;
  errorMessage: string | null;
}

/**
 * Reads stored lines with seq > after that pass the filter, oldest first, at most `limit` of them:
 * synchronously from the event's SQLite tail, as a promise when older lines are read from R2.
 */
export type LogPageReader = (after: number, limit: number, filter: LogFilter | undefined) => LogPage | Promise<LogPage>;

/** Most live followers one event may have at once; past it, opening one more is refused. */
export const MAX_FOLLOWERS_PER_EVENT = 16;
/**
 * Most bytes waiting to be read by one follower (1 MiB). A follower that falls this far behind is
 * dropped: it gets a final `overflow` event and its stream closes; it resumes with Last-Event-ID.
 */
export const MAX_FOLLOWER_QUEUE_BYTES = 1024 * 1024;
/** Bytes queued for a follower below which the next backlog page is read (its high-water mark). */
const FOLLOWER_HIGH_WATER_BYTES = 64 * 1024;
/**
 * A follower still reading its backlog whose client has not read what was queued for it (the stream
 * asked for nothing more) for this long, 5 minutes, is closed with an `idle` event telling it where
 * to resume, so that a stalled client cannot hold one of the MAX_FOLLOWERS_PER_EVENT places for ever.
 */
export const BACKLOG_IDLE_MS = 5 * 60_000;
/** Idle followers get a comment line this often, so proxies keep the connection. */
const HEARTBEAT_MS = 15_000;
const encoder = new TextEncoder();

/** One Server-Sent Event for a log line; its id is the seq a client resumes after. */
export function sseLogEvent(record: StoredLogRecord): string {
  return `id: ${record.seq}\nevent: log\ndata: ${JSON.stringify(record)}\n\n`;
}

/**
 * One Server-Sent Event for a timeline entry (see event-timeline.ts). It has no id: a client resumes
 * by log seq, and a new stream opens with the timeline so far.
 */
export function sseTimelineEvent(entry: PublicTimelineEntry): string {
  return `event: timeline\ndata: ${JSON.stringify(entry)}\n\n`;
}

/**
 * One Server-Sent Event for a progress update (`{percent, message, at}`, see event-progress.ts).
 * No id, as for the timeline: a new stream opens with the latest progress.
 */
export function sseProgressEvent(progress: PublicProgress): string {
  return `event: progress\ndata: ${JSON.stringify(progress)}\n\n`;
}

/** The Server-Sent Event that closes a log stream. */
export function sseEndEvent(end: LogStreamEnd): string {
  return `event: end\ndata: ${JSON.stringify(end)}\n\n`;
}

/** The last words to a backlog follower whose client stopped reading (see BACKLOG_IDLE_MS). */
export function sseIdleEvent(lastEventId: number): string {
  const data = {
    reason: `this follower read nothing of its backlog for ${BACKLOG_IDLE_MS / 1000} s; reconnect with Last-Event-ID to resume`,
    lastEventId,
  };
  return `event: idle\ndata: ${JSON.stringify(data)}\n\n`;
}

/** The last words to a follower whose backlog could not be read. */
export function sseErrorEvent(lastEventId: number): string {
  const data = {
    reason: "the log's stored lines could not be read; reconnect with Last-Event-ID to retry",
    lastEventId,
  };
  return `event: error\ndata: ${JSON.stringify(data)}\n\n`;
}

/** The last words to a follower that fell too far behind: where to resume. */
export function sseOverflowEvent(lastEventId: number): string {
  const data = {
    reason: `this follower fell more than ${MAX_FOLLOWER_QUEUE_BYTES} bytes behind; reconnect with Last-Event-ID to resume`,
    lastEventId,
  };
  return `: too slow, reconnect with Last-Event-ID: ${lastEventId}\n\nevent: overflow\ndata: ${JSON.stringify(data)}\n\n`;
}

/** One open log stream. */
interface Follower {
  controller: ReadableStreamDefaultController<Uint8Array>;
  /** The seq of the last line queued for it (or read past, when its filter left lines out). */
  cursor: number;
  /** Only the lines it asked for. */
  filter: LogFilter | undefined;
  /** Caught up with the store: new lines arrive by publish(); before that, pull() reads pages. */
  live: boolean;
  /** Set when the event has ended: the follower gets the end event once it has read the backlog. */
  ended: LogStreamEnd | undefined;
  /** When its client last asked for more (a pull), for BACKLOG_IDLE_MS. */
  lastPullAt: number;
  /**
   * Timeline entries that happened while it read its backlog, sent once it has caught up (so they
   * follow the older lines); at most MAX_TIMELINE_ENTRIES, the oldest dropped past it.
   */
  pendingTimeline: string[];
  /** The latest progress update made while it read its backlog, sent once it has caught up. */
  pendingProgress?: string;
}

/**
 * Live log followers of one event (Server-Sent Events), bounded in number and in memory. A new
 * follower reads the backlog from the store page by page as its client reads (pull), then turns
 * live. The owner is single-threaded: the last backlog page and the switch to live happen in one
 * step, so no line falls between them. A follower whose unread queue grows past
 * MAX_FOLLOWER_QUEUE_BYTES is dropped with a final event telling it to reconnect.
 */
export class LogFollowers {
  private readonly followers = new Set<Follower>();
  private heartbeat: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly readPage: LogPageReader,
    private readonly pageSize: number,
  ) {}

  /**
   * Opens a stream: the event's timeline so far, the lines after `after`, then live lines and
   * timeline entries in the order they happen until end() (or the end at once after the backlog,
   * if the event has already ended). Undefined when MAX_FOLLOWERS_PER_EVENT are open.
   */
  open(
    after: number,
    ended?: LogStreamEnd,
    filter?: LogFilter,
    timeline: readonly PublicTimelineEntry[] = [],
    progress: PublicProgress | null = null,
  ): ReadableStream<Uint8Array> | undefined {
    if (this.followers.size >= MAX_FOLLOWERS_PER_EVENT) return undefined;
    let follower: Follower | undefined;
    const stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          follower = {
            controller,
            cursor: after,
            filter,
            live: false,
            ended,
            lastPullAt: Date.now(),
            pendingTimeline: [],
          };
          this.followers.add(follower);
          // The beat keeps live followers' connections and closes backlog followers gone idle.
          this.heartbeat ??= setInterval(() => this.beat(), HEARTBEAT_MS);
          // An opening comment so that the client sees the stream is live before the first line.
          this.enqueue(
            follower,
            `: following\n\n${timeline.map(sseTimelineEvent).join("")}${progress ? sseProgressEvent(progress) : ""}`,
          );
        },
        // A pull that reads older lines from R2 returns its promise: the stream pulls again after it.
        pull: () => (follower ? this.pump(follower) : undefined),
        cancel: () => {
          if (follower) this.followers.delete(follower);
          this.stopHeartbeatIfIdle();
        },
      },
      { highWaterMark: FOLLOWER_HIGH_WATER_BYTES, size: (chunk) => chunk.byteLength },
    );
    return stream;
  }

  /** Sends newly stored lines to every live follower. */
  publish(records: readonly StoredLogRecord[]): void {
    if (records.length === 0) return;
    for (const follower of this.followers) {
      if (!follower.live) continue;
      const newer = records.filter((record) => record.seq > follower.cursor);
      const last = newer.at(-1);
      if (!last) continue;
      const fresh = newer.filter((record) => matchesFilter(record, follower.filter));
      if (fresh.length === 0 || this.enqueue(follower, fresh.map(sseLogEvent).join(""))) follower.cursor = last.seq;
    }
  }

  /**
   * Sends new timeline entries to every live follower, after the lines published before them; a
   * follower still reading its backlog gets them once it has caught up.
   */
  publishTimeline(entries: readonly PublicTimelineEntry[]): void {
    if (entries.length === 0) return;
    const events = entries.map(sseTimelineEvent);
    for (const follower of this.followers) {
      if (follower.live) this.enqueue(follower, events.join(""));
      else follower.pendingTimeline = [...follower.pendingTimeline, ...events].slice(-MAX_TIMELINE_ENTRIES);
    }
  }

  /**
   * Sends a progress update to every live follower; a follower still reading its backlog gets the
   * latest one once it has caught up (older updates it missed are superseded).
   */
  publishProgress(progress: PublicProgress): void {
    const event = sseProgressEvent(progress);
    for (const follower of this.followers) {
      if (follower.live) this.enqueue(follower, event);
      else follower.pendingProgress = event;
    }
  }

  /** Sends the end event to every live follower and closes it; the others end after their backlog. */
  end(ended: LogStreamEnd): void {
    for (const follower of this.followers) {
      follower.ended = ended;
      if (follower.live) this.finish(follower);
    }
    this.stopHeartbeatIfIdle();
  }

  /** Open followers (reading their backlog or live). */
  get size(): number {
    return this.followers.size;
  }

  /**
   * Reads the next backlog lines for a follower that is not live yet (its client asked for more),
   * queueing them only up to the high-water mark, so a backlog never sits in memory whole. Lines
   * still in the event's SQLite are read synchronously; older ones come from R2 (a promise).
   */
  private pump(follower: Follower): Promise<void> | undefined {
    follower.lastPullAt = Date.now();
    for (;;) {
      if (follower.live || !this.followers.has(follower)) return undefined;
      const page = this.readPage(follower.cursor, this.pageSize, follower.filter);
      if (page instanceof Promise) {
        return page.then(
          (read) => (this.take(follower, read, false) ? this.pump(follower) : undefined),
          (error: unknown) => {
            console.warn("log backlog read failed", String(error));
            this.tryEnqueue(follower, encoder.encode(sseErrorEvent(follower.cursor)));
            this.close(follower);
          },
        );
      }
      if (!this.take(follower, page, true)) return undefined;
    }
  }

  /**
   * Queues a page for a follower; true when it should read on at once. A synchronous page with
   * nothing after it means the follower has caught up with the store, in the same step as the read:
   * it turns live (or gets the end), so no line falls between the backlog and publish().
   */
  private take(follower: Follower, page: LogPage, synchronous: boolean): boolean {
    if (!this.followers.has(follower)) return false;
    for (const record of page.records) {
      if (!this.tryEnqueue(follower, encoder.encode(sseLogEvent(record)))) return false;
      follower.cursor = record.seq;
      // Enough queued: the stream pulls again as its client reads (back-pressure).
      if ((follower.controller.desiredSize ?? 0) <= 0 && record !== page.records.at(-1)) return false;
    }
    follower.cursor = Math.max(follower.cursor, page.lastSeq);
    if ((follower.controller.desiredSize ?? 0) <= 0 && page.records.length > 0) return false;
    if (page.more || !synchronous) return true;
    // Caught up: the timeline entries that happened meanwhile, then the end or live lines.
    if (follower.pendingTimeline.length > 0) {
      const pending = follower.pendingTimeline.join("");
      follower.pendingTimeline = [];
      if (!this.enqueue(follower, pending)) return false;
    }
    if (follower.pendingProgress !== undefined) {
      const pending = follower.pendingProgress;
      follower.pendingProgress = undefined;
      if (!this.enqueue(follower, pending)) return false;
    }
    if (follower.ended) {
      this.finish(follower);
      return false;
    }
    follower.live = true;
    return false;
  }

  /** Sends the end event and closes the stream. */
  private finish(follower: Follower): void {
    if (follower.ended && this.enqueue(follower, sseEndEvent(follower.ended))) {
      this.close(follower);
    }
  }

  private beat(): void {
    const now = Date.now();
    for (const follower of this.followers) {
      if (follower.live) {
        this.enqueue(follower, ": keep-alive\n\n");
      } else if (now - follower.lastPullAt > BACKLOG_IDLE_MS) {
        this.tryEnqueue(follower, encoder.encode(sseIdleEvent(follower.cursor)));
        this.close(follower);
      }
    }
  }

  /**
   * Queues text for a follower. False when the follower is gone: its client went away, or it was
   * too far behind and has just been dropped (see MAX_FOLLOWER_QUEUE_BYTES).
   */
  private enqueue(follower: Follower, text: string): boolean {
    const chunk = encoder.encode(text);
    const desired = follower.controller.desiredSize;
    if (desired === null) {
      this.forget(follower);
      return false;
    }
    const queued = FOLLOWER_HIGH_WATER_BYTES - desired;
    if (queued > 0 && queued + chunk.byteLength > MAX_FOLLOWER_QUEUE_BYTES) {
      this.tryEnqueue(follower, encoder.encode(sseOverflowEvent(follower.cursor)));
      this.close(follower);
      return false;
    }
    return this.tryEnqueue(follower, chunk);
  }

  private tryEnqueue(follower: Follower, chunk: Uint8Array): boolean {
    try {
      follower.controller.enqueue(chunk);
      return true;
    } catch {
      // The stream was cancelled or closed: the client went away.
      this.forget(follower);
      return false;
    }
  }

  /** Closes the stream once the client has read what is queued, and forgets the follower. */
  private close(follower: Follower): void {
    try {
      follower.controller.close();
    } catch {
      // Already closed or cancelled.
    }
    this.forget(follower);
  }

  private forget(follower: Follower): void {
    this.followers.delete(follower);
    this.stopHeartbeatIfIdle();
  }

  private stopHeartbeatIfIdle(): void {
    if (this.followers.size > 0) return;
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }
}
