// Bulk termination's pure parts (issue 15): the request body's rules, the job's snapshot filter, the
// pacing of its loop and how a termination's result is counted; and its reads of the D1 index (the
// page walk and the dry run's count) against rows written here.
import { env, SELF } from "cloudflare:test";
import { drizzle } from "drizzle-orm/d1";
import { beforeAll, describe, expect, it } from "vitest";
import { events, eventTags } from "../../worker/db/schema";
import {
  BULK_JOB_RETENTION_MS,
  BULK_TERMINATE_EVENTS_PER_SECOND,
  type BulkCursor,
  bulkFilterOf,
  bulkPage,
  bulkPageQuery,
  bulkTerminateBodySchema,
  countBulkMatches,
  MAX_EVENTS_PER_BULK_JOB,
  newBulkJob,
  nextStepAt,
  publicBulkJob,
  startBulkTermination,
  terminationOutcome,
} from "../../worker/events/bulk-terminate";
import { MAX_GRACE_SECONDS } from "../../worker/events/event-deadlines";
import { READ_RATE_PER_SECOND } from "../../worker/ratelimit/read-limit";
import { describeIssues } from "../../worker/shared/validation";

/** The first issue's message of a refused body, with its path. */
function refusal(body: unknown): string {
  const parsed = bulkTerminateBodySchema.safeParse(body);
  expect(parsed.success).toBe(false);
  return parsed.success ? "" : describeIssues(parsed.error);
}

describe("the bulk termination body", () => {
  it("defaults to a forced, real run over the whole namespace", () => {
    expect(bulkTerminateBodySchema.parse({})).toEqual({ mode: "forced", dryRun: false });
  });

  it("reads the list's filters, times given as epoch ms or ISO-8601", () => {
    const body = bulkTerminateBodySchema.parse({
      functionName: "video-job",
      statuses: ["RUNNING"],
      qualifier: "$LATEST",
      invokeTypes: ["OTHERS", "TRIGGER_TIMER"],
      startTimeFrom: "2026-11-26T10:00:00Z",
      startTimeTo: 1_800_000_000_000,
      tags: { env: "prod", team: "video" },
      mode: "graceful",
      graceSeconds: 5,
      dryRun: true,
    });
    expect(body.startTimeFrom).toBe(Date.parse("2026-11-26T10:00:00Z"));
    expect(body.tags).toEqual({ env: "prod", team: "video" });
    expect(body.graceSeconds).toBe(5);
  });

  it("refuses a status that cannot be terminated, naming the field", () => {
    expect(refusal({ statuses: ["FINISHED"] })).toMatch(/^statuses\.0:/);
    expect(refusal({ statuses: [] })).toMatch(/^statuses:/);
  });

  it("refuses unknown fields, bad names, invoke types, qualifiers and modes", () => {
    expect(refusal({ functionname: "x" })).toMatch(/functionname/);
    expect(refusal({ functionName: "-bad" })).toMatch(/^functionName: function name:/);
    expect(refusal({ invokeTypes: ["SOMETHING"] })).toMatch(/^invokeTypes\.0:/);
    expect(refusal({ qualifier: "bad qualifier!" })).toMatch(/^qualifier:/);
    expect(refusal({ mode: "gentle" })).toMatch(/^mode:/);
    expect(refusal({ dryRun: "yes" })).toMatch(/^dryRun:/);
  });

  it("refuses graceSeconds outside its bounds or without the graceful mode", () => {
    expect(refusal({ mode: "graceful", graceSeconds: 0 })).toMatch(/^graceSeconds:/);
    expect(refusal({ mode: "graceful", graceSeconds: MAX_GRACE_SECONDS + 1 })).toMatch(/^graceSeconds:/);
    expect(refusal({ mode: "graceful", graceSeconds: 1.5 })).toMatch(/^graceSeconds:/);
    expect(refusal({ graceSeconds: 5 })).toMatch(/^graceSeconds: .*graceful/);
  });

  it("refuses a time range that is empty or times that are not times", () => {
    expect(refusal({ startTimeFrom: 2_000, startTimeTo: 1_000 })).toMatch(/^startTimeFrom: must be before/);
    expect(refusal({ startTimeFrom: "yesterday" })).toMatch(/^startTimeFrom:/);
    expect(refusal({ startTimeFrom: -1 })).toMatch(/^startTimeFrom:/);
    expect(refusal({ startTimeTo: true })).toMatch(/^startTimeTo:/);
  });

  it("refuses more tags than a filter holds and malformed tags", () => {
    const six = Object.fromEntries(["a", "b", "c", "d", "e", "f"].map((key) => [key, "1"]));
    expect(refusal({ tags: six })).toMatch(/^tags:/);
    expect(refusal({ tags: { "bad key": "x" } })).toMatch(/^tags/);
    expect(refusal({ tags: { env: 1 } })).toMatch(/^tags\.env:/);
    expect(refusal({ tags: "env=prod" })).toMatch(/^tags:/);
  });
});

