// The unprivileged user handler processes run as, and the signals the agent sends them: to a whole
// process group, or to every process of the handler user (scanned in /proc).
import { randomInt } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";

/**
 * Lowest handler uid/gid: above every system and regular account of the image and of a host's usual
 * accounts. Locally, containers share the host kernel without user namespaces, so per-uid limits
 * (RLIMIT_NPROC) count across containers of the same uid: the range is wide enough (about 2e9) that
 * two containers practically never draw the same one.
 */
const HANDLER_ID_MIN = 100_000;
/** One past the highest handler uid/gid (below 2^31, what every tool takes as a uid). */
const HANDLER_ID_END = 2_000_000_000;
/** Rounds of the sweep in killHandlerUser (a process that forks between two rounds is caught next). */
const SWEEP_ROUNDS = 20;

/**
 * The uid and gid handler processes run as: a fresh one per container boot (so per-uid limits and
 * file ownership never span containers), or undefined when the agent is not root and cannot drop.
 */
export const HANDLER_ID = process.getuid?.() === 0 ? randomInt(HANDLER_ID_MIN, HANDLER_ID_END) : undefined;

/** Sends a signal to a whole process group; true when it was delivered to at least one process. */
export function signalGroup(pgid, signal) {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false; // the group is gone (ESRCH)
  }
}

/** Pids of live (not zombie) processes whose real uid is the handler user, read from /proc. */
function handlerUserPids() {
  const pids = [];
  let entries = [];
  try {
    entries = readdirSync("/proc");
  } catch {
    return pids;
  }
  for (const entry of entries) {
    if (!/^[0-9]+$/.test(entry)) continue;
    let status;
    try {
      status = readFileSync(`/proc/${entry}/status`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
    const state = /^State:\s+(\S)/m.exec(status)?.[1];
    if (Number(uid) === HANDLER_ID && state !== "Z") pids.push(Number(entry));
  }
  return pids;
}

/**
 * Kills every process of the handler user, including any that left the handler's process group
 * (setsid), by scanning /proc as root: no process of the user needs to be started for it, so it
 * works even when the user is at its process limit. Synchronous, so that nothing of a previous
 * handler process survives into the next one.
 */
export function killHandlerUser() {
  if (HANDLER_ID === undefined) return;
  for (let round = 0; round < SWEEP_ROUNDS; round++) {
    const pids = handlerUserPids();
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
}
