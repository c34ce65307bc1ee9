// Invocation types and synchronous functions (issue 12, "Invocation types"): the event object's
// awaitEnd, the sync wait loop (slices, its deadline, an object restart mid-wait), SCF's Result
// mapping and the log tail; the Tencent Invoke (RequestResponse / Event, LogType) and the REST sync
// route with their refusals (malformed, another namespace, oversized); the list filters on invoke
// type and qualifier (ListAsyncEvents and the REST list) and their validation; the bounds on waiting
// callers (per function in an isolate, per event) and the leases that keep their counts from leaking.
// Containers cannot start in this pool: an invoked event ends FAILED (500, no container) within
// moments, which the sync paths answer like any other end; the success path runs on seeded events.
import { abortAllDurableObjects, env, evictDurableObject, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  type AsyncEventObject,
  type AwaitedEnd,
  END_WAITER_LEASE_MS,
  MAX_END_WAITERS_PER_EVENT,
} from "../../worker/events/async-event-object";
import type { LogPage } from "../../worker/events/event-log-store";
import type { EventState, PublicEvent } from "../../worker/events/event-machine";
import { MAX_ASYNC_PAYLOAD_BYTES } from "../../worker/events/invoke";
import {
  awaitSyncEnd,
  billDurationOf,
  invokeSync,
  MAX_OPEN_SYNC_WAITS_PER_FUNCTION,
  OpenSyncWaits,
  openSyncWaits,
  SYNC_LOG_TAIL_BYTES,
  SYNC_WAIT_BUSY_RETRY_AFTER_SECONDS,
  scfAcceptedResult,
  scfEndedResult,
  syncWaitKey,
} from "../../worker/events/invoke-sync";
import type { LeasedPlaces } from "../../worker/events/leased-places";
import { LOG_TAIL_CHUNK_LINES, logTail, tailWithin } from "../../worker/events/log-tail";
import { PlatformError, unwrap } from "../../worker/shared/errors";
import { eventStub, instanceName, schedulerName } from "../../worker/shared/objects";
import { functionSnapshot } from "../helpers/function-snapshot";
import { zipBase64 } from "../helpers/zip";

const BASE = "https://platform.test";
const workerEnv: Env = env;
const ADMIN = { authorization: `Bearer ${workerEnv.DEV_SECRET_ID ?? ""}:${workerEnv.DEV_SECRET_KEY ?? ""}` };
const ZIP = zipBase64({ "index.js": "exports.main_handler = async (event) => event;" });

type Headers = Record<string, string>;
interface Key {
  secretId: string;
  secretKey: string;
}
interface TcAnswer {
  Response: Record<string, unknown> & { Error?: { Code: string; Message: string }; RequestId: string };
}
interface ScfResult {
  FunctionRequestId: string;
  RetMsg: string;
  ErrMsg: string;
  Log: string;
  MemUsage: number;
  Duration: number;
  BillDuration: number;
  InvokeResult: number;
}

