// What the two shims share: bootstrap-custom.mjs (SCF's Custom Runtime) and bootstrap-image.mjs
// (an image function's HTTP server). Each starts the user's own program in its process group with
// its stdout and stderr (the agent's pipes), ignores SIGTERM (the program decides), speaks the
// bootstrap protocol to the agent (PROTOCOL.md §2: reports on fd 3, end marks on stdout and stderr)
// and, when the program ends while an event is its own, ends the same way so that the agent's
// verdicts (exited 439, sigterm, oom) hold. Imports limits.mjs only.
import { spawn } from "node:child_process";
import { closeSync, openSync, writeSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { MAX_ERROR_MESSAGE_BYTES, truncateUtf8 } from "./limits.mjs";

/** Marks the end of one event's output on stdout and stderr (PROTOCOL.md). */
export const END_MARK = "\u0000AFP_END:";
/**
 * The signals a shim dies of itself when they killed the program (the agent's verdicts name them);
 * any other signal ends it with the conventional status 128+n instead: raised here, SIGUSR1 would
 * start Node's inspector, SIGSEGV run Node's handler.
 */
export const MIRRORED_SIGNALS = new Set(["SIGTERM", "SIGKILL", "SIGINT"]);
/** How long writeFully sleeps while a descriptor shared with the program would block. */
const WRITE_RETRY_MS = 2;

const retryClock = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes all of text to fd. stdout and stderr are file descriptions shared with the program, which
 * may have made them non-blocking (a Node.js program does): a full pipe then answers EAGAIN (or a
 * part written), and the rest is written once the agent has read some; never dropped, never thrown.
 */
export function writeFully(fd, text) {
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

/** Writes one report to the agent (fd 3). */
export function report(line) {
  writeFully(3, `${JSON.stringify(line)}\n`);
}

/** Marks the hand-over once: the program has the event (`invocation.received`). */
export function reportReceived(invocation) {
  if (invocation.received) return;
  invocation.received = true;
  report({ requestId: invocation.requestId, kind: "received" });
}

/**
 * Ends an invocation once: its end mark on stdout and stderr (after the program's output), then its
 * outcome (`returned` with a bounded result, or `threw` with a message) on fd 3.
 */
export function endInvocation(invocation, outcome) {
  if (invocation.ended) return;
  invocation.ended = true;
  writeFully(1, `${END_MARK}${invocation.requestId}\n`);
  writeFully(2, `${END_MARK}${invocation.requestId}\n`);
  if (outcome.kind === "returned") {
    // The caller bounded it already (resultOfBody); the agent bounds it again.
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

/** Fails an invocation at once (no program to run it): hand-over, then the message as a throw. */
export function refuseInvocation(invocation, message) {
  reportReceived(invocation);
  endInvocation(invocation, { kind: "threw", message });
}

/** Ends this process as the program ended: its exit code, or its signal (see MIRRORED_SIGNALS). */
export function mirrorExit(code, signal) {
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

/** Kills this process's group (the program and what it spawned); the agent closed stdin. */
export function killGroup(child) {
  try {
    process.kill(-process.pid, "SIGKILL");
  } catch {
    child?.kill("SIGKILL");
  }
}

/**
 * Starts the user's own program (a Custom Runtime's scf_bootstrap, an image's entry) the way both
 * shims do: this process's user and group, its stdout and stderr (the program's output is the
 * event's log, live), /dev/null as fd 3 (it must not write this process's report channel), this
 * environment without the agent's AFP_MEMORY_LIMIT_MB, Python unbuffered unless a function variable
 * says otherwise, and `extraEnv` last. Throws as spawn does.
 */
export function spawnUserProgram(file, args, cwd, extraEnv = {}) {
  const devNull = openSync("/dev/null", "w");
  const environment = { ...process.env };
  delete environment.AFP_MEMORY_LIMIT_MB;
  try {
    return spawn(file, args, {
      cwd,
      env: { PYTHONUNBUFFERED: "1", ...environment, ...extraEnv },
      stdio: ["ignore", "inherit", "inherit", devNull],
    });
  } finally {
    closeSync(devNull);
  }
}
