// The D1 event index follows each event durably: an index write that fails (D1 refusing writes,
// injected here with triggers that abort every insert and update of the index table) stays owed in
// the event's Durable Object, and its alarm writes it once D1 takes writes again.
import {
  createExecutionContext,
  createMessageBatch,
  env,
  evictDurableObject,
  getQueueResult,
  runDurableObjectAlarm,
  runInDurableObject,
  SELF,
} from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import type { AsyncEventObject } from "../../worker/events/async-event-object";
import type { DispatchMessage } from "../../worker/events/dispatch-message";
import {
  afterFailedIndexWrite,
  INDEX_RETRY_FIRST_DELAY_MS,
  INDEX_RETRY_MAX_DELAY_MS,
  indexEntryOf,
  logsIndexFailure,
  writeIndexEntries,
} from "../../worker/events/event-index";
import { EVENT_INDEX_RETENTION_MS } from "../../worker/events/event-list";
import type { EventState } from "../../worker/events/event-machine";
import { consumeDispatchBatch } from "../../worker/scheduling/dispatch-consumer";
import { everyDispatchQueue } from "../helpers/fake-dispatch";
import { functionSnapshot } from "../helpers/function-snapshot";
import { zipBase64 } from "../helpers/zip";

const AUTH = { authorization: "Bearer AKIDintegration:integration-secret-key-0123456789abcdef" };
const NAMESPACE = "durability";
const ZIP = zipBase64({ "index.js": "exports.main_handler = async () => 'ok';" });
const MINUTE = 60_000;
let counter = 0;

function call(path: string, init: RequestInit = {}): Promise<Response> {
  return SELF.fetch(`https://platform.test${path}`, { ...init, headers: { ...AUTH, ...(init.headers ?? {}) } });
}

/** Creates a function through the API (so that DeleteFunction has something to refuse). */
async function createFunction(): Promise<string> {
  counter += 1;
  const name = `fn-${Date.now().toString(36)}-${counter}`;
  const response = await call(`/v1/namespaces/${NAMESPACE}/functions`, {
    method: "POST",
    body: JSON.stringify({ name, runtime: "Nodejs22", code: { zipFile: ZIP } }),
  });
  expect(response.status, await response.clone().text()).toBe(201);
  return name;
}

/** Makes every insert and update of the index table fail, as an unavailable D1 would. */
async function breakIndexWrites(): Promise<void> {
  for (const operation of ["INSERT", "UPDATE"]) {
    await env.DB.prepare(
      `CREATE TRIGGER index_down_${operation.toLowerCase()} BEFORE ${operation} ON events
       BEGIN SELECT RAISE(ABORT, 'injected fault: the event index refuses writes'); END`,
    ).run();
  }
}

async function restoreIndexWrites(): Promise<void> {
  await env.DB.batch([
    env.DB.prepare("DROP TRIGGER IF EXISTS index_down_insert"),
    env.DB.prepare("DROP TRIGGER IF EXISTS index_down_update"),
  ]);
}

/** The event's status as ListAsyncEvents shows it (REST list filtered by RequestId), or null. */
async function listedStatus(functionName: string, requestId: string): Promise<string | null> {
  const response = await call(`/v1/namespaces/${NAMESPACE}/functions/${functionName}/events?requestId=${requestId}`);
  expect(response.status).toBe(200);
  const body = (await response.json()) as { events: { status: string }[] };
  return body.events[0]?.status ?? null;
}

function deleteFunction(functionName: string): Promise<Response> {
  return call(`/v1/namespaces/${NAMESPACE}/functions/${functionName}`, { method: "DELETE" });
}

/** An event of the function as its Durable Object holds it in `phase`. */
function eventState(functionName: string, phase: "queued" | "running", invokedAt = Date.now()): EventState {
  const base: EventState = {
    requestId: crypto.randomUUID(),
    namespace: NAMESPACE,
    functionName,
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    function: functionSnapshot(NAMESPACE, functionName),
    phase: "queued",
    version: 1,
    invokedAt,
  };
  if (phase === "queued") return base;
  return {
    ...base,
    phase: "running",
    version: 3,
    instanceId: `${NAMESPACE}/${functionName}#0`,
    claimedAt: invokedAt + 10,
    startedAt: invokedAt + 20,
    containerId: "container-1",
    cold: true,
  };
}

