// The bounds the runtime agent enforces on what a handler produces (log lines, outcomes, results)
// and on code packages, and the helpers that apply them. The bootstraps apply the report bounds
// (error text, result) first; the agent applies them again, since a handler can write to its report
// channel directly. The bounds of an execution spec (environment, memory, body size) are the
// container contract's (worker/contract/execution-spec.ts, bundled in contract.gen.mjs). This module
// imports nothing: the bootstraps load it in every handler process.

/** Longest log line kept; the rest of a longer line is dropped and the line marked. */
export const MAX_LINE_CHARS = 64 * 1024;
// The log kept per execution is the spec's `logLimitBytes` (DEFAULT_LOG_LIMIT_BYTES, 1 GiB, when
// absent; MIN_LOG_LIMIT_BYTES..MAX_LOG_LIMIT_BYTES, 1 MiB..3 GiB: worker/contract/execution-spec.ts),
// counted in log bytes: the UTF-8 bytes of each kept line + 1 (so empty lines count too). There is
// no separate line count limit.

/**
 * Characters of spool text gathered into one block before it is sealed and queued for the disk:
 * the unit of the spool's index, of its writes and of a resuming reader's skip (spool.mjs).
 */
export const SPOOL_BLOCK_CHARS = 64 * 1024;
/**
 * Size of a handler's stdout and stderr pipes, when they can be enlarged (output-capture.mjs
 * enlargePipes): 1 MiB, the most an unprivileged process may ask (/proc/sys/fs/pipe-max-size).
 */
export const OUTPUT_PIPE_BYTES = 1024 * 1024;
/**
 * The Node.js bootstrap's output ring (output-ring.mjs): bytes of writes waiting for its thread to
 * hand them to the pipes (a power of two). A handler that fills it waits for room.
 */
export const OUTPUT_RING_BYTES = 1024 * 1024;
/**
 * What counts as a burst, which starts the output ring: this many writes to stdout and stderr
 * within OUTPUT_RING_BURST_MS (about 5,000 writes a second). Slower output goes straight to the pipes.
 */
export const OUTPUT_RING_BURST_WRITES = 256;
export const OUTPUT_RING_BURST_MS = 50;
/**
 * Spool text waiting for the disk past which the agent stops reading the handler's pipes until the
 * disk catches up (only a disk slower than the handler's output ever gets there).
 */
export const MAX_SPOOL_QUEUED_BYTES = 32 * 1024 * 1024;
/** Spool bytes a stream reads from the disk at a time (whole blocks, one at least). */
export const SPOOL_READ_BYTES = 256 * 1024;

/** Longest error message of an outcome, in UTF-8 bytes (marker included). */
export const MAX_ERROR_MESSAGE_BYTES = 4 * 1024;
/** Longest error stack of an outcome, in UTF-8 bytes (marker included). */
export const MAX_ERROR_STACK_BYTES = 32 * 1024;
/** Largest handler result, in UTF-8 bytes of its JSON; a larger one fails the event. */
export const MAX_RESULT_BYTES = 1024 * 1024;
/**
 * Longest line on a handler's report channel (fd 3), in characters: a result at its limit plus
 * error text at its limits and room for the envelope. A longer line is discarded unbuffered and
 * the event fails with a clear message.
 */
export const MAX_REPORT_LINE_CHARS = MAX_RESULT_BYTES + MAX_ERROR_STACK_BYTES + MAX_ERROR_MESSAGE_BYTES + 64 * 1024;

/**
 * Largest code package body of PUT /code/:sha256 (500 MiB: the Worker's bound for a package from
 * an R2 object, functions/code-from-object.ts MAX_OBJECT_CODE_PACKAGE_BYTES); streamed to disk.
 */
export const MAX_CODE_PACKAGE_BYTES = 500 * 1024 * 1024;

/** Cuts text to at most maxBytes of UTF-8, ending with a visible marker when it was cut. */
export function truncateUtf8(text, maxBytes) {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= maxBytes) return text;
  const marker = `…[truncated: ${bytes.length} bytes, limit ${maxBytes}]`;
  const keep = Math.max(0, maxBytes - Buffer.byteLength(marker, "utf8"));
  // Decoding a cut in the middle of a character yields U+FFFD (3 bytes): drop it to stay in bounds.
  let kept = bytes.subarray(0, keep).toString("utf8");
  while (kept.endsWith("\uFFFD") && Buffer.byteLength(kept, "utf8") > keep) kept = kept.slice(0, -1);
  return `${kept}${marker}`;
}

/** Text of an untrusted value (a report field), or undefined when it is absent. */
function textOf(value) {
  if (value === undefined || value === null) return undefined;
  return typeof value === "string" ? value : String(value);
}

/** The error text of an outcome, bounded. */
export function boundedMessage(value) {
  return truncateUtf8(textOf(value) ?? "", MAX_ERROR_MESSAGE_BYTES);
}

/**
 * Turns a handler's report (untrusted JSON) into a bounded outcome: error text truncated with a
 * marker, a result over MAX_RESULT_BYTES replaced by a failure that names the limit.
 */
