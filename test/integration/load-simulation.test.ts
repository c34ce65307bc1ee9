// Load simulation (issue 17, ARCHITECTURE.md "Scaling"): one function offered SIMULATED_RATE
// submissions per second through the real dispatch consumer (its D1 index batch and its scheduler
// submit), the real FunctionSchedulerObject shards, namespace quota and platform capacity objects,
// with a fake runner in place of the instances (installSlotStarterForTests: an event "runs" for
// EVENT_MS from the moment its scheduler starts it, then its slot is released as an instance would,
// and its end row is written to the index in one batch per tick). Reports the achieved rate and the
// queueing delay (consumer hand-over → start) p50/p99, for one scheduler and for the sharded one.
//
// Everything here runs on workerd's one JavaScript thread (as `wrangler dev` does): the figures say
// how much of that thread the scheduler and index paths cost per event, not what production's
// separate objects reach (see ARCHITECTURE.md "Scaling" for that computation).
import { env } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import type { DispatchMessage } from "../../worker/events/dispatch-message";
import { writeIndexEntries } from "../../worker/events/event-index";
import { consumeDispatchBatch } from "../../worker/scheduling/dispatch-consumer";
import { installSlotStarterForTests, type SlotStart } from "../../worker/scheduling/function-scheduler-object";
import { allSchedulerShardNames, schedulerShardCount, schedulerStub } from "../../worker/shared/objects";
import { finishedIndexEntry } from "../helpers/index-entry";
import { raiseContainerCaps } from "../helpers/platform-capacity";

/** Submissions offered per second (the target for one function). */
const SIMULATED_RATE = 1_000;
/** Seconds of offered load per run. */
const LOAD_SECONDS = 2;
/** How long each fake event runs once started. */
const EVENT_MS = 200;
/** Messages per consumer invocation (Cloudflare Queues' largest consumer batch). */
const QUEUE_BATCH = 100;
/** The driver's tick: due submissions are handed over and due ends released this often. */
const TICK_MS = 20;
/** A run gives up once nothing moved for this long (a lost start or release). */
const STALL_MS = 15_000;

interface Started extends SlotStart {
  at: number;
}

/** Starts the fake runner holds (events running), every start it recorded, and how many per RequestId. */
let starts: Started[] = [];
let recordedStarts: Started[] = [];
const startsById = new Map<string, number>();

afterEach(() => installSlotStarterForTests(undefined));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/** A consumer batch of these dispatch messages, recording acknowledgements and retries. */
function batchOf(bodies: DispatchMessage[], acked: Set<string>, retried: Set<string>): MessageBatch<unknown> {
  return {
    queue: "afp-dispatch",
    messages: bodies.map((body) => ({
      id: body.requestId,
      timestamp: new Date(),
      body,
      attempts: 1,
      ack: () => acked.add(body.requestId),
      retry: () => retried.add(body.requestId),
    })),
    ackAll: () => undefined,
    retryAll: () => undefined,
  } as unknown as MessageBatch<unknown>;
}

/** Lets a simulated function have 1,000 slots: the container caps raised in the objects it uses. */
async function raiseCaps(names: string[]): Promise<void> {
  const raised = {
    FUNCTION_MAX_CONCURRENCY: "1000",
    NAMESPACE_MAX_CONTAINERS: "5000",
    PLATFORM_MAX_CONTAINERS: "5000",
  };
  await raiseContainerCaps(names, raised);
}

/** Calls of the bare-call baseline, and how many are in flight at once. */
const BASELINE_CALLS = 500;
const BASELINE_PARALLEL = 50;

/**
 * The rate of trivial Durable Object calls (a scheduler's `stats`, one SQL read) this run's thread
 * sustains: the simulation's rates are quoted against it, as the machine's load varies between runs.
 */
async function bareCallRate(name: string): Promise<number> {
  const stub = schedulerStub(env, name);
  const began = Date.now();
  for (let done = 0; done < BASELINE_CALLS; done += BASELINE_PARALLEL) {
    await Promise.all(Array.from({ length: BASELINE_PARALLEL }, () => stub.stats()));
  }
  return (BASELINE_CALLS / Math.max(1, Date.now() - began)) * 1000;
}

