#!/usr/bin/env node
// Local container guard: gives every function container that `wrangler dev` starts the memory and
// process-count caps of its function, whatever its container class (compute size: InstanceContainer,
// InstanceContainerStandard, InstanceContainerLarge; it reads the environment, never the name). workerd (local development) neither passes `labels` to
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
// Leftovers of a crashed run: workerd names every container it starts `workerd-<run>-...`, where
// <run> (16 hex digits) is new for each workerd process. The guard tells this platform's runs from
// those of other platforms on the same engine by proof, not by name: a network sidecar passes
// workerd its egress port (`--http-egress-port N`), which only the workerd that started it
// listens on, so a run whose sidecar's egress port is held by a workerd descended from this
// guard's parent (scripts/start.mjs) is this platform's. Runs proven so are recorded, as they
// appear, in $AFP_STATE_DIR/containers.json. When a runtime dies (kill -9 of the whole process
// tree) its containers outlive it; the next start on the same state folder removes every container
// of the recorded runs (`docker rm -f`), unless the guard that recorded them is still alive (a
// second platform on one state folder), and never touches a run it has not recorded.
//
// Environment: AFP_REAL_DOCKER  the Docker client to run (default: `docker` on PATH).
//              AFP_STATE_DIR    the platform's state folder (no leftover clean-up without it).
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
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

/**
 * Applies the caps one container states, if it lacks them, and records its run when it is this
 * platform's; never throws (a container can vanish at any moment).
 */
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
  recordRunOf(container);
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

/** The run part of a workerd container name (`workerd-<run>-<worker>-<class>-<object id>[-proxy]`). */
const WORKERD_RUN_PATTERN = /^\/?workerd-([0-9a-f]{16})-/;
/** The egress port workerd hands a network sidecar, in the sidecar's arguments. */
const EGRESS_PORT_ARGUMENT = "--http-egress-port";
/** State of a listening socket in /proc/net/tcp. */
const TCP_LISTEN_STATE = "0A";
/** File in the state folder recording this platform's workerd runs (see the header). */
const RUNS_FILE = "containers.json";

const stateDir = process.env.AFP_STATE_DIR;
/** Runs proven to be this platform's (this start's workerd); recorded in RUNS_FILE. */
const ownRuns = new Set();
/** Runs proven to be another platform's: never checked again. */
const foreignRuns = new Set();
/** Recorded runs of an earlier start whose containers could not be removed: kept for the next start. */
let inheritedRuns = [];
/** False when another live guard records this state folder's runs (this one then writes nothing). */
let recording = Boolean(stateDir);

/** Parent pid of a process from /proc, or undefined when it is gone. */
function parentPid(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

/** The command name of a process from /proc, or undefined when it is gone. */
function commandName(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return undefined;
  }
}

/** The pids of the workerd processes descended from this guard's parent (the platform's start script). */
function ownWorkerdPids() {
  const children = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const parent = parentPid(entry);
    if (parent !== undefined) children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
  }
  const tree = [process.ppid];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]) ?? []));
  return tree.filter((pid) => commandName(pid) === "workerd");
}

/** Socket inodes (as strings) open in the given processes. */
function socketInodes(pids) {
  const inodes = new Set();
  for (const pid of pids) {
    let fds = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (match) inodes.add(match[1]);
      } catch {
        // closed meanwhile
      }
    }
  }
  return inodes;
}

/** Listening TCP (IPv4 and IPv6) ports of the host, each with the inode of its socket. */
function listeningPorts() {
  const ports = [];
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[3] !== TCP_LISTEN_STATE) continue;
      ports.push({ port: Number.parseInt(fields[1]?.split(":")[1] ?? "", 16), inode: fields[9] });
    }
  }
  return ports;
}

/**
 * Whose a sidecar's egress port is: "own" when one of this platform's workerd processes listens on
 * it, "foreign" when another process does, undefined when nobody does (yet).
 */
