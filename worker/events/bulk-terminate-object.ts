// BulkTerminationObject: one per namespace, the namespace's bulk termination jobs (bulk-terminate.ts).
// Each job is stored under `job:<jobId>`. The object's alarm is the jobs' loop: each step takes the
// running job worked on least recently, reads its next page of the D1 index (after its cursor, inside
// its snapshot) and terminates those events through AsyncEventObject.terminate, a few at a time, then
// sets the next alarm so that the namespace's jobs together end at most
// BULK_TERMINATE_EVENTS_PER_SECOND events per second. Ended jobs are forgotten
// BULK_JOB_RETENTION_MS after their creation (the alarm comes back for that too); a RUNNING job is
// never forgotten, and ends FAILED once it has run MAX_BULK_JOB_RUN_MS. Every call (create, get,
// cancel) sets the alarm again should it be missing while a job runs, so a lost alarm cannot stall
// the namespace's jobs (nor hold its running places) for good.

import { DurableObject } from "cloudflare:workers";
import { indexDatabaseOf } from "../db/index-databases";
import { type RpcResult, rpcFail, rpcOk } from "../shared/errors";
import { eventStub } from "../shared/objects";
import {
  BULK_JOB_RETENTION_MS,
  BULK_PAGE_RETRY_MS,
  BULK_TERMINATE_CONCURRENCY,
  BULK_TERMINATE_PAGE_EVENTS,
  type BulkCounts,
  type BulkJob,
  type BulkTerminateBody,
  bulkJobIdSchema,
  bulkPage,
  MAX_BULK_JOB_RUN_MS,
  MAX_BULK_PAGE_FAILURES,
  MAX_EVENTS_PER_BULK_JOB,
  MAX_KEPT_BULK_JOBS_PER_NAMESPACE,
  MAX_RUNNING_BULK_JOBS_PER_NAMESPACE,
  newBulkJob,
  nextStepAt,
  type PublicBulkJob,
  publicBulkJob,
  type TerminationOutcome,
  terminationOutcome,
} from "./bulk-terminate";

const JOB_PREFIX = "job:";

/** One namespace's bulk termination jobs and their loop. */
export class BulkTerminationObject extends DurableObject<Env> {
  private async jobs(): Promise<BulkJob[]> {
    const stored = await this.ctx.storage.list<BulkJob>({ prefix: JOB_PREFIX });
    return [...stored.values()];
  }

  private async job(jobId: string): Promise<BulkJob | undefined> {
    return this.ctx.storage.get<BulkJob>(JOB_PREFIX + jobId);
  }

  private async save(job: BulkJob): Promise<void> {
    await this.ctx.storage.put(JOB_PREFIX + job.jobId, job);
  }

  /**
   * The job as of `now`: a RUNNING job past MAX_BULK_JOB_RUN_MS ends FAILED (stored), whatever its
   * loop's state; any other job is answered as it is.
   */
  private async overdueFailed(job: BulkJob, now: number): Promise<BulkJob> {
    if (job.status !== "RUNNING" || job.createdAt + MAX_BULK_JOB_RUN_MS > now) return job;
    const failed: BulkJob = {
      ...job,
      status: "FAILED",
      finishedAt: now,
      error: `the job did not finish within ${MAX_BULK_JOB_RUN_MS / 3_600_000} h of its creation and was stopped (the events it terminated stay terminated)`,
    };
    await this.save(failed);
    return failed;
  }

