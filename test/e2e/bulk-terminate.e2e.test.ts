// Bulk termination (issue 15) on the running platform with real containers: a paused function's
// queued events (20, 15 of them tagged) and one running event of a sleeping function; a dry run
// counts, a job by function + tag ends exactly the tagged ones ABORTED and reports its counts, a
// graceful job sends SIGTERM to the running handler; wrong namespace, malformed and oversized
// requests are refused. Everything lives in a namespace of its own, so no other test's event matches.
import { beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient, type EventView } from "../helpers/api-client";
import { SIGTERM_NODE_HANDLER } from "../helpers/sigterm-handlers";

const api = new ApiClient(inject("baseUrl"));
const NAMESPACE = "bulk-e2e";
const BASE = `/v1/namespaces/${NAMESPACE}/bulk-terminations`;
/** Longest wait for a job or an event (generous: the machine is shared). */
const WAIT_MS = 60_000;
/** Queued events of the paused function: TAGGED carry batch=<tag>, the others none. */
const QUEUED = 20;
const TAGGED = 15;
/** Body limit of the route (events/bulk-terminate.ts MAX_BULK_TERMINATE_BODY_BYTES). */
const MAX_BODY_BYTES = 8 * 1024;

interface Job {
  jobId: string;
  status: "RUNNING" | "FINISHED" | "CANCELLED" | "FAILED";
  mode: string;
  graceSeconds: number | null;
  filter: { functionName: string | null; tags: Record<string, string> };
  counts: { matched: number; terminated: number; skipped: number; failed: number };
  finishedAt: string | null;
}
type ErrorBody = { error: { code: string; message: string } };
type GraceView = EventView & { terminationMode: string | null; endedWithinGrace: boolean | null };

