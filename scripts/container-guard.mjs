#!/usr/bin/env node
// Local container guard: gives every function container that `wrangler dev` starts the memory and
// process-count caps of its function. workerd (local development) neither passes `labels` to
// Docker nor turns `instance: { memoryMib }` into a Docker limit, so the instance Durable Object
// states the caps in the container's environment and this guard applies them with `docker update`
// as soon as Docker reports the container (its `create` event, re-checked on `start`):
//   AFP_MEMORY_MB   the function's memory size; the container gets it plus MEMORY_OVERHEAD_MB
//                   (the runtime agent and the code extraction), with no swap beyond that;
//   AFP_PIDS_LIMIT  the container's process (and thread) count cap.
// The same keys as labels (`afp.memory-mb`, `afp.pids-limit`) are honoured too, should workerd
// ever pass labels through. A container stating either gets both caps (a missing or malformed
// value takes its default; values are clamped to the platform's ranges). Containers stating
// neither (the network sidecars, anything else on the engine) are left alone. A container whose
// caps cannot be applied is killed rather than left running without them.
//
// Started by scripts/start.mjs next to `wrangler dev`; it exits when its standard input closes
// (the parent went away) or on SIGINT/SIGTERM. Every application is logged with its delay after
// the container's creation, as Docker timed it.
//
// Environment: AFP_REAL_DOCKER  the Docker client to run (default: `docker` on PATH).
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

/** Memory given on top of the function's memory size, in MB: the agent (Node) and the unzip. */
const MEMORY_OVERHEAD_MB = 128;
/** Smallest function memory size honoured, in MB (the platform's lower bound for memorySize). */
const MIN_MEMORY_MB = 64;
/** Largest function memory size honoured, in MB (the platform's upper bound for memorySize). */
const MAX_MEMORY_MB = 3072;
/** Memory size assumed when a function container states none (the platform's default memorySize), in MB. */
const DEFAULT_MEMORY_MB = 128;
/** Process-count cap of a function container that states none. */
const DEFAULT_PIDS_LIMIT = 512;
/** Smallest process-count cap honoured: the agent and one Node handler need about 30 threads. */
const MIN_PIDS_LIMIT = 32;
/** Largest process-count cap honoured. */
const MAX_PIDS_LIMIT = 4096;
/** How long one `docker inspect` or `docker update` may take before it counts as failed, in ms. */
const DOCKER_CALL_TIMEOUT_MS = 15_000;
/** Attempts of one `docker update` before the container is killed instead: it must not run uncapped. */
const UPDATE_ATTEMPTS = 3;
/** Pause between two attempts of one `docker update`, in ms. */
const UPDATE_RETRY_DELAY_MS = 200;
/** Pause before `docker events` is followed again after it ended unexpectedly, in ms. */
const EVENTS_RESTART_DELAY_MS = 1_000;

const docker = process.env.AFP_REAL_DOCKER || "docker";

function log(message) {
  process.stderr.write(`[container-guard] ${message}\n`);
}

/** Runs the Docker client and resolves with its standard output; rejects on failure or timeout. */
function dockerCall(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(docker, args, { stdio: ["ignore", "pipe", "pipe"], timeout: DOCKER_CALL_TIMEOUT_MS });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`docker ${args[0]} failed (${code ?? signal}): ${stderr.trim()}`));
    });
  });
}

/**
 * Reads one integer setting from the container's labels or environment: null when the container
 * does not state it, undefined when the value is not a whole number (logged: a platform bug).
 */
function statedInteger(id, config, label, variable) {
  const fromLabel = config.Labels?.[label];
  const fromEnv = (config.Env ?? []).find((entry) => entry.startsWith(`${variable}=`))?.slice(variable.length + 1);
  const raw = fromLabel ?? fromEnv;
  if (raw === undefined) return null;
  if (!/^\d{1,9}$/.test(raw)) {
    log(`${id}: ignoring ${variable}=${JSON.stringify(raw)} (not a whole number)`);
    return undefined;
  }
  return Number(raw);
}

/** Clamps a stated value into its honoured range. */
function clamp(value, min, max) {
  return Math.min(max, Math.max(min, value));
}

/**
 * The caps one container asks for, as Docker values: memory in bytes (swap included, so no swap)
 * and the pids limit; undefined for a container that states neither. A container that states one
 * is a function container and gets both: a missing or unreadable value takes its default.
 */
function wantedCaps(id, config) {
  const memoryMb = statedInteger(id, config, "afp.memory-mb", "AFP_MEMORY_MB");
  const pidsLimit = statedInteger(id, config, "afp.pids-limit", "AFP_PIDS_LIMIT");
  if (memoryMb === null && pidsLimit === null) return undefined;
  return {
    memoryBytes:
      (clamp(memoryMb ?? DEFAULT_MEMORY_MB, MIN_MEMORY_MB, MAX_MEMORY_MB) + MEMORY_OVERHEAD_MB) * 1024 * 1024,
    pidsLimit: clamp(pidsLimit ?? DEFAULT_PIDS_LIMIT, MIN_PIDS_LIMIT, MAX_PIDS_LIMIT),
  };
}

