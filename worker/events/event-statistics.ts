import { z } from "zod";
import { DEFAULT_RETENTION_MS } from "./event-retention";
import { type EventTags, tagFilterSchema } from "./event-tags";

/** Width of one statistics bucket: an hour. */
export const STATISTICS_BUCKET_MS = 60 * 60 * 1000;
/**
 * Most buckets one statistics answer holds: the default retention, hour by hour (72). A namespace
 * keeping its events longer (up to 7 days) sees only their last 72 hours here; the list shows them all.
 */
export const MAX_STATISTICS_HOURS = DEFAULT_RETENTION_MS / STATISTICS_BUCKET_MS;
/** The statuses counted, in the order the answer lists them. */
export const STATISTICS_STATUSES = ["RUNNING", "FINISHED", "FAILED", "ABORTED"] as const;
type CountedStatus = (typeof STATISTICS_STATUSES)[number];

/**
 * Query of the statistics route: how many hours back from now (1-72, all of them by default), and
 * optionally a tag filter (`tags=env=prod,team=video`: only events carrying every one of them).
 */
export const statisticsQuerySchema = z.strictObject({
  hours: z.coerce.number().int().min(1).max(MAX_STATISTICS_HOURS).default(MAX_STATISTICS_HOURS),
  tags: tagFilterSchema.optional(),
});

/** Events counted per status. */
export type StatusCounts = Record<CountedStatus, number>;

/** One hour of a function's events (by start time). */
export interface StatisticsBucket extends StatusCounts {
  /** The hour's start (ISO-8601, UTC). */
  start: string;
}

/** A function's events counted per status and hour, every hour of the window present (zeros too). */
export interface FunctionStatistics {
  namespace: string;
  functionName: string;
  /** Start of the first bucket (an hour boundary). */
  from: string;
  /** End of the last bucket (exclusive): the next hour boundary after now. */
  to: string;
  bucketMs: number;
  buckets: StatisticsBucket[];
  totals: StatusCounts;
}

function zeroCounts(): StatusCounts {
  return { RUNNING: 0, FINISHED: 0, FAILED: 0, ABORTED: 0 };
}

/**
 * Counts a function's events in the D1 index per status and hour of their start time, over the
 * last `hours` hours (the current hour included). One grouped query on the index ordered by
 * namespace, function and start time; at most MAX_STATISTICS_HOURS × 4 rows come back.
 */
export async function functionStatistics(
  db: D1Database,
  namespace: string,
  functionName: string,
  hours: number,
  nowMs: number = Date.now(),
  tags: EventTags = {},
): Promise<FunctionStatistics> {
  const bounded = Math.min(Math.max(1, Math.floor(hours)), MAX_STATISTICS_HOURS);
  const to = (Math.floor(nowMs / STATISTICS_BUCKET_MS) + 1) * STATISTICS_BUCKET_MS;
  const from = to - bounded * STATISTICS_BUCKET_MS;
  // A tag filter: one `event_tags` range per tag (as the list's tagFilterConditions), its key and
  // value bound after the five parameters above.
  const tagEntries = Object.entries(tags);
  const tagConditions = tagEntries
    .map(
      (_, index) =>
        ` AND request_id IN (SELECT request_id FROM event_tags WHERE namespace = ?3 AND function_name = ?4 AND key = ?${6 + 2 * index} AND value = ?${7 + 2 * index})`,
    )
    .join("");
  const { results } = await db
    .prepare(
      `SELECT CAST((start_time - ?1) / ?2 AS INTEGER) AS bucket, status, COUNT(*) AS n FROM events
       WHERE namespace = ?3 AND function_name = ?4 AND start_time >= ?1 AND start_time < ?5${tagConditions}
       GROUP BY bucket, status`,
    )
    .bind(from, STATISTICS_BUCKET_MS, namespace, functionName, to, ...tagEntries.flat())
    .all<{ bucket: number; status: string; n: number }>();
  const buckets: StatisticsBucket[] = Array.from({ length: bounded }, (_, index) => ({
    start: new Date(from + index * STATISTICS_BUCKET_MS).toISOString(),
    ...zeroCounts(),
  }));
  const totals = zeroCounts();
  for (const row of results) {
    const bucket = buckets[row.bucket];
    if (!bucket || !(STATISTICS_STATUSES as readonly string[]).includes(row.status)) continue;
    const status = row.status as CountedStatus;
    bucket[status] += row.n;
    totals[status] += row.n;
  }
  return {
    namespace,
    functionName,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    bucketMs: STATISTICS_BUCKET_MS,
    buckets,
    totals,
  };
}
