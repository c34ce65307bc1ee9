// The handler process: a long-lived bootstrap (chosen by runtime in runtimes.mjs) that loads a
// function's code once and runs its events one at a time, like a warm SCF instance. It runs as the
// unprivileged handler user of this container boot (handler-user.mjs), as the leader of its own
// process group: every signal the platform sends it (graceful SIGTERM, SIGKILL for timeout,
// terminate or replacement) goes to the whole group, and what remains of the group is killed when
// the leader exits. What it reads and writes (stdin, stdout/stderr with the end mark, the reports
// on fd 3) is the bootstrap protocol of PROTOCOL.md.
import { spawn } from "node:child_process";
import { closeSync } from "node:fs";
import { oomKillCount } from "./cgroup-limits.mjs";
import { engineOf } from "./contract.gen.mjs";
import { HANDLER_ID, signalGroup } from "./handler-user.mjs";
import { MAX_REPORT_LINE_CHARS, outcomeOfReport } from "./limits.mjs";
import {
  captureLines,
  captureReports,
  enlargePipes,
  forEachLine,
  outputPipe,
  pipeReadable,
} from "./output-capture.mjs";
import { bootstrapCommand, bootstrapEnvironment } from "./runtimes.mjs";
import { builtinEnvironment, handlerContext } from "./scf-context.mjs";

/** Marks the end of one event's output on a stream (written by the bootstraps). */
const END_MARK = "\u0000AFP_END:";
/**
 * Output of a Custom Runtime held back before its event's hand-over (see outputHandsOver): past
 * this many characters it is handed over anyway (the held lines then follow the started record).
 */
const MAX_HELD_OUTPUT_CHARS = 64 * 1024;
/**
 * The engines whose bootstrap is a shim running the user's own program (a Custom Runtime's
 * scf_bootstrap, an image's entry): its output is not the hand-over (see outputHandsOver).
 */
const SHIM_ENGINES = new Set(["CustomRuntime", "CustomImage"]);
/** Characters of stderr kept to recognise an out-of-memory death. */
const STDERR_TAIL_CHARS = 4096;
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
 * The message of an event whose process the kernel's OOM killer ended: the container reached its
 * memory (the function's memory size; its compute size's on Cloudflare).
 */
const OOM_KILLED_MESSAGE =
  "the container ran out of memory and the kernel killed the function's process (raise MemorySize)";

/**
 * True when the container's OOM kill count grew since `before` (a process the agent did not kill
 * died of SIGKILL: the kernel's OOM killer, when the count grew; see oomKillCount).
 */
function oomKilledSince(before) {
  if (before === undefined) return false;
  const now = oomKillCount();
  return now !== undefined && now > before;
}

/**
 * True when the agent sent the execution's handler SIGTERM: a graceful terminate (sigtermAt) or the
 * platform's stop of the container (platformStop). A SIGTERM the handler sent itself is an exit.
 */
function sentSigterm(execution) {
  return execution.sigtermAt !== undefined || execution.platformStop !== undefined;
}