/** The `docker update` arguments that bring a container's HostConfig to the wanted caps; [] when it has them. */
function updateArguments(hostConfig, caps) {
  const args = [];
  if (hostConfig.Memory !== caps.memoryBytes || hostConfig.MemorySwap !== caps.memoryBytes)
    args.push("--memory", String(caps.memoryBytes), "--memory-swap", String(caps.memoryBytes));
  if (hostConfig.PidsLimit !== caps.pidsLimit) args.push("--pids-limit", String(caps.pidsLimit));
  return args;
}

/** Containers being handled now, so that a `create` and a `start` of one container do not race. */
const inFlight = new Map();
/** When Docker reported each recent container start (ms, Docker's clock), for the delay in the log. */
const startedAt = new Map();
/** How many recent start times are kept for the log. */
const STARTS_REMEMBERED = 1_000;

/** Applies the caps one container states, if it lacks them; never throws (a container can vanish at any moment). */
function guard(id) {
  const previous = inFlight.get(id) ?? Promise.resolve();
  const next = previous.then(() => applyCaps(id)).catch((error) => log(`${id}: ${error.message}`));
  inFlight.set(id, next);
  next.finally(() => {
    if (inFlight.get(id) === next) inFlight.delete(id);
  });
  return next;
}

async function applyCaps(id) {
  const [container] = JSON.parse(await dockerCall(["inspect", "--type", "container", id]));
  if (!container) return;
  const caps = wantedCaps(id, container.Config ?? {});
  if (!caps) return;
  const args = updateArguments(container.HostConfig ?? {}, caps);
  if (args.length === 0) return;
  if (!(await updateOrKill(id, args))) return;
  const now = Date.now();
  const started = startedAt.get(id);
  log(
    `${id}: memory ${caps.memoryBytes / 1024 / 1024} MB, pids ${caps.pidsLimit}; applied ${Math.round(now - Date.parse(container.Created))} ms after ` +
      `creation, ${started === undefined ? "before its start was reported" : `${Math.round(now - started)} ms after its start`}`,
  );
}

/**
 * Runs `docker update` on a container, retried; when every attempt fails on a container that still
 * exists, kills it (its Durable Object sees it die and starts another). False when it was killed.
 */
async function updateOrKill(id, args) {
  for (let attempt = 1; ; attempt++) {
    try {
      await dockerCall(["update", ...args, id]);
      return true;
    } catch (error) {
      if (/no such container/i.test(error.message)) throw error;
      if (attempt >= UPDATE_ATTEMPTS) {
        log(`${id}: caps not applied (${error.message}); killing the container, which must not run without them`);
        await dockerCall(["kill", id]).catch((killError) => log(`${id}: ${killError.message}`));
        return false;
      }
      await new Promise((resolve) => setTimeout(resolve, UPDATE_RETRY_DELAY_MS));
    }
  }
}

/** Records a container's start time, forgetting the oldest beyond STARTS_REMEMBERED. */
function rememberStart(id, atMs) {
  startedAt.set(id, atMs);
  if (startedAt.size > STARTS_REMEMBERED) startedAt.delete(startedAt.keys().next().value);
}

let events;
let stopping = false;

/** Follows Docker's container `create` and `start` events, guarding each container they name. */
function followEvents() {
  events = spawn(
    docker,
    [
      "events",
      "--filter",
      "type=container",
      "--filter",
      "event=create",
      "--filter",
      "event=start",
      "--format",
      "{{json .}}",
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  createInterface({ input: events.stdout }).on("line", (line) => {
    try {
      const event = JSON.parse(line);
      if (typeof event.id !== "string" || !/^[0-9a-f]{64}$/.test(event.id)) return;
      const id = event.id.slice(0, 12);
      if (event.status === "start" && typeof event.timeNano === "number") rememberStart(id, event.timeNano / 1e6);
      guard(id);
    } catch {
      log(`unreadable docker event: ${line.slice(0, 200)}`);
    }
  });
  events.on("error", (error) => log(`docker events: ${error.message}`));
  events.on("close", () => {
    if (stopping) return;
    log("docker events ended; following again");
    setTimeout(() => {
      followEvents();
      sweep();
    }, EVENTS_RESTART_DELAY_MS);
  });
}

/** Guards every container that already exists (those created before the guard listened). */
async function sweep() {
  try {
    const ids = (await dockerCall(["ps", "--all", "--quiet", "--no-trunc"])).split("\n").filter(Boolean);
    await Promise.all(ids.map((id) => guard(id.slice(0, 12))));
  } catch (error) {
    log(`listing containers failed: ${error.message}`);
  }
}

function stop() {
  stopping = true;
  events?.kill("SIGTERM");
  process.exit(0);
}

for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, stop);
// The parent holds our standard input open; its end means the platform went away.
process.stdin.on("end", stop);
process.stdin.on("error", stop);
process.stdin.resume();
followEvents();
await sweep();
log(`following container starts (memory overhead ${MEMORY_OVERHEAD_MB} MB)`);
