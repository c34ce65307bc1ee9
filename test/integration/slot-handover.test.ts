// The hand-over of a released slot to its next waiting event (FunctionSchedulerObject.release,
// ARCHITECTURE.md "Scaling"): a kept container's busy namespace lease passes to the next event
// without a quota call, and the release answers that event so that the instance starts it without
// a runEvent call. The quota's lease table shows which calls were made: an acquire would name the
// new event, a markIdle would idle the lease.
import { env, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { DispatchMessage } from "../../worker/events/dispatch-message";
import type { InstanceContainer } from "../../worker/instances/instance-container";
import { installSlotStarterForTests, type SlotStart } from "../../worker/scheduling/function-scheduler-object";
import { namespaceQuotaStub, PLATFORM_CAPACITY_NAME, schedulerStub } from "../../worker/shared/objects";

/** Starts the schedulers handed to instances (the fake runner below), in order. */
let starts: SlotStart[] = [];

beforeEach(async () => {
  starts = [];
  installSlotStarterForTests(async (_env, _instance, start) => {
    starts.push(start);
    return { started: true };
  });
  // The platform-wide cap is shared by the whole file's namespaces: start each test with it empty.
  const platform = env.PLATFORM_CAPACITY.get(env.PLATFORM_CAPACITY.idFromName(PLATFORM_CAPACITY_NAME));
  await runInDurableObject(platform, async (_object, state) => {
    state.storage.sql.exec("DELETE FROM units");
    state.storage.sql.exec("DELETE FROM waiters");
  });
});

afterEach(() => installSlotStarterForTests(undefined));

/** A function of its own namespace, one slot: its events queue behind each other on slot 0. */
function oneSlotFunction(prefix: string) {
  const namespace = `${prefix}${crypto.randomUUID().slice(0, 8)}`;
  const name = `${namespace}/fn`;
  const message = (requestId: string): DispatchMessage => ({
    requestId,
    namespace,
    functionName: "fn",
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    invokedAt: Date.now(),
    maxConcurrency: 1,
    memoryMb: 128,
  });
  return { namespace, name, message, scheduler: schedulerStub(env, name), quota: namespaceQuotaStub(env, namespace) };
}

/** The quota's leases as `instance=requestId` (`idle` for an idle one). */
async function leaseStates(quota: ReturnType<typeof namespaceQuotaStub>): Promise<string[]> {
  return (await quota.snapshot()).leases.map((lease) => `${lease.instance}=${lease.requestId ?? "idle"}`).sort();
}

/** The starts of the scheduler handed to the fake runner, as `requestId@leaseToken`. */
function startedBy(schedulerName: string): () => string[] {
  return () =>
    starts
      .filter((start) => start.schedulerName === schedulerName)
      .map((start) => `${start.requestId}@${start.leaseToken}`);
}

describe("a released slot handed to its next event", () => {
  it("passes the busy lease on and answers the next event to the releasing instance: no quota call, no runEvent", async () => {
    const fn = oneSlotFunction("hand");
    const started = startedBy(fn.name);
    await fn.scheduler.submit([fn.message("a"), fn.message("b"), fn.message("c")]);
    await expect.poll(started).toEqual(["a@a"]);
    expect(await leaseStates(fn.quota)).toEqual([`${fn.name}#0=a`]);

    // The instance kept its container and asks for the next event: b is answered, not started here.
    const answer = await fn.scheduler.release(0, "a", { leaseKept: true, takeNext: true });
    expect(answer).toEqual({ next: { requestId: "b", schedulerName: fn.name, slot: 0, leaseToken: "a" } });
    expect(started()).toEqual(["a@a"]);
    // The lease still names the run's first event: no acquire (it would name b), no markIdle.
    expect(await leaseStates(fn.quota)).toEqual([`${fn.name}#0=a`]);
    expect(await fn.scheduler.stats()).toMatchObject({ busy: 1, pending: 1 });

    // Without takeNext the scheduler starts the next event itself, still under the same lease.
    expect(await fn.scheduler.release(0, "b", { leaseKept: true })).toEqual({});
    await expect.poll(started).toEqual(["a@a", "c@a"]);
    expect(await leaseStates(fn.quota)).toEqual([`${fn.name}#0=a`]);

    // Nothing waits: the lease turns idle under its token, and the next arrival acquires it anew.
    expect(await fn.scheduler.release(0, "c", { leaseKept: true, takeNext: true })).toEqual({});
    expect(await leaseStates(fn.quota)).toEqual([`${fn.name}#0=idle`]);
    await fn.scheduler.submit([fn.message("d")]);
    await expect.poll(started).toEqual(["a@a", "c@a", "d@d"]);
    expect(await leaseStates(fn.quota)).toEqual([`${fn.name}#0=d`]);
  });

  it("asks the quota again when the container went with its lease", async () => {
    const fn = oneSlotFunction("gone");
    const started = startedBy(fn.name);
    await fn.scheduler.submit([fn.message("a"), fn.message("b")]);
    await expect.poll(started).toEqual(["a@a"]);
    // The instance destroyed its container and gave the lease back (an abnormal end).
    expect(await fn.quota.releaseInstance(`${fn.name}#0`, "a")).toEqual({ released: true });

    expect(await fn.scheduler.release(0, "a", { leaseKept: false, takeNext: true })).toEqual({});
    await expect.poll(started).toEqual(["a@a", "b@b"]);
    expect(await leaseStates(fn.quota)).toEqual([`${fn.name}#0=b`]);
  });

  it("asks the quota again after a release that does not say whether the lease was kept", async () => {
    const fn = oneSlotFunction("unsaid");
    const started = startedBy(fn.name);
    await fn.scheduler.submit([fn.message("a"), fn.message("b")]);
    await expect.poll(started).toEqual(["a@a"]);
    // The scheduler's own audit, or an older instance: the quota is asked, and grants the busy lease.
    expect(await fn.scheduler.release(0, "a")).toEqual({});
    await expect.poll(started).toEqual(["a@a", "b@b"]);
    expect(await leaseStates(fn.quota)).toEqual([`${fn.name}#0=b`]);
  });

  it("answers nothing to a late or repeated release and leaves the slot's event running", async () => {
    const fn = oneSlotFunction("late");
    const started = startedBy(fn.name);
    await fn.scheduler.submit([fn.message("a"), fn.message("b"), fn.message("c")]);
    await expect.poll(started).toEqual(["a@a"]);
    expect((await fn.scheduler.release(0, "a", { leaseKept: true, takeNext: true })).next?.requestId).toBe("b");
    // a's release again (a redelivered call): b keeps the slot, c keeps waiting.
    expect(await fn.scheduler.release(0, "a", { leaseKept: true, takeNext: true, claimRefused: true })).toEqual({});
    expect(await fn.scheduler.stats()).toMatchObject({ busy: 1, pending: 1, claimsRefused: 0 });
    expect(await leaseStates(fn.quota)).toEqual([`${fn.name}#0=a`]);
  });

  it("counts a release of a refused claim in claimsRefused", async () => {
    const fn = oneSlotFunction("refused");
    const started = startedBy(fn.name);
    await fn.scheduler.submit([fn.message("a")]);
    await expect.poll(started).toEqual(["a@a"]);
    await fn.scheduler.release(0, "a", { leaseKept: true, takeNext: true, claimRefused: true });
    expect(await fn.scheduler.stats()).toMatchObject({ busy: 0, claimsRefused: 1 });
  });
});

describe("an instance running a handed-over event", () => {
  it("gives the slot's lease back under its token when the event's abnormal end destroys the container", async () => {
    const fn = oneSlotFunction("token");
    const instanceName = `${fn.name}#0`;
    // The lease was granted to the slot's first event, then handed to "second", which runs here.
    await fn.quota.acquire(fn.name, [{ requestId: "first", slot: 0 }], 5);
    const instance = env.INSTANCE.get(env.INSTANCE.idFromName(instanceName));
    await runInDurableObject(instance, async (object: InstanceContainer) => {
      const internals = object as unknown as { current: unknown; owner: unknown };
      internals.current = { requestId: "second", schedulerName: fn.name, slot: 0, lastSeq: 0, leaseToken: "first" };
      internals.owner = { schedulerName: fn.name, slot: 0 };
    });
    await instance.repossess("second");
    expect(await leaseStates(fn.quota)).toEqual([]);
  });
});