  /**
   * Ends the RUNNING jobs past MAX_BULK_JOB_RUN_MS (FAILED), forgets ended jobs past their retention
   * (a RUNNING job never expires), and the oldest ended ones past the kept bound.
   */
  private async prune(now: number): Promise<BulkJob[]> {
    const stored = (await this.jobs()).sort((a, b) => a.createdAt - b.createdAt);
    const all: BulkJob[] = [];
    for (const job of stored) all.push(await this.overdueFailed(job, now));
    const expired = all.filter((job) => job.status !== "RUNNING" && job.createdAt + BULK_JOB_RETENTION_MS <= now);
    let kept = all.filter((job) => !expired.includes(job));
    const surplus = kept.length - (MAX_KEPT_BULK_JOBS_PER_NAMESPACE - 1);
    const evicted = surplus > 0 ? kept.filter((job) => job.status !== "RUNNING").slice(0, surplus) : [];
    kept = kept.filter((job) => !evicted.includes(job));
    const gone = [...expired, ...evicted].map((job) => JOB_PREFIX + job.jobId);
    if (gone.length > 0) await this.ctx.storage.delete(gone);
    return kept;
  }

  /** Sets the alarm no later than `at` (an earlier one stays). */
  private async alarmBy(at: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }

  /**
   * Sets the alarm to now when none is set while a job runs (it was lost: the loop would never come
   * back). A set alarm is left as it is: the loop's pacing is never brought forward by a call.
   */
  private async ensureLoop(running: boolean, now: number): Promise<void> {
    if (!running) return;
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(now);
  }

  /** Creates a job (RUNNING) and starts the loop; RATE_LIMITED at the namespace's running bound. */
  async create(namespace: string, body: BulkTerminateBody): Promise<RpcResult<PublicBulkJob>> {
    const now = Date.now();
    const kept = await this.prune(now);
    const running = kept.filter((job) => job.status === "RUNNING").length;
    if (running >= MAX_RUNNING_BULK_JOBS_PER_NAMESPACE) {
      // Refused, but the running jobs' loop is kept alive: they end, and their places free up.
      await this.ensureLoop(true, now);
      return rpcFail(
        "RATE_LIMITED",
        `namespace ${namespace} already runs ${running} bulk terminations, the most allowed (${MAX_RUNNING_BULK_JOBS_PER_NAMESPACE}); wait for one to finish or cancel one`,
      );
    }
    const job = newBulkJob(crypto.randomUUID(), namespace, body, now);
    await this.save(job);
    await this.alarmBy(now);
    return rpcOk(publicBulkJob(job));
  }

  /**
   * A job of this namespace, or NOT_FOUND (an unknown id, or an ended job past its retention; a
   * RUNNING one is always found, and ends FAILED past MAX_BULK_JOB_RUN_MS).
   */
  async get(jobId: string): Promise<RpcResult<PublicBulkJob>> {
    const now = Date.now();
    const stored = bulkJobIdSchema.safeParse(jobId).success ? await this.job(jobId) : undefined;
    const job = stored !== undefined ? await this.overdueFailed(stored, now) : undefined;
    // An overdue job ended just now is answered once even past its retention (it is forgotten next).
    const expired = job !== undefined && job === stored && job.status !== "RUNNING";
    if (!job || (expired && job.createdAt + BULK_JOB_RETENTION_MS <= now)) {
      return rpcFail("NOT_FOUND", `bulk termination ${jobId} not found`);
    }
    await this.ensureLoop(job.status === "RUNNING", now);
    return rpcOk(publicBulkJob(job));
  }

  /** Cancels a running job (terminations done stay done); an ended job is answered unchanged. */
  async cancel(jobId: string): Promise<RpcResult<PublicBulkJob>> {
    const found = await this.get(jobId);
    if (!found.ok) return found;
    const job = await this.job(jobId);
    if (job?.status !== "RUNNING") return found;
    const cancelled: BulkJob = { ...job, status: "CANCELLED", finishedAt: Date.now() };
    await this.save(cancelled);
    return rpcOk(publicBulkJob(cancelled));
  }

