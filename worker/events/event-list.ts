import { and, asc, count, desc, eq, getTableColumns, gte, inArray, lt, lte, type SQL, sql } from "drizzle-orm";
import { type DrizzleD1Database, drizzle } from "drizzle-orm/d1";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import { z } from "zod";
import { type EventIndexRow, events, eventTags } from "../db/schema";
import { isAliasQualifier, isQualifier, MAX_QUALIFIER_CHARS, QUALIFIER_RULE } from "../functions/qualifiers";
import { fromBase64, toBase64 } from "../shared/encoding";
import { eventIdentityOf } from "./event-identity";
import { progressOfRow } from "./event-progress";
import { MAX_INDEX_AGE_MS } from "./event-retention";
import { tagFilterConditions, tagFilterSchema, tagsOfColumn } from "./event-tags";

/**
 * Oldest row the event index keeps (by its start time): the longest namespace retention after the
 * longest run. Rows are purged earlier by their namespace's retention (event-retention.ts).
 */
export const EVENT_INDEX_RETENTION_MS = MAX_INDEX_AGE_MS;
/** Most rows one list page may return. */
export const MAX_LIST_LIMIT = 100;
export const PUBLIC_STATUSES = ["RUNNING", "FINISHED", "FAILED", "ABORTED"] as const;
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
/** Most StatusCodes one list filter (`statusCodes`) names. */
export const MAX_STATUS_CODE_FILTERS = 10;
/** Largest StatusCode a filter may name (StatusCodes are three-digit, HTTP-like: 200, 430, 499, ...). */
export const MAX_STATUS_CODE = 999;
/**
 * Largest duration bound of a list filter (`minDurationMs`, `maxDurationMs`): the index's longest
 * retention window (8 days), longer than any indexed event can have run.
 */
export const MAX_DURATION_FILTER_MS = EVENT_INDEX_RETENTION_MS;
/** Longest `cursor` accepted (characters); a real one is about 120. */
export const MAX_CURSOR_CHARS = 256;
/** Largest `offset` accepted. */
export const MAX_LIST_OFFSET = 1_000_000;

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

/**
 * Where a page ended: the order it was read in, the last row's order key (its start or end time,
 * null for an event without an end time) and RequestId. The next page continues strictly after that
 * row, so rows arriving meanwhile never shift it.
 */
export interface ListCursor {
  orderBy: "startTime" | "endTime";
  order: "ASC" | "DESC";
  key: number | null;
  requestId: string;
}

/** The cursor's version, its first field: a cursor of another version is refused as malformed. */
const CURSOR_VERSION = 1;
/**
 * Largest order key a cursor may carry (epoch ms): the last instant a JavaScript Date holds (year
 * 275760). Every start or end time of the index is far below it.
 */
export const MAX_CURSOR_KEY_MS = 8_640_000_000_000_000;
const cursorFieldsSchema = z.tuple([
  z.literal(CURSOR_VERSION),
  z.enum(["startTime", "endTime"]),
  z.enum(["ASC", "DESC"]),
  z.number().int().min(0).max(MAX_CURSOR_KEY_MS).nullable(),
  // A RequestId is a UUID everywhere (event-access.ts): no other text (NUL, lone surrogates) is a cursor's.
  z.uuid(),
]);

/**
 * The opaque text of a cursor: base64url of a small JSON tuple. Not signed, on purpose: it carries
 * no authority (the list's namespace, function and filters come from the request, never from it),
 * so a forged one can only move where a page starts, as the time filters can; it is validated
 * field by field and tied to the order it was made for.
 */
