// Runtime agent: PID 1 of every function container. It receives code packages and events over
// HTTP from the instance Durable Object, runs each event's handler in a child process (Node.js or
// Python bootstrap), captures stdout/stderr line by line with timestamps, forwards SIGTERM to the
// child, and serves each execution's records (log lines, then one end record) as a resumable
// NDJSON stream.
//
// Routes:
//   GET  /health                        liveness, signals received, the execution in progress
//   GET  /code/:sha256                  200 when the package is cached, 404 otherwise
//   PUT  /code/:sha256                  body: the zip; verified against the hash, then extracted
//   POST /executions                    start one execution (idempotent by requestId)
//   GET  /executions/:id                summary of one execution
//   GET  /executions/:id/stream?after=N records with seq > N, live until the end record
//   POST /executions/:id/signal         forward SIGTERM to the user process
import { spawn } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";

const PORT = Number(process.env.AGENT_PORT ?? 8080);
const CODE_ROOT = process.env.AGENT_CODE_ROOT ?? "/var/afp/code";
const BOOTSTRAP_DIR = new URL(".", import.meta.url).pathname;
const MAX_LINE_BYTES = 64 * 1024;
const MAX_BUFFERED_RECORDS = 20_000;
/** How long after SIGTERM the agent waits before judging whether the user process handled it. */
const SIGNAL_VERDICT_DELAY_MS = 300;

const startedAt = Date.now();
/** Identifies this container boot: a repossessed instance comes back with a new one. */
const bootId = randomUUID();
/** Signals this agent (PID 1) has received, oldest first. */
const signalsReceived = [];
/** requestId → execution; only the newest few ended executions are kept. */
const executions = new Map();

function json(response, status, body) {
  response.writeHead(status, { "content-type": "application/json" });
  response.end(JSON.stringify(body));
}

