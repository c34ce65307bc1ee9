// Replay: an event's payload invoked again as a new event of the same function and qualifier,
// through the one invocation entry point (invokeAsync: the function's current configuration, its
// QPS limit, its checks), linked to the original both ways.
import { unwrap } from "../shared/errors";
import type { eventStub } from "../shared/objects";
import type { EventPayload } from "./async-event-object";
import { invokeAsync } from "./invoke";

/** The Durable Object of one event (as event-access.ts finds it for the caller). */
type EventStub = ReturnType<typeof eventStub>;

/** A replay accepted: the new event's RequestId and the original's. */
export interface ReplayAccepted {
  requestId: string;
  replayOf: string;
}

/**
 * Replays an event the caller may see (found with visibleEvent): reads its payload, invokes it
 * again as a new event carrying `replayOf` and the original's tags, then records the new RequestId on the original. The
 * original may be in any status. Refusals are those of the invocation (FUNCTION_NOT_FOUND when the
 * function was deleted, FUNCTION_NOT_ASYNC, RATE_LIMITED) and EVENT_NOT_FOUND when the original no
 * longer exists; nothing is recorded then.
 *
 * The recording comes after the new event is accepted and is tried once: were it to fail, the new
 * event still exists (and still names its original in `replayOf`), but the original does not list it.
 */
export async function replayEvent(env: Env, original: EventStub): Promise<ReplayAccepted> {
  const source: EventPayload = unwrap(await original.payload());
  const accepted = await invokeAsync(env, {
    namespace: source.namespace,
    functionName: source.functionName,
    qualifier: source.qualifier,
    payloadText: source.payload,
    replayOf: source.requestId,
    // The replay keeps the original's tags (a filter by tag finds both).
    ...(source.tags !== undefined ? { tags: source.tags } : {}),
  });
  await recordOnOriginal(original, source.requestId, accepted.requestId);
  return { requestId: accepted.requestId, replayOf: source.requestId };
}

/** Records the replay on its original; a failure is logged, never thrown (the replay is accepted). */
async function recordOnOriginal(original: EventStub, originalId: string, replayId: string): Promise<void> {
  try {
    const recorded = await original.recordReplay(replayId);
    if (!recorded.ok) console.warn("replay not recorded on its original", originalId, replayId, recorded.message);
  } catch (error) {
    console.warn("replay not recorded on its original", originalId, replayId, String(error));
  }
}
