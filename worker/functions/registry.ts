import { and, asc, count, eq, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { indexDatabaseOf } from "../db/index-databases";
import { events, type FunctionRow, functionAliases, functions, functionVersions, triggers } from "../db/schema";
import { fromBase64, sha256Hex } from "../shared/encoding";
import { PlatformError } from "../shared/errors";
import { allSchedulerShardNames, schedulerStub, timerTriggerStub } from "../shared/objects";
import {
  type CodeBucketAccess,
  checkObjectPackage,
  copyObjectPackage,
  UNPACK_LIMIT_METADATA,
} from "./code-from-object";
import { destinationsColumn, nextDestinations } from "./destinations";
import {
  containerImages,
  IMAGE_RUNTIME,
  type ImageInput,
  imageColumn,
  resolveImageName,
  storedImageOf,
} from "./images";
import {
  containerSizes,
  defaultLogLimitMb,
  defaultMaxConcurrency,
  logLimitProblem,
  maxConcurrencyProblem,
} from "./instance-types";
import {
  type CodeInput,
  type CodeUpdateInput,
  type CreateFunctionInput,
  codeKeyOf,
  deadlineWarningProblem,
  type FunctionSnapshot,
  IMAGE_RUNTIME_MESSAGE,
  MAX_CODE_PACKAGE_BYTES,
  snapshotOf,
  storedDestinationsOf,
  type UpdateConfigurationInput,
} from "./model";
import { forgetQualifiers } from "./qualifier-cache";
import { inspectZipDirectory, MAX_ZIP_UNCOMPRESSED_BYTES } from "./zip-directory";

/** Longest time an isolate serves a cached function lookup on the invoke path. */
export const FUNCTION_CACHE_TTL_MS = 2_000;
/**
 * A stored code package younger than this is never swept as superseded (15 min): it may be the
 * package of a code update that stored it and has not yet written the row (see sweepCode).
 */
export const CODE_SWEEP_GRACE_MS = 15 * 60_000;
/** Largest timeout of a function that is not async (SCF's synchronous limit). */
const MAX_SYNC_TIMEOUT_SECONDS = 900;

const cache = new Map<string, { snapshot: FunctionSnapshot | undefined; expiresAt: number }>();

function cacheKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function byName(namespace: string, name: string) {
  return and(eq(functions.namespace, namespace), eq(functions.name, name));
}

/** The error for a function that is not in the namespace. */
export function functionNotFound(namespace: string, name: string): PlatformError {
  return new PlatformError("FUNCTION_NOT_FOUND", `function ${name} not found in namespace ${namespace}`);
}

/**
 * Decodes and checks a base64 zip package: its size, and its central directory (see
 * inspectZipDirectory). Throws PAYLOAD_TOO_LARGE or INVALID_PARAMETER; nothing is stored.
 */
export async function decodeCodePackage(zipBase64: string): Promise<{ bytes: Uint8Array; sha256: string }> {
  const bytes = fromBase64(zipBase64);
  if (bytes.byteLength > MAX_CODE_PACKAGE_BYTES) {
    throw new PlatformError("PAYLOAD_TOO_LARGE", `code package over ${MAX_CODE_PACKAGE_BYTES} bytes`);
  }
  // Local file header (PK\x03\x04) or an empty archive's end record (PK\x05\x06).
  const isZip = bytes[0] === 0x50 && bytes[1] === 0x4b && (bytes[2] === 3 || bytes[2] === 5);
  if (!isZip) throw new PlatformError("INVALID_PARAMETER", "code.zipFile is not a zip archive");
  // Zip bombs and entries that would escape the code folder are refused before anything is stored.
  inspectZipDirectory(bytes);
  return { bytes, sha256: await sha256Hex(bytes) };
}

function functionExists(namespace: string, name: string): PlatformError {
  return new PlatformError("FUNCTION_EXISTS", `function ${name} already exists in namespace ${namespace}`);
}

/** A checked code package, ready to store under its key. */
interface PreparedCode {
  sha256: string;
  size: number;
  store(codeKey: string): Promise<void>;
  /** An image function's image column (no package: store does nothing, the code key is ""). */
  imageConfig?: string;
}

/** The function registry in D1, with code packages in R2. */
export class FunctionRegistry {
  private readonly db;

  /**
   * codeBuckets: the buckets a namespace may read code packages from (code.bucket and code.key);
   * without it, code from an R2 object is refused.
   */
  constructor(
    private readonly env: Env,
    private readonly codeBuckets?: CodeBucketAccess,
  ) {
    this.db = drizzle(env.DB);
  }

  /**
   * Checks a package, inline (decodeCodePackage) or from an R2 object of a bucket the namespace
   * owns (code-from-object.ts: read streaming, never whole in memory); stores nothing.
   */
  private async prepareCode(namespace: string, code: CodeInput | string): Promise<PreparedCode> {
    const input = typeof code === "string" ? { zipFile: code } : code;
    if (input.zipFile !== undefined) {
      const decoded = await decodeCodePackage(input.zipFile);
      return {
        sha256: decoded.sha256,
        size: decoded.bytes.byteLength,
        store: async (codeKey) => {
          await this.env.CODE_BUCKET.put(codeKey, decoded.bytes, {
            sha256: decoded.sha256,
            customMetadata: { [UNPACK_LIMIT_METADATA]: String(MAX_ZIP_UNCOMPRESSED_BYTES) },
          });
        },
      };
    }
    if (input.bucket === undefined || input.key === undefined || !this.codeBuckets) {
      throw new PlatformError(
        "INVALID_PARAMETER",
        "code: give zipFile (a base64 zip) or bucket and key (an R2 object)",
      );
    }
    const source = {
      bucket: this.codeBuckets.bucketFor(namespace, input.bucket, input.key),
      bucketName: input.bucket,
      key: input.key,
    };
    const checked = await checkObjectPackage(source);
    return {
      sha256: checked.sha256,
      size: checked.size,
      store: (codeKey) => copyObjectPackage(source, checked, this.env.CODE_BUCKET, codeKey),
    };
  }

  /**
   * Checks an image (functions/images.ts): its ImageUri must name an image of CONTAINER_IMAGES open
   * to the namespace (another namespace's reads exactly like an unknown one); stores nothing.
   */
  private async prepareImage(namespace: string, image: ImageInput): Promise<PreparedCode> {
    const resolved = resolveImageName(containerImages(this.env), namespace, image.uri);
    if ("problem" in resolved) throw new PlatformError("INVALID_PARAMETER", resolved.problem);
    const stored = storedImageOf(resolved.name, image);
    // Its "code hash": the SHA-256 of the canonical image JSON (versions and dedupe compare it).
    const column = imageColumn(stored);
    return { sha256: await sha256Hex(column), size: 0, store: async () => {}, imageConfig: column };
  }

  async get(namespace: string, name: string): Promise<FunctionRow> {
    const row = await this.find(namespace, name);
    if (!row) throw functionNotFound(namespace, name);
    return row;
  }

  /** Cached lookup for the invoke path (see FUNCTION_CACHE_TTL_MS); undefined when absent. */
  async snapshot(namespace: string, name: string): Promise<FunctionSnapshot | undefined> {
    const key = cacheKey(namespace, name);
    const hit = cache.get(key);
    if (hit && hit.expiresAt > Date.now()) return hit.snapshot;
    const row = await this.find(namespace, name);
    const snapshot = row ? snapshotOf(row) : undefined;
    cache.set(key, { snapshot, expiresAt: Date.now() + FUNCTION_CACHE_TTL_MS });
    return snapshot;
  }

  private find(namespace: string, name: string): Promise<FunctionRow | undefined> {
    return this.db.select().from(functions).where(byName(namespace, name)).get();
  }

  /** One page of a namespace's functions by name; `search` keeps the names containing it (any case). */
  async list(
    namespace: string,
    offset: number,
    limit: number,
    search?: string,
  ): Promise<{ total: number; functions: FunctionRow[] }> {
    const where =
      search === undefined
        ? eq(functions.namespace, namespace)
        : and(eq(functions.namespace, namespace), sql`instr(lower(${functions.name}), ${search.toLowerCase()}) > 0`);
    const [rows, totals] = await Promise.all([
      this.db.select().from(functions).where(where).orderBy(asc(functions.name)).limit(limit).offset(offset),
      this.db.select({ total: count() }).from(functions).where(where),
    ]);
    return { total: totals[0]?.total ?? 0, functions: rows };
  }

  async create(namespace: string, input: CreateFunctionInput): Promise<FunctionRow> {
    if (!input.asyncRunEnable && input.timeout > MAX_SYNC_TIMEOUT_SECONDS) {
      throw new PlatformError(
        "INVALID_PARAMETER",
        `timeout: at most ${MAX_SYNC_TIMEOUT_SECONDS} s unless asyncRunEnable is true`,
      );
    }
    const warningProblem = deadlineWarningProblem(input.deadlineWarningSeconds, input.timeout);
    if (warningProblem) throw new PlatformError("INVALID_PARAMETER", warningProblem);
    const maxConcurrency = input.maxConcurrency ?? defaultMaxConcurrency(this.env);
    const logLimitMb = input.logLimitMb ?? defaultLogLimitMb(input.memorySize, containerSizes(this.env));
    this.checkCapacity(maxConcurrency, input.memorySize, logLimitMb);
    // A taken name is refused before the package is read (an object's may be 500 MiB).
    if (await this.find(namespace, input.name)) throw functionExists(namespace, input.name);
    const code = input.image
      ? await this.prepareImage(namespace, input.image)
      : await this.prepareCode(namespace, input.code ?? {});
    const codeKey = code.imageConfig ? "" : codeKeyOf(namespace, input.name, code.sha256);
    const destinations = await nextDestinations(this.env, namespace, input.name, input.destinations ?? null, {});
    const now = Date.now();
    const row: FunctionRow = {
      namespace,
      name: input.name,
      runtime: code.imageConfig ? IMAGE_RUNTIME : (input.runtime ?? IMAGE_RUNTIME),
      handler: input.handler,
      codeSha256: code.sha256,
      codeSize: code.size,
      codeKey,
      timeoutSeconds: input.timeout,
      memoryMb: input.memorySize,
      environment: JSON.stringify(input.environment),
      description: input.description,
      asyncRunEnable: input.asyncRunEnable,
      maxConcurrency,
      qpsLimit: input.qpsLimit,
      idempotencyWindowSeconds: input.idempotencyWindowSeconds,
      logLimitMb,
      deadlineWarningSeconds: input.deadlineWarningSeconds,
      destinations: destinationsColumn(destinations),
      imageConfig: code.imageConfig ?? null,
      createdAt: now,
      updatedAt: now,
    };
    // Stored before the row exists, so no function ever points at a package that is missing (a
    // failed copy leaves no row: the create can be retried). The key is content-addressed: a create
    // that then loses the name to another only rewrote identical bytes, or left its own package,
    // removed here unless the winner has the same code.
    await code.store(codeKey);
    const inserted = await this.db.insert(functions).values(row).onConflictDoNothing().returning();
    if (inserted.length === 0) {
      const winner = await this.find(namespace, input.name);
      if (codeKey !== "" && winner?.codeKey !== codeKey) {
        await this.env.CODE_BUCKET.delete(codeKey).catch((error: unknown) => {
          console.warn("removing the package of a refused create failed", codeKey, String(error));
        });
      }
      throw functionExists(namespace, input.name);
    }
    // A new function starts unpaused: a pause its name's scheduler kept (one that raced a delete of
    // an earlier function of that name) is cleared, only once the row is ours.
    // Every scheduler shard the function may have (shared/objects.ts MAX_SCHEDULER_SHARDS).
    await Promise.all(
      allSchedulerShardNames(namespace, input.name).map((name) => schedulerStub(this.env, name).resumeDispatch()),
    );
    cache.delete(cacheKey(namespace, input.name));
    forgetQualifiers(namespace, input.name);
    return row;
  }

  async updateConfiguration(namespace: string, name: string, input: UpdateConfigurationInput): Promise<FunctionRow> {
    const current = await this.get(namespace, name);
    if (input.asyncRunEnable !== undefined && input.asyncRunEnable !== current.asyncRunEnable) {
      throw new PlatformError(
        "IMMUTABLE_PARAMETER",
        "asyncRunEnable is chosen when the function is created and cannot be changed",
      );
    }
    if (input.runtime !== undefined && (input.runtime === IMAGE_RUNTIME) !== Boolean(current.imageConfig)) {
      throw new PlatformError(
        "INVALID_PARAMETER",
        current.imageConfig
          ? `runtime: an image function's runtime is ${IMAGE_RUNTIME}; replace its image by code (with a runtime) to change it`
          : IMAGE_RUNTIME_MESSAGE,
      );
    }
    const timeout = input.timeout ?? current.timeoutSeconds;
    if (!current.asyncRunEnable && timeout > MAX_SYNC_TIMEOUT_SECONDS) {
      throw new PlatformError(
        "INVALID_PARAMETER",
        `timeout: at most ${MAX_SYNC_TIMEOUT_SECONDS} s unless asyncRunEnable is true`,
      );
    }
    // Checked against the timeout it will run with: a shorter timeout may leave a warning too late.
    const warningProblem = deadlineWarningProblem(
      input.deadlineWarningSeconds ?? current.deadlineWarningSeconds ?? 0,
      timeout,
    );
    if (warningProblem) throw new PlatformError("INVALID_PARAMETER", warningProblem);
    // A bound lowered since does not refuse an update that leaves maxConcurrency as it is.
    this.checkCapacity(
      input.maxConcurrency,
      input.memorySize ?? current.memoryMb,
      input.logLimitMb ?? current.logLimitMb,
      input.memorySize !== undefined || input.logLimitMb !== undefined,
    );
    const destinations =
      input.destinations !== undefined
        ? destinationsColumn(
            await nextDestinations(this.env, namespace, name, input.destinations, storedDestinationsOf(current)),
          )
        : undefined;
    const changes: Partial<FunctionRow> = {
      ...(input.handler !== undefined ? { handler: input.handler } : {}),
      ...(input.runtime !== undefined ? { runtime: input.runtime } : {}),
      ...(input.timeout !== undefined ? { timeoutSeconds: input.timeout } : {}),
      ...(input.memorySize !== undefined ? { memoryMb: input.memorySize } : {}),
      ...(input.environment !== undefined ? { environment: JSON.stringify(input.environment) } : {}),
      ...(input.description !== undefined ? { description: input.description } : {}),
      ...(input.maxConcurrency !== undefined ? { maxConcurrency: input.maxConcurrency } : {}),
      ...(input.qpsLimit !== undefined ? { qpsLimit: input.qpsLimit } : {}),
      ...(input.idempotencyWindowSeconds !== undefined
        ? { idempotencyWindowSeconds: input.idempotencyWindowSeconds }
        : {}),
      ...(input.logLimitMb !== undefined ? { logLimitMb: input.logLimitMb } : {}),
      ...(input.deadlineWarningSeconds !== undefined ? { deadlineWarningSeconds: input.deadlineWarningSeconds } : {}),
      ...(destinations !== undefined ? { destinations } : {}),
      updatedAt: Date.now(),
    };
    const [updated] = await this.db.update(functions).set(changes).where(byName(namespace, name)).returning();
    cache.delete(cacheKey(namespace, name));
    if (!updated) throw functionNotFound(namespace, name);
    return updated;
  }

  /**
   * The platform's capacity bounds (functions/instance-types.ts): maxConcurrency (when given) at most
   * FUNCTION_MAX_CONCURRENCY, and, when sizing changes, a log limit the disk of the memorySize's
   * compute size holds.
   */
  private checkCapacity(
    maxConcurrency: number | undefined,
    memoryMb: number,
    logLimitMb: number,
    sizingChanged = true,
  ): void {
    const concurrencyProblem =
      maxConcurrency === undefined ? undefined : maxConcurrencyProblem(maxConcurrency, this.env);
    if (concurrencyProblem) throw new PlatformError("INVALID_PARAMETER", concurrencyProblem);
    const logProblem = sizingChanged ? logLimitProblem(logLimitMb, memoryMb, containerSizes(this.env)) : undefined;
    if (logProblem) throw new PlatformError("INVALID_PARAMETER", logProblem);
  }

  /**
   * Replaces a function's code: a base64 zip, a CodeInput (inline, or an R2 object), or a
   * CodeUpdateInput (either of those, or `image`: the function becomes an image function). An image
   * function given a code package needs its new runtime.
   */
  async updateCode(namespace: string, name: string, code: CodeInput | CodeUpdateInput | string): Promise<FunctionRow> {
    const current = await this.get(namespace, name);
    const update: CodeUpdateInput = typeof code === "string" ? { zipFile: code } : code;
    const runtime = update.image ? IMAGE_RUNTIME : (update.runtime ?? current.runtime);
    if (!update.image && runtime === IMAGE_RUNTIME) {
      throw new PlatformError(
        "INVALID_PARAMETER",
        `runtime: an image function given a code package needs its code runtime (runtime, e.g. Nodejs22)`,
      );
    }
    const prepared = update.image
      ? await this.prepareImage(namespace, update.image)
      : await this.prepareCode(namespace, { zipFile: update.zipFile, bucket: update.bucket, key: update.key });
    const codeKey = prepared.imageConfig ? "" : codeKeyOf(namespace, name, prepared.sha256);
    await prepared.store(codeKey);
    const [updated] = await this.db
      .update(functions)
      .set({
        codeSha256: prepared.sha256,
        codeSize: prepared.size,
        codeKey,
        runtime,
        imageConfig: prepared.imageConfig ?? null,
        updatedAt: Date.now(),
      })
      .where(byName(namespace, name))
      .returning();
    cache.delete(cacheKey(namespace, name));
    if (!updated) throw functionNotFound(namespace, name);
    // Superseded packages go (best effort: the function's delete removes what is left).
    await this.sweepCode(namespace, name).catch((error: unknown) => {
      console.warn("sweeping superseded code packages failed", namespace, name, String(error));
    });
    return updated;
  }

  /** The function's events not ended, counted in its namespace's index database. */
  private runningEvents(namespace: string, name: string): Promise<{ total: number }[]> {
    return drizzle(indexDatabaseOf(this.env, namespace))
      .select({ total: count() })
      .from(events)
      .where(and(eq(events.namespace, namespace), eq(events.functionName, name), eq(events.status, "RUNNING")));
  }

  /**
   * Deletes the function's stored code packages that nothing uses: not $LATEST's, not a published
   * version's (versions freeze code by key), not stored within CODE_SWEEP_GRACE_MS (a concurrent
   * update's, whose row is not written yet). Skipped while the function has events that have not
   * ended (they carry the code key of when they were invoked). What remains is bounded: $LATEST,
   * at most MAX_VERSIONS_PER_FUNCTION published versions, and the packages of the last
   * CODE_SWEEP_GRACE_MS or of updates made while events ran (swept by the next update).
   */
  async sweepCode(namespace: string, name: string, graceMs = CODE_SWEEP_GRACE_MS): Promise<number> {
    const active = await this.runningEvents(namespace, name);
    if ((active[0]?.total ?? 0) > 0) return 0;
    const current = await this.find(namespace, name);
    if (!current) return 0;
    const versions = await this.db
      .select({ codeKey: sql<string | null>`json_extract(${functionVersions.config}, '$.codeKey')` })
      .from(functionVersions)
      .where(and(eq(functionVersions.namespace, namespace), eq(functionVersions.functionName, name)));
    const used = new Set([current.codeKey, ...versions.map((version) => version.codeKey)]);
    const settledBefore = Date.now() - graceMs;
    let removed = 0;
    let cursor: string | undefined;
    do {
      const listed = await this.env.CODE_BUCKET.list({
        prefix: `code/${namespace}/${name}/`,
        ...(cursor !== undefined ? { cursor } : {}),
      });
      const unused = listed.objects
        .filter((object) => !used.has(object.key) && object.uploaded.getTime() < settledBefore)
        .map((object) => object.key);
      if (unused.length > 0) await this.env.CODE_BUCKET.delete(unused);
      removed += unused.length;
      cursor = listed.truncated ? listed.cursor : undefined;
    } while (cursor !== undefined);
    return removed;
  }

  /**
   * Deletes a function, its published versions, its aliases and its code packages. Refused while
   * the event index shows events of it that have not ended: they would lose their code.
   */
  async delete(namespace: string, name: string): Promise<void> {
    await this.get(namespace, name);
    const active = await this.runningEvents(namespace, name);
    const running = active[0]?.total ?? 0;
    if (running > 0) {
      throw new PlatformError(
        "FUNCTION_IN_USE",
        `function ${name} has ${running} event(s) that have not ended; wait for them or terminate them first`,
      );
    }
    // Its timers are disarmed around the delete (before: none fires for the deleted function;
    // after: none armed meanwhile survives), so a function re-created under the same name never
    // meets an old timer. Other trigger types are looked up by row on each delivery.
    const timers = await this.db
      .select({ id: triggers.id })
      .from(triggers)
      .where(and(eq(triggers.namespace, namespace), eq(triggers.functionName, name), eq(triggers.type, "timer")));
    await Promise.all(timers.map((timer) => timerTriggerStub(this.env, timer.id).disarm()));
    // The function, its published versions, its aliases and its triggers go together.
    await this.db.batch([
      this.db.delete(functions).where(byName(namespace, name)),
      this.db
        .delete(functionVersions)
        .where(and(eq(functionVersions.namespace, namespace), eq(functionVersions.functionName, name))),
      this.db
        .delete(functionAliases)
        .where(and(eq(functionAliases.namespace, namespace), eq(functionAliases.functionName, name))),
      this.db.delete(triggers).where(and(eq(triggers.namespace, namespace), eq(triggers.functionName, name))),
    ]);
    cache.delete(cacheKey(namespace, name));
    forgetQualifiers(namespace, name);
    // A paused dispatch goes with the function, resumed after the row is gone: a pause that raced
    // the delete either came before this (and is undone here) or re-checks the row after pausing
    // and rolls itself back (dispatch-pause.ts). A failure is logged, not thrown (the row is gone
    // already): create resumes as well, before a function of this name can have events.
    await Promise.all(
      allSchedulerShardNames(namespace, name).map((shard) =>
        schedulerStub(this.env, shard)
          .resumeDispatch()
          .catch((error: unknown) =>
            console.warn("resuming a deleted function's dispatch failed", shard, String(error)),
          ),
      ),
    );
    await Promise.all(timers.map((timer) => timerTriggerStub(this.env, timer.id).disarm()));
    // Every code package of the function ($LATEST's and its versions'), page by page.
    let cursor: string | undefined;
    do {
      const listed = await this.env.CODE_BUCKET.list({
        prefix: `code/${namespace}/${name}/`,
        ...(cursor !== undefined ? { cursor } : {}),
      });
      if (listed.objects.length > 0) await this.env.CODE_BUCKET.delete(listed.objects.map((object) => object.key));
      cursor = listed.truncated ? listed.cursor : undefined;
    } while (cursor !== undefined);
  }
}
