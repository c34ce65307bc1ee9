// How long a namespace keeps its ended events, and whether it archives them to R2 before deletion:
// the `namespace_settings` row (none: the defaults), read and written here, cached per isolate
// briefly; and the purge of the D1 event index by each namespace's retention (the Worker's
// scheduled handler). The event object applies the retention itself (async-event-object.ts).
import { z } from "zod";
import { MAX_ASYNC_TIMEOUT_SECONDS } from "../functions/model";

const HOUR_MS = 60 * 60 * 1000;
/** Hours an ended event is kept when its namespace set nothing (SCF's 72 hours, 3 days). */
export const DEFAULT_RETENTION_HOURS = 72;
/** Shortest retention a namespace may set (hours). */
export const MIN_RETENTION_HOURS = 1;
/** Longest retention a namespace may set (hours): 7 days. */
export const MAX_RETENTION_HOURS = 168;
/** The default retention in milliseconds. */
export const DEFAULT_RETENTION_MS = DEFAULT_RETENTION_HOURS * HOUR_MS;
/** The longest retention in milliseconds. */
export const MAX_RETENTION_MS = MAX_RETENTION_HOURS * HOUR_MS;
/**
 * Oldest index row kept whatever its state (by its start time): the longest retention after the
 * longest run (an async function's timeout). A row still not ended by then (an event its index write
 * never ended, or one queued that long) is purged anyway.
 */
export const MAX_INDEX_AGE_MS = MAX_RETENTION_MS + MAX_ASYNC_TIMEOUT_SECONDS * 1000;
/** How long an isolate reuses a namespace's settings it read (a change applies everywhere within it). */
export const SETTINGS_CACHE_TTL_MS = 30_000;
/** Most namespaces whose settings one isolate caches (the oldest entry goes first). */
export const SETTINGS_CACHE_ENTRIES = 1_000;
/** Largest body of a settings PUT. */
export const MAX_SETTINGS_BODY_BYTES = 1024;
/** Index rows one purge statement deletes at most (their tags go with them). */
export const PURGE_BATCH_ROWS = 500;
/** Most full batches one purge run deletes (the next run, a minute later, goes on). */
export const MAX_PURGE_BATCHES_PER_RUN = 40;
/** Most namespaces with their own retention one purge run goes through (a window rotating each minute). */
export const MAX_PURGE_NAMESPACES_PER_RUN = 50;

/** A namespace's retention settings, as the API shows them. */
export interface NamespaceSettings {
  /** Hours an ended event stays readable and listed after its end. */
  retentionHours: number;
  /** Whether an ended event is archived to R2 (ARCHIVE_BUCKET) before it is deleted. */
  archive: boolean;
}

/** The settings of a namespace that set nothing. */
export const DEFAULT_NAMESPACE_SETTINGS: Readonly<NamespaceSettings> = Object.freeze({
  retentionHours: DEFAULT_RETENTION_HOURS,
  archive: false,
});

const RETENTION_RULE = `retentionHours: a whole number of hours, ${MIN_RETENTION_HOURS}-${MAX_RETENTION_HOURS}`;

/** A settings PUT: either field may be left out (it keeps its current value); nothing else is accepted. */
export const namespaceSettingsUpdateSchema = z.strictObject({
  retentionHours: z
    .number(RETENTION_RULE)
    .int(RETENTION_RULE)
    .min(MIN_RETENTION_HOURS, RETENTION_RULE)
    .max(MAX_RETENTION_HOURS, RETENTION_RULE)
    .optional(),
  archive: z.boolean("archive: true or false").optional(),
});

/** A settings update as parsed. */
export type NamespaceSettingsUpdate = z.infer<typeof namespaceSettingsUpdateSchema>;

/** The retention of settings in milliseconds. */
export function retentionMsOf(settings: NamespaceSettings): number {
  return settings.retentionHours * HOUR_MS;
}

/** A stored retention kept within the bounds (a row written before a bound changed). */
function boundedHours(hours: number): number {
  if (!Number.isFinite(hours)) return DEFAULT_RETENTION_HOURS;
  return Math.min(MAX_RETENTION_HOURS, Math.max(MIN_RETENTION_HOURS, Math.floor(hours)));
}

