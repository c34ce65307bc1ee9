import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import type { DispatchMessage } from "../../worker/events/dispatch-message";
import type { InstanceContainer } from "../../worker/instances/instance-container";
import {
  DEFAULT_NAMESPACE_MAX_CONTAINERS,
  EVICTION_TIMEOUT_MS,
  LEASE_AUDIT_MIN_AGE_MS,
  MAX_LEASES_PER_ACQUIRE,
  parseNamespaceMaxContainers,
  WAKE_RESERVATION_MS,
} from "../../worker/scheduling/namespace-quota-object";
import { PLATFORM_CAPACITY_NAME } from "../../worker/shared/objects";

/**
 * Every namespace's new containers also count against the platform-wide cap (50, shared by the
 * whole file): each test starts with the platform empty, so that only its own namespace's cap acts.
 */
beforeEach(async () => {
  const platform = env.PLATFORM_CAPACITY.get(env.PLATFORM_CAPACITY.idFromName(PLATFORM_CAPACITY_NAME));
  await runInDurableObject(platform, async (_object, state) => {
    state.storage.sql.exec("DELETE FROM units");
    state.storage.sql.exec("DELETE FROM waiters");
  });
});

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

function instance(name: string) {
  return env.INSTANCE.get(env.INSTANCE.idFromName(name));
}

/** The private state of an instance a test sets up (an event running, or an eviction under way). */
interface InstanceInternals {
  current: { requestId: string; schedulerName: string; slot: number; lastSeq: number } | undefined;
  evicting: boolean;
  owner: { schedulerName: string; slot: number } | undefined;
}

/** Makes the instance `scheduler#slot` read as running requestId (no container: none start here). */
async function setRunning(schedulerName: string, slot: number, requestId: string | undefined): Promise<void> {
  await runInDurableObject(instance(`${schedulerName}#${slot}`), async (object: InstanceContainer) => {
    const internals = object as unknown as InstanceInternals;
    internals.current = requestId === undefined ? undefined : { requestId, schedulerName, slot, lastSeq: 0 };
    internals.owner = { schedulerName, slot };
  });
}

/** The leases of a quota, as `instance=requestId` (`idle` for an idle one), sorted. */
async function leaseStates(stub: ReturnType<typeof quota>): Promise<string[]> {
  return (await stub.snapshot()).leases.map((lease) => `${lease.instance}=${lease.requestId ?? "idle"}`).sort();
}

/**
 * Replaces an object's INSTANCE binding with one whose instance `flakyName` answers the given
 * method by throwing the first `failures` times, then as the real instance would.
 */
