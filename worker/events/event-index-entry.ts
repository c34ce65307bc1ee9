// The shape of one event index row, apart from the D1 code that writes it (event-index.ts), so that
// tests running in Node (e2e seeding through /_diagnostics/seed-index) can use the same type.
import type { EventIdentity } from "./event-identity";
import type { EventTags } from "./event-tags";

/** One row of the D1 event index, as the writer needs it: the event's identity and its status. */
export interface EventIndexEntry extends EventIdentity {
  status: string;
  statusCode: number | null;
  phase: string;
  startTime: number;
  endTime: number | null;
  durationMs: number | null;
  version: number;
  /** The invocation's tags (fixed at acceptance): written with the row's first write only. */
  tags?: EventTags | null;
  /** The handler's latest progress (event-progress.ts): percent, message, when (epoch ms); null: none. */
  progressPercent?: number | null;
  progressMessage?: string | null;
  progressAt?: number | null;
}