  /** The loop: one step of the running job worked on least recently, then the next alarm. */
  override async alarm(): Promise<void> {
    const start = Date.now();
    const kept = await this.prune(start);
    const running = kept.filter((job) => job.status === "RUNNING").sort((a, b) => a.steppedAt - b.steppedAt);
    const next = running[0];
    if (next === undefined) {
      // Nothing to run: come back when the oldest kept job is due to be forgotten.
      const oldest = kept.reduce((min, job) => Math.min(min, job.createdAt), Number.POSITIVE_INFINITY);
      if (Number.isFinite(oldest)) await this.ctx.storage.setAlarm(oldest + BULK_JOB_RETENTION_MS);
      return;
    }
    const handled = await this.step(next, start);
    await this.ctx.storage.setAlarm(
      handled === "retry" ? start + BULK_PAGE_RETRY_MS : nextStepAt(start, handled, Date.now()),
    );
  }

  /**
   * One step of a job: its next page, each event terminated. Returns how many events it handled, or
   * "retry" after a failed read of the index. A cancel landing meanwhile is kept (the counts of the
   * step are added to the cancelled job).
   */
  private async step(job: BulkJob, start: number): Promise<number | "retry"> {
    const limit = Math.min(BULK_TERMINATE_PAGE_EVENTS, MAX_EVENTS_PER_BULK_JOB - job.counts.matched);
    let rows: { startTime: number; requestId: string }[];
    try {
      rows =
        limit > 0
          ? await bulkPage(indexDatabaseOf(this.env, job.namespace), job.namespace, job.filter, job.cursor, limit)
          : [];
    } catch (error) {
      const failures = job.pageFailures + 1;
      const latest = (await this.job(job.jobId)) ?? job;
      const failed = failures >= MAX_BULK_PAGE_FAILURES && latest.status === "RUNNING";
      await this.save({
        ...latest,
        pageFailures: failures,
        steppedAt: start,
        ...(failed
          ? {
              status: "FAILED" as const,
              finishedAt: Date.now(),
              error: `reading the event index failed: ${String(error)}`,
            }
          : {}),
      });
      return "retry";
    }
    const counts: BulkCounts = { matched: 0, terminated: 0, skipped: 0, failed: 0 };
    const graceMs = job.mode === "graceful" && job.graceSeconds !== null ? job.graceSeconds * 1000 : undefined;
    for (let at = 0; at < rows.length; at += BULK_TERMINATE_CONCURRENCY) {
      const outcomes = await Promise.all(
        rows.slice(at, at + BULK_TERMINATE_CONCURRENCY).map(async ({ requestId }): Promise<TerminationOutcome> => {
          try {
            return terminationOutcome(await eventStub(this.env, requestId).terminate(job.mode === "graceful", graceMs));
          } catch (error) {
            console.warn("bulk termination: terminate failed", requestId, String(error));
            return "failed";
          }
        }),
      );
      for (const outcome of outcomes) counts[outcome] += 1;
      counts.matched += outcomes.length;
      // A cancel stops the job between batches.
      if ((await this.job(job.jobId))?.status !== "RUNNING") break;
    }
    const latest = (await this.job(job.jobId)) ?? job;
    const matched = latest.counts.matched + counts.matched;
    // A cancel may have stopped the step before its last rows: the cursor is the last one handled.
    const last = rows[counts.matched - 1];
    const done = rows.length < limit || limit === 0;
    const limitReached = matched >= MAX_EVENTS_PER_BULK_JOB;
    const finishes = latest.status === "RUNNING" && (done || limitReached);
    await this.save({
      ...latest,
      counts: {
        matched,
        terminated: latest.counts.terminated + counts.terminated,
        skipped: latest.counts.skipped + counts.skipped,
        failed: latest.counts.failed + counts.failed,
      },
      cursor: last !== undefined ? { startTime: last.startTime, requestId: last.requestId } : latest.cursor,
      steppedAt: start,
      pageFailures: 0,
      limitReached: limitReached && !done ? true : latest.limitReached,
      ...(finishes ? { status: "FINISHED" as const, finishedAt: Date.now() } : {}),
    });
    return counts.matched;
  }
}
