// The agent's runtime table: for each runtime name of the container contract (RUNTIME_NAMES), the
// bootstrap that runs its handlers and how it is started. Adding a runtime is a line here, its
// bootstrap file beside this one, its name in worker/contract/execution-spec.ts (RUNTIME_NAMES) and
// in worker/functions/model.ts; a test checks the three lists agree. See PROTOCOL.md for what a
// bootstrap must do.
import { join } from "node:path";

const BOOTSTRAP_DIR = new URL(".", import.meta.url).pathname;

/**
 * Runtime name → { bootstrap: its file in this folder, program: what runs it, programArgs(spec):
 * the arguments before the bootstrap's path }. The bootstrap then gets the code folder and the
 * handler (`file.function`) as its two arguments.
 */
export const RUNTIMES = Object.freeze({
  Nodejs22: Object.freeze({
    bootstrap: "bootstrap-node.mjs",
    program: () => process.execPath,
    // The heap cap is the function's memory size (0: Node's default).
    programArgs: (spec) => (spec.memoryLimitMb ? [`--max-old-space-size=${spec.memoryLimitMb}`] : []),
  }),
  "Python3.11": Object.freeze({
    bootstrap: "bootstrap.py",
    program: () => "python3",
    // Unbuffered stdout and stderr: every line reaches the agent as it is printed.
    programArgs: () => ["-u"],
  }),
});

/** The table entry of a runtime name, or undefined for an unknown one (own properties only). */
export function runtimeOf(name) {
  return typeof name === "string" && Object.hasOwn(RUNTIMES, name) ? RUNTIMES[name] : undefined;
}

/**
 * The program and arguments that start a spec's bootstrap for the code in codeDir. Throws for a
 * runtime missing from the table: an unknown runtime is never run by another runtime's bootstrap.
 */
export function bootstrapCommand(spec, codeDir) {
  const runtime = runtimeOf(spec.runtime);
  if (!runtime) throw new Error(`unknown runtime ${JSON.stringify(String(spec.runtime)).slice(0, 64)}`);
  return [
    runtime.program(),
    [...runtime.programArgs(spec), join(BOOTSTRAP_DIR, runtime.bootstrap), codeDir, spec.handler],
  ];
}
