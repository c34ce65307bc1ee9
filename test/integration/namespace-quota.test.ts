import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { DispatchMessage } from "../../worker/events/dispatch-message";
import {
  DEFAULT_NAMESPACE_MAX_CONTAINERS,
  LEASE_AUDIT_MIN_AGE_MS,
  MAX_LEASES_PER_ACQUIRE,
  parseNamespaceMaxContainers,
  WAKE_RESERVATION_MS,
} from "../../worker/scheduling/namespace-quota-object";

/** A namespace no other test uses (each has its own quota object). */
function uniqueNamespace(prefix: string): string {
  return `${prefix}${crypto.randomUUID().slice(0, 8)}`;
}

function quota(namespace: string) {
  return env.NAMESPACE_QUOTA.get(env.NAMESPACE_QUOTA.idFromName(namespace));
}

function scheduler(name: string) {
  return env.SCHEDULER.get(env.SCHEDULER.idFromName(name));
}

/** Lease requests for RequestIds `${prefix}-0` .. `${prefix}-(count-1)`, one slot each. */
function leases(prefix: string, count: number) {
  return Array.from({ length: count }, (_, slot) => ({ requestId: `${prefix}-${slot}`, slot }));
}

/** The RequestIds the scheduler has waiting, in queue order. */
async function pendingOrder(name: string): Promise<string[]> {
  return runInDurableObject(scheduler(name), async (_instance, state) =>
    state.storage.sql
      .exec<{ request_id: string }>("SELECT request_id FROM pending ORDER BY seq")
      .toArray()
      .map((row) => row.request_id),
  );
}

function dispatchMessage(namespace: string, functionName: string, requestId: string): DispatchMessage {
  return {
    requestId,
    namespace,
    functionName,
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    invokedAt: Date.now(),
    maxConcurrency: 10,
  };
}

describe("NAMESPACE_MAX_CONTAINERS", () => {
  it("accepts a whole number from 1 up and falls back to the documented default otherwise", () => {
    expect(DEFAULT_NAMESPACE_MAX_CONTAINERS).toBe(25);
    expect(parseNamespaceMaxContainers("2")).toBe(2);
    expect(parseNamespaceMaxContainers(" 40 ")).toBe(40);
    for (const invalid of ["", "0", "-3", "1.5", "abc", "1e3", "99999999", undefined, 7]) {
      expect(parseNamespaceMaxContainers(invalid)).toBe(DEFAULT_NAMESPACE_MAX_CONTAINERS);
    }
  });

  it("is set in wrangler.toml to the default", () => {
    expect(parseNamespaceMaxContainers(env.NAMESPACE_MAX_CONTAINERS)).toBe(DEFAULT_NAMESPACE_MAX_CONTAINERS);
  });
});

