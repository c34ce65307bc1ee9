// An ended event's row of the D1 event index, for tests that write or send index rows without an
// event behind them.
import type { EventIndexEntry } from "../../worker/events/event-index-entry";

/**
 * A FINISHED (200) row of `functionName` in `namespace` ($LATEST, invoked by the API), started a
 * minute ago and run for 1 s, at version 4, with a fresh RequestId; `overrides` win.
 */
export function finishedIndexEntry(
  namespace: string,
  functionName: string,
  overrides: Partial<EventIndexEntry> = {},
): EventIndexEntry {
  const startTime = Date.now() - 60_000;
  return {
    requestId: crypto.randomUUID(),
    namespace,
    functionName,
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    status: "FINISHED",
    statusCode: 200,
    phase: "succeeded",
    startTime,
    endTime: startTime + 1_000,
    durationMs: 1_000,
    version: 4,
    ...overrides,
  };
}