async function readBody(request, limitBytes) {
  const chunks = [];
  let size = 0;
  for await (const chunk of request) {
    size += chunk.length;
    if (size > limitBytes) throw Object.assign(new Error("body too large"), { status: 413 });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function currentExecution() {
  for (const execution of executions.values()) if (!execution.ended) return execution;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Code packages, cached by sha256 for the life of the container.

function codeDirectory(sha256) {
  return join(CODE_ROOT, sha256);
}

async function storeCode(sha256, zip) {
  const actual = createHash("sha256").update(zip).digest("hex");
  if (actual !== sha256) return { status: 400, body: { error: "sha256 mismatch", actual } };
  const target = codeDirectory(sha256);
  if (existsSync(target)) return { status: 200, body: { cached: true } };
  const staging = `${target}.staging-${process.pid}-${Date.now()}`;
  mkdirSync(staging, { recursive: true });
  const zipPath = `${staging}.zip`;
  writeFileSync(zipPath, zip);
  const code = await new Promise((resolve) => {
    const unzip = spawn("python3", ["-m", "zipfile", "-e", zipPath, staging], { stdio: "ignore" });
    unzip.on("exit", (exitCode) => resolve(exitCode ?? 1));
    unzip.on("error", () => resolve(1));
  });
  rmSync(zipPath, { force: true });
  if (code !== 0) {
    rmSync(staging, { recursive: true, force: true });
    return { status: 400, body: { error: "code package is not a valid zip" } };
  }
  renameSync(staging, target);
  return { status: 201, body: { cached: false } };
}

// ---------------------------------------------------------------------------------------------
// Executions.

class Execution {
  constructor(spec) {
    this.spec = spec;
    this.requestId = spec.requestId;
    this.records = [];
    this.nextSeq = 1;
    this.firstBufferedSeq = 1;
    this.ended = false;
    this.endRecord = undefined;
    this.waiters = new Set();
    this.startedAt = Date.now();
    this.sigtermAt = undefined;
    this.report = undefined;
    this.stderrTail = "";
  }

  push(record) {
    const full = { seq: this.nextSeq++, ts: Date.now(), ...record };
    this.records.push(full);
    if (this.records.length > MAX_BUFFERED_RECORDS) {
      this.records.shift();
      this.firstBufferedSeq = this.records[0].seq;
    }
    if (full.type === "end") {
      this.ended = true;
      this.endRecord = full;
    }
    for (const wake of this.waiters) wake();
    return full;
  }

  log(stream, line) {
    const text = line.length > MAX_LINE_BYTES ? `${line.slice(0, MAX_LINE_BYTES)}…[truncated]` : line;
    this.push({ type: "log", stream, line: text });
  }

  platform(line) {
    this.log("platform", line);
  }
}

function captureLines(execution, stream, readable) {
  let pending = "";
  readable.setEncoding("utf8");
  readable.on("data", (chunk) => {
    pending += chunk;
    let newline = pending.indexOf("\n");
    while (newline >= 0) {
      execution.log(stream, pending.slice(0, newline));
      pending = pending.slice(newline + 1);
      newline = pending.indexOf("\n");
    }
    if (pending.length > MAX_LINE_BYTES) {
      execution.log(stream, pending);
      pending = "";
    }
    if (stream === "stderr") execution.stderrTail = (execution.stderrTail + chunk).slice(-4096);
  });
  return new Promise((resolve) =>
    readable.on("end", () => {
      if (pending.length > 0) execution.log(stream, pending);
      resolve();
    }),
  );
}

function bootstrapCommand(spec) {
  const codeDir = codeDirectory(spec.codeSha256);
  if (spec.runtime.startsWith("Nodejs")) {
    const args = [];
    if (spec.memoryLimitMb) args.push(`--max-old-space-size=${spec.memoryLimitMb}`);
    return ["node", [...args, join(BOOTSTRAP_DIR, "bootstrap-node.mjs"), codeDir, spec.handler]];
  }
  if (spec.runtime.startsWith("Python")) {
    return ["python3", ["-u", join(BOOTSTRAP_DIR, "bootstrap.py"), codeDir, spec.handler]];
  }
  return undefined;
}

function startExecution(spec) {
  const execution = new Execution(spec);
  executions.set(spec.requestId, execution);
  for (const [id, old] of executions) {
    if (executions.size <= 8) break;
    if (old.ended) executions.delete(id);
  }
  const command = bootstrapCommand(spec);
  if (!command) {
    execution.push({ type: "end", outcome: { kind: "error", message: `unknown runtime ${spec.runtime}` } });
    return execution;
  }
  const [program, args] = command;
  const child = spawn(program, args, {
    cwd: codeDirectory(spec.codeSha256),
    env: {
      PATH: process.env.PATH,
      HOME: "/tmp",
      LANG: "C.UTF-8",
      ...spec.environment,
      AFP_CONTEXT: JSON.stringify(spec.context),
      AFP_MEMORY_LIMIT_MB: String(spec.memoryLimitMb ?? 0),
    },
    stdio: ["pipe", "pipe", "pipe", "pipe"],
  });
  execution.child = child;
  child.stdin.on("error", () => {});
  child.stdin.end(JSON.stringify(spec.event ?? {}));
  let report = "";
  child.stdio[3].setEncoding("utf8");
  child.stdio[3].on("data", (chunk) => {
    report += chunk;
  });
  const outputs = Promise.all([
    captureLines(execution, "stdout", child.stdout),
    captureLines(execution, "stderr", child.stderr),
    new Promise((resolve) => child.stdio[3].on("end", resolve)),
  ]);
  const deadline = spec.timeoutMs ? setTimeout(() => child.kill("SIGKILL"), spec.timeoutMs) : undefined;
  child.on("error", (error) => {
    execution.push({ type: "end", outcome: { kind: "error", message: error.message } });
  });
  child.on("exit", async (code, signal) => {
    if (deadline) clearTimeout(deadline);
    await outputs;
    if (execution.ended) return;
    const durationMs = Date.now() - execution.startedAt;
    let parsed;
    try {
      parsed = report.trim() ? JSON.parse(report.trim().split("\n").pop()) : undefined;
    } catch {
      parsed = undefined;
    }
    const timedOut = spec.timeoutMs !== undefined && durationMs >= spec.timeoutMs && signal === "SIGKILL";
    const outOfMemory = parsed?.kind === "oom" || /heap out of memory|Allocation failed/i.test(execution.stderrTail);
    let outcome;
    if (timedOut) outcome = { kind: "timeout" };
    else if (outOfMemory) outcome = { kind: "oom", message: parsed?.message ?? "memory limit exceeded" };
    else if (execution.sigtermAt !== undefined && signal === "SIGTERM") outcome = { kind: "sigterm" };
    else if (parsed?.kind === "returned" && code === 0) outcome = { kind: "returned", result: parsed.result };
    else if (parsed?.kind === "threw") outcome = { kind: "threw", message: parsed.message, stack: parsed.stack };
    else outcome = { kind: "exited", code, signal };
    execution.push({ type: "end", outcome, durationMs, maxRssKb: parsed?.maxRssKb, exitCode: code, signal });
  });
  return execution;
}

function signalExecution(execution) {
  if (execution.ended || !execution.child) return false;
  if (execution.sigtermAt === undefined) execution.sigtermAt = Date.now();
  execution.child.kill("SIGTERM");
  setTimeout(() => {
    if (execution.child.signalCode === "SIGTERM") execution.platform("[PLATFORM] Signal reception failed");
    else execution.platform("[PLATFORM] Signal received successfully");
  }, SIGNAL_VERDICT_DELAY_MS);
  return true;
}

async function streamRecords(request, response, execution, after) {
  response.writeHead(200, { "content-type": "application/x-ndjson", "cache-control": "no-store" });
  let cursor = after;
  let closed = false;
  request.on("close", () => {
    closed = true;
  });
  if (cursor < execution.firstBufferedSeq - 1) {
    response.write(`${JSON.stringify({ type: "gap", from: cursor + 1, to: execution.firstBufferedSeq - 1 })}\n`);
    cursor = execution.firstBufferedSeq - 1;
  }
  while (!closed) {
    const fresh = execution.records.filter((record) => record.seq > cursor);
    for (const record of fresh) {
      response.write(`${JSON.stringify(record)}\n`);
      cursor = record.seq;
    }
    if (execution.ended && cursor >= execution.endRecord.seq) break;
    await new Promise((resolve) => {
      const wake = () => {
        execution.waiters.delete(wake);
        clearTimeout(timer);
        resolve();
      };
      // A periodic heartbeat keeps idle connections open through proxies.
      const timer = setTimeout(() => {
        if (!closed) response.write(`${JSON.stringify({ type: "heartbeat", ts: Date.now() })}\n`);
        wake();
      }, 15_000);
      execution.waiters.add(wake);
    });
  }
  response.end();
}

// ---------------------------------------------------------------------------------------------
// HTTP.

async function route(request, response) {
  const url = new URL(request.url ?? "/", "http://agent");
  const parts = url.pathname.split("/").filter(Boolean);

  if (request.method === "GET" && url.pathname === "/health") {
    const running = currentExecution();
    return json(response, 200, {
      ok: true,
      bootId,
      pid: process.pid,
      startedAt,
      uptimeMs: Date.now() - startedAt,
      signalsReceived,
      busy: running !== undefined,
      requestId: running?.requestId ?? null,
    });
  }

  if (parts[0] === "code" && parts.length === 2 && /^[0-9a-f]{64}$/.test(parts[1])) {
    if (request.method === "GET") return json(response, existsSync(codeDirectory(parts[1])) ? 200 : 404, {});
    if (request.method === "PUT") {
      const zip = await readBody(request, 256 * 1024 * 1024);
      const { status, body } = await storeCode(parts[1], zip);
      return json(response, status, body);
    }
  }

  if (parts[0] === "executions" && parts.length === 1 && request.method === "POST") {
    const spec = JSON.parse((await readBody(request, 8 * 1024 * 1024)).toString("utf8"));
    if (typeof spec.requestId !== "string" || typeof spec.codeSha256 !== "string") {
      return json(response, 400, { error: "requestId and codeSha256 are required" });
    }
    const existing = executions.get(spec.requestId);
    if (existing) return json(response, 200, { requestId: existing.requestId, started: false });
    const running = currentExecution();
    if (running) return json(response, 409, { error: "busy", requestId: running.requestId });
    if (!existsSync(codeDirectory(spec.codeSha256))) return json(response, 412, { error: "code not cached" });
    startExecution(spec);
    return json(response, 201, { requestId: spec.requestId, started: true });
  }

  if (parts[0] === "executions" && parts.length >= 2) {
    const execution = executions.get(decodeURIComponent(parts[1]));
    if (!execution) return json(response, 404, { error: "unknown execution" });
    if (parts.length === 2 && request.method === "GET") {
      return json(response, 200, {
        requestId: execution.requestId,
        ended: execution.ended,
        lastSeq: execution.nextSeq - 1,
        end: execution.endRecord ?? null,
      });
    }
    if (parts[2] === "stream" && request.method === "GET") {
      const after = Number(url.searchParams.get("after") ?? 0);
      return streamRecords(request, response, execution, Number.isFinite(after) ? after : 0);
    }
    if (parts[2] === "signal" && request.method === "POST") {
      return json(response, 200, { delivered: signalExecution(execution) });
    }
  }

  return json(response, 404, { error: "not found" });
}

const server = createServer((request, response) => {
  route(request, response).catch((error) => {
    if (!response.headersSent) json(response, error.status ?? 500, { error: String(error.message ?? error) });
    else response.end();
  });
});
server.keepAliveTimeout = 65_000;
server.listen(PORT, "0.0.0.0");

// As PID 1 the agent ignores signals it does not handle; SIGTERM is recorded and forwarded to the
// user process, never used to stop the agent (the platform destroys the container to stop it).
for (const signal of ["SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2"]) {
  process.on(signal, () => {
    signalsReceived.push({ signal, at: Date.now() });
    if (signal === "SIGTERM") {
      const running = currentExecution();
      if (running) signalExecution(running);
    }
  });
}
