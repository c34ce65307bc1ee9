// Runtime agent of every function container (the child of init.py, which is PID 1). It receives
// code packages and events over HTTP from its instance Durable Object only (a per-boot bearer
// token), runs each event's handler in an unprivileged child process group (Node.js or Python
// bootstrap), captures stdout/stderr line by line with timestamps under per-execution bounds and
// spools the records to an agent-only folder on disk (spool.mjs) as fast as the handler prints,
// forwards SIGTERM to the handler's group (a user's graceful terminate, or the platform stopping the
// container, told apart in the end record), and serves each execution's records (log lines, then
// one end record) as a resumable NDJSON stream. In an image container (AFP_IMAGE_MODE=1, under
// tini) it runs only that image's functions, through bootstrap-image.mjs (PROTOCOL.md §4).
//
// Its HTTP API (every request needs `authorization: Bearer <AFP_AGENT_TOKEN>`, else 401), the
// records of the stream and the protocol between the agent and the bootstraps are written down in
// PROTOCOL.md; requests and answers are the container contract's schemas (contract.gen.mjs).
// First: in an installed image agent it removes the tests' overrides from the environment before
// any other module reads them (image-config.mjs).
import "./image-config.mjs";
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import { agentTokenCheck } from "./auth.mjs";
import { waitForCgroupLimits } from "./cgroup-limits.mjs";
import { CodeStore, unpackLimitOf } from "./code-package.mjs";
import { AGENT_PORT, agentHealthSchema, IMAGE_RUNTIME, MAX_EXECUTION_SPEC_BYTES } from "./contract.gen.mjs";
import { Execution, streamRecords } from "./execution.mjs";
import { HandlerProcess } from "./handler-process.mjs";
import { HANDLER_ID, killHandlerUser } from "./handler-user.mjs";
import { json, readJson } from "./http.mjs";
import { IMAGE, IMAGE_AGENT_PROBLEM, IMAGE_MODE } from "./image-config.mjs";
import { MAX_CODE_PACKAGE_BYTES, platformStopGraceMs } from "./limits.mjs";
import { resetSpoolRoot } from "./spool.mjs";
import { checkExecutionSpec, checkSignalRequest, REQUEST_ID_PATTERN, SHA256_PATTERN } from "./validation.mjs";

/** Whether a request carries this boot's token (read, then removed from the environment). */
const isAuthorized = agentTokenCheck(process.env);
const PORT = Number(process.env.AGENT_PORT ?? AGENT_PORT);
// Packages in use are never evicted: the running execution's and the warm handler process's.
const codeStore = new CodeStore(process.env.AGENT_CODE_ROOT ?? "/var/afp/code", () =>
  [currentExecution()?.spec.codeSha256, handlerProcess?.exited ? undefined : handlerProcess?.codeSha256].filter(
    (sha256) => sha256 !== undefined,
  ),
);
/**
 * The executions' log spools (spool.mjs): a folder of the agent's own (0700, root in the image; the
 * handler's uid can neither list, read nor write it), emptied at start. One file per kept execution,
 * deleted when the execution is forgotten. Disk it needs: see PROTOCOL.md (the record stream).
 */
const SPOOL_ROOT = process.env.AGENT_SPOOL_ROOT ?? "/var/afp/spool";
resetSpoolRoot(SPOOL_ROOT);
/** How long after SIGTERM the agent waits before judging whether the user process handled it. */
const SIGNAL_VERDICT_DELAY_MS = 300;
/**
 * How long a handler may run on after the platform's SIGTERM to the container before the agent kills
 * it and ends its execution (DEFAULT_PLATFORM_STOP_GRACE_MS, 14 minutes, unless
 * AFP_PLATFORM_STOP_GRACE_MS says otherwise).
 */
const PLATFORM_STOP_GRACE_MS = platformStopGraceMs(process.env);
/** Ended executions kept for late readers; older ones are forgotten (and their spools deleted). */
const KEPT_EXECUTIONS = 8;
/** Idle time after which a kept-alive connection is closed. */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
/** Largest body of POST /executions/:id/signal (`{ "signal": "SIGTERM" }` or nothing). */
const MAX_SIGNAL_BODY_BYTES = 1024;
/** The refusal of a code package or code spec in an image container (AFP_IMAGE_MODE=1). */
const IMAGE_ONLY = "this container runs image functions only";
/** The refusal of an image spec in the runtime image. */
const CODE_ONLY = "this container runs code functions only: an image function runs in its image's container";

const startedAt = Date.now();
/** Identifies this container boot: a repossessed instance comes back with a new one. */
const bootId = randomUUID();
/** Signals this agent has received, oldest first. */
const signalsReceived = [];
/** requestId → execution; only the newest few ended executions are kept. */
const executions = new Map();
/** When the platform's SIGTERM reached the container (it is going away: no new execution starts). */
let platformStoppingAt;
/** The handler process of the container (one function per container). */
let handlerProcess;

function currentExecution() {
  for (const execution of executions.values()) if (!execution.ended) return execution;
  return undefined;
}

