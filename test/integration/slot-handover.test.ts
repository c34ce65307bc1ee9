// The hand-over of a released slot to its next waiting event (FunctionSchedulerObject.release,
// ARCHITECTURE.md "Scaling"): a kept container's busy namespace lease passes to the next event
// without a quota call, and the release answers that event so that the instance starts it without
// a runEvent call. The quota's lease table shows which calls were made: an acquire would name the
// new event, a markIdle would idle the lease.
import { env, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { DispatchMessage } from "../../worker/events/dispatch-message";
import { IDLE_CONTAINER_MS, type InstanceContainer } from "../../worker/instances/instance-container";
import { RELAY_CHECK_INTERVAL_MS } from "../../worker/instances/instance-execution";
import { installSlotStarterForTests, type SlotStart } from "../../worker/scheduling/function-scheduler-object";
import {
  eventStub,
  instanceName,
  instanceStub,
  namespaceQuotaStub,
  PLATFORM_CAPACITY_NAME,
  schedulerStub,
} from "../../worker/shared/objects";
import { executionOn, installFakeRunners, waitFor } from "../helpers/fake-agent-runner";
import { acceptedEvent, eventView, uniqueFunction } from "../helpers/fake-dispatch";

/** Starts the schedulers handed to instances (the fake runner below), in order. */
let starts: SlotStart[] = [];

beforeEach(async () => {
  // The platform-wide cap is shared by the whole file's namespaces: start each test with it empty.
  const platform = env.PLATFORM_CAPACITY.get(env.PLATFORM_CAPACITY.idFromName(PLATFORM_CAPACITY_NAME));
  await runInDurableObject(platform, async (_object, state) => {
    state.storage.sql.exec("DELETE FROM units");
    state.storage.sql.exec("DELETE FROM waiters");
  });
});

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
  beforeEach(() => {
    starts = [];
    installSlotStarterForTests(async (_env, _instance, start) => {
      starts.push(start);
      return { started: true };
    });
  });

  afterEach(() => installSlotStarterForTests(undefined));

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

describe("a slot's run of events on its instance (fake agent)", () => {
  let fakes: ReturnType<typeof installFakeRunners>;

  beforeEach(() => {
    fakes = installFakeRunners();
  });

  afterEach(() => fakes.uninstall());

  /** The instance's alarm, in ms from now (null: none). */
  async function alarmIn(name: string): Promise<number | null> {
    return runInDurableObject(instanceStub(env, name), async (_object, state) => {
      const at = await state.storage.getAlarm();
      return at === null ? null : at - Date.now();
    });
  }

  it("starts the next event on the warm container under the run's lease, and sets the idle alarm only after the last", async () => {
    const { snapshot, scheduler } = uniqueFunction("run", { maxConcurrency: 1 });
    const quota = namespaceQuotaStub(env, snapshot.namespace);
    const first = await acceptedEvent(snapshot);
    const second = await acceptedEvent(snapshot);
    await schedulerStub(env, scheduler).submit([first.message, second.message]);
    const name = instanceName(scheduler, 0);
    const runner = fakes.of(name);
    (await executionOn(runner, first.requestId)).end({ kind: "returned", result: "1" });

    const next = await executionOn(runner, second.requestId);
    // One container for both; the lease still names the first event (no acquire), and while the
    // second runs the instance's alarm is its relay check, not an idle one.
    expect(runner).toMatchObject({ starts: 1, destroys: 0 });
    expect(await leaseStates(quota)).toEqual([`${name}=${first.requestId}`]);
    expect(await alarmIn(name)).toBeLessThanOrEqual(RELAY_CHECK_INTERVAL_MS);
    expect(await eventView(first.requestId)).toMatchObject({ status: "FINISHED" });

    next.end({ kind: "returned", result: "2" });
    await waitFor(async () => (await eventView(second.requestId)).status === "FINISHED", "the second event to finish");
    await waitFor(async () => (await schedulerStub(env, scheduler).stats()).busy === 0, "the slot to be released");
    await waitFor(async () => (await leaseStates(quota))[0] === `${name}=idle`, "the lease to idle");
    expect(await alarmIn(name)).toBeGreaterThan(IDLE_CONTAINER_MS - 60_000);
    expect(await eventView(second.requestId)).toMatchObject({ coldStart: false, instanceId: name });
    expect(await schedulerStub(env, scheduler).stats()).toMatchObject({ claimsRefused: 0, slots: 1 });
  });

  it("hands the slot on past events whose claim is refused, and sets the idle alarm when the run ends on one", async () => {
    const { snapshot, scheduler } = uniqueFunction("skip", { maxConcurrency: 1 });
    const quota = namespaceQuotaStub(env, snapshot.namespace);
    const first = await acceptedEvent(snapshot);
    const middle = await acceptedEvent(snapshot);
    const third = await acceptedEvent(snapshot);
    const last = await acceptedEvent(snapshot);
    // Two events are terminated while they wait: their claims are refused when their turns come.
    for (const ended of [middle, last]) {
      expect((await eventStub(env, ended.requestId).terminate(false)).ok).toBe(true);
    }
    await schedulerStub(env, scheduler).submit([first.message, middle.message, third.message, last.message]);
    const name = instanceName(scheduler, 0);
    const runner = fakes.of(name);
    (await executionOn(runner, first.requestId)).end({ kind: "returned", result: "1" });
    (await executionOn(runner, third.requestId)).end({ kind: "returned", result: "3" });
    await waitFor(async () => (await eventView(third.requestId)).status === "FINISHED", "the third event to finish");
    await waitFor(
      async () => (await schedulerStub(env, scheduler).stats()).claimsRefused === 2,
      "both refusals to be counted",
    );
    await waitFor(async () => (await leaseStates(quota))[0] === `${name}=idle`, "the lease to idle");
    expect(runner.executions.has(middle.requestId) || runner.executions.has(last.requestId)).toBe(false);
    expect(runner).toMatchObject({ starts: 1, destroys: 0 });
    expect(await schedulerStub(env, scheduler).stats()).toMatchObject({ busy: 0, pending: 0 });
    // The run ended on a refused claim: it set the idle alarm (the third's relay check is gone).
    expect(await alarmIn(name)).toBeGreaterThan(IDLE_CONTAINER_MS - 60_000);
  });

  it("hands the next event to the warm container without asking its health, and checks it when the hand-over fails", async () => {
    const { snapshot, scheduler } = uniqueFunction("health", { maxConcurrency: 1 });
    const events = [await acceptedEvent(snapshot), await acceptedEvent(snapshot), await acceptedEvent(snapshot)];
    await schedulerStub(env, scheduler).submit(events.map((event) => event.message));
    const runner = fakes.of(instanceName(scheduler, 0));
    const [first, second, third] = events.map((event) => event.requestId) as [string, string, string];
    (await executionOn(runner, first)).end({ kind: "returned", result: "1" });
    // The second starts on the first's end record: the agent is asked nothing but the hand-over.
    const two = await executionOn(runner, second);
    expect(runner.healthChecks).toBe(1);
    // The third's hand-over fails once (the agent did not answer): the container is checked, then
    // the event is handed over again on it, and runs.
    runner.failStarts = 1;
    two.end({ kind: "returned", result: "2" });
    (await executionOn(runner, third)).end({ kind: "returned", result: "3" });
    await waitFor(async () => (await eventView(third)).status === "FINISHED", "the third event to finish");
    expect(runner).toMatchObject({ healthChecks: 2, failStarts: 0, starts: 1, destroys: 0 });
    for (const requestId of [second, third]) {
      expect(await eventView(requestId)).toMatchObject({ status: "FINISHED", coldStart: false });
    }
  });

  it("keeps a started event's alarm, refuses another event while claiming one, and lets an idle lease be evicted during a release", async () => {
    const { scheduler } = uniqueFunction("guards", { maxConcurrency: 1 });
    const name = instanceName(scheduler, 0);
    const stub = instanceStub(env, name);
    const outcome = await runInDurableObject(stub, async (object: InstanceContainer, state) => {
      const internals = object as unknown as {
        current: unknown;
        startingId: string | undefined;
        handingOver: number;
        setIdleAlarmIfIdle: (ownStarts: number) => Promise<void>;
      };
      // An event started here while an end's release travelled: its alarm stays.
      internals.current = { requestId: "running", schedulerName: scheduler, slot: 0, lastSeq: 0 };
      const relayCheck = Date.now() + RELAY_CHECK_INTERVAL_MS;
      await state.storage.setAlarm(relayCheck);
      await internals.setIdleAlarmIfIdle(0);
      const kept = (await state.storage.getAlarm()) === relayCheck;
      internals.current = undefined;
      await internals.setIdleAlarmIfIdle(0);
      const idled = ((await state.storage.getAlarm()) ?? 0) > Date.now() + IDLE_CONTAINER_MS - 60_000;
      // While one event is being claimed, another is refused and the same one is not claimed twice.
      internals.startingId = "claiming";
      const refusal = await object
        .runEvent({ requestId: "other", schedulerName: scheduler, slot: 0 })
        .then(() => "started")
        .catch((error: unknown) => String(error));
      const repeat = await object.runEvent({ requestId: "claiming", schedulerName: scheduler, slot: 0 });
      const audited = await object.currentRequestId();
      internals.startingId = undefined;
      // A release in flight does not keep an idle lease's container from its eviction.
      internals.handingOver = 1;
      const evicted = await object.evictIfIdle();
      internals.handingOver = 0;
      return { kept, idled, refusal, repeat, audited, evicted };
    });
    expect(outcome).toMatchObject({
      kept: true,
      idled: true,
      repeat: { started: true },
      audited: "claiming",
      evicted: true,
    });
    expect(outcome.refusal).toMatch(/busy starting claiming/);
  });
});
