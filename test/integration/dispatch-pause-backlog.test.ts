// A paused backlog's cost and bounds, and the pause/delete race (issue 15 review): the dispatch
// watchdog of an event its scheduler holds pending re-sends nothing and looks again after
// WATCHDOG_HELD_RECHECK_MS; a terminated queued event leaves the scheduler's pending queue; a paused
// function with MAX_PAUSED_BACKLOG events waiting refuses new invocations with 429 RATE_LIMITED;
// a pause that races a delete is rolled back, and a created function starts unpaused.
import { env, runDurableObjectAlarm, runInDurableObject, SELF } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { FunctionRow } from "../../worker/db/schema";
import { WATCHDOG_HELD_RECHECK_MS } from "../../worker/events/event-deadlines";
import { MAX_PAUSED_BACKLOG } from "../../worker/events/paused-backlog";
import { FunctionRegistry } from "../../worker/functions/registry";
import { pauseDispatch } from "../../worker/scheduling/dispatch-pause";
import { eventStub, schedulerName, schedulerStub } from "../../worker/shared/objects";
import { installFakeRunners } from "../helpers/fake-agent-runner";
import { acceptedEvent, eventView, everyDispatchQueue, uniqueFunction } from "../helpers/fake-dispatch";
import { zipBase64 } from "../helpers/zip";

const BASE = "https://platform.test";
const workerEnv: Env = env;
const ADMIN = { authorization: `Bearer ${workerEnv.DEV_SECRET_ID ?? ""}:${workerEnv.DEV_SECRET_KEY ?? ""}` };
const ZIP = zipBase64({ "index.js": "exports.main_handler = async (event) => event;" });

let fakes: ReturnType<typeof installFakeRunners>;

beforeEach(() => {
  fakes = installFakeRunners();
});

afterEach(() => {
  fakes.uninstall();
  vi.restoreAllMocks();
});

/** Gives the event's object a dispatch queue that counts what it is sent, and answers the count. */
async function countingQueue(requestId: string): Promise<{ sent: () => number }> {
  let sent = 0;
  const queue = {
    send: async () => {
      sent += 1;
    },
    sendBatch: async (messages: unknown[]) => {
      sent += messages.length;
    },
  } as unknown as Env["DISPATCH_QUEUE"];
  await runInDurableObject(eventStub(env, requestId), async (object) => {
    const holder = object as unknown as { env: Env };
    holder.env = { ...holder.env, ...everyDispatchQueue(queue) };
  });
  return { sent: () => sent };
}

/** Makes the event's dispatch watchdog due now and runs its alarm; answers the next watchdog time. */
async function fireWatchdog(requestId: string): Promise<number | undefined> {
  const stub = eventStub(env, requestId);
  await runInDurableObject(stub, async (_object, state) => {
    // The alarm stays where accept set it (30 s on): runDurableObjectAlarm runs it now, alone.
    await state.storage.put("watchdogAt", Date.now() - 1);
  });
  expect(await runDurableObjectAlarm(stub)).toBe(true);
  return runInDurableObject(stub, (_object, state) => state.storage.get<number>("watchdogAt"));
}

describe("the dispatch watchdog of a paused function's events", () => {
  it("re-sends nothing for an event its scheduler holds pending, and looks again after WATCHDOG_HELD_RECHECK_MS", async () => {
    const { snapshot, scheduler } = uniqueFunction("pb");
    const stub = schedulerStub(env, scheduler);
    const event = await acceptedEvent(snapshot);
    const queue = await countingQueue(event.requestId);
    await stub.pauseDispatch(scheduler);
    await stub.submit([event.message]);

    const before = Date.now();
    const next = await fireWatchdog(event.requestId);
    expect(queue.sent()).toBe(0);
    expect(next).toBeGreaterThanOrEqual(before + WATCHDOG_HELD_RECHECK_MS);
    const view = await eventView(event.requestId);
    expect(view.phase).toBe("queued");
    expect(JSON.stringify(view)).not.toContain("dispatched again by the watchdog");
    expect((await stub.stats()).duplicatesIgnored).toBe(0);
  });

  it("re-sends an event its scheduler does not hold (the dispatch was lost)", async () => {
    const { snapshot, scheduler } = uniqueFunction("pb");
    await schedulerStub(env, scheduler).pauseDispatch(scheduler);
    const event = await acceptedEvent(snapshot);
    const queue = await countingQueue(event.requestId);
    const before = Date.now();
    const next = await fireWatchdog(event.requestId);
    expect(queue.sent()).toBe(1);
    expect(next).toBeLessThan(before + WATCHDOG_HELD_RECHECK_MS);
  });
});

describe("a terminated queued event", () => {
  it("leaves its scheduler's pending queue: pendingEvents stops counting it", async () => {
    const { snapshot, scheduler } = uniqueFunction("pb");
    const stub = schedulerStub(env, scheduler);
    const first = await acceptedEvent(snapshot, { index: 0 });
    const second = await acceptedEvent(snapshot, { index: 1 });
    await stub.pauseDispatch(scheduler);
    await stub.submit([first.message, second.message]);
    expect((await stub.dispatchState()).pendingEvents).toBe(2);
    const terminated = await eventStub(env, first.requestId).terminate(false);
    expect(terminated).toMatchObject({ ok: true, value: { status: "ABORTED" } });
    expect((await stub.dispatchState()).pendingEvents).toBe(1);
    expect(await stub.holdsPending(first.requestId)).toBe(false);
    expect(await stub.holdsPending(second.requestId)).toBe(true);
  });
});

