// A handler that prints a million lines (about 100 MB) as fast as it can: every line is kept,
// in order, readable by history paging (across the event's R2 segments and its recent lines), by
// the text download, and by a live follower that disconnects midway and resumes.
import { gunzipSync } from "node:zlib";
import { describe, expect, inject, it } from "vitest";
import { ApiClient } from "../helpers/api-client";

const api = new ApiClient(inject("baseUrl"));
const NAMESPACE = "default";
const LINES = 1_000_000;
/** Characters of padding per line: with its number, a line is about 100 characters. */
const PAD = 88;
/** How long the event may take to end (the lines are stored as fast as the platform can). */
const EVENT_DEADLINE_MS = 420_000;

/** Prints event.lines numbered, padded lines as fast as it can, then returns how long that took. */
const FLOOD_NODE = `
exports.main_handler = async (event) => {
  const pad = "x".repeat(event.pad);
  const started = Date.now();
  for (let i = 0; i < event.lines; i++) console.log("line " + i + " " + pad);
  return { printMs: Date.now() - started };
};
`;

function expectedLine(index: number): string {
  return `line ${index} ${"x".repeat(PAD)}`;
}

/** Checks lines arriving one by one against the expected sequence; counts them. */
class SequenceCheck {
  count = 0;
  private firstMismatch: string | undefined;

  see(line: string): void {
    if (this.firstMismatch === undefined && line !== expectedLine(this.count)) {
      this.firstMismatch = `line ${this.count}: got ${JSON.stringify(line.slice(0, 40))}`;
    }
    this.count += 1;
  }

  get mismatch(): string | undefined {
    return this.firstMismatch;
  }
}

/**
 * Follows the log over Server-Sent Events from `lastEventId`, handing each stdout line to `onLine`,
 * until the end event, or until `stopAfter` lines (then the connection is dropped). Answers the id
 * of the last event read and whether the end was reached.
 */
async function follow(
  requestId: string,
  lastEventId: number,
  onLine: (line: string) => void,
  stopAfter = Number.POSITIVE_INFINITY,
): Promise<{ lastId: number; ended: boolean; lines: number; ids: { repeats: number; gaps: number } }> {
  const controller = new AbortController();
  const response = await api.request(`/v1/events/${requestId}/logs/stream`, {
    headers: { accept: "text/event-stream", "last-event-id": String(lastEventId) },
    signal: controller.signal,
  });
  expect(response.status).toBe(200);
  const decoder = new TextDecoder();
  let pending = "";
  let lastId = lastEventId;
  let lines = 0;
  const ids = { repeats: 0, gaps: 0 };
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      pending += decoder.decode(chunk, { stream: true });
      let start = 0;
      let boundary = pending.indexOf("\n\n", start);
      while (boundary >= 0) {
        const block = pending.slice(start, boundary);
        start = boundary + 2;
        boundary = pending.indexOf("\n\n", start);
        if (block.startsWith("event: end") || block.includes("\nevent: end"))
          return { lastId, ended: true, lines, ids };
        const idMatch = /^id: (\d+)$/m.exec(block);
        const data = /^data: (.*)$/m.exec(block);
        if (!idMatch || !data) continue;
        const id = Number(idMatch[1]);
        if (id <= lastId) ids.repeats += 1;
        else if (id !== lastId + 1) ids.gaps += 1;
        lastId = Math.max(lastId, id);
        const record = JSON.parse(data[1] as string) as { stream: string; line: string };
        if (record.stream !== "stdout") continue;
        onLine(record.line);
        lines += 1;
        if (lines >= stopAfter) {
          controller.abort();
          return { lastId, ended: false, lines, ids };
        }
      }
      pending = pending.slice(start);
    }
  } catch (error) {
    if (!controller.signal.aborted) throw error;
  }
  return { lastId, ended: false, lines, ids };
}

describe("a million log lines from one handler", () => {
  it(
    "keeps every line in order: by history paging, by the download, and for a follower that disconnects and resumes",
    async () => {
      const name = await api.createUniqueFunction(NAMESPACE, "flood", {
        runtime: "Nodejs22",
        files: { "index.js": FLOOD_NODE },
        timeout: 600,
      });
      const requestId = await api.invoke(NAMESPACE, name, { lines: LINES, pad: PAD });

      // A follower from the start reads a third of the lines live, goes away, and resumes.
      const followed = new SequenceCheck();
      const first = await follow(requestId, 0, (line) => followed.see(line), LINES / 3);
      expect(first.ended).toBe(false);
      const rest = await follow(requestId, first.lastId, (line) => followed.see(line));
      expect(rest.ended).toBe(true);
      expect(followed.mismatch).toBeUndefined();
      expect(followed.count).toBe(LINES);
      expect(first.ids).toEqual({ repeats: 0, gaps: 0 });
      expect(rest.ids).toEqual({ repeats: 0, gaps: 0 });

      const done = await api.waitForEvent(requestId, undefined, EVENT_DEADLINE_MS);
      expect(done).toMatchObject({ status: "FINISHED", statusCode: 200 });

      // History paging, across the R2 segments and the recent lines.
      const paged = new SequenceCheck();
      let after = 0;
      for (;;) {
        const page = await api.logPage(requestId, after);
        for (const record of page.records) if (record.stream === "stdout") paged.see(record.line);
        if (page.records.length === 0) break;
        after = page.lastSeq;
      }
      expect(paged.mismatch).toBeUndefined();
      expect(paged.count).toBe(LINES);

      // The download, gzip-compressed on request.
      const download = await api.request(`/v1/events/${requestId}/logs.txt`, {
        headers: { "accept-encoding": "gzip" },
      });
      expect(download.status).toBe(200);
      expect(download.headers.get("content-type")).toContain("text/plain");
      // fetch decompresses a gzip answer itself; a raw body would start with gzip's magic bytes.
      const bytes = Buffer.from(await download.arrayBuffer());
      const text = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes).toString("utf8") : bytes.toString("utf8");
      const downloaded = new SequenceCheck();
      let from = 0;
      for (let end = text.indexOf("\n", from); end >= 0; end = text.indexOf("\n", from)) {
        const line = text.slice(from, end);
        from = end + 1;
        // `<ISO time> <stream> <line>`
        const first = line.indexOf(" ");
        const second = line.indexOf(" ", first + 1);
        if (line.slice(first + 1, second) === "stdout") downloaded.see(line.slice(second + 1));
      }
      expect(downloaded.mismatch).toBeUndefined();
      expect(downloaded.count).toBe(LINES);
    },
    EVENT_DEADLINE_MS + 300_000,
  );
});
