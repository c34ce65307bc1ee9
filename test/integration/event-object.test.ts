import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { EVENT_RETENTION_MS, MAX_INLINE_RESULT_BYTES } from "../../worker/events/async-event-object";
import type { EventState, PublicEvent } from "../../worker/events/event-machine";
import { unwrap } from "../../worker/shared/errors";
import { functionSnapshot } from "../helpers/function-snapshot";

const HOUR = 60 * 60 * 1000;

function endedState(requestId: string, endedAt: number): EventState {
  return {
    requestId,
    namespace: "default",
    functionName: "report",
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    function: functionSnapshot("default", "report", {
      codeSha256: "b".repeat(64),
      codeKey: "code/default/report/b.zip",
    }),
    phase: "finished",
    statusCode: 200,
    result: '"done"',
    version: 4,
    invokedAt: endedAt - 5_000,
    startedAt: endedAt - 4_000,
    endedAt,
  };
}

/** Stores an ended event as if it had run, with its retention alarm, then restarts the object. */
async function seedEndedEvent(endedAt: number) {
  const requestId = crypto.randomUUID();
  const stub = env.ASYNC_EVENT.get(env.ASYNC_EVENT.idFromName(requestId));
  await runInDurableObject(stub, async (_instance, state) => {
    await state.storage.put("state", endedState(requestId, endedAt));
    await state.storage.setAlarm(Date.now() + 60_000);
  });
  await evictDurableObject(stub);
  return { requestId, stub };
}

/** The slot that runs the events of the retention tests (an instance of their function). */
const INSTANCE_ID = "default/report#0";

/** A running event of the function "report", claimed by INSTANCE_ID, as its object stores it. */
function runningState(requestId: string): EventState {
  const now = Date.now();
  const { statusCode: _statusCode, result: _result, endedAt: _endedAt, ...rest } = endedState(requestId, now);
  return {
    ...rest,
    phase: "running",
    version: 3,
    instanceId: INSTANCE_ID,
    claimedAt: now - 2_000,
    startedAt: now - 1_000,
    containerId: "boot-retention",
    cold: true,
  };
}

/** A result kept in the object's SQL table, not in its state (over MAX_INLINE_RESULT_BYTES). */
const LARGE_RESULT = "r".repeat(MAX_INLINE_RESULT_BYTES + 1);

/**
 * Runs an event to its end through its object's own calls (log lines, then the outcome with its
 * last lines and a result large enough for the SQL table): the object schedules its retention.
 */
async function endThroughTheObject() {
  const requestId = crypto.randomUUID();
  const stub = env.ASYNC_EVENT.get(env.ASYNC_EVENT.idFromName(requestId));
  await runInDurableObject(stub, async (_instance, state) => {
    await state.storage.put("state", runningState(requestId));
  });
  await evictDurableObject(stub);
  await stub.appendLogs([{ seq: 1, ts: Date.now(), stream: "stdout", line: "working" }], INSTANCE_ID);
  const completed = await stub.complete(INSTANCE_ID, { kind: "returned", result: LARGE_RESULT }, undefined, [
    { seq: 2, ts: Date.now(), stream: "stdout", line: "done" },
  ]);
  expect(completed).toEqual({ ok: true });
  const { endedAt } = unwrap<PublicEvent>(await stub.view());
  if (endedAt === null) throw new Error("the event did not end");
  return { requestId, stub, endedAt: Date.parse(endedAt) };
}

function scheduledAlarm(stub: DurableObjectStub): Promise<number | null> {
  return runInDurableObject(stub, (_instance, state) => state.storage.getAlarm());
}

/** Every log line the object's log store holds (its SQL table, read as the object reads it). */
function storedLogLines(stub: DurableObjectStub): Promise<string[]> {
  return runInDurableObject(stub, (_instance, state) => {
    const sql = state.storage.sql;
    if (sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'logs'").toArray().length === 0)
      return [];
    return sql
      .exec<{ line: string }>("SELECT line FROM logs ORDER BY seq")
      .toArray()
      .map((row) => row.line);
  });
}

/** Rows of the object's SQL table of large results. */
function storedResults(stub: DurableObjectStub): Promise<number> {
  return runInDurableObject(stub, (_instance, state) => {
    const table = state.storage.sql
      .exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'event_result'")
      .toArray();
    if (table.length === 0) return 0;
    return Number(state.storage.sql.exec("SELECT COUNT(*) AS n FROM event_result").one().n);
  });
}

describe("AsyncEvent retention", () => {
  // The clock is moved forward to wake the retention alarm at 71 h and at 72 h: restored after each test.
  afterEach(() => {
    vi.useRealTimers();
  });

  it("schedules its own deletion for 72 h after the end, and keeps the event when woken before (71 h)", async () => {
    const { stub, endedAt } = await endThroughTheObject();
    // Set by the object itself as the event ended: nothing in this test set it.
    expect(await scheduledAlarm(stub)).toBe(endedAt + EVENT_RETENTION_MS);

    // Woken early (the alarm also serves other timers): the event stays, the alarm is set again.
    vi.useFakeTimers({ toFake: ["Date"], now: endedAt + 71 * HOUR });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.view()).toMatchObject({ ok: true, value: { status: "FINISHED", statusCode: 200 } });
    expect(await scheduledAlarm(stub)).toBe(endedAt + EVENT_RETENTION_MS);
    expect(await storedLogLines(stub)).toEqual(expect.arrayContaining(["working", "done"]));
    expect(await storedResults(stub)).toBe(1);
  });

  it("deletes the event's state, log and result when the alarm runs 72 h after the end, then answers not-found", async () => {
    const { stub, endedAt } = await endThroughTheObject();
    expect(await scheduledAlarm(stub)).toBe(endedAt + EVENT_RETENTION_MS);
    expect(await storedLogLines(stub)).toEqual(["working", "done", expect.stringMatching(/^\[PLATFORM\] END /)]);
    expect(await storedResults(stub)).toBe(1);
    vi.useFakeTimers({ toFake: ["Date"], now: endedAt + EVENT_RETENTION_MS });
    expect(await runDurableObjectAlarm(stub)).toBe(true);

    expect(await stub.view()).toMatchObject({ ok: false, code: "EVENT_NOT_FOUND" });
    expect(await stub.logs(0, 100)).toMatchObject({ ok: false, code: "EVENT_NOT_FOUND" });
    expect(await storedLogLines(stub)).toEqual([]);
    expect(await storedResults(stub)).toBe(0);
    expect(await scheduledAlarm(stub)).toBeNull();
    // Gone from storage, not only from memory: a fresh object finds nothing either.
    await evictDurableObject(stub);
    expect(await stub.view()).toMatchObject({ ok: false, code: "EVENT_NOT_FOUND" });
    await runInDurableObject(stub, async (_instance, state) => {
      expect(await state.storage.get("state")).toBeUndefined();
    });
  });

  it("refuses to terminate an event that has ended and changes nothing", async () => {
    const { stub } = await seedEndedEvent(Date.now() - HOUR);
    const before = await stub.view();
    expect(await stub.terminate(false)).toMatchObject({ ok: false, code: "EVENT_ALREADY_ENDED" });
    expect(await stub.view()).toEqual(before);
  });
});
