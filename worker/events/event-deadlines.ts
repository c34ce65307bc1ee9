// The deadlines of one event, computed in one place: the event object's alarm is armed for the
// next one and acts on it once it is due.
import { IMAGE_PORT_WAIT_MS } from "../contract/execution-spec";
import type { EventState } from "./event-machine";

/**
 * Status stays readable this long after the event ends by default; a namespace may set its own
 * retention (event-retention.ts), which the event object passes to nextDeadline as `retentionAt`.
 */
export const EVENT_RETENTION_MS = 72 * 60 * 60 * 1000;
/** A queued event whose dispatch has not been claimed by then is enqueued again. */
export const DISPATCH_WATCHDOG_MS = 30_000;
/** Longest wait between two watchdog re-enqueues of a queued event. */
export const MAX_DISPATCH_WATCHDOG_MS = 5 * 60_000;
/**
 * The watchdog's next look at a queued event its scheduler holds pending (paused, or waiting for
 * capacity): nothing is re-sent while it is held, so a paused backlog costs one scheduler call per
 * event per this time instead of a queue message, an index write and a timeline entry per 5 min.
 */
export const WATCHDOG_HELD_RECHECK_MS = 30 * 60_000;
/**
 * How long an instance may take from claiming the event to a ready container. The handler's hand-over
 * may come later by as much as the function's timeout (its code loading at a cold start: the agent
 * fails code still loading past the timeout with 433); see startLimitOf.
 */
export const START_TIMEOUT_MS = 120_000;
/**
 * Longest shipping of one code package to the container (5 min): the transfer of up to 500 MiB (a
 * package from an R2 object) and the agent's extraction. The instance ends a slower ship with its
 * cause (instances/agent-client.ts); the start backstop allows for it (startLimitOf).
 */
export const CODE_SHIP_TIMEOUT_MS = 5 * 60_000;
/** The instance enforces the timeout; the event object fails the event itself only after this grace. */
export const TIMEOUT_BACKSTOP_GRACE_MS = 10_000;
/**
 * How long a graceful terminate waits for the handler after SIGTERM before forcing the stop, unless
 * its request names a grace period (graceSeconds, MIN_GRACE_SECONDS to MAX_GRACE_SECONDS).
 */
export const GRACEFUL_TERMINATE_TIMEOUT_MS = 30_000;
/** Shortest grace period a graceful terminate request may name, in seconds. */
export const MIN_GRACE_SECONDS = 1;
/**
 * Longest grace period a graceful terminate request may name, in seconds (15 minutes): the
 * function's timeout still ends a handler that runs past it.
 */
export const MAX_GRACE_SECONDS = 900;

/**
 * When a `starting` event is ended by its object's backstop: a container start (START_TIMEOUT_MS),
 * the code package's shipping (CODE_SHIP_TIMEOUT_MS) and the code's loading (at most the function's
 * timeout) after the claim, and for an image function the wait for its server (IMAGE_PORT_WAIT_MS).
 * The instance and the agent end the event earlier with the precise
 * cause; this fires only when they are gone.
 */
export function startLimitOf(state: EventState, now: number): number {
  // An image function's server may take IMAGE_PORT_WAIT_MS more to listen (its shim waits that long).
  const imageWait = state.function.image ? IMAGE_PORT_WAIT_MS : 0;
  return (
    (state.claimedAt ?? now) +
    START_TIMEOUT_MS +
    CODE_SHIP_TIMEOUT_MS +
    imageWait +
    state.function.timeoutSeconds * 1000
  );
}

/** What the alarm does once a deadline is due. */
export type DeadlineKind =
  /** Queued: enqueue the dispatch again (see nextWatchdogDelay). */
  | "dispatch-watchdog"
  /** Starting: end the event, the container did not start the handler in time. */
  | "start-backstop"
  /** Running after a graceful terminate: force the stop, the handler outlived its grace period. */
  | "terminate-grace"
  /** Running: end the event as timed out, the instance did not report in time. */
  | "timeout-backstop"
  /** Ended: delete the event. */
  | "retention";

/** One deadline of an event: what is due, and when (epoch ms). */
export interface Deadline {
  kind: DeadlineKind;
  at: number;
}

/**
 * The event's next deadline in its phase. `watchdogAt` is the stored time of a queued event's
 * dispatch watchdog (without one, the watchdog is due at once). A running event that was asked to
 * terminate gracefully has two: the forced stop is returned when it is due or comes first, else the
 * timeout backstop. An ended event is deleted at `retentionAt` (its namespace's retention after the
 * end, see event-retention-duty.ts), EVENT_RETENTION_MS after the end without one.
 */
export function nextDeadline(
  state: EventState,
  now: number,
  watchdogAt: number | undefined,
  retentionAt?: number,
): Deadline {
  switch (state.phase) {
    case "queued":
      return { kind: "dispatch-watchdog", at: watchdogAt ?? now };
    case "starting":
      return { kind: "start-backstop", at: startLimitOf(state, now) };
    case "running": {
      const timeout: Deadline = {
        kind: "timeout-backstop",
        at: (state.startedAt ?? now) + state.function.timeoutSeconds * 1000 + TIMEOUT_BACKSTOP_GRACE_MS,
      };
      if (state.terminateRequestedAt === undefined) return timeout;
      const forced: Deadline = {
        kind: "terminate-grace",
        at: state.terminateRequestedAt + (state.terminateGraceMs ?? GRACEFUL_TERMINATE_TIMEOUT_MS),
      };
      return forced.at <= now || forced.at <= timeout.at ? forced : timeout;
    }
    case "finished":
    case "failed":
    case "aborted":
      return { kind: "retention", at: retentionAt ?? (state.endedAt ?? now) + EVENT_RETENTION_MS };
    default: {
      const unreachable: never = state.phase;
      return unreachable;
    }
  }
}

/**
 * The wait before the next re-enqueue of a queued event: the previous wait (DISPATCH_WATCHDOG_MS
 * before the first) doubled, at most MAX_DISPATCH_WATCHDOG_MS.
 */
export function nextWatchdogDelay(previousDelayMs: number | undefined): number {
  return Math.min((previousDelayMs ?? DISPATCH_WATCHDOG_MS) * 2, MAX_DISPATCH_WATCHDOG_MS);
}
