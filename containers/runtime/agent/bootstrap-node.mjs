// Runs a Node.js handler for many events: `node bootstrap-node.mjs CODE_DIR file.function`, one
// event at a time, speaking the bootstrap protocol of PROTOCOL.md (events on stdin, reports on fd 3,
// the end mark on stdout and stderr).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import {
  boundedProgress,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_ERROR_STACK_BYTES,
  MAX_RESULT_BYTES,
  truncateUtf8,
} from "./limits.mjs";
import { closeOutput, drainOutput, routeStream, writeAllSync } from "./output-ring.mjs";

const [codeDir, handlerSpec] = process.argv.slice(2);
const separator = handlerSpec.lastIndexOf(".");
const fileName = handlerSpec.slice(0, separator);
const functionName = handlerSpec.slice(separator + 1);

/** Marks the end of one event's output on stdout and stderr, so the agent can order it before the end. */
const END_MARK = "\u0000AFP_END:";

/**
 * The report line of an outcome, bounded: error text truncated with a marker, a result whose JSON
 * is over MAX_RESULT_BYTES (or cannot be serialised) turned into a failure that says so.
 */
function reportLine(requestId, outcome) {
  const maxRssKb = process.resourceUsage().maxRSS;
  if (outcome.kind === "returned") {
    let resultJson;
    try {
      resultJson = JSON.stringify(outcome.result === undefined ? null : outcome.result) ?? "null";
    } catch (error) {
      return reportLine(requestId, { kind: "threw", ...describe(error, "the handler's return value is not JSON: ") });
    }
    const size = Buffer.byteLength(resultJson, "utf8");
    if (size > MAX_RESULT_BYTES) {
      const message = `Result too large: the handler's return value is ${size} bytes of JSON, over the limit of ${MAX_RESULT_BYTES} bytes`;
      return reportLine(requestId, { kind: "threw", message, stack: "" });
    }
    return `{"requestId":${JSON.stringify(requestId)},"kind":"returned","result":${resultJson},"maxRssKb":${maxRssKb}}`;
  }
  return JSON.stringify({
    requestId,
    kind: outcome.kind,
    message: truncateUtf8(String(outcome.message), MAX_ERROR_MESSAGE_BYTES),
    stack: truncateUtf8(String(outcome.stack ?? ""), MAX_ERROR_STACK_BYTES),
    maxRssKb,
  });
}

/**
 * Stdout and stderr are blocking pipes to the agent, written through output-ring.mjs: each write
 * completes in order (a handler that writes faster than the agent reads is slowed, never cut), one
 * write(2) per write while the output is light and runs of writes at once in a burst. Everything
 * written is in the pipes before the end mark and before the process exits (Node runs the `exit`
 * listeners before it prints an uncaught exception, so that comes after the handler's output too).
 */
routeStream(process.stdout, 1);
routeStream(process.stderr, 2);
process.on("exit", closeOutput);

/**
 * Ends an event: its output first (anything still in the output ring), then the end mark on both
 * streams, then the outcome on the report channel.
 */
async function report(requestId, outcome) {
  // One turn of the event loop first: a signal that reached this process together with the event
  // that ended the handler (a graceful terminate's SIGTERM arriving with a child's exit) runs its
  // listeners, and their output is the event's, not lost after its end mark.
  await new Promise((resolve) => setImmediate(resolve));
  const line = reportLine(requestId, outcome);
  drainOutput();
  // Full writes, tried again on EAGAIN: a child process sharing the pipes may have made them
  // non-blocking.
  writeAllSync(1, `${END_MARK}${requestId}\n`);
  writeAllSync(2, `${END_MARK}${requestId}\n`);
  writeAllSync(3, `${line}\n`);
}

/** Message and stack of anything thrown; a getter that throws cannot break the report. */
function describe(error, prefix = "") {
  try {
    if (error instanceof Error) {
      return { message: `${prefix}${error.name}: ${error.message}`, stack: String(error.stack ?? "") };
    }
    return { message: `${prefix}${String(error)}`, stack: "" };
  } catch {
    return { message: `${prefix}an error that cannot be described`, stack: "" };
  }
}

let handler;
let loadError;
try {
  const candidates = [".js", ".mjs", ".cjs"].map((extension) => join(codeDir, `${fileName}${extension}`));
  const modulePath = candidates.find((candidate) => existsSync(candidate));
  if (!modulePath) throw new Error(`handler file ${fileName}.js not found in the code package`);
  const loaded = await import(pathToFileURL(modulePath).href);
  handler = loaded[functionName] ?? loaded.default?.[functionName];
  if (typeof handler !== "function") throw new Error(`${fileName}.${functionName} is not an exported function`);
} catch (error) {
  loadError = describe(error);
}

/**
 * The handler's `context.progress(percent, message?)`: reports how far the event has got, as a
 * `progress` report on fd 3 (bounded by boundedProgress: percent clamped to 0..100, message cut to
 * MAX_PROGRESS_MESSAGE_CHARS). A percent that is not a finite number, or a message that is not a
 * string, throws a TypeError (the handler may catch it; nothing is reported). Once the event has
 * ended (`isRunning()` false) a call does nothing. The agent coalesces the reports (PROTOCOL.md).
 */
function progressReporter(requestId, isRunning) {
  return (percent, message) => {
    const bounded = boundedProgress(percent, message);
    if (!bounded) {
      throw new TypeError(
        "context.progress(percent, message): percent must be a finite number (0 to 100) and message a string",
      );
    }
    if (!isRunning()) return;
    writeAllSync(3, `${JSON.stringify({ requestId, kind: "progress", ...bounded })}\n`);
  };
}

