import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { MiddlewareHandler, TypedResponse } from "hono";
import type { AppEnv, AuthVariables } from "../../auth/credentials";
import { LOG_STREAMS } from "../../contract/agent-records";
import { visibleEvent } from "../../events/event-access";
import { orderSchema, timeSchema } from "../../events/event-list";
import { MAX_LOG_READ, MAX_LOG_SCAN_LINES } from "../../events/event-log";
import type { LogFilter } from "../../events/event-log-store";
import { functionLogs } from "../../logs/function-logs";
import { admitRead } from "../../ratelimit/read-limit";
import { unwrap } from "../../shared/errors";
import { functionNameSchema, namespaceSchema } from "../../shared/names";
import { parseWith } from "../../shared/validation";
import { COMMON_ERROR_STATUSES, errorResponses, jsonResponse, pathFirst, queryOf, refuseInvalid } from "../openapi";
import { eventParams } from "./events";

/** Longest `contains` filter text, in characters. */
export const MAX_LOG_FILTER_CHARS = 256;

/** One to three of the log streams, comma-separated (`stdout`, `stderr`, `platform`). */
const STREAM_LIST_PATTERN = new RegExp(`^(${LOG_STREAMS.join("|")})(,(${LOG_STREAMS.join("|")})){0,2}$`);

/** The filters every log read takes: a text the line contains, and the streams it comes from. */
const logFilterFields = {
  contains: z
    .string()
    .min(1)
    .max(MAX_LOG_FILTER_CHARS)
    .optional()
    .describe(`Only lines containing this text (case-sensitive, 1-${MAX_LOG_FILTER_CHARS} characters)`),
  stream: z
    .string()
    .max(64)
    .regex(STREAM_LIST_PATTERN, "stream: stdout, stderr and/or platform, comma-separated")
    .optional()
    .describe("Only lines of these streams: stdout, stderr, platform (comma-separated)"),
};

/** The filter of a log query, or undefined when it asks for every line. */
function filterOf(query: { contains?: string | undefined; stream?: string | undefined }): LogFilter | undefined {
  if (query.contains === undefined && query.stream === undefined) return undefined;
  return {
    ...(query.contains !== undefined ? { contains: query.contains } : {}),
    ...(query.stream !== undefined ? { streams: [...new Set(query.stream.split(","))] as LogFilter["streams"] } : {}),
  };
}

const eventLogQuerySchema = z.strictObject({
  after: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(MAX_LOG_READ).default(MAX_LOG_READ),
  ...logFilterFields,
});

/** Most recent lines a follow may start with (`tail`). */
export const MAX_FOLLOW_TAIL_LINES = 100_000;

const followQuerySchema = z.strictObject({
  after: z.coerce.number().int().min(0).optional(),
  tail: z.coerce
    .number()
    .int()
    .min(0)
    .max(MAX_FOLLOW_TAIL_LINES)
    .optional()
    .describe(
      `Start with the last N stored lines instead of from \`after\` (at most ${MAX_FOLLOW_TAIL_LINES}); Last-Event-ID still takes precedence`,
    ),
  ...logFilterFields,
});

const downloadQuerySchema = z.strictObject(logFilterFields);

const functionLogQuerySchema = z.strictObject({
  requestId: z.string().min(1).max(64).optional(),
  startTime: timeSchema.optional(),
  endTime: timeSchema.optional(),
  /** success: FINISHED events; error: FAILED and ABORTED ones. */
  status: z.enum(["success", "error"]).optional(),
  qualifier: z.string().min(1).max(64).optional().openapi({
    description:
      "A version ($LATEST, 1, ...: the events that ran it) or an alias ($DEFAULT, ...: the events invoked through it)",
  }),
  order: orderSchema,
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
  limit: z.coerce.number().int().min(1).max(100).default(10),
});

/** Path of one function. */
const functionParams = z.object({ namespace: namespaceSchema, name: functionNameSchema });

/** The event a log route reads, looked up (and the read admitted) before its query is checked. */
type EventLogEnv = { Bindings: Env; Variables: AuthVariables & { event: Awaited<ReturnType<typeof visibleEvent>> } };

