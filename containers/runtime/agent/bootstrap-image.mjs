// An image function (SCF's "image deployment", runtime CustomImage):
// `node bootstrap-image.mjs WORKING_DIR PORT PORT_WAIT_MS PROGRAM [ARGS...]`. Starts the image's entry
// (the command the agent gives: ImageConfig Command + Args, else the image's ENTRYPOINT with Args or
// CMD) on the first event and keeps it running; POSTs each event to the entry's HTTP server on
// 127.0.0.1:PORT (9000; `/event-invoke`, SCF's X-Scf-* headers) and takes the answer as the event's
// outcome. To the agent
// it is a bootstrap like the others (PROTOCOL.md §2 and §4); what it shares with the Custom Runtime's
// shim (bootstrap-custom.mjs) is in shim.mjs: the entry runs as this process's (unprivileged) user,
// in its process group, with this process's stdout and stderr (its output reaches the event's log
// live) and /dev/null as fd 3; this process ignores SIGTERM (the entry decides); when the entry ends
// while an event is its own, this process ends the same way (exited 439, sigterm, oom 434 hold).
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { createInterface } from "node:readline";
import { MAX_ERROR_MESSAGE_BYTES, MAX_RESULT_BYTES, truncateUtf8 } from "./limits.mjs";
import { resultOfBody } from "./runtime-api.mjs";
import { endInvocation, killGroup, mirrorExit, refuseInvocation, reportReceived, spawnUserProgram } from "./shim.mjs";

const [workingDir, portArgument, waitArgument, ...command] = process.argv.slice(2);

/** Where the entry's server listens: SCF's port 9000 (the agent's runtimes.mjs says; another in tests). */
const IMAGE_PORT = Number(portArgument) || 9000;
/** The address the events are POSTed to (loopback: the server listens on 0.0.0.0:9000 or *:9000). */
const IMAGE_HOST = "127.0.0.1";
/** The path of an event function's invocation (SCF's). */
const EVENT_PATH = "/event-invoke";
/** How long an event waits for the entry to listen on the port: the contract's IMAGE_PORT_WAIT_MS (SCF's health-check window, 30 s). */
const IMAGE_PORT_WAIT_MS = Number(waitArgument) || 30_000;
/** How often the port is tried while the entry starts. */
const PORT_POLL_MS = 50;
/** SCF's own words when the server does not listen in time. */
const NOT_LISTENING = `The request timed out in ${IMAGE_PORT_WAIT_MS}ms.Please confirm your http server have enabled listening on port ${IMAGE_PORT}.`;
/** After the entry exits, how long the POST in flight may take to end before this process mirrors the exit. */
const EXIT_SETTLE_MS = 1_000;
/**
 * After the POST failed without an answer (the connection reset), how long the entry has to be seen
 * exiting (then its exit decides, 439) before the event fails with the lost connection instead.
 */
const LOST_ANSWER_SETTLE_MS = 1_000;

/** Why every event fails when there is nothing to start. */
const NO_COMMAND = "the image has no ENTRYPOINT or CMD and the function no ImageConfig Command: nothing to start";

// The entry decides what SIGTERM means; this process outlives it (see the header).
process.on("SIGTERM", () => {});

/** The invocation in progress, or the last one (ended): `{requestId, event, context, received, ended, offered}`. */
let current;
/** Why no event can run (no command to start), or undefined. */
let problem = command.length === 0 || !command[0] ? NO_COMMAND : undefined;
/** The running entry: `{ process, listening }`, or undefined (not started yet, or exited between events). */
let entry;
/** Events offered so far: each invocation's `offered` is its number. */
let offered = 0;
/** While an exited entry's POST in flight ends (see onEntryExit): no entry is started. */
let settling = false;
/** POSTs in flight (at most one: events run one at a time). */
let inFlight = 0;