async function flakyInstances(
  stub: DurableObjectStub,
  method: "currentRequestId" | "leaseCheck",
  flakyName: string,
  failures: number,
): Promise<void> {
  let left = failures;
  const names = new Map<string, string>();
  await runInDurableObject(stub, async (object) => {
    const holder = object as unknown as { env: Env };
    const real = holder.env.INSTANCE;
    const flaky = {
      idFromName: (name: string) => {
        const id = real.idFromName(name);
        names.set(id.toString(), name);
        return id;
      },
      get: (id: DurableObjectId) => {
        const target = real.get(id);
        const isFlaky = names.get(id.toString()) === flakyName;
        return new Proxy(target, {
          get(proxied, property) {
            if (property === method && isFlaky && left > 0) {
              left -= 1;
              return () => Promise.reject(new Error("transient RPC failure"));
            }
            // Every other property of a stub is a remote method: call it on the real stub.
            return (...args: unknown[]) =>
              Reflect.apply(Reflect.get(proxied, property) as (...args: unknown[]) => unknown, proxied, args);
          },
        });
      },
    };
    holder.env = { ...holder.env, INSTANCE: flaky as unknown as Env["INSTANCE"] };
  });
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
  it("grants one lease per instance slot up to the namespace's cap and refuses the rest, recording the scheduler as waiting", async () => {
    const stub = quota(uniqueNamespace("grant"));
    const answer = await stub.acquire("ns/fn", leases("r", 3), 2);
    expect(answer).toEqual({ granted: ["r-0", "r-1"], refused: ["r-2"] });
    const snapshot = await stub.snapshot();
    expect(snapshot.limit).toBe(2);
    expect(await leaseStates(stub)).toEqual(["ns/fn#0=r-0", "ns/fn#1=r-1"]);
    expect(snapshot.waiters).toEqual([{ scheduler: "ns/fn", wokenAt: null }]);
  });

  it("grants a slot it already leased again without a second lease: a redelivery, and a warm reuse at the cap", async () => {
    const stub = quota(uniqueNamespace("idem"));
    expect((await stub.acquire("ns/fn", leases("r", 2), 2)).granted).toEqual(["r-0", "r-1"]);
    expect(await stub.acquire("ns/fn", leases("r", 2), 2)).toEqual({ granted: ["r-0", "r-1"], refused: [] });
    // The event of slot 0 ends; its warm container takes the next event with no new grant.
    expect(await stub.markIdle("ns/fn", 0, "r-0")).toEqual({ idle: true });
    expect(await stub.acquire("ns/fn", [{ requestId: "next", slot: 0 }], 2)).toEqual({
      granted: ["next"],
      refused: [],
    });
    expect(await leaseStates(stub)).toEqual(["ns/fn#0=next", "ns/fn#1=r-1"]);
    expect((await stub.snapshot()).waiters).toEqual([]);
  });

  it("keeps counting a slot whose event ended (its container stays warm) until its instance destroys it", async () => {
    const stub = quota(uniqueNamespace("idle"));
    await stub.acquire("ns/f1", leases("a", 2), 2);
    await stub.markIdle("ns/f1", 0, "a-0");
    await stub.markIdle("ns/f1", 1, "a-1");
    expect(await leaseStates(stub)).toEqual(["ns/f1#0=idle", "ns/f1#1=idle"]);
    // A late idle for an event the slot no longer runs changes nothing.
    await stub.acquire("ns/f1", [{ requestId: "b", slot: 0 }], 2);
    expect(await stub.markIdle("ns/f1", 0, "a-0")).toEqual({ idle: false });
    expect(await leaseStates(stub)).toEqual(["ns/f1#0=b", "ns/f1#1=idle"]);
  });

  it("evicts the namespace's idle container for a new slot at the cap, rather than exceeding the cap", async () => {
    const namespace = uniqueNamespace("evict");
    const stub = quota(namespace);
    const f1 = `${namespace}/f1`;
    await stub.acquire(f1, leases("a", 2), 2);
    await stub.markIdle(f1, 1, "a-1");
    const answer = await stub.acquire(`${namespace}/f2`, leases("b", 1), 2);
    expect(answer).toEqual({ granted: ["b-0"], refused: [] });
    expect(await leaseStates(stub)).toEqual([`${f1}#0=a-0`, `${namespace}/f2#0=b-0`].sort());
    expect((await stub.snapshot()).waiters).toEqual([]);
  });

  it("never evicts a busy lease: with every container busy the acquire waits", async () => {
    const namespace = uniqueNamespace("busy");
    const stub = quota(namespace);
    await stub.acquire(`${namespace}/f1`, leases("a", 2), 2);
    expect(await stub.acquire(`${namespace}/f2`, leases("b", 1), 2)).toEqual({ granted: [], refused: ["b-0"] });
    expect(await leaseStates(stub)).toEqual([`${namespace}/f1#0=a-0`, `${namespace}/f1#1=a-1`]);
    expect((await stub.snapshot()).waiters.map((waiter) => waiter.scheduler)).toEqual([`${namespace}/f2`]);
  });

  it("does not evict an idle lease whose instance took an event meanwhile: the acquire waits, the lease stays", async () => {
    const namespace = uniqueNamespace("raced");
    const stub = quota(namespace);
    const f1 = `${namespace}/f1`;
    await stub.acquire(f1, leases("a", 1), 1);
    await stub.markIdle(f1, 0, "a-0");
    await setRunning(f1, 0, "arrived");
    expect(await stub.acquire(`${namespace}/f2`, leases("b", 1), 1)).toEqual({ granted: [], refused: ["b-0"] });
    const snapshot = await stub.snapshot();
    expect(snapshot.leases).toMatchObject([{ instance: `${f1}#0`, requestId: null, evicting: false }]);
    await setRunning(f1, 0, undefined);
  });

  it("refuses to reuse a slot while its idle container is being evicted", async () => {
    const namespace = uniqueNamespace("evicting");
    const stub = quota(namespace);
    const f1 = `${namespace}/f1`;
    await stub.acquire(f1, leases("a", 1), 1);
    await stub.markIdle(f1, 0, "a-0");
    await runInDurableObject(stub, async (_object, state) => {
      state.storage.sql.exec("UPDATE slot_leases SET evicting_at = ?", Date.now());
    });
    expect(await stub.acquire(f1, [{ requestId: "again", slot: 0 }], 1)).toEqual({ granted: [], refused: ["again"] });
    // A mark left by an eviction that never answered lapses.
    await runInDurableObject(stub, async (_object, state) => {
      state.storage.sql.exec("UPDATE slot_leases SET evicting_at = ?", Date.now() - EVICTION_TIMEOUT_MS - 1);
    });
    expect(await stub.acquire(f1, [{ requestId: "again", slot: 0 }], 1)).toEqual({ granted: ["again"], refused: [] });
  });

  it("gives a lease back when the instance destroys its container, but keeps one busy with a newer event", async () => {
    const stub = quota(uniqueNamespace("release"));
    await stub.acquire("ns/fn", leases("r", 2), 2);
    // Abnormal end of r-0: the container is gone with it.
    expect(await stub.releaseInstance("ns/fn#0", "r-0")).toEqual({ released: true });
    // Idle timeout of slot 1, which took a new event meanwhile: the new event keeps the lease.
    await stub.acquire("ns/fn", [{ requestId: "newer", slot: 1 }], 2);
    expect(await stub.releaseInstance("ns/fn#1")).toEqual({ released: false });
    await stub.markIdle("ns/fn", 1, "newer");
    expect(await stub.releaseInstance("ns/fn#1")).toEqual({ released: true });
    expect(await stub.releaseInstance("ns/fn#1")).toEqual({ released: false });
    expect((await stub.snapshot()).leases).toEqual([]);
  });

  it("keeps the room a release frees for the scheduler it woke, ahead of the function that released", async () => {
    const stub = quota(uniqueNamespace("reserve"));
    await stub.acquire("ns/hog", leases("h", 1), 1);
    expect((await stub.acquire("ns/first", leases("f", 1), 1)).refused).toEqual(["f-0"]);
    expect((await stub.acquire("ns/second", leases("s", 1), 1)).refused).toEqual(["s-0"]);
    // The state right after the hog's container went and the oldest waiter was woken.
    await runInDurableObject(stub, async (_instance, state) => {
      state.storage.sql.exec("DELETE FROM slot_leases WHERE instance = 'ns/hog#0'");
      state.storage.sql.exec("UPDATE waiters SET woken_at = ? WHERE scheduler = 'ns/first'", Date.now());
    });

    expect(await stub.acquire("ns/hog", leases("h2", 1), 1)).toEqual({ granted: [], refused: ["h2-0"] });
    expect(await stub.acquire("ns/first", leases("f", 1), 1)).toEqual({ granted: ["f-0"], refused: [] });
    const after = await stub.snapshot();
    expect(after.leases.map((lease) => lease.scheduler)).toEqual(["ns/first"]);
    // Served schedulers leave the line; the refused hog queues behind the one still waiting.
    expect(after.waiters.map((waiter) => waiter.scheduler)).toEqual(["ns/second", "ns/hog"]);
  });

  it("does not let a function reuse its warm container while a woken function of the namespace needs the room", async () => {
    const namespace = uniqueNamespace("roundrobin");
    const stub = quota(namespace);
    const hog = `${namespace}/hog`;
    const other = `${namespace}/other`;
    await stub.acquire(hog, leases("h", 1), 1);
    expect((await stub.acquire(other, leases("o", 1), 1)).refused).toEqual(["o-0"]);
    // The state right after the hog's event ended: its lease idle, the waiting function woken.
    await runInDurableObject(stub, async (_object, state) => {
      state.storage.sql.exec("UPDATE slot_leases SET request_id = NULL");
      state.storage.sql.exec("UPDATE waiters SET woken_at = ?", Date.now());
    });
    expect(await stub.acquire(hog, [{ requestId: "h-next", slot: 0 }], 1)).toEqual({
      granted: [],
      refused: ["h-next"],
    });
    // The woken function evicts the hog's idle container and takes its place.
    expect(await stub.acquire(other, leases("o", 1), 1)).toEqual({ granted: ["o-0"], refused: [] });
    expect(await leaseStates(stub)).toEqual([`${other}#0=o-0`]);
    expect((await stub.snapshot()).waiters.map((waiter) => waiter.scheduler)).toEqual([hog]);
  });

  it("lets a wake reservation that was not used lapse, so the room is not stranded", async () => {
    const stub = quota(uniqueNamespace("lapse"));
    await stub.acquire("ns/hog", leases("h", 1), 1);
    await stub.acquire("ns/sleepy", leases("s", 1), 1);
    await runInDurableObject(stub, async (_instance, state) => {
      state.storage.sql.exec("DELETE FROM slot_leases WHERE instance = 'ns/hog#0'");
      state.storage.sql.exec("UPDATE waiters SET woken_at = ?", Date.now() - WAKE_RESERVATION_MS - 1);
    });
    expect(await stub.acquire("ns/hog", leases("h3", 1), 1)).toEqual({ granted: ["h3-0"], refused: [] });
  });

  it("wakes waiting schedulers on release, passing the room on from one that has nothing to start", async () => {
    const namespace = uniqueNamespace("wake");
    const cap = parseNamespaceMaxContainers(env.NAMESPACE_MAX_CONTAINERS);
    const stub = quota(namespace);
    const hog = `${namespace}/hog`;
    await stub.acquire(hog, leases("hog", cap), cap);
    // The oldest waiter has no event left to start when it is woken (a scheduler with no events).
    expect((await stub.acquire(`${namespace}/idle`, leases("i", 1), cap)).refused).toEqual(["i-0"]);
    const name = `${namespace}/fn`;
    await scheduler(name).submit([dispatchMessage(namespace, "fn", crypto.randomUUID())]);
    await expect
      .poll(async () => (await stub.snapshot()).waiters.map((waiter) => waiter.scheduler))
      .toEqual([`${namespace}/idle`, name]);

    await stub.releaseInstance(`${hog}#0`, "hog-0");
    await expect.poll(async () => (await scheduler(name).stats()).pending, { timeout: 3_000 }).toBe(0);
    await expect.poll(async () => (await stub.snapshot()).waiters, { timeout: 3_000 }).toEqual([]);
  });

  it("wakes a waiting scheduler when a lease turns idle, and it starts by evicting that idle container", async () => {
    const namespace = uniqueNamespace("idlewake");
    const cap = parseNamespaceMaxContainers(env.NAMESPACE_MAX_CONTAINERS);
    const stub = quota(namespace);
    const hog = `${namespace}/hog`;
    await stub.acquire(hog, leases("hog", cap), cap);
    const name = `${namespace}/fn`;
    await scheduler(name).submit([dispatchMessage(namespace, "fn", crypto.randomUUID())]);
    await expect.poll(async () => (await stub.snapshot()).waiters.map((waiter) => waiter.scheduler)).toEqual([name]);

    await stub.markIdle(hog, 0, "hog-0");
    await expect.poll(async () => (await scheduler(name).stats()).pending, { timeout: 3_000 }).toBe(0);
    await expect
      .poll(async () => (await stub.snapshot()).leases.some((lease) => lease.instance === `${hog}#0`), {
        timeout: 3_000,
      })
      .toBe(false);
    const after = await stub.snapshot();
    expect(after.leases).toHaveLength(cap);
    expect(after.leases.filter((lease) => lease.scheduler === name)).toHaveLength(1);
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
    expect(await stub.snapshot()).toMatchObject({ leases: [], waiters: [] });
  });

  it("audits leases unchanged for a while: drops those whose instance holds nothing, keeps busy, unanswered and young ones", async () => {
    const namespace = uniqueNamespace("audit");
    const name = `${namespace}/fn`;
    const stub = quota(namespace);
    await stub.acquire(name, leases("r", 4), 10);
    await stub.markIdle(name, 1, "r-1");
    await setRunning(name, 0, "r-0");
    await runInDurableObject(stub, async (_object, state) => {
      state.storage.sql.exec(
        "UPDATE slot_leases SET touched_at = ? WHERE slot IN (0, 1, 2)",
        Date.now() - LEASE_AUDIT_MIN_AGE_MS - 1,
      );
    });
    // Slot 2's instance fails to answer once: its lease stays this time.
    await flakyInstances(stub, "leaseCheck", `${name}#2`, 1);
    await runInDurableObject(stub, async (_object, state) => {
      await state.storage.setAlarm(Date.now() + 60_000);
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    // Slot 0 runs its event; slot 1 (idle, no container) and slot 2 (busy, nothing running) lose
    // theirs unless unanswered; young slot 3 is not asked.
    expect(await leaseStates(stub)).toEqual([`${name}#0=r-0`, `${name}#2=r-2`, `${name}#3=r-3`]);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await leaseStates(stub)).toEqual([`${name}#0=r-0`, `${name}#3=r-3`]);
    await setRunning(name, 0, undefined);
  });
});