describe("the job's filter", () => {
  it("closes the start-time range at the job's creation, whatever the body asks", () => {
    const created = 1_000_000;
    expect(bulkFilterOf(bulkTerminateBodySchema.parse({}), created).startTimeTo).toBe(created + 1);
    const later = bulkTerminateBodySchema.parse({ startTimeTo: created + 60_000 });
    expect(bulkFilterOf(later, created).startTimeTo).toBe(created + 1);
    const earlier = bulkTerminateBodySchema.parse({ startTimeTo: created - 5 });
    expect(bulkFilterOf(earlier, created).startTimeTo).toBe(created - 5);
  });

  it("shows a new job RUNNING with zero counts, its grace defaulted in graceful mode, expiring after retention", () => {
    const job = newBulkJob("job-1", "default", bulkTerminateBodySchema.parse({ mode: "graceful" }), 0);
    const shown = publicBulkJob(job);
    expect(shown.status).toBe("RUNNING");
    expect(shown.counts).toEqual({ matched: 0, terminated: 0, skipped: 0, failed: 0 });
    expect(shown.graceSeconds).toBe(30);
    expect(shown.filter.statuses).toEqual(["RUNNING"]);
    expect(shown.expiresAt).toBe(new Date(BULK_JOB_RETENTION_MS).toISOString());
    expect(publicBulkJob(newBulkJob("job-2", "default", bulkTerminateBodySchema.parse({}), 0)).graceSeconds).toBe(null);
  });
});

describe("the loop's pacing", () => {
  it("spends each handled event's share of the per-second rate", () => {
    const perEvent = 1000 / BULK_TERMINATE_EVENTS_PER_SECOND;
    expect(nextStepAt(10_000, 100, 10_050)).toBe(10_000 + 100 * perEvent);
    expect(nextStepAt(10_000, 1, 10_000)).toBe(10_000 + Math.ceil(perEvent));
  });

  it("never waits when the step itself took longer than its share, nor for a step that handled nothing", () => {
    expect(nextStepAt(10_000, 100, 12_000)).toBe(12_000);
    expect(nextStepAt(10_000, 0, 10_003)).toBe(10_003);
  });

  it("keeps the rate over many steps: 1000 events take at least 1000 / rate seconds", () => {
    let now = 0;
    for (let step = 0; step < 10; step += 1) now = nextStepAt(now, 100, now + 1);
    expect(now).toBeGreaterThanOrEqual((1000 * 1000) / BULK_TERMINATE_EVENTS_PER_SECOND);
  });
});

describe("a termination's outcome", () => {
  it("counts an ended, terminating or vanished event as skipped and other refusals as failed", () => {
    expect(terminationOutcome({ ok: true })).toBe("terminated");
    expect(terminationOutcome({ ok: false, code: "EVENT_ALREADY_ENDED" })).toBe("skipped");
    expect(terminationOutcome({ ok: false, code: "EVENT_TERMINATING" })).toBe("skipped");
    expect(terminationOutcome({ ok: false, code: "EVENT_NOT_FOUND" })).toBe("skipped");
    expect(terminationOutcome({ ok: false, code: "UNAVAILABLE" })).toBe("failed");
  });
});