/** Starts the entry (on the first event, and again for an event after it exited between events). */
function startEntry() {
  /** The events offered before this entry started (itself included): it had its chance at them. */
  const offeredBefore = offered;
  let program;
  try {
    program = spawnUserProgram(command[0], command.slice(1), workingDir || "/");
  } catch (error) {
    failToStart(error);
    return;
  }
  const started = { process: program, listening: false };
  entry = started;
  program.on("error", (error) => {
    if (entry !== started) return;
    entry = undefined;
    failToStart(error);
  });
  program.on("exit", (code, signal) => {
    if (entry !== started) return;
    entry = undefined;
    onEntryExit(code, signal, offeredBefore);
  });
}

/** The entry could not be started (no such program, not executable, wrong format): every event fails so. */
function failToStart(error) {
  problem = `the image's entry ${JSON.stringify(command[0]).slice(0, 256)} could not be started (${error.code ?? error.message}): check the image's ENTRYPOINT/CMD or the function's ImageConfig Command`;
  if (current && !current.ended) refuseInvocation(current, problem);
}

/**
 * The entry ended. Once the POST in flight has ended (at most EXIT_SETTLE_MS), what it leaves
 * decides: an event it was sent and did not answer, or one it was started for, or any event it left
 * to a signal (a graceful terminate's SIGTERM while it started), ends with it: this process ends the
 * same way, so the agent sees the entry's exit (439), its SIGTERM or the kernel's SIGKILL (oom).
 * Otherwise (it answered its event, or the next event came while it was exiting) this process
 * stays, and the entry is started again when an event waits.
 */
function onEntryExit(code, signal, offeredBefore) {
  settling = true;
  const settle = Date.now() + EXIT_SETTLE_MS;
  const finish = () => {
    if (inFlight > 0 && Date.now() < settle) return setTimeout(finish, 10);
    settling = false;
    const pending = current && !current.ended ? current : undefined;
    if (pending && (pending.received || signal || pending.offered <= offeredBefore)) return mirrorExit(code, signal);
    if (pending) run(pending);
  };
  finish();
}

/** Resolves true once something accepts connections on the port, false when the entry is gone or the wait is over. */
function waitForPort(started, deadline) {
  return new Promise((resolve) => {
    const attempt = () => {
      if (entry !== started) return resolve(false);
      const socket = connect({ host: IMAGE_HOST, port: IMAGE_PORT });
      socket.once("connect", () => {
        socket.destroy();
        resolve(entry === started);
      });
      socket.once("error", () => {
        socket.destroy();
        if (Date.now() + PORT_POLL_MS > deadline) return resolve(false);
        setTimeout(attempt, PORT_POLL_MS);
      });
    };
    attempt();
  });
}

/** A header value as Node sends it: printable ASCII as is, anything else percent-encoded. */
function headerValue(value) {
  const text = String(value ?? "");
  return /^[\x20-\x7e]*$/.test(text) ? text : encodeURIComponent(text);
}

/** SCF's headers of an image function's invocation (scf-reference.md §8.2; no credentials: none are issued). */
function scfHeaders(invocation, body) {
  const context = invocation.context ?? {};
  const headers = {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    "x-scf-request-id": headerValue(invocation.requestId),
    "x-scf-memory": headerValue(context.memory_limit_in_mb ?? 0),
    "x-scf-timeout": headerValue(context.time_limit_in_ms ?? 0),
    "x-scf-version": headerValue(context.function_version),
    "x-scf-name": headerValue(context.function_name),
    "x-scf-namespace": headerValue(context.namespace),
    "x-scf-region": headerValue(context.tencentcloud_region),
    "x-scf-appid": headerValue(context.tencentcloud_appid),
    "x-scf-uin": headerValue(context.tencentcloud_uin),
  };
  // Not sent: X-Scf-Trigger-Src (the invoke type does not reach the agent yet).
  return headers;
}

/**
 * The outcome of the server's answer: a 2xx body is the result (its JSON value when it is JSON,
 * else its text), at most MAX_RESULT_BYTES; any other status fails the event with the status and
 * the body (cut at MAX_ERROR_MESSAGE_BYTES).
 */