describe("InstanceContainer and its namespace lease", () => {
  it("evicts only when idle: refuses while an event runs, and refuses an event while evicting", async () => {
    const name = `${uniqueNamespace("inst")}/fn`;
    await setRunning(name, 0, "running");
    expect(await instance(`${name}#0`).evictIfIdle()).toBe(false);
    await setRunning(name, 0, undefined);
    expect(await instance(`${name}#0`).evictIfIdle()).toBe(true);
    const refusal = await runInDurableObject(instance(`${name}#0`), async (object: InstanceContainer) => {
      const internals = object as unknown as InstanceInternals;
      internals.evicting = true;
      try {
        await object.runEvent({ requestId: "r", schedulerName: name, slot: 0 });
        return "started";
      } catch (error) {
        return String(error);
      } finally {
        internals.evicting = false;
      }
    });
    expect(refusal).toMatch(/destroying its idle container/);
  });

  it("gives its lease back when it destroys its container: at the idle timeout, and at an abnormal end", async () => {
    const namespace = uniqueNamespace("destroy");
    const name = `${namespace}/fn`;
    const stub = quota(namespace);
    await stub.acquire(name, leases("r", 2), 5);
    // Slot 0 idles out.
    await stub.markIdle(name, 0, "r-0");
    await setRunning(name, 0, undefined);
    await runInDurableObject(instance(`${name}#0`), async (_object, state) => {
      await state.storage.setAlarm(Date.now() + 60_000);
    });
    expect(await runDurableObjectAlarm(instance(`${name}#0`))).toBe(true);
    expect(await leaseStates(stub)).toEqual([`${name}#1=r-1`]);
    // Slot 1's event is repossessed (terminate): its container is destroyed and its lease goes.
    await setRunning(name, 1, "r-1");
    await instance(`${name}#1`).repossess("r-1");
    expect(await leaseStates(stub)).toEqual([]);
  });
});

