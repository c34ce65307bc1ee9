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
//   POST /executions[?stream=1]         start one execution (idempotent by requestId); with
//                                       stream=1 the answer is the record stream below
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
/** Longest log line kept; the rest of a longer line is dropped and the line marked. */
const MAX_LINE_CHARS = 64 * 1024;
/** Log text kept per execution; past it, lines are counted but not kept (one marker says so). */
const MAX_LOG_CHARS_PER_EXECUTION = 8 * 1024 * 1024;
/** Records kept in memory for resuming a relay; the oldest go first. */
const MAX_BUFFERED_CHARS = 16 * 1024 * 1024;
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
    this.bufferedChars = 0;
    this.loggedChars = 0;
    this.droppedLines = 0;
    this.droppedChars = 0;
    this.ended = false;
    this.endRecord = undefined;
    this.waiters = new Set();
    this.startedAt = Date.now();
    this.sigtermAt = undefined;
    this.process = undefined;
  }

  push(record) {
    const full = { seq: this.nextSeq++, ts: Date.now(), ...record };
    this.records.push(full);
    this.bufferedChars += full.line?.length ?? 0;
    while (this.bufferedChars > MAX_BUFFERED_CHARS && this.records.length > 1) {
      const dropped = this.records.shift();
      this.bufferedChars -= dropped.line?.length ?? 0;
      this.firstBufferedSeq = this.records[0].seq;
    }
    if (full.type === "end") {
      this.ended = true;
      this.endRecord = full;
    }
    for (const wake of this.waiters) wake();
    return full;
  }

  /** One captured line: NUL becomes U+FFFD; over-long lines and output past the limit are bounded. */
  log(stream, line) {
    if (stream !== "platform" && this.loggedChars >= MAX_LOG_CHARS_PER_EXECUTION) {
      this.droppedLines += 1;
      this.droppedChars += line.length;
      return;
    }
    let text = line.includes("\u0000") ? line.replaceAll("\u0000", "\uFFFD") : line;
    if (text.length > MAX_LINE_CHARS) text = `${text.slice(0, MAX_LINE_CHARS)}…[line truncated]`;
    this.loggedChars += text.length;
    this.push({ type: "log", stream, line: text });
    if (stream !== "platform" && this.loggedChars >= MAX_LOG_CHARS_PER_EXECUTION) {
      this.platform(
        `[PLATFORM] Log output reached ${MAX_LOG_CHARS_PER_EXECUTION} characters: further lines are not kept`,
      );
    }
  }

  platform(line) {
    this.log("platform", line);
  }

  /** The platform's verdict on a SIGTERM, logged once, always before the end record. */
  signalVerdict(handled) {
    if (this.sigtermAt === undefined || this.verdictLogged) return;
    this.verdictLogged = true;
    this.platform(handled ? "[PLATFORM] Signal received successfully" : "[PLATFORM] Signal reception failed");
  }

  end(outcome, maxRssKb, exitCode, signal) {
    if (this.ended) return;
    this.signalVerdict(outcome.kind !== "sigterm");
    if (this.droppedLines > 0) {
      this.platform(
        `[PLATFORM] ${this.droppedLines} lines (${this.droppedChars} characters) over the log limit were dropped`,
      );
    }
    this.push({ type: "end", outcome, durationMs: Date.now() - this.startedAt, maxRssKb, exitCode, signal });
  }
}

/** Marks the end of one event's output on a stream (written by the bootstraps). */
const END_MARK = "\u0000AFP_END:";

/**
 * A long-lived handler process for one function configuration (runtime, code, handler, memory,
 * environment): it loads the code once and runs events one at a time, like a warm SCF instance.
 * Its output between two events belongs to the event in progress.
 */
class HandlerProcess {
  constructor(spec) {
    this.key = HandlerProcess.keyOf(spec);
    this.current = undefined;
    this.exited = false;
    this.stderrTail = "";
    this.pendingLines = { stdout: "", stderr: "" };
    const [program, args] = bootstrapCommand(spec);
    this.child = spawn(program, args, {
      cwd: codeDirectory(spec.codeSha256),
      env: {
        PATH: process.env.PATH,
        HOME: "/tmp",
        LANG: "C.UTF-8",
        ...spec.environment,
        AFP_MEMORY_LIMIT_MB: String(spec.memoryLimitMb ?? 0),
      },
      stdio: ["pipe", "pipe", "pipe", "pipe"],
    });
    this.child.stdin.on("error", () => {});
    this.capture("stdout", this.child.stdout);
    this.capture("stderr", this.child.stderr);
    let reports = "";
    this.child.stdio[3].setEncoding("utf8");
    this.child.stdio[3].on("data", (chunk) => {
      reports += chunk;
      let newline = reports.indexOf("\n");
      while (newline >= 0) {
        const line = reports.slice(0, newline);
        reports = reports.slice(newline + 1);
        newline = reports.indexOf("\n");
        try {
          this.onReport(JSON.parse(line));
        } catch {
          // not a report line
        }
      }
    });
    this.child.on("error", (error) => this.onExit(null, null, error));
    this.child.on("exit", (code, signal) => this.onExit(code, signal));
  }

  static keyOf(spec) {
    return JSON.stringify([spec.runtime, spec.codeSha256, spec.handler, spec.memoryLimitMb, spec.environment]);
  }

  /** Runs one event in this process. */
  run(execution) {
    this.current = { execution, report: undefined, marks: new Set() };
    execution.process = this;
    const spec = execution.spec;
    this.child.stdin.write(
      `${JSON.stringify({ requestId: spec.requestId, event: spec.event ?? {}, context: spec.context ?? {} })}\n`,
    );
    if (spec.timeoutMs) {
      this.current.timer = setTimeout(() => {
        if (this.current?.execution === execution) {
          this.current.timedOut = true;
          this.child.kill("SIGKILL");
        }
      }, spec.timeoutMs);
    }
  }