const post = (body: unknown, client = api, namespace = NAMESPACE) =>
  client.json<Job & { count: number } & ErrorBody>(`/v1/namespaces/${namespace}/bulk-terminations`, {
    method: "POST",
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

async function finished(jobId: string): Promise<Job> {
  let job: Job | undefined;
  await expect
    .poll(
      async () => {
        job = (await api.json<Job>(`${BASE}/${jobId}`)).body;
        return job.status;
      },
      { timeout: WAIT_MS, interval: 200 },
    )
    .toBe("FINISHED");
  return job as Job;
}

let queuedFn = "";
let sleeperFn = "";
const batch = `b${Date.now()}`;
let tagged: string[] = [];
let untagged: string[] = [];

beforeAll(async () => {
  queuedFn = await api.createUniqueFunction(NAMESPACE, "bulkq", {
    runtime: "Nodejs22",
    files: { "index.js": "exports.main_handler = async () => 'ran';" },
  });
  sleeperFn = await api.createUniqueFunction(NAMESPACE, "bulks", {
    runtime: "Nodejs22",
    files: { "index.js": SIGTERM_NODE_HANDLER },
    timeout: 120,
  });
  const paused = await api.request(`/v1/namespaces/${NAMESPACE}/functions/${queuedFn}/dispatch/pause`, {
    method: "POST",
  });
  expect(paused.status).toBe(200);
  const invoke = async (query: string) => {
    const { status, body } = await api.json<{ requestId: string }>(
      `/v1/namespaces/${NAMESPACE}/functions/${queuedFn}/invocations${query}`,
      { method: "POST", body: "{}" },
    );
    expect(status).toBe(202);
    return body.requestId;
  };
  tagged = await Promise.all(Array.from({ length: TAGGED }, () => invoke(`?tags=batch=${batch}`)));
  untagged = await Promise.all(Array.from({ length: QUEUED - TAGGED }, () => invoke("")));
}, WAIT_MS);

describe("bulk termination", () => {
  it("counts the matching not-ended events in a dry run and creates nothing", async () => {
    // The index row of an accepted event may trail its acceptance by a moment.
    await expect
      .poll(async () => (await post({ functionName: queuedFn, dryRun: true })).body.count, { timeout: WAIT_MS })
      .toBe(QUEUED);
    const byTag = await post({ functionName: queuedFn, tags: { batch }, dryRun: true });
    expect(byTag).toMatchObject({ status: 200, body: { count: TAGGED } });
    expect((await post({ tags: { batch }, dryRun: true })).body.count).toBe(TAGGED);
    expect((await post({ tags: { batch: "none" }, dryRun: true })).body.count).toBe(0);
    expect((await api.event(tagged[0] as string)).status).toBe("RUNNING");
  });

  it("ends exactly the events of the function carrying the tag, ABORTED, and reports the counts", async () => {
    const started = await post({ functionName: queuedFn, tags: { batch } });
    expect(started.status).toBe(202);
    expect(started.body).toMatchObject({ status: "RUNNING", mode: "forced", filter: { functionName: queuedFn } });
    const job = await finished(started.body.jobId);
    expect(job.counts).toEqual({ matched: TAGGED, terminated: TAGGED, skipped: 0, failed: 0 });
    expect(job.finishedAt).not.toBeNull();
    for (const requestId of tagged) expect((await api.event(requestId)).status).toBe("ABORTED");
    for (const requestId of untagged) expect((await api.event(requestId)).status).toBe("RUNNING");
    // Run again: the ended ones no longer match.
    const again = await finished((await post({ functionName: queuedFn, tags: { batch } })).body.jobId);
    expect(again.counts.matched).toBe(0);
  });

  it(
    "terminates a running handler gracefully: SIGTERM, then it ends within its grace",
    async () => {
      const requestId = await api.invoke(NAMESPACE, sleeperFn, { onSigterm: "return" });
      await api.waitForEvent(requestId, (event) => event.phase === "running", WAIT_MS);
      await api.waitForLogLine(requestId, "ready", WAIT_MS);
      const started = await post({ functionName: sleeperFn, mode: "graceful", graceSeconds: 10 });
      expect(started.body).toMatchObject({ status: "RUNNING", mode: "graceful", graceSeconds: 10 });
      const job = await finished(started.body.jobId);
      expect(job.counts).toMatchObject({ matched: 1, terminated: 1 });
      const end = (await api.waitForEvent(requestId, undefined, WAIT_MS)) as GraceView;
      expect(end).toMatchObject({ status: "ABORTED", terminationMode: "graceful", endedWithinGrace: true });
    },
    WAIT_MS * 2,
  );

  it("cancels a job: DELETE answers it CANCELLED (or FINISHED when it was done already), and again unchanged", async () => {
    const started = await post({ functionName: queuedFn });
    const cancelled = await api.json<Job>(`${BASE}/${started.body.jobId}`, { method: "DELETE" });
    expect(cancelled.status).toBe(200);
    expect(["CANCELLED", "FINISHED"]).toContain(cancelled.body.status);
    const again = await api.json<Job>(`${BASE}/${started.body.jobId}`, { method: "DELETE" });
    expect(again.body.status).toBe(cancelled.body.status);
  });

  it("does not show a job under another namespace, nor to a key of another namespace", async () => {
    const started = await post({ functionName: queuedFn, dryRun: false, tags: { batch: "none" } });
    expect(started.status).toBe(202);
    const elsewhere = await api.json<ErrorBody>(`/v1/namespaces/default/bulk-terminations/${started.body.jobId}`);
    expect(elsewhere).toMatchObject({ status: 404, body: { error: { code: "NOT_FOUND" } } });
    const unknown = await api.json<ErrorBody>(`${BASE}/00000000-0000-4000-8000-000000000000`);
    expect(unknown.status).toBe(404);

    const key = await api.json<{ secretId: string; secretKey: string }>("/v1/admin/credentials", {
      method: "POST",
      body: JSON.stringify({ namespaces: ["default"], description: "bulk e2e" }),
    });
    expect(key.status).toBe(201);
    const stranger = new ApiClient(inject("baseUrl"), key.body);
    expect((await post({ dryRun: true }, stranger)).status).toBe(404);
    expect((await stranger.json(`${BASE}/${started.body.jobId}`)).status).toBe(404);
    expect((await stranger.json(`${BASE}/${started.body.jobId}`, { method: "DELETE" })).status).toBe(404);
    // Of its own namespace, that key's function name is unknown.
    expect((await post({ functionName: queuedFn, dryRun: true }, stranger, "default")).body.error.code).toBe(
      "FUNCTION_NOT_FOUND",
    );
  });

  it("refuses a malformed body with 400 naming the field, and an oversized one with 413", async () => {
    const status = await post({ functionName: queuedFn, statuses: ["FINISHED"], dryRun: true });
    expect(status.status).toBe(400);
    expect(status.body.error.message).toMatch(/^statuses/);
    const grace = await post({ functionName: queuedFn, graceSeconds: 5 });
    expect(grace.status).toBe(400);
    expect(grace.body.error.message).toMatch(/^graceSeconds/);
    expect((await post({ functionName: queuedFn, mode: "gentle" })).body.error.message).toMatch(/^mode/);
    expect((await post("{not json")).body.error.code).toBe("INVALID_JSON");
    expect((await post("")).status).toBe(400);
    const oversized = await post({ functionName: queuedFn, padding: "x".repeat(MAX_BODY_BYTES) });
    expect(oversized).toMatchObject({ status: 413, body: { error: { code: "PAYLOAD_TOO_LARGE" } } });
    for (const requestId of untagged) expect((await api.event(requestId)).status).not.toBe("FINISHED");
  });
});
