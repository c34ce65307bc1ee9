// SCF's Custom Runtime: `node bootstrap-custom.mjs CODE_DIR HANDLER` (what it shares with the image
// shim, bootstrap-image.mjs, is in shim.mjs). Starts the code package's own
// executable `scf_bootstrap` (else `bootstrap`) and serves it SCF's runtime API (runtime-api.mjs);
// to the agent it is a bootstrap like the others (PROTOCOL.md §2: commands on stdin, reports on
// fd 3, the end mark on stdout and stderr). The program runs as this process's (unprivileged) user,
// in its process group, with the code folder as its working directory and this process's stdout and
// stderr (its output reaches the event's log live). This process ignores SIGTERM: the program
// decides (a graceful terminate's verdict is the program's). When the program ends while an event
// is its own (taken and not answered) this process ends the same way (its exit code, or the signal
// that killed it), so the agent's verdicts hold; a program that ends between events is started again
// for the next one, this process staying (see onProgramExit).
import { accessSync, constants, statSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { RUNTIME_API_HOST, RuntimeApi } from "./runtime-api.mjs";
import {
  endInvocation,
  killGroup,
  mirrorExit,
  refuseInvocation,
  report,
  reportReceived,
  spawnUserProgram,
} from "./shim.mjs";

const [codeDir, handlerSpec] = process.argv.slice(2);

/** The program's file names, in the order looked for (SCF's Web functions' name, then the docs'). */
const BOOTSTRAP_NAMES = Object.freeze(["scf_bootstrap", "bootstrap"]);
/** What every event of a package without a runnable bootstrap fails with. */
const MISSING_BOOTSTRAP =
  "scf_bootstrap is missing or not executable (chmod 755 before zipping): a CustomRuntime package needs an executable scf_bootstrap (or bootstrap) at its root";
/** After the program exits, how long requests already sent to the API may take before this process mirrors the exit. */
const EXIT_SETTLE_MS = 1_000;

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

const api = new RuntimeApi({
  current: () => current,
  received: reportReceived,
  ended: endInvocation,
  progress: (invocation, bounded) => report({ requestId: invocation.requestId, kind: "progress", ...bounded }),
  initReady: () => {},
});

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
  /** The events offered before this program started: it had its chance at them. */
  const offeredBefore = offered;
  let program;
  try {
    program = spawnUserProgram(bootstrapPath, [], codeDir, {
      SCF_RUNTIME_API: RUNTIME_API_HOST,
      SCF_RUNTIME_API_PORT: String(port),
      _HANDLER: handlerSpec ?? "",
    });
  } catch (error) {
    problem = `scf_bootstrap could not be started: ${error.message}`;
    if (current && !current.ended) refuseInvocation(current, problem);
    return;
  }
  child = program;
  program.on("error", (error) => {
    if (child !== program) return;
    problem = `scf_bootstrap could not be started (${error.code ?? error.message}): check its first line (#!/bin/bash, no CR) and that it is built for Linux x86-64`;
    if (current && !current.ended) refuseInvocation(current, problem);
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
    refuseInvocation(invocation, problem);
    continue;
  }
  current = invocation;
  // The program exited between events: started again for this one (it asks for it with next).
  if (!child && !settling) startProgram();
  api.offer(invocation);
}
// The agent closed stdin: it is done with this process (and so with the program).
if (child) killGroup(child);
process.exit(0);
