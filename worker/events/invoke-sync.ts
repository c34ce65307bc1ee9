// Synchronous invocation (SCF's `Invoke` with `InvocationType: "RequestResponse"` and the REST sync
// route): the event is created by invokeAsync (same checks, idempotency, containers, scheduler and
// logs), then the caller waits for its end, slice by slice, through the event object's awaitEnd.
// A function with async execution on is never waited for: SCF answers those with the RequestId at
// once, whatever the invocation type. Waits are bounded twice: per function in each isolate
// (MAX_OPEN_SYNC_WAITS_PER_FUNCTION, checked before the event is created) and per event in its
// object (MAX_END_WAITERS_PER_EVENT: duplicate idempotency keys all wait on one event).
import { PlatformError, unwrap } from "../shared/errors";
import { eventStub } from "../shared/objects";
import { type AwaitedEnd, MAX_AWAIT_END_MS, MAX_END_WAITERS_PER_EVENT } from "./async-event-object";
import type { PublicEvent } from "./event-machine";
import type { InvocationAnswer } from "./idempotency";
import { type InvocationRequest, invokeAsync } from "./invoke";
import { LeasedPlaces } from "./leased-places";
import { SYNC_LOG_TAIL_BYTES } from "./log-tail";

export { SYNC_LOG_TAIL_BYTES } from "./log-tail";

/**
 * What a synchronous invocation waits for beyond the function's timeout: queueing, a container's
 * cold start and the code's loading. Past the timeout plus this, the caller gets
 * INVOCATION_WAIT_TIMEOUT (the event goes on and stays readable by its RequestId).
 */
export const SYNC_START_ALLOWANCE_MS = 60_000;
/** Longest timeout of a function with async execution off (functions/registry.ts enforces it at creation). */
export const MAX_SYNC_FUNCTION_TIMEOUT_SECONDS = 900;
/** One wait on the event object; the loop calls again until its deadline. */
export const SYNC_WAIT_SLICE_MS = MAX_AWAIT_END_MS;
/** Pause before calling the event object again after a failed call (an object restart, a dropped connection). */
export const SYNC_WAIT_RETRY_DELAY_MS = 250;
/** Failed calls in a row after which the wait gives up with the error (a fault that does not pass). */
export const MAX_SYNC_WAIT_FAILURES = 5;
/**
 * Most synchronous invocations of one function waiting at once in one isolate (each holds an HTTP
 * request and event-object calls for up to its timeout plus SYNC_START_ALLOWANCE_MS). Past it, a
 * synchronous call is refused with RATE_LIMITED before its event is created. It is per isolate: a
 * bound across isolates would need a Durable Object per function on every synchronous call.
 */
export const MAX_OPEN_SYNC_WAITS_PER_FUNCTION = 100;
/**
 * How long an open wait keeps its place past the event-object call it is in: the loop renews the
 * place at every call, so a wait whose request was cancelled (the caller disconnected) frees its
 * place at most one slice plus this after its last call.
 */
export const SYNC_WAIT_LEASE_GRACE_MS = 10_000;
/** What a caller refused for too many waits (either bound) is told to wait before retrying (Retry-After). */
export const SYNC_WAIT_BUSY_RETRY_AFTER_SECONDS = 2;
/** SCF bills a duration rounded up to this many milliseconds (`BillDuration`). */
export const BILL_DURATION_STEP_MS = 100;

/** How a synchronous invocation waits (the defaults are the platform's; tests shorten them). */
export interface SyncInvokeOptions {
  /** Bytes of the log's end to answer with (0: none). */
  logTailBytes?: number;
  startAllowanceMs?: number;
  sliceMs?: number;
}

