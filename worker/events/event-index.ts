import { groupByIndexDatabase, type IndexDatabaseEnv } from "../db/index-databases";
import { eventIdentityOf } from "./event-identity";
import type { EventIndexEntry } from "./event-index-entry";
import { type EventState, publicStatus } from "./event-machine";

export type { EventIndexEntry } from "./event-index-entry";

/**
 * An index write an event owes D1: kept in the event's Durable Object storage (written together
 * with the state that made it owed) until D1 has the row, and retried by the event's alarm.
 */
export interface PendingIndexWrite {
  /** The event version the index row must reach; the current state is written (never older). */
  version: number;
  /** Failed attempts so far. */
  attempts: number;
  /** When the next attempt is due (epoch ms). */
  retryAt: number;
}

/** Delay before retrying an index write that failed once. */
export const INDEX_RETRY_FIRST_DELAY_MS = 1_000;
/** Longest delay between two retries of an owed index write (the doubling stops there). */
export const INDEX_RETRY_MAX_DELAY_MS = 5 * 60_000;
/**
 * Share of a retry delay drawn at random (the rest is fixed): events whose writes failed together
 * (D1 unavailable) do not all retry at the same instant.
 */
const INDEX_RETRY_JITTER = 0.5;

/** A pending write owed from now on, first tried at once by the caller and then by the alarm. */
export function newPendingIndexWrite(version: number, now: number): PendingIndexWrite {
  return { version, attempts: 0, retryAt: now + INDEX_RETRY_FIRST_DELAY_MS };
}

/**
 * The pending write after one more failed attempt: the delay doubles from
 * INDEX_RETRY_FIRST_DELAY_MS up to INDEX_RETRY_MAX_DELAY_MS, with jitter. There is no last attempt:
 * the write stays owed as long as the row could be listed.
 */
export function afterFailedIndexWrite(
  pending: PendingIndexWrite,
  now: number,
  random = Math.random,
): PendingIndexWrite {
  const attempts = pending.attempts + 1;
  const base = Math.min(INDEX_RETRY_FIRST_DELAY_MS * 2 ** Math.min(attempts - 1, 30), INDEX_RETRY_MAX_DELAY_MS);
  const delay = Math.round(base * (1 - INDEX_RETRY_JITTER + INDEX_RETRY_JITTER * random()));
  return { ...pending, attempts, retryAt: now + delay };
}

/**
 * Whether a failed attempt is logged: the 1st, 2nd, 4th, 8th, ...: an outage of any length costs
 * each event a number of log lines that grows with the logarithm of its attempts.
 */
export function logsIndexFailure(attempts: number): boolean {
  return attempts > 0 && (attempts & (attempts - 1)) === 0;
}

/** The index entry of an event's current state. */
export function indexEntryOf(state: EventState): EventIndexEntry {
  return {
    ...eventIdentityOf(state),
    status: publicStatus(state.phase),
    statusCode: state.statusCode ?? null,
    phase: state.phase,
    startTime: state.invokedAt,
    endTime: state.endedAt ?? null,
    durationMs: state.durationMs ?? null,
    version: state.version,
    ...(state.tags !== undefined ? { tags: state.tags } : {}),
    // The latest progress (event-progress.ts): every write carries it, the end's the final one.
    progressPercent: state.progress?.percent ?? null,
    progressMessage: state.progress?.message ?? null,
    progressAt: state.progress?.at ?? null,
  };
}

/** An entry's tags as the `events.tags` column holds them: JSON text, null for none. */
function tagsColumnOf(entry: EventIndexEntry): string | null {
  return entry.tags && Object.keys(entry.tags).length > 0 ? JSON.stringify(entry.tags) : null;
}

/**
 * Index rows written by one D1 statement at most. One JSON parameter carries them all (D1 binds at
 * most 100 parameters per query: 18 per row would allow 5 rows); 100 rows of bounded fields (ten
 * tags of at most 64 + 128 characters, a bounded progress message) stay far below D1's 2 MB bound
 * on one string.
 */
export const INDEX_ROWS_PER_STATEMENT = 100;

/**
 * The rows of many entries in one statement: each element of the JSON array ?1 is one row, in the
 * column order below (updated_at, ?2, apart). An upsert: a row is replaced only by a higher version
 * (`WHERE true` lets SQLite parse the upsert after a SELECT).
 */
