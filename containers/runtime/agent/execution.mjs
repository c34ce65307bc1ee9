// One execution's records (a started record, log lines, then one end record), bounded, and the
// resumable NDJSON stream that serves them. The records are the contract's agentRecordSchema
// (PROTOCOL.md); the end record's outcome is checked against it before it is written.
import { executionOutcomeSchema, problemOf } from "./contract.gen.mjs";
import {
  boundedOutcome,
  MAX_BUFFERED_CHARS,
  MAX_LINE_CHARS,
  MAX_LOG_CHARS_PER_EXECUTION,
  MAX_LOG_LINES_PER_EXECUTION,
  platformStopOutcome,
} from "./limits.mjs";

/** Interval of the heartbeat record that keeps an idle stream open through proxies. */
const HEARTBEAT_INTERVAL_MS = 15_000;
/** Consumed records at the head of the buffer past which it is compacted (amortised O(1)). */
const COMPACT_AFTER_RECORDS = 4_096;

/** The characters a record weighs against the log and buffer limits: an empty line still counts. */
function weightOf(record) {
  return (record.line?.length ?? 0) + 1;
}

/** One event run by the agent: its spec, its records, and its end. */
export class Execution {
  constructor(spec) {
    this.spec = spec;
    this.requestId = spec.requestId;
    /** Buffered records are records[head..]; their seqs are contiguous from firstBufferedSeq. */
    this.records = [];
    this.head = 0;
    this.nextSeq = 1;
    this.firstBufferedSeq = 1;
    this.bufferedChars = 0;
    this.loggedChars = 0;
    this.loggedLines = 0;
    this.limitReached = false;
    this.droppedLines = 0;
    this.droppedChars = 0;
    this.ended = false;
    this.endRecord = undefined;
    this.waiters = new Set();
    /** When the handler was handed the event (until then, when the execution was made). */
    this.startedAt = Date.now();
    this.handedOverAt = undefined;
    this.sigtermAt = undefined;
    this.verdictLogged = false;
    this.process = undefined;
  }

  push(record) {
    const full = { seq: this.nextSeq++, ts: Date.now(), ...record };
    this.records.push(full);
    this.bufferedChars += weightOf(full);
    while (this.bufferedChars > MAX_BUFFERED_CHARS && this.records.length - this.head > 1) {
      const dropped = this.records[this.head];
      this.records[this.head] = undefined;
      this.head += 1;
      this.bufferedChars -= weightOf(dropped);
    }
    if (this.head > COMPACT_AFTER_RECORDS && this.head * 2 > this.records.length) {
      this.records = this.records.slice(this.head);
      this.head = 0;
    }
    this.firstBufferedSeq = this.records[this.head].seq;
    if (full.type === "end") {
      this.ended = true;
      this.endRecord = full;
    }
    for (const wake of this.waiters) wake();
    return full;
  }

  /**
   * The handler has been handed the event (see HandlerProcess.handOver): the started record, the
   * first of the stream (seq 1) unless the execution ended first, written at once whatever the
   * handler prints, so that the stream answers and the instance marks the event started. The
   * execution's duration counts from it.
   */
  handedOver() {
    if (this.ended || this.handedOverAt !== undefined) return;
    this.handedOverAt = this.push({ type: "started" }).ts;
    this.startedAt = this.handedOverAt;
  }

  /** The buffered record with this seq, or undefined (not buffered, or not yet written). */
  recordAt(seq) {
    const index = this.head + (seq - this.firstBufferedSeq);
    return index >= this.head && index < this.records.length ? this.records[index] : undefined;
  }

  /**
   * One captured line: NUL becomes U+FFFD, an over-long line is cut and marked. Past the per-
   * execution limits (lines or characters, an empty line counting 1) user lines are only counted;
   * one platform line says so when the limit is reached, another gives the count at the end.
   */
  log(stream, line) {
    if (stream !== "platform" && this.limitReached) {
      this.droppedLines += 1;
      this.droppedChars += line.length;
      return;
    }
    let text = line.includes("\u0000") ? line.replaceAll("\u0000", "\uFFFD") : line;
    if (text.length > MAX_LINE_CHARS) text = `${text.slice(0, MAX_LINE_CHARS)}…[line truncated]`;
    this.push({ type: "log", stream, line: text });
    if (stream === "platform") return;
    this.loggedChars += text.length + 1;
    this.loggedLines += 1;
    if (this.loggedChars >= MAX_LOG_CHARS_PER_EXECUTION || this.loggedLines >= MAX_LOG_LINES_PER_EXECUTION) {
      this.limitReached = true;
      this.platform(
        `[PLATFORM] Log output reached the limit of ${MAX_LOG_LINES_PER_EXECUTION} lines or ${MAX_LOG_CHARS_PER_EXECUTION} characters: further lines are not kept`,
      );
    }
  }

