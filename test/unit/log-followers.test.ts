import { describe, expect, it, vi } from "vitest";
import { type LogFilter, type LogPage, matchesFilter, type StoredLogRecord } from "../../worker/events/event-log-store";
import {
  BACKLOG_IDLE_MS,
  LogFollowers,
  type LogStreamEnd,
  MAX_FOLLOWER_QUEUE_BYTES,
  MAX_FOLLOWERS_PER_EVENT,
} from "../../worker/events/log-followers";

const PAGE = 100;
const decoder = new TextDecoder();

function record(seq: number, line = `line ${seq}`): StoredLogRecord {
  return { seq, ts: 1, stream: "stdout", line };
}

/**
 * A log of `count` lines, with a counter of the page reads made on it. Lines up to `rolledThrough`
 * are read asynchronously, as the event reads its R2 segments; the rest synchronously, as its tail.
 */
function fakeLog(count: number, rolledThrough = 0) {
  const records = Array.from({ length: count }, (_, i) => record(i + 1));
  const reads: number[] = [];
  const read = (after: number, limit: number, filter: LogFilter | undefined): LogPage => {
    const scanned = records.filter((entry) => entry.seq > after).slice(0, limit);
    const last = scanned.at(-1)?.seq ?? after;
    const end = records.at(-1)?.seq ?? 0;
    return {
      records: scanned.filter((entry) => matchesFilter(entry, filter)),
      lastSeq: last,
      more: last < end,
    };
  };
  return {
    records,
    reads,
    readPage: (after: number, limit: number, filter: LogFilter | undefined): LogPage | Promise<LogPage> => {
      reads.push(after);
      if (after >= rolledThrough) return read(after, limit, filter);
      const page = read(after, Math.min(limit, rolledThrough - after), filter);
      return new Promise((resolve) => setTimeout(() => resolve(page), 1));
    },
  };
}

const ENDED: LogStreamEnd = { requestId: "r", status: "FINISHED", statusCode: 200, durationMs: 1, errorMessage: null };

async function readAll(stream: ReadableStream<Uint8Array>): Promise<string> {
  return new Response(stream).text();
}

function ids(text: string): number[] {
  return [...text.matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]));
}