const UPSERT_MANY_SQL = `INSERT INTO events
  (request_id, namespace, function_name, qualifier, invoke_type, status, status_code, phase,
   start_time, end_time, duration_ms, version, updated_at, alias, tags,
   progress_percent, progress_message, progress_at)
  SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
    json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'),
    json_extract(value, '$[6]'), json_extract(value, '$[7]'), json_extract(value, '$[8]'),
    json_extract(value, '$[9]'), json_extract(value, '$[10]'), json_extract(value, '$[11]'), ?2,
    json_extract(value, '$[12]'), json_extract(value, '$[13]'), json_extract(value, '$[14]'),
    json_extract(value, '$[15]'), json_extract(value, '$[16]')
  FROM json_each(?1) WHERE true
  ON CONFLICT (request_id) DO UPDATE SET
    status = excluded.status, status_code = excluded.status_code, phase = excluded.phase,
    end_time = excluded.end_time, duration_ms = excluded.duration_ms, version = excluded.version,
    updated_at = excluded.updated_at, tags = COALESCE(events.tags, excluded.tags),
    progress_percent = excluded.progress_percent, progress_message = excluded.progress_message,
    progress_at = excluded.progress_at
  WHERE excluded.version > events.version`;

/**
 * The `event_tags` rows of many events: ?1 is a JSON array of [requestId, namespace, function,
 * startTime, tags as JSON text]. INSERT OR IGNORE, so a retried or late write of the same event adds nothing: the tags never change after acceptance, so the first
 * write of a row carries them all (`events.tags` too; the upsert keeps a row's tags once set, and
 * fills them in only when a row was first written without them, by a dispatch message of before tags).
 */
const TAGS_MANY_SQL = `INSERT OR IGNORE INTO event_tags (request_id, namespace, function_name, key, value, start_time)
  SELECT json_extract(row.value, '$[0]'), json_extract(row.value, '$[1]'), json_extract(row.value, '$[2]'),
    tag.key, tag.value, json_extract(row.value, '$[3]')
  FROM json_each(?1) AS row, json_each(json_extract(row.value, '$[4]')) AS tag`;

/**
 * Writes index entries in one D1 batch (one transaction): INDEX_ROWS_PER_STATEMENT rows per
 * statement, and one statement for the tag rows of those that have tags. Idempotent and
 * order-independent: an entry only replaces a row with a lower version, so redelivered or late
 * writes never move an event backwards. The tag rows go in the same batch as their rows: a listed
 * tagged event is always found by its tags.
 */
export async function writeIndexEntries(db: D1Database, entries: readonly EventIndexEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const now = Date.now();
  const statements: D1PreparedStatement[] = [];
  for (let start = 0; start < entries.length; start += INDEX_ROWS_PER_STATEMENT) {
    const chunk = entries.slice(start, start + INDEX_ROWS_PER_STATEMENT);
    const rows = chunk.map((entry) => [
      entry.requestId,
      entry.namespace,
      entry.functionName,
      entry.qualifier,
      entry.invokeType,
      entry.status,
      entry.statusCode,
      entry.phase,
      entry.startTime,
      entry.endTime,
      entry.durationMs,
      entry.version,
      entry.alias ?? null,
      tagsColumnOf(entry),
      entry.progressPercent ?? null,
      entry.progressMessage ?? null,
      entry.progressAt ?? null,
    ]);
    statements.push(db.prepare(UPSERT_MANY_SQL).bind(JSON.stringify(rows), now));
    const tagged = chunk.flatMap((entry) => {
      const tags = tagsColumnOf(entry);
      return tags === null ? [] : [[entry.requestId, entry.namespace, entry.functionName, entry.startTime, tags]];
    });
    if (tagged.length > 0) statements.push(db.prepare(TAGS_MANY_SQL).bind(JSON.stringify(tagged)));
  }
  await db.batch(statements);
}

/**
 * Writes rows of any namespaces, each into its namespace's index database (indexDatabaseOf), the
 * databases in parallel. Answers the RequestIds written and, per database that refused its rows,
 * those rows and the error: one database's outage does not hold back the others' rows.
 */
export async function writeIndexEntriesByDatabase(
  env: IndexDatabaseEnv,
  entries: readonly EventIndexEntry[],
): Promise<{ written: Set<string>; refused: { binding: string; entries: EventIndexEntry[]; error: unknown }[] }> {
  const written = new Set<string>();
  const refused: { binding: string; entries: EventIndexEntry[]; error: unknown }[] = [];
  await Promise.all(
    groupByIndexDatabase(env, entries, (entry) => entry.namespace).map(async (group) => {
      try {
        await writeIndexEntries(group.db, group.items);
        for (const entry of group.items) written.add(entry.requestId);
      } catch (error) {
        refused.push({ binding: group.binding, entries: group.items, error });
      }
    }),
  );
  return { written, refused };
}
