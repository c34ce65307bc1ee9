// Runs a Node.js handler for many events: `node bootstrap-node.mjs CODE_DIR file.function`, one
// event at a time, speaking the bootstrap protocol of PROTOCOL.md (events on stdin, reports on fd 3,
// the end mark on stdout and stderr).
import { existsSync, writeSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { MAX_ERROR_MESSAGE_BYTES, MAX_ERROR_STACK_BYTES, MAX_RESULT_BYTES, truncateUtf8 } from "./limits.mjs";

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
 * Stdout and stderr are pipes to the agent. Node writes to a pipe asynchronously once the pipe is
 * full, queueing the rest: a burst of console.log right before the handler returns could then be
 * overtaken by the end mark (written synchronously) or lost by process.exit(). Blocking pipes make
 * every write complete in order before the next statement (a handler that writes faster than the
 * agent reads is slowed, never cut).
 */
for (const stream of [process.stdout, process.stderr]) stream._handle?.setBlocking?.(true);

/**
 * Resolves once a stdio stream has handed everything queued so far to its pipe: at once when the
 * pipe is blocking, else when an empty write queued behind the rest completes.
 */
function flushed(stream) {
  if (stream.writableLength === 0 || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => stream.write("", () => resolve()));
}

/**
 * Ends an event: its output first (anything still queued on stdout and stderr), then the end mark
 * on both streams, then the outcome on the report channel.
 */
async function report(requestId, outcome) {
  // One turn of the event loop first: a signal that reached this process together with the event
  // that ended the handler (a graceful terminate's SIGTERM arriving with a child's exit) runs its
  // listeners, and their output is the event's, not lost after its end mark.
  await new Promise((resolve) => setImmediate(resolve));
  const line = reportLine(requestId, outcome);
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  writeSync(1, `${END_MARK}${requestId}\n`);
  writeSync(2, `${END_MARK}${requestId}\n`);
  writeSync(3, `${line}\n`);
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

async function run(command) {
  if (loadError) return report(command.requestId, { kind: "threw", ...loadError });
  const context = { ...command.context, callbackWaitsForEmptyEventLoop: false };
  const deadline = Date.now() + (context.time_limit_in_ms ?? 0);
  context.getRemainingTimeInMillis = () => Math.max(0, deadline - Date.now());
  let outcome;
  try {
    const result = await handler(command.event, context);
    outcome = { kind: "returned", result: result === undefined ? null : result };
  } catch (error) {
    outcome = { kind: "threw", ...describe(error) };
  }
  await report(command.requestId, outcome);
}

// A rejection the handler did not await still fails the event it belongs to, as in SCF.
let currentRequestId;
process.on("unhandledRejection", (error) => {
  if (!currentRequestId) return;
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
  writeSync(3, `${JSON.stringify({ requestId: command.requestId, kind: "received" })}\n`);
  await run(command);
  currentRequestId = undefined;
}