// REST helpers.

let counter = 0;
function unique(prefix: string): string {
  counter += 1;
  return `${prefix}${Date.now().toString(36)}${counter}`;
}

function call(path: string, init: RequestInit = {}): Promise<Response> {
  return SELF.fetch(`${BASE}${path}`, { ...init, headers: { ...ADMIN, "content-type": "application/json" } });
}

async function createFunction(namespace: string, name: string): Promise<void> {
  const created = await call(`/v1/namespaces/${namespace}/functions`, {
    method: "POST",
    body: JSON.stringify({ name, runtime: "Nodejs22", code: { zipFile: ZIP }, qpsLimit: 100_000 }),
  });
  expect(created.status).toBe(201);
}

function invoke(namespace: string, name: string): Promise<Response> {
  return call(`/v1/namespaces/${namespace}/functions/${name}/invocations`, { method: "POST", body: "{}" });
}

async function dispatchPaused(namespace: string, name: string): Promise<boolean | null> {
  const response = await call(`/v1/namespaces/${namespace}/functions/${name}`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { dispatchPaused: boolean | null }).dispatchPaused;
}

describe("the paused backlog's bound", () => {
  it("refuses a new invocation of a paused function holding MAX_PAUSED_BACKLOG events with 429 RATE_LIMITED", async () => {
    const namespace = unique("pb");
    const name = unique("fn");
    await createFunction(namespace, name);
    expect(
      (await call(`/v1/namespaces/${namespace}/functions/${name}/dispatch/pause`, { method: "POST" })).status,
    ).toBe(200);
    const stub = schedulerStub(env, schedulerName(namespace, name));
    // One below the bound: still accepted (its dispatch goes to the queue).
    await runInDurableObject(stub, async (_object, state) => {
      for (let index = 0; index < MAX_PAUSED_BACKLOG; index++) {
        state.storage.sql.exec("INSERT INTO pending (request_id, enqueued_at) VALUES (?, ?)", `seed-${index}`, 1);
      }
      state.storage.sql.exec("DELETE FROM pending WHERE request_id = ?", "seed-0");
    });
    expect((await invoke(namespace, name)).status).toBe(202);

    await runInDurableObject(stub, async (_object, state) => {
      state.storage.sql.exec("INSERT OR IGNORE INTO pending (request_id, enqueued_at) VALUES (?, ?)", "seed-0", 1);
    });
    const refused = await invoke(namespace, name);
    expect(refused.status).toBe(429);
    const { error } = (await refused.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe("RATE_LIMITED");
    expect(error.message).toContain("dispatch is paused");
    expect(error.message).toContain(String(MAX_PAUSED_BACKLOG));
    expect(refused.headers.get("retry-after")).not.toBeNull();

    // Resumed, the function takes invocations again whatever waits.
    await runInDurableObject(stub, async (_object, state) => {
      state.storage.sql.exec("DELETE FROM pending WHERE request_id LIKE 'seed-%'");
    });
    expect(
      (await call(`/v1/namespaces/${namespace}/functions/${name}/dispatch/resume`, { method: "POST" })).status,
    ).toBe(200);
    expect((await invoke(namespace, name)).status).toBe(202);
  });
});

describe("pause and delete racing", () => {
  it("rolls a pause back when the function was deleted between its check and the pause", async () => {
    const namespace = unique("pb");
    const name = unique("fn");
    // The check before the pause still sees the function; it is gone by the re-check.
    const real = FunctionRegistry.prototype.get;
    let calls = 0;
    vi.spyOn(FunctionRegistry.prototype, "get").mockImplementation(function (this: FunctionRegistry, ns, fn) {
      calls += 1;
      if (calls === 1) return Promise.resolve({ namespace: ns, name: fn } as FunctionRow);
      return real.call(this, ns, fn);
    });
    await expect(pauseDispatch(env, namespace, name)).rejects.toMatchObject({ code: "FUNCTION_NOT_FOUND" });
    expect(calls).toBe(2);
    expect(await schedulerStub(env, schedulerName(namespace, name)).dispatchState()).toMatchObject({
      dispatchPaused: false,
      pausedAt: null,
    });
  });

  it("starts a created function unpaused even when its name's scheduler kept a pause", async () => {
    const namespace = unique("pb");
    const name = unique("fn");
    const scheduler = schedulerName(namespace, name);
    // A pause that outlived a deleted function of this name.
    await schedulerStub(env, scheduler).pauseDispatch(scheduler);
    await createFunction(namespace, name);
    expect(await dispatchPaused(namespace, name)).toBe(false);
    expect((await schedulerStub(env, scheduler).dispatchState()).dispatchPaused).toBe(false);
  });
});