interface SettingsRow {
  retention_hours: number;
  archive_enabled: number;
}

/** The namespace's settings from D1 (the defaults without a row). D1's errors are thrown. */
export async function readNamespaceSettings(db: D1Database, namespace: string): Promise<NamespaceSettings> {
  const row = await db
    .prepare("SELECT retention_hours, archive_enabled FROM namespace_settings WHERE namespace = ?")
    .bind(namespace)
    .first<SettingsRow>();
  const settings = row
    ? { retentionHours: boundedHours(row.retention_hours), archive: row.archive_enabled === 1 }
    : { ...DEFAULT_NAMESPACE_SETTINGS };
  remember(namespace, settings, Date.now());
  return settings;
}

/** Applies an update to the namespace's settings (fields left out keep their value); answers the result. */
export async function updateNamespaceSettings(
  db: D1Database,
  namespace: string,
  update: NamespaceSettingsUpdate,
  nowMs: number = Date.now(),
): Promise<NamespaceSettings> {
  const current = await readNamespaceSettings(db, namespace);
  const next: NamespaceSettings = {
    retentionHours: update.retentionHours ?? current.retentionHours,
    archive: update.archive ?? current.archive,
  };
  await db
    .prepare(
      `INSERT INTO namespace_settings (namespace, retention_hours, archive_enabled, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (namespace) DO UPDATE SET retention_hours = excluded.retention_hours,
         archive_enabled = excluded.archive_enabled, updated_at = excluded.updated_at`,
    )
    .bind(namespace, next.retentionHours, next.archive ? 1 : 0, nowMs)
    .run();
  remember(namespace, next, nowMs);
  return next;
}

/** This isolate's recently read settings, by namespace (insertion order: the oldest first). */
const cache = new Map<string, { settings: NamespaceSettings; at: number }>();

function remember(namespace: string, settings: NamespaceSettings, at: number): void {
  cache.delete(namespace);
  cache.set(namespace, { settings, at });
  while (cache.size > SETTINGS_CACHE_ENTRIES) {
    const oldest = cache.keys().next().value;
    if (oldest === undefined) break;
    cache.delete(oldest);
  }
}

/** Forgets every cached setting (tests). */
export function clearNamespaceSettingsCache(): void {
  cache.clear();
}

/** The namespace's settings this isolate read less than SETTINGS_CACHE_TTL_MS ago, if any. */
export function cachedNamespaceSettings(namespace: string, nowMs: number = Date.now()): NamespaceSettings | undefined {
  const cached = cache.get(namespace);
  return cached && nowMs - cached.at < SETTINGS_CACHE_TTL_MS ? cached.settings : undefined;
}

/** Longest wait of an event's end on D1 for its namespace's settings (a cache miss). */
export const END_SETTINGS_WAIT_MS = 200;

/**
 * The retention an event stores when it ends: its namespace's settings from this isolate's cache,
 * else from D1 if it answers within END_SETTINGS_WAIT_MS. Otherwise (D1 slow or failing) a
 * provisional shortest retention: the deletion is looked at MIN_RETENTION_HOURS after the end and
 * re-reads the settings then (the defaults when D1 still cannot answer). The end never waits longer.
 */
export async function retentionAtEnd(
  db: D1Database,
  namespace: string,
  nowMs: number = Date.now(),
): Promise<StoredRetention> {
  const cached = cachedNamespaceSettings(namespace, nowMs);
  if (cached) return storedRetentionOf(cached);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), END_SETTINGS_WAIT_MS);
  });
  const read = readNamespaceSettings(db, namespace).catch((error: unknown) => {
    console.warn("namespace settings unreadable at the end; the deletion re-reads them", namespace, String(error));
    return undefined;
  });
  const settings = await Promise.race([read, timeout]);
  if (timer !== undefined) clearTimeout(timer);
  if (settings) return storedRetentionOf(settings);
  return { retentionMs: MIN_RETENTION_HOURS * HOUR_MS, archive: false, provisional: true };
}

/**
 * The retention the event object stores for an ended event: its namespace's settings when it
 * ended (re-read when the deletion is due), the archive's failed tries, and a diagnostics-forced
 * deletion.
 */
