import type { StoredLogRecord } from "./event-log-store";

/** What a follower receives when the event ends. */
export interface LogStreamEnd {
  requestId: string;
  status: string;
  statusCode: number | null;
  durationMs: number | null;
  errorMessage: string | null;
}

/** Idle followers get a comment line this often, so proxies keep the connection. */
const HEARTBEAT_MS = 15_000;
const encoder = new TextEncoder();

/** One Server-Sent Event for a log line; its id is the seq a client resumes after. */
export function sseLogEvent(record: StoredLogRecord): string {
  return `id: ${record.seq}\nevent: log\ndata: ${JSON.stringify(record)}\n\n`;
}

/** The Server-Sent Event that closes a log stream. */
export function sseEndEvent(end: LogStreamEnd): string {
  return `event: end\ndata: ${JSON.stringify(end)}\n\n`;
}

/**
 * Live log followers of one event (Server-Sent Events). The owner is single-threaded: it writes the
 * backlog and registers the follower in one step, so nothing falls between backlog and live lines.
 */
export class LogFollowers {
  private readonly writers = new Set<WritableStreamDefaultWriter<Uint8Array>>();
  private heartbeat: ReturnType<typeof setInterval> | undefined;

  /** Opens a stream: the backlog, then live lines until end() (or the end at once if given). */
  open(backlog: readonly StoredLogRecord[], ended?: LogStreamEnd): ReadableStream<Uint8Array> {
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    const writer = writable.getWriter();
    const text = backlog.map(sseLogEvent).join("") + (ended ? sseEndEvent(ended) : "");
    // An opening comment so that the client sees the stream is live before the first line.
    this.write(writer, `: following\n\n${text}`);
    if (ended) {
      writer.close().catch(() => undefined);
    } else {
      this.writers.add(writer);
      this.heartbeat ??= setInterval(() => this.broadcast(": keep-alive\n\n"), HEARTBEAT_MS);
    }
    return readable;
  }

  publish(records: readonly StoredLogRecord[]): void {
    if (records.length > 0 && this.writers.size > 0) this.broadcast(records.map(sseLogEvent).join(""));
  }

  /** Sends the end event to every follower and closes their streams. */
  end(ended: LogStreamEnd): void {
    this.broadcast(sseEndEvent(ended));
    for (const writer of this.writers) writer.close().catch(() => undefined);
    this.writers.clear();
    this.stopHeartbeat();
  }

  get size(): number {
    return this.writers.size;
  }

  private broadcast(text: string): void {
    for (const writer of this.writers) this.write(writer, text);
  }

  private write(writer: WritableStreamDefaultWriter<Uint8Array>, text: string): void {
    writer.write(encoder.encode(text)).catch(() => {
      // The client went away.
      this.writers.delete(writer);
      if (this.writers.size === 0) this.stopHeartbeat();
    });
  }

  private stopHeartbeat(): void {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }
}