  capture(stream, readable) {
    // Invalid UTF-8 becomes U+FFFD here.
    readable.setEncoding("utf8");
    let overflow = false;
    readable.on("data", (chunk) => {
      if (stream === "stderr") this.stderrTail = (this.stderrTail + chunk).slice(-4096);
      // Linear in the chunk: lines are sliced out by position, the remainder is kept once.
      const text = this.pendingLines[stream] + chunk;
      let start = 0;
      let newline = text.indexOf("\n", start);
      while (newline >= 0) {
        if (overflow)
          overflow = false; // the end of an over-long line: dropped (its kept part is marked)
        else this.onLine(stream, text.slice(start, newline));
        start = newline + 1;
        newline = text.indexOf("\n", start);
      }
      let rest = text.slice(start);
      if (overflow) {
        rest = "";
      } else if (rest.length > MAX_LINE_CHARS) {
        this.onLine(stream, rest);
        overflow = true;
        rest = "";
      }
      this.pendingLines[stream] = rest;
    });
  }

  onLine(stream, line) {
    const mark = line.indexOf(END_MARK);
    if (mark >= 0) {
      if (mark > 0) this.current?.execution.log(stream, line.slice(0, mark));
      if (this.current && line.slice(mark + END_MARK.length) === this.current.execution.requestId) {
        this.current.marks.add(stream);
        this.maybeEnd();
      }
      return;
    }
    // Output while no event runs (a handler's leftover timers) has no event to belong to.
    this.current?.execution.log(stream, line);
  }

  onReport(report) {
    if (!this.current || report.requestId !== this.current.execution.requestId) return;
    this.current.report = report;
    this.maybeEnd();
  }

  /** Ends the event once its outcome and the end of its output on both streams have arrived. */
  maybeEnd() {
    const current = this.current;
    if (!current?.report || current.marks.size < 2) return;
    const { execution, report } = current;
    this.finishCurrent();
    let outcome;
    if (report.kind === "returned") outcome = { kind: "returned", result: report.result };
    else if (report.kind === "oom") outcome = { kind: "oom", message: report.message };
    else outcome = { kind: "threw", message: report.message, stack: report.stack };
    execution.end(outcome, report.maxRssKb);
  }

  finishCurrent() {
    if (this.current?.timer) clearTimeout(this.current.timer);
    this.current = undefined;
  }

  onExit(code, signal, error) {
    if (this.exited) return;
    this.exited = true;
    const current = this.current;
    if (!current) return;
    this.finishCurrent();
    const execution = current.execution;
    // Let the last output of the process reach the event before its end record.
    setTimeout(() => {
      for (const stream of ["stdout", "stderr"]) {
        if (this.pendingLines[stream]) execution.log(stream, this.pendingLines[stream]);
        this.pendingLines[stream] = "";
      }
      let outcome;
      if (error) outcome = { kind: "error", message: error.message };
      else if (current.timedOut) outcome = { kind: "timeout" };
      else if (/heap out of memory|Allocation failed/i.test(this.stderrTail)) outcome = { kind: "oom" };
      else if (execution.sigtermAt !== undefined && signal === "SIGTERM") outcome = { kind: "sigterm" };
      else outcome = { kind: "exited", code, signal };
      execution.end(outcome, undefined, code, signal);
    }, 20);
  }

  kill() {
    if (!this.exited) this.child.kill("SIGKILL");
  }
}

/** The handler process of the container (one function per container). */
let handlerProcess;

function bootstrapCommand(spec) {
  const codeDir = codeDirectory(spec.codeSha256);
  if (spec.runtime.startsWith("Nodejs")) {
    const args = [];
    if (spec.memoryLimitMb) args.push(`--max-old-space-size=${spec.memoryLimitMb}`);
    return ["node", [...args, join(BOOTSTRAP_DIR, "bootstrap-node.mjs"), codeDir, spec.handler]];
  }
  return ["python3", ["-u", join(BOOTSTRAP_DIR, "bootstrap.py"), codeDir, spec.handler]];
}

function startExecution(spec) {
  const execution = new Execution(spec);
  executions.set(spec.requestId, execution);
  for (const [id, old] of executions) {
    if (executions.size <= 8) break;
    if (old.ended) executions.delete(id);
  }
  if (!spec.runtime.startsWith("Nodejs") && !spec.runtime.startsWith("Python")) {
    execution.end({ kind: "error", message: `unknown runtime ${spec.runtime}` });
    return execution;
  }
  if (!handlerProcess || handlerProcess.exited || handlerProcess.key !== HandlerProcess.keyOf(spec)) {
    handlerProcess?.kill();
    handlerProcess = new HandlerProcess(spec);
  }
  handlerProcess.run(execution);
  return execution;
}

function signalExecution(execution) {
  const child = execution.process?.child;
  if (execution.ended || !child) return false;
  if (execution.sigtermAt === undefined) execution.sigtermAt = Date.now();
  child.kill("SIGTERM");
  // A process without a SIGTERM listener dies at once; one still alive after the delay handled it.
  setTimeout(() => {
    if (!execution.ended) execution.signalVerdict(child.signalCode !== "SIGTERM");
  }, SIGNAL_VERDICT_DELAY_MS);
  return true;
}

async function streamRecords(request, response, execution, after, status = 200) {
  response.writeHead(status, { "content-type": "application/x-ndjson", "cache-control": "no-store" });
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
    const execution = startExecution(spec);
    // ?stream=1: answer with the record stream itself (saves the caller a round trip).
    if (url.searchParams.get("stream") === "1") return streamRecords(request, response, execution, 0, 201);
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
