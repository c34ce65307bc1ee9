// The handler process: a long-lived bootstrap (Node.js or Python) that loads a function's code once
// and runs its events one at a time, like a warm SCF instance. It runs as the unprivileged handler
// user of this container boot, as the leader of its own process group: every signal the platform
// sends it (graceful SIGTERM, SIGKILL for timeout, terminate or replacement) goes to the whole
// group, and what remains of the group is killed when the leader exits.
import { spawn } from "node:child_process";
import { randomInt } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { MAX_LINE_CHARS, MAX_REPORT_LINE_CHARS, outcomeOfReport } from "./limits.mjs";
import { runtimeKind } from "./validation.mjs";

const BOOTSTRAP_DIR = new URL(".", import.meta.url).pathname;
/** Marks the end of one event's output on a stream (written by the bootstraps). */
const END_MARK = "\u0000AFP_END:";
/** Characters of stderr kept to recognise an out-of-memory death. */
const STDERR_TAIL_CHARS = 4096;
/**
 * Lowest handler uid/gid: above every system and regular account of the image and of a host's usual
 * accounts. Locally, containers share the host kernel without user namespaces, so per-uid limits
 * (RLIMIT_NPROC) count across containers of the same uid: the range is wide enough (about 2e9) that
 * two containers practically never draw the same one.
 */
const HANDLER_ID_MIN = 100_000;
/** One past the highest handler uid/gid (below 2^31, what every tool takes as a uid). */
const HANDLER_ID_END = 2_000_000_000;
/**
 * After a handler process exits, its event ends once the process's stdout and stderr have ended
 * (every line written before the exit read). A process that escaped the handler's group may hold
 * the pipes open: then the event ends after this long without output on them…
 */
const EXIT_OUTPUT_QUIET_MS = 2_000;
/** …or at the latest this long after the exit, however much that process still prints. */
const EXIT_OUTPUT_MAX_WAIT_MS = 10_000;

/** Resolves when a readable stream has ended or closed (its last data has been emitted). */
function endOf(readable) {
  return new Promise((resolve) => {
    readable.once("end", resolve);
    readable.once("close", resolve);
  });
}

/**
 * The uid and gid handler processes run as: a fresh one per container boot (so per-uid limits and
 * file ownership never span containers), or undefined when the agent is not root and cannot drop.
 */
export const HANDLER_ID = process.getuid?.() === 0 ? randomInt(HANDLER_ID_MIN, HANDLER_ID_END) : undefined;

/**
 * True when the agent sent the execution's handler SIGTERM: a graceful terminate (sigtermAt) or the
 * platform's stop of the container (platformStop). A SIGTERM the handler sent itself is an exit.
 */
function sentSigterm(execution) {
  return execution.sigtermAt !== undefined || execution.platformStop !== undefined;
}

/** Sends a signal to a whole process group; true when it was delivered to at least one process. */
function signalGroup(pgid, signal) {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false; // the group is gone (ESRCH)
  }
}

/** Rounds of the sweep in killHandlerUser (a process that forks between two rounds is caught next). */
const SWEEP_ROUNDS = 20;