export interface StoredRetention {
  retentionMs: number;
  archive: boolean;
  /** Failed archive writes so far (the deletion waits for the archive up to MAX_ARCHIVE_ATTEMPTS). */
  archiveAttempts?: number;
  /** When the archive is tried again after a failure (epoch ms). */
  retryAt?: number;
  /** Diagnostics: delete now, whatever the retention (the e2e test's way to skip an hour). */
  forcedAt?: number;
  /** The namespace's settings were unknown at the end (retentionAtEnd): the deletion reads them. */
  provisional?: boolean;
}

/** The stored retention of settings. */
export function storedRetentionOf(settings: NamespaceSettings): StoredRetention {
  return { retentionMs: retentionMsOf(settings), archive: settings.archive };
}

/** When an ended event is deleted (or its archive tried again), given its stored retention. */
export function retentionDueAt(endedAt: number, retention: StoredRetention | undefined): number {
  if (!retention) return endedAt + DEFAULT_RETENTION_MS;
  if (retention.forcedAt !== undefined) return retention.forcedAt;
  return Math.max(endedAt + retention.retentionMs, retention.retryAt ?? 0);
}

/** Archive writes tried before the event is deleted without its archive (logged as an error). */
export const MAX_ARCHIVE_ATTEMPTS = 8;
/**
 * Longest an archive may hold a due deletion back (from its due time): past it the event is
 * deleted without its archive, an error logged, whatever the tries counted.
 */
export const MAX_ARCHIVE_OVERDUE_MS = 6 * HOUR_MS;
/** Wait before the first retry of a failed archive write; doubled each time, at most MAX_ARCHIVE_RETRY_MS. */
export const ARCHIVE_RETRY_BASE_MS = 60_000;
/** Longest wait between two archive tries. */
export const MAX_ARCHIVE_RETRY_MS = 60 * 60_000;

/** The wait after the given number of failed archive writes. */
export function archiveRetryDelay(failedAttempts: number): number {
  return Math.min(ARCHIVE_RETRY_BASE_MS * 2 ** Math.max(0, failedAttempts - 1), MAX_ARCHIVE_RETRY_MS);
}

/** The longest run of an event (an async function's timeout): an unended row is kept its retention after it. */
export const MAX_RUN_MS = MAX_ASYNC_TIMEOUT_SECONDS * 1000;

/** Namespaces whose retention differs from the default (SQL, their settings rows). */
const CUSTOM_NAMESPACES = `SELECT namespace FROM namespace_settings WHERE retention_hours != ${DEFAULT_RETENTION_HOURS}`;

/** One purge pass: the rows it deletes, in the order of an index, batch by batch. */
interface PurgePass {
  where: string;
  order: string;
  params: (string | number)[];
}

/**
 * Purges the D1 event index by each namespace's retention: ended rows past their end plus their
 * namespace's retention (the default for a namespace without settings, by events_by_end; one with
 * its own, by events_by_namespace_end), rows that never ended past their start plus that retention
 * plus the longest run (MAX_RUN_MS), and tag rows older than MAX_INDEX_AGE_MS (an event row lost).
 * Each event's tag rows go with its row. Every statement is bounded (PURGE_BATCH_ROWS); a run
 * deletes at most MAX_PURGE_BATCHES_PER_RUN full batches (a batch deleting fewer rows ends its pass
 * and is not charged). A run covers at most MAX_PURGE_NAMESPACES_PER_RUN namespaces with their own
 * retention, a window rotating with the minute, and starts its passes at a pass rotating with the
 * minute: when the budget runs out, the next runs begin elsewhere, so no namespace starves.
 * Answers how many index rows went.
 *
 * `scope` is for an index database other than DB (INDEX_DATABASES): the namespace settings are read
 * from `scope.settingsDb`; `scope.namespaces` (those mapped to this database) are purged by their
 * own retention or the default one, and the rows of any other namespace in it (one moved away, or a
 * binding sharing its database with another) by the longest retention (MAX_RETENTION_MS).
 */
