import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../auth/credentials";
import { visibleEvent, visibleEventView } from "../../events/event-access";
import { listEvents, listEventsQuerySchema, listedEvent } from "../../events/event-list";
import { invokeAsync, MAX_ASYNC_PAYLOAD_BYTES } from "../../events/invoke";
import { admitRead } from "../../ratelimit/read-limit";
import { PlatformError, unwrap } from "../../shared/errors";
import { functionNameSchema, namespaceSchema } from "../../shared/names";
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

const terminateBodySchema = z.strictObject({ graceful: z.boolean().default(false) });

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
  qualifier: z.string(),
  invokeType: z.string(),
};

/** One event as GET /v1/events/{requestId} and terminate show it (events/event-machine.ts publicEvent). */
export const eventViewSchema = z
  .object({
    ...eventIdentityFields,
    status: eventStatusSchema,
    statusCode: z.number().int().nullable(),
    phase: z.string().openapi({ description: "The event's phase in the platform's state machine" }),
    invokedAt: z.string().openapi({ format: "date-time" }),
    startedAt: z.string().nullable(),
    endedAt: z.string().nullable(),
    durationMs: z.number().nullable(),
    memoryUsageKb: z.number().nullable(),
    result: z.unknown().openapi({ description: "The handler's JSON result, null until it ends" }),
    errorMessage: z.string().nullable(),
    errorStack: z.string().nullable(),
    instanceId: z.string().nullable(),
    containerId: z.string().nullable(),
    coldStart: z.boolean().nullable(),
    terminateRequestedAt: z.string().nullable(),
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
  })
  .openapi("ListedEvent");

const TAG = "Events";

const invoke = createRoute({
  method: "post",
  path: "/v1/namespaces/{namespace}/functions/{name}/invocations",
  tags: [TAG],
  summary: "Invoke a function asynchronously",
  description: `The body is the event's payload: any JSON, at most ${MAX_ASYNC_PAYLOAD_BYTES} bytes (empty means {}). The answer comes as soon as the event is accepted.`,
  middleware: [pathFirst(functionParams)],
  request: {
    params: functionParams,
    query: queryOf(z.object({ qualifier: z.string().optional().openapi({ description: "Version or alias" }) })),
    // Read with readBodyText (bounded while streaming); any JSON value is a payload.
    body: documentedBody("The payload", { description: "Any JSON value" }, false),
  },
  responses: {
    202: jsonResponse("Accepted", z.object({ requestId: z.string() })),
    ...errorResponses(...COMMON_ERROR_STATUSES, 413, 503),
  },
});

const listFunctionEvents = createRoute({
  method: "get",
  path: "/v1/namespaces/{namespace}/functions/{name}/events",
  tags: [TAG],
  summary: "List a function's events (the last 3 days)",
  middleware: [pathFirst(functionParams)],
  request: { params: functionParams, query: queryOf(listEventsQuerySchema) },
  responses: {
    200: jsonResponse("One page of events", z.object({ total: z.number().int(), events: z.array(listedEventSchema) })),
    ...errorResponses(...COMMON_ERROR_STATUSES),
  },
});

const terminate = createRoute({
  method: "post",
  path: "/v1/events/{requestId}/terminate",
  tags: [TAG],
  summary: "Terminate an event",
  description: `graceful: true sends SIGTERM first. The body (optional, at most ${MAX_TERMINATE_BODY_BYTES} bytes) is read and checked by the route.`,
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

/** REST routes: async invocation and reading events. */
export const eventRoutes = new OpenAPIHono<AppEnv>({ defaultHook: refuseInvalid })
  .openapi(invoke, async (c) => {
    const { namespace, name } = c.req.valid("param");
    const payloadText = await readBodyText(c, MAX_ASYNC_PAYLOAD_BYTES);
    const { qualifier } = c.req.valid("query");
    const accepted = await invokeAsync(c.env, {
      namespace,
      functionName: name,
      payloadText: payloadText.length === 0 ? "{}" : payloadText,
      ...(qualifier !== undefined ? { qualifier } : {}),
    });
    return c.json(accepted, 202);
  })
  .openapi(listFunctionEvents, async (c) => {
    const { namespace, name } = c.req.valid("param");
    const query = c.req.valid("query");
    admitRead(c.var.principal.secretId);
    const page = await listEvents(c.env.DB, namespace, name, query);
    return c.json({ total: page.total, events: page.events.map(listedEvent) }, 200);
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
    const { graceful } = parseWith(terminateBodySchema, body);
    return c.json(unwrap(await event.terminate(graceful)), 200);
  })
  .openapi(getEvent, async (c) => {
    const { event } = await visibleEventView(c.env, c.var.principal, c.req.valid("param").requestId);
    return c.json(event, 200);
  });

eventRoutes.openAPIRegistry.register("TerminateRequest", terminateBodySchema);