describe("the job's reads of the event index", () => {
  const NS = "bulk-unit";
  const FN = "bulk-fn";
  /** Row ids: 10 running events of FN (5 tagged env=prod), 2 ended, 2 of another function, 2 of another namespace. */
  const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;

  beforeAll(async () => {
    const db = drizzle(env.DB);
    const row = (n: number, namespace: string, functionName: string, status: string, startTime: number) => ({
      requestId: id(n),
      namespace,
      functionName,
      qualifier: "$LATEST",
      invokeType: "OTHERS",
      status,
      phase: status === "RUNNING" ? "queued" : "ended",
      startTime,
      version: 1,
    });
    const rows = [
      ...Array.from({ length: 10 }, (_, i) => row(i, NS, FN, "RUNNING", 1_000 + i)),
      row(10, NS, FN, "ABORTED", 1_010),
      row(11, NS, FN, "FINISHED", 1_011),
      row(12, NS, "other-fn", "RUNNING", 1_012),
      row(13, NS, "other-fn", "RUNNING", 1_013),
      row(14, "bulk-other-ns", FN, "RUNNING", 1_014),
      row(15, "bulk-other-ns", FN, "RUNNING", 1_015),
    ];
    // One row per statement: D1 binds at most 100 variables in one.
    for (const one of rows) await db.insert(events).values(one);
    await db.insert(eventTags).values(
      [0, 2, 4, 6, 8, 10, 14].map((n) => ({
        requestId: id(n),
        namespace: n === 14 ? "bulk-other-ns" : NS,
        functionName: FN,
        key: "env",
        value: "prod",
        startTime: 1_000 + n,
      })),
    );
  });

  const filter = (body: unknown, createdAt = 5_000) => bulkFilterOf(bulkTerminateBodySchema.parse(body), createdAt);

  it("counts only the namespace's not-ended events matching the filter", async () => {
    expect(await countBulkMatches(env.DB, NS, filter({ functionName: FN }))).toBe(10);
    expect(await countBulkMatches(env.DB, NS, filter({}))).toBe(12);
    expect(await countBulkMatches(env.DB, NS, filter({ functionName: FN, tags: { env: "prod" } }))).toBe(5);
    expect(await countBulkMatches(env.DB, NS, filter({ tags: { env: "staging" } }))).toBe(0);
    expect(await countBulkMatches(env.DB, NS, filter({ invokeTypes: ["COS"] }))).toBe(0);
  });

  it("leaves out events started after the job's creation", async () => {
    expect(await countBulkMatches(env.DB, NS, filter({ functionName: FN }, 1_004))).toBe(5);
  });

  it("walks the matching rows oldest first, page after page, each once", async () => {
    const seen: string[] = [];
    let cursor: BulkCursor | null = null;
    for (let page = 0; page < 10; page += 1) {
      const rows = await bulkPage(env.DB, NS, filter({ functionName: FN }), cursor, 3);
      seen.push(...rows.map((row) => row.requestId));
      const last = rows[rows.length - 1];
      if (rows.length < 3 || last === undefined) break;
      cursor = last;
    }
    expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => id(i)));
  });

  it("counts at most the cap it is given, whatever matches", async () => {
    expect(await countBulkMatches(env.DB, NS, filter({}), 4)).toBe(4);
    expect(await countBulkMatches(env.DB, NS, filter({ functionName: FN }), 100)).toBe(10);
  });

  /** The plan of a job's page query, as SQLite's EXPLAIN QUERY PLAN details. */
  async function planOf(body: unknown, cursor: BulkCursor | null): Promise<string[]> {
    const query = bulkPageQuery(env.DB, NS, filter(body), cursor, 100).toSQL();
    const plan = await env.DB.prepare(`EXPLAIN QUERY PLAN ${query.sql}`)
      .bind(...query.params)
      .all<{ detail: string }>();
    return plan.results.map((row) => row.detail);
  }

  it("walks a namespace-wide page on the (namespace, status, start_time, request_id) index, without a sort", async () => {
    const cursor = { startTime: 1_002, requestId: id(2) };
    for (const [body, after] of [
      [{}, null],
      [{}, cursor],
      [{ invokeTypes: ["OTHERS", "COS"], startTimeFrom: 1_000 }, cursor],
    ] as const) {
      const plan = await planOf(body, after);
      expect(plan.join(" | ")).toContain("events_by_namespace_status_start");
      expect(plan.join(" | ")).not.toMatch(/TEMP B-TREE/);
    }
    // One function's page keeps its own index, in order too.
    const byFunction = await planOf({ functionName: FN }, cursor);
    expect(byFunction.join(" | ")).toMatch(/USING (COVERING )?INDEX events_by_function/);
    expect(byFunction.join(" | ")).not.toMatch(/TEMP B-TREE/);
  });
});

describe("the dry run over REST", () => {
  const ROOT = { authorization: "Bearer AKIDintegration:integration-secret-key-0123456789abcdef" };

  it(`answers the count with countCapped, and is metered as a read (${READ_RATE_PER_SECOND} a second)`, async () => {
    const dryRun = () =>
      SELF.fetch("https://platform.test/v1/namespaces/bulk-dry-run/bulk-terminations", {
        method: "POST",
        headers: { ...ROOT, "content-type": "application/json" },
        body: JSON.stringify({ dryRun: true }),
      });
    const first = await dryRun();
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ count: 0, countCapped: false });
    const burst = await Promise.all(Array.from({ length: READ_RATE_PER_SECOND * 2 }, () => dryRun()));
    const limited = burst.filter((response) => response.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(limited[0]?.headers.get("retry-after")).not.toBeNull();
    for (const response of burst) await response.body?.cancel();
  });

  it(`counts at most ${MAX_EVENTS_PER_BULK_JOB} events, saying so with countCapped`, async () => {
    const namespace = "bulk-dry-run-capped";
    await env.DB.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
       INSERT INTO events (request_id, namespace, function_name, qualifier, invoke_type, status, phase, start_time, version)
       SELECT printf('00000000-0000-4000-9000-%012d', i), ?, 'fn', '$LATEST', 'OTHERS', 'RUNNING', 'queued', 1000 + i, 1 FROM n`,
    )
      .bind(MAX_EVENTS_PER_BULK_JOB + 5, namespace)
      .run();
    const counted = await startBulkTermination(env, namespace, bulkTerminateBodySchema.parse({ dryRun: true }));
    expect(counted).toEqual({ dryRun: true, count: MAX_EVENTS_PER_BULK_JOB, countCapped: true });
  }, 60_000);
});
