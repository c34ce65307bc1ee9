import { describe, expect, it } from "vitest";
import type { LogPage, StoredLogRecord } from "../../worker/events/event-log-store";
import type { PublicTimelineEntry } from "../../worker/events/event-timeline";
import { LogFollowers, type LogStreamEnd } from "../../worker/events/log-followers";

function record(seq: number): StoredLogRecord {
  return { seq, ts: seq, stream: "stdout", line: `line ${seq}` };
}

function entry(kind: PublicTimelineEntry["kind"], at: number, detail: string | null = null): PublicTimelineEntry {
  return { at: new Date(at).toISOString(), kind, detail };
}

/** A log of `count` lines read synchronously (the event's SQLite tail). */
function fakeLog(count: number) {
  const records = Array.from({ length: count }, (_, i) => record(i + 1));
  return {
    records,
    readPage: (after: number, limit: number): LogPage => {
      const page = records.filter((stored) => stored.seq > after).slice(0, limit);
      const last = page.at(-1)?.seq ?? after;
      return { records: page, lastSeq: last, more: last < (records.at(-1)?.seq ?? 0) };
    },
  };
}

const ENDED: LogStreamEnd = { requestId: "r", status: "FINISHED", statusCode: 200, durationMs: 1, errorMessage: null };

/** The stream's events in order, as "log:<seq>", "timeline:<kind>" and "end". */
function sequence(text: string): string[] {
  const events: string[] = [];
  for (const block of text.split("\n\n")) {
    const type = /^event: (.*)$/m.exec(block)?.[1];
    const data = /^data: (.*)$/m.exec(block)?.[1];
    if (!type || !data) continue;
    const parsed = JSON.parse(data) as { seq?: number; kind?: string };
    events.push(type === "log" ? `log:${parsed.seq}` : type === "timeline" ? `timeline:${parsed.kind}` : type);
  }
  return events;
}

describe("timeline records on the live-log stream", () => {
  it("opens with the timeline so far, then interleaves new entries with live lines in order", async () => {
    const log = fakeLog(2);
    const followers = new LogFollowers(log.readPage, 100);
    const stream = followers.open(0, undefined, undefined, [entry("accepted", 1), entry("queued", 2, "dispatch")]);
    if (!stream) throw new Error("refused");
    const reading = new Response(stream).text();
    await new Promise((resolve) => setTimeout(resolve, 10));
    followers.publishTimeline([entry("running", 3, "cold start")]);
    log.records.push(record(3));
    followers.publish([record(3)]);
    followers.publishTimeline([entry("ended", 4, "FINISHED 200")]);
    followers.end(ENDED);
    const text = await reading;
    expect(sequence(text)).toEqual([
      "timeline:accepted",
      "timeline:queued",
      "log:1",
      "log:2",
      "timeline:running",
      "log:3",
      "timeline:ended",
      "end",
    ]);
    // A timeline record has no id: a client resumes by log seq only.
    expect(text).not.toMatch(/id: \d+\nevent: timeline/);
    expect(text).toContain(`event: timeline\ndata: ${JSON.stringify(entry("running", 3, "cold start"))}`);
  });

  it("holds entries that happen while a follower reads its backlog until it has caught up", async () => {
    const log = fakeLog(1_000);
    const followers = new LogFollowers(log.readPage, 100);
    const stream = followers.open(0, undefined, undefined, []);
    if (!stream) throw new Error("refused");
    // Nothing read yet: the follower is still in its backlog when the entry happens.
    followers.publishTimeline([entry("terminate-requested", 5, "graceful")]);
    const reading = new Response(stream).text();
    await new Promise((resolve) => setTimeout(resolve, 20));
    followers.end(ENDED);
    const events = sequence(await reading);
    expect(events.indexOf("timeline:terminate-requested")).toBe(1_000);
    expect(events.at(-1)).toBe("end");
    expect(events.filter((event) => event.startsWith("timeline:"))).toHaveLength(1);
  });

  it("sends an ended event's whole timeline before its backlog and the end", async () => {
    const followers = new LogFollowers(fakeLog(1).readPage, 100);
    const stream = followers.open(0, ENDED, undefined, [entry("accepted", 1), entry("ended", 2, "FINISHED 200")]);
    if (!stream) throw new Error("refused");
    expect(sequence(await new Response(stream).text())).toEqual([
      "timeline:accepted",
      "timeline:ended",
      "log:1",
      "end",
    ]);
  });
});