let counter = 0;
/** A name unique to this run, valid as a namespace and as a function name. */
function unique(prefix: string): string {
  counter += 1;
  return `${prefix}${Date.now().toString(36)}${counter}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function rest(path: string, init: RequestInit = {}, auth: Headers = ADMIN): Promise<Response> {
  return SELF.fetch(`${BASE}${path}`, { ...init, headers: { ...auth, ...(init.headers as Headers | undefined) } });
}

async function tc(action: string, params: Record<string, unknown>, auth: Headers = ADMIN): Promise<TcAnswer> {
  const response = await SELF.fetch(`${BASE}/`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json", "x-tc-action": action, "x-tc-version": "2018-04-16" },
    body: JSON.stringify(params),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as TcAnswer;
}

function bearer(key: Key): Headers {
  return { authorization: `Bearer ${key.secretId}:${key.secretKey}` };
}

async function createKey(namespaces: string[]): Promise<Key> {
  const response = await rest("/v1/admin/credentials", {
    method: "POST",
    body: JSON.stringify({ namespaces, description: "invoke-sync suite" }),
  });
  expect(response.status).toBe(201);
  return (await response.json()) as Key;
}

/** A function in a namespace of its own: a sync one (async execution off) unless asyncRunEnable. */
async function createFunction(asyncRunEnable: boolean): Promise<{ namespace: string; name: string }> {
  const namespace = unique("is");
  const name = unique("fn");
  const created = await rest(`/v1/namespaces/${namespace}/functions`, {
    method: "POST",
    body: JSON.stringify({ name, runtime: "Nodejs22", code: { zipFile: ZIP }, asyncRunEnable, timeout: 5 }),
  });
  expect(created.status).toBe(201);
  return { namespace, name };
}

/** A running event of a sync function (timeout 1 s unless given), stored in its object as if claimed. */
async function seedRunningEvent(overrides: { asyncRunEnable?: boolean; timeoutSeconds?: number } = {}) {
  const requestId = crypto.randomUUID();
  const namespace = unique("sd");
  const functionName = "fn";
  const instanceId = instanceName(schedulerName(namespace, functionName), 0);
  const now = Date.now();
  const state: EventState = {
    requestId,
    namespace,
    functionName,
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    function: functionSnapshot(namespace, functionName, {
      asyncRunEnable: overrides.asyncRunEnable ?? false,
      timeoutSeconds: overrides.timeoutSeconds ?? 1,
    }),
    phase: "running",
    version: 3,
    invokedAt: now - 300,
    claimedAt: now - 200,
    startedAt: now - 100,
    instanceId,
    containerId: "boot-sync",
    cold: false,
  };
  const stub = eventStub(env, requestId);
  await runInDurableObject(stub, async (_instance, storage) => {
    await storage.storage.put("state", state);
  });
  await evictDurableObject(stub);
  return { requestId, instanceId, stub: () => eventStub(env, requestId) };
}

/** Ends a seeded event through its object's own calls: some log lines, then the handler's return value. */
async function completeWith(requestId: string, instanceId: string, result: unknown, lines = ["working", "done"]) {
  const stub = eventStub(env, requestId);
  const records = lines.map((line, index) => ({ seq: index + 1, ts: Date.now(), stream: "stdout" as const, line }));
  const completed = await stub.complete(instanceId, { kind: "returned", result }, 2048, records);
  expect(completed).toEqual({ ok: true });
}

describe("the event object's awaitEnd", () => {
  it("answers as soon as the event ends, with the end of its log", async () => {
    const { requestId, instanceId, stub } = await seedRunningEvent();
    const began = Date.now();
    const waiting = stub().awaitEnd(10_000, SYNC_LOG_TAIL_BYTES);
    await sleep(300);
    await completeWith(requestId, instanceId, { answer: 42 });
    const awaited = unwrap(await waiting) as AwaitedEnd;
    expect(Date.now() - began).toBeLessThan(5_000);
    expect(awaited.ended).toBe(true);
    expect(awaited.asyncRunEnable).toBe(false);
    expect(awaited.event.status).toBe("FINISHED");
    expect(awaited.event.result).toEqual({ answer: 42 });
    expect(awaited.logTail).toContain(" done\n");
    expect(awaited.logTail).toContain(`[PLATFORM] END RequestId: ${requestId} Status: FINISHED`);
  });

  it("answers after its slice, not ended, when the event goes on", async () => {
    const { stub } = await seedRunningEvent();
    const began = Date.now();
    const awaited = unwrap(await stub().awaitEnd(400, SYNC_LOG_TAIL_BYTES)) as AwaitedEnd;
    const elapsed = Date.now() - began;
    expect(elapsed).toBeGreaterThanOrEqual(350);
    expect(elapsed).toBeLessThan(5_000);
    expect(awaited.ended).toBe(false);
    expect(awaited.event.status).toBe("RUNNING");
    expect(awaited.logTail).toBeNull();
    expect(awaited.timeoutSeconds).toBe(1);
  });

  it("treats a negative or non-finite wait as none", async () => {
    const { stub } = await seedRunningEvent();
    const began = Date.now();
    for (const wait of [-5, Number.NaN, Number.NEGATIVE_INFINITY]) {
      expect((unwrap(await stub().awaitEnd(wait)) as AwaitedEnd).ended).toBe(false);
    }
    expect(Date.now() - began).toBeLessThan(2_000);
  });

  it("never waits for an event of a function with async execution on", async () => {
    const { stub } = await seedRunningEvent({ asyncRunEnable: true });
    const began = Date.now();
    const awaited = unwrap(await stub().awaitEnd(10_000));
    expect(Date.now() - began).toBeLessThan(2_000);
    expect(awaited).toMatchObject({ ended: false, asyncRunEnable: true });
  });

  it("answers EVENT_NOT_FOUND for an event that does not exist", async () => {
    const answer = await eventStub(env, crypto.randomUUID()).awaitEnd(1_000);
    expect(answer).toMatchObject({ ok: false, code: "EVENT_NOT_FOUND" });
  });
});

describe("the sync wait loop (awaitSyncEnd)", () => {
  it("waits across several slices until the event ends", async () => {
    const { requestId, instanceId } = await seedRunningEvent({ timeoutSeconds: 30 });
    const waiting = awaitSyncEnd(env, { requestId }, Date.now(), { sliceMs: 150, logTailBytes: 1024 });
    await sleep(800);
    await completeWith(requestId, instanceId, "late");
    const invoked = await waiting;
    expect(invoked.kind).toBe("ended");
    if (invoked.kind !== "ended") return;
    expect(invoked.event.result).toBe("late");
    expect(invoked.logTail).toContain("[PLATFORM] END");
  });

  it("gives up after the function's timeout plus the allowance with INVOCATION_WAIT_TIMEOUT naming the RequestId", async () => {
    const { requestId } = await seedRunningEvent({ timeoutSeconds: 1 });
    const began = Date.now();
    const error = await awaitSyncEnd(env, { requestId }, began, { sliceMs: 200, startAllowanceMs: 300 }).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    const elapsed = Date.now() - began;
    expect(error).toBeInstanceOf(PlatformError);
    expect((error as PlatformError).code).toBe("INVOCATION_WAIT_TIMEOUT");
    expect((error as PlatformError).status).toBe(504);
    expect((error as PlatformError).message).toContain(requestId);
    expect(elapsed).toBeGreaterThanOrEqual(1_200);
    expect(elapsed).toBeLessThan(4_000);
  });

  it("carries on when the event object restarts mid-wait: the restart costs at most one slice", async () => {
    const { requestId, instanceId } = await seedRunningEvent({ timeoutSeconds: 30 });
    const began = Date.now();
    const waiting = awaitSyncEnd(env, { requestId }, began, { sliceMs: 1_500 });
    await sleep(300);
    // The waiting call's object is reset (in-memory state lost, its calls broken), as a restart does:
    // the end below is applied by a new instance of it.
    await abortAllDurableObjects();
    await completeWith(requestId, instanceId, "after restart");
    const invoked = await waiting;
    expect(invoked.kind).toBe("ended");
    if (invoked.kind === "ended") expect(invoked.event.result).toBe("after restart");
    expect(Date.now() - began).toBeLessThan(1_500 + 2_000);
  }, 10_000);

  it("answers an async-execution function's event at once, without waiting", async () => {
    const { requestId } = await seedRunningEvent({ asyncRunEnable: true, timeoutSeconds: 60 });
    const began = Date.now();
    const invoked = await awaitSyncEnd(env, { requestId }, began);
    expect(invoked.kind).toBe("accepted");
    expect(Date.now() - began).toBeLessThan(2_000);
  });
});

/** How many callers hold a place among an event's waiters now (read inside its object). */
async function endWaiterCount(requestId: string): Promise<number> {
  return runInDurableObject(eventStub(env, requestId), async (instance: AsyncEventObject) =>
    (instance as unknown as { endWaiters: LeasedPlaces }).endWaiters.count(Date.now()),
  );
}

/** Polls until `read` answers `expected` (or `timeoutMs` passes), then answers its last value. */
async function eventually<T>(read: () => Promise<T>, expected: T, timeoutMs = 3_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let value = await read();
  while (value !== expected && Date.now() < until) {
    await sleep(25);
    value = await read();
  }
  return value;
}

/** The thrown error of a promise, or undefined when it resolves. */
function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
}

describe("bounded waits on one event (MAX_END_WAITERS_PER_EVENT)", () => {
  it("refuses a new caller past the bound with RATE_LIMITED, while a caller already waiting keeps its place", async () => {
    const { requestId, instanceId, stub } = await seedRunningEvent({ timeoutSeconds: 30 });
    const first = stub().awaitEnd(5_000, 0, "waiter-0");
    const others = Array.from({ length: MAX_END_WAITERS_PER_EVENT - 1 }, (_, index) =>
      stub().awaitEnd(5_000, 0, `waiter-${index + 1}`),
    );
    expect(await eventually(() => endWaiterCount(requestId), MAX_END_WAITERS_PER_EVENT)).toBe(
      MAX_END_WAITERS_PER_EVENT,
    );
    const began = Date.now();
    const refused = await stub().awaitEnd(5_000, 0, "one-too-many");
    expect(refused).toMatchObject({ ok: false, code: "RATE_LIMITED" });
    expect(Date.now() - began).toBeLessThan(2_000);
    expect(await endWaiterCount(requestId)).toBe(MAX_END_WAITERS_PER_EVENT);
    // A caller already counted calls again (a retry, its next slice): it keeps its place, and its
    // previous call, whose caller is gone, answers at once.
    const again = await stub().awaitEnd(50, 0, "waiter-0");
    expect(again.ok).toBe(true);
    expect((unwrap(await first) as AwaitedEnd).ended).toBe(false);
    expect(await endWaiterCount(requestId)).toBe(MAX_END_WAITERS_PER_EVENT);
    await completeWith(requestId, instanceId, "done");
    for (const answer of await Promise.all(others)) expect((unwrap(answer) as AwaitedEnd).ended).toBe(true);
    // Only "waiter-0", whose last call answered before the end, still holds its place (until its lease lapses).
    expect(await endWaiterCount(requestId)).toBe(1);
  }, 15_000);

  it("answers a synchronous caller past the bound with 429 RATE_LIMITED, a Retry-After and the RequestId to poll", async () => {
    const { requestId, instanceId, stub } = await seedRunningEvent({ timeoutSeconds: 30 });
    const waits = Array.from({ length: MAX_END_WAITERS_PER_EVENT }, (_, index) =>
      stub().awaitEnd(5_000, 0, `waiter-${index}`),
    );
    await eventually(() => endWaiterCount(requestId), MAX_END_WAITERS_PER_EVENT);
    const error = await errorOf(awaitSyncEnd(env, { requestId }, Date.now(), { sliceMs: 5_000 }));
    expect(error).toBeInstanceOf(PlatformError);
    const refusal = error as PlatformError;
    expect(refusal.code).toBe("RATE_LIMITED");
    expect(refusal.status).toBe(429);
    expect(refusal.details?.retryAfterSeconds).toBe(SYNC_WAIT_BUSY_RETRY_AFTER_SECONDS);
    expect(refusal.message).toContain(requestId);
    expect(refusal.message).toContain(String(MAX_END_WAITERS_PER_EVENT));
    await completeWith(requestId, instanceId, "done");
    await Promise.all(waits);
  }, 15_000);

  it("frees every waiter's place as soon as the event ends", async () => {
    const { requestId, instanceId, stub } = await seedRunningEvent({ timeoutSeconds: 30 });
    const waits = Array.from({ length: 5 }, (_, index) => stub().awaitEnd(10_000, 0, `waiter-${index}`));
    expect(await eventually(() => endWaiterCount(requestId), 5)).toBe(5);
    await completeWith(requestId, instanceId, "done");
    await Promise.all(waits);
    expect(await endWaiterCount(requestId)).toBe(0);
  });

  it("frees the places of callers that abandon their wait once their lease lapses: the count returns to zero", async () => {
    const { requestId, stub } = await seedRunningEvent({ timeoutSeconds: 30 });
    // Every place taken by callers that wait one short slice and never call again (they went away).
    await Promise.all(
      Array.from({ length: MAX_END_WAITERS_PER_EVENT }, (_, index) => stub().awaitEnd(100, 0, `gone-${index}`)),
    );
    expect(await endWaiterCount(requestId)).toBe(MAX_END_WAITERS_PER_EVENT);
    expect(await stub().awaitEnd(100, 0, "newcomer")).toMatchObject({ ok: false, code: "RATE_LIMITED" });
    await sleep(END_WAITER_LEASE_MS + 200);
    expect(await endWaiterCount(requestId)).toBe(0);
    expect((await stub().awaitEnd(100, 0, "newcomer")).ok).toBe(true);
  }, 15_000);
});

describe("bounded synchronous waits per function in an isolate (MAX_OPEN_SYNC_WAITS_PER_FUNCTION)", () => {
  it("refuses a synchronous invocation past the bound with 429 naming it, before its event is created", async () => {
    const { namespace, name } = await createFunction(false);
    const key = syncWaitKey(namespace, name);
    const now = Date.now();
    const holders = Array.from({ length: MAX_OPEN_SYNC_WAITS_PER_FUNCTION }, () => crypto.randomUUID());
    for (const holder of holders) expect(openSyncWaits.open(key, holder, now + 60_000, now)).toBe(true);
    const request = { namespace, functionName: name, payloadText: "{}", idempotencyKey: "busy-key" };
    try {
      const error = await errorOf(invokeSync(env, request));
      expect(error).toBeInstanceOf(PlatformError);
      const refusal = error as PlatformError;
      expect(refusal.code).toBe("RATE_LIMITED");
      expect(refusal.status).toBe(429);
      expect(refusal.message).toContain("MAX_OPEN_SYNC_WAITS_PER_FUNCTION");
      expect(refusal.message).toContain(String(MAX_OPEN_SYNC_WAITS_PER_FUNCTION));
      expect(refusal.details?.retryAfterSeconds).toBe(SYNC_WAIT_BUSY_RETRY_AFTER_SECONDS);
      // The routes answer it: REST 429 with Retry-After, Tencent RequestLimitExceeded.
      const response = await rest(`/v1/namespaces/${namespace}/functions/${name}/invocations/sync`, {
        method: "POST",
        body: "{}",
        headers: { "idempotency-key": "busy-key" },
      });
      expect(response.status).toBe(429);
      expect(response.headers.get("Retry-After")).toBe(String(SYNC_WAIT_BUSY_RETRY_AFTER_SECONDS));
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("RATE_LIMITED");
      const answer = await tc("Invoke", { FunctionName: name, Namespace: namespace, IdempotencyKey: "busy-key" });
      expect(answer.Response.Error?.Code).toBe("RequestLimitExceeded");
      expect(answer.Response.Error?.Message).toContain("MAX_OPEN_SYNC_WAITS_PER_FUNCTION");
      // Another function is not affected by this one's waits.
      const other = await createFunction(false);
      expect(
        (await invokeSync(env, { namespace: other.namespace, functionName: other.name, payloadText: "{}" })).kind,
      ).toBe("ended");
    } finally {
      for (const holder of holders) openSyncWaits.close(key, holder, Date.now());
    }
    expect(openSyncWaits.count(key, Date.now())).toBe(0);
    // Nothing was recorded under the refused call's key: the same key now creates its event.
    const invoked = await invokeSync(env, request);
    expect(invoked.answer.idempotentReplay).not.toBe(true);
    expect(invoked.kind).toBe("ended");
  });

  it("closes a synchronous invocation's wait however it ends: the function's open waits return to zero", async () => {
    const sync = await createFunction(false);
    const asynchronous = await createFunction(true);
    const ended = await invokeSync(env, { namespace: sync.namespace, functionName: sync.name, payloadText: "{}" });
    expect(ended.kind).toBe("ended");
    expect(openSyncWaits.count(syncWaitKey(sync.namespace, sync.name), Date.now())).toBe(0);
    const accepted = await invokeSync(env, {
      namespace: asynchronous.namespace,
      functionName: asynchronous.name,
      payloadText: "{}",
    });
    expect(accepted.kind).toBe("accepted");
    expect(openSyncWaits.count(syncWaitKey(asynchronous.namespace, asynchronous.name), Date.now())).toBe(0);
    const refused = await errorOf(
      invokeSync(env, { namespace: sync.namespace, functionName: sync.name, payloadText: "{" }),
    );
    expect((refused as PlatformError).code).toBe("INVALID_JSON");
    const missing = await errorOf(
      invokeSync(env, { namespace: sync.namespace, functionName: "nofn", payloadText: "{}" }),
    );
    expect((missing as PlatformError).status).toBe(404);
    expect(openSyncWaits.count(syncWaitKey(sync.namespace, sync.name), Date.now())).toBe(0);
    expect(openSyncWaits.count(syncWaitKey(sync.namespace, "nofn"), Date.now())).toBe(0);
  });

  it("frees the places of waits abandoned without closing once their lease lapses: the count returns to zero", () => {
    const waits = new OpenSyncWaits(3);
    const key = "ns/fn";
    expect(["a", "b", "c"].map((holder) => waits.open(key, holder, 1_000, 0))).toEqual([true, true, true]);
    expect(waits.open(key, "d", 1_000, 0)).toBe(false);
    expect(waits.open("ns/other", "d", 1_000, 0)).toBe(true);
    // "a" goes on (its loop renews it at every slice); "b" and "c" were abandoned (no close, no renewal).
    waits.renew(key, "a", 5_000, 500);
    expect(waits.count(key, 999)).toBe(3);
    expect(waits.count(key, 1_000)).toBe(1);
    expect(waits.open(key, "d", 6_000, 1_000)).toBe(true);
    // A renewal never shortens a lease, and one of a lapsed wait takes no place back.
    waits.renew(key, "a", 2_000, 1_500);
    waits.renew(key, "b", 9_000, 1_500);
    expect(waits.count(key, 4_999)).toBe(2);
    expect(waits.count(key, 6_000)).toBe(0);
    waits.close(key, "d", 6_000);
    expect(waits.count(key, 6_000)).toBe(0);
  });
});

/** A public view of an ended event, for the pure mappings. */
function endedView(overrides: Partial<PublicEvent>): PublicEvent {
  return {
    requestId: "0b7c9b44-1111-4222-8333-444455556666",
    namespace: "default",
    functionName: "fn",
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    status: "FINISHED",
    statusCode: 200,
    phase: "finished",
    invokedAt: new Date(0).toISOString(),
    startedAt: new Date(10).toISOString(),
    endedAt: new Date(20).toISOString(),
    durationMs: 10,
    memoryUsageKb: 2048,
    result: null,
    errorMessage: null,
    errorStack: null,
    instanceId: null,
    containerId: null,
    coldStart: false,
    terminateRequestedAt: null,
    replayOf: null,
    replays: [],
    replayCount: 0,
    replaysTruncated: false,
    ...overrides,
  } as PublicEvent;
}

describe("SCF's Result mapping", () => {
  it("maps a finished event: RetMsg is the JSON of the value, no ErrMsg, InvokeResult 0, memory in bytes", () => {
    const result = scfEndedResult(endedView({ result: "test", durationMs: 1 }), "log line\n");
    expect(result).toEqual({
      FunctionRequestId: "0b7c9b44-1111-4222-8333-444455556666",
      RetMsg: '"test"',
      ErrMsg: "",
      Log: "log line\n",
      MemUsage: 2048 * 1024,
      Duration: 1,
      BillDuration: 100,
      InvokeResult: 0,
    });
    expect(scfEndedResult(endedView({ result: null }), null).RetMsg).toBe("null");
    expect(scfEndedResult(endedView({ result: { a: [1] } }), null).Log).toBe("");
  });

  it("maps a failed event: SCF's runtime error JSON in ErrMsg, no RetMsg, its StatusCode in InvokeResult", () => {
    const result = scfEndedResult(
      endedView({
        status: "FAILED",
        phase: "failed",
        statusCode: 430,
        errorMessage: "boom",
        errorStack: "Error: boom\n    at handler",
        memoryUsageKb: null,
      }),
      null,
    );
    expect(result.RetMsg).toBe("");
    expect(result.InvokeResult).toBe(430);
    expect(result.MemUsage).toBe(0);
    expect(JSON.parse(result.ErrMsg)).toEqual({
      errorCode: -1,
      errorMessage: "boom",
      requestId: "0b7c9b44-1111-4222-8333-444455556666",
      stackTrace: "Error: boom\n    at handler",
      statusCode: 430,
    });
  });

  it("bills the duration rounded up to 100 ms, and nothing when the handler never started", () => {
    expect(billDurationOf({ durationMs: 0.8, startedAt: "x" })).toBe(100);
    expect(billDurationOf({ durationMs: 0, startedAt: "x" })).toBe(100);
    expect(billDurationOf({ durationMs: 100, startedAt: "x" })).toBe(100);
    expect(billDurationOf({ durationMs: 101, startedAt: "x" })).toBe(200);
    expect(billDurationOf({ durationMs: 0, startedAt: null })).toBe(0);
  });

  it("answers an accepted invocation with the RequestId and every other field empty", () => {
    expect(scfAcceptedResult("r-1")).toEqual({
      FunctionRequestId: "r-1",
      RetMsg: "",
      ErrMsg: "",
      Log: "",
      MemUsage: 0,
      Duration: 0,
      BillDuration: 0,
      InvokeResult: 0,
    });
  });
});

/** A log of `count` lines (seq 1..count) read through a counting page reader. */
function logReader(count: number, lineOf: (seq: number) => string) {
  let reads = 0;
  const read = (after: number, limit: number): LogPage => {
    reads += 1;
    const records = [];
    for (let seq = after + 1; seq <= Math.min(count, after + limit); seq++) {
      records.push({ seq, ts: 0, stream: "stdout" as const, line: lineOf(seq) });
    }
    const lastSeq = records.at(-1)?.seq ?? after;
    return { records, lastSeq, more: lastSeq < count };
  };
  return { read, reads: () => reads };
}

describe("the log tail", () => {
  it("gives the last whole lines within the bound, reading only the end of a long log", async () => {
    const log = logReader(100_000, (seq) => `line ${seq} ${"x".repeat(40)}`);
    const tail = await logTail(log.read, 100_000, 4096);
    expect(new TextEncoder().encode(tail).byteLength).toBeLessThanOrEqual(4096);
    expect(tail.endsWith(`line 100000 ${"x".repeat(40)}\n`)).toBe(true);
    expect(tail.startsWith("1970-01-01T00:00:00.000Z line ")).toBe(true);
    expect(tail.split("\n").length).toBeGreaterThan(40);
    // ~4 KB of 70-byte lines is ~60 lines: a few chunks of LOG_TAIL_CHUNK_LINES, never the whole log.
    expect(log.reads()).toBeLessThanOrEqual(Math.ceil(4096 / 70 / LOG_TAIL_CHUNK_LINES) + 2);
  });

  it("gives the end of the last line when it alone is over the bound, never splitting a character", async () => {
    const log = logReader(3, (seq) => (seq === 3 ? "é".repeat(5000) : "short"));
    const tail = await logTail(log.read, 3, 1001);
    expect(new TextEncoder().encode(tail).byteLength).toBeLessThanOrEqual(1001);
    expect(tail).toMatch(/^é+\n$/);
    expect(tailWithin(["a\n", "b\n"], 0)).toBe("");
  });

  it("is empty for an empty log or a zero bound", async () => {
    expect(await logTail(logReader(0, () => "").read, 0)).toBe("");
    expect(await logTail(logReader(5, () => "x").read, 5, 0)).toBe("");
  });
});

describe("Tencent Invoke", () => {
  it("RequestResponse on a sync function waits for the end and answers its Result, a failure in ErrMsg (no API error)", async () => {
    const { namespace, name } = await createFunction(false);
    const answer = await tc("Invoke", {
      FunctionName: name,
      Namespace: namespace,
      InvocationType: "RequestResponse",
      LogType: "Tail",
      ClientContext: '{"k":1}',
    });
    expect(answer.Response.Error).toBeUndefined();
    const result = answer.Response.Result as ScfResult;
    // No container in this pool: the event ends FAILED with the platform's 500.
    expect(result.InvokeResult).toBe(500);
    expect(result.RetMsg).toBe("");
    expect(JSON.parse(result.ErrMsg)).toMatchObject({
      errorCode: -1,
      requestId: result.FunctionRequestId,
      statusCode: 500,
    });
    expect(result.Log).toContain(`[PLATFORM] END RequestId: ${result.FunctionRequestId} Status: FAILED`);
    const event = await rest(`/v1/events/${result.FunctionRequestId}`);
    expect(event.status).toBe(200);
    expect(((await event.json()) as PublicEvent).status).toBe("FAILED");
  });

  it("defaults to RequestResponse, and answers Log only with LogType Tail", async () => {
    const { namespace, name } = await createFunction(false);
    const answer = await tc("Invoke", { FunctionName: name, Namespace: namespace });
    const result = answer.Response.Result as ScfResult;
    expect(result.InvokeResult).toBe(500);
    expect(result.ErrMsg).not.toBe("");
    expect(result.Log).toBe("");
  });

  it("Event on a sync function queues the event and answers at once", async () => {
    const { namespace, name } = await createFunction(false);
    const answer = await tc("Invoke", { FunctionName: name, Namespace: namespace, InvocationType: "Event" });
    const result = answer.Response.Result as ScfResult;
    expect(result).toEqual(scfAcceptedResult(result.FunctionRequestId));
    expect((await rest(`/v1/events/${result.FunctionRequestId}`)).status).toBe(200);
  });

  it("RequestResponse on an async-execution function answers at once with the RequestId only", async () => {
    const { namespace, name } = await createFunction(true);
    const answer = await tc("Invoke", {
      FunctionName: name,
      Namespace: namespace,
      InvocationType: "RequestResponse",
      LogType: "Tail",
    });
    const result = answer.Response.Result as ScfResult;
    expect(result).toEqual(scfAcceptedResult(result.FunctionRequestId));
  });

  it("refuses an unknown InvocationType or LogType", async () => {
    const { namespace, name } = await createFunction(false);
    for (const InvocationType of ["event", "DryRun", "", 5]) {
      const answer = await tc("Invoke", { FunctionName: name, Namespace: namespace, InvocationType });
      expect(answer.Response.Error?.Code).toBe("InvalidParameterValue.InvocationType");
    }
    const answer = await tc("Invoke", { FunctionName: name, Namespace: namespace, LogType: "Full" });
    expect(answer.Response.Error?.Code).toBe("InvalidParameterValue.LogType");
  });

  it("refuses another namespace, and finds no function of another namespace", async () => {
    const { namespace, name } = await createFunction(false);
    const other = await createFunction(false);
    const key = await createKey([other.namespace]);
    const foreign = await tc("Invoke", { FunctionName: name, Namespace: namespace }, bearer(key));
    expect(foreign.Response.Error?.Code).toBe("ResourceNotFound.Namespace");
    const elsewhere = await tc("Invoke", { FunctionName: name, Namespace: other.namespace }, bearer(key));
    expect(elsewhere.Response.Error?.Code).toBe("ResourceNotFound.Function");
  });

  it("refuses a ClientContext over the payload bound, for RequestResponse too", async () => {
    const { namespace, name } = await createFunction(false);
    const answer = await tc("Invoke", {
      FunctionName: name,
      Namespace: namespace,
      ClientContext: JSON.stringify({ pad: "x".repeat(MAX_ASYNC_PAYLOAD_BYTES) }),
    });
    expect(answer.Response.Error?.Code).toBe("InvalidParameter.Payload");
  });
});

interface SyncAnswer {
  requestId: string;
  status: string;
  statusCode: number | null;
  result: unknown;
  error: { message: string; stack: string | null } | null;
  durationMs: number | null;
  logTail: string;
  idempotentReplay: boolean;
}

describe("REST sync invocation", () => {
  it("waits for a sync function's end and answers 200 with its outcome, whatever its status", async () => {
    const { namespace, name } = await createFunction(false);
    const response = await rest(`/v1/namespaces/${namespace}/functions/${name}/invocations/sync`, {
      method: "POST",
      body: '{"k":1}',
    });
    expect(response.status).toBe(200);
    const answer = (await response.json()) as SyncAnswer;
    expect(answer.status).toBe("FAILED");
    expect(answer.statusCode).toBe(500);
    expect(answer.error?.message).toContain("container");
    expect(answer.logTail).toContain(`[PLATFORM] END RequestId: ${answer.requestId}`);
    expect(answer.idempotentReplay).toBe(false);
  });

  it("answers 202 with the RequestId at once for an async-execution function", async () => {
    const { namespace, name } = await createFunction(true);
    const response = await rest(`/v1/namespaces/${namespace}/functions/${name}/invocations/sync`, {
      method: "POST",
      body: "",
    });
    expect(response.status).toBe(202);
    const body = (await response.json()) as { requestId: string };
    expect(Object.keys(body)).toEqual(["requestId"]);
  });

  it("answers a repeated Idempotency-Key with the key's event, waited for the same way", async () => {
    const { namespace, name } = await createFunction(false);
    const path = `/v1/namespaces/${namespace}/functions/${name}/invocations/sync`;
    const init = { method: "POST", body: "{}", headers: { "idempotency-key": "sync-key-1" } };
    const first = (await (await rest(path, init)).json()) as SyncAnswer;
    const again = await rest(path, init);
    expect(again.status).toBe(200);
    expect(again.headers.get("Idempotent-Replayed")).toBe("true");
    const second = (await again.json()) as SyncAnswer;
    expect(second.requestId).toBe(first.requestId);
    expect(second.idempotentReplay).toBe(true);
  });

  it("refuses another namespace, an unknown function, a malformed or oversized payload", async () => {
    const { namespace, name } = await createFunction(false);
    const other = await createFunction(false);
    const key = await createKey([other.namespace]);
    const foreign = await rest(
      `/v1/namespaces/${namespace}/functions/${name}/invocations/sync`,
      { method: "POST", body: "{}" },
      bearer(key),
    );
    expect(foreign.status).toBe(404);
    expect(((await foreign.json()) as { error: { code: string } }).error.code).toBe("NOT_FOUND");
    const unknown = await rest(
      `/v1/namespaces/${other.namespace}/functions/${name}/invocations/sync`,
      { method: "POST", body: "{}" },
      bearer(key),
    );
    expect(unknown.status).toBe(404);
    const path = `/v1/namespaces/${namespace}/functions/${name}/invocations/sync`;
    const malformed = await rest(path, { method: "POST", body: "{not json" });
    expect(malformed.status).toBe(400);
    const oversized = await rest(path, { method: "POST", body: `"${"x".repeat(MAX_ASYNC_PAYLOAD_BYTES)}"` });
    expect(oversized.status).toBe(413);
  });
});

/** Index rows of one function, as the events' objects write them (the list reads only the index). */
async function seedIndexRows(namespace: string, functionName: string) {
  const now = Date.now();
  const rows = [
    { id: crypto.randomUUID(), qualifier: "$LATEST", alias: "$DEFAULT", invokeType: "OTHERS" },
    { id: crypto.randomUUID(), qualifier: "2", alias: "prod", invokeType: "TRIGGER_TIMER" },
    { id: crypto.randomUUID(), qualifier: "2", alias: null, invokeType: "APIGW" },
    { id: crypto.randomUUID(), qualifier: "$LATEST", alias: null, invokeType: "COS" },
  ];
  for (const [index, row] of rows.entries()) {
    await env.DB.prepare(
      `INSERT INTO events (request_id, namespace, function_name, qualifier, alias, invoke_type, status, status_code,
        phase, start_time, end_time, duration_ms, version) VALUES (?, ?, ?, ?, ?, ?, 'FINISHED', 200, 'finished', ?, ?, 5, 4)`,
    )
      .bind(row.id, namespace, functionName, row.qualifier, row.alias, row.invokeType, now - 1000 + index, now)
      .run();
  }
  return rows.map((row) => row.id);
}

describe("list filters on invoke type and qualifier", () => {
  it("ListAsyncEvents filters by SCF's invoke types and by a version or an alias", async () => {
    const namespace = unique("lf");
    const name = unique("fn");
    const [viaDefault, viaProd, version2, cos] = await seedIndexRows(namespace, name);
    const ids = async (params: Record<string, unknown>) => {
      const answer = await tc("ListAsyncEvents", { FunctionName: name, Namespace: namespace, Order: "ASC", ...params });
      expect(answer.Response.Error).toBeUndefined();
      return (answer.Response.EventList as { InvokeRequestId: string }[]).map((event) => event.InvokeRequestId);
    };
    expect(await ids({ InvokeType: ["OTHERS"] })).toEqual([viaDefault]);
    expect(await ids({ InvokeType: ["TRIGGER_TIMER", "APIGW"] })).toEqual([viaProd, version2]);
    expect(await ids({ InvokeType: ["CMQ"] })).toEqual([]);
    expect(await ids({ Qualifier: "$LATEST" })).toEqual([viaDefault, cos]);
    expect(await ids({ Qualifier: "2" })).toEqual([viaProd, version2]);
    expect(await ids({ Qualifier: "prod" })).toEqual([viaProd]);
    expect(await ids({ Qualifier: "$DEFAULT" })).toEqual([viaDefault]);
    expect(await ids({ Qualifier: "2", InvokeType: ["APIGW"] })).toEqual([version2]);
  });

  it("ListAsyncEvents refuses an unknown invoke type and a malformed qualifier", async () => {
    const name = unique("fn");
    for (const InvokeType of [["TIMER"], ["others"], [""], ["OTHERS", 1], Array.from({ length: 11 }, () => "OTHERS")]) {
      const answer = await tc("ListAsyncEvents", { FunctionName: name, InvokeType });
      expect(answer.Response.Error?.Code).toBe("InvalidParameterValue.InvokeType");
    }
    for (const Qualifier of ["a b", "", "$OTHER", "q".repeat(65)]) {
      const answer = await tc("ListAsyncEvents", { FunctionName: name, Qualifier });
      expect(answer.Response.Error?.Code).toBe("InvalidParameterValue.Qualifier");
    }
  });

  it("ListAsyncEvents of another namespace is refused and shows nothing", async () => {
    const namespace = unique("lf");
    const name = unique("fn");
    await seedIndexRows(namespace, name);
    const key = await createKey([unique("ot")]);
    const answer = await tc("ListAsyncEvents", { FunctionName: name, Namespace: namespace }, bearer(key));
    expect(answer.Response.Error?.Code).toBe("ResourceNotFound.Namespace");
  });

  it("the REST list filters by invokeTypes (a comma list) and qualifier, and refuses unknown values", async () => {
    const namespace = unique("lf");
    const name = unique("fn");
    const [viaDefault, viaProd, version2] = await seedIndexRows(namespace, name);
    const ids = async (query: string) => {
      const response = await rest(`/v1/namespaces/${namespace}/functions/${name}/events?order=ASC&${query}`);
      expect(response.status).toBe(200);
      return ((await response.json()) as { events: { requestId: string }[] }).events.map((event) => event.requestId);
    };
    expect(await ids("invokeTypes=TRIGGER_TIMER,APIGW")).toEqual([viaProd, version2]);
    expect(await ids("invokeTypes=OTHERS&qualifier=%24DEFAULT")).toEqual([viaDefault]);
    expect(await ids("qualifier=prod")).toEqual([viaProd]);
    expect(await ids("qualifier=2")).toEqual([viaProd, version2]);
    for (const bad of [
      "invokeTypes=TIMER",
      "invokeTypes=OTHERS,others",
      "qualifier=a%20b",
      `qualifier=${"q".repeat(65)}`,
    ]) {
      const response = await rest(`/v1/namespaces/${namespace}/functions/${name}/events?${bad}`);
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("INVALID_PARAMETER");
    }
  });
});
