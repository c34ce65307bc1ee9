// The event object's side of progress reporting: the latest report in the status, no D1 write per
// report (the index write is owed and made by the alarm, at most once per interval, carrying the
// latest), the end's write carrying the final progress, and no report kept after the end.
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { indexEntryOf, type PendingIndexWrite, writeIndexEntries } from "../../worker/events/event-index";
import type { EventState, PublicEvent } from "../../worker/events/event-machine";
import { MIN_PROGRESS_INTERVAL_MS, PROGRESS_INDEX_INTERVAL_MS } from "../../worker/events/event-progress";
import { unwrap } from "../../worker/shared/errors";
import { functionSnapshot } from "../helpers/function-snapshot";

const INSTANCE_ID = "default/progress#0";

function runningState(requestId: string): EventState {
  const now = Date.now();
  return {
    requestId,
    namespace: "default",
    functionName: "progress",
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    function: functionSnapshot("default", "progress", {
      codeSha256: "c".repeat(64),
      codeKey: "code/default/progress/c.zip",
      timeoutSeconds: 600,
    }),
    phase: "running",
    version: 3,
    invokedAt: now - 3_000,
    instanceId: INSTANCE_ID,
    claimedAt: now - 2_000,
    startedAt: now - 1_000,
    containerId: "boot-progress",
    cold: true,
  };
}

/** A running event stored in its object, with its index row (as the dispatch consumer wrote it). */
async function runningEvent() {
  const requestId = crypto.randomUUID();
  const state = runningState(requestId);
  await writeIndexEntries(env.DB, [indexEntryOf(state)]);
  const stub = env.ASYNC_EVENT.get(env.ASYNC_EVENT.idFromName(requestId));
  await runInDurableObject(stub, async (_instance, storage) => {
    await storage.storage.put("state", state);
  });
  await evictDurableObject(stub);
  return { requestId, stub };
}

async function indexRow(requestId: string) {
  return env.DB.prepare(
    "SELECT status, version, progress_percent, progress_message, progress_at FROM events WHERE request_id = ?",
  )
    .bind(requestId)
    .first<{
      status: string;
      version: number;
      progress_percent: number | null;
      progress_message: string | null;
      progress_at: number | null;
    }>();
}

