import { indexDatabaseOf } from "../db/index-databases";
import { listEvents } from "../events/event-list";
import type { EventWithLog } from "../events/event-log";
import { truncateUtf8, utf8Length } from "../events/text-bounds";
import { checkQualifier } from "../functions/qualifiers";
import { unwrap } from "../shared/errors";
import { eventStub } from "../shared/objects";

/** Log text returned per event by a function-log query. */
export const FUNCTION_LOG_CHARS_PER_EVENT = 64 * 1024;
/**
 * Log text one function-log answer carries across all its events (UTF-8 bytes, 1 MiB). The event
 * that crosses it has its log cut with a truncation marker; later events' logs are "". Both are
 * flagged with `logTruncated: true`: read them whole by RequestId.
 */
export const MAX_FUNCTION_LOG_ANSWER_BYTES = 1024 * 1024;

/** One event of a function-log answer. */
export type FunctionLogEntry = EventWithLog & {
  /** True when this event's log was cut (or left out) to keep the answer within its bound. */
  logTruncated: boolean;
};

/** Cuts the events' logs, in order, so that together they stay within `maxBytes`. */
export function boundLogs(events: readonly EventWithLog[], maxBytes: number): FunctionLogEntry[] {
  let remaining = maxBytes;
  return events.map((event) => {
    const size = utf8Length(event.log);
    if (size <= remaining) {
      remaining -= size;
      return { ...event, logTruncated: false };
    }
    const log = remaining > 0 ? truncateUtf8(event.log, remaining) : "";
    remaining = 0;
    return { ...event, log, logTruncated: true };
  });
}

/** Which events a function-log query returns (SCF's GetFunctionLogs, also served by REST). */
export interface FunctionLogQuery {
  order: "ASC" | "DESC";
  offset: number;
  limit: number;
  /** success: FINISHED events; error: FAILED and ABORTED ones. */
  outcome?: "success" | "error";
  requestId?: string;
  /**
   * A version ("$LATEST", "1", ...: the events that ran it) or an alias ("$DEFAULT", ...: the events
   * invoked through it). INVALID_PARAMETER when malformed; one that names nothing matches nothing.
   */
  qualifier?: string;
  /** Start-time interval, [from, to). */
  startTimeFrom?: number;
  startTimeTo?: number;
}

/**
 * Events of a function from the index, each with the start of its log, newest first by default.
 * Every event is re-checked against the namespace and function asked for (the index is only a
 * copy); the logs together are bounded by MAX_FUNCTION_LOG_ANSWER_BYTES.
 */
export async function functionLogs(
  env: Env,
  namespace: string,
  functionName: string,
  query: FunctionLogQuery,
): Promise<{ total: number; events: FunctionLogEntry[] }> {
  const statuses =
    query.outcome === "success"
      ? ["FINISHED" as const]
      : query.outcome === "error"
        ? ["FAILED" as const, "ABORTED" as const]
        : undefined;
  const page = await listEvents(indexDatabaseOf(env, namespace), namespace, functionName, {
    orderBy: "startTime",
    order: query.order,
    offset: query.offset,
    limit: query.limit,
    ...(statuses !== undefined ? { statuses } : {}),
    ...(query.requestId !== undefined ? { requestId: query.requestId } : {}),
    // listEvents matches a version against the version run and an alias against the alias named.
    ...(query.qualifier !== undefined ? { qualifier: checkQualifier(query.qualifier) } : {}),
    ...(query.startTimeFrom !== undefined ? { startTimeFrom: query.startTimeFrom } : {}),
    ...(query.startTimeTo !== undefined ? { startTimeTo: query.startTimeTo } : {}),
  });
  const events = await Promise.all(
    page.events.map(async (row) => {
      const stub = eventStub(env, row.requestId);
      const detail = await stub.viewWithLog(FUNCTION_LOG_CHARS_PER_EVENT);
      // An event deleted after its index row was read is skipped.
      if (detail.ok === false) return undefined;
      const event = unwrap<EventWithLog>(detail);
      // The event object is the truth: an index row naming another function's event is skipped.
      if (event.namespace !== namespace || event.functionName !== functionName) return undefined;
      return event;
    }),
  );
  const found = events.filter((event) => event !== undefined);
  return { total: page.total, events: boundLogs(found, MAX_FUNCTION_LOG_ANSWER_BYTES) };
}
