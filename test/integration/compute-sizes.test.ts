// Compute sizes in the scheduler (Workers pool, fake runners as in function-scheduler.test.ts): an
// event runs in the container class of its memorySize (also after waiting on the namespace's cap,
// and when queued before compute sizes), classes in use keep their warm containers, a class unused
// for a while has its idle ones retired, and the log limit fits the class's disk.
import { env, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { FunctionSnapshot } from "../../worker/functions/model";
import { CLASS_IDLE_RETIRE_MS } from "../../worker/scheduling/function-scheduler-object";
import { instanceName, instanceStub, SLOT_CLASS_STRIDE, schedulerStub } from "../../worker/shared/objects";
import { executionOn, installFakeRunners, waitFor } from "../helpers/fake-agent-runner";
import { acceptedEvent, eventLogLines, eventView, uniqueFunction } from "../helpers/fake-dispatch";
import { emptyPlatformCapacity } from "../helpers/platform-capacity";

let fakes: ReturnType<typeof installFakeRunners>;

beforeEach(async () => {
  fakes = installFakeRunners();
  await emptyPlatformCapacity();
});

afterEach(() => fakes.uninstall());

/** Runs one event of the snapshot through the scheduler to its end; answers its final view. */
async function runOne(snapshot: FunctionSnapshot, scheduler: string, slot: number) {
  const event = await acceptedEvent(snapshot, {});
  await schedulerStub(env, scheduler).submit([event.message]);
  const execution = await executionOn(fakes.of(instanceName(scheduler, slot)), event.requestId);
  execution.end({ kind: "returned", result: "done" });
  await waitFor(async () => (await eventView(event.requestId)).status === "FINISHED", "the event to finish");
  await waitFor(async () => (await schedulerStub(env, scheduler).stats()).busy === 0, "the slot to be released");
  return eventView(event.requestId);
}

describe("compute sizes in the scheduler", () => {
  it("runs a 2048 MB event in the standard-2 class and a 128 MB one in basic", async () => {
    const large = uniqueFunction("sized", { memoryMb: 2048 });
    const view = await runOne(large.snapshot, large.scheduler, 2 * SLOT_CLASS_STRIDE);
    expect(view).toMatchObject({ instanceId: `${large.scheduler}#0@standard-2`, instanceType: "standard-2" });
    const status = await instanceStub(env, `${large.scheduler}#0@standard-2`).status();
    expect(status.instanceType).toBe("standard-2");
    expect(await schedulerStub(env, large.scheduler).stats()).toMatchObject({
      instanceType: "standard-2",
      slotsByType: { "standard-2": 1 },
    });

    const small = uniqueFunction("sized", { memoryMb: 128 });
    expect(await runOne(small.snapshot, small.scheduler, 0)).toMatchObject({
      instanceId: `${small.scheduler}#0`,
      instanceType: "basic",
    });
  });

  it("keeps the old class's idle container after a resize until the class goes unused, then retires it", async () => {
    const { snapshot, scheduler } = uniqueFunction("resized", { memoryMb: 128 });
    await runOne(snapshot, scheduler, 0);
    const basic = fakes.of(instanceName(scheduler, 0));
    expect(basic.running).toBe(true);

    const resized = { ...snapshot, memoryMb: 1024 };
    const view = await runOne(resized, scheduler, SLOT_CLASS_STRIDE);
    expect(view).toMatchObject({ instanceType: "standard-1", coldStart: true });
    // Basic ran an event moments ago: its warm container stays (an alias may still send it events).
    expect(basic.running).toBe(true);
    expect((await schedulerStub(env, scheduler).stats()).slotsByType).toEqual({ basic: 1, "standard-1": 1 });

    // Nothing of basic for CLASS_IDLE_RETIRE_MS: the next release retires its idle slot.
    await backdateClass(scheduler, 0, CLASS_IDLE_RETIRE_MS);
    await runOne(resized, scheduler, SLOT_CLASS_STRIDE);
    await waitFor(async () => !basic.running, "the basic container to be destroyed");
    expect(basic.destroys).toBe(1);
    await waitFor(
      async () => JSON.stringify((await schedulerStub(env, scheduler).stats()).slotsByType) === '{"standard-1":1}',
      "the basic slot to be retired",
    );
  });

  it("keeps warm containers of both classes while events alternate between sizes (an alias split)", async () => {
    const { snapshot, scheduler } = uniqueFunction("split", { memoryMb: 128 });
    const large = { ...snapshot, memoryMb: 3072 };
    const large0 = 2 * SLOT_CLASS_STRIDE;
    await runOne(snapshot, scheduler, 0);
    await runOne(large, scheduler, large0);
    expect(await runOne(snapshot, scheduler, 0)).toMatchObject({ instanceType: "basic", coldStart: false });
    expect(await runOne(large, scheduler, large0)).toMatchObject({ instanceType: "standard-2", coldStart: false });
    for (const slot of [0, large0]) {
      expect(fakes.of(instanceName(scheduler, slot))).toMatchObject({ running: true, starts: 1, destroys: 0 });
    }
    expect((await schedulerStub(env, scheduler).stats()).slotsByType).toEqual({ basic: 1, "standard-2": 1 });
  });

  it("runs an event the namespace's cap refused in its own size, not the size of a later event (cap 1, two versions)", async () => {
    const { snapshot, scheduler } = uniqueFunction("capped", { memoryMb: 128, maxConcurrency: 3 });
    const large = { ...snapshot, memoryMb: 3072 };
    const stub = schedulerStub(env, scheduler);
    await runInDurableObject(stub, async (object) => {
      const holder = object as unknown as { env: Env };
      holder.env = { ...holder.env, NAMESPACE_MAX_CONTAINERS: "1" };
    });
    // The namespace's one container runs a 128 MB event.
    const first = await acceptedEvent(snapshot);
    await stub.submit([first.message]);
    const firstRun = await executionOn(fakes.of(instanceName(scheduler, 0)), first.requestId);
    // A 3072 MB event (an alias's other version), then a 128 MB one: both wait on the cap.
    const big = await acceptedEvent(large);
    await stub.submit([big.message]);
    const small = await acceptedEvent(snapshot);
    await stub.submit([small.message]);
    await waitFor(async () => (await stub.stats()).pending === 2, "both events to wait on the namespace's cap");

    firstRun.end({ kind: "returned", result: "done" });
    const runners = [0, 1, 2 * SLOT_CLASS_STRIDE].map((slot) => fakes.of(instanceName(scheduler, slot)));
    const ended = async (requestId: string) => (await eventView(requestId)).status === "FINISHED";
    await waitFor(async () => {
      for (const runner of runners) {
        for (const execution of runner.executions.values()) {
          if (!execution.ended) execution.end({ kind: "returned", result: "done" });
        }
      }
      return (await ended(big.requestId)) && (await ended(small.requestId));
    }, "both waiting events to run and finish");

    expect(await eventView(big.requestId)).toMatchObject({
      instanceId: `${scheduler}#0@standard-2`,
      instanceType: "standard-2",
    });
    expect(await eventView(small.requestId)).toMatchObject({ instanceType: "basic" });
    // Placed right the first time: no claim was refused for its size.
    expect((await stub.stats()).claimsRefused).toBe(0);
  });

  it("sends an event queued before compute sizes (no class) to the class its memorySize needs when its claim refuses", async () => {
    const { snapshot, scheduler } = uniqueFunction("presized", { memoryMb: 128 });
    const event = await acceptedEvent(snapshot);
    const stub = schedulerStub(env, scheduler);
    await stub.pauseDispatch(scheduler);
    // A row of the pending queue as it was before compute sizes: size_class NULL (read as the largest).
    await runInDurableObject(stub, async (_object, state) => {
      state.storage.sql.exec(
        "INSERT INTO pending (request_id, enqueued_at) VALUES (?, ?)",
        event.requestId,
        Date.now(),
      );
    });
    await stub.resumeDispatch();
    const execution = await executionOn(fakes.of(instanceName(scheduler, 0)), event.requestId);
    execution.end({ kind: "returned", result: "done" });
    await waitFor(async () => (await eventView(event.requestId)).status === "FINISHED", "the event to finish");
    expect(await eventView(event.requestId)).toMatchObject({ instanceId: `${scheduler}#0`, instanceType: "basic" });
    // The largest class's instance was refused the claim and started nothing.
    const largest = fakes.of(instanceName(scheduler, 2 * SLOT_CLASS_STRIDE));
    expect(largest.starts).toBe(0);
    expect((await stub.stats()).claimsRefused).toBe(1);
    // A refusal the scheduler's own sizes disagree with is left to the event's watchdog: never a loop.
    expect(await stub.misplaced(0, crypto.randomUUID(), 128)).toEqual({ requeued: false });
  });

  it("numbers a new slot with the lowest free number of its class", async () => {
    const { snapshot, scheduler } = uniqueFunction("numbered", { maxConcurrency: 3 });
    const stub = schedulerStub(env, scheduler);
    await stub.stats();
    // Slot 2 is busy; 0 and 1 are free (retired): the next slot is 0, not 3.
    await runInDurableObject(stub, async (_object, state) => {
      const now = Date.now();
      state.storage.sql.exec(
        "INSERT INTO slots (slot, request_id, assigned_at, last_used_at) VALUES (2, 'elsewhere', ?, ?)",
        now,
        now,
      );
    });
    const event = await acceptedEvent(snapshot);
    await stub.submit([event.message]);
    const execution = await executionOn(fakes.of(instanceName(scheduler, 0)), event.requestId);
    execution.end({ kind: "returned", result: "done" });
    await waitFor(async () => (await eventView(event.requestId)).status === "FINISHED", "the event to finish");
    expect(await eventView(event.requestId)).toMatchObject({ instanceId: `${scheduler}#0` });
  });

  it("clamps the log limit of a function accepted under other sizes to its class's disk, with a [PLATFORM] line", async () => {
    const { snapshot, scheduler } = uniqueFunction("loglimit", { memoryMb: 128, logLimitMb: 3072 });
    const event = await acceptedEvent(snapshot);
    await schedulerStub(env, scheduler).submit([event.message]);
    const execution = await executionOn(fakes.of(instanceName(scheduler, 0)), event.requestId);
    expect(execution.spec.logLimitBytes).toBe(1024 * 1024 * 1024);
    execution.end({ kind: "returned", result: "done" });
    await waitFor(async () => (await eventView(event.requestId)).status === "FINISHED", "the event to finish");
    const lines = await eventLogLines(event.requestId);
    const start = lines.findIndex((line) => line.startsWith("[PLATFORM] START"));
    expect(lines[start + 1]).toBe(
      "[PLATFORM] Log limit: logLimitMb 3072 MiB does not fit the disk of instance type basic (memorySize 128 MB); this execution keeps at most 1024 MiB of log",
    );
  });
});

/** Makes the scheduler's last dispatch of a container class `ageMs` old. */
async function backdateClass(scheduler: string, classIndex: number, ageMs: number): Promise<void> {
  await runInDurableObject(schedulerStub(env, scheduler), async (_object, state) => {
    state.storage.sql.exec(
      "UPDATE settings SET value = ? WHERE key = ?",
      String(Date.now() - ageMs),
      `classDispatchedAt:${classIndex}`,
    );
  });
}
