// Event statistics on the running platform with real containers (issue 15, "List"): one endpoint
// counts a function's events per status and hour from the D1 index, filtered by tag; a key of
// another namespace gets 404, and a malformed window is refused with 400.
import { beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient } from "../helpers/api-client";
import { NODE_HANDLER } from "./fixtures";

const api = new ApiClient(inject("baseUrl"));
const NAMESPACE = "default";
const STATUSES = ["RUNNING", "FINISHED", "FAILED", "ABORTED"] as const;
/** MAX_STATISTICS_HOURS of worker/events/event-statistics.ts (a Worker module, not imported in Node). */
const MAX_STATISTICS_HOURS = 72;

type Counts = Record<(typeof STATUSES)[number], number>;
interface Statistics {
  namespace: string;
  functionName: string;
  bucketMs: number;
  buckets: ({ start: string } & Counts)[];
  totals: Counts;
}

describe("event statistics", () => {
  let name: string;
  const path = (query = "") => `/v1/namespaces/${NAMESPACE}/functions/${name}/statistics${query}`;

  beforeAll(async () => {
    name = await api.createUniqueFunction(NAMESPACE, "stats", {
      runtime: "Nodejs22",
      handler: "index.main_handler",
      files: { "index.js": NODE_HANDLER },
      timeout: 30,
    });
    const invoke = (event: unknown, tags: string) =>
      api.json<{ requestId: string }>(`/v1/namespaces/${NAMESPACE}/functions/${name}/invocations?tags=${tags}`, {
        method: "POST",
        body: JSON.stringify(event),
      });
    const answers = await Promise.all([
      invoke({}, "batch=a"),
      invoke({}, "batch=b"),
      invoke({ throw: "boom" }, "batch=a"),
    ]);
    for (const answer of answers) expect(answer.status).toBe(202);
    await Promise.all(answers.map((answer) => api.waitForEvent(answer.body.requestId)));
    // The index follows each event's object: wait until the statistics count all three ended.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const { body } = await api.json<Statistics>(path());
      if (body.totals.FINISHED + body.totals.FAILED === 3 || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }, 120_000);

  it("counts the function's events per status, hour by hour, with every hour of the window present", async () => {
    const { status, body } = await api.json<Statistics>(path("?hours=3"));
    expect(status).toBe(200);
    expect(body).toMatchObject({ namespace: NAMESPACE, functionName: name, bucketMs: 3_600_000 });
    expect(body.totals).toEqual({ RUNNING: 0, FINISHED: 2, FAILED: 1, ABORTED: 0 });
    expect(body.buckets).toHaveLength(3);
    // The events started in the current hour: the last bucket holds them all.
    expect(body.buckets[2]).toMatchObject({ FINISHED: 2, FAILED: 1 });
    const summed = Object.fromEntries(
      STATUSES.map((key) => [key, body.buckets.reduce((total, bucket) => total + bucket[key], 0)]),
    );
    expect(summed).toEqual(body.totals);
  });

  it("counts only the events carrying every tag of a tag filter", async () => {
    const { body } = await api.json<Statistics>(path("?tags=batch=a"));
    expect(body.totals).toEqual({ RUNNING: 0, FINISHED: 1, FAILED: 1, ABORTED: 0 });
    const none = await api.json<Statistics>(path("?tags=batch=zzz"));
    expect(none.body.totals).toEqual({ RUNNING: 0, FINISHED: 0, FAILED: 0, ABORTED: 0 });
  });

  it("answers 404 to a key of another namespace and 400 to a window past its bound", async () => {
    const key = await api.json<{ secretId: string; secretKey: string }>("/v1/admin/credentials", {
      method: "POST",
      body: JSON.stringify({ namespaces: ["stats-elsewhere"], description: "statistics e2e" }),
    });
    expect(key.status).toBe(201);
    const stranger = new ApiClient(inject("baseUrl"), key.body);
    const foreign = await stranger.json<{ error: { code: string } }>(path());
    expect(foreign.status).toBe(404);
    expect(JSON.stringify(foreign.body)).not.toContain("FINISHED");
    const tooLong = await api.json<{ error: { code: string } }>(path(`?hours=${MAX_STATISTICS_HOURS + 1}`));
    expect(tooLong).toMatchObject({ status: 400, body: { error: { code: "INVALID_PARAMETER" } } });
    const malformed = await api.json<{ error: { code: string } }>(path("?tags=no-equals-sign"));
    expect(malformed).toMatchObject({ status: 400, body: { error: { code: "INVALID_PARAMETER" } } });
  });
});
