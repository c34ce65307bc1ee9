import { DEFAULT_IDEMPOTENCY_WINDOW_SECONDS } from "../functions/model";
import { chooseVersion, type QualifierRoute, resolveRoute } from "../functions/qualifiers";
import { FunctionRegistry, functionNotFound } from "../functions/registry";
import { DistributedQpsLimiter } from "../ratelimit/qps-limiter";
import { PlatformError } from "../shared/errors";
import { eventStub, qpsBucketStub } from "../shared/objects";
import { checkInvocationTags, type EventTags } from "./event-tags";
import { checkIdempotencyKey, type InvocationAnswer, invokeIdempotent } from "./idempotency";
import { checkPausedBacklog } from "./paused-backlog";

/** Largest async event payload (JSON), as SCF allows. */
export const MAX_ASYNC_PAYLOAD_BYTES = 128 * 1024;
/** Invoke type recorded for invocations through the API (REST or Invoke). */
export const API_INVOKE_TYPE = "OTHERS";
/**
 * The qualifier of an invocation that names none: the alias `$DEFAULT` (SCF's documented default
 * for API calls and triggers), which routes to `$LATEST` until it is updated.
 */
export const DEFAULT_QUALIFIER = "$DEFAULT";

/** Invocation QPS per function, counted across isolates (one bucket Durable Object per function). */
const limiter = new DistributedQpsLimiter();

/** One invocation, whoever makes it (the REST route, the Tencent `Invoke` action). */
export interface InvocationRequest {
  namespace: string;
  functionName: string;
  /** The payload as the caller sent it: JSON text, at most MAX_ASYNC_PAYLOAD_BYTES. */
  payloadText: string;
  /** A version ("$LATEST", "1", ...) or an alias; DEFAULT_QUALIFIER when absent. */
  qualifier?: string;
  invokeType?: string;
  /**
   * The caller's idempotency key (idempotency.ts): the same key, for the same function, within the
   * function's window answers with the key's event instead of creating one.
   */
  idempotencyKey?: string;
  /**
   * How long the idempotency key holds, in seconds, instead of the function's window: the triggers
   * set it, as their keys (a timer's tick, a queue message's id) must hold as long as a redelivery
   * can come, whatever the function's own window.
   */
  idempotencyWindowSeconds?: number;
  /** The RequestId of the event this invocation replays (events/replay.ts), shown on the new event. */
  replayOf?: string;
  /**
   * The RequestId to give the event, without an idempotency key (a fresh UUID when absent): a queue
   * trigger's batch claims each of its messages for this RequestId before the event exists, so a
   * redelivered message finds the batch's event (triggers/queue.ts).
   */
  requestId?: string;
  /** The caller's SecretId: a duplicate idempotency key's answer counts against its read limit. */
  callerSecretId?: string;
  /**
   * The invocation's tags (event-tags.ts), kept with the event: checked here for every caller
   * (INVALID_PARAMETER naming the rule, before anything else is looked at). A replay passes its
   * original's. They play no part in an idempotency key: a duplicate key answers with the key's
   * event, whatever tags either invocation named.
   */
  tags?: EventTags;
}

/**
 * The one entry point for invocations: checks the payload, the function and its QPS limit, then
 * hands the event to its own Durable Object, which records it and queues its dispatch. Returns
 * the RequestId once the event is durable. With an idempotency key, a duplicate within the key's
 * window answers with the key's event (idempotentReplay) and creates none.
 */
export async function invokeAsync(env: Env, request: InvocationRequest): Promise<InvocationAnswer> {
  if (request.idempotencyKey !== undefined) checkIdempotencyKey(request.idempotencyKey);
  const tags = checkInvocationTags(request.tags);
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
  // A function with async execution off (a "sync function") is invoked here too: its event runs on the
  // same containers, scheduler and logs; invokeSync (invoke-sync.ts) waits for its end when the
  // caller asked to (Invoke RequestResponse, the REST sync route), as SCF's sync invocation does.
  // The qualifier as requested (an alias stays an alias here: the idempotency key compares it, so
  // a redelivery through a weighted alias is the same invocation); the version is chosen only when
  // the event is created (admitAndAccept).
  const qualifier = request.qualifier ?? DEFAULT_QUALIFIER;
  const route = await resolveRoute(env, request.namespace, request.functionName, qualifier);
  if (request.idempotencyKey === undefined) {
    return admitAndAccept(env, request, route, request.requestId ?? crypto.randomUUID(), tags);
  }
  const idempotent = {
    namespace: request.namespace,
    functionName: request.functionName,
    key: request.idempotencyKey,
    qualifier,
    payloadText: request.payloadText,
    windowSeconds:
      request.idempotencyWindowSeconds ?? snapshot.idempotencyWindowSeconds ?? DEFAULT_IDEMPOTENCY_WINDOW_SECONDS,
    ...(request.callerSecretId !== undefined ? { callerSecretId: request.callerSecretId } : {}),
  };
  return invokeIdempotent(env, idempotent, (requestId) => admitAndAccept(env, request, route, requestId, tags));
}

/**
 * Chooses the version the event runs (an alias's weighted routing), refuses a paused function past
 * its backlog bound (paused-backlog.ts), takes a token of the function's QPS limit, then hands the event to its object as `requestId`: its `qualifier` is the version
 * chosen, its `alias` the alias named (if any), its snapshot that version's.
 */
async function admitAndAccept(
  env: Env,
  request: InvocationRequest,
  route: QualifierRoute,
  requestId: string,
  tags: EventTags | undefined,
): Promise<{ requestId: string }> {
  const chosen = chooseVersion(route);
  const snapshot = chosen.snapshot;
  // A paused function past its backlog bound is refused before a QPS token is taken.
  await checkPausedBacklog(env, request.namespace, request.functionName);
  const bucketKey = `fn:${request.namespace}/${request.functionName}`;
  const admission = await limiter.admit(bucketKey, snapshot.qpsLimit, () => qpsBucketStub(env, bucketKey));
  if (!admission.admitted) {
    throw new PlatformError(
      "RATE_LIMITED",
      `function ${request.functionName} is over its limit of ${snapshot.qpsLimit} invocations per second; retry after ${admission.retryAfterSeconds} s`,
      { retryAfterSeconds: admission.retryAfterSeconds },
    );
  }
  return eventStub(env, requestId).accept({
    requestId,
    namespace: request.namespace,
    functionName: request.functionName,
    qualifier: chosen.version,
    ...(chosen.alias !== undefined ? { alias: chosen.alias } : {}),
    invokeType: request.invokeType ?? API_INVOKE_TYPE,
    function: snapshot,
    payload: request.payloadText,
    invokedAt: Date.now(),
    ...(request.replayOf !== undefined ? { replayOf: request.replayOf } : {}),
    ...(tags !== undefined ? { tags } : {}),
  });
}
