// Published versions of a function (SCF's PublishVersion, ListVersionByFunction,
// DeleteFunctionVersion): `$LATEST`'s code and whole configuration frozen, in one D1 statement, as
// the next version number 1, 2, ... Versions are immutable; a deleted number is never given again.
//
// Storage (db/schema.ts function_versions): `config` is the function row as published (JSON, the
// FunctionRow fields without timestamps). A deleted version leaves a tombstone (config '') only
// while it is the highest number, so that publishing after deleting the newest version still
// counts up; older tombstones are removed with it. Code packages stay in R2 (by SHA-256) until the
// function is deleted: `$LATEST` or another version may share them.

import { z } from "zod";
import { indexBindingOf, indexDatabaseOf } from "../db/index-databases";
import type { FunctionRow } from "../db/schema";
import { PlatformError } from "../shared/errors";
import { cachedQualifierLookup, forgetQualifiers } from "./qualifier-cache";
import { functionNotFound } from "./registry";

/** The editable version every function has. */
export const LATEST = "$LATEST";
/** Most published versions one function keeps (deleted ones do not count). */
export const MAX_VERSIONS_PER_FUNCTION = 1_000;
/** Longest description of a published version, in characters. */
export const MAX_VERSION_DESCRIPTION_CHARS = 1_000;
/** A published version number as text: 1 to 9,999,999,999, no leading zero. */
export const VERSION_NUMBER_PATTERN = /^[1-9][0-9]{0,9}$/;
/** Most versions one list page returns. */
export const MAX_VERSION_LIST_LIMIT = 100;

/** True for a published version's number (not `$LATEST`, not an alias). */
export function isVersionNumber(value: string): boolean {
  return VERSION_NUMBER_PATTERN.test(value);
}

/** A version reference: `$LATEST` or a published version number. */
export const versionRefSchema = z
  .string()
  .max(16)
  .refine((value) => value === LATEST || isVersionNumber(value), `version: ${LATEST} or a version number (1, 2, ...)`);

/** Body of `POST /v1/namespaces/:namespace/functions/:name/versions`. */
export const publishVersionSchema = z.strictObject({
  description: z
    .string()
    .max(MAX_VERSION_DESCRIPTION_CHARS, `description: at most ${MAX_VERSION_DESCRIPTION_CHARS} characters`)
    .default(""),
});
/** A validated publish request. */
export type PublishVersionInput = z.infer<typeof publishVersionSchema>;

/** Query of `GET /v1/namespaces/:namespace/functions/:name/versions`. */
export const listVersionsQuerySchema = z.object({
  order: z
    .string()
    .transform((value) => value.toUpperCase())
    .pipe(z.enum(["ASC", "DESC"]))
    .default("DESC")
    .describe("DESC (default): $LATEST, then the newest version first; ASC: the oldest first, $LATEST last"),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
  limit: z.coerce.number().int().min(1).max(MAX_VERSION_LIST_LIMIT).default(20),
});

/** One version of a function: `$LATEST` (the function row) or a published one. */
export interface FunctionVersion {
  /** "$LATEST" or the version number as text. */
  version: string;
  /** The version's own description (`$LATEST`: the function's). */
  description: string;
  /** When it was published (`$LATEST`: when the function was created), epoch ms. */
  createdAt: number;
  /** When it last changed (published versions never change: their publication), epoch ms. */
  modifiedAt: number;
  /** Its code and configuration. */
  row: FunctionRow;
}

/** What a published row's `config` holds: the function row's fields but its timestamps. */
type StoredConfig = Omit<FunctionRow, "createdAt" | "updatedAt" | "asyncRunEnable"> & {
  asyncRunEnable: boolean | number;
};

/** Columns of the function row frozen by a publication, as `config` keys (json_object pairs). */
const CONFIG_JSON = `json_object(
  'namespace', f.namespace, 'name', f.name, 'runtime', f.runtime, 'handler', f.handler,
  'codeSha256', f.code_sha256, 'codeSize', f.code_size, 'codeKey', f.code_key,
  'timeoutSeconds', f.timeout_seconds, 'memoryMb', f.memory_mb, 'environment', f.environment,
  'description', f.description, 'asyncRunEnable', f.async_run_enable, 'maxConcurrency', f.max_concurrency,
  'qpsLimit', f.qps_limit, 'idempotencyWindowSeconds', f.idempotency_window_seconds,
  'destinations', f.destinations, 'logLimitMb', f.log_limit_mb,
  'deadlineWarningSeconds', f.deadline_warning_seconds, 'imageConfig', f.image_config)`;

