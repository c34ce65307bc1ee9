// The event list's StatusCode and duration filters and its cursor on the running platform with
// real containers (issue 15, "List"): two real events, one FINISHED (200) after a short sleep and
// one FAILED (430) at once, found apart by each filter and walked page by page by the cursor.
import { beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient, type EventView } from "../helpers/api-client";
import { NODE_HANDLER } from "./fixtures";

const api = new ApiClient(inject("baseUrl"));
const NAMESPACE = "default";
/** How long the finishing event sleeps: its duration is at least this, the failing one's far less. */
const SLEEP_MS = 1500;

interface ListPage {
  total: number;
  events: { requestId: string; status: string; statusCode: number | null; durationMs: number | null }[];
  nextCursor: string | null;
}

describe("list filters and cursor on real events", () => {
  let name: string;
  let finished: EventView;
  let failed: EventView;

  async function list(query: string): Promise<{ status: number; body: ListPage }> {
    return api.json<ListPage>(`/v1/namespaces/${NAMESPACE}/functions/${name}/events?${query}`);
  }

  beforeAll(async () => {
    name = await api.createUniqueFunction(NAMESPACE, "listfilter", {
      runtime: "Nodejs22",
      handler: "index.main_handler",
      files: { "index.js": NODE_HANDLER },
      timeout: 30,
    });
    const [okId, failId] = await Promise.all([
      api.invoke(NAMESPACE, name, { sleepMs: SLEEP_MS }),
      api.invoke(NAMESPACE, name, { throw: "listed as failed" }),
    ]);
    [finished, failed] = await Promise.all([api.waitForEvent(okId), api.waitForEvent(failId)]);
    // The index follows each event's object: wait until it shows both ended.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const { body } = await list("statuses=FINISHED,FAILED");
      if (body.total === 2 || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }, 120_000);

  it("ran one event to FINISHED 200 and one to FAILED 430", () => {
    expect(finished.status).toBe("FINISHED");
    expect(finished.statusCode).toBe(200);
    expect(failed.status).toBe("FAILED");
    expect(failed.statusCode).toBe(430);
    expect(finished.durationMs).toBeGreaterThanOrEqual(SLEEP_MS);
    expect(failed.durationMs).toBeLessThan(SLEEP_MS);
  });

  it("finds each event by its StatusCode, and both by both", async () => {
    const ok = await list("statusCodes=200");
    expect(ok.status).toBe(200);
    expect(ok.body.events.map((event) => event.requestId)).toEqual([finished.requestId]);
    const bad = await list("statusCodes=430");
    expect(bad.body.events.map((event) => [event.requestId, event.statusCode])).toEqual([[failed.requestId, 430]]);
    const both = await list("statusCodes=200,430");
    expect(both.body.total).toBe(2);
  });

  it("finds each event by its duration range", async () => {
    const slow = await list(`minDurationMs=${SLEEP_MS}`);
    expect(slow.body.events.map((event) => event.requestId)).toEqual([finished.requestId]);
    const exact = await list(`minDurationMs=${failed.durationMs}&maxDurationMs=${failed.durationMs}`);
    expect(exact.body.events.map((event) => event.requestId)).toEqual([failed.requestId]);
    const none = await list(`statusCodes=200&maxDurationMs=${SLEEP_MS - 1}`);
    expect(none.body.total).toBe(0);
  });

  it("walks both events one page at a time by cursor, and refuses it with another order", async () => {
    const first = await list("limit=1&order=ASC");
    expect(first.status).toBe(200);
    expect(first.body.total).toBe(2);
    expect(first.body.nextCursor).not.toBeNull();
    const second = await list(`limit=1&order=ASC&cursor=${first.body.nextCursor}`);
    expect(second.status).toBe(200);
    expect(second.body.nextCursor).toBeNull();
    const walked = [...first.body.events, ...second.body.events].map((event) => event.requestId);
    expect(walked.sort()).toEqual([finished.requestId, failed.requestId].sort());
    const refused = await list(`limit=1&order=DESC&cursor=${first.body.nextCursor}`);
    expect(refused.status).toBe(400);
  });
});
