import { Hono } from "hono";
import { z } from "zod";
import { parseWith, readBodyText } from "../api/validation";
import { type AuthVariables, canAccessNamespace } from "../auth/credentials";
import { functionNameSchema } from "../functions/model";
import { DistributedQpsLimiter, qpsBucketStub } from "../functions/qps-limiter";
import { FunctionRegistry, functionNotFound } from "../functions/registry";
import { namespaceParam } from "../functions/routes";
import { PlatformError, unwrap } from "../shared/errors";
import { admitRead } from "../shared/read-limit";
import { listEvents, listEventsQuerySchema, listedEvent } from "./event-list";
import type { PublicEvent } from "./event-machine";

type AppEnv = { Bindings: Env; Variables: AuthVariables };

/** Largest async event payload (JSON), as SCF allows. */
export const MAX_ASYNC_PAYLOAD_BYTES = 128 * 1024;
/** Invoke type recorded for invocations through the API (REST or Invoke). */
export const API_INVOKE_TYPE = "OTHERS";
/** The only qualifier until versions exist. */
export const DEFAULT_QUALIFIER = "$LATEST";

/** Invocation QPS per function, counted across isolates (one bucket Durable Object per function). */
const limiter = new DistributedQpsLimiter();
const terminateBodySchema = z.strictObject({ graceful: z.boolean().default(false) });
const requestIdSchema = z.uuid("requestId must be a UUID");

/** Accepts one async invocation; shared by the REST route and the Tencent Cloud API action. */
export async function invokeAsync(
  env: Env,
  request: { namespace: string; functionName: string; payloadText: string; qualifier?: string; invokeType?: string },
): Promise<{ requestId: string }> {
  if (new TextEncoder().encode(request.payloadText).byteLength > MAX_ASYNC_PAYLOAD_BYTES) {
    throw new PlatformError("PAYLOAD_TOO_LARGE", `async event payload over ${MAX_ASYNC_PAYLOAD_BYTES} bytes`);
  }
  try {
    JSON.parse(request.payloadText);
  } catch {
    throw new PlatformError("INVALID_JSON", "the event payload is not valid JSON");
  }
  const snapshot = await new FunctionRegistry(env).snapshot(request.namespace, request.functionName);
  if (!snapshot) {
    throw functionNotFound(request.namespace, request.functionName);
  }
  if (!snapshot.asyncRunEnable) {
    throw new PlatformError("FUNCTION_NOT_ASYNC", `function ${request.functionName} is not an async function`);
  }
  const qualifier = request.qualifier ?? DEFAULT_QUALIFIER;
  if (qualifier !== DEFAULT_QUALIFIER) {
    throw new PlatformError("INVALID_PARAMETER", `qualifier: only ${DEFAULT_QUALIFIER} exists`);
  }
  const bucketKey = `fn:${request.namespace}/${request.functionName}`;
  const admission = await limiter.admit(bucketKey, snapshot.qpsLimit, () => qpsBucketStub(env, bucketKey));
  if (!admission.admitted) {
    throw new PlatformError(
      "RATE_LIMITED",
      `function ${request.functionName} is over its limit of ${snapshot.qpsLimit} invocations per second; retry after ${admission.retryAfterSeconds} s`,
      { retryAfterSeconds: admission.retryAfterSeconds },
    );
  }
  const requestId = crypto.randomUUID();
  const event = env.ASYNC_EVENT.get(env.ASYNC_EVENT.idFromName(requestId));
  return event.accept({
    requestId,
    namespace: request.namespace,
    functionName: request.functionName,
    qualifier,
    invokeType: request.invokeType ?? API_INVOKE_TYPE,
    function: snapshot,
    payload: request.payloadText,
    invokedAt: Date.now(),
  });
}

function eventStub(env: Env, rawRequestId: string | undefined) {
  const parsed = requestIdSchema.safeParse(rawRequestId);
  if (!parsed.success) throw new PlatformError("EVENT_NOT_FOUND", `no event ${String(rawRequestId)}`);
  return { requestId: parsed.data, stub: env.ASYNC_EVENT.get(env.ASYNC_EVENT.idFromName(parsed.data)) };
}

/** Looks up an event the caller may see; not-found otherwise (other namespaces included). */
export async function visibleEvent(env: Env, principal: AuthVariables["principal"], rawRequestId: string | undefined) {
  const { requestId, stub } = eventStub(env, rawRequestId);
  const namespace = await stub.namespaceOf();
  if (namespace === undefined || !canAccessNamespace(principal, namespace)) {
    throw new PlatformError("EVENT_NOT_FOUND", `no event ${requestId}`);
  }
  return stub;
}

/** As visibleEvent, with the event's public view read in the same call. */
export async function visibleEventView(
  env: Env,
  principal: AuthVariables["principal"],
  rawRequestId: string | undefined,
) {
  const { requestId, stub } = eventStub(env, rawRequestId);
  const view = await stub.view();
  if (view.ok === false) throw new PlatformError("EVENT_NOT_FOUND", `no event ${requestId}`);
  const event = unwrap<PublicEvent>(view);
  if (!canAccessNamespace(principal, event.namespace)) {
    throw new PlatformError("EVENT_NOT_FOUND", `no event ${requestId}`);
  }
  return { stub, event };
}

/** REST routes: async invocation and reading events. */
export const eventRoutes = new Hono<AppEnv>()
  .post("/v1/namespaces/:namespace/functions/:name/invocations", async (c) => {
    const namespace = namespaceParam(c.var.principal, c.req.param("namespace"));
    const functionName = parseWith(functionNameSchema, c.req.param("name"));
    const payloadText = await readBodyText(c, MAX_ASYNC_PAYLOAD_BYTES);
    const qualifier = c.req.query("qualifier");
    const accepted = await invokeAsync(c.env, {
      namespace,
      functionName,
      payloadText: payloadText.length === 0 ? "{}" : payloadText,
      ...(qualifier !== undefined ? { qualifier } : {}),
    });
    return c.json(accepted, 202);
  })
  .get("/v1/namespaces/:namespace/functions/:name/events", async (c) => {
    const namespace = namespaceParam(c.var.principal, c.req.param("namespace"));
    const functionName = parseWith(functionNameSchema, c.req.param("name"));
    const query = parseWith(listEventsQuerySchema, c.req.query());
    admitRead(c.var.principal.secretId);
    const page = await listEvents(c.env.DB, namespace, functionName, query);
    return c.json({ total: page.total, events: page.events.map(listedEvent) });
  })
  .post("/v1/events/:requestId/terminate", async (c) => {
    const event = await visibleEvent(c.env, c.var.principal, c.req.param("requestId"));
    const text = await readBodyText(c, 4096);
    let body: unknown = {};
    if (text.trim().length > 0) {
      try {
        body = JSON.parse(text);
      } catch {
        throw new PlatformError("INVALID_JSON", "request body is not valid JSON");
      }
    }
    const { graceful } = parseWith(terminateBodySchema, body);
    return c.json(unwrap(await event.terminate(graceful)));
  })
  .get("/v1/events/:requestId", async (c) => {
    const { event } = await visibleEventView(c.env, c.var.principal, c.req.param("requestId"));
    return c.json(event);
  });
