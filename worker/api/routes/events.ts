import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { TypedResponse } from "hono";
import type { AppEnv } from "../../auth/credentials";
import { indexDatabaseOf } from "../../db/index-databases";
import { MAX_LOGGED_ATTEMPTS } from "../../events/delivery";
import { visibleEvent, visibleEventView } from "../../events/event-access";
import { GRACEFUL_TERMINATE_TIMEOUT_MS, MAX_GRACE_SECONDS, MIN_GRACE_SECONDS } from "../../events/event-deadlines";
import {
  listEvents,
  listEventsQuerySchema,
  listedEvent,
  MAX_CURSOR_CHARS,
  MAX_DURATION_FILTER_MS,
  MAX_LIST_OFFSET,
  MAX_STATUS_CODE_FILTERS,
} from "../../events/event-list";
import { MAX_REPLAYS_LISTED } from "../../events/event-machine";
import {
  MAX_PROGRESS_MESSAGE_CHARS,
  MAX_PROGRESS_PERCENT,
  MIN_PROGRESS_INTERVAL_MS,
  PROGRESS_INDEX_INTERVAL_MS,
} from "../../events/event-progress";
import {
  invocationTagsQuerySchema,
  MAX_TAG_FILTERS,
  MAX_TAGS_PER_EVENT,
  TAG_KEY_RULE,
  TAG_VALUE_RULE,
} from "../../events/event-tags";
import { MAX_TIMELINE_ENTRIES, TIMELINE_HEAD_ENTRIES, TIMELINE_KINDS } from "../../events/event-timeline";
import { IDEMPOTENCY_KEY_RULE, idempotencyKeySchemaFor } from "../../events/idempotency";
import { invokeAsync, MAX_ASYNC_PAYLOAD_BYTES } from "../../events/invoke";
import { invokeSync, SYNC_LOG_TAIL_BYTES, SYNC_START_ALLOWANCE_MS } from "../../events/invoke-sync";
import { QUEUED_REASON_TIMEOUT_MS, QUEUED_REASONS, withQueuedReason } from "../../events/queued-reason";
import { replayEvent } from "../../events/replay";
import { admitRead } from "../../ratelimit/read-limit";
import { PlatformError, unwrap } from "../../shared/errors";
import { functionNameSchema, namespaceSchema } from "../../shared/names";
import { deliveryStub } from "../../shared/objects";
import { parseWith, readBodyText } from "../../shared/validation";
import {
  COMMON_ERROR_STATUSES,
  documentedBody,
  documentedJsonBody,
  errorResponses,
  jsonResponse,
  pathFirst,
  queryOf,
  refuseInvalid,
} from "../openapi";

/** Largest body of a terminate request. */
const MAX_TERMINATE_BODY_BYTES = 4096;

/** The grace period's rule, in every message about it. */
const GRACE_SECONDS_RULE = `graceSeconds: a whole number of seconds, ${MIN_GRACE_SECONDS}-${MAX_GRACE_SECONDS} (default ${GRACEFUL_TERMINATE_TIMEOUT_MS / 1000})`;

const terminateBodySchema = z
  .strictObject({
    graceful: z.boolean().default(false),
    graceSeconds: z
      .number()
      .int(GRACE_SECONDS_RULE)
      .min(MIN_GRACE_SECONDS, GRACE_SECONDS_RULE)
      .max(MAX_GRACE_SECONDS, GRACE_SECONDS_RULE)
      .optional()
      .openapi({
        description: `With graceful: true, how long the handler has after SIGTERM before it is stopped by force (${MIN_GRACE_SECONDS}-${MAX_GRACE_SECONDS} s, default ${GRACEFUL_TERMINATE_TIMEOUT_MS / 1000}); the function's timeout still applies`,
      }),
  })
  .refine((body) => body.graceSeconds === undefined || body.graceful, {
    message: "graceSeconds applies to a graceful terminate: send graceful: true with it",
    path: ["graceSeconds"],
  });

/** Largest body of a replay request (the body is empty or `{}`). */
const MAX_REPLAY_BODY_BYTES = 4096;

