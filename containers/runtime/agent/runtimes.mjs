// The agent's runtime table: for each engine of the container contract (RUNTIME_ENGINES), the
// bootstrap that runs its handlers and how it is started. A runtime name (RUNTIME_TABLE in
// worker/contract/execution-spec.ts, SCF's names among them) runs on its engine: another name for a
// shipped engine is a line there only; a new engine is a line here too, its bootstrap file beside
// this one and its language in the Dockerfile. A test checks the engines agree. See PROTOCOL.md for
// what a bootstrap must do.
import { join } from "node:path";
import { engineOf, IMAGE_PORT_WAIT_MS } from "./contract.gen.mjs";
import { entryCommand, IMAGE } from "./image-config.mjs";

const BOOTSTRAP_DIR = new URL(".", import.meta.url).pathname;
/** The port an image's server listens on (SCF's); AFP_IMAGE_PORT in the agent's environment replaces it (tests). */
const IMAGE_PORT = Number(process.env.AFP_IMAGE_PORT) || 9000;
/** How long the image shim waits for the port (the contract's); AFP_IMAGE_PORT_WAIT_MS replaces it (tests). */
const IMAGE_WAIT_MS = Number(process.env.AFP_IMAGE_PORT_WAIT_MS) || IMAGE_PORT_WAIT_MS;

/**
 * Engine → { bootstrap: its file in this folder, program: what runs it, programArgs(spec):
 * the arguments before the bootstrap's path, bootstrapArgs?(spec, dir): its arguments (default: the
 * code folder and the handler, `file.function`), environment?(): variables under the function's }.
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
  // SCF's Custom Runtime: a Node.js shim that starts the package's own scf_bootstrap and serves it
  // SCF's runtime API (bootstrap-custom.mjs, runtime-api.mjs). The function's memory size is the
  // container's bound (the shim itself needs little), so no heap flag.
  CustomRuntime: Object.freeze({
    bootstrap: "bootstrap-custom.mjs",
    program: () => process.execPath,
    programArgs: () => [],
  }),
  // SCF's image functions: a Node.js shim (bootstrap-image.mjs) that starts the image's entry and
  // POSTs each event to its server on port 9000. It gets the image's working folder, the port, how
  // long to wait for it and the entry's command; the image's ENV comes under the function's
  // variables. Only in an image container.
  CustomImage: Object.freeze({
    bootstrap: "bootstrap-image.mjs",
    program: () => process.execPath,
    programArgs: () => [],
    bootstrapArgs: (spec, dir) => [dir, String(IMAGE_PORT), String(IMAGE_WAIT_MS), ...entryCommand(spec)],
    environment: () => IMAGE?.config?.env ?? {},
  }),
});

/**
 * The table entry of a runtime name (its engine's), or undefined for an unknown one (own
 * properties only): `Nodejs18.15` runs on the Nodejs22 engine.
 */
export function runtimeOf(name) {
  const engine = engineOf(name);
  return engine !== undefined && Object.hasOwn(RUNTIMES, engine) ? RUNTIMES[engine] : undefined;
}

/** The variables a spec's bootstrap gets under the function's own (an image's ENV), or {}. */
export function bootstrapEnvironment(spec) {
  return runtimeOf(spec.runtime)?.environment?.() ?? {};
}

/**
 * The program and arguments that start a spec's bootstrap for the code in codeDir (an image
 * function's: the image's working folder). Throws for a
 * runtime missing from the table: an unknown runtime is never run by another runtime's bootstrap.
 */
export function bootstrapCommand(spec, codeDir) {
  const runtime = runtimeOf(spec.runtime);
  if (!runtime) throw new Error(`unknown runtime ${JSON.stringify(String(spec.runtime)).slice(0, 64)}`);
  return [
    runtime.program(),
    [
      ...runtime.programArgs(spec),
      join(BOOTSTRAP_DIR, runtime.bootstrap),
      ...(runtime.bootstrapArgs?.(spec, codeDir) ?? [codeDir, spec.handler]),
    ],
  ];
}