/**
 * Admits the read for the caller, then looks the event up (EVENT_NOT_FOUND when the caller may not
 * see it): both before the query is checked, as these routes always have.
 */
const readableEvent: MiddlewareHandler<EventLogEnv> = async function readableEvent(c, next) {
  admitRead(c.var.principal.secretId);
  c.set("event", await visibleEvent(c.env, c.var.principal, c.req.param("requestId")));
  await next();
};

/** One stored log line (events/event-log-store.ts EventLogRecord). */
const logRecordSchema = z
  .object({
    seq: z.number().int(),
    ts: z.number().openapi({ description: "epoch ms" }),
    stream: z.enum(["stdout", "stderr", "platform"]),
    line: z.string(),
  })
  .openapi("LogRecord");

/** One event's log summary in a function's logs. */
const functionLogSchema = z
  .object({
    requestId: z.string(),
    functionName: z.string(),
    qualifier: z.string(),
    startTime: z.string().nullable(),
    endTime: z.string().nullable(),
    status: z.string(),
    statusCode: z.number().int().nullable(),
    durationMs: z.number().nullable(),
    memoryUsageKb: z.number().nullable(),
    errorMessage: z.string().nullable(),
    log: z.string(),
    logTruncated: z.boolean(),
  })
  .openapi("FunctionLog");

const TAG = "Logs";

const eventLog = createRoute({
  method: "get",
  path: "/v1/events/{requestId}/logs",
  tags: [TAG],
  summary: "Read an event's log, page by page",
  description: `Pages of at most ${MAX_LOG_READ} lines and 1 MiB, from the event's recent lines or its older segments alike. With a filter, one page reads at most ${MAX_LOG_SCAN_LINES} lines: it may come back short or empty with \`lastSeq\` moved on and \`more\` true.`,
  middleware: [readableEvent] as const,
  request: { params: eventParams, query: queryOf(eventLogQuerySchema) },
  responses: {
    200: jsonResponse(
      "Log lines after `after`; page on with after=lastSeq while `more` is true",
      z.object({
        records: z.array(logRecordSchema),
        lastSeq: z.number().int().openapi({
          description:
            "Every stored line up to this seq was read (returned, or left out by the filter): the next page's `after`",
        }),
        more: z.boolean().openapi({ description: "More lines were stored after lastSeq when this page was read" }),
      }),
    ),
    ...errorResponses(...COMMON_ERROR_STATUSES),
  },
});

const followEventLog = createRoute({
  method: "get",
  path: "/v1/events/{requestId}/logs/stream",
  tags: [TAG],
  summary: "Follow an event's log live (Server-Sent Events)",
  description:
    "Each log line is one SSE event (`event: log`) whose id is its seq; the stream ends when the event has ended and every line was sent (`event: end`). Every stream opens with the event's timeline so far, one `event: timeline` per entry (`{at, kind, detail}`, no id; see the event's `timeline`); later entries are sent as they happen, in order with the log lines (to a follower still reading older lines, once it has caught up). The handler's progress (`context.progress(percent, message)`) comes as `event: progress` (`{percent, message, at}`, no id): the latest one when the stream opens, then each update as it happens (a follower still reading older lines gets the latest once it has caught up). The Last-Event-ID header (sent by EventSource when it reconnects) takes precedence over `after`.",
  middleware: [readableEvent] as const,
  request: { params: eventParams, query: queryOf(followQuerySchema) },
  responses: {
    200: { description: "The log as Server-Sent Events", content: { "text/event-stream": { schema: z.string() } } },
    ...errorResponses(...COMMON_ERROR_STATUSES),
  },
});

const downloadEventLog = createRoute({
  method: "get",
  path: "/v1/events/{requestId}/logs.txt",
  tags: [TAG],
  summary: "Download an event's whole log as text",
  description:
    "One line per log line: its time (ISO 8601), its stream (stdout, stderr, platform) and the line, separated by a space. Streams every stored line (of a running event, those stored so far); gzip-compressed when the request accepts gzip (`curl --compressed`).",
  middleware: [readableEvent] as const,
  request: { params: eventParams, query: queryOf(downloadQuerySchema) },
  responses: {
    200: { description: "The log as text", content: { "text/plain; charset=utf-8": { schema: z.string() } } },
    ...errorResponses(...COMMON_ERROR_STATUSES),
  },
});