/** The replay body: no options (yet); empty or `{}`. */
const replayBodySchema = z.strictObject({});

/** Path of one function. */
const functionParams = z.object({ namespace: namespaceSchema, name: functionNameSchema });
/** Path of one event: any text (an unknown or malformed RequestId is EVENT_NOT_FOUND, not a 400). */
export const eventParams = z.object({
  requestId: z.string().openapi({ description: "The event's RequestId (a UUID)", format: "uuid" }),
});

/** An event's status as the lists and views show it. */
const eventStatusSchema = z.enum(["RUNNING", "FINISHED", "FAILED", "ABORTED"]);

/** The identity of an event (events/event-identity.ts). */
const eventIdentityFields = {
  requestId: z.string(),
  namespace: z.string(),
  functionName: z.string(),
  qualifier: z.string().openapi({ description: 'The version that ran: "$LATEST" or a published version number' }),
  alias: z.string().nullable().openapi({
    description: 'The alias the invocation named ("$DEFAULT" when it named none), null when it named a version',
  }),
  invokeType: z.string(),
  tags: z.record(z.string(), z.string()).openapi({
    description: "The tags the invocation was given (a replay keeps its original's), {} when none",
    example: { env: "prod", team: "video" },
  }),
};

/** The `tags` query parameter of the invoke routes (events/event-tags.ts). */
const invocationTagsQuery = invocationTagsQuerySchema.optional().openapi({
  type: "string",
  description: `Tags kept with the event, shown in its status and list rows and filterable in the list: \`key=value\` pairs separated by commas (\`env=prod,team=video\`), at most ${MAX_TAGS_PER_EVENT}, each key once. A key is ${TAG_KEY_RULE}; a value is ${TAG_VALUE_RULE}. A bad one is 400 INVALID_PARAMETER and no event is created. An Idempotency-Key duplicate answers with the key's event whatever its tags.`,
  example: "env=prod,team=video",
});

/** The handler's latest progress report (events/event-progress.ts). */
const progressSchema = z
  .object({
    percent: z.number().openapi({ description: `0 to ${MAX_PROGRESS_PERCENT}` }),
    message: z.string().openapi({ description: `At most ${MAX_PROGRESS_MESSAGE_CHARS} characters` }),
    at: z.string().openapi({ format: "date-time", description: "When the event received it" }),
  })
  .nullable()
  .openapi("Progress", {
    description: `The handler's latest \`context.progress(percent, message)\` report, null before any. The agent coalesces reports to one every ${MIN_PROGRESS_INTERVAL_MS} ms at most (the last one before the end is kept); each update is also streamed as \`event: progress\` on GET /v1/events/{requestId}/logs/stream. A list row shows what the event index has: it is written with the progress at most every ${PROGRESS_INDEX_INTERVAL_MS} ms while the event runs, and at its end with the final one`,
  });

/** One step of an event's timeline (events/event-timeline.ts). */
const timelineEntrySchema = z
  .object({
    at: z.string().openapi({ format: "date-time" }),
    kind: z.enum(TIMELINE_KINDS),
    detail: z
      .string()
      .nullable()
      .openapi({ description: "The queue reason, instance, start mode, terminate mode or end" }),
  })
  .openapi("TimelineEntry");