export function encodeCursor(cursor: ListCursor): string {
  const json = JSON.stringify([CURSOR_VERSION, cursor.orderBy, cursor.order, cursor.key, cursor.requestId]);
  return toBase64(new TextEncoder().encode(json)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The cursor an `encodeCursor` text stands for, or undefined for any other text. */
export function decodeCursor(text: string): ListCursor | undefined {
  if (text.length === 0 || text.length > MAX_CURSOR_CHARS || !/^[A-Za-z0-9_-]+$/.test(text)) return undefined;
  try {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const json = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(
      fromBase64(base64 + "=".repeat((4 - (base64.length % 4)) % 4)),
    );
    const parsed = cursorFieldsSchema.safeParse(JSON.parse(json));
    if (!parsed.success) return undefined;
    const [, orderBy, order, key, requestId] = parsed.data;
    // Every event has a start time: only an end-time order has rows without a key.
    if (key === null && orderBy === "startTime") return undefined;
    return { orderBy, order, key, requestId };
  } catch {
    return undefined;
  }
}

const cursorSchema = z
  .string()
  .max(MAX_CURSOR_CHARS)
  .transform((text, context) => {
    const cursor = decodeCursor(text);
    if (cursor === undefined) {
      context.addIssue({ code: "custom", message: "not a cursor of this list: pass a nextCursor back unchanged" });
      return z.NEVER;
    }
    return cursor;
  });

/** A duration bound of a list filter, in milliseconds. */
const durationBoundSchema = z.coerce.number().int().min(0).max(MAX_DURATION_FILTER_MS);

/** The filters of an event list (all optional but the function, which comes from the path). */
export const listEventsQuerySchema = z
  .object({
    qualifier: qualifierFilterSchema.optional(),
    invokeTypes: commaSeparated.pipe(z.array(z.enum(SCF_INVOKE_TYPES)).min(1).max(MAX_INVOKE_TYPE_FILTERS)).optional(),
    statuses: commaSeparated.pipe(z.array(z.enum(PUBLIC_STATUSES)).min(1).max(4)).optional(),
    statusCodes: commaSeparated
      .pipe(
        z
          .array(
            z
              .string()
              .regex(/^\d{1,3}$/, `a StatusCode is an integer from 0 to ${MAX_STATUS_CODE}`)
              .transform(Number),
          )
          .min(1)
          .max(MAX_STATUS_CODE_FILTERS),
      )
      .optional(),
    minDurationMs: durationBoundSchema.optional(),
    maxDurationMs: durationBoundSchema.optional(),
    requestId: z.string().min(1).max(64).optional(),
    startTimeFrom: timeSchema.optional(),
    startTimeTo: timeSchema.optional(),
    endTimeFrom: timeSchema.optional(),
    endTimeTo: timeSchema.optional(),
    orderBy: z.enum(["startTime", "endTime"]).default("startTime"),
    order: orderSchema,
    offset: z.coerce.number().int().min(0).max(MAX_LIST_OFFSET).optional(),
    cursor: cursorSchema.optional(),
    limit: z.coerce.number().int().min(1).max(MAX_LIST_LIMIT).default(20),
    /** `k=v,k2=v2`: events carrying every one of these tags (event-tags.ts). */
    tags: tagFilterSchema.optional(),
  })
  .strict()
  .superRefine((query, context) => {
    if (query.cursor !== undefined && query.offset !== undefined) {
      context.addIssue({ code: "custom", path: ["cursor"], message: "give either cursor or offset, not both" });
    }
    if (query.cursor !== undefined && (query.cursor.orderBy !== query.orderBy || query.cursor.order !== query.order)) {
      context.addIssue({
        code: "custom",
        path: ["cursor"],
        message: `made for orderBy=${query.cursor.orderBy}&order=${query.cursor.order}, not orderBy=${query.orderBy}&order=${query.order}`,
      });
    }
    if (
      query.minDurationMs !== undefined &&
      query.maxDurationMs !== undefined &&
      query.minDurationMs > query.maxDurationMs
    ) {
      context.addIssue({ code: "custom", path: ["minDurationMs"], message: "must not exceed maxDurationMs" });
    }
  });
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
    /** The invocation's tags ({} when none). */
    tags: tagsOfColumn(row.tags),
    /** The latest progress the index has (written at most every PROGRESS_INDEX_INTERVAL_MS), null: none. */
    progress: progressOfRow(row),
  };
}

/** The columns a list page is ordered by: the order key, then the RequestId breaking its ties. */
interface OrderColumns {
  key: SQLiteColumn;
  requestId: SQLiteColumn;
}

/**
 * The rows strictly after a cursor's row in the list's order (the order key, then the RequestId),
 * as one or two conditions whose rows follow each other in that order. Each is a range of the
 * (namespace, function, key, request_id) indexes (or of `event_tags`' for a start-time order under a
 * tag filter), so the next page is an index seek however deep the walk: `(key, request_id) > (?, ?)`
 * for keyed rows, `key IS NULL AND request_id > ?` for rows without a key (an end-time order's
 * running events), which SQLite puts first ascending and last descending; a row value comparison
 * with NULL is never true, so those two kinds are read apart.
 */