/** Stores an event (with extra storage keys) and its alarm, then restarts the object to load it. */
async function seedEvent(state: EventState, alarmAt: number, extra: Record<string, unknown> = {}) {
  const stub = env.ASYNC_EVENT.get(env.ASYNC_EVENT.idFromName(state.requestId));
  await runInDurableObject(stub, async (_instance, storage) => {
    await storage.storage.put({ state, ...extra });
    await storage.storage.setAlarm(alarmAt);
  });
  await evictDurableObject(stub);
  return stub;
}

function scheduledAlarm(stub: DurableObjectStub): Promise<number | null> {
  return runInDurableObject(stub, (_instance, state) => state.storage.getAlarm());
}

function storedValue(stub: DurableObjectStub, key: string): Promise<unknown> {
  return runInDurableObject(stub, (_instance, state) => state.storage.get(key));
}

describe("event index durability under D1 write failures", () => {
  // D1 takes writes again after every test, whatever it asserted.
  afterEach(restoreIndexWrites);

  it("lists an event that ended while D1 refused writes as FINISHED once D1 is back (its queued row handed back to it), and lets DeleteFunction through", async () => {
    const functionName = await createFunction();
    const running = eventState(functionName, "running");
    // The dispatch consumer's first row, as it writes it.
    await writeIndexEntries(env.DB, [{ ...indexEntryOf(running), phase: "queued", version: 1 }]);
    const stub = await seedEvent(running, Date.now() + 10 * MINUTE);
    // The end's row goes to the function's dispatch queue: kept here, and consumed below.
    const queued: unknown[] = [];
    await runInDurableObject(stub, async (object) => {
      const holder = object as unknown as { env: Env };
      const capturing = { send: async (body: unknown) => void queued.push(body) } as unknown as Env["DISPATCH_QUEUE"];
      holder.env = { ...holder.env, ...everyDispatchQueue(capturing) };
    });

    await breakIndexWrites();
    expect(await stub.complete(running.instanceId ?? "", { kind: "returned", result: { ok: true } })).toEqual({
      ok: true,
    });
    expect(await stub.view()).toMatchObject({ ok: true, value: { status: "FINISHED", statusCode: 200 } });
    await expect.poll(() => queued.length).toBe(1);
    expect(queued[0]).toMatchObject({ kind: "index-row", entry: { requestId: running.requestId, status: "FINISHED" } });
    // The consumer meets D1 refusing: it hands the row back to the event, and acknowledges it.
    const batch = createMessageBatch<unknown>("afp-dispatch", [
      { id: "end-row", timestamp: Date.now(), attempts: 1, body: queued[0] },
    ]);
    await consumeDispatchBatch(batch, env);
    expect((await getQueueResult(batch, createExecutionContext())).explicitAcks).toEqual(["end-row"]);
    expect(await listedStatus(functionName, running.requestId)).toBe("RUNNING");
    expect((await deleteFunction(functionName)).status).toBe(409);
    // The owed write is stored: a restart of the object does not forget it.
    await evictDurableObject(stub);
    // While D1 still refuses, the alarm's attempt (to D1 itself) fails too and the write stays
    // owed, retried soon.
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await listedStatus(functionName, running.requestId)).toBe("RUNNING");
    const owed = (await storedValue(stub, "indexPending")) as { attempts: number } | undefined;
    expect(owed?.attempts).toBeGreaterThanOrEqual(1);
    const retryAlarm = await scheduledAlarm(stub);
    expect(retryAlarm).not.toBeNull();
    expect(retryAlarm ?? 0).toBeLessThanOrEqual(Date.now() + INDEX_RETRY_MAX_DELAY_MS);

    await restoreIndexWrites();
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await listedStatus(functionName, running.requestId)).toBe("FINISHED");
    expect(await storedValue(stub, "indexPending")).toBeUndefined();
    // Nothing owed any more: the alarm is back on the event's retention (72 h after its end).
    const ended = (await storedValue(stub, "state")) as EventState;
    expect(await scheduledAlarm(stub)).toBe((ended.endedAt ?? Number.NaN) + 72 * 60 * MINUTE);
    expect((await deleteFunction(functionName)).status).toBe(204);
  });

  it("sends the end's row on its function's dispatch queue and owes nothing; a refused send stays owed and the alarm writes it to D1", async () => {
    const functionName = await createFunction();
    const ends = [eventState(functionName, "running"), eventState(functionName, "running")];
    let refusing = false;
    const queued: unknown[] = [];
    const stubs: DurableObjectStub<AsyncEventObject>[] = [];
    for (const running of ends) {
      await writeIndexEntries(env.DB, [{ ...indexEntryOf(running), phase: "queued", version: 1 }]);
      const stub = await seedEvent(running, Date.now() + 10 * MINUTE);
      await runInDurableObject(stub, async (object) => {
        const holder = object as unknown as { env: Env };
        const queue = {
          send: async (body: unknown) => {
            if (refusing) throw new Error("injected fault: the queue refuses sends");
            queued.push(body);
          },
        } as unknown as Env["DISPATCH_QUEUE"];
        holder.env = { ...holder.env, ...everyDispatchQueue(queue) };
      });
      stubs.push(stub);
    }
    const [sent, refused] = stubs as [DurableObjectStub<AsyncEventObject>, DurableObjectStub<AsyncEventObject>];
    const [sentState, refusedState] = ends as [EventState, EventState];

    expect((await sent.complete(sentState.instanceId ?? "", { kind: "returned", result: 1 })).ok).toBe(true);
    await expect.poll(() => queued.length).toBe(1);
    expect(queued[0]).toMatchObject({ kind: "index-row", entry: { requestId: sentState.requestId, version: 4 } });
    await expect.poll(() => storedValue(sent, "indexPending")).toBeUndefined();
    // D1 has not been written by the event: the queue's consumer writes it (not run here).
    expect(await listedStatus(functionName, sentState.requestId)).toBe("RUNNING");

    refusing = true;
    expect((await refused.complete(refusedState.instanceId ?? "", { kind: "returned", result: 2 })).ok).toBe(true);
    await expect
      .poll(async () => ((await storedValue(refused, "indexPending")) as { attempts: number } | undefined)?.attempts)
      .toBe(1);
    // The alarm's retry writes to D1 itself, not through the queue.
    expect(await runDurableObjectAlarm(refused)).toBe(true);
    expect(await listedStatus(functionName, refusedState.requestId)).toBe("FINISHED");
    expect(await storedValue(refused, "indexPending")).toBeUndefined();
    expect(queued).toHaveLength(1);
  });

  it("hands the dispatch consumer's failed first row to the event, whose alarm writes it without firing the dispatch watchdog early", async () => {
    const functionName = await createFunction();
    const queued = eventState(functionName, "queued");
    const watchdogAt = Date.now() + 10 * MINUTE;
    const stub = await seedEvent(queued, watchdogAt, { watchdogAt });
    const message: DispatchMessage = {
      requestId: queued.requestId,
      namespace: NAMESPACE,
      functionName,
      qualifier: "$LATEST",
      invokeType: "OTHERS",
      invokedAt: queued.invokedAt,
      maxConcurrency: 1,
    };
    const submitted: DispatchMessage[][] = [];
    // The scheduler is replaced: the event must stay queued (no container starts in this pool).
    const scheduler = {
      idFromName: (name: string) => env.SCHEDULER.idFromName(name),
      get: () => ({ submit: async (messages: DispatchMessage[]) => void submitted.push(messages) }),
    };
    const consumerEnv = { ...env, SCHEDULER: scheduler as unknown as Env["SCHEDULER"] };
    const batch = createMessageBatch<unknown>("afp-dispatch", [
      { id: "dispatch-1", timestamp: Date.now(), attempts: 1, body: message },
    ]);

    await breakIndexWrites();
    await consumeDispatchBatch(batch, consumerEnv);
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks).toEqual(["dispatch-1"]);
    expect(submitted).toEqual([[message]]);
    expect(await listedStatus(functionName, queued.requestId)).toBeNull();
    // The retry comes before the watchdog: the earliest schedule wins.
    expect((await scheduledAlarm(stub)) ?? Number.POSITIVE_INFINITY).toBeLessThan(watchdogAt);

    await restoreIndexWrites();
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await listedStatus(functionName, queued.requestId)).toBe("RUNNING");
    // The watchdog did not fire (its backoff is untouched) and is scheduled as before.
    expect(await storedValue(stub, "watchdogDelayMs")).toBeUndefined();
    expect(await scheduledAlarm(stub)).toBe(watchdogAt);
    expect(await stub.view()).toMatchObject({ ok: true, value: { status: "RUNNING", phase: "queued" } });
  });

  it("redelivers a dispatch message whose row is neither written nor taken over by its event", async () => {
    const functionName = await createFunction();
    const queued = eventState(functionName, "queued");
    const message: DispatchMessage = {
      requestId: queued.requestId,
      namespace: NAMESPACE,
      functionName,
      qualifier: "$LATEST",
      invokeType: "OTHERS",
      invokedAt: queued.invokedAt,
      maxConcurrency: 1,
    };
    const unreachable = {
      idFromName: (name: string) => env.ASYNC_EVENT.idFromName(name),
      get: () => ({
        owesIndexRow: async () => {
          throw new Error("injected fault: the event's object is unreachable");
        },
      }),
    };
    const scheduler = {
      idFromName: (name: string) => env.SCHEDULER.idFromName(name),
      get: () => ({ submit: async () => undefined }),
    };
    const consumerEnv = {
      ...env,
      ASYNC_EVENT: unreachable as unknown as Env["ASYNC_EVENT"],
      SCHEDULER: scheduler as unknown as Env["SCHEDULER"],
    };
    const batch = createMessageBatch<unknown>("afp-dispatch", [
      { id: "dispatch-2", timestamp: Date.now(), attempts: 1, body: message },
    ]);
    await breakIndexWrites();
    await consumeDispatchBatch(batch, consumerEnv);
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages.map((retry) => retry.msgId)).toEqual(["dispatch-2"]);
  });

  it("never lets a late first row (version 1) replace the row of an ended event", async () => {
    const functionName = await createFunction();
    const running = eventState(functionName, "running");
    const stub = await seedEvent(running, Date.now() + 10 * MINUTE);
    expect(await stub.complete(running.instanceId ?? "", { kind: "returned", result: 1 })).toEqual({ ok: true });
    // The end's row reaches D1 through the dispatch queue's consumer.
    await expect.poll(() => listedStatus(functionName, running.requestId), { timeout: 10_000 }).toBe("FINISHED");
    await writeIndexEntries(env.DB, [{ ...indexEntryOf(running), status: "RUNNING", phase: "queued", version: 1 }]);
    expect(await listedStatus(functionName, running.requestId)).toBe("FINISHED");
  });

  it("drops an owed write whose row is past the index's longest retention instead of writing it", async () => {
    const functionName = await createFunction();
    const old = eventState(functionName, "running", Date.now() - EVENT_INDEX_RETENTION_MS - MINUTE);
    const stub = await seedEvent(old, Date.now() + 10 * MINUTE, {
      indexPending: { version: old.version, attempts: 3, retryAt: Date.now() },
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await listedStatus(functionName, old.requestId)).toBeNull();
    expect(await storedValue(stub, "indexPending")).toBeUndefined();
  });
});

describe("index retry policy", () => {
  it("doubles the delay from 1 s up to 5 minutes, with at most half of it random, and never stops", () => {
    let pending = { version: 2, attempts: 0, retryAt: 0 };
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 40; attempt++) {
      pending = afterFailedIndexWrite(pending, 0, () => 1);
      delays.push(pending.retryAt);
    }
    expect(delays.slice(0, 4)).toEqual([1, 2, 4, 8].map((factor) => factor * INDEX_RETRY_FIRST_DELAY_MS));
    expect(delays.at(-1)).toBe(INDEX_RETRY_MAX_DELAY_MS);
    expect(pending.attempts).toBe(40);
    expect(afterFailedIndexWrite({ version: 2, attempts: 0, retryAt: 0 }, 0, () => 0).retryAt).toBe(
      INDEX_RETRY_FIRST_DELAY_MS / 2,
    );
  });

  it("logs a logarithmic number of failures: attempts 1, 2, 4, 8, ...", () => {
    const logged = Array.from({ length: 100 }, (_, index) => index + 1).filter(logsIndexFailure);
    expect(logged).toEqual([1, 2, 4, 8, 16, 32, 64]);
  });
});