/** One event as GET /v1/events/{requestId} and terminate show it (events/event-machine.ts publicEvent). */
export const eventViewSchema = z
  .object({
    ...eventIdentityFields,
    status: eventStatusSchema,
    statusCode: z.number().int().nullable(),
    phase: z.string().openapi({ description: "The event's phase in the platform's state machine" }),
    queuedReason: z
      .enum(QUEUED_REASONS)
      .nullable()
      .openapi({
        description: `Why a queued event waits: "paused" (its function's dispatch is paused), "concurrency" (the function runs maxConcurrency events), "namespace-quota" (the namespace is at its container cap); null otherwise. Filled in by GET of the event only (not the terminate answer), asking the function's scheduler for at most ${QUEUED_REASON_TIMEOUT_MS} ms: null when it does not answer in time`,
      }),
    invokedAt: z.string().openapi({ format: "date-time" }),
    startedAt: z.string().nullable(),
    endedAt: z.string().nullable(),
    durationMs: z.number().nullable(),
    memoryUsageKb: z.number().nullable(),
    result: z.unknown().openapi({ description: "The handler's JSON result, null until it ends" }),
    errorMessage: z.string().nullable(),
    errorStack: z.string().nullable(),
    instanceId: z.string().nullable(),
    instanceType: z.string().nullable().openapi({
      description:
        "The compute size the event runs (or ran) on: the instance type of its container class (basic, standard-1, standard-2, or lite where CONTAINER_SIZES names it; chosen by its function's memorySize through CONTAINER_SIZES); null before an instance took it, and for events taken before compute sizes existed",
    }),
    containerId: z.string().nullable(),
    coldStart: z.boolean().nullable(),
    terminateRequestedAt: z.string().nullable(),
    terminationMode: z.enum(["forced", "graceful"]).nullable().openapi({
      description:
        "How a terminate request ended the event: graceful (SIGTERM went to the running handler), forced (ended at once: a forced request, or any request before the handler ran); null when none did",
    }),
    signalDeliveredAt: z.string().nullable().openapi({
      description: "When the graceful terminate's SIGTERM reached the handler (the instance confirmed it); else null",
    }),
    endedWithinGrace: z.boolean().nullable().openapi({
      description:
        "After a graceful terminate, once ended: true when the handler ended by itself within the grace period, false when the platform stopped it (the grace period ran out, a forced terminate, the timeout, a platform error); else null",
    }),
    replayOf: z.string().nullable().openapi({ description: "The RequestId of the event this one replays" }),
    replays: z.array(z.string()).openapi({
      description: `RequestIds of this event's replays, oldest first: the first ${MAX_REPLAYS_LISTED} only`,
    }),
    replayCount: z.number().int().openapi({ description: "How many replays of this event were recorded" }),
    replaysTruncated: z
      .boolean()
      .openapi({ description: `True when replayCount is over ${MAX_REPLAYS_LISTED}: replays lists the first ones` }),
    timeline: z.array(timelineEntrySchema).openapi({
      description: `The event's transitions, oldest first, at most ${MAX_TIMELINE_ENTRIES} (past it the first ${TIMELINE_HEAD_ENTRIES}, a \`truncated\` entry counting those left out, then the latest). Also streamed as \`event: timeline\` on GET /v1/events/{requestId}/logs/stream`,
    }),
    progress: progressSchema,
  })
  .openapi("Event");

/** One row of an event list (events/event-list.ts listedEvent). */
const listedEventSchema = z
  .object({
    ...eventIdentityFields,
    status: z.string(),
    statusCode: z.number().int().nullable(),
    startTime: z.string().openapi({ format: "date-time" }),
    endTime: z.string().nullable(),
    durationMs: z.number().nullable(),
    progress: progressSchema,
  })
  .openapi("ListedEvent");

const TAG = "Events";

/** The invoke route's headers: an optional idempotency key (Hono hands headers over lower-cased). */
const invokeHeaders = z.object({
  "idempotency-key": idempotencyKeySchemaFor("Idempotency-Key")
    .optional()
    .openapi({
      description: `Idempotency-Key: ${IDEMPOTENCY_KEY_RULE}. The same key for the same function within the function's idempotencyWindowSeconds answers 200 with the first event's requestId and status instead of creating an event; with another payload or qualifier, 409 IDEMPOTENCY_KEY_REUSED.`,
    }),
});

/** The answer to a duplicate idempotency key: the key's event. */
const idempotentReplaySchema = z
  .object({ requestId: z.string(), status: eventStatusSchema, idempotentReplay: z.literal(true) })
  .openapi("IdempotentReplay");