function outcomeOfAnswer(status, bytes, over) {
  if (status >= 200 && status < 300) {
    if (over) {
      return {
        kind: "threw",
        message: `Result too large: the image's response is over the limit of ${MAX_RESULT_BYTES} bytes`,
      };
    }
    const { result, problem: tooLarge } = resultOfBody(bytes);
    return tooLarge
      ? { kind: "threw", message: tooLarge.replace("runtime's", "image's") }
      : { kind: "returned", result };
  }
  const text = bytes.toString("utf8");
  const message = `the image's server answered HTTP ${status}${text.trim() ? `: ${text}` : ""}`;
  return { kind: "threw", message: truncateUtf8(message, MAX_ERROR_MESSAGE_BYTES) };
}

/** POSTs the event to the server; ends the invocation with its answer. */
function post(invocation) {
  const body = JSON.stringify(invocation.event ?? {});
  inFlight += 1;
  let done = false;
  const settled = () => {
    if (done) return false;
    done = true;
    inFlight -= 1;
    return true;
  };
  const request = httpRequest(
    {
      host: IMAGE_HOST,
      port: IMAGE_PORT,
      path: EVENT_PATH,
      method: "POST",
      headers: scfHeaders(invocation, body),
      agent: false,
    },
    (response) => {
      const chunks = [];
      let size = 0;
      let over = false;
      response.on("data", (chunk) => {
        if (over) return;
        if (size + chunk.length > MAX_RESULT_BYTES) {
          over = true;
          // Nothing more is read: the answer already failed the event.
          response.destroy();
          if (settled()) endInvocation(invocation, outcomeOfAnswer(response.statusCode, Buffer.alloc(0), true));
          return;
        }
        chunks.push(chunk);
        size += chunk.length;
      });
      response.on("end", () => {
        if (settled()) endInvocation(invocation, outcomeOfAnswer(response.statusCode, Buffer.concat(chunks), false));
      });
      response.on("error", (error) => lostAnswer(invocation, error, settled));
      response.on("close", () => lostAnswer(invocation, new Error("the answer was cut short"), settled));
    },
  );
  request.on("error", (error) => lostAnswer(invocation, error, settled));
  request.end(body);
}

/**
 * The connection ended without a whole answer. When the entry exits meanwhile, its exit decides
 * (see onEntryExit); else, once LOST_ANSWER_SETTLE_MS has passed, the event fails saying so.
 */
function lostAnswer(invocation, error, settled) {
  if (!settled()) return;
  const started = entry;
  setTimeout(() => {
    if (invocation.ended || entry !== started || !started) return;
    endInvocation(invocation, {
      kind: "threw",
      message: `the image's server closed the connection without an answer (${error.code ?? error.message})`,
    });
  }, LOST_ANSWER_SETTLE_MS);
}

/** Runs one event: the entry started when it is not running, the port waited for, then the POST. */
async function run(invocation) {
  if (problem) return refuseInvocation(invocation, problem);
  if (!entry && !settling) startEntry();
  const started = entry;
  if (!started) return; // could not start (refused), or settling (the exit decides)
  if (!started.listening) {
    const listening = await waitForPort(started, Date.now() + IMAGE_PORT_WAIT_MS);
    if (invocation.ended || current !== invocation) return;
    // The entry exited while it started: its exit decides (see onEntryExit).
    if (entry !== started) return;
    if (!listening) return refuseInvocation(invocation, NOT_LISTENING);
    started.listening = true;
  }
  reportReceived(invocation);
  post(invocation);
}

for await (const line of createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY })) {
  if (!line.trim()) continue;
  const message = JSON.parse(line);
  const invocation = {
    requestId: message.requestId,
    event: message.event,
    context: message.context,
    received: false,
    ended: false,
    offered: ++offered,
  };
  current = invocation;
  run(invocation);
}
// The agent closed stdin: it is done with this process (and so with the entry).
if (entry) killGroup(entry.process);
process.exit(0);
