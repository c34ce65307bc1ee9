import { type EventState, publicStatus } from "./event-machine";

/** One row of the D1 event index, as the writer needs it. */
export interface EventIndexEntry {
  requestId: string;
  namespace: string;
  functionName: string;
  qualifier: string;
  invokeType: string;
  status: string;
  statusCode: number | null;
  phase: string;
  startTime: number;
  endTime: number | null;
  durationMs: number | null;
  version: number;
}

/** The index entry of an event's current state. */
export function indexEntryOf(state: EventState): EventIndexEntry {
  return {
    requestId: state.requestId,
    namespace: state.namespace,
    functionName: state.functionName,
    qualifier: state.qualifier,
    invokeType: state.invokeType,
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
   start_time, end_time, duration_ms, version, updated_at)
  VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
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
      ),
    ),
  );
}