/**
 * Starts a checked spec; environmentError (see checkExecutionSpec) ends it at once with a clear
 * error, as does a handler process that cannot start.
 */
function startExecution(spec, environmentError) {
  const execution = new Execution(spec, SPOOL_ROOT);
  // The instance starts an execution only once it has read the previous one's end: the ended
  // executions' spools are no longer needed, and the container's disk holds one spool at a time.
  for (const old of executions.values()) if (old.ended) old.releaseSpool();
  executions.set(spec.requestId, execution);
  for (const [id, old] of executions) {
    if (executions.size <= KEPT_EXECUTIONS) break;
    if (old.ended) {
      executions.delete(id);
      old.forget();
    }
  }
  if (environmentError) {
    execution.end({ kind: "error", message: `the function's environment cannot be used: ${environmentError}` });
    return execution;
  }
  if (!handlerProcess || handlerProcess.exited || handlerProcess.key !== HandlerProcess.keyOf(spec)) {
    if (handlerProcess) {
      handlerProcess.kill();
      killHandlerUser();
    }
    try {
      // An image function runs in its image's working folder (no code package).
      const directory = spec.runtime === IMAGE_RUNTIME ? IMAGE.config.workingDir : codeStore.directory(spec.codeSha256);
      handlerProcess = new HandlerProcess(spec, directory, SPOOL_ROOT);
    } catch (error) {
      handlerProcess = undefined;
      execution.end({ kind: "error", message: `the handler process could not start: ${String(error.message)}` });
      return execution;
    }
  }
  handlerProcess.run(execution);
  return execution;
}

function signalExecution(execution) {
  const handler = execution.process;
  if (execution.ended || !handler) return false;
  if (execution.sigtermAt === undefined) execution.sigtermAt = Date.now();
  if (!handler.terminate()) return false;
  // A process without a SIGTERM listener dies at once; one still alive after the delay handled it.
  setTimeout(() => {
    if (!execution.ended) execution.signalVerdict(handler.child.signalCode !== "SIGTERM");
  }, SIGNAL_VERDICT_DELAY_MS);
  return true;
}

/**
 * The platform is stopping the container (its SIGTERM reached the agent through init.py: Cloudflare
 * on a rollout or host drain, SIGKILL 15 minutes later; locally `docker kill -s TERM`). The running
 * execution is told apart from a user's terminate: a [PLATFORM] line says so, the handler gets
 * SIGTERM forwarded (a chance to checkpoint), and however it then ends, its end record carries the
 * platform's outcome (see Execution.end). A handler still running PLATFORM_STOP_GRACE_MS later is
 * killed, so that the end record leaves the container before the container dies.
 */
function stopForPlatform(execution) {
  if (execution.ended || execution.platformStop !== undefined) return;
  const stop = { at: Date.now(), graceMs: PLATFORM_STOP_GRACE_MS, expired: false };
  execution.platformStop = stop;
  execution.platform(
    `[PLATFORM] The container is being stopped by the platform (SIGTERM): not a terminate request. SIGTERM is forwarded to the handler, which has ${Math.round(stop.graceMs / 1000)} s to save its work; the event then ends FAILED (StatusCode 503)`,
  );
  const handler = execution.process;
  // No process to signal: it has exited, and its exit ends the execution with the platform's outcome.
  if (!handler?.terminate()) return;
  setTimeout(() => {
    if (execution.ended) return;
    stop.expired = true;
    handler.kill();
  }, stop.graceMs);
}

/** The answer of GET /health, checked against the contract's agentHealthSchema. */
function health() {
  const running = currentExecution();
  return agentHealthSchema.parse({
    ok: true,
    bootId,
    pid: process.pid,
    parentPid: process.ppid,
    startedAt,
    uptimeMs: Date.now() - startedAt,
    signalsReceived,
    busy: running !== undefined,
    stopping: platformStoppingAt !== undefined,
    requestId: running?.requestId ?? null,
    handlerUid: HANDLER_ID ?? null,
    image: IMAGE?.config?.name ?? null,
  });
}

