// Asynchronous event actions (Invoke, ListAsyncEvents, GetAsyncEventStatus, TerminateAsyncEvent):
// Tencent parameters translated to the event services (invokeAsync, the event index, the event's
// Durable Object), and events translated to Tencent's async event model.

import { z } from "zod";
import type { Principal } from "../auth/principal";
import { indexDatabaseOf } from "../db/index-databases";
import { visibleEventView } from "../events/event-access";
import { listEvents, MAX_INVOKE_TYPE_FILTERS, qualifierFilterSchema, SCF_INVOKE_TYPES } from "../events/event-list";
import { idempotencyKeySchemaFor } from "../events/idempotency";
import { invokeAsync } from "../events/invoke";
import { invokeSync, scfAcceptedResult, scfEndedResult, tailBytesFor } from "../events/invoke-sync";
import { admitRead } from "../ratelimit/read-limit";
import { unwrap } from "../shared/errors";
import { parseTcTime, tcTime } from "./envelope";
import { type Action, functionNameParam, namespaceOf, namespaceParam, parseParams, TcApiError } from "./params";

/** SCF's invocation types: `RequestResponse` (synchronous, the SDK's default) and `Event` (asynchronous). */
const INVOCATION_TYPES = ["RequestResponse", "Event"] as const;

/**
 * Invoke: ClientContext is the payload (`{}` when absent). `Event`, or any invocation of a function
 * with async execution on, answers at once with the FunctionRequestId (the other fields empty or 0).
 * `RequestResponse` (the default) on a function with async execution off waits for the event's end
 * (events/invoke-sync.ts) and answers SCF's Result: RetMsg, ErrMsg (a handler's failure is not an
 * API error), Log with LogType "Tail", MemUsage, Duration, BillDuration, InvokeResult; a wait that
 * runs out is FailedOperation.InvokeFunction naming the RequestId. `IdempotencyKey` is this
 * platform's extension (not an SCF parameter): a duplicate key within the function's window answers
 * with the key's event (waited for, like the first call); another payload is
 * FailedOperation.IdempotencyKeyReused.
 */
export const invoke: Action = async ({ env, principal, params }) => {
  const p = parseParams(
    z.object({
      FunctionName: functionNameParam,
      InvocationType: z.enum(INVOCATION_TYPES).default("RequestResponse"),
      LogType: z.enum(["Tail", "None", ""]).optional(),
      Qualifier: z.string().optional(),
      ClientContext: z.string().optional(),
      Namespace: namespaceParam.optional(),
      IdempotencyKey: idempotencyKeySchemaFor("IdempotencyKey").optional(),
    }),
    params,
  );
  const namespace = namespaceOf(principal, p.Namespace);
  const request = {
    namespace,
    functionName: p.FunctionName,
    payloadText: p.ClientContext && p.ClientContext.length > 0 ? p.ClientContext : "{}",
    ...(p.Qualifier !== undefined ? { qualifier: p.Qualifier } : {}),
    ...(p.IdempotencyKey !== undefined ? { idempotencyKey: p.IdempotencyKey } : {}),
    callerSecretId: principal.secretId,
  };
  if (p.InvocationType === "Event") {
    const { requestId } = await invokeAsync(env, request);
    return { Result: scfAcceptedResult(requestId) };
  }
  const invoked = await invokeSync(env, request, { logTailBytes: tailBytesFor(p.LogType) });
  if (invoked.kind === "accepted") return { Result: scfAcceptedResult(invoked.answer.requestId) };
  return { Result: scfEndedResult(invoked.event, invoked.logTail) };
};

/** A Tencent time interval (`%Y-%m-%d %H:%M:%S`, UTC) as optional epoch-ms bounds. */
const timeInterval = z
  .object({ Start: z.string().optional(), End: z.string().optional() })
  .transform((value, context) => {
    const start = value.Start ? parseTcTime(value.Start) : undefined;
    const end = value.End ? parseTcTime(value.End) : undefined;
    if ((value.Start && start === undefined) || (value.End && end === undefined)) {
      context.addIssue({ code: "custom", message: "times are %Y-%m-%d %H:%M:%S (UTC)" });
    }
    return { start, end };
  });