function egressPortOwner(port) {
  const listeners = listeningPorts().filter((entry) => entry.port === port);
  if (listeners.length === 0) return undefined;
  const own = socketInodes(ownWorkerdPids());
  return listeners.some((entry) => own.has(entry.inode)) ? "own" : "foreign";
}

/** The egress port a network sidecar was started with, or undefined for any other container. */
function egressPortOf(container) {
  const args = container.Args ?? [];
  const index = args.indexOf(EGRESS_PORT_ARGUMENT);
  const port = index >= 0 ? Number(args[index + 1]) : Number.NaN;
  return Number.isInteger(port) && port > 0 ? port : undefined;
}

/** Reads RUNS_FILE: the runs recorded by the last start on this state folder, and its guard. */
function readRuns() {
  try {
    const recorded = JSON.parse(readFileSync(join(stateDir, RUNS_FILE), "utf8"));
    const runs = Array.isArray(recorded.runs) ? recorded.runs.filter((run) => /^[0-9a-f]{16}$/.test(run)) : [];
    return { runs, guardPid: Number.isInteger(recorded.guardPid) ? recorded.guardPid : undefined };
  } catch {
    return { runs: [], guardPid: undefined };
  }
}

/** Writes RUNS_FILE atomically (a crash mid-write leaves the previous version). */
function writeRuns(runs) {
  const file = join(stateDir, RUNS_FILE);
  const recorded = { guardPid: process.pid, runs: [...new Set([...inheritedRuns, ...runs])] };
  writeFileSync(`${file}.tmp`, `${JSON.stringify(recorded, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/** Records the container's workerd run when it is proven to be this platform's (see the header). */
function recordRunOf(container) {
  if (!recording) return;
  const run = WORKERD_RUN_PATTERN.exec(container.Name ?? "")?.[1];
  if (!run || ownRuns.has(run) || foreignRuns.has(run)) return;
  const port = egressPortOf(container);
  if (port === undefined) return;
  const owner = egressPortOwner(port);
  if (owner === "foreign") foreignRuns.add(run);
  if (owner !== "own") return;
  ownRuns.add(run);
  writeRuns([...ownRuns]);
  log(`workerd run ${run} is this platform's; recorded in ${join(stateDir, RUNS_FILE)}`);
}

/** True when pid is a live container guard (the one that recorded a state folder's runs). */
function isLiveGuard(pid) {
  if (pid === undefined || pid === process.pid) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("container-guard.mjs");
  } catch {
    return false;
  }
}

/**
 * Removes every container, running or stopped, of the runs recorded by the previous start on this
 * state folder (its runtime died or stopped; workerd does not remove them), then forgets those runs.
 */
async function removeLeftovers() {
  if (!stateDir) return;
  const { runs, guardPid } = readRuns();
  if (isLiveGuard(guardPid)) {
    recording = false;
    log(`the guard (pid ${guardPid}) of another platform on ${stateDir} is alive: its containers are left alone`);
    return;
  }
  // Until they are gone, the runs stay recorded (a failure below leaves them for the next start).
  inheritedRuns = runs;
  writeRuns([]);
  if (runs.length === 0) return;
  const listed = await dockerCall(["ps", "--all", "--no-trunc", "--format", "{{.ID}} {{.Names}}"]);
  const leftovers = listed
    .split("\n")
    .map((line) => line.split(" "))
    .filter(([id, name]) => id && runs.includes(WORKERD_RUN_PATTERN.exec(name ?? "")?.[1] ?? ""))
    .map(([id]) => id.slice(0, 12));
  if (leftovers.length > 0) {
    await dockerCall(["rm", "--force", ...leftovers]);
    log(
      `removed ${leftovers.length} leftover container(s) of the previous run(s) ${runs.join(", ")}: ${leftovers.join(" ")}`,
    );
  }
  inheritedRuns = [];
  writeRuns([...ownRuns]);
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
try {
  await removeLeftovers();
} catch (error) {
  log(`removing the previous run's leftover containers failed: ${error.message}`);
}
followEvents();
await sweep();
log(`following container starts (memory overhead ${MEMORY_OVERHEAD_MB} MB)`);