const invoke = createRoute({
  method: "post",
  path: "/v1/namespaces/{namespace}/functions/{name}/invocations",
  tags: [TAG],
  summary: "Invoke a function asynchronously",
  description: `The body is the event's payload: any JSON, at most ${MAX_ASYNC_PAYLOAD_BYTES} bytes (empty means {}). The answer comes as soon as the event is accepted.`,
  middleware: [pathFirst(functionParams)],
  request: {
    params: functionParams,
    query: queryOf(
      z.object({
        qualifier: z.string().optional().openapi({
          description:
            "A version ($LATEST, 1, ...) or an alias; $DEFAULT when absent (it routes to $LATEST until updated). The event records the version run as qualifier and the alias as alias.",
        }),
        tags: invocationTagsQuery,
      }),
    ),
    headers: invokeHeaders,
    // Read with readBodyText (bounded while streaming); any JSON value is a payload.
    body: documentedBody("The payload", { description: "Any JSON value" }, false),
  },
  responses: {
    202: jsonResponse("Accepted", z.object({ requestId: z.string() })),
    200: {
      ...jsonResponse(
        "A duplicate idempotency key: the key's event, and the header Idempotent-Replayed: true",
        idempotentReplaySchema,
      ),
      headers: z.object({ "Idempotent-Replayed": z.literal("true") }),
    },
    ...errorResponses(...COMMON_ERROR_STATUSES, 409, 413, 503),
  },
});

/** The answer of a synchronous invocation whose event ended, whatever its status (events/invoke-sync.ts). */
const syncInvocationSchema = z
  .object({
    requestId: z.string(),
    status: eventStatusSchema,
    statusCode: z.number().int().nullable().openapi({ description: "SCF's StatusCode: 200, 430, 433, ..." }),
    result: z.unknown().openapi({ description: "The handler's JSON result (null when it failed)" }),
    error: z
      .object({ message: z.string(), stack: z.string().nullable() })
      .nullable()
      .openapi({ description: "Why the event did not finish; null when it finished" }),
    durationMs: z.number().nullable(),
    memoryUsageKb: z.number().nullable(),
    logTail: z
      .string()
      .openapi({ description: `The last ${SYNC_LOG_TAIL_BYTES} bytes of the event's log (whole lines)` }),
    idempotentReplay: z
      .boolean()
      .openapi({ description: "True when a duplicate Idempotency-Key answered the key's event" }),
  })
  .openapi("SyncInvocation");

const invokeSyncRoute = createRoute({
  method: "post",
  path: "/v1/namespaces/{namespace}/functions/{name}/invocations/sync",
  tags: [TAG],
  summary: "Invoke a function and wait for its result",
  description: `SCF's synchronous invocation (Invoke with RequestResponse). The body is the payload: any JSON, at most ${MAX_ASYNC_PAYLOAD_BYTES} bytes (empty means {}). A function with async execution off: the call waits for the event's end, up to the function's timeout plus ${SYNC_START_ALLOWANCE_MS / 1000} s for queueing and start, and answers 200 with the outcome whatever the status (a handler's failure is FAILED with its error, not an HTTP error); past that, 504 INVOCATION_WAIT_TIMEOUT whose message names the RequestId (the event goes on: GET /v1/events/{requestId}). A function with async execution on is not waited for: 202 with the RequestId, as SCF answers. The event is recorded and readable either way; Idempotency-Key works as on the async route.`,
  middleware: [pathFirst(functionParams)],
  request: {
    params: functionParams,
    query: queryOf(
      z.object({
        qualifier: z.string().optional().openapi({ description: "Version or alias" }),
        tags: invocationTagsQuery,
      }),
    ),
    headers: invokeHeaders,
    body: documentedBody("The payload", { description: "Any JSON value" }, false),
  },
  responses: {
    200: jsonResponse("The event ended: its outcome", syncInvocationSchema),
    202: jsonResponse(
      "The function runs with async execution on: accepted, not waited for",
      z.object({ requestId: z.string() }),
    ),
    ...errorResponses(...COMMON_ERROR_STATUSES, 409, 413, 503, 504),
  },
});