describe("progress in the event object", () => {
  it("keeps the latest report in the status and owes the index one write, made by the alarm", async () => {
    const { requestId, stub } = await runningEvent();
    const before = Date.now();
    await stub.reportProgress(INSTANCE_ID, { percent: 10, message: "one", seq: 2 });
    await stub.reportProgress(INSTANCE_ID, { percent: 20, message: "two", seq: 3 });
    await stub.reportProgress(INSTANCE_ID, { percent: 30, message: "three", seq: 4 });
    const view = unwrap(await stub.view()) as PublicEvent;
    expect(view.progress).toMatchObject({ percent: 30, message: "three" });

    // Not written to D1 on any report: one write is owed, due an interval after the first.
    expect((await indexRow(requestId))?.progress_percent).toBeNull();
    const owed = await runInDurableObject(stub, (_instance, state) =>
      state.storage.get<PendingIndexWrite>("indexPending"),
    );
    expect(owed?.retryAt).toBeGreaterThanOrEqual(before + PROGRESS_INDEX_INTERVAL_MS);
    expect(owed?.retryAt).toBeLessThanOrEqual(Date.now() + PROGRESS_INDEX_INTERVAL_MS);
    const alarm = await runInDurableObject(stub, (_instance, state) => state.storage.getAlarm());
    expect(alarm).toBeLessThanOrEqual(owed?.retryAt ?? 0);

    // The alarm writes the latest progress, with the state's version (never going backwards).
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const written = await indexRow(requestId);
    expect(written).toMatchObject({ status: "RUNNING", progress_percent: 30, progress_message: "three", version: 6 });

    // The end's write carries the final progress; a report after the end is ignored.
    await stub.reportProgress(INSTANCE_ID, { percent: 100, message: "done", seq: 5 });
    expect(await stub.complete(INSTANCE_ID, { kind: "returned", result: 1 })).toEqual({ ok: true });
    // The end's row reaches D1 through the dispatch queue's consumer.
    await expect.poll(async () => (await indexRow(requestId))?.status, { timeout: 10_000 }).toBe("FINISHED");
    const ended = await indexRow(requestId);
    expect(ended).toMatchObject({ status: "FINISHED", progress_percent: 100, progress_message: "done" });
    expect(ended?.version).toBeGreaterThan(written?.version ?? Number.POSITIVE_INFINITY);
    await stub.reportProgress(INSTANCE_ID, { percent: 5, message: "late", seq: 9 });
    expect((unwrap(await stub.view()) as PublicEvent).progress).toMatchObject({ percent: 100, message: "done" });
  });

  it("stores a burst of reports at most once per interval, the status showing the latest at once", async () => {
    const { stub } = await runningEvent();
    const started = Date.now();
    const writes = await runInDurableObject(stub, async (instance, state) => {
      const put = vi.spyOn(state.storage, "put");
      const setAlarm = vi.spyOn(state.storage, "setAlarm");
      for (let i = 1; i <= 100; i += 1) {
        await instance.reportProgress(INSTANCE_ID, { percent: i, message: `report ${i}`, seq: i + 1 });
      }
      const counted = { put: put.mock.calls.length, setAlarm: setAlarm.mock.calls.length };
      put.mockRestore();
      setAlarm.mockRestore();
      return counted;
    });
    // One write for the first report, then at most one per interval the burst lasted (not 100).
    const allowed = 1 + Math.ceil((Date.now() - started) / MIN_PROGRESS_INTERVAL_MS);
    expect(writes.put).toBeLessThanOrEqual(Math.min(allowed, 5));
    expect(writes.setAlarm).toBeLessThanOrEqual(Math.min(allowed, 5));
    expect((unwrap(await stub.view()) as PublicEvent).progress).toMatchObject({ percent: 100, message: "report 100" });
    // The held report is stored once the interval has passed.
    await expect
      .poll(
        () =>
          runInDurableObject(stub, (_instance, state) =>
            state.storage.get<EventState>("state").then((stored) => stored?.progress?.seq),
          ),
        { timeout: 5_000 },
      )
      .toBe(101);
  });

  it("stores a held report before the alarm's index write, and with the end", async () => {
    const { requestId, stub } = await runningEvent();
    await stub.reportProgress(INSTANCE_ID, { percent: 10, message: "stored", seq: 2 });
    await stub.reportProgress(INSTANCE_ID, { percent: 20, message: "held", seq: 3 });
    // The alarm (made to run now) writes the index with a version the storage has.
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const stored = await runInDurableObject(stub, (_instance, state) => state.storage.get<EventState>("state"));
    expect(stored?.progress).toMatchObject({ percent: 20, message: "held" });
    expect((await indexRow(requestId))?.version).toBe(stored?.version);
    // A report held when the event ends is stored with the end.
    await stub.reportProgress(INSTANCE_ID, { percent: 99, message: "last", seq: 4 });
    await stub.reportProgress(INSTANCE_ID, { percent: 100, message: "final", seq: 5 });
    expect(await stub.complete(INSTANCE_ID, { kind: "returned", result: 1 })).toEqual({ ok: true });
    const ended = await runInDurableObject(stub, (_instance, state) => state.storage.get<EventState>("state"));
    expect(ended?.progress).toMatchObject({ percent: 100, message: "final" });
    await expect.poll(async () => (await indexRow(requestId))?.status, { timeout: 10_000 }).toBe("FINISHED");
    expect(await indexRow(requestId)).toMatchObject({ status: "FINISHED", progress_percent: 100 });
  });

  it("ignores a report from another instance", async () => {
    const { stub } = await runningEvent();
    await stub.reportProgress("default/progress#1", { percent: 50, message: "stranger", seq: 2 });
    expect((unwrap(await stub.view()) as PublicEvent).progress).toBeNull();
  });
});