/**
 * One statement: the next number (above every number ever given, tombstone included) and the
 * function row as it is now, inserted only while the function exists and has fewer than the bound.
 */
const PUBLISH_SQL = `INSERT INTO function_versions (namespace, function_name, version, config, description, created_at)
  SELECT f.namespace, f.name,
    coalesce((SELECT max(v.version) FROM function_versions v WHERE v.namespace = f.namespace AND v.function_name = f.name), 0) + 1,
    ${CONFIG_JSON}, ?3, ?4
  FROM functions f
  WHERE f.namespace = ?1 AND f.name = ?2
    AND (SELECT count(*) FROM function_versions v
         WHERE v.namespace = f.namespace AND v.function_name = f.name AND v.config <> '') < ?5
  RETURNING version, config, description, created_at`;

/**
 * Deletes (tombstones) a version only while no alias routes to it, no trigger targets it and (unless
 * forced) the event index shows no RUNNING event of it: the checks and the write are one statement.
 */
const DELETE_SQL = `UPDATE function_versions SET config = ''
  WHERE namespace = ?1 AND function_name = ?2 AND version = ?3 AND config <> ''
    AND NOT EXISTS (SELECT 1 FROM function_aliases a WHERE a.namespace = ?1 AND a.function_name = ?2
                    AND (a.function_version = ?4 OR a.additional_version = ?4))
    AND NOT EXISTS (SELECT 1 FROM triggers t WHERE t.namespace = ?1 AND t.function_name = ?2 AND t.qualifier = ?4)
    AND (?5 = 1 OR NOT EXISTS (SELECT 1 FROM events e WHERE e.namespace = ?1 AND e.function_name = ?2
                    AND e.status = 'RUNNING' AND e.qualifier = ?4))
  RETURNING version`;

/** Tombstones below the highest number are of no use: only the highest keeps the count going up. */
const PRUNE_SQL = `DELETE FROM function_versions
  WHERE namespace = ?1 AND function_name = ?2 AND config = ''
    AND version < (SELECT max(version) FROM function_versions WHERE namespace = ?1 AND function_name = ?2)`;

interface VersionRecord {
  version: number;
  config: string;
  description: string;
  created_at: number;
}

/** A published row read back as a version. */
function versionOf(record: VersionRecord): FunctionVersion {
  const config = JSON.parse(record.config) as StoredConfig;
  const row: FunctionRow = {
    ...config,
    // Published before image functions existed: a code function.
    imageConfig: config.imageConfig ?? null,
    asyncRunEnable: Boolean(config.asyncRunEnable),
    createdAt: record.created_at,
    updatedAt: record.created_at,
  };
  return {
    version: String(record.version),
    description: record.description,
    createdAt: record.created_at,
    modifiedAt: record.created_at,
    row,
  };
}

/** `$LATEST` as a version. */
export function latestVersionOf(row: FunctionRow): FunctionVersion {
  return { version: LATEST, description: row.description, createdAt: row.createdAt, modifiedAt: row.updatedAt, row };
}

/** The error for a version the function does not have. */
export function versionNotFound(name: string, version: string): PlatformError {
  return new PlatformError("QUALIFIER_NOT_FOUND", `function ${name} has no version ${version}`);
}

async function functionRow(db: D1Database, namespace: string, name: string): Promise<FunctionRow | undefined> {
  const row = await db
    .prepare(
      `SELECT namespace, name, runtime, handler, code_sha256 AS codeSha256, code_size AS codeSize, code_key AS codeKey,
        timeout_seconds AS timeoutSeconds, memory_mb AS memoryMb, environment, description,
        async_run_enable AS asyncRunEnable, max_concurrency AS maxConcurrency, qps_limit AS qpsLimit,
        idempotency_window_seconds AS idempotencyWindowSeconds, destinations, log_limit_mb AS logLimitMb,
        deadline_warning_seconds AS deadlineWarningSeconds, image_config AS imageConfig, created_at AS createdAt, updated_at AS updatedAt
       FROM functions WHERE namespace = ?1 AND name = ?2`,
    )
    .bind(namespace, name)
    .first<FunctionRow>();
  return row ? { ...row, asyncRunEnable: Boolean(row.asyncRunEnable) } : undefined;
}

