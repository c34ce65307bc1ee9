import { and, asc, count, desc, eq, gte, inArray, lt, type SQL } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { z } from "zod";
import { type EventIndexRow, events } from "../db/schema";
import { isAliasQualifier, isQualifier, MAX_QUALIFIER_CHARS, QUALIFIER_RULE } from "../functions/qualifiers";
import { eventIdentityOf } from "./event-identity";

/** How long the event index keeps a row (by its start time). */
export const EVENT_INDEX_RETENTION_MS = 3 * 24 * 60 * 60 * 1000;
/** Most rows one list page may return. */
export const MAX_LIST_LIMIT = 100;
const PUBLIC_STATUSES = ["RUNNING", "FINISHED", "FAILED", "ABORTED"] as const;
/**
 * SCF's invoke types (ListAsyncEvents' InvokeType): an event records the one of its source, OTHERS
 * for an API invocation (Invoke, REST); a list filter naming another value is refused.
 */
export const SCF_INVOKE_TYPES = [
  "CMQ",
  "CKAFKA_TRIGGER",
  "APIGW",
  "COS",
  "TRIGGER_TIMER",
  "MPS_TRIGGER",
  "CLS_TRIGGER",
  "OTHERS",
] as const;
/** Most invoke types one list filter names. */
export const MAX_INVOKE_TYPE_FILTERS = 10;

/**
 * A list's qualifier filter: a version ("$LATEST", "1", ...) matches the version the event ran, an
 * alias ("$DEFAULT", "prod", ...) the alias it was invoked through (the two never share a name).
 */
export const qualifierFilterSchema = z
  .string()
  .max(MAX_QUALIFIER_CHARS)
  .refine(isQualifier, `qualifier: ${QUALIFIER_RULE}`);

/** A time given as epoch milliseconds or an ISO-8601 string. */
export const timeSchema = z.union([
  z.coerce.number().int().min(0),
  z.iso.datetime({ offset: true }).transform((value) => Date.parse(value)),
]);

/** ASC or DESC, in any case; DESC by default. */
export const orderSchema = z
  .string()
  .transform((value) => value.toUpperCase())
  .pipe(z.enum(["ASC", "DESC"]))
  .default("DESC");

const commaSeparated = z.string().transform((value) =>
  value
    .split(",")
    .map((part) => part.trim())
    .filter(Boolean),
);

/** The filters of an event list (all optional but the function, which comes from the path). */
export const listEventsQuerySchema = z
  .object({
    qualifier: qualifierFilterSchema.optional(),
    invokeTypes: commaSeparated.pipe(z.array(z.enum(SCF_INVOKE_TYPES)).min(1).max(MAX_INVOKE_TYPE_FILTERS)).optional(),
    statuses: commaSeparated.pipe(z.array(z.enum(PUBLIC_STATUSES)).min(1).max(4)).optional(),
    requestId: z.string().min(1).max(64).optional(),
    startTimeFrom: timeSchema.optional(),
    startTimeTo: timeSchema.optional(),
    endTimeFrom: timeSchema.optional(),
    endTimeTo: timeSchema.optional(),
    orderBy: z.enum(["startTime", "endTime"]).default("startTime"),
    order: orderSchema,
    offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
    limit: z.coerce.number().int().min(1).max(MAX_LIST_LIMIT).default(20),
  })
  .strict();
/** Validated list filters. */
export type ListEventsQuery = z.infer<typeof listEventsQuerySchema>;

/** The public shape of one listed event (from the index). */
export function listedEvent(row: EventIndexRow) {
  return {
    ...eventIdentityOf(row),
    alias: row.alias ?? null,
    status: row.status,
    statusCode: row.statusCode,
    startTime: new Date(row.startTime).toISOString(),
    endTime: row.endTime !== null ? new Date(row.endTime).toISOString() : null,
    durationMs: row.durationMs,
  };
}

/**
 * Lists events of one function from the D1 index. Time intervals are left-closed, right-open.
 * Ties in the order are broken by RequestId so that pages never overlap.
 */
export async function listEvents(
  db: D1Database,
  namespace: string,
  functionName: string,
  query: ListEventsQuery,
): Promise<{ total: number; events: EventIndexRow[] }> {
  const conditions: SQL[] = [eq(events.namespace, namespace), eq(events.functionName, functionName)];
  if (query.qualifier !== undefined) {
    conditions.push(
      isAliasQualifier(query.qualifier) ? eq(events.alias, query.qualifier) : eq(events.qualifier, query.qualifier),
    );
  }
  if (query.invokeTypes !== undefined) conditions.push(inArray(events.invokeType, query.invokeTypes));
  if (query.statuses !== undefined) conditions.push(inArray(events.status, query.statuses));
  if (query.requestId !== undefined) conditions.push(eq(events.requestId, query.requestId));
  if (query.startTimeFrom !== undefined) conditions.push(gte(events.startTime, query.startTimeFrom));
  if (query.startTimeTo !== undefined) conditions.push(lt(events.startTime, query.startTimeTo));
  if (query.endTimeFrom !== undefined) conditions.push(gte(events.endTime, query.endTimeFrom));
  if (query.endTimeTo !== undefined) conditions.push(lt(events.endTime, query.endTimeTo));
  const where = and(...conditions);
  const direction = query.order === "ASC" ? asc : desc;
  const column = query.orderBy === "endTime" ? events.endTime : events.startTime;
  const orm = drizzle(db);
  // One round trip to D1 for the page and the total.
  const [rows, totals] = await orm.batch([
    orm
      .select()
      .from(events)
      .where(where)
      .orderBy(direction(column), direction(events.requestId))
      .limit(query.limit)
      .offset(query.offset),
    orm.select({ total: count() }).from(events).where(where),
  ]);
  return { total: totals[0]?.total ?? 0, events: rows };
}

/** Deletes index rows that started before the retention window; returns how many went. */
export async function deleteExpiredIndexRows(db: D1Database, nowMs: number): Promise<number> {
  const cutoff = nowMs - EVENT_INDEX_RETENTION_MS;
  let deleted = 0;
  for (;;) {
    const result = await db
      .prepare("DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE start_time < ? LIMIT 5000)")
      .bind(cutoff)
      .run();
    const changes = result.meta.changes ?? 0;
    deleted += changes;
    if (changes < 5000) return deleted;
  }
}