export function outcomeOfReport(report) {
  if (report.kind === "returned") {
    const result = report.result === undefined ? null : report.result;
    const size = Buffer.byteLength(JSON.stringify(result), "utf8");
    if (size > MAX_RESULT_BYTES) {
      return {
        kind: "threw",
        message: `Result too large: the handler's return value is ${size} bytes of JSON, over the limit of ${MAX_RESULT_BYTES} bytes`,
      };
    }
    return { kind: "returned", result };
  }
  if (report.kind === "oom") {
    const message = textOf(report.message);
    return message === undefined ? { kind: "oom" } : { kind: "oom", message: boundedMessage(message) };
  }
  const stack = textOf(report.stack);
  return {
    kind: "threw",
    message: boundedMessage(report.message ?? "the handler failed"),
    ...(stack ? { stack: truncateUtf8(stack, MAX_ERROR_STACK_BYTES) } : {}),
  };
}

/** An outcome the agent builds itself (error, exited...) with its text bounded. */
export function boundedOutcome(outcome) {
  if (typeof outcome.message !== "string") return outcome;
  return { ...outcome, message: boundedMessage(outcome.message) };
}

/**
 * Default time a handler may keep running after the platform's SIGTERM to its container (a rollout
 * or host drain) before the agent kills it and ends its execution: 14 minutes. Cloudflare sends
 * SIGKILL 15 minutes after SIGTERM, so the end record leaves the container a minute before it dies.
 */
export const DEFAULT_PLATFORM_STOP_GRACE_MS = 14 * 60_000;

/**
 * The grace after a platform SIGTERM: AFP_PLATFORM_STOP_GRACE_MS when it is a positive integer of
 * milliseconds (tests shorten it), else DEFAULT_PLATFORM_STOP_GRACE_MS.
 */
export function platformStopGraceMs(env) {
  const value = Number(env.AFP_PLATFORM_STOP_GRACE_MS);
  return Number.isSafeInteger(value) && value > 0 ? value : DEFAULT_PLATFORM_STOP_GRACE_MS;
}

/** How the handler ended after the platform's SIGTERM, in words (the platform outcome's message). */
function handlerEndingAfterPlatformStop(outcome, graceExpiredMs) {
  if (graceExpiredMs !== undefined) {
    return `the handler was still running ${Math.round(graceExpiredMs / 1000)} s after SIGTERM and was killed`;
  }
  switch (outcome.kind) {
    case "returned":
      return "the handler returned after SIGTERM; its result is not kept";
    case "threw":
      return `the handler threw after SIGTERM: ${textOf(outcome.message) ?? ""}`;
    case "sigterm":
      return "the handler was ended by SIGTERM";
    case "exited":
      return outcome.signal
        ? `the handler was ended by ${outcome.signal}`
        : `the handler exited with code ${outcome.code}`;
    case "timeout":
      return "the handler reached its timeout";
    case "oom":
      return "the handler ran out of memory";
    default:
      return textOf(outcome.message) ?? `the handler ended (${String(outcome.kind)})`;
  }
}

/**
 * The outcome of an execution whose container the platform stopped while it ran, whatever the
 * handler then did: the platform's (`platform_stop`, FAILED with StatusCode 503 in the worker), never
 * a user termination. graceExpiredMs is set when the agent killed the handler at the end of the grace.
 */
export function platformStopOutcome(outcome, graceExpiredMs) {
  return { kind: "platform_stop", message: boundedMessage(handlerEndingAfterPlatformStop(outcome, graceExpiredMs)) };
}

// Progress reports (`context.progress(percent, message)`): the same bounds as the container
// contract's (worker/contract/agent-records.ts; a test checks they agree), applied by the bootstraps
// and again by the agent, since a handler can write to its report channel directly.
/** Lowest and highest progress percent; a finite number outside them is clamped. */
export const MIN_PROGRESS_PERCENT = 0;
export const MAX_PROGRESS_PERCENT = 100;
/** Longest progress message in characters, the marker included. */
export const MAX_PROGRESS_MESSAGE_CHARS = 256;
/** Ends a progress message that was cut to MAX_PROGRESS_MESSAGE_CHARS. */
export const PROGRESS_TRUNCATED_MARKER = "…[truncated]";

/**
 * A progress report's percent and message, bounded: the percent clamped to 0..100, the message a
 * single line (newlines become spaces, NUL U+FFFD) of at most MAX_PROGRESS_MESSAGE_CHARS, cut with
 * PROGRESS_TRUNCATED_MARKER. Undefined when the percent is not a finite number or the message is
 * neither a string nor absent (null/undefined: no message).
 */
export function boundedProgress(percent, message) {
  if (typeof percent !== "number" || !Number.isFinite(percent)) return undefined;
  if (message !== undefined && message !== null && typeof message !== "string") return undefined;
  let text = message ?? "";
  if (text.includes("\n") || text.includes("\r")) text = text.replace(/\r\n|[\r\n]/g, " ");
  if (text.includes("\u0000")) text = text.replaceAll("\u0000", "\uFFFD");
  if (text.length > MAX_PROGRESS_MESSAGE_CHARS) {
    let kept = text.slice(0, MAX_PROGRESS_MESSAGE_CHARS - PROGRESS_TRUNCATED_MARKER.length);
    // A cut between the halves of a surrogate pair leaves no lone half.
    if (/[\uD800-\uDBFF]$/.test(kept)) kept = kept.slice(0, -1);
    text = `${kept}${PROGRESS_TRUNCATED_MARKER}`;
  }
  return { percent: Math.min(MAX_PROGRESS_PERCENT, Math.max(MIN_PROGRESS_PERCENT, percent)), message: text };
}
