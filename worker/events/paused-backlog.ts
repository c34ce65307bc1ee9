// The bound on a paused function's backlog: while its dispatch is paused (scheduling/dispatch-pause.ts)
// its events wait in its scheduler; past MAX_PAUSED_BACKLOG of them a new invocation is refused at
// invoke time with RATE_LIMITED, before its event is created, so a forgotten pause cannot grow an
// unbounded backlog (nor the load of its events' watchdogs and status reads).
import { PlatformError } from "../shared/errors";
import { schedulerName, schedulerStub } from "../shared/objects";

/**
 * Most events a paused function holds in its scheduler: past it, new invocations are refused. Events
 * already on the dispatch queue still arrive and are held, so the bound is approximate by that much.
 */
export const MAX_PAUSED_BACKLOG = 10_000;
/** The retry hint of a refusal: the backlog only shrinks on resume (or terminate). */
export const PAUSED_BACKLOG_RETRY_AFTER_SECONDS = 60;
/**
 * How long an isolate trusts its scheduler's answer that the function's dispatch runs: invocations
 * then skip the scheduler call. A pause is seen within this time (a few more events may be held).
 */
export const DISPATCH_RUNNING_CACHE_MS = 2_000;

/** Per isolate: until when a function's dispatch is known to run (epoch ms), by namespace/function. */
const runningUntil = new Map<string, number>();
/** Most functions remembered per isolate (oldest dropped first). */
const MAX_REMEMBERED = 1_000;

/**
 * Refuses (RATE_LIMITED) a new invocation of a function whose dispatch is paused with
 * MAX_PAUSED_BACKLOG events already waiting. One call to the function's scheduler, skipped for
 * DISPATCH_RUNNING_CACHE_MS after it answered that dispatch runs. A scheduler that fails does not
 * block invocations (the event is accepted, as before the bound).
 */
export async function checkPausedBacklog(
  env: Pick<Env, "SCHEDULER">,
  namespace: string,
  functionName: string,
): Promise<void> {
  const name = schedulerName(namespace, functionName);
  const now = Date.now();
  if ((runningUntil.get(name) ?? 0) > now) return;
  const answer = await schedulerStub(env, name)
    .admission()
    .catch((error: unknown) => {
      console.warn("scheduler did not answer the paused backlog check; invocation accepted", name, String(error));
      return null;
    });
  if (answer === null) return;
  if (!answer.dispatchPaused) {
    runningUntil.delete(name);
    if (runningUntil.size >= MAX_REMEMBERED) {
      const oldest = runningUntil.keys().next().value;
      if (oldest !== undefined) runningUntil.delete(oldest);
    }
    runningUntil.set(name, now + DISPATCH_RUNNING_CACHE_MS);
    return;
  }
  if (answer.admitted) return;
  throw new PlatformError(
    "RATE_LIMITED",
    `function ${functionName}'s dispatch is paused and ${answer.pendingEvents} events already wait (MAX_PAUSED_BACKLOG = ${MAX_PAUSED_BACKLOG}); no event was created: resume its dispatch (POST .../dispatch/resume) or terminate queued events, then retry after ${PAUSED_BACKLOG_RETRY_AFTER_SECONDS} s`,
    { retryAfterSeconds: PAUSED_BACKLOG_RETRY_AFTER_SECONDS },
  );
}

/** Forgets what this isolate knows of the function's dispatch (its pause changed here). */
export function forgetDispatchRunning(namespace: string, functionName: string): void {
  runningUntil.delete(schedulerName(namespace, functionName));
}
