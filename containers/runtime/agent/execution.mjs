// One execution's records (a started record, log lines, then one end record), bounded by the
// spec's log limit, and the resumable NDJSON stream that serves them. The records are the
// contract's agentRecordSchema (PROTOCOL.md); the end record's outcome is checked against it before
// it is written. Every record but the end record is spooled to disk (spool.mjs) as it is made, so a
// reader resumes from any seq without a gap; only the end record stays in memory.
import {
  DEFAULT_LOG_LIMIT_BYTES,
  executionOutcomeSchema,
  MIN_PROGRESS_INTERVAL_MS,
  problemOf,
} from "./contract.gen.mjs";
import { boundedOutcome, boundedProgress, MAX_LINE_CHARS, platformStopOutcome, SPOOL_READ_BYTES } from "./limits.mjs";
import { forEachLine } from "./output-capture.mjs";
import { recordJson, Spool } from "./spool.mjs";

/** Interval of the heartbeat record that keeps an idle stream open through proxies. */
const HEARTBEAT_INTERVAL_MS = 15_000;

/** One event run by the agent: its spec, its records, and its end. */
export class Execution {
  /** spoolRoot: the agent-only folder of the spools (see agent.mjs). */
  constructor(spec, spoolRoot) {
    this.spec = spec;
    this.requestId = spec.requestId;
    /** Log bytes kept per execution: UTF-8 bytes of each kept line + 1 (see limits.mjs). */
    this.logLimitBytes = spec.logLimitBytes ?? DEFAULT_LOG_LIMIT_BYTES;
    this.nextSeq = 1;
    this.logBytes = 0;
    this.limitReached = false;
    this.droppedLines = 0;
    this.droppedBytes = 0;
    this.ended = false;
    this.endRecord = undefined;
    /** Bumped whenever more records become readable (a write, a failure, the end): wakes streams. */
    this.version = 0;
    this.waiters = new Set();
    /** Waiting for the spool to take more (the handler's pipes are paused meanwhile). */
    this.drainWaiters = [];
    /** Records made after the spool failed (platform lines only: user lines are then dropped). */
    this.memoryRecords = [];
    this.spool = new Spool(
      spoolRoot,
      this.requestId,
      () => this.progress(),
      (error) => this.spoolFailed(error),
    );
    /** When the handler was handed the event (until then, when the execution was made). */
    this.startedAt = Date.now();
    this.handedOverAt = undefined;
    this.sigtermAt = undefined;
    this.verdictLogged = false;
    this.process = undefined;
    /** Progress coalescing (see reportProgress): the report waiting, its timer, the last write. */
    this.pendingProgress = undefined;
    this.progressTimer = undefined;
    this.lastProgressAt = undefined;
    if (this.spool.failed) this.spoolFailed(this.spool.failed);
  }

  /** Adds a started, progress or log record (seq and ts given here); the end record is end()'s. */
  push(type, stream, line) {
    const seq = this.nextSeq++;
    const ts = Date.now();
    if (!this.spool.append(seq, ts, type === "log" ? stream : type, line)) {
      this.memoryRecords.push(type === "started" ? { seq, ts, type } : { seq, ts, type, stream, line });
      this.progress();
    }
    return ts;
  }

