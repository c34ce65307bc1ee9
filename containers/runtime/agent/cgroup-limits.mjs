// Checks that the container's cgroup caps memory and processes before a handler runs, where the
// platform says an outside party applies them (locally, scripts/container-guard.mjs applies them a
// moment after the container starts; on Cloudflare the instance type bounds the container and this
// check is off).
import { readFileSync } from "node:fs";

/** Set to "1" in the container's environment when the caps must be in place before any handler runs. */
export const REQUIRE_LIMITS_VARIABLE = "AFP_REQUIRE_CGROUP_LIMITS";
/** How long an execution waits for the caps before it is refused. */
export const LIMITS_WAIT_MS = 10_000;
const LIMITS_POLL_MS = 50;
/** A cgroup v1 memory limit at or above this is "unlimited" (the kernel's page-rounded maximum). */
const UNLIMITED_MEMORY_BYTES = 2 ** 60;

/** The first of the files that can be read, trimmed; undefined when none can. */
function readFirst(paths) {
  for (const path of paths) {
    try {
      return readFileSync(path, "utf8").trim();
    } catch {
      // not this cgroup layout
    }
  }
  return undefined;
}

/** True when this container's cgroup caps both memory and the number of processes. */
export function cgroupLimitsApplied(root = "/sys/fs/cgroup") {
  const memory = readFirst([`${root}/memory/memory.limit_in_bytes`, `${root}/memory.max`]);
  const pids = readFirst([`${root}/pids/pids.max`, `${root}/pids.max`]);
  if (memory === undefined || pids === undefined || memory === "max" || pids === "max") return false;
  const memoryBytes = Number(memory);
  return Number.isFinite(memoryBytes) && memoryBytes < UNLIMITED_MEMORY_BYTES && Number(pids) > 0;
}

/** Whether this container must see its caps before running handlers (read once at start). */
export const limitsRequired = process.env[REQUIRE_LIMITS_VARIABLE] === "1";

/** Resolves true once the caps are in place (at once when not required), false after the wait. */
export async function waitForCgroupLimits(
  required = limitsRequired,
  waitMs = LIMITS_WAIT_MS,
  check = cgroupLimitsApplied,
) {
  if (!required) return true;
  const deadline = Date.now() + waitMs;
  while (!check()) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, LIMITS_POLL_MS));
  }
  return true;
}

/**
 * The container's cgroup folder the agent reads (AGENT_CGROUP_ROOT overrides it: tests give a
 * folder of their own with a memory.events file they write).
 */
export const CGROUP_ROOT = process.env.AGENT_CGROUP_ROOT ?? "/sys/fs/cgroup";
/** Whether the OOM counter could not be read once: not tried again (no cgroup here). */
let oomCounterMissing = false;

/**
 * How many processes of the container the kernel's OOM killer has killed so far: `oom_kill` of
 * cgroup v2's memory.events (hierarchical), else of cgroup v1's memory.oom_control; undefined when
 * neither can be read (then never read again).
 */
export function oomKillCount(root = CGROUP_ROOT) {
  if (oomCounterMissing && root === CGROUP_ROOT) return undefined;
  for (const path of [`${root}/memory.events`, `${root}/memory/memory.oom_control`]) {
    let text;
    try {
      text = readFileSync(path, "utf8");
    } catch {
      continue;
    }
    const count = /^oom_kill (\d+)$/m.exec(text)?.[1];
    if (count !== undefined) return Number(count);
  }
  if (root === CGROUP_ROOT) oomCounterMissing = true;
  return undefined;
}
