#!/usr/bin/env node
// `npm start`: runs the whole platform locally in the foreground at http://127.0.0.1:$PORT
// (default 8787) with real containers: prepares the container engine and offline images, applies
// D1 migrations, then runs `wrangler dev` with local D1, Durable Objects, Queues and R2 persisted
// under one state folder. Extra arguments are passed to `wrangler dev`.
//
// Environment:
//   PORT             listening port (default 8787)
//   AFP_STATE_DIR    state folder (default ./.state); wrangler's data lives in $AFP_STATE_DIR/wrangler
//   AFP_SKIP_ENGINE  "1" skips the container-engine preparation (it already ran)
//   DEV_SECRET_ID, DEV_SECRET_KEY
//                    development (administrator) credentials with access to every namespace;
//                    without them, a pair is generated once and kept in
//                    $AFP_STATE_DIR/dev-credentials.env (with the generated MASTER_KEY)
//   MASTER_KEY       base64 of 32 bytes that encrypts stored SecretKeys (generated when unset)
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const stateDir = resolve(process.env.AFP_STATE_DIR ?? join(root, ".state"));
const persistDir = join(stateDir, "wrangler");
const port = process.env.PORT ?? "8787";
const wrangler = join(root, "node_modules", "wrangler", "bin", "wrangler.js");
const startedAt = Date.now();

function log(message) {
  process.stderr.write(`[start] ${message}\n`);
}

if (!existsSync(wrangler)) {
  log("dependencies are missing: run `npm install` first");
  process.exit(1);
}
/** Shortest DEV_SECRET_KEY accepted (the worker refuses a shorter development pair too). */
const MIN_DEV_SECRET_KEY_LENGTH = 32;
/** Random bytes of a generated DEV_SECRET_KEY (base64url: 43 characters). */
const GENERATED_DEV_SECRET_KEY_BYTES = 32;
/** Mode of the state folder: it holds the credentials and every tenant's data, owner only. */
const STATE_DIR_MODE = 0o700;

/** Exits before anything starts when the development key is shorter than the minimum. */
function refuseWeakDevKey(key, source) {
  if (key.length >= MIN_DEV_SECRET_KEY_LENGTH) return;
  log(
    `refusing to start: DEV_SECRET_KEY (from ${source}) is ${key.length} characters; it must be at least ` +
      `${MIN_DEV_SECRET_KEY_LENGTH} (generate one with \`openssl rand -base64 32\`, or unset it to get one)`,
  );
  process.exit(1);
}
if (process.env.DEV_SECRET_KEY) refuseWeakDevKey(process.env.DEV_SECRET_KEY, "the DEV_SECRET_KEY environment variable");

// The state folder (and a pre-existing one) is readable by its owner only.
mkdirSync(stateDir, { recursive: true, mode: STATE_DIR_MODE });
chmodSync(stateDir, STATE_DIR_MODE);
mkdirSync(persistDir, { recursive: true, mode: STATE_DIR_MODE });

/**
 * Writes the file wrangler dev loads as Worker secrets: the development credentials (from
 * DEV_SECRET_ID / DEV_SECRET_KEY, or generated once) and the MASTER_KEY that encrypts stored keys.
 */