const listFunctionEvents = createRoute({
  method: "get",
  path: "/v1/namespaces/{namespace}/functions/{name}/events",
  tags: [TAG],
  summary: "List a function's events (kept by the namespace's retention, 72 hours by default)",
  description:
    "Filters: `qualifier` (a version such as $LATEST or 1 matches the version the event ran; an alias such as $DEFAULT the alias it was invoked through), `invokeTypes` (a comma list of SCF's invoke types: CMQ, CKAFKA_TRIGGER, APIGW, COS, TRIGGER_TIMER, MPS_TRIGGER, CLS_TRIGGER, OTHERS; API invocations are OTHERS), `statuses`, `requestId` and the time intervals (left-closed, right-open)." +
    ` \`statusCodes\`: a comma list of at most ${MAX_STATUS_CODE_FILTERS} StatusCodes (200, 430, 433, 434, 439, 499, 500, 503; a running event has none). \`minDurationMs\` / \`maxDurationMs\`: a closed range of durations (0 to ${MAX_DURATION_FILTER_MS}, min not over max; a running event has no duration and never matches).` +
    ` \`tags\`: \`key=value\` pairs separated by commas (\`env=prod,team=video\`), at most ${MAX_TAG_FILTERS}: events carrying every one of them.` +
    ` Pages: \`offset\` (at most ${MAX_LIST_OFFSET}) or \`cursor\` (at most ${MAX_CURSOR_CHARS} characters), not both. Every answer carries \`nextCursor\`, null on the last page: pass it back unchanged, with the same \`orderBy\` and \`order\` (another order, or a malformed cursor, is a 400), to read the rows just after the page's last one; rows that arrive meanwhile never shift a cursor's next page, as they shift an offset's. \`total\` counts every matching row.`,
  middleware: [pathFirst(functionParams)],
  request: { params: functionParams, query: queryOf(listEventsQuerySchema) },
  responses: {
    200: jsonResponse(
      "One page of events",
      z.object({
        total: z.number().int(),
        events: z.array(listedEventSchema),
        nextCursor: z.string().nullable().openapi({ description: "The cursor of the next page; null on the last" }),
      }),
    ),
    ...errorResponses(...COMMON_ERROR_STATUSES),
  },
});

const terminate = createRoute({
  method: "post",
  path: "/v1/events/{requestId}/terminate",
  tags: [TAG],
  summary: "Terminate an event",
  description: `graceful: true sends SIGTERM first; graceSeconds (${MIN_GRACE_SECONDS}-${MAX_GRACE_SECONDS}, default ${GRACEFUL_TERMINATE_TIMEOUT_MS / 1000}) is how long the handler then has before it is stopped by force. The body (optional, at most ${MAX_TERMINATE_BODY_BYTES} bytes) is read and checked by the route.`,
  request: { params: eventParams, body: documentedJsonBody("TerminateRequest", "How to terminate", false) },
  responses: {
    200: jsonResponse("The event, terminating or ended", eventViewSchema),
    ...errorResponses(...COMMON_ERROR_STATUSES, 409, 413),
  },
});

const getEvent = createRoute({
  method: "get",
  path: "/v1/events/{requestId}",
  tags: [TAG],
  summary: "Get an event's status and result",
  request: { params: eventParams },
  responses: { 200: jsonResponse("The event", eventViewSchema), ...errorResponses(...COMMON_ERROR_STATUSES) },
});

const getPayload = createRoute({
  method: "get",
  path: "/v1/events/{requestId}/payload",
  tags: [TAG],
  summary: "Get an event's payload as it was sent",
  description:
    "The exact JSON text the event was invoked with, readable as long as the event is (its namespace's retention after it ends, 72 hours by default). Counted by the read limit.",
  request: { params: eventParams },
  responses: {
    // A JSON Schema, not a zod one: the answer is the stored text itself, not a value c.json writes.
    200: {
      description: "The payload, as it was sent",
      content: { "application/json": { schema: { description: "Any JSON value" } } },
    },
    ...errorResponses(...COMMON_ERROR_STATUSES),
  },
});

