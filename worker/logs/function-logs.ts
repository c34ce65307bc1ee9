import type { EventWithLog } from "../events/async-event-object";
import { listEvents } from "../events/event-list";
import { unwrap } from "../shared/errors";

/** Log text returned per event by a function-log query. */
export const FUNCTION_LOG_CHARS_PER_EVENT = 64 * 1024;

/** Which events a function-log query returns (SCF's GetFunctionLogs, also served by REST). */
export interface FunctionLogQuery {
  order: "ASC" | "DESC";
  offset: number;
  limit: number;
  /** success: FINISHED events; error: FAILED and ABORTED ones. */
  outcome?: "success" | "error";
  requestId?: string;
  /** Start-time interval, [from, to). */
  startTimeFrom?: number;
  startTimeTo?: number;
}

/** Events of a function from the index, each with the start of its log, newest first by default. */
export async function functionLogs(
  env: Env,
  namespace: string,
  functionName: string,
  query: FunctionLogQuery,
): Promise<{ total: number; events: EventWithLog[] }> {
  const statuses =
    query.outcome === "success"
      ? ["FINISHED" as const]
      : query.outcome === "error"
        ? ["FAILED" as const, "ABORTED" as const]
        : undefined;
  const page = await listEvents(env.DB, namespace, functionName, {
    orderBy: "startTime",
    order: query.order,
    offset: query.offset,
    limit: query.limit,
    ...(statuses !== undefined ? { statuses } : {}),
    ...(query.requestId !== undefined ? { requestId: query.requestId } : {}),
    ...(query.startTimeFrom !== undefined ? { startTimeFrom: query.startTimeFrom } : {}),
    ...(query.startTimeTo !== undefined ? { startTimeTo: query.startTimeTo } : {}),
  });
  const events = await Promise.all(
    page.events.map(async (row) => {
      const stub = env.ASYNC_EVENT.get(env.ASYNC_EVENT.idFromName(row.requestId));
      const detail = await stub.viewWithLog(FUNCTION_LOG_CHARS_PER_EVENT);
      // An event deleted after its index row was read is skipped.
      if (detail.ok === false) return undefined;
      return unwrap<EventWithLog>(detail);
    }),
  );
  return { total: page.total, events: events.filter((event) => event !== undefined) };
}