/** One handler process for one function configuration (runtime, code, handler, memory, environment). */
export class HandlerProcess {
  /** pipeDir: an agent-only folder where the output pipes are made (and unlinked at once). */
  constructor(spec, codeDir, pipeDir) {
    this.key = HandlerProcess.keyOf(spec);
    /** The code package it runs (the code store keeps it while the process lives). */
    this.codeSha256 = spec.codeSha256;
    this.current = undefined;
    this.exited = false;
    /**
     * Whether output counts as the hand-over (see handOver). Not for a Custom Runtime: its program's
     * output is not its shim's take of the event (a line it prints after its answer may come after
     * the next command, a start-up line before the take), the `received` report is. Its lines before
     * the hand-over are held (up to MAX_HELD_OUTPUT_CHARS) and logged right after the started record,
     * which stays the first of the stream.
     */
    this.outputHandsOver = !SHIM_ENGINES.has(engineOf(spec.runtime));
    this.stderrTail = "";
    /** Chunks read from stdout and stderr so far (tells a quiet pipe from a busy one). */
    this.outputChunks = 0;
    /** Output streams held back by a congested spool (see holdWhile). */
    this.held = 0;
    const [program, args] = bootstrapCommand(spec, codeDir);
    // stdout and stderr are real pipes when they can be made (see outputPipe), else stdio sockets.
    const pipes = pipeDir === undefined ? [] : [outputPipe(pipeDir), outputPipe(pipeDir)];
    enlargePipes(pipes);
    try {
      this.child = spawn(program, args, {
        cwd: codeDir,
        env: {
          PATH: process.env.PATH,
          HOME: "/tmp",
          LANG: "C.UTF-8",
          ...bootstrapEnvironment(spec),
          ...spec.environment,
          ...builtinEnvironment(spec, codeDir),
          AFP_MEMORY_LIMIT_MB: String(spec.memoryLimitMb ?? 0),
        },
        stdio: ["pipe", pipes[0]?.writeFd ?? "pipe", pipes[1]?.writeFd ?? "pipe", "pipe"],
        // Its own session and process group: signals go to the group (see signalGroup).
        detached: true,
        ...(HANDLER_ID !== undefined ? { uid: HANDLER_ID, gid: HANDLER_ID } : {}),
      });
    } catch (error) {
      for (const pipe of pipes) if (pipe) closeSync(pipe.readFd);
      throw error;
    } finally {
      // The handler holds the write ends now: the agent's read ends see EOF once it (and what it
      // spawned) closed them.
      for (const pipe of pipes) if (pipe) closeSync(pipe.writeFd);
    }
    this.pgid = this.child.pid;
    this.child.stdin.on("error", () => {});
    this.stdout = pipes[0] ? pipeReadable(pipes[0]) : this.child.stdout;
    this.stderr = pipes[1] ? pipeReadable(pipes[1]) : this.child.stderr;
    const holdWhile = (resume) => this.holdWhile(resume);
    /** Per stream, takes the unterminated rest of its output (see captureLines). */
    this.takeRest = {
      stdout: captureLines(
        this.stdout,
        (line) => this.onLine("stdout", line),
        () => this.onChunk(),
        { batched: pipes[0] !== undefined, holdWhile, onLines: (text, count) => this.onLines("stdout", text, count) },
      ),
      stderr: captureLines(
        this.stderr,
        (line) => this.onLine("stderr", line),
        (chunk) => this.onChunk(chunk),
        { batched: pipes[1] !== undefined, holdWhile, onLines: (text, count) => this.onLines("stderr", text, count) },
      ),
    };
    this.outputEnded = Promise.all([endOf(this.stdout), endOf(this.stderr)]);
    captureReports(
      this.child.stdio[3],
      (report) => this.onReport(report),
      () => this.onOversizedReport(),
    );
    this.child.on("error", (error) => this.onExit(null, null, error));
    this.child.on("exit", (code, signal) => this.onExit(code, signal));
  }

  static keyOf(spec) {
    // The function's name, namespace and version too: its process's built-in variables name them.
    const { function_name, namespace, function_version } = spec.context ?? {};
    return JSON.stringify([
      spec.runtime,
      spec.codeSha256,
      spec.handler,
      spec.image,
      spec.memoryLimitMb,
      spec.environment,
      function_name,
      namespace,
      function_version,
    ]);
  }