function afterCursor(cursor: ListCursor, columns: OrderColumns): SQL[] {
  const after = (left: SQL, right: SQL) => (cursor.order === "ASC" ? sql`${left} > ${right}` : sql`${left} < ${right}`);
  const keyed = () => after(sql`(${columns.key}, ${columns.requestId})`, sql`(${cursor.key}, ${cursor.requestId})`);
  if (cursor.orderBy === "startTime") return [keyed()];
  const unkeyed = sql`${columns.key} IS NULL`;
  if (cursor.key === null) {
    const rest = and(unkeyed, after(sql`${columns.requestId}`, sql`${cursor.requestId}`)) as SQL;
    return cursor.order === "ASC" ? [rest, sql`${columns.key} IS NOT NULL`] : [rest];
  }
  return cursor.order === "ASC" ? [keyed()] : [keyed(), unkeyed];
}

/** The filters eventFilterConditions reads: those of the list's query (bulk operations give a subset). */
export type EventFilter = Partial<
  Pick<
    ListEventsQuery,
    | "qualifier"
    | "invokeTypes"
    | "statuses"
    | "requestId"
    | "startTimeFrom"
    | "startTimeTo"
    | "endTimeFrom"
    | "endTimeTo"
    | "statusCodes"
    | "minDurationMs"
    | "maxDurationMs"
    | "tags"
  >
>;

/**
 * The conditions on the `events` index of a namespace's events (of one function, or of every
 * function when `functionName` is undefined) matching `filter`: what the list and the bulk
 * terminations (bulk-terminate.ts) select by. Time intervals are left-closed, right-open.
 */
export function eventFilterConditions(namespace: string, functionName: string | undefined, query: EventFilter): SQL[] {
  const scope = [eq(events.namespace, namespace)];
  if (functionName !== undefined) scope.push(eq(events.functionName, functionName));
  return [...scope, ...queryConditions(namespace, functionName, query)];
}

/**
 * The conditions of eventFilterConditions but the namespace's and the function's own (a tag
 * filter's subqueries are still scoped by them).
 */
function queryConditions(namespace: string, functionName: string | undefined, query: EventFilter): SQL[] {
  const conditions: SQL[] = [];
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
  if (query.statusCodes !== undefined) conditions.push(inArray(events.statusCode, query.statusCodes));
  if (query.minDurationMs !== undefined) conditions.push(gte(events.durationMs, query.minDurationMs));
  if (query.maxDurationMs !== undefined) conditions.push(lte(events.durationMs, query.maxDurationMs));
  if (query.tags !== undefined) conditions.push(...tagFilterConditions(namespace, functionName, query.tags));
  return conditions;
}

/**
 * Lists events of one function from the D1 index. Time intervals are left-closed, right-open;
 * the duration range is closed (both bounds included; an event without a duration, still running,
 * never matches one). Ties in the order are broken by RequestId so that pages never overlap.
 * A page starts at `offset` or just after `cursor`; `nextCursor` continues after its last row (null
 * when no row follows). `total` counts every matching row, whatever the page.
 *
 * Indexes: the function and the order key select the (namespace, function, start_time | end_time,
 * request_id) index, or the status-covering one with `statuses`; the other filters are checked on
 * the rows that walk reaches, in order, so a page stops after `limit + 1` matches. Under a tag
 * filter the walk starts from the tag instead (see taggedList): the events carrying it are
 * usually a few of the function's, and a rare tag would otherwise cost a walk of all of them.
 */
export async function listEvents(
  db: D1Database,
  namespace: string,
  functionName: string,
  query: ListEventsQuery,
): Promise<{ total: number; events: EventIndexRow[]; nextCursor: string | null }> {
  const orm = drizzle(db);
  const { total, pageOf } = listStatements(orm, namespace, functionName, query);
  const [first, second] = query.cursor !== undefined ? afterCursor(query.cursor, pageOf.orderColumns) : [];
  // One round trip to D1 for the page (in one or two parts, one after the other) and the total.
  const [totals, rows] =
    second !== undefined
      ? await orm
          .batch([total, pageOf(first), pageOf(second)])
          .then(([counted, head, tail]) => [counted, [...head, ...tail].slice(0, query.limit + 1)] as const)
      : await orm.batch([total, pageOf(first)]);
  const page = rows.slice(0, query.limit);
  const last = page[page.length - 1];
  const nextCursor =
    rows.length > query.limit && last !== undefined
      ? encodeCursor({
          orderBy: query.orderBy,
          order: query.order,
          key: query.orderBy === "endTime" ? last.endTime : last.startTime,
          requestId: last.requestId,
        })
      : null;
  return { total: totals[0]?.total ?? 0, events: page, nextCursor };
}

