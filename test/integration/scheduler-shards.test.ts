// A function whose maxConcurrency is above SCHEDULER_SHARD_SLOTS has several schedulers (ARCHITECTURE.md
// "Scaling"): the dispatch consumer sends each event to its shard, each shard runs at most its share
// of the slots, and pause, resume and an event's queued reason reach every shard. Instances are
// replaced by the scheduler's slot-start seam (no containers, no instance objects).
import { env, runInDurableObject, SELF } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { DispatchMessage } from "../../worker/events/dispatch-message";
import { MAX_PAUSED_BACKLOG } from "../../worker/events/paused-backlog";
import { withQueuedReason } from "../../worker/events/queued-reason";
import { consumeDispatchBatch } from "../../worker/scheduling/dispatch-consumer";
import { pauseDispatch, resumeDispatch } from "../../worker/scheduling/dispatch-pause";
import { installSlotStarterForTests, type SlotStart } from "../../worker/scheduling/function-scheduler-object";
import {
  allSchedulerShardNames,
  eventSchedulerName,
  schedulerShardCount,
  schedulerStub,
} from "../../worker/shared/objects";
import { waitFor } from "../helpers/fake-agent-runner";
import { raiseContainerCaps } from "../helpers/platform-capacity";
import { zipBase64 } from "../helpers/zip";

const BASE = "https://platform.test";
const workerEnv: Env = env;
const ADMIN = { authorization: `Bearer ${workerEnv.DEV_SECRET_ID ?? ""}:${workerEnv.DEV_SECRET_KEY ?? ""}` };
const ZIP = zipBase64({ "index.js": "exports.main_handler = async (event) => event;" });
/** Three shards of 200 slots each. */
const MAX_CONCURRENCY = 600;

let started: SlotStart[] = [];

beforeEach(() => {
  started = [];
  installSlotStarterForTests(async (_env, _instance, start) => {
    started.push(start);
    return { started: true };
  });
});

afterEach(() => installSlotStarterForTests(undefined));

/** A created function (pause and resume look it up) whose shards allow MAX_CONCURRENCY slots. */
async function shardedFunction(functionMaxConcurrency = "1000"): Promise<{
  namespace: string;
  name: string;
  shards: string[];
}> {
  const namespace = `sh${crypto.randomUUID().slice(0, 8)}`;
  const name = "fn";
  const created = await SELF.fetch(`${BASE}/v1/namespaces/${namespace}/functions`, {
    method: "POST",
    headers: ADMIN,
    body: JSON.stringify({ name, runtime: "Nodejs22", code: { zipFile: ZIP } }),
  });
  expect(created.status).toBe(201);
  const shards = allSchedulerShardNames(namespace, name).slice(0, schedulerShardCount(MAX_CONCURRENCY));
  const raised = {
    FUNCTION_MAX_CONCURRENCY: functionMaxConcurrency,
    NAMESPACE_MAX_CONTAINERS: "5000",
    PLATFORM_MAX_CONTAINERS: "5000",
  };
  // The platform-wide cap is shared by the whole test run: raised, and emptied, for this function.
  await raiseContainerCaps(allSchedulerShardNames(namespace, name), raised);
  return { namespace, name, shards };
}

/** Hands `count` dispatch messages of the function to the consumer as one queue batch. */
async function dispatch(namespace: string, name: string, count: number): Promise<DispatchMessage[]> {
  const bodies: DispatchMessage[] = Array.from({ length: count }, () => ({
    requestId: crypto.randomUUID(),
    namespace,
    functionName: name,
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    invokedAt: Date.now(),
    maxConcurrency: MAX_CONCURRENCY,
    memoryMb: 128,
  }));
  const acked = new Set<string>();
  const batch = {
    queue: "afp-dispatch",
    messages: bodies.map((body) => ({
      id: body.requestId,
      timestamp: new Date(),
      body,
      attempts: 1,
      ack: () => acked.add(body.requestId),
      retry: () => undefined,
    })),
  } as unknown as MessageBatch<unknown>;
  await consumeDispatchBatch(batch, env);
  expect(acked.size).toBe(count);
  return bodies;
}