interface RunResult {
  /** Trivial Durable Object calls per second in this run (see bareCallRate). */
  bareCallRate: number;
  shards: number;
  offered: number;
  offeredSeconds: number;
  /** The rate at which the driver actually handed the submissions to the consumer. */
  handedRate: number;
  startRate: number;
  endRate: number;
  delayP50: number;
  delayP99: number;
  maxBusyPerScheduler: Map<string, number>;
  duplicates: number;
  notAcked: number;
  indexed: number;
}

/** One run: `maxConcurrency` decides the shard count (shared/objects.ts schedulerShardCount). */
async function simulate(maxConcurrency: number): Promise<RunResult> {
  const namespace = `load${crypto.randomUUID().slice(0, 8)}`;
  const functionName = "fn";
  await raiseCaps(allSchedulerShardNames(namespace, functionName));
  const baseline = await bareCallRate(`${namespace}/baseline`);
  starts = [];
  recordedStarts = [];
  startsById.clear();
  const recordStart = (start: SlotStart) => {
    const started = { ...start, at: Date.now() };
    starts.push(started);
    recordedStarts.push(started);
    startsById.set(start.requestId, (startsById.get(start.requestId) ?? 0) + 1);
  };
  installSlotStarterForTests(async (_env, _instance, start) => {
    recordStart(start);
    return { started: true };
  });

  const total = SIMULATED_RATE * LOAD_SECONDS;
  const handedAt = new Map<string, number>();
  const acked = new Set<string>();
  const retried = new Set<string>();
  const maxBusy = new Map<string, number>();
  const endedAt: number[] = [];
  let released = 0;
  let sent = 0;
  const consumerCalls: Promise<void>[] = [];
  const endCalls: Promise<void>[] = [];
  let lastHanded = 0;
  const began = Date.now();
  let lastProgress = began;

  while (released < total) {
    const now = Date.now();
    if (now - lastProgress > STALL_MS) break;
    // Submissions due by now at SIMULATED_RATE, in queue batches, each batch one consumer call.
    const due = Math.min(total, Math.floor(((now - began) / 1000) * SIMULATED_RATE));
    while (sent < due) {
      const count = Math.min(QUEUE_BATCH, due - sent);
      const bodies: DispatchMessage[] = [];
      for (let index = 0; index < count; index++) {
        const requestId = crypto.randomUUID();
        handedAt.set(requestId, now);
        bodies.push({
          requestId,
          namespace,
          functionName,
          qualifier: "$LATEST",
          invokeType: "OTHERS",
          invokedAt: now,
          maxConcurrency,
          memoryMb: 128,
        });
      }
      sent += count;
      lastProgress = now;
      lastHanded = now;
      consumerCalls.push(consumeDispatchBatch(batchOf(bodies, acked, retried), env));
    }
    // Events started EVENT_MS ago end: their slots are released (as the instance does) and their
    // end rows go to the index in one batch.
    const ending = starts.filter((start) => start.at + EVENT_MS <= now);
    if (ending.length > 0) {
      starts = starts.filter((start) => start.at + EVENT_MS > now);
      const entries = ending.map((start) =>
        finishedIndexEntry(namespace, functionName, {
          requestId: start.requestId,
          startTime: handedAt.get(start.requestId) ?? now,
          endTime: now,
          durationMs: EVENT_MS,
          version: 3,
        }),
      );
      // Not awaited here: the driver keeps offering submissions on time while these settle.
      endCalls.push(
        Promise.all([
          writeIndexEntries(env.DB, entries),
          // As the instance does: its container and lease kept, it starts the slot's next event
          // itself when the release answers one (no runEvent call, no quota call).
          ...ending.map(async (start) => {
            const answer = await schedulerStub(env, start.schedulerName).release(start.slot, start.requestId, {
              leaseKept: true,
              takeNext: true,
            });
            if (answer.next) recordStart(answer.next);
          }),
        ]).then(() => {
          released += ending.length;
          for (let index = 0; index < ending.length; index++) endedAt.push(Date.now());
          lastProgress = Date.now();
        }),
      );
      lastProgress = now;
    }
    await new Promise((resolve) => setTimeout(resolve, TICK_MS));
    // Busy slots per scheduler, as the fake runner saw them (never above each shard's share).
    const running = new Map<string, number>();
    for (const start of starts) running.set(start.schedulerName, (running.get(start.schedulerName) ?? 0) + 1);
    for (const [name, count] of running) maxBusy.set(name, Math.max(maxBusy.get(name) ?? 0, count));
  }
  await Promise.all([...consumerCalls, ...endCalls]);

  const allStarts = [...startsById.keys()];
  const delays: number[] = [];
  const startTimes: number[] = [];
  // The recorded start of each event: its first (later ones would be duplicates, counted below).
  const firstStart = new Map<string, number>();
  for (const record of recordedStarts) {
    if (!firstStart.has(record.requestId)) firstStart.set(record.requestId, record.at);
  }
  for (const [requestId, at] of firstStart) {
    delays.push(at - (handedAt.get(requestId) ?? at));
    startTimes.push(at);
  }
  delays.sort((a, b) => a - b);
  startTimes.sort((a, b) => a - b);
  const firstHanded = began;
  const lastStart = startTimes.at(-1) ?? firstHanded;
  const lastEnd = endedAt.at(-1) ?? firstHanded;
  const indexed = Number(
    (
      await env.DB.prepare("SELECT COUNT(*) AS n FROM events WHERE namespace = ? AND status = 'FINISHED'")
        .bind(namespace)
        .first<{ n: number }>()
    )?.n ?? 0,
  );
  return {
    bareCallRate: baseline,
    shards: schedulerShardCount(maxConcurrency),
    offered: total,
    offeredSeconds: LOAD_SECONDS,
    handedRate: (total / Math.max(1, lastHanded - began)) * 1000,
    startRate: (allStarts.length / Math.max(1, lastStart - firstHanded)) * 1000,
    endRate: (released / Math.max(1, lastEnd - firstHanded)) * 1000,
    delayP50: percentile(delays, 50),
    delayP99: percentile(delays, 99),
    maxBusyPerScheduler: maxBusy,
    duplicates: [...startsById.values()].filter((count) => count > 1).length,
    notAcked: total - acked.size,
    indexed,
  };
}

