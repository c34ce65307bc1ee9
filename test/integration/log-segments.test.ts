import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { type AsyncEventObject, EVENT_RETENTION_MS } from "../../worker/events/async-event-object";
import { downloadLine } from "../../worker/events/event-log";
import {
  SEGMENT_MAX_LINES,
  SegmentReader,
  segmentPrefix,
  TAIL_MAX_LINES,
} from "../../worker/events/event-log-segments";
import {
  EventLogStore,
  type LogOwner,
  type LogPage,
  type LogUsageLedger,
  NAMESPACE_FULL_MARKER,
  type StoredLogRecord,
} from "../../worker/events/event-log-store";
import { NamespaceLogUsage } from "../../worker/events/event-log-usage";
import type { EventState, PublicEvent } from "../../worker/events/event-machine";
import { unwrap } from "../../worker/shared/errors";
import { functionSnapshot } from "../helpers/function-snapshot";

const INSTANCE = "default/chatty#0";

/** Stores a running event in its object, as if accepted, claimed and started. */
async function runningEvent(
  namespace = "default",
): Promise<{ requestId: string; stub: DurableObjectStub<AsyncEventObject> }> {
  const requestId = crypto.randomUUID();
  const now = Date.now();
  const state: EventState = {
    requestId,
    namespace,
    functionName: "chatty",
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    function: functionSnapshot(namespace, "chatty"),
    phase: "running",
    version: 3,
    invokedAt: now - 2_000,
    claimedAt: now - 1_500,
    instanceId: `${namespace}/chatty#0`,
    startedAt: now - 1_000,
    cold: true,
    containerId: "boot-1",
  };
  const stub = env.ASYNC_EVENT.get(env.ASYNC_EVENT.idFromName(requestId));
  await runInDurableObject(stub, async (_instance, storage) => {
    await storage.storage.put({ state, payload: "{}" });
    await storage.storage.setAlarm(now + 60 * 60_000);
  });
  await evictDurableObject(stub);
  return { requestId, stub };
}

function lineOf(seq: number): string {
  return `line ${seq} ${seq % 7 === 0 ? "needle" : "hay"}`;
}

/** Appends `count` captured lines (agent seqs from `from`), a thousand per call as a relay does. */
async function appendLines(
  stub: DurableObjectStub<AsyncEventObject>,
  from: number,
  count: number,
  instanceId = INSTANCE,
) {
  for (let start = from; start < from + count; start += 1_000) {
    const records = Array.from({ length: Math.min(1_000, from + count - start) }, (_, i) => ({
      seq: start + i,
      ts: 1_700_000_000_000 + start + i,
      stream: (start + i) % 5 === 0 ? ("stderr" as const) : ("stdout" as const),
      line: lineOf(start + i),
    }));
    await stub.appendLogs(records, instanceId);
  }
}

/** An event's log store over its object's storage, with the given owner and namespace ledger. */
function storeOf(state: DurableObjectState, owner: () => LogOwner, ledger: LogUsageLedger): EventLogStore {
  return new EventLogStore(state.storage.sql, new SegmentReader(env.LOG_BUCKET), env.LOG_BUCKET, owner, ledger);
}

/** Every line of the event's log, paged as a client pages it. */
async function pageAll(stub: DurableObjectStub<AsyncEventObject>, query: { contains?: string } = {}) {
  const lines: StoredLogRecord[] = [];
  let after = 0;
  let pages = 0;
  for (;;) {
    const page: LogPage = unwrap(
      await stub.logs(after, 1_000, query.contains ? { contains: query.contains } : undefined),
    );
    lines.push(...page.records);
    pages += 1;
    expect(page.lastSeq).toBeGreaterThanOrEqual(after);
    after = page.lastSeq;
    if (!page.more) break;
  }
  return { lines, pages };
}

async function segmentKeys(namespace: string, requestId: string): Promise<string[]> {
  const listed = await env.LOG_BUCKET.list({ prefix: segmentPrefix(namespace, requestId) });
  return listed.objects.map((object) => object.key);
}