describe("scheduler shards of a function above SCHEDULER_SHARD_SLOTS", () => {
  it("sends each event to its shard, and each shard runs its share of the slots", async () => {
    const { namespace, name, shards } = await shardedFunction();
    expect(shards).toHaveLength(3);
    const bodies = await dispatch(namespace, name, 60);
    await waitFor(async () => started.length === 60, "every event to start");
    for (const start of started) {
      const body = bodies.find((candidate) => candidate.requestId === start.requestId);
      expect(body).toBeDefined();
      expect(start.schedulerName).toBe(eventSchedulerName(namespace, name, start.requestId, MAX_CONCURRENCY));
    }
    const used = new Set(started.map((start) => start.schedulerName));
    expect(used.size).toBe(3);
    for (const shard of shards) {
      const stats = await schedulerStub(env, shard).stats();
      expect(stats.maxConcurrency).toBe(200);
      expect(stats.busy).toBe(started.filter((start) => start.schedulerName === shard).length);
    }
  });

  it("pauses and resumes every shard: events wait in all of them with reason paused, then start", async () => {
    const { namespace, name, shards } = await shardedFunction();
    const paused = await pauseDispatch(workerEnv, namespace, name);
    expect(paused.dispatchPaused).toBe(true);
    const bodies = await dispatch(namespace, name, 30);
    let pending = 0;
    for (const shard of shards) {
      const state = await schedulerStub(env, shard).dispatchState();
      expect(state.dispatchPaused).toBe(true);
      pending += state.pendingEvents;
    }
    expect(pending).toBe(30);
    expect(started).toHaveLength(0);
    const view = { requestId: bodies[0]?.requestId ?? "", namespace, functionName: name, phase: "queued" };
    expect((await withQueuedReason(env, { ...view, queuedReason: null })).queuedReason).toBe("paused");

    const resumed = await resumeDispatch(workerEnv, namespace, name);
    expect(resumed.dispatchPaused).toBe(false);
    await waitFor(async () => started.length === 30, "every held event to start after resume");
  });

  it("holds a paused sharded function's first shard to its share of MAX_PAUSED_BACKLOG", async () => {
    const { namespace, name, shards } = await shardedFunction();
    await pauseDispatch(workerEnv, namespace, name);
    const first = schedulerStub(env, shards[0] ?? "");
    // The shard learns the function's maxConcurrency (three shards) from a submission.
    const [held] = await dispatch(namespace, name, 1);
    await first.submit([{ ...(held as DispatchMessage), requestId: crypto.randomUUID() }]);
    const share = Math.ceil(MAX_PAUSED_BACKLOG / shards.length);
    await runInDurableObject(first, async (_object, state) => {
      state.storage.sql.exec("DELETE FROM pending");
      for (let index = 0; index < share - 1; index++) {
        state.storage.sql.exec("INSERT INTO pending (request_id, enqueued_at) VALUES (?, ?)", `seed-${index}`, 1);
      }
    });
    expect(await first.admission()).toEqual({
      admitted: true,
      dispatchPaused: true,
      pendingEvents: (share - 1) * shards.length,
    });
    await runInDurableObject(first, async (_object, state) => {
      state.storage.sql.exec("INSERT INTO pending (request_id, enqueued_at) VALUES (?, ?)", "seed-last", 1);
    });
    expect(await first.admission()).toMatchObject({ admitted: false, pendingEvents: share * shards.length });
  });

  it("keeps an event's queued reason from its own shard: concurrency when that shard's share is full", async () => {
    // FUNCTION_MAX_CONCURRENCY lowered to 9: the three shards keep their count and share 9 slots.
    const { namespace, name, shards } = await shardedFunction("9");
    const bodies = await dispatch(namespace, name, 60);
    await waitFor(async () => started.length === 9, "the shards' shares to fill");
    for (const shard of shards) expect((await schedulerStub(env, shard).stats()).maxConcurrency).toBe(3);
    const waiting = bodies.find((body) => !started.some((start) => start.requestId === body.requestId));
    if (!waiting) throw new Error("an event over the shares expected");
    const view = { requestId: waiting.requestId, namespace, functionName: name, phase: "queued", queuedReason: null };
    expect((await withQueuedReason(env, view)).queuedReason).toBe("concurrency");
  });
});
