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
//   AFP_SCHEDULED_INTERVAL_MS
//                    period of the local cron driver, in ms (default 60000: the cron's minute; 1000
//                    to 3600000; 0 turns it off). wrangler dev fires no cron trigger by itself, so
//                    this script runs the Worker's `scheduled` handler (the event index's 3-day
//                    retention) on wrangler.toml's crons at every multiple of the period, through
//                    wrangler dev's loopback-only /cdn-cgi/local/scheduled route.
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
/** Default period of the local cron driver: the minute of wrangler.toml's `* * * * *` cron. */
const DEFAULT_SCHEDULED_INTERVAL_MS = 60_000;
/** Shortest period AFP_SCHEDULED_INTERVAL_MS may set (0 turns the driver off). */
const MIN_SCHEDULED_INTERVAL_MS = 1_000;
/** Longest period AFP_SCHEDULED_INTERVAL_MS may set. */
const MAX_SCHEDULED_INTERVAL_MS = 60 * 60_000;
/** How long the driver waits for one scheduled run before counting it as failed. */
const SCHEDULED_RUN_TIMEOUT_MS = 5 * 60_000;
/** Characters of a failed run's answer quoted in the driver's log line. */
const SCHEDULED_ERROR_PREVIEW_CHARS = 200;

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

/** The local cron driver's period (AFP_SCHEDULED_INTERVAL_MS), or exits with the rule it breaks. */
function scheduledIntervalMs() {
  const raw = process.env.AFP_SCHEDULED_INTERVAL_MS;
  if (raw === undefined || raw === "") return DEFAULT_SCHEDULED_INTERVAL_MS;
  const value = /^[0-9]+$/.test(raw) ? Number(raw) : Number.NaN;
  if (value === 0 || (value >= MIN_SCHEDULED_INTERVAL_MS && value <= MAX_SCHEDULED_INTERVAL_MS)) return value;
  log(
    `refusing to start: AFP_SCHEDULED_INTERVAL_MS is "${raw}"; it must be 0 (off) or a whole number of ` +
      `milliseconds from ${MIN_SCHEDULED_INTERVAL_MS} to ${MAX_SCHEDULED_INTERVAL_MS}`,
  );
  process.exit(1);
}
const scheduledInterval = scheduledIntervalMs();

/** The cron expressions of wrangler.toml's [triggers] (what Cloudflare fires once deployed). */
function configuredCrons() {
  const toml = readFileSync(join(root, "wrangler.toml"), "utf8");
  const list = /^\s*crons\s*=\s*\[([^\]]*)\]/m.exec(toml)?.[1] ?? "";
  return [...list.matchAll(/"([^"]*)"/g)].map((match) => match[1]);
}

/**
 * Fires the Worker's `scheduled` handler for every configured cron at each multiple of the period
 * (the minute by default, as Cloudflare does), with that instant as its scheduled time. wrangler
 * dev serves /cdn-cgi/local/scheduled on its loopback port only to loopback Host and Origin
 * headers. A failed run is logged in one line (the first of a series, then the recovery); nothing
 * here stops the platform. Returns a function that stops the driver.
 */
function startScheduledDriver(crons) {
  let timer;
  let stopped = false;
  let failing = 0;
  const failed = (cron, reason) => {
    failing += 1;
    if (failing === 1) log(`scheduled run of "${cron}" failed: ${reason.slice(0, SCHEDULED_ERROR_PREVIEW_CHARS)}`);
  };
  const runOnce = async (cron, time) => {
    const url = `http://127.0.0.1:${port}/cdn-cgi/local/scheduled?cron=${encodeURIComponent(cron)}&time=${time}&format=json`;
    let answer;
    try {
      answer = await fetch(url, { signal: AbortSignal.timeout(SCHEDULED_RUN_TIMEOUT_MS) });
    } catch (error) {
      if (error?.name === "TimeoutError") failed(cron, `no answer within ${SCHEDULED_RUN_TIMEOUT_MS} ms`);
      // Otherwise wrangler dev is not listening yet (or is restarting): the next period tries again.
      return;
    }
    const text = await answer.text().catch(() => "");
    if (!answer.ok) return failed(cron, `HTTP ${answer.status} ${text}`);
    if (failing > 0) log(`scheduled runs succeed again after ${failing} failed`);
    failing = 0;
  };
  const arm = () => {
    if (stopped) return;
    const now = Date.now();
    const next = (Math.floor(now / scheduledInterval) + 1) * scheduledInterval;
    timer = setTimeout(async () => {
      for (const cron of crons) await runOnce(cron, next).catch(() => undefined);
      arm();
    }, next - now);
  };
  arm();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function run(command, args, label) {
  const result = spawnSync(command, args, { cwd: root, env, stdio: ["ignore", "inherit", "inherit"] });
  if (result.status !== 0) {
    log(`${label} failed (exit ${result.status ?? result.signal})`);
    process.exit(result.status ?? 1);
  }
}

// The Worker's static assets: the third-party browser files under public/vendor/ (gitignored).
run(process.execPath, [join(root, "scripts", "vendor-assets.mjs")], "copying the vendored browser files");
if (process.env.AFP_SKIP_ENGINE !== "1") {
  run("bash", [join(root, "scripts", "local-engine.sh")], "container engine preparation");
}
// Image functions: builds every registered image (wrangler.toml CONTAINER_IMAGES) before wrangler
// dev builds them again from the layer cache; a failing build stops here, naming its image.
run(process.execPath, [join(root, "scripts", "images.mjs"), "sync"], "building the registered images (image:sync)");
// Gives every function container the memory and process-count caps its function states (workerd
// sets no Docker limits locally); it exits with this process (its standard input closes).
const containerGuard = spawn(process.execPath, [join(root, "scripts", "container-guard.mjs")], {
  cwd: root,
  env,
  stdio: ["pipe", "inherit", "inherit"],
});
// Every D1 database of wrangler.toml takes the same migrations: DB (the registry and the event index)
// and each further index database (INDEX_DB_1, ...; INDEX_DATABASES maps namespaces to them).
// Each [[d1_databases]] table's binding: its `binding = "..."` line before the next table header.
const d1Bindings = [];
for (const table of readFileSync(join(root, "wrangler.toml"), "utf8")
  .split(/^\[\[d1_databases\]\]\s*$/m)
  .slice(1)) {
  const body = table.split(/^\s*\[/m)[0] ?? "";
  const binding = /^\s*binding\s*=\s*"([A-Za-z0-9_]+)"\s*$/m.exec(body)?.[1];
  if (binding === undefined) {
    log("a [[d1_databases]] table of wrangler.toml names no binding");
    process.exit(1);
  }
  d1Bindings.push(binding);
}
if (!d1Bindings.includes("DB")) {
  log("wrangler.toml declares no [[d1_databases]] table with binding DB");
  process.exit(1);
}
for (const binding of d1Bindings) {
  run(
    process.execPath,
    [wrangler, "d1", "migrations", "apply", binding, "--local", "--persist-to", persistDir],
    `D1 migrations (${binding})`,
  );
}
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

const crons = configuredCrons();
const stopScheduledDriver = scheduledInterval > 0 && crons.length > 0 ? startScheduledDriver(crons) : () => undefined;
if (scheduledInterval > 0 && crons.length > 0) {
  log(`cron driver: ${crons.join(", ")} every ${scheduledInterval} ms (AFP_SCHEDULED_INTERVAL_MS)`);
}

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
  stopScheduledDriver();
  containerGuard.kill();
  process.exit(code ?? (signal ? 1 : 0));
});