/** ListAsyncEvents: a filtered, ordered page of a function's events from the event index (read-limited). */
export const listAsyncEvents: Action = async ({ env, principal, params }) => {
  const p = parseParams(
    z.object({
      FunctionName: functionNameParam,
      Namespace: namespaceParam.optional(),
      // A version matches the version the event ran, an alias the alias it was invoked through.
      Qualifier: qualifierFilterSchema.optional(),
      // SCF's values only (InvalidParameterValue.InvokeType otherwise).
      InvokeType: z.array(z.enum(SCF_INVOKE_TYPES)).max(MAX_INVOKE_TYPE_FILTERS).optional(),
      Status: z
        .array(z.enum(["RUNNING", "FINISHED", "FAILED", "ABORTED"]))
        .max(4)
        .optional(),
      StartTimeInterval: timeInterval.optional(),
      EndTimeInterval: timeInterval.optional(),
      Order: z.enum(["ASC", "DESC"]).default("DESC"),
      Orderby: z.enum(["StartTime", "EndTime"]).default("StartTime"),
      Offset: z.number().int().min(0).default(0),
      Limit: z.number().int().min(1).max(100).default(20),
      InvokeRequestId: z.string().optional(),
    }),
    params,
  );
  const namespace = namespaceOf(principal, p.Namespace);
  admitRead(principal.secretId);
  const page = await listEvents(indexDatabaseOf(env, namespace), namespace, p.FunctionName, {
    order: p.Order,
    orderBy: p.Orderby === "EndTime" ? "endTime" : "startTime",
    offset: p.Offset,
    limit: p.Limit,
    ...(p.Qualifier !== undefined ? { qualifier: p.Qualifier } : {}),
    ...(p.InvokeType && p.InvokeType.length > 0 ? { invokeTypes: p.InvokeType } : {}),
    ...(p.Status && p.Status.length > 0 ? { statuses: p.Status } : {}),
    ...(p.InvokeRequestId !== undefined ? { requestId: p.InvokeRequestId } : {}),
    ...(p.StartTimeInterval?.start !== undefined ? { startTimeFrom: p.StartTimeInterval.start } : {}),
    ...(p.StartTimeInterval?.end !== undefined ? { startTimeTo: p.StartTimeInterval.end } : {}),
    ...(p.EndTimeInterval?.start !== undefined ? { endTimeFrom: p.EndTimeInterval.start } : {}),
    ...(p.EndTimeInterval?.end !== undefined ? { endTimeTo: p.EndTimeInterval.end } : {}),
  });
  return {
    EventList: page.events.map((row) => ({
      InvokeRequestId: row.requestId,
      InvokeType: row.invokeType,
      Qualifier: row.qualifier,
      Status: row.status,
      StartTime: tcTime(row.startTime),
      EndTime: tcTime(row.endTime),
    })),
    TotalCount: page.total,
  };
};

/** The event object of an id the caller may see, optionally also checking its function. */
async function visibleAsyncEvent(env: Env, principal: Principal, requestId: string, functionName?: string) {
  const found = await visibleEventView(env, principal, requestId);
  if (functionName && found.event.functionName !== functionName) {
    throw new TcApiError("ResourceNotFound.AsyncEvent", `no async event ${requestId}`);
  }
  return found;
}

/** GetAsyncEventStatus: an event's status and status code (202 while it has none yet). */
export const getAsyncEventStatus: Action = async ({ env, principal, params }) => {
  const p = parseParams(z.object({ InvokeRequestId: z.string() }), params);
  const { event } = await visibleAsyncEvent(env, principal, p.InvokeRequestId);
  return {
    Result: {
      Status: event.status,
      // While the event runs there is no final code yet: 202, as HTTP says for accepted work.
      StatusCode: event.statusCode ?? 202,
      InvokeRequestId: event.requestId,
    },
  };
};

/**
 * TerminateAsyncEvent: asks the event's Durable Object to end the event (gracefully when
 * GraceShutdown); an event of another function or namespace is ResourceNotFound.AsyncEvent.
 */
export const terminateAsyncEvent: Action = async ({ env, principal, params }) => {
  const p = parseParams(
    z.object({
      FunctionName: functionNameParam,
      InvokeRequestId: z.string(),
      Namespace: namespaceParam.optional(),
      GraceShutdown: z.boolean().default(false),
    }),
    params,
  );
  const namespace = namespaceOf(principal, p.Namespace);
  const { stub, event } = await visibleAsyncEvent(env, principal, p.InvokeRequestId, p.FunctionName);
  if (event.namespace !== namespace)
    throw new TcApiError("ResourceNotFound.AsyncEvent", `no async event ${p.InvokeRequestId}`);
  unwrap(await stub.terminate(p.GraceShutdown));
  return {};
};
