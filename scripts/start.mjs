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
//                    development credentials with access to every namespace; without them, a pair
//                    is generated once and kept in $AFP_STATE_DIR/dev-credentials.env
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
mkdirSync(persistDir, { recursive: true });

/** Writes the development credentials file wrangler dev loads as Worker secrets. */
function ensureDevCredentials() {
  const file = join(stateDir, "dev-credentials.env");
  let secretId = process.env.DEV_SECRET_ID;
  let secretKey = process.env.DEV_SECRET_KEY;
  if (!secretId || !secretKey) {
    if (existsSync(file)) return file;
    secretId = `AKID${randomBytes(12).toString("hex")}`;
    secretKey = randomBytes(24).toString("base64url");
  }
  writeFileSync(file, `DEV_SECRET_ID=${secretId}\nDEV_SECRET_KEY=${secretKey}\n`, { mode: 0o600 });
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
    ...process.argv.slice(2),
  ],
  { cwd: root, env, stdio: ["ignore", "inherit", "inherit"] },
);

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => dev.kill(signal));
}
dev.on("exit", (code, signal) => {
  process.exit(code ?? (signal ? 1 : 0));
});
