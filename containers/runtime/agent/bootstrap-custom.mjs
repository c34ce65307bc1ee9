// SCF's Custom Runtime: `node bootstrap-custom.mjs CODE_DIR HANDLER`. Starts the code package's own
// executable `scf_bootstrap` (else `bootstrap`) and serves it SCF's runtime API (runtime-api.mjs);
// to the agent it is a bootstrap like the others (PROTOCOL.md §2: commands on stdin, reports on
// fd 3, the end mark on stdout and stderr). The program runs as this process's (unprivileged) user,
// in its process group, with the code folder as its working directory and this process's stdout and
// stderr (its output reaches the event's log live). This process ignores SIGTERM: the program
// decides (a graceful terminate's verdict is the program's). When the program ends while an event
// is its own (taken and not answered) this process ends the same way (its exit code, or the signal
// that killed it), so the agent's verdicts hold; a program that ends between events is started again
// for the next one, this process staying (see onProgramExit).
import { spawn } from "node:child_process";
import { accessSync, closeSync, constants, openSync, statSync, writeSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { MAX_ERROR_MESSAGE_BYTES, truncateUtf8 } from "./limits.mjs";
import { RUNTIME_API_HOST, RuntimeApi } from "./runtime-api.mjs";

const [codeDir, handlerSpec] = process.argv.slice(2);

/** The program's file names, in the order looked for (SCF's Web functions' name, then the docs'). */
const BOOTSTRAP_NAMES = Object.freeze(["scf_bootstrap", "bootstrap"]);
/** What every event of a package without a runnable bootstrap fails with. */
const MISSING_BOOTSTRAP =
  "scf_bootstrap is missing or not executable (chmod 755 before zipping): a CustomRuntime package needs an executable scf_bootstrap (or bootstrap) at its root";
/** After the program exits, how long requests already sent to the API may take before this process mirrors the exit. */
const EXIT_SETTLE_MS = 1_000;
/** Marks the end of one event's output on stdout and stderr (PROTOCOL.md). */
const END_MARK = "\u0000AFP_END:";
/**
 * The signals this process dies of itself when they killed the program (the agent's verdicts name
 * them); any other signal ends it with the conventional status 128+n instead: raised here, SIGUSR1
 * would start Node's inspector, SIGSEGV run Node's handler.
 */
const MIRRORED_SIGNALS = new Set(["SIGTERM", "SIGKILL", "SIGINT"]);
/** How long writeFully sleeps while a descriptor shared with the program would block. */
const WRITE_RETRY_MS = 2;

// The program decides what SIGTERM means; this process outlives it (see the header).
process.on("SIGTERM", () => {});

/** The first regular, executable bootstrap file of the package, or undefined. */
function findBootstrap() {
  for (const name of BOOTSTRAP_NAMES) {
    const path = join(codeDir, name);
    try {
      if (!statSync(path).isFile()) continue;
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // Missing or not executable by this user: the next name.
    }
  }
  return undefined;
}

/** The invocation in progress, or the last one (ended): `{requestId, event, context, received, ended}`. */
let current;
/** Why no event can run (no bootstrap, the program could not start), or undefined. */
let problem;

const retryClock = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes all of text to fd. stdout and stderr are file descriptions shared with the program, which
 * may have made them non-blocking (a Node.js program does): a full pipe then answers EAGAIN (or a
 * part written), and the rest is written once the agent has read some; never dropped, never thrown.
 */
function writeFully(fd, text) {
  const bytes = Buffer.from(text, "utf8");
  let offset = 0;
  while (offset < bytes.length) {
    try {
      offset += writeSync(fd, bytes, offset, bytes.length - offset);
    } catch (error) {
      if (error.code !== "EAGAIN") throw error;
      Atomics.wait(retryClock, 0, 0, WRITE_RETRY_MS);
    }
  }
}

function report(line) {
  writeFully(3, `${JSON.stringify(line)}\n`);
}

/** Ends the invocation: its end mark on stdout and stderr (after the program's output), then its outcome. */
function end(invocation, outcome) {
  if (invocation.ended) return;
  // It stays `current` until the next command: a second post for it is told it already ended (409).
  invocation.ended = true;
  writeFully(1, `${END_MARK}${invocation.requestId}\n`);
  writeFully(2, `${END_MARK}${invocation.requestId}\n`);
  if (outcome.kind === "returned") {
    // resultOfBody bounded it already; the agent bounds it again.
    writeFully(
      3,
      `{"requestId":${JSON.stringify(invocation.requestId)},"kind":"returned","result":${JSON.stringify(outcome.result) ?? "null"}}\n`,
    );
    return;
  }
  report({
    requestId: invocation.requestId,
    kind: "threw",
    message: truncateUtf8(String(outcome.message), MAX_ERROR_MESSAGE_BYTES),
    stack: "",
  });
}

/** Marks the hand-over once (the program took the event with GET next). */
function received(invocation) {
  if (invocation.received) return;
  invocation.received = true;
  report({ requestId: invocation.requestId, kind: "received" });
}

const api = new RuntimeApi({
  current: () => current,
  received,
  ended: end,
  progress: (invocation, bounded) => report({ requestId: invocation.requestId, kind: "progress", ...bounded }),
  initReady: () => {},
});

/** Fails an event at once (no program to run it): hand-over, then the problem as a throw. */
function refuse(invocation, message) {
  received(invocation);
  end(invocation, { kind: "threw", message });
}

/** The running program, or undefined (not started yet, or exited between events). */
let child;
/** Events offered so far: each invocation's `offered` is its number. */
let offered = 0;
/** While an exited program's last requests finish (see onProgramExit): no program is started. */
let settling = false;
const bootstrapPath = findBootstrap();
const port = bootstrapPath ? await api.listen() : undefined;
if (!bootstrapPath) problem = MISSING_BOOTSTRAP;
else startProgram();

/** Starts the program (at once, and again for an event after it exited between events). */
function startProgram() {
  // The program must not write this process's report channel: its fd 3 is /dev/null.
  const devNull = openSync("/dev/null", "w");
  const environment = { ...process.env };
  delete environment.AFP_MEMORY_LIMIT_MB;
  /** The events offered before this program started: it had its chance at them. */
  const offeredBefore = offered;
  let program;
  try {
    program = spawn(bootstrapPath, [], {
      cwd: codeDir,
      env: {
        // Python's prints reach the log as they are made (a function variable of the name wins).
        PYTHONUNBUFFERED: "1",
        ...environment,
        SCF_RUNTIME_API: RUNTIME_API_HOST,
        SCF_RUNTIME_API_PORT: String(port),
        _HANDLER: handlerSpec ?? "",
      },
      stdio: ["ignore", "inherit", "inherit", devNull],
    });
  } catch (error) {
    problem = `scf_bootstrap could not be started: ${error.message}`;
    if (current && !current.ended) refuse(current, problem);
    return;
  } finally {
    closeSync(devNull);
  }
  child = program;
  program.on("error", (error) => {
    if (child !== program) return;
    problem = `scf_bootstrap could not be started (${error.code ?? error.message}): check its first line (#!/bin/bash, no CR) and that it is built for Linux x86-64`;
    if (current && !current.ended) refuse(current, problem);
    child = undefined;
    api.server.close();
  });
  program.on("exit", (code, signal) => {
    if (child !== program) return;
    child = undefined;
    onProgramExit(code, signal, offeredBefore);
  });
}

/**
 * The program ended. Once the requests it sent before are answered (at most EXIT_SETTLE_MS), what
 * it leaves decides: an event it took and did not answer, or one it was started with (or after)
 * and left untaken, or any event it left to a signal (a graceful terminate's SIGTERM before the
 * take), ends with it: this process ends the same way, so the agent sees the program's exit (439)
 * or its signal. Otherwise (it answered its event, or none was there yet, or the next event came
 * while it was exiting) this process stays, and the program is started again when an event waits.
 */
function onProgramExit(code, signal, offeredBefore) {
  settling = true;
  const settle = Date.now() + EXIT_SETTLE_MS;
  const finish = () => {
    if (api.active > 0 && Date.now() < settle) return setTimeout(finish, 10);
    settling = false;
    const pending = current && !current.ended ? current : undefined;
    if (pending && (pending.received || signal || pending.offered <= offeredBefore)) return mirrorExit(code, signal);
    if (pending) startProgram();
  };
  finish();
}

/** Ends this process as the program ended (see MIRRORED_SIGNALS for signals). */
function mirrorExit(code, signal) {
  if (signal) {
    const status = 128 + (osConstants.signals[signal] ?? 0);
    if (!MIRRORED_SIGNALS.has(signal)) process.exit(status);
    process.removeAllListeners("SIGTERM");
    process.kill(process.pid, signal);
    // In case the signal does not end this process at once: its conventional exit status.
    setTimeout(() => process.exit(status), 100);
    return;
  }
  process.exit(code ?? 1);
}

for await (const line of createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY })) {
  if (!line.trim()) continue;
  const command = JSON.parse(line);
  const invocation = {
    requestId: command.requestId,
    event: command.event,
    context: command.context,
    received: false,
    ended: false,
    offered: ++offered,
  };
  if (problem) {
    refuse(invocation, problem);
    continue;
  }
  current = invocation;
  // The program exited between events: started again for this one (it asks for it with next).
  if (!child && !settling) startProgram();
  api.offer(invocation);
}
// The agent closed stdin: it is done with this process (and so with the program).
if (child) {
  try {
    process.kill(-process.pid, "SIGKILL");
  } catch {
    child.kill("SIGKILL");
  }
}
process.exit(0);
