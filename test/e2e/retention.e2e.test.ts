// Retention under `npm start`: wrangler dev fires no cron trigger, so scripts/start.mjs drives the
// Worker's scheduled handler itself (every 5 s in this suite, AFP_SCHEDULED_INTERVAL_MS; every
// minute by default). Its 3-day purge of the event index must run on the running platform.
import { get as httpGet } from "node:http";
import { describe, expect, inject, it } from "vitest";
import type { EventIndexEntry } from "../../worker/events/event-index-entry";
import { ADMIN_HEADERS, ApiClient, uniqueName } from "../helpers/api-client";

const api = new ApiClient(inject("baseUrl"));
const NAMESPACE = "retention";
const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;
/** The index's retention, counted from an event's start (worker/events/event-list.ts). */
const INDEX_RETENTION_MS = 3 * DAY;
/** How long the purge may take to come round: many periods of the suite's 5 s driver. */
const PURGE_DEADLINE_MS = 90_000;
/** Pause between two list reads (well under the list's 20 per second). */
const POLL_INTERVAL_MS = 1_000;

/** An ended event's index row that started at `startTime`. */
function row(functionName: string, startTime: number): EventIndexEntry {
  return {
    requestId: crypto.randomUUID(),
    namespace: NAMESPACE,
    functionName,
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    status: "FINISHED",
    statusCode: 200,
    phase: "finished",
    startTime,
    endTime: startTime + 1_000,
    durationMs: 1_000,
    version: 4,
  };
}

/** The RequestIds the list shows for the function (one page holds them all). */
async function listedIds(functionName: string): Promise<string[]> {
  const { status, body } = await api.json<{ events: { requestId: string }[] }>(
    `/v1/namespaces/${NAMESPACE}/functions/${functionName}/events?limit=100`,
  );
  expect(status).toBe(200);
  return body.events.map((event) => event.requestId).sort();
}

describe("event index retention under npm start", () => {
  it("purges rows that started more than 3 days ago and keeps younger ones, with no manual trigger", async () => {
    const functionName = uniqueName("kept");
    const now = Date.now();
    const expired = row(functionName, now - INDEX_RETENTION_MS - HOUR);
    const fresh = row(functionName, now - HOUR);
    // Young enough to outlive this test by far: ten minutes inside the window.
    const nearEdge = row(functionName, now - INDEX_RETENTION_MS + 10 * 60_000);
    const seeded = await fetch(`${inject("baseUrl")}/_diagnostics/seed-index`, {
      method: "POST",
      headers: { ...ADMIN_HEADERS, "content-type": "application/json" },
      body: JSON.stringify({ rows: [expired, fresh, nearEdge] }),
    });
    expect(seeded.status).toBe(200);
    const keep = [fresh.requestId, nearEdge.requestId].sort();
    // The seed is visible before any purge could matter: all three are listed or the expired one
    // is already gone (a run may have come between the two calls).
    expect((await listedIds(functionName)).filter((id) => id !== expired.requestId)).toEqual(keep);

    const deadline = Date.now() + PURGE_DEADLINE_MS;
    let ids = await listedIds(functionName);
    while (ids.includes(expired.requestId) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
      ids = await listedIds(functionName);
    }
    expect(ids, "the expired row is purged by the platform's own scheduled run").toEqual(keep);
  });
});

describe("event index retention per namespace", () => {
  it("purges a namespace's ended rows past its own shorter retention and keeps the younger ones", async () => {
    const namespace = "retention-short";
    const set = await api.json(`/v1/namespaces/${namespace}/settings`, {
      method: "PUT",
      body: JSON.stringify({ retentionHours: 1 }),
    });
    expect(set.status).toBe(200);
    const functionName = uniqueName("short");
    const now = Date.now();
    // Ended 2 h ago: past the namespace's 1 h, well inside the default 72 h.
    const expired = { ...row(functionName, now - 3 * HOUR), namespace, endTime: now - 2 * HOUR };
    const fresh = { ...row(functionName, now - 3 * HOUR), namespace, endTime: now - 10 * 60_000 };
    const seeded = await fetch(`${inject("baseUrl")}/_diagnostics/seed-index`, {
      method: "POST",
      headers: { ...ADMIN_HEADERS, "content-type": "application/json" },
      body: JSON.stringify({ rows: [expired, fresh] }),
    });
    expect(seeded.status).toBe(200);
    const listed = async () => {
      const { body } = await api.json<{ events: { requestId: string }[] }>(
        `/v1/namespaces/${namespace}/functions/${functionName}/events?limit=100`,
      );
      return body.events.map((event) => event.requestId);
    };
    const deadline = Date.now() + PURGE_DEADLINE_MS;
    let ids = await listed();
    while (ids.includes(expired.requestId) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
      ids = await listed();
    }
    expect(ids, "the row past the namespace's retention is purged, the younger one kept").toEqual([fresh.requestId]);
  });
});

/** Status of a GET of `path` on the platform with the given Host header (node:http: fetch would set its own). */
function statusWithHost(path: string, host: string): Promise<number> {
  const url = new URL(path, inject("baseUrl"));
  return new Promise((resolve, reject) => {
    const request = httpGet(
      { hostname: url.hostname, port: url.port, path: url.pathname + url.search, headers: { host } },
      (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      },
    );
    request.on("error", reject);
  });
}

describe("the local scheduled route the start script drives", () => {
  it("refuses a request naming another host (a page in a browser cannot fire it)", async () => {
    const path = "/cdn-cgi/local/scheduled?cron=*+*+*+*+*&format=json";
    expect(await statusWithHost(path, "evil.example")).toBe(403);
    expect(await statusWithHost(path, new URL(inject("baseUrl")).host)).toBe(200);
  });
});