/** A published version's record, or undefined (deleted or never published). */
async function publishedRecord(
  db: D1Database,
  namespace: string,
  name: string,
  version: number,
): Promise<VersionRecord | undefined> {
  const record = await db
    .prepare(
      `SELECT version, config, description, created_at FROM function_versions
       WHERE namespace = ?1 AND function_name = ?2 AND version = ?3 AND config <> ''`,
    )
    .bind(namespace, name, version)
    .first<VersionRecord>();
  return record ?? undefined;
}

/** The published versions of functions in D1 (see the file's header). */
export class FunctionVersions {
  constructor(private readonly env: Env) {}

  /**
   * Freezes `$LATEST` as the next version. FUNCTION_NOT_FOUND, or VERSION_LIMIT_EXCEEDED past
   * MAX_VERSIONS_PER_FUNCTION.
   */
  async publish(namespace: string, name: string, input: PublishVersionInput): Promise<FunctionVersion> {
    const record = await this.env.DB.prepare(PUBLISH_SQL)
      .bind(namespace, name, input.description, Date.now(), MAX_VERSIONS_PER_FUNCTION)
      .first<VersionRecord>();
    forgetQualifiers(namespace, name);
    if (record) return versionOf(record);
    if (!(await functionRow(this.env.DB, namespace, name))) throw functionNotFound(namespace, name);
    throw new PlatformError(
      "VERSION_LIMIT_EXCEEDED",
      `function ${name} already has ${MAX_VERSIONS_PER_FUNCTION} published versions; delete one first`,
    );
  }

  /**
   * One page of the function's versions, `$LATEST` included: DESC (default) lists `$LATEST`, then
   * the newest version first; ASC the oldest version first and `$LATEST` last. `total` counts
   * `$LATEST` too.
   */
  async list(
    namespace: string,
    name: string,
    query: { order: "ASC" | "DESC"; offset: number; limit: number },
  ): Promise<{ total: number; versions: FunctionVersion[] }> {
    const row = await functionRow(this.env.DB, namespace, name);
    if (!row) throw functionNotFound(namespace, name);
    const counted = await this.env.DB.prepare(
      `SELECT count(*) AS total FROM function_versions WHERE namespace = ?1 AND function_name = ?2 AND config <> ''`,
    )
      .bind(namespace, name)
      .first<{ total: number }>();
    const published = counted?.total ?? 0;
    const total = published + 1;
    // Positions in the whole list: DESC has $LATEST at 0, ASC at `published`.
    const latestAt = query.order === "DESC" ? 0 : published;
    const end = Math.min(query.offset + query.limit, total);
    const includesLatest = query.offset <= latestAt && latestAt < end;
    const publishedOffset = query.order === "DESC" ? Math.max(query.offset - 1, 0) : query.offset;
    const publishedLimit = Math.max(end - query.offset - (includesLatest ? 1 : 0), 0);
    const records =
      publishedLimit > 0 && publishedOffset < published
        ? (
            await this.env.DB.prepare(
              `SELECT version, config, description, created_at FROM function_versions
               WHERE namespace = ?1 AND function_name = ?2 AND config <> ''
               ORDER BY version ${query.order === "DESC" ? "DESC" : "ASC"} LIMIT ?3 OFFSET ?4`,
            )
              .bind(namespace, name, publishedLimit, publishedOffset)
              .all<VersionRecord>()
          ).results
        : [];
    const versions = records.map(versionOf);
    if (includesLatest) {
      if (query.order === "DESC") versions.unshift(latestVersionOf(row));
      else versions.push(latestVersionOf(row));
    }
    return { total, versions };
  }

  /** One version (`$LATEST` or a number): FUNCTION_NOT_FOUND, QUALIFIER_NOT_FOUND. */
  async get(namespace: string, name: string, version: string): Promise<FunctionVersion> {
    const row = await functionRow(this.env.DB, namespace, name);
    if (!row) throw functionNotFound(namespace, name);
    if (version === LATEST) return latestVersionOf(row);
    if (!isVersionNumber(version)) throw versionNotFound(name, version);
    const record = await publishedRecord(this.env.DB, namespace, name, Number(version));
    if (!record) throw versionNotFound(name, version);
    return versionOf(record);
  }