export async function purgeExpiredIndexRows(
  db: D1Database,
  nowMs: number,
  scope?: { settingsDb: D1Database; namespaces: readonly string[] },
): Promise<number> {
  const budget = { batches: MAX_PURGE_BATCHES_PER_RUN, deleted: 0 };
  const minute = Math.floor(nowMs / 60_000);
  let window: { namespace: string; retention_hours: number }[];
  const passes: PurgePass[] = [];
  if (scope === undefined) {
    window = await customNamespaceWindow(db, minute);
    passes.push(...endedAndUnended(nowMs, DEFAULT_RETENTION_MS, `namespace NOT IN (${CUSTOM_NAMESPACES})`, []));
  } else {
    const all = await mappedCustomNamespaces(scope.settingsDb, scope.namespaces);
    window = rotatingWindow(all, minute);
    const mapped = JSON.stringify(scope.namespaces);
    const custom = JSON.stringify(all.map((row) => row.namespace));
    // The mapped namespaces without their own retention: the default one.
    passes.push(
      ...endedAndUnended(
        nowMs,
        DEFAULT_RETENTION_MS,
        "namespace IN (SELECT value FROM json_each(?2)) AND namespace NOT IN (SELECT value FROM json_each(?3))",
        [mapped, custom],
      ),
    );
    // Rows of namespaces not mapped here (moved away, or this binding shares its database with
    // another): listed nowhere, kept for the longest retention any namespace may have.
    passes.push(
      ...endedAndUnended(nowMs, MAX_RETENTION_MS, "namespace NOT IN (SELECT value FROM json_each(?2))", [mapped]),
    );
  }
  for (const row of window) {
    const retentionMs = boundedHours(row.retention_hours) * HOUR_MS;
    passes.push(
      { where: "namespace = ?2 AND end_time < ?1", order: "end_time", params: [nowMs - retentionMs, row.namespace] },
      {
        where: "namespace = ?2 AND end_time IS NULL AND start_time < ?1",
        order: "start_time",
        params: [nowMs - retentionMs - MAX_RUN_MS, row.namespace],
      },
    );
  }
  const first = minute % passes.length;
  for (let index = 0; index < passes.length && budget.batches > 0; index += 1) {
    const pass = passes[(first + index) % passes.length] as PurgePass;
    await purgeWhile(db, budget, pass);
  }
  // Tag rows whose event row is gone anyway (bounded like the rest).
  while (budget.batches > 0) {
    const { meta } = await db
      .prepare(
        `DELETE FROM event_tags WHERE rowid IN (SELECT rowid FROM event_tags WHERE start_time < ?1 ORDER BY start_time LIMIT ${PURGE_BATCH_ROWS})`,
      )
      .bind(nowMs - MAX_INDEX_AGE_MS)
      .run();
    if ((meta.changes ?? 0) < PURGE_BATCH_ROWS) break;
    budget.batches -= 1;
  }
  return budget.deleted;
}

/**
 * The namespaces with their own retention this run covers: all of them up to
 * MAX_PURGE_NAMESPACES_PER_RUN, else a window of that many (by name, wrapping) moved on each minute.
 */
async function customNamespaceWindow(
  db: D1Database,
  minute: number,
): Promise<{ namespace: string; retention_hours: number }[]> {
  const counted = await db
    .prepare(`SELECT COUNT(*) AS n FROM namespace_settings WHERE retention_hours != ?1`)
    .bind(DEFAULT_RETENTION_HOURS)
    .first<{ n: number }>();
  const total = counted?.n ?? 0;
  if (total === 0) return [];
  const size = Math.min(total, MAX_PURGE_NAMESPACES_PER_RUN);
  const offset = total > size ? (minute * size) % total : 0;
  const select = db.prepare(
    "SELECT namespace, retention_hours FROM namespace_settings WHERE retention_hours != ?1 ORDER BY namespace LIMIT ?2 OFFSET ?3",
  );
  const { results } = await select
    .bind(DEFAULT_RETENTION_HOURS, size, offset)
    .all<{ namespace: string; retention_hours: number }>();
  if (results.length < size) {
    const wrapped = await select
      .bind(DEFAULT_RETENTION_HOURS, size - results.length, 0)
      .all<{ namespace: string; retention_hours: number }>();
    results.push(...wrapped.results);
  }
  return results;
}

