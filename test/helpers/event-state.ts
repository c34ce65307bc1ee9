// A queued event's state, for unit tests of the pure event modules (machine, timeline, progress,
// tags) that start from an accepted event without a Durable Object.
import type { EventState } from "../../worker/events/event-machine";
import { functionSnapshot } from "./function-snapshot";

/** A queued event of function default/resize (timeout 5 s), invoked at 1,000; `overrides` win. */
export function queuedEventState(overrides: Partial<EventState> = {}): EventState {
  return {
    requestId: "7f1d2a1e-0000-4000-8000-000000000001",
    namespace: "default",
    functionName: "resize",
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    function: functionSnapshot("default", "resize", { codeKey: "code/default/resize/a.zip", timeoutSeconds: 5 }),
    phase: "queued",
    version: 1,
    invokedAt: 1_000,
    ...overrides,
  };
}