/** The outcome of a synchronous invocation. */
export type SyncInvocation =
  /** The function runs with async execution on: answered at once, as SCF does. */
  | { kind: "accepted"; answer: InvocationAnswer }
  /** The event ended (whatever its status): its view and the end of its log. */
  | { kind: "ended"; answer: InvocationAnswer; event: PublicEvent; logTail: string | null };

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The error of a wait that ran out: the event goes on, its RequestId is in the message. */
export function waitTimedOut(requestId: string, timeoutSeconds: number, allowanceMs: number): PlatformError {
  return new PlatformError(
    "INVOCATION_WAIT_TIMEOUT",
    `event ${requestId} did not end within the function's timeout (${timeoutSeconds} s) plus ${Math.round(allowanceMs / 1000)} s for queueing and start; it goes on: poll GetAsyncEventStatus or GET /v1/events/${requestId} with RequestId ${requestId}`,
    { requestId },
  );
}

/** A synchronous caller's place among its function's open waits: its id, and the renewal of its lease. */
export interface SyncWaitHold {
  /** The caller's id, also its waiter id on the event's object. */
  id: string;
  /** Extends the place's lease to `until` (epoch ms). */
  renew(until: number): void;
}

/** The synchronous waits open in this isolate, per function, each a leased place (leased-places.ts). */
export class OpenSyncWaits {
  private readonly byFunction = new Map<string, LeasedPlaces>();
  private nextSweepAt = 0;

  constructor(readonly perFunction: number) {}

  /** Opens a wait for `holder` until `until`; false (nothing changes) when the function has `perFunction` open. */
  open(functionKey: string, holder: string, until: number, now: number): boolean {
    this.sweep(now);
    let places = this.byFunction.get(functionKey);
    if (!places) {
      places = new LeasedPlaces(this.perFunction);
      this.byFunction.set(functionKey, places);
    }
    return places.hold(holder, until, now);
  }

  /** Extends an open wait's lease (nothing when it lapsed or was closed). */
  renew(functionKey: string, holder: string, until: number, now: number): void {
    const places = this.byFunction.get(functionKey);
    if (places?.holds(holder, now)) places.hold(holder, until, now);
  }

  /** Closes a wait. */
  close(functionKey: string, holder: string, now: number): void {
    const places = this.byFunction.get(functionKey);
    if (!places) return;
    places.release(holder);
    if (places.count(now) === 0) this.byFunction.delete(functionKey);
  }

  /** The waits of a function open at `now`. */
  count(functionKey: string, now: number): number {
    return this.byFunction.get(functionKey)?.count(now) ?? 0;
  }

  /** Drops, once a slice at most, the functions whose every wait lapsed without being closed. */
  private sweep(now: number): void {
    if (now < this.nextSweepAt) return;
    this.nextSweepAt = now + SYNC_WAIT_SLICE_MS;
    for (const [key, places] of this.byFunction) {
      if (places.count(now) === 0) this.byFunction.delete(key);
    }
  }
}

/** This isolate's open synchronous waits (MAX_OPEN_SYNC_WAITS_PER_FUNCTION per function). */
export const openSyncWaits = new OpenSyncWaits(MAX_OPEN_SYNC_WAITS_PER_FUNCTION);

/** The key of a function among the open waits. */
export function syncWaitKey(namespace: string, functionName: string): string {
  return `${namespace}/${functionName}`;
}

/** The refusal of a synchronous call past MAX_OPEN_SYNC_WAITS_PER_FUNCTION: no event was created. */
export function tooManyOpenWaits(functionName: string): PlatformError {
  return new PlatformError(
    "RATE_LIMITED",
    `function ${functionName} already has ${MAX_OPEN_SYNC_WAITS_PER_FUNCTION} synchronous invocations waiting in this isolate (MAX_OPEN_SYNC_WAITS_PER_FUNCTION); no event was created: retry after ${SYNC_WAIT_BUSY_RETRY_AFTER_SECONDS} s, or invoke asynchronously (InvocationType Event, POST .../invocations) and poll its RequestId`,
    { retryAfterSeconds: SYNC_WAIT_BUSY_RETRY_AFTER_SECONDS },
  );
}