describe("NamespaceQuotaObject", () => {
  it("grants leases up to the namespace's cap and refuses the rest, recording the scheduler as waiting", async () => {
    const stub = quota(uniqueNamespace("grant"));
    const answer = await stub.acquire("ns/fn", leases("r", 3), 2);
    expect(answer).toEqual({ granted: ["r-0", "r-1"], refused: ["r-2"] });
    const snapshot = await stub.snapshot();
    expect(snapshot.limit).toBe(2);
    expect(snapshot.leases.map((lease) => lease.requestId).sort()).toEqual(["r-0", "r-1"]);
    expect(snapshot.waiters).toEqual([{ scheduler: "ns/fn", wokenAt: null }]);
  });

  it("grants a RequestId it already leased again without taking a second lease", async () => {
    const stub = quota(uniqueNamespace("idem"));
    expect((await stub.acquire("ns/fn", leases("r", 2), 2)).granted).toEqual(["r-0", "r-1"]);
    // At the cap, a repeated acquire of held leases (a redelivery) is still granted.
    expect(await stub.acquire("ns/fn", leases("r", 2), 2)).toEqual({ granted: ["r-0", "r-1"], refused: [] });
    const snapshot = await stub.snapshot();
    expect(snapshot.leases).toHaveLength(2);
    expect(snapshot.waiters).toEqual([]);
  });

  it("frees room on release, and a repeated or unknown release changes nothing", async () => {
    const stub = quota(uniqueNamespace("release"));
    await stub.acquire("ns/fn", leases("r", 2), 2);
    expect(await stub.release(["r-0"])).toEqual({ released: 1 });
    expect(await stub.release(["r-0", "never-leased"])).toEqual({ released: 0 });
    expect((await stub.snapshot()).leases.map((lease) => lease.requestId)).toEqual(["r-1"]);
    expect(await stub.acquire("ns/other", [{ requestId: "x", slot: 0 }], 2)).toEqual({ granted: ["x"], refused: [] });
  });

  it("keeps the room a release frees for the scheduler it woke, ahead of the function that released", async () => {
    const stub = quota(uniqueNamespace("reserve"));
    await stub.acquire("ns/hog", leases("h", 1), 1);
    expect((await stub.acquire("ns/first", leases("f", 1), 1)).refused).toEqual(["f-0"]);
    expect((await stub.acquire("ns/second", leases("s", 1), 1)).refused).toEqual(["s-0"]);
    // The state right after the hog's release woke the oldest waiter (wakes are asynchronous).
    await runInDurableObject(stub, async (_instance, state) => {
      state.storage.sql.exec("DELETE FROM leases WHERE request_id = 'h-0'");
      state.storage.sql.exec("UPDATE waiters SET woken_at = ? WHERE scheduler = 'ns/first'", Date.now());
    });

    expect(await stub.acquire("ns/hog", leases("h2", 1), 1)).toEqual({ granted: [], refused: ["h2-0"] });
    expect(await stub.acquire("ns/first", leases("f", 1), 1)).toEqual({ granted: ["f-0"], refused: [] });
    const after = await stub.snapshot();
    expect(after.leases.map((lease) => lease.scheduler)).toEqual(["ns/first"]);
    // Served schedulers leave the line; the refused hog queues behind the one still waiting.
    expect(after.waiters.map((waiter) => waiter.scheduler)).toEqual(["ns/second", "ns/hog"]);
  });

  it("lets a wake reservation that was not used lapse, so the room is not stranded", async () => {
    const stub = quota(uniqueNamespace("lapse"));
    await stub.acquire("ns/hog", leases("h", 1), 1);
    await stub.acquire("ns/sleepy", leases("s", 1), 1);
    await runInDurableObject(stub, async (_instance, state) => {
      state.storage.sql.exec("DELETE FROM leases WHERE request_id = 'h-0'");
      state.storage.sql.exec("UPDATE waiters SET woken_at = ?", Date.now() - WAKE_RESERVATION_MS - 1);
    });
    expect(await stub.acquire("ns/hog", leases("h3", 1), 1)).toEqual({ granted: ["h3-0"], refused: [] });
  });

  it("wakes waiting schedulers on release, passing the room on from one that has nothing to start", async () => {
    const namespace = uniqueNamespace("wake");
    const cap = parseNamespaceMaxContainers(env.NAMESPACE_MAX_CONTAINERS);
    const stub = quota(namespace);
    await stub.acquire(`${namespace}/hog`, leases("hog", cap), cap);
    // The oldest waiter has no event left to start when it is woken (a scheduler with no events).
    expect((await stub.acquire(`${namespace}/idle`, leases("i", 1), cap)).refused).toEqual(["i-0"]);
    const name = `${namespace}/fn`;
    await scheduler(name).submit([dispatchMessage(namespace, "fn", crypto.randomUUID())]);
    await expect
      .poll(async () => (await stub.snapshot()).waiters.map((waiter) => waiter.scheduler))
      .toEqual([`${namespace}/idle`, name]);

    await stub.release(["hog-0"]);
    await expect.poll(async () => (await scheduler(name).stats()).pending, { timeout: 3_000 }).toBe(0);
    await expect.poll(async () => (await stub.snapshot()).waiters, { timeout: 3_000 }).toEqual([]);
  });

  it("caps each namespace on its own: a full namespace does not refuse another's leases", async () => {
    const full = quota(uniqueNamespace("full"));
    const other = quota(uniqueNamespace("other"));
    await full.acquire("a/fn", leases("a", 2), 2);
    expect((await full.acquire("a/fn2", leases("a2", 1), 2)).granted).toEqual([]);
    expect((await other.acquire("b/fn", leases("b", 2), 2)).granted).toEqual(["b-0", "b-1"]);
  });

  it("uses the default cap when given an invalid one", async () => {
    const stub = quota(uniqueNamespace("badcap"));
    const answer = await stub.acquire("ns/fn", leases("r", 3), 0);
    expect(answer.granted).toHaveLength(3);
    expect((await stub.snapshot()).limit).toBe(DEFAULT_NAMESPACE_MAX_CONTAINERS);
  });

  it("refuses a malformed acquire and stores nothing", async () => {
    const stub = quota(uniqueNamespace("malformed"));
    const tooMany = await stub.acquire("ns/fn", leases("r", MAX_LEASES_PER_ACQUIRE + 1), 500);
    expect(tooMany).toEqual({ granted: [], refused: [], error: expect.stringMatching(/at most 100/) });
    expect((await stub.acquire("", leases("r", 1), 2)).error).toMatch(/scheduler/);
    expect((await stub.acquire("ns/fn", [{ requestId: "", slot: 0 }], 2)).error).toMatch(/RequestId/);
    expect((await stub.release(Array.from({ length: 101 }, (_, n) => `r-${n}`))).error).toMatch(/at most 100/);
    expect(await stub.snapshot()).toMatchObject({ leases: [], waiters: [] });
  });

  it("audits old leases: drops those their scheduler no longer holds, keeps held and young ones", async () => {
    const namespace = uniqueNamespace("audit");
    const schedulerName = `${namespace}/fn`;
    await runInDurableObject(scheduler(schedulerName), async (_instance, state) => {
      state.storage.sql.exec(
        "INSERT INTO slots (slot, request_id, assigned_at, last_used_at) VALUES (0, 'held', ?, ?)",
        Date.now(),
        Date.now(),
      );
    });
    const stub = quota(namespace);
    await stub.acquire(
      schedulerName,
      [
        { requestId: "held", slot: 0 },
        { requestId: "leaked", slot: 1 },
        { requestId: "young", slot: 2 },
      ],
      5,
    );
    await runInDurableObject(stub, async (_instance, state) => {
      state.storage.sql.exec(
        "UPDATE leases SET acquired_at = ? WHERE request_id IN ('held', 'leaked')",
        Date.now() - LEASE_AUDIT_MIN_AGE_MS - 1,
      );
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const snapshot = await stub.snapshot();
    expect(snapshot.leases.map((lease) => lease.requestId).sort()).toEqual(["held", "young"]);
  });
});

describe("FunctionSchedulerObject under the namespace cap", () => {
  it("keeps events over the cap queued in order, then starts them once the namespace has room", async () => {
    const namespace = uniqueNamespace("sched");
    const cap = parseNamespaceMaxContainers(env.NAMESPACE_MAX_CONTAINERS);
    const stub = quota(namespace);
    // Another function of the namespace holds every container.
    await stub.acquire(`${namespace}/hog`, leases("hog", cap), cap);

    const name = `${namespace}/fn`;
    const ids = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
    await scheduler(name).submit(ids.map((id) => dispatchMessage(namespace, "fn", id)));
    await expect.poll(async () => (await stub.snapshot()).waiters.map((waiter) => waiter.scheduler)).toEqual([name]);
    expect(await scheduler(name).stats()).toMatchObject({ pending: 3, busy: 0, waitingOnNamespace: true });
    expect(await pendingOrder(name)).toEqual(ids);
    // A later arrival queues behind the refused ones.
    const later = crypto.randomUUID();
    await scheduler(name).submit([dispatchMessage(namespace, "fn", later)]);
    await expect.poll(async () => (await scheduler(name).stats()).waitingOnNamespace).toBe(true);
    expect(await pendingOrder(name)).toEqual([...ids, later]);
    expect((await stub.snapshot()).leases.every((lease) => lease.scheduler === `${namespace}/hog`)).toBe(true);

    // One container of the namespace ends: the waiting function is woken and drains its queue
    // (these events have no event object, so each instance gives its slot and lease straight back).
    await stub.release(["hog-0"]);
    await expect.poll(async () => (await scheduler(name).stats()).pending, { timeout: 5_000 }).toBe(0);
    await expect.poll(async () => (await scheduler(name).stats()).busy, { timeout: 5_000 }).toBe(0);
    const after = await stub.snapshot();
    expect(after.leases).toHaveLength(cap - 1);
    expect(after.leases.every((lease) => lease.scheduler === `${namespace}/hog`)).toBe(true);
  });

  it("reports which RequestIds its slots hold (the lease audit's question)", async () => {
    const name = `${uniqueNamespace("held")}/fn`;
    await runInDurableObject(scheduler(name), async (_instance, state) => {
      state.storage.sql.exec(
        "INSERT INTO slots (slot, request_id, assigned_at, last_used_at) VALUES (0, 'a', 1, 1), (1, NULL, NULL, 1)",
      );
    });
    expect(await scheduler(name).heldRequestIds(["a", "b"])).toEqual(["a"]);
  });
});