  platform(line) {
    this.log("platform", line);
  }

  /**
   * The platform's verdict on a graceful terminate's SIGTERM (sigtermAt), logged once, always before
   * the end record. A platform stop's SIGTERM gets no verdict: its wording is the user's terminate's.
   */
  signalVerdict(handled) {
    if (this.sigtermAt === undefined || this.verdictLogged) return;
    this.verdictLogged = true;
    this.platform(handled ? "[PLATFORM] Signal received successfully" : "[PLATFORM] Signal reception failed");
  }

  /**
   * Writes the end record. After the platform's SIGTERM to the container (`platformStop`, set by the
   * agent: `{ at, graceMs, expired }`) every outcome becomes the platform's (`platform_stop`): the handler's
   * own ending is only described in its message.
   */
  end(outcome, maxRssKb, exitCode, signal) {
    if (this.ended) return;
    this.signalVerdict(outcome.kind !== "sigterm");
    const stop = this.platformStop;
    const final = stop === undefined ? outcome : platformStopOutcome(outcome, stop.expired ? stop.graceMs : undefined);
    if (this.droppedLines > 0) {
      this.platform(
        `[PLATFORM] ${this.droppedLines} lines (${this.droppedChars} characters) over the log limit were dropped`,
      );
    }
    const rss = Number.isFinite(maxRssKb) && maxRssKb >= 0 ? maxRssKb : undefined;
    this.push({
      type: "end",
      outcome: contractOutcome(boundedOutcome(final)),
      durationMs: Date.now() - this.startedAt,
      maxRssKb: rss,
      exitCode,
      signal,
    });
  }
}

/**
 * The outcome as the contract's executionOutcomeSchema has it (unknown fields dropped); one that
 * does not fit it (an agent defect) becomes an `error` outcome that says so, so that the end record
 * always parses on the instance's side.
 */
function contractOutcome(outcome) {
  const parsed = executionOutcomeSchema.safeParse(outcome);
  if (parsed.success) return parsed.data;
  return { kind: "error", message: `the agent built an outcome outside the contract: ${problemOf(parsed.error)}` };
}

/** Writes one NDJSON record; resolves once the socket takes more (back-pressure). */
function writeRecord(response, record) {
  if (response.write(`${JSON.stringify(record)}\n`)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      response.off("drain", done);
      response.off("close", done);
      resolve();
    };
    response.on("drain", done);
    response.on("close", done);
  });
}

/**
 * Serves the records with seq > after as NDJSON, live until the end record. Records are seq-ordered
 * and contiguous, so each wake reads from the cursor by index: linear in the records sent.
 */
export async function streamRecords(request, response, execution, after, status = 200) {
  response.writeHead(status, { "content-type": "application/x-ndjson", "cache-control": "no-store" });
  let cursor = after;
  let closed = false;
  request.on("close", () => {
    closed = true;
  });
  response.on("close", () => {
    closed = true;
  });
  while (!closed) {
    if (cursor < execution.firstBufferedSeq - 1) {
      await writeRecord(response, { type: "gap", from: cursor + 1, to: execution.firstBufferedSeq - 1 });
      cursor = execution.firstBufferedSeq - 1;
    }
    for (let record = execution.recordAt(cursor + 1); record && !closed; record = execution.recordAt(cursor + 1)) {
      cursor = record.seq;
      await writeRecord(response, record);
      if (cursor < execution.firstBufferedSeq - 1) break;
    }
    if (execution.ended && cursor >= execution.endRecord.seq) break;
    if (closed || execution.recordAt(cursor + 1)) continue;
    if (cursor < execution.firstBufferedSeq - 1) continue;
    await new Promise((resolve) => {
      const wake = () => {
        execution.waiters.delete(wake);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        if (!closed) response.write(`${JSON.stringify({ type: "heartbeat", ts: Date.now() })}\n`);
        wake();
      }, HEARTBEAT_INTERVAL_MS);
      execution.waiters.add(wake);
    });
  }
  response.end();
}