/**
 * The two passes of rows matching `condition` (over ?2, ?3... bound from `params`) past `retentionMs`:
 * ended ones by their end, and ones that never ended by their start plus the longest run.
 */
function endedAndUnended(nowMs: number, retentionMs: number, condition: string, params: string[]): PurgePass[] {
  return [
    { where: `end_time < ?1 AND ${condition}`, order: "end_time", params: [nowMs - retentionMs, ...params] },
    {
      where: `end_time IS NULL AND start_time < ?1 AND ${condition}`,
      order: "start_time",
      params: [nowMs - retentionMs - MAX_RUN_MS, ...params],
    },
  ];
}

/**
 * The namespaces among `namespaces` whose settings (read from `settingsDb`) give them their own
 * retention, by name: one statement, the names bound as one JSON array (INDEX_DATABASES maps at
 * most MAX_MAPPED_NAMESPACES).
 */
async function mappedCustomNamespaces(
  settingsDb: D1Database,
  namespaces: readonly string[],
): Promise<{ namespace: string; retention_hours: number }[]> {
  if (namespaces.length === 0) return [];
  const { results } = await settingsDb
    .prepare(
      `SELECT namespace, retention_hours FROM namespace_settings
       WHERE retention_hours != ?1 AND namespace IN (SELECT value FROM json_each(?2)) ORDER BY namespace`,
    )
    .bind(DEFAULT_RETENTION_HOURS, JSON.stringify(namespaces))
    .all<{ namespace: string; retention_hours: number }>();
  return results;
}

/** At most MAX_PURGE_NAMESPACES_PER_RUN of `all`, a window moved on each minute (wrapping). */
function rotatingWindow<T>(all: readonly T[], minute: number): T[] {
  if (all.length <= MAX_PURGE_NAMESPACES_PER_RUN) return [...all];
  const offset = (minute * MAX_PURGE_NAMESPACES_PER_RUN) % all.length;
  return [...all.slice(offset), ...all.slice(0, offset)].slice(0, MAX_PURGE_NAMESPACES_PER_RUN);
}

/**
 * Deletes the pass's rows (and their tags) batch by batch while the run's budget lasts: a full batch
 * is charged, a shorter one ends the pass.
 */
async function purgeWhile(
  db: D1Database,
  budget: { batches: number; deleted: number },
  pass: PurgePass,
): Promise<void> {
  while (budget.batches > 0) {
    const { results } = await db
      .prepare(
        `DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE ${pass.where} ORDER BY ${pass.order} LIMIT ${PURGE_BATCH_ROWS}) RETURNING request_id`,
      )
      .bind(...pass.params)
      .all<{ request_id: string }>();
    const ids = results.map((row) => row.request_id);
    budget.deleted += ids.length;
    await deleteTagsOf(db, ids);
    if (ids.length < PURGE_BATCH_ROWS) return;
    budget.batches -= 1;
  }
}

/**
 * Best effort at an event's deletion: its index row and tag rows (the purge would otherwise find a
 * row left RUNNING, its end's index write never made, only by its start plus retention and run).
 */
export async function deleteIndexRowOf(db: D1Database, requestId: string): Promise<void> {
  try {
    await db.batch([
      db.prepare("DELETE FROM events WHERE request_id = ?").bind(requestId),
      db.prepare("DELETE FROM event_tags WHERE request_id = ?").bind(requestId),
    ]);
  } catch (error) {
    console.warn("index row not deleted with its event; the purge removes it", requestId, String(error));
  }
}

/** Bound parameters of one tag deletion (D1 allows 100 a statement). */
const TAG_DELETE_CHUNK = 100;

/** Deletes the tag rows of the given events. */
async function deleteTagsOf(db: D1Database, requestIds: readonly string[]): Promise<void> {
  if (requestIds.length === 0) return;
  const statements: D1PreparedStatement[] = [];
  for (let index = 0; index < requestIds.length; index += TAG_DELETE_CHUNK) {
    const chunk = requestIds.slice(index, index + TAG_DELETE_CHUNK);
    statements.push(
      db.prepare(`DELETE FROM event_tags WHERE request_id IN (${chunk.map(() => "?").join(", ")})`).bind(...chunk),
    );
  }
  await db.batch(statements);
}