/** The refusal of a caller past MAX_END_WAITERS_PER_EVENT: the event goes on, its RequestId is in the message. */
export function tooManyEndWaiters(requestId: string): PlatformError {
  return new PlatformError(
    "RATE_LIMITED",
    `event ${requestId} already has ${MAX_END_WAITERS_PER_EVENT} callers waiting for its end (MAX_END_WAITERS_PER_EVENT); it goes on: retry after ${SYNC_WAIT_BUSY_RETRY_AFTER_SECONDS} s, or poll GetAsyncEventStatus or GET /v1/events/${requestId} with RequestId ${requestId}`,
    { retryAfterSeconds: SYNC_WAIT_BUSY_RETRY_AFTER_SECONDS, requestId },
  );
}

/**
 * Invokes a function and, unless it runs with async execution on, waits for its event's end (see
 * awaitSyncEnd). Throws RATE_LIMITED, before anything is created, when the function already has
 * MAX_OPEN_SYNC_WAITS_PER_FUNCTION synchronous calls waiting in this isolate; what invokeAsync
 * throws; RATE_LIMITED when the event already has MAX_END_WAITERS_PER_EVENT callers waiting; and
 * INVOCATION_WAIT_TIMEOUT when the wait runs out. A handler's failure is an ended event, not an error.
 */
export async function invokeSync(
  env: Env,
  request: InvocationRequest,
  options: SyncInvokeOptions = {},
): Promise<SyncInvocation> {
  const key = syncWaitKey(request.namespace, request.functionName);
  const id = crypto.randomUUID();
  const openedAt = Date.now();
  if (!openSyncWaits.open(key, id, openedAt + SYNC_WAIT_SLICE_MS + SYNC_WAIT_LEASE_GRACE_MS, openedAt)) {
    throw tooManyOpenWaits(request.functionName);
  }
  try {
    const answer = await invokeAsync(env, request);
    const hold = { id, renew: (until: number) => openSyncWaits.renew(key, id, until, Date.now()) };
    return await awaitSyncEnd(env, answer, Date.now(), options, hold);
  } finally {
    openSyncWaits.close(key, id, Date.now());
  }
}

/**
 * Waits for the end of an invoked event: up to its function's timeout plus SYNC_START_ALLOWANCE_MS
 * from `invokedAt`, in calls of the event object's awaitEnd of at most SYNC_WAIT_SLICE_MS each, so
 * an object restart or a dropped call costs one slice, never the caller's wait. An event of a
 * function with async execution on is answered at once ("accepted"). `hold`, the caller's place
 * among its function's open waits, is renewed before every call; without one the wait has an id of
 * its own. RATE_LIMITED when the event already has MAX_END_WAITERS_PER_EVENT other callers waiting.
 */
export async function awaitSyncEnd(
  env: Env,
  answer: InvocationAnswer,
  invokedAt: number,
  options: SyncInvokeOptions = {},
  hold?: SyncWaitHold,
): Promise<SyncInvocation> {
  const allowanceMs = options.startAllowanceMs ?? SYNC_START_ALLOWANCE_MS;
  const sliceMs = Math.min(options.sliceMs ?? SYNC_WAIT_SLICE_MS, MAX_AWAIT_END_MS);
  const tailBytes = options.logTailBytes ?? 0;
  // Until the event tells its function's timeout, the longest a sync function may have.
  let timeoutSeconds = MAX_SYNC_FUNCTION_TIMEOUT_SECONDS;
  const waiterId = hold?.id ?? crypto.randomUUID();
  let failures = 0;
  for (;;) {
    const remaining = invokedAt + timeoutSeconds * 1000 + allowanceMs - Date.now();
    if (remaining <= 0) throw waitTimedOut(answer.requestId, timeoutSeconds, allowanceMs);
    const slice = Math.min(sliceMs, remaining);
    hold?.renew(Date.now() + slice + SYNC_WAIT_LEASE_GRACE_MS);
    let awaited: AwaitedEnd;
    try {
      const result = await eventStub(env, answer.requestId).awaitEnd(slice, tailBytes, waiterId);
      if (!result.ok && result.code === "RATE_LIMITED") throw tooManyEndWaiters(answer.requestId);
      awaited = unwrap(result);
    } catch (error) {
      // A refusal (the event is gone) is final; a failed call (the object restarted, the connection
      // dropped) is tried again with a new stub, a few times in a row at most.
      if (error instanceof PlatformError) throw error;
      failures += 1;
      if (failures >= MAX_SYNC_WAIT_FAILURES) throw error;
      await sleep(SYNC_WAIT_RETRY_DELAY_MS);
      continue;
    }
    failures = 0;
    if (awaited.asyncRunEnable) return { kind: "accepted", answer };
    if (awaited.ended) return { kind: "ended", answer, event: awaited.event, logTail: awaited.logTail };
    timeoutSeconds = awaited.timeoutSeconds;
  }
}