const replayRoute = createRoute({
  method: "post",
  path: "/v1/events/{requestId}/replay",
  tags: [TAG],
  summary: "Replay an event: invoke its payload again as a new event",
  description: `The new event runs the same function and qualifier with the function's current configuration (its QPS limit and checks apply); its view shows \`replayOf\`, and the original's lists it in \`replays\` (the first ${MAX_REPLAYS_LISTED}; \`replayCount\` counts all). The original may be in any status. The body is empty or \`{}\` (at most ${MAX_REPLAY_BODY_BYTES} bytes).`,
  request: { params: eventParams, body: documentedJsonBody("ReplayRequest", "No options: empty or {}", false) },
  responses: {
    202: jsonResponse("Accepted", z.object({ requestId: z.string(), replayOf: z.string() })),
    ...errorResponses(...COMMON_ERROR_STATUSES, 413, 503),
  },
});

/** One attempt of a result delivery (events/delivery.ts DeliveryAttempt). */
const deliveryAttemptSchema = z
  .object({
    attempt: z.number().int(),
    at: z.string().openapi({ format: "date-time" }),
    latencyMs: z.number(),
    statusCode: z
      .number()
      .int()
      .nullable()
      .openapi({ description: "The webhook's HTTP status; null for a queue or no answer" }),
    error: z.string().nullable().openapi({ description: "Why the attempt failed; null when it succeeded" }),
  })
  .openapi("DeliveryAttempt");

/** One delivery of an event's end record (events/delivery-object.ts PublicDelivery). */
const deliverySchema = z
  .object({
    destination: z.enum(["webhook", "queue"]),
    kind: z.enum(["onSuccess", "onFailure", "onTerminate"]),
    deliveryId: z.string().openapi({ description: "Sent in afp-delivery-id on every attempt: receivers dedupe by it" }),
    state: z.enum(["pending", "delivered", "failed"]),
    attempts: z.array(deliveryAttemptSchema).openapi({
      description: `The attempts, oldest first: the first ${MAX_LOGGED_ATTEMPTS} only (attemptCount counts them all)`,
    }),
    attemptCount: z.number().int(),
    nextAttemptAt: z.string().nullable().openapi({ description: "When a pending delivery is tried next" }),
  })
  .openapi("Delivery");

const getDeliveries = createRoute({
  method: "get",
  path: "/v1/events/{requestId}/deliveries",
  tags: [TAG],
  summary: "Get the deliveries of an event's result to its function's destinations",
  description:
    "The delivery of the event's end record to each destination configured (when it was invoked) for its end, with every attempt. Empty while the event runs and when none is configured. Readable as long as the event is; counted by the read limit.",
  request: { params: eventParams },
  responses: {
    200: jsonResponse("The deliveries", z.object({ deliveries: z.array(deliverySchema) })),
    ...errorResponses(...COMMON_ERROR_STATUSES),
  },
});