describe("log segments in R2", { timeout: 60_000 }, () => {
  it("rolls older lines into R2 segments, keeps the tail bounded, and pages every line once, in order", async () => {
    const { requestId, stub } = await runningEvent();
    const total = 3 * TAIL_MAX_LINES;
    await appendLines(stub, 1, total);
    const keys = await segmentKeys("default", requestId);
    expect(keys.length).toBeGreaterThanOrEqual(Math.floor((total - TAIL_MAX_LINES) / SEGMENT_MAX_LINES));
    const tailRows = await runInDurableObject(
      stub,
      (_instance, state) => state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM logs").one().n,
    );
    expect(tailRows).toBeLessThanOrEqual(TAIL_MAX_LINES);
    const { lines } = await pageAll(stub);
    expect(lines.map((record) => record.line)).toEqual(Array.from({ length: total }, (_, i) => lineOf(i + 1)));
    expect(lines.map((record) => record.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  });

  it("never stores a resent line twice, whether it is still in the tail or already in a segment", async () => {
    const { stub } = await runningEvent();
    const total = TAIL_MAX_LINES + SEGMENT_MAX_LINES + 10;
    await appendLines(stub, 1, total);
    // A relay restarted from the start resends everything.
    await appendLines(stub, 1, total);
    const { lines } = await pageAll(stub);
    expect(lines).toHaveLength(total);
  });

  it("filters by text across segments and the tail, moving lastSeq on through lines left out", async () => {
    const { stub } = await runningEvent();
    const total = TAIL_MAX_LINES + SEGMENT_MAX_LINES + 500;
    await appendLines(stub, 1, total);
    const { lines } = await pageAll(stub, { contains: "needle" });
    const expected = Array.from({ length: total }, (_, i) => i + 1).filter((seq) => seq % 7 === 0);
    expect(lines.map((record) => record.seq)).toEqual(expected);
    const stderr = unwrap(await stub.logs(0, 10, { streams: ["stderr"] }));
    expect(stderr.records.map((record) => record.seq)).toEqual([5, 10, 15, 20, 25, 30, 35, 40, 45, 50]);
  });

  it("downloads the whole log as text across segments and the tail", async () => {
    const { stub } = await runningEvent();
    const total = TAIL_MAX_LINES + SEGMENT_MAX_LINES + 123;
    await appendLines(stub, 1, total);
    const text = await new Response(unwrap(await stub.downloadLog())).text();
    const lines = text.split("\n").slice(0, -1);
    expect(lines).toHaveLength(total);
    expect(lines[0]).toBe(downloadLine({ seq: 1, ts: 1_700_000_000_001, stream: "stdout", line: lineOf(1) }).trimEnd());
    expect(lines.at(-1)?.endsWith(` ${lineOf(total)}`)).toBe(true);
  });

  it("follows from an early seq through the segments, then live, with no gap or repeat", async () => {
    const { stub } = await runningEvent();
    const total = TAIL_MAX_LINES + SEGMENT_MAX_LINES + 40;
    await appendLines(stub, 1, total);
    const stream = unwrap(await stub.followLogs({ after: 100 }));
    const reading = new Response(stream).text();
    await appendLines(stub, total + 1, 50);
    await stub.complete(INSTANCE, { kind: "returned", result: "ok" });
    const text = await reading;
    const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]));
    // The captured lines after 100, then the platform's END line.
    expect(ids).toEqual(Array.from({ length: total + 50 - 100 + 1 }, (_, i) => 101 + i));
    expect(text).toContain("event: end");
  });

  it("follows from the last N stored lines with tail, across a segment boundary, then ends", async () => {
    const { stub } = await runningEvent();
    const total = TAIL_MAX_LINES + SEGMENT_MAX_LINES + 40;
    await appendLines(stub, 1, total);
    await stub.complete(INSTANCE, { kind: "returned", result: "ok" });
    // The END line is the last stored line: total + 1.
    const last = total + 1;
    const tail = TAIL_MAX_LINES + 100;
    const text = await new Response(unwrap(await stub.followLogs({ tail }))).text();
    const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]));
    expect(ids).toEqual(Array.from({ length: tail }, (_, i) => last - tail + 1 + i));
    expect(text).toContain("event: end");
  });

  it("keeps the lines in the event when a roll's write fails after the object was stored, and the next roll writes the same object", async () => {
    const { requestId, stub } = await runningEvent();
    await runInDurableObject(stub, async (_instance, state) => {
      let failNext = true;
      const flaky = new Proxy(env.LOG_BUCKET, {
        get(target, property) {
          if (property !== "put") return Reflect.get(target, property).bind(target);
          return async (...args: Parameters<R2Bucket["put"]>) => {
            const stored = await target.put(...args);
            if (failNext) {
              failNext = false;
              throw new Error("the runtime died right after the segment was written");
            }
            return stored;
          };
        },
      });
      const ledger: LogUsageLedger = { add: async () => false, release: async () => {} };
      const owner = () => ({ namespace: "default", requestId, limitChars: Number.POSITIVE_INFINITY });
      const store = new EventLogStore(state.storage.sql, new SegmentReader(flaky), flaky, owner, ledger);
      const records = Array.from({ length: TAIL_MAX_LINES + 1 }, (_, i) => ({
        seq: i + 1,
        ts: 1,
        stream: "stdout" as const,
        line: lineOf(i + 1),
      }));
      store.appendCaptured(records);
      await expect(store.rollSegments()).rejects.toThrow(/died/);
      expect(state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM logs").one().n).toBe(TAIL_MAX_LINES + 1);
      await store.rollSegments();
      const page = await store.read(0, TAIL_MAX_LINES + 10);
      expect(page.records.map((record) => record.seq)).toEqual(records.map((record) => record.seq));
    });
    expect(await segmentKeys("default", requestId)).toHaveLength(1);
  });

  it("deletes an event's segments with the event, and gives their bytes back to the namespace", async () => {
    const namespace = `logs-${crypto.randomUUID().slice(0, 8)}`;
    const { requestId, stub } = await runningEvent(namespace);
    await appendLines(stub, 1, TAIL_MAX_LINES + SEGMENT_MAX_LINES, `${namespace}/chatty#0`);
    expect((await segmentKeys(namespace, requestId)).length).toBeGreaterThan(0);
    const usage = await env.DB.prepare("SELECT bytes FROM namespace_log_usage WHERE namespace = ?")
      .bind(namespace)
      .first<{ bytes: number }>();
    expect(usage?.bytes).toBeGreaterThan(0);
    await stub.complete(`${namespace}/chatty#0`, { kind: "returned", result: "ok" });
    const endedAt = unwrap<PublicEvent>(await stub.view()).endedAt;
    vi.useFakeTimers({ toFake: ["Date"], now: Date.parse(String(endedAt)) + EVENT_RETENTION_MS });
    try {
      expect(await runDurableObjectAlarm(stub)).toBe(true);
    } finally {
      vi.useRealTimers();
    }
    expect(await segmentKeys(namespace, requestId)).toEqual([]);
    expect((await stub.view()).ok).toBe(false);
    const after = await env.DB.prepare("SELECT bytes FROM namespace_log_usage WHERE namespace = ?")
      .bind(namespace)
      .first<{ bytes: number }>();
    expect(after?.bytes).toBe(0);
  });

  it("gives a deleted event's bytes back to its namespace once, even when the deletion fails and is retried", async () => {
    const { requestId, stub } = await runningEvent();
    await runInDurableObject(stub, async (_instance, state) => {
      const released: number[] = [];
      const ledger: LogUsageLedger = {
        add: async () => false,
        release: async (_namespace, bytes) => void released.push(bytes),
      };
      let failDelete = true;
      const flaky = new Proxy(env.LOG_BUCKET, {
        get(target, property) {
          if (property !== "delete") return Reflect.get(target, property).bind(target);
          return async (keys: string | string[]) => {
            if (failDelete) {
              failDelete = false;
              throw new Error("R2 was unreachable");
            }
            return target.delete(keys);
          };
        },
      });
      const owner = () => ({ namespace: "default", requestId, limitChars: Number.POSITIVE_INFINITY });
      const store = new EventLogStore(state.storage.sql, new SegmentReader(flaky), flaky, owner, ledger);
      store.appendCaptured(
        Array.from({ length: TAIL_MAX_LINES + 1 }, (_, i) => ({
          seq: i + 1,
          ts: 1,
          stream: "stdout" as const,
          line: lineOf(i + 1),
        })),
      );
      await store.rollSegments();
      const { segmentBytes } = store.stats();
      await expect(store.deleteSegments("default", requestId)).rejects.toThrow(/unreachable/);
      await store.deleteSegments("default", requestId);
      expect(released).toEqual([segmentBytes]);
    });
    expect(await segmentKeys("default", requestId)).toEqual([]);
  });

  it("stores exactly the new lines up to the event's limit when resent lines and repeats share the batch", async () => {
    const { requestId, stub } = await runningEvent();
    await runInDurableObject(stub, async (_instance, state) => {
      // Lines of 9 characters weigh 10: the limit holds 10 of them.
      const owner = () => ({ namespace: "default", requestId, limitChars: 100 });
      const ledger: LogUsageLedger = { add: async () => false, release: async () => undefined };
      const store = storeOf(state, owner, ledger);
      const record = (seq: number) => ({
        seq,
        ts: seq,
        stream: "stdout" as const,
        line: `line ${String(seq).padStart(4, "0")}`,
      });
      expect(store.appendCaptured([1, 2, 3].map(record)).map((stored) => stored.seq)).toEqual([1, 2, 3]);
      // 1 to 3 again (resent), 5 twice in the batch: the limit falls on the 10th line, seq 10.
      const batch = [1, 2, 3, 4, 5, 5, 6, 7, 8, 9, 10, 11, 12, 13].map(record);
      const stored = store.appendCaptured(batch);
      expect(stored.map((line) => line.line)).toEqual([
        ...[4, 5, 6, 7, 8, 9, 10].map((seq) => record(seq).line),
        "[PLATFORM] Log reached 100 characters: later lines are not stored",
      ]);
      expect(stored.map((line) => line.seq)).toEqual([4, 5, 6, 7, 8, 9, 10, 11]);
      expect(store.droppedLines()).toBe(3);
    });
  });

  it("stops storing an event's captured lines once its namespace's stored logs pass their bound, with a marker", async () => {
    const namespace = `full-${crypto.randomUUID().slice(0, 8)}`;
    const { requestId, stub } = await runningEvent(namespace);
    await runInDurableObject(stub, async (_instance, state) => {
      // A bound of 1 byte: the first segment passes it.
      const ledger = new NamespaceLogUsage(env.DB, 1);
      const owner = () => ({ namespace, requestId, limitChars: Number.POSITIVE_INFINITY });
      const store = storeOf(state, owner, ledger);
      const batch = (from: number, count: number) =>
        Array.from({ length: count }, (_, i) => ({
          seq: from + i,
          ts: 1,
          stream: "stdout" as const,
          line: lineOf(from + i),
        }));
      store.appendCaptured(batch(1, TAIL_MAX_LINES + 1));
      expect((await store.rollSegments()).map((record) => record.line)).toEqual([NAMESPACE_FULL_MARKER]);
      expect(store.appendCaptured(batch(TAIL_MAX_LINES + 2, 10))).toEqual([]);
      expect(store.droppedLines()).toBe(10);
      const page = await store.read(TAIL_MAX_LINES, 100);
      expect(page.records.map((record) => record.line)).toEqual([lineOf(TAIL_MAX_LINES + 1), NAMESPACE_FULL_MARKER]);
    });
  });
});