  /**
   * Runs one event in this process: writes it to the bootstrap, which takes it once the function's
   * code is loaded (at once in a warm process). The timeout runs from now, so that code whose
   * loading never ends is stopped too, and again from the hand-over (see handOver).
   */
  run(execution) {
    this.current = {
      execution,
      report: undefined,
      marks: new Set(),
      handedOver: false,
      held: [],
      heldChars: 0,
      // The container's OOM kills so far: one more at the process's SIGKILL is the kernel's (oom).
      oomKillsBefore: oomKillCount(),
    };
    execution.process = this;
    const spec = execution.spec;
    this.child.stdin.write(
      `${JSON.stringify({ requestId: spec.requestId, event: spec.event ?? {}, context: handlerContext(spec) })}\n`,
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
   * before the handler is called) or the process printed for it, whichever comes first (only the
   * report for a Custom Runtime, see outputHandsOver). The
   * execution records its start (the first record of its stream) and its timeout runs from here.
   * A SIGTERM sent after this finds the function's code loaded, with its own signal listeners.
   */
  handOver() {
    const current = this.current;
    if (!current || current.handedOver) return;
    current.handedOver = true;
    current.execution.handedOver();
    this.releaseHeld(current);
    this.armTimeout();
  }

  /** Logs an output line for the event in progress (held before a Custom Runtime's hand-over). */
  logOutput(stream, line) {
    const current = this.current;
    if (!current) return;
    if (current.handedOver || this.outputHandsOver) return current.execution.log(stream, line);
    current.held.push([stream, line]);
    current.heldChars += line.length;
    if (current.heldChars > MAX_HELD_OUTPUT_CHARS) this.handOver();
  }

  /** Logs the lines held before the hand-over (see logOutput), in their order. */
  releaseHeld(current) {
    const held = current.held;
    current.held = [];
    current.heldChars = 0;
    for (const [stream, line] of held) current.execution.log(stream, line);
  }

  /** Sends SIGTERM to the whole group (graceful terminate); false when nothing was there to get it. */
  terminate() {
    if (this.exited || this.pgid === undefined) return false;
    return signalGroup(this.pgid, "SIGTERM");
  }

  /** Kills the whole group at once. */
  kill() {
    this.killedByAgent = true;
    if (this.pgid !== undefined) signalGroup(this.pgid, "SIGKILL");
  }

  /** Counts a chunk of stdout or stderr; stderr's tail is kept to recognise an out-of-memory death. */
  onChunk(stderrChunk) {
    this.outputChunks += 1;
    if (stderrChunk !== undefined) this.stderrTail = (this.stderrTail + stderrChunk).slice(-STDERR_TAIL_CHARS);
  }

  /**
   * The pipes are read as fast as they fill, whatever the stream readers do: records go to the
   * execution's spool on disk. Only a disk that falls MAX_SPOOL_QUEUED_BYTES behind the output
   * holds the reading back (the handler's writes then wait, nothing is dropped) until it caught up:
   * true when the stream must wait for resume.
   */
  holdWhile(resume) {
    const execution = this.current?.execution;
    if (!execution?.congested) return false;
    this.held += 1;
    execution.whenDrained(() => {
      this.held -= 1;
      resume();
    });
    return true;
  }

  onOversizedReport() {
    if (!this.current) return;
    this.onReport({
      requestId: this.current.execution.requestId,
      kind: "threw",
      message: `the handler's outcome report is over ${MAX_REPORT_LINE_CHARS} characters and was discarded`,
    });
  }

  /**
   * `count` whole lines read at once (each ending with its newline): logged in one go while the
   * event in progress takes its output as it comes; line by line (onLine) when one of them may be
   * the bootstrap's end mark or the lines are held (a Custom Runtime before its hand-over).
   */
  onLines(stream, text, count) {
    if (this.outputHandsOver) this.handOver();
    const current = this.current;
    const direct = current !== undefined && (current.handedOver || this.outputHandsOver);
    if (direct && !text.includes(END_MARK)) {
      current.execution.logLines(stream, text, count);
      return;
    }
    forEachLine(text, (line) => this.onLine(stream, line));
  }

  onLine(stream, line) {
    if (this.outputHandsOver) this.handOver();
    const mark = line.indexOf(END_MARK);
    if (mark >= 0) {
      if (mark > 0) this.logOutput(stream, line.slice(0, mark));
      if (this.current && line.slice(mark + END_MARK.length) === this.current.execution.requestId) {
        this.current.marks.add(stream);
        this.maybeEnd();
      }
      return;
    }
    // Output while no event runs (a handler's leftover timers) has no event to belong to.
    this.logOutput(stream, line);
  }

  onReport(report) {
    if (!this.current || report.requestId !== this.current.execution.requestId) return;
    // Not an outcome: the bootstrap took the event and calls the handler now.
    if (report.kind === "received") return this.handOver();
    this.handOver();
    // Not an outcome either: the handler's progress, while it runs (none once its outcome came).
    if (report.kind === "progress") {
      if (!this.current.report) this.current.execution.reportProgress(report.percent, report.message);
      return;
    }
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
    this.releaseHeld(current);
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
    const killedByAgent = this.killedByAgent === true;
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
      this.releaseHeld(current);
      for (const stream of ["stdout", "stderr"]) {
        const rest = this.takeRest[stream]();
        if (rest) execution.log(stream, rest);
      }
      let outcome;
      if (error) outcome = { kind: "error", message: `the handler process could not run: ${error.message}` };
      else if (current.timedOut) outcome = { kind: "timeout" };
      else if (/heap out of memory|Allocation failed/i.test(this.stderrTail)) outcome = { kind: "oom" };
      // The kernel's OOM killer (the container's cgroup counted one more kill): 434 too.
      else if (signal === "SIGKILL" && !killedByAgent && oomKilledSince(current.oomKillsBefore))
        outcome = { kind: "oom", message: OOM_KILLED_MESSAGE };
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
          // Held pipes (a congested spool) are not quiet: their output waits to be read.
          if (this.outputChunks === seen && this.held === 0) finish();
          else waitQuiet();
        });
      }, EXIT_OUTPUT_QUIET_MS);
    };
    waitQuiet();
    this.outputEnded.then(finish);
  }
}
