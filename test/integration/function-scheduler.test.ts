// FunctionSchedulerObject in the Workers pool, with the real event, quota and instance objects and
// a fake runner in place of each instance's container (see test/helpers/fake-agent-runner.ts):
// warm-first assignment, the function's concurrency cap, repossession and deadlines.
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { TIMEOUT_BACKSTOP_GRACE_MS } from "../../worker/events/async-event-object";
import { STATUS_CODE } from "../../worker/events/event-machine";
import type { FunctionSnapshot } from "../../worker/functions/model";
import type { InstanceContainer } from "../../worker/instances/instance-container";
import { eventStub, instanceName, instanceStub, schedulerStub } from "../../worker/shared/objects";
import { executionOn, type FakeExecution, installFakeRunners, waitFor } from "../helpers/fake-agent-runner";
import { acceptedEvent, eventView, uniqueFunction } from "../helpers/fake-dispatch";
import { emptyPlatformCapacity } from "../helpers/platform-capacity";

/** Age past which the scheduler's audit looks at a busy slot (its AUDIT_MIN_AGE_MS, 30 s). */
const AUDIT_AGE_MS = 30_000;

let fakes: ReturnType<typeof installFakeRunners>;

beforeEach(async () => {
  fakes = installFakeRunners();
  // The platform-wide cap is shared by every namespace of the test run: start each test with room.
  await emptyPlatformCapacity();
});

afterEach(() => {
  vi.useRealTimers();
  fakes.uninstall();
});

/** A function of its own (its own namespace and scheduler), with `count` accepted events. */
async function functionWithEvents(count: number, overrides: Partial<FunctionSnapshot> = {}) {
  const { snapshot, scheduler } = uniqueFunction("sched", overrides);
  const events = [];
  for (let index = 0; index < count; index++) events.push(await acceptedEvent(snapshot, { index }));
  return { snapshot, scheduler, stub: schedulerStub(env, scheduler), events };
}

/** The fake runner of the function's slot. */
function slotRunner(scheduler: string, slot: number) {
  return fakes.of(instanceName(scheduler, slot));
}

/** Waits until the event's public status is `status`, and answers its view. */
async function viewOnce(requestId: string, status: string) {
  await waitFor(async () => (await eventView(requestId)).status === status, `event ${requestId} to be ${status}`);
  return eventView(requestId);
}

/** Waits until the scheduler counts `busy` busy slots and `pending` waiting events. */
async function settles(stub: ReturnType<typeof schedulerStub>, busy: number, pending: number) {
  await waitFor(async () => {
    const stats = await stub.stats();
    return stats.busy === busy && stats.pending === pending;
  }, `the scheduler to hold ${busy} busy slots and ${pending} waiting events`);
}

/** Ends an execution normally and waits for its event to finish. */
async function endNormally(execution: FakeExecution) {
  execution.end({ kind: "returned", result: "done" });
  await viewOnce(execution.requestId, "FINISHED");
}

