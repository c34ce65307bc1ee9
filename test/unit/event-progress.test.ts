// The handler's progress on the worker's side (pure rules): which reports an event keeps, how it
// shows them, when they owe the event index a write, how the relay forwards them and how the live
// stream carries them; and the deadline warning's timeline entry.
import { describe, expect, it } from "vitest";
import type { LogPage } from "../../worker/events/event-log-store";
import { type EventState, publicEvent, transition } from "../../worker/events/event-machine";
import {
  MAX_PROGRESS_MESSAGE_CHARS,
  MIN_PROGRESS_INTERVAL_MS,
  PROGRESS_INDEX_INTERVAL_MS,
  progressIndexDueAt,
  progressOfRow,
  progressStoreDelay,
  publicProgress,
  withProgress,
} from "../../worker/events/event-progress";
import { addTimelineEntries, timelineEntry } from "../../worker/events/event-timeline";
import { LogFollowers } from "../../worker/events/log-followers";
import { relayRecords } from "../../worker/instances/execution-relay";
import { queuedEventState } from "../helpers/event-state";

const INSTANCE = "default/resize#0";

function queued(): EventState {
  return queuedEventState();
}

function apply(state: EventState, command: Parameters<typeof transition>[1]): EventState {
  const result = transition(state, command);
  if (!result.ok) throw new Error(result.message);
  return result.value.state;
}

function running(): EventState {
  const claimed = apply(queued(), { type: "claim", instanceId: INSTANCE, at: 2_000 });
  return apply(claimed, { type: "started", instanceId: INSTANCE, cold: true, containerId: "boot-1", at: 2_500 });
}

describe("the progress an event keeps", () => {
  it("is null in the status before any report, then the latest report with its time", () => {
    const state = running();
    expect(publicEvent(state).progress).toBeNull();
    const first = withProgress(state, INSTANCE, { percent: 10, message: "downloading", seq: 3 }, 5_000);
    const second = first && withProgress(first, INSTANCE, { percent: 60, message: "encoding", seq: 9 }, 6_000);
    expect(second && publicEvent(second).progress).toEqual({
      percent: 60,
      message: "encoding",
      at: new Date(6_000).toISOString(),
    });
  });

  it("raises the version with each report kept, so that the index write carrying it is never older", () => {
    const state = running();
    const next = withProgress(state, INSTANCE, { percent: 1, message: "", seq: 2 }, 3_000);
    expect(next?.version).toBe(state.version + 1);
    const ended =
      next &&
      apply(next, { type: "complete", instanceId: INSTANCE, outcome: { kind: "returned", result: 1 }, at: 4_000 });
    expect(ended?.version).toBeGreaterThan(next?.version ?? Number.POSITIVE_INFINITY);
    // The end keeps the last progress: the final status and the end's index write show it.
    expect(ended && publicEvent(ended).progress?.percent).toBe(1);
  });

  it("ignores a report before the start, after the end, from another instance, or not newer by seq", () => {
    const claimed = apply(queued(), { type: "claim", instanceId: INSTANCE, at: 2_000 });
    expect(withProgress(claimed, INSTANCE, { percent: 5, message: "", seq: 2 }, 2_100)).toBeUndefined();
    const state = running();
    expect(withProgress(state, "default/resize#1", { percent: 5, message: "", seq: 2 }, 3_000)).toBeUndefined();
    const kept = withProgress(state, INSTANCE, { percent: 50, message: "half", seq: 5 }, 3_000);
    if (!kept) throw new Error("not kept");
    expect(withProgress(kept, INSTANCE, { percent: 40, message: "replayed", seq: 5 }, 3_100)).toBeUndefined();
    expect(withProgress(kept, INSTANCE, { percent: 40, message: "older", seq: 4 }, 3_100)).toBeUndefined();
    const ended = apply(kept, {
      type: "complete",
      instanceId: INSTANCE,
      outcome: { kind: "returned", result: 1 },
      at: 4_000,
    });
    expect(withProgress(ended, INSTANCE, { percent: 99, message: "late", seq: 9 }, 4_100)).toBeUndefined();
  });

  it("bounds what it keeps again: percent within 0..100, message cut with a marker", () => {
    const state = running();
    const high = withProgress(state, INSTANCE, { percent: 1e9, message: "m".repeat(1000), seq: 2 }, 3_000);
    expect(high?.progress?.percent).toBe(100);
    expect(high?.progress?.message).toHaveLength(MAX_PROGRESS_MESSAGE_CHARS);
    expect(high?.progress?.message.endsWith("…[truncated]")).toBe(true);
    const low = withProgress(state, INSTANCE, { percent: -3, message: "", seq: 2 }, 3_000);
    expect(low?.progress?.percent).toBe(0);
  });

  it("reads the index row's progress columns, null when the row has none", () => {
    expect(progressOfRow({ progressPercent: null, progressMessage: null, progressAt: null })).toBeNull();
    expect(progressOfRow({ progressPercent: 75, progressMessage: "x", progressAt: 9_000 })).toEqual({
      percent: 75,
      message: "x",
      at: new Date(9_000).toISOString(),
    });
    expect(publicProgress(undefined)).toBeNull();
  });
});

describe("the index write a progress report owes", () => {
  it("is due one interval after a report when none is owed, and never brought forward by later reports", () => {
    expect(progressIndexDueAt(10_000, undefined)).toBe(10_000 + PROGRESS_INDEX_INTERVAL_MS);
    const owed = 10_000 + PROGRESS_INDEX_INTERVAL_MS;
    // Later reports join the owed write: at most one write per interval.
    expect(progressIndexDueAt(12_000, owed)).toBe(owed);
    // A failing write's backoff is kept.
    expect(progressIndexDueAt(12_000, 300_000)).toBe(300_000);
  });
});