describe("FunctionSchedulerObject under the namespace cap", () => {
  it("keeps events over the cap queued in order, then starts them once the namespace has room", async () => {
    const namespace = uniqueNamespace("sched");
    const cap = parseNamespaceMaxContainers(env.NAMESPACE_MAX_CONTAINERS);
    const stub = quota(namespace);
    const hog = `${namespace}/hog`;
    // Another function of the namespace holds every container, all busy.
    await stub.acquire(hog, leases("hog", cap), cap);

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
    expect((await stub.snapshot()).leases.every((lease) => lease.scheduler === hog)).toBe(true);

    // One container of the namespace is destroyed: the waiting function is woken and drains its
    // queue through one slot (these events have no event object, so each instance gives its slot
    // straight back and the slot's lease turns idle, then is reused).
    await stub.releaseInstance(`${hog}#0`, "hog-0");
    await expect.poll(async () => (await scheduler(name).stats()).pending, { timeout: 5_000 }).toBe(0);
    await expect.poll(async () => (await scheduler(name).stats()).busy, { timeout: 5_000 }).toBe(0);
    const after = await stub.snapshot();
    expect(after.leases).toHaveLength(cap);
    expect(after.leases.filter((lease) => lease.scheduler === name)).toMatchObject([{ requestId: null }]);
  });

  it("keeps a busy slot when its instance fails to answer the audit once, frees it on a clear answer", async () => {
    const namespace = uniqueNamespace("transient");
    const name = `${namespace}/fn`;
    const stub = scheduler(name);
    const old = Date.now() - 60_000;
    await runInDurableObject(stub, async (_object, state) => {
      state.storage.sql.exec("INSERT INTO settings (key, value) VALUES ('name', ?)", name);
      state.storage.sql.exec(
        "INSERT INTO slots (slot, request_id, assigned_at, last_used_at) VALUES (0, 'running', ?, ?)",
        old,
        old,
      );
      await state.storage.setAlarm(Date.now() + 60_000);
    });
    await flakyInstances(stub, "currentRequestId", `${name}#0`, 1);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await stub.stats()).busy).toBe(1);
    // Answered: the instance runs nothing, so the slot is freed (a lost release).
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await stub.stats()).busy).toBe(0);
  });
});