describe("FunctionSchedulerObject with fake runners", () => {
  it("hands a new event to the idle warm slot before opening a new slot", async () => {
    const { scheduler, stub, events } = await functionWithEvents(2, { maxConcurrency: 2 });
    const [first, second] = events;
    if (!first || !second) throw new Error("two events expected");
    const warm = slotRunner(scheduler, 0);

    await stub.submit([first.message]);
    await endNormally(await executionOn(warm, first.requestId));
    await settles(stub, 0, 0);

    // Room for a second slot, but the idle slot 0 still has its container: it takes the event.
    await stub.submit([second.message]);
    const execution = await executionOn(warm, second.requestId);
    expect(await viewOnce(second.requestId, "RUNNING")).toMatchObject({
      instanceId: instanceName(scheduler, 0),
      coldStart: false,
    });
    expect(warm.starts).toBe(1);
    expect(slotRunner(scheduler, 1).starts).toBe(0);
    expect((await stub.stats()).slots).toBe(1);
    await endNormally(execution);
    await settles(stub, 0, 0);
  });

  it("keeps events beyond the function's concurrency queued, and starts the next as one ends", async () => {
    const { scheduler, stub, events } = await functionWithEvents(3, { maxConcurrency: 2 });
    await stub.submit(events.map((event) => event.message));

    await settles(stub, 2, 1);
    const first = await executionOn(slotRunner(scheduler, 0), events[0]?.requestId ?? "");
    const second = await executionOn(slotRunner(scheduler, 1), events[1]?.requestId ?? "");
    const third = events[2]?.requestId ?? "";
    expect((await eventView(third)).phase).toBe("queued");
    expect(slotRunner(scheduler, 2).starts).toBe(0);
    expect((await stub.stats()).slots).toBe(2);

    // One ends: the waiting event takes its slot (warm), never a third one.
    await endNormally(second);
    const last = await executionOn(slotRunner(scheduler, 1), third);
    await settles(stub, 2, 0);
    expect((await stub.stats()).slots).toBe(2);

    await endNormally(first);
    await endNormally(last);
    await settles(stub, 0, 0);
  });

  it("ends an execution past the function's timeout with the timeout outcome when the instance's alarm fires", async () => {
    const { scheduler, stub, events, snapshot } = await functionWithEvents(2, {
      maxConcurrency: 1,
      timeoutSeconds: 60,
    });
    const [timedOut, next] = events;
    if (!timedOut || !next) throw new Error("two events expected");
    await stub.submit(events.map((event) => event.message));
    const runner = slotRunner(scheduler, 0);
    await executionOn(runner, timedOut.requestId);
    const running = await viewOnce(timedOut.requestId, "RUNNING");
    const deadline = Date.parse(running.startedAt ?? "") + snapshot.timeoutSeconds * 1000;
    const instance = instanceStub(env, instanceName(scheduler, 0));

    // Just before the deadline the alarm leaves it running.
    vi.useFakeTimers({ toFake: ["Date"], now: deadline - 1 });
    expect(await runDurableObjectAlarm(instance)).toBe(true);
    expect((await eventView(timedOut.requestId)).status).toBe("RUNNING");

    // At the deadline it ends it: timeout, and the container is not reused.
    vi.useFakeTimers({ toFake: ["Date"], now: deadline });
    expect(await runDurableObjectAlarm(instance)).toBe(true);
    vi.useRealTimers();
    expect(await viewOnce(timedOut.requestId, "FAILED")).toMatchObject({
      statusCode: STATUS_CODE.TIMEOUT,
      errorMessage: `Invocation timed out after ${snapshot.timeoutSeconds} s`,
    });
    expect(runner.destroys).toBe(1);

    // The freed slot runs the waiting event on a fresh container.
    const execution = await executionOn(runner, next.requestId);
    expect(runner.starts).toBe(2);
    await endNormally(execution);
    await settles(stub, 0, 0);
  });

  it("frees the slot of an event its own object repossessed (the instance went silent), for the next event on a fresh container", async () => {
    const { scheduler, stub, events, snapshot } = await functionWithEvents(2, {
      maxConcurrency: 1,
      timeoutSeconds: 60,
    });
    const [silent, next] = events;
    if (!silent || !next) throw new Error("two events expected");
    await stub.submit(events.map((event) => event.message));
    const runner = slotRunner(scheduler, 0);
    await executionOn(runner, silent.requestId);
    const running = await viewOnce(silent.requestId, "RUNNING");
    await settles(stub, 1, 1);

    // The instance never reports the end: the event's backstop ends it and repossesses the instance.
    const backstop = Date.parse(running.startedAt ?? "") + snapshot.timeoutSeconds * 1000 + TIMEOUT_BACKSTOP_GRACE_MS;
    vi.useFakeTimers({ toFake: ["Date"], now: backstop });
    expect(await runDurableObjectAlarm(eventStub(env, silent.requestId))).toBe(true);
    vi.useRealTimers();
    expect((await eventView(silent.requestId)).statusCode).toBe(STATUS_CODE.TIMEOUT);
    expect(runner.destroys).toBe(1);

    const execution = await executionOn(runner, next.requestId);
    expect(runner.starts).toBe(2);
    await endNormally(execution);
    await settles(stub, 0, 0);
  });

  it("audits busy slots: frees one whose instance lost its event, keeps one whose instance does not answer", async () => {
    const { scheduler, stub, events } = await functionWithEvents(2, { maxConcurrency: 1 });
    const [lost, next] = events;
    if (!lost || !next) throw new Error("two events expected");
    await stub.submit(events.map((event) => event.message));
    const runner = slotRunner(scheduler, 0);
    const execution = await executionOn(runner, lost.requestId);
    await viewOnce(lost.requestId, "RUNNING");
    await settles(stub, 1, 1);
    const audit = Date.now() + AUDIT_AGE_MS;

    // An instance that does not answer still holds its event: the slot stays busy.
    await unansweredInstances(stub, instanceName(scheduler, 0));
    vi.useFakeTimers({ toFake: ["Date"], now: audit });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    vi.useRealTimers();
    expect(await stub.stats()).toMatchObject({ busy: 1, pending: 1 });

    // The instance answers again, without the event (its release was lost): the audit frees the slot.
    await answeredInstances(stub);
    await forgetEvent(instanceName(scheduler, 0), execution);
    expect(await stub.stats()).toMatchObject({ busy: 1, pending: 1 });
    vi.useFakeTimers({ toFake: ["Date"], now: audit });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    vi.useRealTimers();
    const started = await executionOn(runner, next.requestId);
    await viewOnce(next.requestId, "RUNNING");
    await endNormally(started);
    await settles(stub, 0, 0);
  });
});

/** Makes the scheduler's calls to the instance `silentName` fail, as an instance that does not answer. */
async function unansweredInstances(stub: ReturnType<typeof schedulerStub>, silentName: string): Promise<void> {
  const silentId = env.INSTANCE.idFromName(silentName).toString();
  await runInDurableObject(stub, async (object) => {
    const holder = object as unknown as { env: Env };
    const real = env.INSTANCE;
    const silent = {
      idFromName: (name: string) => real.idFromName(name),
      get: (id: DurableObjectId) =>
        id.toString() === silentId
          ? { currentRequestId: () => Promise.reject(new Error("the instance does not answer")) }
          : real.get(id),
    };
    holder.env = { ...holder.env, INSTANCE: silent as unknown as Env["INSTANCE"] };
  });
}

/** Gives the scheduler its real instances back. */
async function answeredInstances(stub: ReturnType<typeof schedulerStub>): Promise<void> {
  await runInDurableObject(stub, async (object) => {
    const holder = object as unknown as { env: Env };
    holder.env = { ...holder.env, INSTANCE: env.INSTANCE };
  });
}

/** The private state of an instance this file sets up (see forgetEvent). */
interface InstanceInternals {
  current: unknown;
  relaying: boolean;
}

/**
 * The instance loses track of its event (as a lost release leaves it): it reads as running nothing.
 * The execution's next record then stops the relay, which reports nothing.
 */
async function forgetEvent(name: string, execution: FakeExecution): Promise<void> {
  const stub = instanceStub(env, name);
  await runInDurableObject(stub, async (object: InstanceContainer) => {
    (object as unknown as InstanceInternals).current = undefined;
  });
  execution.end({ kind: "returned", result: "never reported" });
  await waitFor(
    () =>
      runInDurableObject(stub, async (object: InstanceContainer) => !(object as unknown as InstanceInternals).relaying),
    "the relay of the forgotten event to stop",
  );
}