function ensureDevCredentials() {
  const file = join(stateDir, "dev-credentials.env");
  const values = new Map();
  if (existsSync(file)) {
    for (const line of readFileSync(file, "utf8").split("\n")) {
      const separator = line.indexOf("=");
      if (separator > 0) values.set(line.slice(0, separator), line.slice(separator + 1));
    }
  }
  if (process.env.DEV_SECRET_ID && process.env.DEV_SECRET_KEY) {
    values.set("DEV_SECRET_ID", process.env.DEV_SECRET_ID);
    values.set("DEV_SECRET_KEY", process.env.DEV_SECRET_KEY);
  }
  if (!values.get("DEV_SECRET_ID") || !values.get("DEV_SECRET_KEY")) {
    values.set("DEV_SECRET_ID", `AKID${randomBytes(12).toString("hex")}`);
    values.set("DEV_SECRET_KEY", randomBytes(GENERATED_DEV_SECRET_KEY_BYTES).toString("base64url"));
  }
  refuseWeakDevKey(values.get("DEV_SECRET_KEY") ?? "", file);
  if (process.env.MASTER_KEY) values.set("MASTER_KEY", process.env.MASTER_KEY);
  if (!values.get("MASTER_KEY")) values.set("MASTER_KEY", randomBytes(32).toString("base64"));
  const text = [...values].map(([key, value]) => `${key}=${value}\n`).join("");
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}
const credentialsFile = ensureDevCredentials();
const devSecretId = /^DEV_SECRET_ID=(.*)$/m.exec(readFileSync(credentialsFile, "utf8"))?.[1];

const env = {
  ...process.env,
  AFP_STATE_DIR: stateDir,
  // wrangler runs `docker build` and `docker pull`; the wrapper makes both work offline.
  WRANGLER_DOCKER_BIN: join(root, "scripts", "docker-wrapper.sh"),
  // The network sidecar workerd starts beside every container: the project's local stand-in.
  MINIFLARE_CONTAINER_EGRESS_IMAGE: process.env.MINIFLARE_CONTAINER_EGRESS_IMAGE ?? "afp-egress-proxy:local",
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_SEND_ERROR_REPORTS: "false",
  // Node 22 from the `node` devDependency, also for wrangler's own child processes.
  PATH: `${join(root, "node_modules", ".bin")}:${process.env.PATH ?? ""}`,
};

function run(command, args, label) {
  const result = spawnSync(command, args, { cwd: root, env, stdio: ["ignore", "inherit", "inherit"] });
  if (result.status !== 0) {
    log(`${label} failed (exit ${result.status ?? result.signal})`);
    process.exit(result.status ?? 1);
  }
}

if (process.env.AFP_SKIP_ENGINE !== "1") {
  run("bash", [join(root, "scripts", "local-engine.sh")], "container engine preparation");
}
// Gives every function container the memory and process-count caps its function states (workerd
// sets no Docker limits locally); it exits with this process (its standard input closes).
const containerGuard = spawn(process.execPath, [join(root, "scripts", "container-guard.mjs")], {
  cwd: root,
  env,
  stdio: ["pipe", "inherit", "inherit"],
});
run(
  process.execPath,
  [wrangler, "d1", "migrations", "apply", "DB", "--local", "--persist-to", persistDir],
  "D1 migrations",
);
log(`prepared in ${Date.now() - startedAt} ms; starting wrangler dev on http://127.0.0.1:${port}`);
log(`credentials: SecretId ${devSecretId}; the pair is in ${credentialsFile}`);

const dev = spawn(
  process.execPath,
  [
    wrangler,
    "dev",
    "--ip",
    "127.0.0.1",
    "--port",
    port,
    "--persist-to",
    persistDir,
    "--show-interactive-dev-session=false",
    "--env-file",
    credentialsFile,
    // The guard below caps every container: the agent waits for those caps before running a handler.
    "--var",
    "CONTAINER_LIMITS_REQUIRED:true",
    ...process.argv.slice(2),
  ],
  { cwd: root, env, stdio: ["ignore", "inherit", "inherit"] },
);

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => dev.kill(signal));
}
// Without the guard no container would be capped: the platform stops rather than run uncapped.
let stopping = false;
containerGuard.on("exit", (code, signal) => {
  if (stopping) return;
  log(`the container guard exited (${code ?? signal}): stopping, since containers would run without caps`);
  dev.kill("SIGTERM");
});
dev.on("exit", (code, signal) => {
  stopping = true;
  containerGuard.kill();
  process.exit(code ?? (signal ? 1 : 0));
});
