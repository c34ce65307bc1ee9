// Bulk termination: terminate every not-yet-ended event of a namespace (or of one function) that a
// filter like the list's selects, as a background job. Here: the request's rules, the job's public
// shape, the pacing and the reads of the D1 index the job pages through. The job itself runs in
// BulkTerminationObject (bulk-terminate-object.ts, one per namespace), which ends each event through
// the same AsyncEventObject.terminate as POST /v1/events/{requestId}/terminate.

import { and, asc, count, eq, type SQL, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { z } from "zod";
import { indexDatabaseOf } from "../db/index-databases";
import { events } from "../db/schema";
import { FunctionRegistry } from "../functions/registry";
import { PlatformError, unwrap } from "../shared/errors";
import { functionNameSchema } from "../shared/names";
import { bulkTerminationStub } from "../shared/objects";
import { GRACEFUL_TERMINATE_TIMEOUT_MS, MAX_GRACE_SECONDS, MIN_GRACE_SECONDS } from "./event-deadlines";
import {
  eventFilterConditions,
  MAX_CURSOR_KEY_MS,
  MAX_INVOKE_TYPE_FILTERS,
  qualifierFilterSchema,
  SCF_INVOKE_TYPES,
} from "./event-list";
import { type EventTags, invocationTagsSchema, MAX_TAG_FILTERS } from "./event-tags";

/** Events one namespace's bulk terminations end per second at most (all its running jobs together). */
export const BULK_TERMINATE_EVENTS_PER_SECOND = 200;
/** Events one job reads and terminates per step of its loop (one page of the index). */
export const BULK_TERMINATE_PAGE_EVENTS = 100;
/** Terminations one step sends at once. */
export const BULK_TERMINATE_CONCURRENCY = 20;
/** Most events one job considers; past it the job finishes with `limitReached: true`. */
export const MAX_EVENTS_PER_BULK_JOB = 100_000;
/** Most jobs of one namespace running at once; one more is refused with RATE_LIMITED. */
export const MAX_RUNNING_BULK_JOBS_PER_NAMESPACE = 3;
/** Retry-After of a creation refused at MAX_RUNNING_BULK_JOBS_PER_NAMESPACE. */
export const BULK_RATE_LIMITED_RETRY_AFTER_SECONDS = 10;
/** Most jobs one namespace keeps (running or ended); past it the oldest ended job is forgotten. */
export const MAX_KEPT_BULK_JOBS_PER_NAMESPACE = 100;
/** How long an ended job is kept after its creation (it is then forgotten: GET answers NOT_FOUND). */
export const BULK_JOB_RETENTION_MS = 72 * 60 * 60 * 1000;
/**
 * Longest a job may stay RUNNING (from its creation): past it the job ends FAILED, so that a job
 * whose loop stalled never holds one of the namespace's MAX_RUNNING_BULK_JOBS_PER_NAMESPACE places
 * for good. A full job (MAX_EVENTS_PER_BULK_JOB at BULK_TERMINATE_EVENTS_PER_SECOND) takes about
 * 8 minutes, several jobs sharing the rate a few times that: 24 h is far beyond any healthy job.
 */
export const MAX_BULK_JOB_RUN_MS = 24 * 60 * 60 * 1000;
/** Consecutive failed reads of the index after which a job ends FAILED. */
export const MAX_BULK_PAGE_FAILURES = 5;
/** Wait before reading the index again after a failed read. */
export const BULK_PAGE_RETRY_MS = 1_000;
/** Largest body of POST /v1/namespaces/{namespace}/bulk-terminations. */
export const MAX_BULK_TERMINATE_BODY_BYTES = 8 * 1024;
/** The statuses a bulk termination may select: RUNNING (queued, starting or running events). */
export const BULK_TERMINABLE_STATUSES = ["RUNNING"] as const;
export const BULK_JOB_STATUSES = ["RUNNING", "FINISHED", "CANCELLED", "FAILED"] as const;
export type BulkJobStatus = (typeof BULK_JOB_STATUSES)[number];
export const BULK_MODES = ["forced", "graceful"] as const;

const GRACE_SECONDS_RULE = `a whole number of seconds, ${MIN_GRACE_SECONDS}-${MAX_GRACE_SECONDS} (default ${GRACEFUL_TERMINATE_TIMEOUT_MS / 1000})`;

/** A time of the body: epoch milliseconds or an ISO-8601 string with its offset. */
const bodyTimeSchema = z.union([
  z.number().int().min(0).max(MAX_CURSOR_KEY_MS),
  z.iso.datetime({ offset: true }).transform((value) => Date.parse(value)),
]);

/** The body of a bulk termination: the filter (the list's), how to terminate, and whether to only count. */
export const bulkTerminateBodySchema = z
  .strictObject({
    functionName: functionNameSchema.optional(),
    statuses: z.array(z.enum(BULK_TERMINABLE_STATUSES)).min(1).max(1).optional(),
    qualifier: qualifierFilterSchema.optional(),
    invokeTypes: z.array(z.enum(SCF_INVOKE_TYPES)).min(1).max(MAX_INVOKE_TYPE_FILTERS).optional(),
    startTimeFrom: bodyTimeSchema.optional(),
    startTimeTo: bodyTimeSchema.optional(),
    tags: invocationTagsSchema
      .refine((tags) => Object.keys(tags).length <= MAX_TAG_FILTERS, `at most ${MAX_TAG_FILTERS} tags in one filter`)
      .optional(),
    mode: z.enum(BULK_MODES).default("forced"),
    graceSeconds: z
      .number()
      .int(GRACE_SECONDS_RULE)
      .min(MIN_GRACE_SECONDS, GRACE_SECONDS_RULE)
      .max(MAX_GRACE_SECONDS, GRACE_SECONDS_RULE)
      .optional(),
    dryRun: z.boolean().default(false),
  })
  .superRefine((body, context) => {
    if (body.graceSeconds !== undefined && body.mode !== "graceful") {
      context.addIssue({
        code: "custom",
        path: ["graceSeconds"],
        message: 'graceSeconds applies to mode "graceful" only',
      });
    }
    if (body.startTimeFrom !== undefined && body.startTimeTo !== undefined && body.startTimeFrom >= body.startTimeTo) {
      context.addIssue({ code: "custom", path: ["startTimeFrom"], message: "must be before startTimeTo" });
    }
  });
export type BulkTerminateBody = z.infer<typeof bulkTerminateBodySchema>;

/**
 * The filter a job runs with: the body's, its start-time range closed at the job's creation (events
 * accepted after it are never touched). JSON-safe, stored with the job.
 */
export interface BulkFilter {
  functionName: string | null;
  qualifier: string | null;
  invokeTypes: (typeof SCF_INVOKE_TYPES)[number][] | null;
  startTimeFrom: number | null;
  /** Exclusive: at most the job's creation time + 1 ms. */
  startTimeTo: number;
  tags: EventTags;
}

/** The job's filter from a request body, as of `createdAt`. */
export function bulkFilterOf(body: BulkTerminateBody, createdAt: number): BulkFilter {
  return {
    functionName: body.functionName ?? null,
    qualifier: body.qualifier ?? null,
    invokeTypes: body.invokeTypes ?? null,
    startTimeFrom: body.startTimeFrom ?? null,
    startTimeTo: Math.min(body.startTimeTo ?? Number.MAX_SAFE_INTEGER, createdAt + 1),
    tags: body.tags ?? {},
  };
}

/**
 * The conditions on the `events` index of a namespace's not-ended events matching a job's filter.
 * The status is an equality (`status = 'RUNNING'`), so that with the namespace it leads an index in
 * start-time order: (namespace, function_name, status, start_time, request_id, ...) for one function,
 * events_by_namespace_status_start (namespace, status, start_time, request_id) for the whole namespace.
 */
export function bulkFilterConditions(namespace: string, filter: BulkFilter): SQL[] {
  const [status] = BULK_TERMINABLE_STATUSES;
  return [
    ...eventFilterConditions(namespace, filter.functionName ?? undefined, bulkListFilter(filter)),
    eq(events.status, status),
  ];
}

/** The list's filters of a job's filter (the status is bulkFilterConditions' own equality). */
function bulkListFilter(filter: BulkFilter) {
  return {
    ...(filter.qualifier !== null ? { qualifier: filter.qualifier } : {}),
    ...(filter.invokeTypes !== null ? { invokeTypes: filter.invokeTypes } : {}),
    ...(filter.startTimeFrom !== null ? { startTimeFrom: filter.startTimeFrom } : {}),
    startTimeTo: filter.startTimeTo,
    ...(Object.keys(filter.tags).length > 0 ? { tags: filter.tags } : {}),
  };
}

/** Where a job's walk of the index stands: the last row it read (start time, RequestId). */
export interface BulkCursor {
  startTime: number;
  requestId: string;
}

/**
 * The next page of a job's walk: up to `limit` matching rows strictly after `cursor`, oldest first
 * (start time, then RequestId). Ending events leave the RUNNING status, but the cursor never reads
 * a row twice either way.
 */
export async function bulkPage(
  db: D1Database,
  namespace: string,
  filter: BulkFilter,
  cursor: BulkCursor | null,
  limit: number,
): Promise<BulkCursor[]> {
  return bulkPageQuery(db, namespace, filter, cursor, limit);
}

/** The query of bulkPage (its SQL is checked against the indexes in the tests). */
export function bulkPageQuery(
  db: D1Database,
  namespace: string,
  filter: BulkFilter,
  cursor: BulkCursor | null,
  limit: number,
) {
  const conditions = bulkFilterConditions(namespace, filter);
  if (cursor !== null) {
    conditions.push(sql`(${events.startTime}, ${events.requestId}) > (${cursor.startTime}, ${cursor.requestId})`);
  }
  return drizzle(db)
    .select({ startTime: events.startTime, requestId: events.requestId })
    .from(events)
    .where(and(...conditions))
    .orderBy(asc(events.startTime), asc(events.requestId))
    .limit(limit);
}

/**
 * How many not-ended events of the namespace match a filter now (the dry run's answer), counting at
 * most `cap` rows (the count's cost is bounded whatever the namespace holds): min(matches, cap).
 */
export async function countBulkMatches(
  db: D1Database,
  namespace: string,
  filter: BulkFilter,
  cap = MAX_EVENTS_PER_BULK_JOB + 1,
): Promise<number> {
  const orm = drizzle(db);
  const matching = orm
    .select({ one: sql<number>`1`.as("one") })
    .from(events)
    .where(and(...bulkFilterConditions(namespace, filter)))
    .limit(cap)
    .as("matching");
  const [row] = await orm.select({ total: count() }).from(matching);
  return row?.total ?? 0;
}

/** A dry run's answer: the count, at most MAX_EVENTS_PER_BULK_JOB; `countCapped` when more match. */
export interface BulkDryRun {
  dryRun: true;
  count: number;
  countCapped: boolean;
}

/**
 * When the next step of the loop may start: `terminated` events handled by the step that started
 * at `stepStartMs` spend their share of BULK_TERMINATE_EVENTS_PER_SECOND, and never earlier than now.
 */
export function nextStepAt(
  stepStartMs: number,
  handled: number,
  nowMs: number,
  perSecond = BULK_TERMINATE_EVENTS_PER_SECOND,
): number {
  return Math.max(nowMs, stepStartMs + Math.ceil((handled * 1000) / perSecond));
}

/** What one termination came to. */
export type TerminationOutcome = "terminated" | "skipped" | "failed";

/**
 * A termination's outcome from its RPC result code: ended by it, skipped (already ended, already
 * terminating, gone), or failed (anything else, retried by no one: the count says so).
 */
export function terminationOutcome(result: { ok: true } | { ok: false; code: string }): TerminationOutcome {
  if (result.ok) return "terminated";
  if (
    result.code === "EVENT_ALREADY_ENDED" ||
    result.code === "EVENT_TERMINATING" ||
    result.code === "EVENT_NOT_FOUND"
  ) {
    return "skipped";
  }
  return "failed";
}

/** The counts of a job. */
export interface BulkCounts {
  /** Events the job found matching (each then terminated, skipped or failed). */
  matched: number;
  terminated: number;
  skipped: number;
  failed: number;
}

/** A job as stored by its namespace's BulkTerminationObject. */
export interface BulkJob {
  jobId: string;
  namespace: string;
  status: BulkJobStatus;
  filter: BulkFilter;
  mode: (typeof BULK_MODES)[number];
  graceSeconds: number | null;
  counts: BulkCounts;
  cursor: BulkCursor | null;
  limitReached: boolean;
  createdAt: number;
  finishedAt: number | null;
  /** When the loop last worked on it (round robin among a namespace's running jobs). */
  steppedAt: number;
  pageFailures: number;
  error: string | null;
}

/** A new job, RUNNING from `createdAt`. */
export function newBulkJob(jobId: string, namespace: string, body: BulkTerminateBody, createdAt: number): BulkJob {
  return {
    jobId,
    namespace,
    status: "RUNNING",
    filter: bulkFilterOf(body, createdAt),
    mode: body.mode,
    graceSeconds: body.mode === "graceful" ? (body.graceSeconds ?? GRACEFUL_TERMINATE_TIMEOUT_MS / 1000) : null,
    counts: { matched: 0, terminated: 0, skipped: 0, failed: 0 },
    cursor: null,
    limitReached: false,
    createdAt,
    finishedAt: null,
    steppedAt: 0,
    pageFailures: 0,
    error: null,
  };
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The public shape of a job (POST's 202, GET, DELETE). */
export function publicBulkJob(job: BulkJob) {
  return {
    jobId: job.jobId,
    namespace: job.namespace,
    status: job.status,
    filter: {
      functionName: job.filter.functionName,
      statuses: [...BULK_TERMINABLE_STATUSES] as string[],
      qualifier: job.filter.qualifier,
      invokeTypes: job.filter.invokeTypes as string[] | null,
      startTimeFrom: job.filter.startTimeFrom !== null ? iso(job.filter.startTimeFrom) : null,
      startTimeTo: iso(job.filter.startTimeTo),
      tags: job.filter.tags,
    },
    mode: job.mode,
    graceSeconds: job.graceSeconds,
    counts: job.counts,
    limitReached: job.limitReached,
    createdAt: iso(job.createdAt),
    finishedAt: job.finishedAt !== null ? iso(job.finishedAt) : null,
    expiresAt: iso(job.createdAt + BULK_JOB_RETENTION_MS),
    error: job.error,
  };
}
export type PublicBulkJob = ReturnType<typeof publicBulkJob>;

/** A job id: a UUID (anything else is no job's: NOT_FOUND, as another namespace's). */
export const bulkJobIdSchema = z.uuid();

/**
 * Starts a bulk termination of the namespace's events, or only counts them (`dryRun`). A named
 * function must exist in the namespace (FUNCTION_NOT_FOUND otherwise, as for another namespace's).
 */
export async function startBulkTermination(
  env: Env,
  namespace: string,
  body: BulkTerminateBody,
): Promise<BulkDryRun | { dryRun: false; job: PublicBulkJob }> {
  if (body.functionName !== undefined) await new FunctionRegistry(env).get(namespace, body.functionName);
  if (body.dryRun) {
    const counted = await countBulkMatches(indexDatabaseOf(env, namespace), namespace, bulkFilterOf(body, Date.now()));
    return {
      dryRun: true,
      count: Math.min(counted, MAX_EVENTS_PER_BULK_JOB),
      countCapped: counted > MAX_EVENTS_PER_BULK_JOB,
    };
  }
  const created = await bulkTerminationStub(env, namespace).create(namespace, body);
  if (!created.ok && created.code === "RATE_LIMITED") {
    throw new PlatformError("RATE_LIMITED", created.message, {
      retryAfterSeconds: BULK_RATE_LIMITED_RETRY_AFTER_SECONDS,
    });
  }
  return { dryRun: false, job: unwrap(created) };
}

/** A job of the namespace (NOT_FOUND for an unknown id or another namespace's). */
export async function getBulkTermination(env: Env, namespace: string, jobId: string): Promise<PublicBulkJob> {
  return unwrap(await bulkTerminationStub(env, namespace).get(jobId));
}

/** Cancels a running job of the namespace; an ended one is answered as it is. */
export async function cancelBulkTermination(env: Env, namespace: string, jobId: string): Promise<PublicBulkJob> {
  return unwrap(await bulkTerminationStub(env, namespace).cancel(jobId));
}

/** NOT_FOUND for a job id that no job of the namespace has. */
export function bulkJobNotFound(jobId: string): PlatformError {
  return new PlatformError("NOT_FOUND", `bulk termination ${jobId} not found`);
}