describe("the storage of a progress report", () => {
  it("is at once for the first report or one an interval after the last stored, else waits the rest", () => {
    expect(progressStoreDelay(10_000, undefined)).toBe(0);
    expect(progressStoreDelay(10_000 + MIN_PROGRESS_INTERVAL_MS, 10_000)).toBe(0);
    expect(progressStoreDelay(10_000 + 50_000, 10_000)).toBe(0);
    expect(progressStoreDelay(10_010, 10_000)).toBe(MIN_PROGRESS_INTERVAL_MS - 10);
  });
});

/** An agent record stream of the given records, as NDJSON. */
function streamOf(records: readonly Record<string, unknown>[]): ReadableStream<Uint8Array> {
  return new Blob([records.map((record) => `${JSON.stringify(record)}\n`).join("")]).stream();
}

describe("the relay of progress records", () => {
  it("forwards each progress record to the event in order and skips malformed ones", async () => {
    const progress: { percent: number; message: string; seq: number }[] = [];
    const relayed = await relayRecords(
      streamOf([
        { type: "started", seq: 1, ts: 1 },
        { type: "progress", seq: 2, ts: 2, percent: 10, message: "a" },
        { type: "log", seq: 3, ts: 3, stream: "stdout", line: "x" },
        { type: "progress", seq: 4, ts: 4, percent: 101, message: "outside the contract" },
        { type: "progress", seq: 5, ts: 5, percent: 100, message: "b" },
        { type: "end", seq: 6, ts: 6, outcome: { kind: "returned", result: null } },
      ]),
      new AbortController().signal,
      {
        stillCurrent: () => true,
        sendLogs: async () => undefined,
        sendProgress: async ({ percent, message, seq }) => void progress.push({ percent, message, seq }),
      },
    );
    expect(relayed?.end.seq).toBe(6);
    expect(progress).toEqual([
      { percent: 10, message: "a", seq: 2 },
      { percent: 100, message: "b", seq: 5 },
    ]);
  });
});

/** The stream's events in order, as "log:<seq>", "progress:<percent>", "timeline:<kind>", "end". */
function sequence(text: string): string[] {
  const events: string[] = [];
  for (const block of text.split("\n\n")) {
    const type = /^event: (.*)$/m.exec(block)?.[1];
    const data = /^data: (.*)$/m.exec(block)?.[1];
    if (!type || !data) continue;
    const parsed = JSON.parse(data) as { seq?: number; percent?: number; kind?: string };
    if (type === "log") events.push(`log:${parsed.seq}`);
    else if (type === "progress") events.push(`progress:${parsed.percent}`);
    else if (type === "timeline") events.push(`timeline:${parsed.kind}`);
    else events.push(type);
  }
  return events;
}

const ENDED = { requestId: "r", status: "FINISHED", statusCode: 200, durationMs: 1, errorMessage: null };

describe("progress on the live-log stream", () => {
  it("opens with the latest progress, then carries each update in order with the lines", async () => {
    const records = [{ seq: 1, ts: 1, stream: "stdout" as const, line: "one" }];
    const readPage = (after: number): LogPage => {
      const page = records.filter((record) => record.seq > after);
      return { records: page, lastSeq: page.at(-1)?.seq ?? after, more: false };
    };
    const followers = new LogFollowers(readPage, 100);
    const stream = followers.open(0, undefined, undefined, [], { percent: 5, message: "", at: "x" });
    if (!stream) throw new Error("refused");
    const reading = new Response(stream).text();
    await new Promise((resolve) => setTimeout(resolve, 10));
    followers.publishProgress({ percent: 40, message: "a", at: "y" });
    records.push({ seq: 2, ts: 2, stream: "stdout", line: "two" });
    followers.publish([records[1] as (typeof records)[number]]);
    followers.publishProgress({ percent: 90, message: "b", at: "z" });
    followers.end(ENDED);
    expect(sequence(await reading)).toEqual(["progress:5", "log:1", "progress:40", "log:2", "progress:90", "end"]);
  });

  it("gives a follower still reading its backlog only the latest update, once it has caught up", async () => {
    const records = Array.from({ length: 1_000 }, (_, i) => ({
      seq: i + 1,
      ts: i,
      stream: "stdout" as const,
      line: `line ${i + 1}`,
    }));
    const followers = new LogFollowers((after: number, limit: number): LogPage => {
      const page = records.filter((record) => record.seq > after).slice(0, limit);
      const lastSeq = page.at(-1)?.seq ?? after;
      return { records: page, lastSeq, more: lastSeq < records.length };
    }, 100);
    const stream = followers.open(0, undefined, undefined);
    if (!stream) throw new Error("refused");
    // Nothing read yet: the follower is still in its backlog when the updates happen.
    followers.publishProgress({ percent: 10, message: "", at: "a" });
    followers.publishProgress({ percent: 20, message: "", at: "b" });
    const reading = new Response(stream).text();
    await new Promise((resolve) => setTimeout(resolve, 20));
    followers.end(ENDED);
    const events = sequence(await reading);
    expect(events.filter((event) => event.startsWith("progress:"))).toEqual(["progress:20"]);
    expect(events.indexOf("progress:20")).toBe(1_000);
    expect(events.at(-1)).toBe("end");
  });
});

describe("the deadline warning's timeline entry", () => {
  it("is recorded once, with the seconds before the timeout", () => {
    const entry = timelineEntry("deadline-warning", 5_000, "deadline warning sent: SIGTERM 3 s before the timeout");
    const once = addTimelineEntries([timelineEntry("running", 4_000)], [entry]);
    expect(once.map((kept) => kept.kind)).toEqual(["running", "deadline-warning"]);
    expect(addTimelineEntries(once, [{ ...entry, at: 5_100 }])).toBe(once);
  });
});