/** Pause between two looks at the event loop while a callback-style invocation waits for it to drain. */
const DRAIN_POLL_MS = 10;

/** The resources keeping the event loop alive, counted by type (process.getActiveResourcesInfo). */
function activeResources() {
  const counts = new Map();
  for (const type of process.getActiveResourcesInfo()) counts.set(type, (counts.get(type) ?? 0) + 1);
  return counts;
}

/**
 * Resolves once the event loop holds, of every type, no more resources than `baseline` (taken just
 * before the handler was called): the handler's timers, sockets and requests are done; what was
 * there before (this bootstrap's pipes, an earlier event's leftovers) does not count. The look runs
 * on an unref'ed timer, which the list leaves out. A loop that never drains is ended by the
 * function's timeout (the agent kills the process: a timeout, as in SCF).
 */
function loopDrained(baseline) {
  return new Promise((resolve) => {
    const look = () => {
      for (const [type, count] of activeResources()) {
        if (count > (baseline.get(type) ?? 0)) return setTimeout(look, DRAIN_POLL_MS).unref();
      }
      resolve();
    };
    setTimeout(look, DRAIN_POLL_MS).unref();
  });
}

/** The outcome of what a handler returned (its promise's value) or threw. */
async function outcomeOf(value) {
  try {
    const result = await value;
    return { kind: "returned", result: result === undefined ? null : result };
  } catch (error) {
    return { kind: "threw", ...describe(error) };
  }
}

/** Ends a callback-style invocation early (an unhandled rejection fails it); undefined when none waits. */
let settleInvocation;

/**
 * Calls the handler and answers its outcome. A handler declared with three parameters or more
 * (`handler.length >= 3`, how SCF-compatible runtimes tell the styles apart) is callback style: it
 * gets `callback(err, result)` as its third argument; `callback(err)` with any err but null or
 * undefined fails the event as a throw would, `callback(null, result)` returns result, and the first
 * call wins (later ones do nothing). With `context.callbackWaitsForEmptyEventLoop` true (the
 * default, as in SCF) the outcome waits for the event loop to drain; set false before calling back,
 * it is reported at once. If the handler returns a promise (an async handler), whichever comes
 * first, the promise settling or the callback, is the outcome: an async handler that never calls
 * back ends with its promise's value. A handler that returns no promise and never calls back ends
 * with result null once the event loop has drained (or times out if it never does). A synchronous
 * throw fails the event at once. A handler with fewer parameters is promise style: its return value
 * (awaited) is the result, without waiting for the loop.
 */
function invoke(event, context) {
  if (handler.length < 3) return outcomeOf(handler(event, context));
  return new Promise((resolve) => {
    const baseline = activeResources();
    let settled = false;
    const settle = (outcome) => {
      if (settled) return;
      settled = true;
      settleInvocation = undefined;
      resolve(outcome);
    };
    settleInvocation = settle;
    let calledBack = false;
    const callback = (error, result) => {
      if (calledBack || settled) return;
      calledBack = true;
      const outcome =
        error !== null && error !== undefined
          ? { kind: "threw", ...describe(error) }
          : { kind: "returned", result: result === undefined ? null : result };
      if (context.callbackWaitsForEmptyEventLoop === false) settle(outcome);
      else loopDrained(baseline).then(() => settle(outcome));
    };
    let returned;
    try {
      returned = handler(event, context, callback);
    } catch (error) {
      return settle({ kind: "threw", ...describe(error) });
    }
    if (typeof returned?.then === "function") {
      outcomeOf(returned).then((outcome) => {
        if (!calledBack) settle(outcome);
      });
    } else {
      loopDrained(baseline).then(() => {
        if (!calledBack) settle({ kind: "returned", result: null });
      });
    }
  });
}

async function run(command) {
  if (loadError) return report(command.requestId, { kind: "threw", ...loadError });
  // SCF's default; a callback-style handler may set it false (see invoke).
  const context = { ...command.context, callbackWaitsForEmptyEventLoop: true };
  const deadline = Date.now() + (context.time_limit_in_ms ?? 0);
  context.getRemainingTimeInMillis = () => Math.max(0, deadline - Date.now());
  let running = true;
  context.progress = progressReporter(command.requestId, () => running);
  let outcome;
  try {
    outcome = await invoke(command.event, context);
  } catch (error) {
    outcome = { kind: "threw", ...describe(error) };
  }
  running = false;
  await report(command.requestId, outcome);
}

// A rejection the handler did not await still fails the event it belongs to, as in SCF.
let currentRequestId;
process.on("unhandledRejection", (error) => {
  if (!currentRequestId) return;
  // A callback-style invocation still waiting ends with it (its run reports it once).
  if (settleInvocation) return settleInvocation({ kind: "threw", ...describe(error) });
  // A report that cannot be written leaves the process unusable: it dies, as a sync throw would.
  report(currentRequestId, { kind: "threw", ...describe(error) }).catch((failure) =>
    process.nextTick(() => {
      throw failure;
    }),
  );
});

for await (const line of createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY })) {
  if (!line.trim()) continue;
  const command = JSON.parse(line);
  currentRequestId = command.requestId;
  writeAllSync(3, `${JSON.stringify({ requestId: command.requestId, kind: "received" })}\n`);
  await run(command);
  currentRequestId = undefined;
}