async function route(request, response) {
  const url = new URL(request.url ?? "/", "http://agent");
  const parts = url.pathname.split("/").filter(Boolean);

  if (request.method === "GET" && url.pathname === "/health") {
    if (IMAGE_AGENT_PROBLEM) return json(response, 503, { error: IMAGE_AGENT_PROBLEM });
    return json(response, 200, health());
  }

  if (parts[0] === "code" && parts.length === 2) {
    if (IMAGE_MODE) return json(response, 400, { error: `${IMAGE_ONLY}: it takes no code package` });
    if (!SHA256_PATTERN.test(parts[1]))
      return json(response, 400, { error: "code hash must be 64 lower-case hex digits" });
    if (request.method === "GET") return json(response, codeStore.has(parts[1]) ? 200 : 404, {});
    if (request.method === "PUT") {
      // Streamed to disk: a package may be up to MAX_CODE_PACKAGE_BYTES (500 MiB); it unpacks to at
      // most the Worker's limit for it (UNPACK_LIMIT_HEADER), never past MAX_UNPACKED_BYTES.
      const { status, body } = await codeStore.storeFrom(
        parts[1],
        request,
        MAX_CODE_PACKAGE_BYTES,
        unpackLimitOf(request),
      );
      return json(response, status, body);
    }
  }

  if (parts[0] === "executions" && parts.length === 1 && request.method === "POST") {
    const checked = checkExecutionSpec(await readJson(request, MAX_EXECUTION_SPEC_BYTES));
    if (checked.error) return json(response, 400, { error: checked.error });
    const { spec, environmentError } = checked;
    const imageSpec = spec.runtime === IMAGE_RUNTIME;
    if (IMAGE_MODE && !imageSpec) return json(response, 400, { error: IMAGE_ONLY });
    if (!IMAGE_MODE && imageSpec) return json(response, 400, { error: CODE_ONLY });
    if (IMAGE_AGENT_PROBLEM) return json(response, 500, { error: IMAGE_AGENT_PROBLEM });
    if (imageSpec && IMAGE.problem)
      return json(response, 500, { error: `this image container is broken: ${IMAGE.problem}` });
    if (imageSpec && spec.image.name !== IMAGE.config.name) {
      return json(response, 400, {
        error: `this container runs image ${JSON.stringify(IMAGE.config.name)}, not ${JSON.stringify(spec.image.name)}`,
      });
    }
    const existing = executions.get(spec.requestId);
    if (existing) return json(response, 200, { requestId: existing.requestId, started: false });
    const running = currentExecution();
    if (running) return json(response, 409, { error: "busy", requestId: running.requestId });
    if (platformStoppingAt !== undefined) {
      return json(response, 503, {
        error: "the container is being stopped by the platform: start the event elsewhere",
      });
    }
    if (!imageSpec && !codeStore.has(spec.codeSha256)) return json(response, 412, { error: "code not cached" });
    if (!(await waitForCgroupLimits())) {
      return json(response, 503, { error: "the container's memory and process caps were not applied: not running it" });
    }
    // Checked again: another request may have started an execution during the wait.
    const raced = executions.get(spec.requestId) ?? currentExecution();
    if (raced?.requestId === spec.requestId) return json(response, 200, { requestId: raced.requestId, started: false });
    if (raced) return json(response, 409, { error: "busy", requestId: raced.requestId });
    const execution = startExecution(spec, environmentError);
    // ?stream=1: answer with the record stream itself (saves the caller a round trip).
    if (url.searchParams.get("stream") === "1") return streamRecords(request, response, execution, 0, 201);
    return json(response, 201, { requestId: spec.requestId, started: true });
  }

  if (parts[0] === "executions" && parts.length >= 2) {
    let requestId;
    try {
      requestId = decodeURIComponent(parts[1]);
    } catch {
      return json(response, 400, { error: "requestId is not valid percent-encoding" });
    }
    if (!REQUEST_ID_PATTERN.test(requestId)) return json(response, 400, { error: "requestId is not valid" });
    const execution = executions.get(requestId);
    if (!execution) return json(response, 404, { error: "unknown execution" });
    if (parts.length === 2 && request.method === "GET") {
      return json(response, 200, {
        requestId: execution.requestId,
        ended: execution.ended,
        lastSeq: execution.nextSeq - 1,
        end: execution.endRecord ?? null,
      });
    }
    if (parts.length === 3 && parts[2] === "stream" && request.method === "GET") {
      const after = Number(url.searchParams.get("after") ?? 0);
      return streamRecords(request, response, execution, Number.isSafeInteger(after) && after >= 0 ? after : 0);
    }
    if (parts.length === 3 && parts[2] === "signal" && request.method === "POST") {
      const checked = checkSignalRequest(await readJson(request, MAX_SIGNAL_BODY_BYTES, {}));
      if (checked.error) return json(response, 400, { error: checked.error });
      return json(response, 200, { delivered: signalExecution(execution) });
    }
  }

  return json(response, 404, { error: "not found" });
}

const server = createServer((request, response) => {
  if (!isAuthorized(request.headers.authorization)) {
    response.setHeader("connection", "close");
    return json(response, 401, { error: "unauthorized" });
  }
  route(request, response).catch((error) => {
    const status = Number.isInteger(error.status) ? error.status : 500;
    if (!response.headersSent) json(response, status, { error: String(error.message ?? error) });
    else response.end();
  });
});
server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
server.listen(PORT, "0.0.0.0");

// Signals to the container (forwarded by init.py) are recorded and never stop the agent (the
// platform destroys the container). SIGTERM to the container is the platform stopping it, never a
// user's terminate (that one comes as POST /executions/:id/signal): see stopForPlatform.
for (const signal of ["SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2"]) {
  process.on(signal, () => {
    signalsReceived.push({ signal, at: Date.now() });
    if (signal === "SIGTERM") {
      platformStoppingAt ??= Date.now();
      const running = currentExecution();
      if (running) stopForPlatform(running);
    }
  });
}