/** Pids of live (not zombie) processes whose real uid is the handler user, read from /proc. */
function handlerUserPids() {
  const pids = [];
  let entries = [];
  try {
    entries = readdirSync("/proc");
  } catch {
    return pids;
  }
  for (const entry of entries) {
    if (!/^[0-9]+$/.test(entry)) continue;
    let status;
    try {
      status = readFileSync(`/proc/${entry}/status`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
    const state = /^State:\s+(\S)/m.exec(status)?.[1];
    if (Number(uid) === HANDLER_ID && state !== "Z") pids.push(Number(entry));
  }
  return pids;
}

/**
 * Kills every process of the handler user, including any that left the handler's process group
 * (setsid), by scanning /proc as root: no process of the user needs to be started for it, so it
 * works even when the user is at its process limit. Synchronous, so that nothing of a previous
 * handler process survives into the next one.
 */
export function killHandlerUser() {
  if (HANDLER_ID === undefined) return;
  for (let round = 0; round < SWEEP_ROUNDS; round++) {
    const pids = handlerUserPids();
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
}

/** The program and arguments of a spec's bootstrap (the runtime is validated beforehand). */
function bootstrapCommand(spec, codeDir) {
  if (runtimeKind(spec.runtime) === "node") {
    const args = [];
    if (spec.memoryLimitMb) args.push(`--max-old-space-size=${spec.memoryLimitMb}`);
    return [process.execPath, [...args, join(BOOTSTRAP_DIR, "bootstrap-node.mjs"), codeDir, spec.handler]];
  }
  return ["python3", ["-u", join(BOOTSTRAP_DIR, "bootstrap.py"), codeDir, spec.handler]];
}

/** One handler process for one function configuration (runtime, code, handler, memory, environment). */
export class HandlerProcess {
  constructor(spec, codeDir) {
    this.key = HandlerProcess.keyOf(spec);
    this.current = undefined;
    this.exited = false;
    this.stderrTail = "";
    this.pendingLines = { stdout: "", stderr: "" };
    /** Chunks read from stdout and stderr so far (tells a quiet pipe from a busy one). */
    this.outputChunks = 0;
    const [program, args] = bootstrapCommand(spec, codeDir);
    this.child = spawn(program, args, {
      cwd: codeDir,
      env: {
        PATH: process.env.PATH,
        HOME: "/tmp",
        LANG: "C.UTF-8",
        ...spec.environment,
        AFP_MEMORY_LIMIT_MB: String(spec.memoryLimitMb ?? 0),
      },
      stdio: ["pipe", "pipe", "pipe", "pipe"],
      // Its own session and process group: signals go to the group (see signalGroup).
      detached: true,
      ...(HANDLER_ID !== undefined ? { uid: HANDLER_ID, gid: HANDLER_ID } : {}),
    });
    this.pgid = this.child.pid;
    this.child.stdin.on("error", () => {});
    this.capture("stdout", this.child.stdout);
    this.capture("stderr", this.child.stderr);
    this.outputEnded = Promise.all([endOf(this.child.stdout), endOf(this.child.stderr)]);
    this.captureReports(this.child.stdio[3]);
    this.child.on("error", (error) => this.onExit(null, null, error));
    this.child.on("exit", (code, signal) => this.onExit(code, signal));
  }

  static keyOf(spec) {
    return JSON.stringify([spec.runtime, spec.codeSha256, spec.handler, spec.memoryLimitMb, spec.environment]);
  }

  /**
   * Runs one event in this process: writes it to the bootstrap, which takes it once the function's
   * code is loaded (at once in a warm process). The timeout runs from now, so that code whose
   * loading never ends is stopped too, and again from the hand-over (see handOver).
   */
  run(execution) {
    this.current = { execution, report: undefined, marks: new Set(), handedOver: false };
    execution.process = this;
    const spec = execution.spec;
    this.child.stdin.write(
      `${JSON.stringify({ requestId: spec.requestId, event: spec.event ?? {}, context: spec.context ?? {} })}\n`,
    );
    this.armTimeout();
  }

  /** (Re)starts the timeout of the event in progress, when its spec has one. */
  armTimeout() {
    const current = this.current;
    if (!current?.execution.spec.timeoutMs) return;
    if (current.timer) clearTimeout(current.timer);
    current.timer = setTimeout(() => {
      if (this.current === current) {
        current.timedOut = true;
        this.kill();
      }
    }, current.execution.spec.timeoutMs);
  }

  /**
   * The event has reached the handler: its bootstrap took it (the "received" report, written just
   * before the handler is called) or the process printed for it, whichever comes first. The
   * execution records its start (the first record of its stream) and its timeout runs from here.
   * A SIGTERM sent after this finds the function's code loaded, with its own signal listeners.
   */
  handOver() {
    const current = this.current;
    if (!current || current.handedOver) return;
    current.handedOver = true;
    current.execution.handedOver();
    this.armTimeout();
  }

  /** Sends SIGTERM to the whole group (graceful terminate); false when nothing was there to get it. */
  terminate() {
    if (this.exited || this.pgid === undefined) return false;
    return signalGroup(this.pgid, "SIGTERM");
  }

  /** Kills the whole group at once. */
  kill() {
    if (this.pgid !== undefined) signalGroup(this.pgid, "SIGKILL");
  }

  capture(stream, readable) {
    // Invalid UTF-8 becomes U+FFFD here.
    readable.setEncoding("utf8");
    let overflow = false;
    readable.on("data", (chunk) => {
      this.outputChunks += 1;
      if (stream === "stderr") this.stderrTail = (this.stderrTail + chunk).slice(-STDERR_TAIL_CHARS);
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

  /**
   * Reads the report channel (fd 3): one JSON outcome a line. A line longer than
   * MAX_REPORT_LINE_CHARS is not buffered: it is discarded as it arrives and the event in progress
   * fails with a message naming the limit.
   */
  captureReports(readable) {
    readable.setEncoding("utf8");
    let pending = "";
    let discarding = false;
    readable.on("data", (chunk) => {
      let start = 0;
      let newline = chunk.indexOf("\n");
      while (newline >= 0) {
        if (discarding) {
          discarding = false;
          this.onOversizedReport();
        } else {
          this.onReportLine(pending + chunk.slice(start, newline));
        }
        pending = "";
        start = newline + 1;
        newline = chunk.indexOf("\n", start);
      }
      if (discarding) return;
      pending += chunk.slice(start);
      if (pending.length > MAX_REPORT_LINE_CHARS) {
        pending = "";
        discarding = true;
      }
    });
  }

  onReportLine(line) {
    let report;
    try {
      report = JSON.parse(line);
    } catch {
      return; // not a report line
    }
    if (typeof report !== "object" || report === null) return;
    this.onReport(report);
  }

  onOversizedReport() {
    if (!this.current) return;
    this.onReport({
      requestId: this.current.execution.requestId,
      kind: "threw",
      message: `the handler's outcome report is over ${MAX_REPORT_LINE_CHARS} characters and was discarded`,
    });
  }

  onLine(stream, line) {
    this.handOver();
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
    // Not an outcome: the bootstrap took the event and calls the handler now.
    if (report.kind === "received") return this.handOver();
    this.handOver();
    if (this.current.report) return; // the first outcome of an event counts
    this.current.report = report;
    this.maybeEnd();
  }

  /**
   * Ends the event once its outcome and the end of its output on both streams have arrived. Once
   * the process has exited, its exit decides the outcome (see onExit).
   */
  maybeEnd() {
    const current = this.current;
    if (this.exited || !current?.report || current.marks.size < 2) return;
    const { execution, report } = current;
    this.finishCurrent();
    execution.end(outcomeOfReport(report), report.maxRssKb);
  }

  finishCurrent() {
    if (this.current?.timer) clearTimeout(this.current.timer);
    this.current = undefined;
  }

  onExit(code, signal, error) {
    if (this.exited) return;
    this.exited = true;
    // What the handler spawned dies with it (its group; the leader is gone, the pgid stays valid
    // while members remain). Then the pgid is forgotten: once empty, the number may be reused.
    this.kill();
    this.pgid = undefined;
    const current = this.current;
    if (!current) return;
    if (current.timer) clearTimeout(current.timer);
    const execution = current.execution;
    // The event keeps its lines until the pipes have given the last output of the process.
    this.afterOutput(() => {
      if (this.current === current) this.finishCurrent();
      for (const stream of ["stdout", "stderr"]) {
        if (this.pendingLines[stream]) execution.log(stream, this.pendingLines[stream]);
        this.pendingLines[stream] = "";
      }
      let outcome;
      if (error) outcome = { kind: "error", message: `the handler process could not run: ${error.message}` };
      else if (current.timedOut) outcome = { kind: "timeout" };
      else if (/heap out of memory|Allocation failed/i.test(this.stderrTail)) outcome = { kind: "oom" };
      else if (signal === "SIGTERM" && sentSigterm(execution)) outcome = { kind: "sigterm" };
      // Any other end (an exit with any code, code 0 included, or another signal): the process exited
      // while its event ran. After a SIGTERM the worker makes it ABORTED (graceful terminate) or the
      // platform's FAILED (platform stop, see Execution.end); the code and message stay 439's.
      else outcome = { kind: "exited", code, signal };
      execution.end(outcome, undefined, code, signal);
    });
  }

  /**
   * Calls done once, after the exited process's stdout and stderr have ended, or once they have
   * been quiet for EXIT_OUTPUT_QUIET_MS, or EXIT_OUTPUT_MAX_WAIT_MS after the call. A timer is only
   * trusted after one more I/O poll (setImmediate), so that an agent that was itself stalled reads
   * what is waiting in the pipes before it gives up on them.
   */
  afterOutput(done) {
    let called = false;
    let quietTimer;
    const finish = () => {
      if (called) return;
      called = true;
      clearTimeout(quietTimer);
      clearTimeout(maxTimer);
      done();
    };
    const maxTimer = setTimeout(() => setImmediate(finish), EXIT_OUTPUT_MAX_WAIT_MS);
    const waitQuiet = () => {
      const seen = this.outputChunks;
      quietTimer = setTimeout(() => {
        setImmediate(() => {
          if (called) return;
          if (this.outputChunks === seen) finish();
          else waitQuiet();
        });
      }, EXIT_OUTPUT_QUIET_MS);
    };
    waitQuiet();
    this.outputEnded.then(finish);
  }
}