const functionLog = createRoute({
  method: "get",
  path: "/v1/namespaces/{namespace}/functions/{name}/logs",
  tags: [TAG],
  summary: "Read a function's logs across its events",
  middleware: [pathFirst(functionParams)],
  request: { params: functionParams, query: queryOf(functionLogQuerySchema) },
  responses: {
    200: jsonResponse(
      "One page of events' logs",
      z.object({ total: z.number().int(), logs: z.array(functionLogSchema) }),
    ),
    ...errorResponses(...COMMON_ERROR_STATUSES),
  },
});

/**
 * Log routes: one event's log (paged and live) and a function's logs across events. The live log is
 * the event's Durable Object's own SSE stream, passed through as it is.
 */
export const logRoutes = new OpenAPIHono<AppEnv>({ defaultHook: refuseInvalid })
  .openapi(eventLog, async (c) => {
    const query = c.req.valid("query");
    const page = unwrap(await c.var.event.logs(query.after, query.limit, filterOf(query)));
    return c.json({ records: page.records, lastSeq: page.lastSeq, more: page.more }, 200);
  })
  .openapi(followEventLog, async (c) => {
    const query = c.req.valid("query");
    // EventSource sends the last id it saw when it reconnects.
    const lastEventId = parseWith(
      z.coerce.number().int().min(0).optional(),
      c.req.header("last-event-id") || undefined,
    );
    const start =
      lastEventId !== undefined || query.tail === undefined
        ? { after: lastEventId ?? query.after ?? 0 }
        : { tail: query.tail };
    const stream = unwrap(await c.var.event.followLogs(start, filterOf(query)));
    return new Response(stream, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-transform",
        "x-accel-buffering": "no",
      },
    });
  })
  .openapi(downloadEventLog, async (c) => {
    const text = unwrap(await c.var.event.downloadLog(filterOf(c.req.valid("query"))));
    const gzip = /\bgzip\b/i.test(c.req.header("accept-encoding") ?? "");
    const headers: Record<string, string> = {
      "content-type": "text/plain; charset=utf-8",
      "cache-control": "no-store",
      "content-disposition": `attachment; filename="${c.req.param("requestId")}.log"`,
    };
    const response = gzip
      ? new Response(text.pipeThrough(new CompressionStream("gzip")), {
          headers: { ...headers, "content-encoding": "gzip" },
          encodeBody: "manual",
        })
      : new Response(text, { headers });
    // A streamed body: the route's typing knows text only as c.text()'s.
    return response as unknown as TypedResponse<string, 200, "text">;
  })
  .openapi(functionLog, async (c) => {
    const { namespace, name } = c.req.valid("param");
    const query = c.req.valid("query");
    admitRead(c.var.principal.secretId);
    const page = await functionLogs(c.env, namespace, name, {
      order: query.order,
      offset: query.offset,
      limit: query.limit,
      ...(query.status !== undefined ? { outcome: query.status } : {}),
      ...(query.requestId !== undefined ? { requestId: query.requestId } : {}),
      ...(query.qualifier !== undefined ? { qualifier: query.qualifier } : {}),
      ...(query.startTime !== undefined ? { startTimeFrom: query.startTime } : {}),
      ...(query.endTime !== undefined ? { startTimeTo: query.endTime } : {}),
    });
    return c.json(
      {
        total: page.total,
        logs: page.events.map((event) => ({
          requestId: event.requestId,
          functionName: event.functionName,
          qualifier: event.qualifier,
          startTime: event.invokedAt,
          endTime: event.endedAt,
          status: event.status,
          statusCode: event.statusCode,
          durationMs: event.durationMs,
          memoryUsageKb: event.memoryUsageKb,
          errorMessage: event.errorMessage,
          log: event.log,
          logTruncated: event.logTruncated,
        })),
      },
      200,
    );
  });