  /**
   * Deletes a published version. Refused (VERSION_IN_USE, naming why) while an alias routes to it,
   * a trigger targets it or, unless `force`, the event index shows RUNNING events of it (those
   * events run to their end either way: each carries its own snapshot). `$LATEST` cannot be
   * deleted (INVALID_PARAMETER).
   */
  async delete(namespace: string, name: string, version: string, force = false): Promise<void> {
    if (version === LATEST) {
      throw new PlatformError("INVALID_PARAMETER", `${LATEST} cannot be deleted; delete the function instead`);
    }
    if (!(await functionRow(this.env.DB, namespace, name))) throw functionNotFound(namespace, name);
    if (!isVersionNumber(version)) throw versionNotFound(name, version);
    // A namespace whose index is in another database (INDEX_DATABASES): its RUNNING events are
    // counted there, and DELETE_SQL's own check (which reads DB's index) is skipped: DB may still
    // hold stale RUNNING rows from before the namespace moved. The count and the write are then two
    // steps; an event invoked between them runs its own snapshot to its end all the same.
    const indexedElsewhere = indexBindingOf(this.env, namespace) !== "DB";
    if (!force && indexedElsewhere && (await this.runningOf(namespace, name, version)) > 0) {
      if (!(await publishedRecord(this.env.DB, namespace, name, Number(version)))) throw versionNotFound(name, version);
      throw new PlatformError("VERSION_IN_USE", await this.inUseReason(namespace, name, version));
    }
    const [deleted] = await this.env.DB.batch<{ version: number }>([
      this.env.DB.prepare(DELETE_SQL).bind(
        namespace,
        name,
        Number(version),
        version,
        force || indexedElsewhere ? 1 : 0,
      ),
      this.env.DB.prepare(PRUNE_SQL).bind(namespace, name),
    ]);
    forgetQualifiers(namespace, name);
    if ((deleted?.results.length ?? 0) > 0) return;
    if (!(await publishedRecord(this.env.DB, namespace, name, Number(version)))) throw versionNotFound(name, version);
    throw new PlatformError("VERSION_IN_USE", await this.inUseReason(namespace, name, version));
  }

  /** RUNNING events of the version, counted in its namespace's index database. */
  private async runningOf(namespace: string, name: string, version: string): Promise<number> {
    const row = await indexDatabaseOf(this.env, namespace)
      .prepare(
        `SELECT count(*) AS n FROM events WHERE namespace = ?1 AND function_name = ?2
         AND status = 'RUNNING' AND qualifier = ?3`,
      )
      .bind(namespace, name, version)
      .first<{ n: number }>();
    return row?.n ?? 0;
  }

  /** Why a version cannot be deleted, for the error message. */
  private async inUseReason(namespace: string, name: string, version: string): Promise<string> {
    const [aliases, triggers] = await this.env.DB.batch<{ label: string }>([
      this.env.DB.prepare(
        `SELECT name AS label FROM function_aliases WHERE namespace = ?1 AND function_name = ?2
         AND (function_version = ?3 OR additional_version = ?3) ORDER BY name LIMIT 5`,
      ).bind(namespace, name, version),
      this.env.DB.prepare(
        `SELECT type || ' ' || name AS label FROM triggers WHERE namespace = ?1 AND function_name = ?2 AND qualifier = ?3
         ORDER BY type, name LIMIT 5`,
      ).bind(namespace, name, version),
    ]);
    const labels = (result: D1Result<{ label: string }> | undefined) => (result?.results ?? []).map((r) => r.label);
    const reasons: string[] = [];
    if (labels(aliases).length > 0) reasons.push(`alias(es) ${labels(aliases).join(", ")} route to it`);
    if (labels(triggers).length > 0) reasons.push(`trigger(s) ${labels(triggers).join(", ")} target it`);
    const runningCount = await this.runningOf(namespace, name, version);
    if (runningCount > 0) reasons.push(`${runningCount} RUNNING event(s) of it (wait, or delete with force)`);
    return `version ${version} of function ${name} is in use: ${reasons.join("; ") || "it changed meanwhile; retry"}`;
  }
}

/**
 * A published version's record for the invoke path, cached (qualifier-cache.ts); undefined when
 * the function has no such version.
 */
export function cachedPublishedVersion(
  env: Env,
  namespace: string,
  name: string,
  version: string,
): Promise<FunctionVersion | undefined> {
  return cachedQualifierLookup(namespace, name, `v/${version}`, async () => {
    const record = await publishedRecord(env.DB, namespace, name, Number(version));
    return record ? versionOf(record) : undefined;
  });
}