/** REST routes: async invocation and reading events. */
export const eventRoutes = new OpenAPIHono<AppEnv>({ defaultHook: refuseInvalid })
  .openapi(invoke, async (c) => {
    const { namespace, name } = c.req.valid("param");
    const payloadText = await readBodyText(c, MAX_ASYNC_PAYLOAD_BYTES);
    const { qualifier, tags } = c.req.valid("query");
    const idempotencyKey = c.req.valid("header")["idempotency-key"];
    const accepted = await invokeAsync(c.env, {
      namespace,
      functionName: name,
      payloadText: payloadText.length === 0 ? "{}" : payloadText,
      ...(qualifier !== undefined ? { qualifier } : {}),
      ...(tags !== undefined ? { tags } : {}),
      ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
      callerSecretId: c.var.principal.secretId,
    });
    if (accepted.idempotentReplay) {
      const replay = { requestId: accepted.requestId, status: accepted.status, idempotentReplay: true as const };
      return c.json(replay, 200, { "Idempotent-Replayed": "true" });
    }
    return c.json({ requestId: accepted.requestId }, 202);
  })
  .openapi(invokeSyncRoute, async (c) => {
    const { namespace, name } = c.req.valid("param");
    const payloadText = await readBodyText(c, MAX_ASYNC_PAYLOAD_BYTES);
    const { qualifier, tags } = c.req.valid("query");
    const idempotencyKey = c.req.valid("header")["idempotency-key"];
    const invoked = await invokeSync(
      c.env,
      {
        namespace,
        functionName: name,
        payloadText: payloadText.length === 0 ? "{}" : payloadText,
        ...(qualifier !== undefined ? { qualifier } : {}),
        ...(tags !== undefined ? { tags } : {}),
        ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
        callerSecretId: c.var.principal.secretId,
      },
      { logTailBytes: SYNC_LOG_TAIL_BYTES },
    );
    const replayed = invoked.answer.idempotentReplay === true;
    const headers = replayed ? { "Idempotent-Replayed": "true" } : undefined;
    if (invoked.kind === "accepted") return c.json({ requestId: invoked.answer.requestId }, 202, headers);
    const { event } = invoked;
    const error =
      event.status === "FINISHED"
        ? null
        : { message: event.errorMessage ?? `the event ended ${event.status}`, stack: event.errorStack };
    const answer = {
      requestId: event.requestId,
      status: event.status,
      statusCode: event.statusCode,
      result: event.result ?? null,
      error,
      durationMs: event.durationMs,
      memoryUsageKb: event.memoryUsageKb,
      logTail: invoked.logTail ?? "",
      idempotentReplay: replayed,
    };
    return c.json(answer, 200, headers);
  })
  .openapi(listFunctionEvents, async (c) => {
    const { namespace, name } = c.req.valid("param");
    const query = c.req.valid("query");
    admitRead(c.var.principal.secretId);
    const page = await listEvents(indexDatabaseOf(c.env, namespace), namespace, name, query);
    return c.json({ total: page.total, events: page.events.map(listedEvent), nextCursor: page.nextCursor }, 200);
  })
  .openapi(terminate, async (c) => {
    const event = await visibleEvent(c.env, c.var.principal, c.req.valid("param").requestId);
    const text = await readBodyText(c, MAX_TERMINATE_BODY_BYTES);
    let body: unknown = {};
    if (text.trim().length > 0) {
      try {
        body = JSON.parse(text);
      } catch {
        throw new PlatformError("INVALID_JSON", "request body is not valid JSON");
      }
    }
    const { graceful, graceSeconds } = parseWith(terminateBodySchema, body);
    return c.json(
      unwrap(await event.terminate(graceful, graceSeconds !== undefined ? graceSeconds * 1000 : undefined)),
      200,
    );
  })
  .openapi(getEvent, async (c) => {
    const { event } = await visibleEventView(c.env, c.var.principal, c.req.valid("param").requestId);
    // Why a queued event waits: asked of its scheduler only now, after the access check, and bounded.
    return c.json(await withQueuedReason(c.env, event), 200);
  })
  .openapi(getPayload, async (c) => {
    admitRead(c.var.principal.secretId);
    const event = await visibleEvent(c.env, c.var.principal, c.req.valid("param").requestId);
    const { payload } = unwrap(await event.payload());
    // The exact text as it was sent: c.json would write the value anew (spacing, key order, numbers),
    // so the answer is a Response of its own, typed as the JSON answer the route documents.
    const answer = new Response(payload, {
      status: 200,
      headers: { "content-type": "application/json; charset=utf-8" },
    });
    return answer as unknown as TypedResponse<never, 200, "json">;
  })
  .openapi(getDeliveries, async (c) => {
    admitRead(c.var.principal.secretId);
    const requestId = c.req.valid("param").requestId;
    // visibleEvent refuses another namespace's event exactly as an unknown one (EVENT_NOT_FOUND).
    await visibleEvent(c.env, c.var.principal, requestId);
    return c.json({ deliveries: await deliveryStub(c.env, requestId).view() }, 200);
  })
  .openapi(replayRoute, async (c) => {
    const event = await visibleEvent(c.env, c.var.principal, c.req.valid("param").requestId);
    const text = await readBodyText(c, MAX_REPLAY_BODY_BYTES);
    if (text.trim().length > 0) {
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new PlatformError("INVALID_JSON", "request body is not valid JSON");
      }
      parseWith(replayBodySchema, body);
    }
    return c.json(await replayEvent(c.env, event), 202);
  });

eventRoutes.openAPIRegistry.register("TerminateRequest", terminateBodySchema);
eventRoutes.openAPIRegistry.register("ReplayRequest", replayBodySchema);
