// BulkTerminationObject (issue 15): a namespace's bulk termination jobs and their alarm loop, run
// against index rows whose events do not exist (each termination is then counted as skipped, as for
// an event that vanished): paging to the end, the snapshot, cancel while running, the bound on
// running jobs and a job id of another namespace.
import { env, runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import {
  BULK_JOB_RETENTION_MS,
  BULK_TERMINATE_EVENTS_PER_SECOND,
  BULK_TERMINATE_PAGE_EVENTS,
  type BulkJob,
  bulkTerminateBodySchema,
  MAX_BULK_JOB_RUN_MS,
  MAX_RUNNING_BULK_JOBS_PER_NAMESPACE,
  newBulkJob,
  type PublicBulkJob,
} from "../../worker/events/bulk-terminate";
import { bulkTerminationStub } from "../../worker/shared/objects";

/** `count` index rows of RUNNING events without Durable Object state (terminate answers EVENT_NOT_FOUND). */
async function indexRows(namespace: string, functionName: string, count: number, startTime: number): Promise<void> {
  await env.DB.prepare(
    `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
     INSERT INTO events (request_id, namespace, function_name, qualifier, invoke_type, status, phase, start_time, version)
     SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-8'
       || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))),
       ?, ?, '$LATEST', 'OTHERS', 'RUNNING', 'queued', ? + i, 1 FROM n`,
  )
    .bind(count, namespace, functionName, startTime)
    .run();
}

const body = (value: unknown) => bulkTerminateBodySchema.parse(value);

async function job(namespace: string, jobId: string): Promise<PublicBulkJob> {
  const got = await bulkTerminationStub(env, namespace).get(jobId);
  if (!got.ok) throw new Error(got.message);
  return got.value;
}

async function start(namespace: string, value: unknown): Promise<PublicBulkJob> {
  const created = await bulkTerminationStub(env, namespace).create(namespace, body(value));
  if (!created.ok) throw new Error(created.message);
  return created.value;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Rows enough that a job runs for seconds (at BULK_TERMINATE_EVENTS_PER_SECOND). */
const LONG_ROWS = BULK_TERMINATE_EVENTS_PER_SECOND * 5;

describe("a namespace's bulk termination jobs", () => {
  const NS = "bulk-object";
  const ROWS = BULK_TERMINATE_PAGE_EVENTS + 30;
  beforeAll(async () => {
    await indexRows(NS, "many", ROWS, Date.now() - 60_000);
    await indexRows(NS, "other", 3, Date.now() - 60_000);
  });

  it("pages through the filter to its end, each event counted once, none accepted after its creation", async () => {
    const created = await start(NS, { functionName: "many" });
    expect(created).toMatchObject({ status: "RUNNING", counts: { matched: 0 } });
    // Accepted after the job's creation: outside its snapshot.
    await indexRows(NS, "many", 5, Date.now() + 1_000);
    await expect.poll(async () => (await job(NS, created.jobId)).status, { timeout: 20_000 }).toBe("FINISHED");
    const done = await job(NS, created.jobId);
    expect(done).toMatchObject({
      counts: { matched: ROWS, terminated: 0, skipped: ROWS, failed: 0 },
      limitReached: false,
    });
    expect(done.finishedAt).not.toBeNull();
  }, 30_000);

  it("stops a cancelled job and keeps what it did", async () => {
    const NS2 = "bulk-cancel";
    await indexRows(NS2, "many", LONG_ROWS, Date.now() - 60_000);
    const created = await start(NS2, {});
    await expect
      .poll(async () => (await job(NS2, created.jobId)).counts.matched, { timeout: 20_000 })
      .toBeGreaterThan(0);
    const cancelled = await bulkTerminationStub(env, NS2).cancel(created.jobId);
    expect(cancelled.ok && cancelled.value.status).toBe("CANCELLED");
    await sleep(1_500);
    const after = await job(NS2, created.jobId);
    await sleep(1_000);
    const later = await job(NS2, created.jobId);
    expect(after.status).toBe("CANCELLED");
    expect(after.counts.matched).toBeLessThan(LONG_ROWS);
    expect(later.counts).toEqual(after.counts);
    // Cancelling again answers the job unchanged.
    const again = await bulkTerminationStub(env, NS2).cancel(created.jobId);
    expect(again.ok && again.value).toMatchObject({ status: "CANCELLED", counts: after.counts });
  }, 30_000);

  it(`refuses a job past ${MAX_RUNNING_BULK_JOBS_PER_NAMESPACE} running ones with RATE_LIMITED`, async () => {
    const NS3 = "bulk-limit";
    await indexRows(NS3, "many", LONG_ROWS, Date.now() - 60_000);
    const stub = bulkTerminationStub(env, NS3);
    const running: string[] = [];
    for (let i = 0; i < MAX_RUNNING_BULK_JOBS_PER_NAMESPACE; i += 1) running.push((await start(NS3, {})).jobId);
    const refused = await stub.create(NS3, body({}));
    expect(refused.ok ? "created" : refused.code).toBe("RATE_LIMITED");
    for (const jobId of running) await stub.cancel(jobId);
    expect((await stub.create(NS3, body({ dryRun: false, functionName: "none" }))).ok).toBe(true);
  }, 30_000);

  it("does not know another namespace's job, nor an id that is no UUID", async () => {
    const created = await start("bulk-owner", {});
    const other = bulkTerminationStub(env, "bulk-stranger");
    const got = await other.get(created.jobId);
    expect(got.ok ? "found" : got.code).toBe("NOT_FOUND");
    const cancelled = await other.cancel(created.jobId);
    expect(cancelled.ok ? "found" : cancelled.code).toBe("NOT_FOUND");
    const junk = await bulkTerminationStub(env, "bulk-owner").get("../x");
    expect(junk.ok ? "found" : junk.code).toBe("NOT_FOUND");
    expect((await job("bulk-owner", created.jobId)).jobId).toBe(created.jobId);
  });
});

/** Stores RUNNING jobs created at `createdAt` in the namespace's object, as a stalled loop leaves them (no alarm). */
async function stalledJobs(namespace: string, count: number, createdAt: number): Promise<string[]> {
  const jobs: BulkJob[] = Array.from({ length: count }, () =>
    newBulkJob(crypto.randomUUID(), namespace, body({ functionName: "none" }), createdAt),
  );
  await runInDurableObject(bulkTerminationStub(env, namespace), async (_instance, state) => {
    for (const job of jobs) await state.storage.put(`job:${job.jobId}`, job);
    await state.storage.deleteAlarm();
  });
  return jobs.map((job) => job.jobId);
}

const alarmOf = (namespace: string) =>
  runInDurableObject(bulkTerminationStub(env, namespace), (_instance, state) => state.storage.getAlarm());

describe("a namespace's stalled bulk termination jobs", () => {
  it(`ends a job still RUNNING ${MAX_BULK_JOB_RUN_MS / 3_600_000} h after its creation FAILED, freeing its place`, async () => {
    const NS = "bulk-stalled";
    const [stalled] = await stalledJobs(
      NS,
      MAX_RUNNING_BULK_JOBS_PER_NAMESPACE,
      Date.now() - MAX_BULK_JOB_RUN_MS - 1_000,
    );
    const created = await bulkTerminationStub(env, NS).create(NS, body({ functionName: "none" }));
    expect(created.ok ? "created" : created.code).toBe("created");
    const failed = await job(NS, stalled ?? "");
    expect(failed.status).toBe("FAILED");
    expect(failed.error).toMatch(/did not finish within 24 h/);
    expect(failed.finishedAt).not.toBeNull();
  });

  it("answers a RUNNING job past the retention (ended FAILED), never NOT_FOUND", async () => {
    const NS = "bulk-stalled-old";
    const [stalled] = await stalledJobs(NS, 1, Date.now() - BULK_JOB_RETENTION_MS - 1_000);
    const got = await bulkTerminationStub(env, NS).get(stalled ?? "");
    expect(got.ok ? got.value.status : got.code).toBe("FAILED");
  });

  it("sets a lost alarm again, even when refusing a job, and never brings a set alarm forward", async () => {
    const NS = "bulk-lost-alarm";
    const [first] = await stalledJobs(NS, MAX_RUNNING_BULK_JOBS_PER_NAMESPACE, Date.now() - 60_000);
    expect(await alarmOf(NS)).toBeNull();
    const refused = await bulkTerminationStub(env, NS).create(NS, body({}));
    expect(refused.ok ? "created" : refused.code).toBe("RATE_LIMITED");
    // The loop comes back (its alarm was set again): the stalled jobs (matching nothing) finish.
    await expect.poll(async () => (await job(NS, first ?? "")).status, { timeout: 10_000 }).toBe("FINISHED");

    const NS2 = "bulk-paced-alarm";
    const [paced] = await stalledJobs(NS2, 1, Date.now() - 60_000);
    const later = Date.now() + 60_000;
    await runInDurableObject(bulkTerminationStub(env, NS2), (_instance, state) => state.storage.setAlarm(later));
    expect((await job(NS2, paced ?? "")).status).toBe("RUNNING");
    expect(await alarmOf(NS2)).toBe(later);
  }, 30_000);
});
