import type { LogRecord } from "../events/event-log-store";

/** Forwards at most this many records in one call. */
const MAX_BATCH_RECORDS = 200;
/** Lines arriving within this long of the previous send are batched into the next one. */
const BATCH_WINDOW_MS = 50;

/**
 * Batches captured log lines on their way to the event: a line after a quiet spell goes at once
 * (live logs stay live), lines in a burst wait at most BATCH_WINDOW_MS, and sends never overlap or
 * reorder (each waits for the one before).
 */
export class LogForwarder {
  private buffer: LogRecord[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private lastSendAt = 0;
  private chain: Promise<void> = Promise.resolve();
  private failure: unknown;

  constructor(
    private readonly send: (batch: LogRecord[]) => Promise<void>,
    private readonly now: () => number = Date.now,
  ) {}

  add(record: LogRecord): void {
    this.buffer.push(record);
    if (this.buffer.length >= MAX_BATCH_RECORDS || this.now() - this.lastSendAt >= BATCH_WINDOW_MS) {
      this.flush();
    } else if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), BATCH_WINDOW_MS);
    }
  }

  /** Sends what is buffered (after every earlier send). */
  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buffer.length === 0) return;
    const batch = this.buffer;
    this.buffer = [];
    this.lastSendAt = this.now();
    this.chain = this.chain.then(() =>
      this.send(batch).catch((error: unknown) => {
        this.failure = error;
      }),
    );
  }

  /** Waits for every send so far and hands back the lines not sent yet (they go with the outcome). */
  async drain(): Promise<LogRecord[]> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.chain;
    if (this.failure !== undefined) throw this.failure;
    const rest = this.buffer;
    this.buffer = [];
    return rest;
  }
}
