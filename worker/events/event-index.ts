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
  };
}

const UPSERT_SQL = `INSERT INTO events
  (request_id, namespace, function_name, qualifier, invoke_type, status, status_code, phase,
   start_time, end_time, duration_ms, version, updated_at, alias)
  VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
  ON CONFLICT (request_id) DO UPDATE SET
    status = excluded.status, status_code = excluded.status_code, phase = excluded.phase,
    end_time = excluded.end_time, duration_ms = excluded.duration_ms, version = excluded.version,
    updated_at = excluded.updated_at
  WHERE excluded.version > events.version`;

/**
 * Writes index entries in one D1 batch. Idempotent and order-independent: an entry only replaces
 * a row with a lower version, so redelivered or late writes never move an event backwards.
 */
export async function writeIndexEntries(db: D1Database, entries: readonly EventIndexEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const now = Date.now();
  const statement = db.prepare(UPSERT_SQL);
  await db.batch(
    entries.map((entry) =>
      statement.bind(
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
        now,
        entry.alias ?? null,
      ),
    ),
  );
}
