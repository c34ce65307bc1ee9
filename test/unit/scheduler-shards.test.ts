// Scheduler shards (shared/objects.ts; ARCHITECTURE.md "Scaling"): how many schedulers a function
// has, which one an event goes to, how the slots are shared, and the names read back.
import { describe, expect, it } from "vitest";
import {
  allSchedulerShardNames,
  candidateSchedulerNames,
  eventSchedulerName,
  instanceName,
  MAX_SCHEDULER_SHARDS,
  namespaceOfScheduler,
  parseInstanceName,
  parseSchedulerShard,
  SCHEDULER_SHARD_SLOTS,
  schedulerName,
  schedulerShardCount,
  schedulerShardName,
  shardConcurrency,
  shardOfRequest,
} from "../../worker/shared/objects";

const ids = Array.from(
  { length: 4_000 },
  (_, index) => `${index.toString(16).padStart(8, "0")}-2b6e-4f1c-9a3d-0c5e7f9a1b2c`,
);

describe("scheduler shards", () => {
  it("keeps one scheduler up to SCHEDULER_SHARD_SLOTS slots and adds one per further share, up to the maximum", () => {
    expect(schedulerShardCount(1)).toBe(1);
    expect(schedulerShardCount(SCHEDULER_SHARD_SLOTS)).toBe(1);
    expect(schedulerShardCount(SCHEDULER_SHARD_SLOTS + 1)).toBe(2);
    expect(schedulerShardCount(1_000)).toBe(4);
    expect(schedulerShardCount(1_000_000)).toBe(MAX_SCHEDULER_SHARDS);
    expect(schedulerShardCount(0)).toBe(1);
  });

  it("names an unsharded function's one scheduler as before, so its slots and leases keep their names", () => {
    for (const requestId of ids.slice(0, 50)) {
      expect(eventSchedulerName("ns", "fn", requestId, SCHEDULER_SHARD_SLOTS)).toBe(schedulerName("ns", "fn"));
    }
  });

  it("sends every message of one event to the same shard, and spreads events evenly over the shards", () => {
    const counts = new Map<string, number>();
    for (const requestId of ids) {
      const name = eventSchedulerName("ns", "fn", requestId, 1_000);
      expect(eventSchedulerName("ns", "fn", requestId, 1_000)).toBe(name);
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(allSchedulerShardNames("ns", "fn").sort());
    for (const count of counts.values()) expect(Math.abs(count - ids.length / 4)).toBeLessThan(ids.length / 20);
  });

  it("shares the function's maxConcurrency among its shards exactly", () => {
    for (const maxConcurrency of [251, 500, 777, 999, 1_000]) {
      const count = schedulerShardCount(maxConcurrency);
      let total = 0;
      for (let shard = 0; shard < count; shard++) total += shardConcurrency(maxConcurrency, shard, count);
      expect(total).toBe(maxConcurrency);
    }
    expect(shardConcurrency(10, 0, 1)).toBe(10);
  });

  it("reads a shard's name back into its function's scheduler and its number, and refuses a foreign suffix", () => {
    expect(parseSchedulerShard(schedulerShardName("ns", "fn", 3))).toEqual({ functionScheduler: "ns/fn", shard: 3 });
    expect(parseSchedulerShard("ns/fn")).toEqual({ functionScheduler: "ns/fn", shard: 0 });
    expect(parseSchedulerShard("ns/fn~9")).toEqual({ functionScheduler: "ns/fn~9", shard: 0 });
    expect(parseSchedulerShard("ns/fn~x")).toEqual({ functionScheduler: "ns/fn~x", shard: 0 });
  });

  it("names a shard's instances so that their scheduler, slot and namespace read back", () => {
    const shard = schedulerShardName("ns", "fn", 2);
    const instance = instanceName(shard, 7);
    expect(parseInstanceName(instance)).toEqual({ schedulerName: shard, slot: 7 });
    expect(namespaceOfScheduler(shard)).toBe("ns");
  });

  it("lists among the candidates the shard each possible shard count sends an event to", () => {
    for (const requestId of ids.slice(0, 200)) {
      const candidates = candidateSchedulerNames("ns", "fn", requestId);
      expect(candidates[0]).toBe(schedulerName("ns", "fn"));
      expect(candidates.length).toBeLessThanOrEqual(MAX_SCHEDULER_SHARDS);
      for (const maxConcurrency of [1, 300, 600, 1_000]) {
        expect(candidates).toContain(eventSchedulerName("ns", "fn", requestId, maxConcurrency));
      }
    }
  });

  it("hashes a RequestId to the same shard on every call and within range", () => {
    for (const requestId of ids.slice(0, 100)) {
      const shard = shardOfRequest(requestId, 3);
      expect(shard).toBe(shardOfRequest(requestId, 3));
      expect(shard).toBeGreaterThanOrEqual(0);
      expect(shard).toBeLessThan(3);
    }
  });
});
