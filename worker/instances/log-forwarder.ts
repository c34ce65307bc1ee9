import type { LogRecord } from "../events/event-log-store";

/** Forwards at most this many records in one call (the event takes at most 1,000 a call). */
const MAX_BATCH_RECORDS = 1_000;
/** Forwards at most this many characters in one call (each line counting its length + 1). */
const MAX_BATCH_CHARS = 1024 * 1024;
/**
 * Sends queued behind the one in flight past which add() makes its caller wait: the relay then
 * stops reading the agent's stream, and the agent spools what the handler writes meanwhile.
 */
const MAX_QUEUED_SENDS = 4;
/** Lines arriving within this long of the previous send are batched into the next one. */
const BATCH_WINDOW_MS = 50;

/**
 * Batches captured log lines on their way to the event: a line after a quiet spell goes at once
 * (live logs stay live), lines in a burst wait at most BATCH_WINDOW_MS, and sends never overlap or
 * reorder (each waits for the one before).
 */
export class LogForwarder {
  private buffer: LogRecord[] = [];
  private bufferChars = 0;
  /** Sends queued or in flight. */
  private pending = 0;
  private readonly drained: Array<() => void> = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private lastSendAt = 0;
  private chain: Promise<void> = Promise.resolve();
  private failure: unknown;

  constructor(
    private readonly send: (batch: LogRecord[]) => Promise<void>,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Queues a line; the promise resolves at once, or once the sends behind the event's store are
   * few enough again (the caller reads no further meanwhile: back-pressure up to the agent).
   */
  add(record: LogRecord): Promise<void> | undefined {
    // After a failed send nothing more is sent: the relay resumes from the last acknowledged seq.
    if (this.failure !== undefined) throw this.failure;
    this.buffer.push(record);
    this.bufferChars += record.line.length + 1;
    if (
      this.buffer.length >= MAX_BATCH_RECORDS ||
      this.bufferChars >= MAX_BATCH_CHARS ||
      this.now() - this.lastSendAt >= BATCH_WINDOW_MS
    ) {
      this.flush();
    } else if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), BATCH_WINDOW_MS);
    }
    if (this.pending <= MAX_QUEUED_SENDS) return undefined;
    return new Promise((resolve) => this.drained.push(resolve));
  }

  /** Sends what is buffered (after every earlier send). */
  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buffer.length === 0) return;
    const batch = this.buffer;
    this.buffer = [];
    this.bufferChars = 0;
    this.lastSendAt = this.now();
    this.pending += 1;
    // Sends are serial, and after a failed one (or abandon()) the queued ones are skipped: a batch
    // is never stored after a batch that was lost, so the seq the relay resumes from has no hole
    // before it.
    this.chain = this.chain.then(() =>
      (this.failure === undefined ? this.send(batch) : Promise.resolve())
        .catch((error: unknown) => {
          this.failure ??= error;
        })
        .finally(() => {
          this.pending -= 1;
          if (this.pending <= MAX_QUEUED_SENDS || this.failure !== undefined) {
            for (const wake of this.drained.splice(0)) wake();
          }
        }),
    );
  }

  /**
   * Stops sending (the relay failed and will resume from the last acknowledged seq): queued sends
   * are skipped; resolves once the one in flight has settled.
   */
  async abandon(): Promise<void> {
    this.failure ??= new Error("the relay was abandoned");
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.buffer = [];
    this.bufferChars = 0;
    await this.chain;
  }

  /** Waits for every send so far and hands back the lines not sent yet (they go with the outcome). */
  async drain(): Promise<LogRecord[]> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.chain;
    if (this.failure !== undefined) throw this.failure;
    const rest = this.buffer;
    this.buffer = [];
    this.bufferChars = 0;
    return rest;
  }
}