function report(result: RunResult): string {
  return [
    `load simulation: ${result.offered} submissions offered at ${SIMULATED_RATE}/s for ${result.offeredSeconds} s`,
    `(handed over at ${result.handedRate.toFixed(0)}/s),`,
    `${result.shards} scheduler shard(s), events of ${EVENT_MS} ms:`,
    `started ${result.startRate.toFixed(0)}/s, ended ${result.endRate.toFixed(0)}/s`,
    `(${(result.startRate / result.bareCallRate).toFixed(3)} and ${(result.endRate / result.bareCallRate).toFixed(3)} of the`,
    `${result.bareCallRate.toFixed(0)} trivial Durable Object calls/s of this run),`,
    `queueing delay p50 ${result.delayP50} ms, p99 ${result.delayP99} ms`,
  ].join(" ");
}

describe("load simulation: one function at 1,000 submissions per second, fake runner", () => {
  for (const maxConcurrency of [250, 1000]) {
    it(`runs every submitted event exactly once within each shard's share (maxConcurrency ${maxConcurrency})`, async () => {
      const result = await simulate(maxConcurrency);
      console.log(report(result));
      expect(result.duplicates).toBe(0);
      expect(result.notAcked).toBe(0);
      expect(result.indexed).toBe(result.offered);
      const share = Math.ceil(maxConcurrency / result.shards);
      expect(result.maxBusyPerScheduler.size).toBe(result.shards);
      for (const count of result.maxBusyPerScheduler.values()) expect(count).toBeLessThanOrEqual(share);
    }, 180_000);
  }
});
