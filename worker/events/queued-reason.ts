// Why a queued event is still waiting: answered by its function's scheduler
// (scheduling/function-scheduler-object.ts queuedReason) and shown as `queuedReason` in the
// event's status (GET /v1/events/{requestId}). The event object's view stays a local read (its
// queuedReason is null there): the route adds the reason after its access check, bounded in time.
import { candidateSchedulerNames, schedulerStub } from "../shared/objects";
import { answerWithin } from "../shared/within";

/**
 * The reasons a queued event waits:
 * - `paused`: its function's dispatch is paused (POST .../dispatch/pause); it runs after resume;
 * - `concurrency`: its function already runs maxConcurrency events; it runs when one ends;
 * - `namespace-quota`: its namespace is at its container cap; it runs when a container is freed.
 */
export const QUEUED_REASONS = ["paused", "concurrency", "namespace-quota"] as const;
/** Why a queued event waits (see QUEUED_REASONS). */
export type QueuedReason = (typeof QUEUED_REASONS)[number];

/**
 * How long GET of an event waits for its scheduler to say why a queued event waits; past it (or on
 * the scheduler's error) queuedReason is null, "unknown", and the GET answers as ever.
 */
export const QUEUED_REASON_TIMEOUT_MS = 300;

/** The fields of an event's view that asking for (and showing) its queued reason needs. */
interface QueuedReasonView {
  requestId: string;
  namespace: string;
  functionName: string;
  phase: string;
  queuedReason: QueuedReason | null;
}

/**
 * The view with its queuedReason filled in from the function's scheduler when the event is queued
 * (unchanged otherwise). Call it only after the caller was found allowed to see the event: it asks
 * the event's own function's scheduler, at most QUEUED_REASON_TIMEOUT_MS, then null.
 */
export async function withQueuedReason<T extends QueuedReasonView>(env: Pick<Env, "SCHEDULER">, view: T): Promise<T> {
  if (view.phase !== "queued") return view;
  // The shard holding it is not known from the view (it follows the snapshot's maxConcurrency):
  // shard 0, the function's own scheduler (every function of at most SCHEDULER_SHARD_SLOTS slots),
  // is asked first; only when it knows no reason are the other candidate shards asked (at most
  // MAX_SCHEDULER_SHARDS in all), so an unsharded function's event costs one call.
  const [first, ...others] = candidateSchedulerNames(view.namespace, view.functionName, view.requestId);
  const ask = (name: string) => schedulerStub(env, name).queuedReason(view.requestId);
  const reason = await answerWithin(
    (async () => {
      const own = first === undefined ? null : await ask(first);
      if (own !== null || others.length === 0) return own;
      const reasons = await Promise.all(others.map(ask));
      return reasons.find((found) => found !== null) ?? null;
    })(),
    QUEUED_REASON_TIMEOUT_MS,
    null,
  );
  return { ...view, queuedReason: reason };
}