  /** More records are readable: wakes the streams, and the handler's pipes once the disk caught up. */
  progress() {
    this.version += 1;
    for (const wake of this.waiters) wake();
    if (this.drainWaiters.length > 0 && !this.spool.congested) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const resume of waiters) resume();
    }
  }

  /** True while the spool has more waiting for the disk than it may hold (see MAX_SPOOL_QUEUED_BYTES). */
  get congested() {
    return this.spool.congested;
  }

  /** Calls resume once the spool is no longer congested. */
  whenDrained(resume) {
    if (!this.spool.congested) resume();
    else this.drainWaiters.push(resume);
  }

  /**
   * The spool could not be made or written (a full disk): what was not written is lost (a reader
   * gets a gap for it), the handler's further lines are counted, not kept, and the platform's own
   * lines and the end record are kept in memory.
   */
  spoolFailed(error) {
    this.limitReached = true;
    this.platform(
      `[PLATFORM] The agent could not store log output on the container's disk (${error.code ?? error.message}): further lines are not kept`,
    );
  }

  /**
   * The handler has been handed the event (see HandlerProcess.handOver): the started record, the
   * first of the stream (seq 1) unless the execution ended first, written at once whatever the
   * handler prints, so that the stream answers and the instance marks the event started. The
   * execution's duration counts from it.
   */
  handedOver() {
    if (this.ended || this.handedOverAt !== undefined) return;
    this.handedOverAt = this.push("started");
    this.startedAt = this.handedOverAt;
  }

  /**
   * The handler reported progress (`context.progress`): bounded (boundedProgress; a report whose
   * percent is not a finite number is ignored) and coalesced: at most one progress record every
   * MIN_PROGRESS_INTERVAL_MS, the latest report winning; the one still waiting at the end is written
   * before the end record (see end). Ignored once the execution has ended. Once the spool has failed
   * (records are then kept in memory), only the latest report is kept, waiting, and written once,
   * before the end record: memory never grows with the reports.
   */
  reportProgress(percent, message) {
    if (this.ended) return;
    const bounded = boundedProgress(percent, message);
    if (!bounded) return;
    this.pendingProgress = bounded;
    const wait = this.lastProgressAt === undefined ? 0 : this.lastProgressAt + MIN_PROGRESS_INTERVAL_MS - Date.now();
    if (wait <= 0) {
      this.writeProgress();
      return;
    }
    this.progressTimer ??= setTimeout(() => {
      this.progressTimer = undefined;
      this.writeProgress();
    }, wait);
  }

  /**
   * Writes the waiting progress report as a record: `<percent> <message>` on the spool. After a
   * spool failure it keeps waiting (only the latest is kept) until the end (`atEnd`).
   */
  writeProgress(atEnd = false) {
    const progress = this.pendingProgress;
    if (!progress || this.ended) return;
    if (this.spool.failed && !atEnd) return;
    this.pendingProgress = undefined;
    this.lastProgressAt = Date.now();
    this.push("progress", undefined, `${progress.percent} ${progress.message}`);
  }

  /**
   * The records with seq > after that can be read now, in order (not the end record), as NDJSON:
   * `{ text, lastSeq }`, `{ gap: { from, to } }` when they were lost, or {} when none is readable yet.
   */
  async recordsAfter(after) {
    const seq = after + 1;
    // An ended execution whose spool was released (see releaseSpool): its lines are gone.
    if (this.spool.disposed && this.endRecord && seq < this.endRecord.seq) {
      return { gap: { from: seq, to: this.endRecord.seq - 1 } };
    }
    const lost = this.spool.lost;
    if (lost && seq >= lost.from && seq <= lost.to) return { gap: { from: seq, to: lost.to } };
    const memoryFirst = this.memoryRecords[0]?.seq;
    if (memoryFirst !== undefined && seq >= memoryFirst) {
      const records = this.memoryRecords.slice(seq - memoryFirst);
      if (records.length === 0) return {};
      let text = "";
      for (const { seq, ts, type, stream, line } of records) text += recordJson(seq, ts, type, stream, line);
      return { text, lastSeq: records.at(-1).seq };
    }
    return (await this.spool.read(seq, SPOOL_READ_BYTES)) ?? {};
  }

  /**
   * One captured line: NUL becomes U+FFFD, an over-long line is cut and marked. Past the log limit
   * (log bytes: UTF-8 bytes + 1 a line) the handler's lines are only counted; one platform line says
   * so when the limit is reached, another gives the count at the end. A line that would take the
   * log over the limit is the first dropped, so that the kept log is at most the limit.
   */
  log(stream, line) {
    if (stream !== "platform" && this.limitReached) {
      this.droppedLines += 1;
      this.droppedBytes += Buffer.byteLength(line, "utf8") + 1;
      return;
    }
    let text = line.includes("\u0000") ? line.replaceAll("\u0000", "\uFFFD") : line;
    if (text.length > MAX_LINE_CHARS) text = `${text.slice(0, MAX_LINE_CHARS)}…[line truncated]`;
    if (stream === "platform") {
      // The agent's own lines: never counted, never with a newline (a spool record is one line).
      this.push("log", stream, text.includes("\n") ? text.replaceAll("\n", " ") : text);
      return;
    }
    const bytes = Buffer.byteLength(text, "utf8") + 1;
    if (this.logBytes + bytes > this.logLimitBytes) {
      this.limitReached = true;
      this.droppedLines += 1;
      this.droppedBytes += bytes;
      this.platform(
        `[PLATFORM] Log output reached the limit of ${this.logLimitBytes} bytes for this execution (logLimitBytes): further lines are not kept`,
      );
      return;
    }
    this.logBytes += bytes;
    this.push("log", stream, text);
  }

  /**
   * `count` lines of the handler's stream at once (`text`: each ending with its newline, none longer
   * than MAX_LINE_CHARS), as `count` calls of log would keep them but in one spool append, with one
   * ts. Line by line (log) when one of them needs log's care: a NUL, the log limit reached or
   * crossed within them, a spool that failed.
   */
  logLines(stream, text, count) {
    const bytes =
      this.limitReached || this.spool.failed || text.includes("\u0000") ? -1 : Buffer.byteLength(text, "utf8");
    if (bytes < 0 || this.logBytes + bytes > this.logLimitBytes) {
      forEachLine(text, (line) => this.log(stream, line));
      return;
    }
    this.logBytes += bytes;
    const firstSeq = this.nextSeq;
    this.nextSeq += count;
    this.spool.appendLines(firstSeq, count, Date.now(), stream, text);
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
    // The latest progress report is never lost to the coalescing: it goes before the end record.
    if (this.progressTimer) clearTimeout(this.progressTimer);
    this.progressTimer = undefined;
    this.writeProgress(true);
    if (this.droppedLines > 0) {
      this.platform(
        `[PLATFORM] ${this.droppedLines} lines (${this.droppedBytes} bytes) over the log limit were dropped`,
      );
    }
    const rss = Number.isFinite(maxRssKb) && maxRssKb >= 0 ? maxRssKb : undefined;
    this.endRecord = {
      seq: this.nextSeq++,
      ts: Date.now(),
      type: "end",
      outcome: contractOutcome(boundedOutcome(final)),
      durationMs: Date.now() - this.startedAt,
      maxRssKb: rss,
      exitCode,
      signal,
    };
    this.ended = true;
    // The last records reach the disk at once (not on the next turn), then the streams serve the end.
    this.spool.flush();
    this.progress();
  }

  /** The execution has ended and another starts: its spool is deleted, its end record kept. */
  releaseSpool() {
    if (this.ended) this.spool.dispose();
  }

  /** The execution is forgotten (see KEPT_EXECUTIONS): its spool is deleted. */
  forget() {
    this.spool.dispose();
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const resume of waiters) resume();
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
  return writeText(response, `${JSON.stringify(record)}\n`);
}

/** Writes NDJSON text; resolves once the socket takes more (back-pressure). */
function writeText(response, text) {
  if (response.write(text)) return Promise.resolve();
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
 * Serves the records with seq > after as NDJSON, live until the end record: read from the spool a
 * few blocks at a time, each batch written once the socket has taken the previous one (the reader's
 * pace never reaches the handler). A `gap` only stands for records that were truly lost.
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
  const spool = execution.spool;
  spool.readers += 1;
  try {
    while (!closed) {
      const end = execution.endRecord;
      if (end && cursor >= end.seq) break;
      if (end && cursor === end.seq - 1) {
        await writeRecord(response, end);
        break;
      }
      const version = execution.version;
      const { text, lastSeq, gap } = await execution.recordsAfter(cursor);
      if (gap) {
        await writeRecord(response, { type: "gap", ...gap });
        cursor = gap.to;
        continue;
      }
      if (text) {
        cursor = lastSeq;
        await writeText(response, text);
        continue;
      }
      if (closed || execution.version !== version) continue;
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
  } finally {
    spool.readers -= 1;
    spool.closeIfUnused();
  }
  response.end();
}