describe("live log followers", () => {
  it("reads the backlog by pages as the client reads, not all at once", async () => {
    const log = fakeLog(10_000);
    const followers = new LogFollowers(log.readPage, PAGE);
    const stream = followers.open(0, ENDED);
    if (!stream) throw new Error("refused");
    const reader = stream.getReader();
    await reader.read();
    await new Promise((resolve) => setTimeout(resolve, 10));
    // The client has read one chunk: only a bounded part of the 100 pages has been read.
    expect(log.reads.length).toBeLessThan(20);
    let text = "";
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      text += decoder.decode(chunk.value);
    }
    expect(ids(text).length).toBeGreaterThan(9_000);
    expect(ids(text).at(-1)).toBe(10_000);
    expect(text).toContain("event: end");
    expect(followers.size).toBe(0);
  });

  it("turns live after the backlog: new lines follow without gaps or repeats, then the end", async () => {
    const log = fakeLog(250);
    const followers = new LogFollowers(log.readPage, PAGE);
    const stream = followers.open(0);
    if (!stream) throw new Error("refused");
    const reading = readAll(stream);
    await new Promise((resolve) => setTimeout(resolve, 10));
    const fresh = [record(251), record(252)];
    log.records.push(...fresh);
    followers.publish([record(250), ...fresh]);
    followers.end(ENDED);
    const text = await reading;
    expect(ids(text)).toEqual(Array.from({ length: 252 }, (_, i) => i + 1));
    expect(text.trimEnd().endsWith(`event: end\ndata: ${JSON.stringify(ENDED)}`)).toBe(true);
  });

  it("reads older lines asynchronously (R2 segments), then turns live from the synchronous tail with no gap or repeat", async () => {
    const log = fakeLog(1_000, 750);
    const followers = new LogFollowers(log.readPage, PAGE);
    const stream = followers.open(0);
    if (!stream) throw new Error("refused");
    const reading = readAll(stream);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const fresh = [record(1_001), record(1_002)];
    log.records.push(...fresh);
    followers.publish(fresh);
    followers.end(ENDED);
    expect(ids(await reading)).toEqual(Array.from({ length: 1_002 }, (_, i) => i + 1));
  });

  it("sends a filtered follower only the lines it asked for, from the backlog and live", async () => {
    const log = fakeLog(500, 300);
    log.records[9] = record(10, "needle in the old part");
    log.records[399] = record(400, "needle in the tail");
    const followers = new LogFollowers(log.readPage, PAGE);
    const stream = followers.open(0, undefined, { contains: "needle", streams: ["stdout"] });
    if (!stream) throw new Error("refused");
    const reading = readAll(stream);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const fresh = [
      record(501, "a needle live"),
      record(502, "hay"),
      { ...record(503, "needle on stderr"), stream: "stderr" as const },
    ];
    log.records.push(...fresh);
    followers.publish(fresh);
    followers.end(ENDED);
    const text = await reading;
    expect(ids(text)).toEqual([10, 400, 501]);
    expect(text).toContain("event: end");
  });

  it(`refuses a follower past ${MAX_FOLLOWERS_PER_EVENT}, and admits one once another leaves`, async () => {
    const followers = new LogFollowers(fakeLog(0).readPage, PAGE);
    const streams = Array.from({ length: MAX_FOLLOWERS_PER_EVENT }, () => followers.open(0));
    expect(streams.every((stream) => stream !== undefined)).toBe(true);
    expect(followers.open(0)).toBeUndefined();
    await streams[0]?.cancel();
    expect(followers.open(0)).toBeDefined();
    followers.end(ENDED);
  });

  it("drops a follower that falls more than the queue bound behind, telling it where to resume", async () => {
    const followers = new LogFollowers(fakeLog(0).readPage, PAGE);
    const slow = followers.open(0);
    const fast = followers.open(0);
    if (!slow || !fast) throw new Error("refused");
    const fastText = readAll(fast);
    await new Promise((resolve) => setTimeout(resolve, 10));
    // The slow follower has not read: it turns live on its first pull, then never reads again.
    const slowReader = slow.getReader();
    await slowReader.read();
    const line = "x".repeat(64 * 1024);
    const batches = Math.ceil((2 * MAX_FOLLOWER_QUEUE_BYTES) / line.length);
    for (let seq = 1; seq <= batches; seq += 1) {
      followers.publish([record(seq, line)]);
      // The fast follower's client reads between lines; the slow one's never does.
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    expect(followers.size).toBe(1);
    let slowText = "";
    for (;;) {
      const chunk = await slowReader.read();
      if (chunk.done) break;
      slowText += decoder.decode(chunk.value);
    }
    const delivered = ids(slowText);
    expect(delivered.length).toBeLessThan(batches);
    expect(slowText).toContain("event: overflow");
    expect(slowText).toContain(`"lastEventId":${delivered.at(-1)}`);
    expect(slowText.length).toBeLessThan(MAX_FOLLOWER_QUEUE_BYTES + 2 * line.length);
    followers.end(ENDED);
    expect(ids(await fastText)).toHaveLength(batches);
  });

  it("closes a follower whose client stopped reading its backlog, with an idle event, and frees its place", async () => {
    vi.useFakeTimers({ toFake: ["Date", "setInterval", "clearInterval"] });
    try {
      const log = fakeLog(10_000);
      const followers = new LogFollowers(log.readPage, PAGE);
      const stream = followers.open(0);
      if (!stream) throw new Error("refused");
      const reader = stream.getReader();
      await reader.read();
      expect(followers.size).toBe(1);
      // A client that reads again within the bound keeps its place.
      vi.advanceTimersByTime(BACKLOG_IDLE_MS - 60_000);
      // It reads until the stream asks the log for more.
      const pages = log.reads.length;
      while (log.reads.length === pages) await reader.read();
      vi.advanceTimersByTime(BACKLOG_IDLE_MS - 60_000);
      expect(followers.size).toBe(1);
      // Then it stops reading for longer than the bound.
      vi.advanceTimersByTime(2 * 60_000);
      expect(followers.size).toBe(0);
      let text = "";
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) break;
        text += decoder.decode(chunk.value);
      }
      expect(text).toContain("event: idle");
      expect(text).not.toContain("event: end");
    } finally {
      vi.useRealTimers();
    }
  });
});