/**
 * The statements of a list: its total, and its page after a cursor condition (one row more than
 * the page tells whether another page follows), with the columns that page is ordered by.
 * Exported for the query-plan test.
 */
export function listStatements(
  orm: DrizzleD1Database,
  namespace: string,
  functionName: string,
  query: ListEventsQuery,
) {
  const [driver, ...otherTags] = Object.entries(query.tags ?? {});
  if (driver !== undefined) return taggedList(orm, namespace, functionName, query, driver, otherTags);
  const direction = query.order === "ASC" ? asc : desc;
  const where = and(...eventFilterConditions(namespace, functionName, query));
  const orderColumns: OrderColumns = {
    key: query.orderBy === "endTime" ? events.endTime : events.startTime,
    requestId: events.requestId,
  };
  const pageOf = (after: SQL | undefined) =>
    orm
      .select()
      .from(events)
      .where(after !== undefined ? and(where, after) : where)
      .orderBy(direction(orderColumns.key), direction(orderColumns.requestId))
      .limit(query.limit + 1)
      .offset(query.offset ?? 0);
  return {
    total: orm.select({ total: count() }).from(events).where(where),
    pageOf: Object.assign(pageOf, { orderColumns }),
  };
}

/**
 * A list under a tag filter, read from its first tag's `event_tags` rows joined to their events by
 * RequestId (the other tags, if any, stay conditions on the events): the count is a walk of the
 * events carrying that tag, not of every event of the function, and a start-time page walks the
 * tag's (namespace, function, key, value, start_time, request_id) index in order and stops after
 * `limit + 1` matches. A tag row's start_time is its event's, written with it and never changed
 * (event-index.ts), so ordering by it orders the events. The events' own namespace and function
 * are checked as well, as plain conditions (the unary `+` keeps SQLite from walking their index
 * instead of the tag's).
 */
function taggedList(
  orm: DrizzleD1Database,
  namespace: string,
  functionName: string,
  query: ListEventsQuery,
  [key, value]: [string, string],
  otherTags: [string, string][],
) {
  const direction = query.order === "ASC" ? asc : desc;
  const rest = otherTags.length > 0 ? Object.fromEntries(otherTags) : undefined;
  const filters = queryConditions(namespace, functionName, { ...query, tags: rest });
  const tagged = [
    eq(eventTags.namespace, namespace),
    eq(eventTags.functionName, functionName),
    eq(eventTags.key, key),
    eq(eventTags.value, value),
  ];
  const where = and(
    ...tagged,
    sql`+${events.namespace} = ${namespace}`,
    sql`+${events.functionName} = ${functionName}`,
    ...filters,
  );
  const orderColumns: OrderColumns =
    query.orderBy === "endTime"
      ? { key: events.endTime, requestId: events.requestId }
      : { key: eventTags.startTime, requestId: eventTags.requestId };
  const joined = eq(events.requestId, eventTags.requestId);
  const pageOf = (after: SQL | undefined) =>
    orm
      .select(getTableColumns(events))
      .from(eventTags)
      .innerJoin(events, joined)
      .where(after !== undefined ? and(where, after) : where)
      .orderBy(direction(orderColumns.key), direction(orderColumns.requestId))
      .limit(query.limit + 1)
      .offset(query.offset ?? 0);
  // With no other filter, the count needs only each tag row's event to exist: its RequestId is in
  // the events' primary key index, so no row is read (a tag row's namespace and function are its
  // event's). A tag row left behind by an interrupted purge is not counted either way.
  const total = orm
    .select({ total: count() })
    .from(eventTags)
    .innerJoin(events, joined)
    .where(filters.length === 0 ? and(...tagged) : where);
  return { total, pageOf: Object.assign(pageOf, { orderColumns }) };
}