/** SCF's `Invoke` Result (Tencent Cloud API 3.0, SCF 2018-04-16). */
export interface ScfInvokeResult {
  FunctionRequestId: string;
  /** The handler's return value, JSON-serialised ("" without one). */
  RetMsg: string;
  /** "" on success; otherwise SCF's runtime error JSON (errorCode, errorMessage, requestId, stackTrace, statusCode). */
  ErrMsg: string;
  /** The end of the log with LogType "Tail", else "". */
  Log: string;
  /** Bytes of memory the handler used (0 when unknown). */
  MemUsage: number;
  /** Milliseconds the handler ran. */
  Duration: number;
  /** Duration rounded up to BILL_DURATION_STEP_MS (0 when the handler never started). */
  BillDuration: number;
  /** 0 on success; otherwise the event's StatusCode (430, 433, ...), -1 without one. */
  InvokeResult: number;
}

/** The Result of an invocation answered at once (async execution, or InvocationType Event). */
export function scfAcceptedResult(requestId: string): ScfInvokeResult {
  return {
    FunctionRequestId: requestId,
    RetMsg: "",
    ErrMsg: "",
    Log: "",
    MemUsage: 0,
    Duration: 0,
    BillDuration: 0,
    InvokeResult: 0,
  };
}

/** The duration SCF bills: rounded up to BILL_DURATION_STEP_MS, at least one step once the handler started. */
export function billDurationOf(event: Pick<PublicEvent, "durationMs" | "startedAt">): number {
  if (event.startedAt === null) return 0;
  const duration = Math.max(0, event.durationMs ?? 0);
  return Math.max(1, Math.ceil(duration / BILL_DURATION_STEP_MS)) * BILL_DURATION_STEP_MS;
}

/** SCF's runtime error JSON for an event that did not finish (SCF reference §5.3). */
export function scfErrorMessage(event: PublicEvent): string {
  return JSON.stringify({
    errorCode: -1,
    errorMessage: event.errorMessage ?? `the event ended ${event.status}`,
    requestId: event.requestId,
    stackTrace: event.errorStack ?? "",
    statusCode: event.statusCode ?? -1,
  });
}

/** The Result of an ended event: a handler's failure is in ErrMsg, never an API error. */
export function scfEndedResult(event: PublicEvent, logTail: string | null): ScfInvokeResult {
  const finished = event.status === "FINISHED";
  return {
    FunctionRequestId: event.requestId,
    // A finished handler that returned nothing answers "null", as its JSON; a failed one has no value.
    RetMsg: finished || (event.result ?? null) !== null ? JSON.stringify(event.result ?? null) : "",
    ErrMsg: finished ? "" : scfErrorMessage(event),
    Log: logTail ?? "",
    MemUsage: event.memoryUsageKb !== null ? event.memoryUsageKb * 1024 : 0,
    Duration: event.durationMs ?? 0,
    BillDuration: billDurationOf(event),
    InvokeResult: finished ? 0 : (event.statusCode ?? -1),
  };
}

/** The log tail a Tencent Invoke asks for: SYNC_LOG_TAIL_BYTES with LogType "Tail", none otherwise. */
export function tailBytesFor(logType: string | undefined): number {
  return logType === "Tail" ? SYNC_LOG_TAIL_BYTES : 0;
}
