import { sql } from "drizzle-orm";
import { index, integer, primaryKey, real, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/** The function registry: one row per function in a namespace. */
export const functions = sqliteTable(
  "functions",
  {
    namespace: text("namespace").notNull(),
    name: text("name").notNull(),
    runtime: text("runtime").notNull(),
    handler: text("handler").notNull(),
    codeSha256: text("code_sha256").notNull(),
    codeSize: integer("code_size").notNull(),
    codeKey: text("code_key").notNull(),
    timeoutSeconds: integer("timeout_seconds").notNull(),
    memoryMb: integer("memory_mb").notNull(),
    /** JSON object of environment variables. */
    environment: text("environment").notNull().default("{}"),
    description: text("description").notNull().default(""),
    asyncRunEnable: integer("async_run_enable", { mode: "boolean" }).notNull(),
    maxConcurrency: integer("max_concurrency").notNull(),
    qpsLimit: integer("qps_limit").notNull(),
    /** How long an invocation's idempotency key holds, in seconds (functions/model.ts bounds). */
    idempotencyWindowSeconds: integer("idempotency_window_seconds").notNull().default(86400),
    /** JSON of the result destinations (functions/model.ts StoredDestinations, secrets encrypted), or null. */
    destinations: text("destinations"),
    /** Log output one execution keeps, in MiB (functions/model.ts bounds; 1 GiB by default). */
    logLimitMb: integer("log_limit_mb").notNull().default(1024),
    /**
     * Seconds before the timeout at which the handler gets SIGTERM (the deadline warning); 0 is off
     * (functions/model.ts bounds: less than the timeout).
     */
    deadlineWarningSeconds: integer("deadline_warning_seconds").notNull().default(0),
    /**
     * An image function's image (functions/images.ts StoredImage, canonical JSON; runtime
     * CustomImage, no code package: code_sha256 is the SHA-256 of this text), or null for code.
     */
    imageConfig: text("image_config"),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (table) => [primaryKey({ columns: [table.namespace, table.name] })],
);

/**
 * The 3-day event index, following each event's Durable Object (the source of truth).
 * `version` grows with every transition so that late or repeated writes never go backwards.
 */
export const events = sqliteTable(
  "events",
  {
    requestId: text("request_id").primaryKey(),
    namespace: text("namespace").notNull(),
    functionName: text("function_name").notNull(),
    /** The version that ran: "$LATEST" or a published version number ("1", "2", ...). */
    qualifier: text("qualifier").notNull(),
    /** The alias the invocation named ("$DEFAULT", ...), or null when it named a version. */
    alias: text("alias"),
    invokeType: text("invoke_type").notNull(),
    status: text("status").notNull(),
    statusCode: integer("status_code"),
    phase: text("phase").notNull(),
    startTime: integer("start_time").notNull(),
    endTime: integer("end_time"),
    durationMs: integer("duration_ms"),
    version: integer("version").notNull(),
    updatedAt: integer("updated_at").notNull().default(sql`(unixepoch() * 1000)`),
    /** The invocation's tags as a JSON object of strings (null: none); filtered through `event_tags`. */
    tags: text("tags"),
    /** The handler's last reported progress (0 to 100), its message and when (epoch ms); null: none. */
    progressPercent: real("progress_percent"),
    progressMessage: text("progress_message"),
    progressAt: integer("progress_at"),
  },
  // Each list orders by a time and then the RequestId, so the indexes end with both (no sort step);
  // the status index also carries the other filter columns, so counting a filtered list reads the
  // index alone.
  (table) => [
    index("events_by_function_start_id").on(table.namespace, table.functionName, table.startTime, table.requestId),
    index("events_by_function_end_id").on(table.namespace, table.functionName, table.endTime, table.requestId),
    index("events_by_function_status_covering").on(
      table.namespace,
      table.functionName,
      table.status,
      table.startTime,
      table.requestId,
      table.invokeType,
      table.qualifier,
      table.endTime,
    ),
    index("events_by_start").on(table.startTime),
    // The retention purge: ended rows by end time, across namespaces (the default retention) and
    // within one namespace (its own retention).
    index("events_by_end").on(table.endTime),
    index("events_by_namespace_end").on(table.namespace, table.endTime),
    // Namespace-wide walks (bulk terminate without a function): by status, in start-time order.
    index("events_by_namespace_status_start").on(table.namespace, table.status, table.startTime, table.requestId),
    // The StatusCode and duration filters: their counts read these indexes alone, and a page of a
    // rare StatusCode walks only its rows (in start-time order).
    index("events_by_function_status_code").on(
      table.namespace,
      table.functionName,
      table.statusCode,
      table.startTime,
      table.requestId,
    ),
    index("events_by_function_duration").on(table.namespace, table.functionName, table.durationMs),
  ],
);

/** A function row. */
export type FunctionRow = typeof functions.$inferSelect;
/** An event index row. */
export type EventIndexRow = typeof events.$inferSelect;

/**
 * API credentials (SecretId/SecretKey pairs). The SecretKey is kept encrypted with the MASTER_KEY
 * Worker secret (AES-GCM): TC3 signatures need the key itself, so it cannot be a one-way hash.
 */
export const credentials = sqliteTable("credentials", {
  secretId: text("secret_id").primaryKey(),
  /** base64 of IV (12 bytes) followed by the AES-GCM ciphertext of the SecretKey. */
  secretKeyEncrypted: text("secret_key_encrypted").notNull(),
  /** JSON array of namespaces, or ["*"] for all. */
  namespaces: text("namespaces").notNull(),
  description: text("description").notNull().default(""),
  createdAt: integer("created_at").notNull(),
  revokedAt: integer("revoked_at"),
});

/** A credentials row. */
export type CredentialRow = typeof credentials.$inferSelect;

/**
 * Bytes of log segments each namespace holds in R2 (events/event-log-usage.ts): added as an
 * event rolls a segment, taken back when the event is deleted, bounded by NAMESPACE_LOG_LIMIT_BYTES.
 */
export const namespaceLogUsage = sqliteTable("namespace_log_usage", {
  namespace: text("namespace").primaryKey(),
  bytes: integer("bytes").notNull().default(0),
});

/**
 * Published versions (functions/versions.ts): `$LATEST`'s code and configuration frozen as 1, 2, ...
 * per function. Immutable once written; deleted with the function or by DeleteFunctionVersion.
 */
export const functionVersions = sqliteTable(
  "function_versions",
  {
    namespace: text("namespace").notNull(),
    functionName: text("function_name").notNull(),
    version: integer("version").notNull(),
    /** JSON of the function row as it was published (a FunctionRow without its timestamps). */
    config: text("config").notNull(),
    description: text("description").notNull().default(""),
    createdAt: integer("created_at").notNull(),
  },
  (table) => [primaryKey({ columns: [table.namespace, table.functionName, table.version] })],
);

/** A published version row. */
export type FunctionVersionRow = typeof functionVersions.$inferSelect;

/**
 * Aliases (functions/aliases.ts): a name routing to a main version and, optionally, a weighted
 * additional version. `$DEFAULT` exists for every function without a row (pointing at `$LATEST`)
 * until it is updated.
 */
export const functionAliases = sqliteTable(
  "function_aliases",
  {
    namespace: text("namespace").notNull(),
    functionName: text("function_name").notNull(),
    name: text("name").notNull(),
    /** The main version: "$LATEST" or a published version number. */
    functionVersion: text("function_version").notNull(),
    /** The additional version taking `additionalWeight` of the traffic, or null. */
    additionalVersion: text("additional_version"),
    /** Fraction (0 < w < 1) of invocations routed to `additionalVersion`, or null. */
    additionalWeight: real("additional_weight"),
    description: text("description").notNull().default(""),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (table) => [primaryKey({ columns: [table.namespace, table.functionName, table.name] })],
);

/** An alias row. */
export type FunctionAliasRow = typeof functionAliases.$inferSelect;

/**
 * Triggers (worker/triggers/): one row per trigger of a function. `id` is fresh for every created
 * trigger, so a deleted and recreated trigger of the same name is a different trigger (a timer's
 * Durable Object and a message's deduplication key are keyed by it).
 */
export const triggers = sqliteTable(
  "triggers",
  {
    id: text("id").primaryKey(),
    namespace: text("namespace").notNull(),
    functionName: text("function_name").notNull(),
    name: text("name").notNull(),
    /** "timer" | "http" | "ckafka" (a Cloudflare Queue) | "cos" (R2 event notifications). */
    type: text("type").notNull(),
    /** Version or alias invoked ("$DEFAULT" by default). */
    qualifier: text("qualifier").notNull(),
    /** SCF's TriggerDesc as given (timer: the cron; others: JSON text), normalised by the trigger type. */
    triggerDesc: text("trigger_desc").notNull(),
    enabled: integer("enabled", { mode: "boolean" }).notNull(),
    customArgument: text("custom_argument").notNull().default(""),
    description: text("description").notNull().default(""),
    /**
     * What delivers to the trigger, looked up on each delivery: the queue name (ckafka), the bucket
     * name (cos), the URL id (http); null for timers.
     */
    source: text("source"),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (table) => [
    uniqueIndex("triggers_by_function_type_name").on(table.namespace, table.functionName, table.type, table.name),
    index("triggers_by_source").on(table.type, table.source),
  ],
);

/** A trigger row. */
export type TriggerRow = typeof triggers.$inferSelect;

/**
 * One row per tag of an event (its key and value), written with the event's first index row: the
 * list and the bulk operations filter by tag through it. Deleted with the event's index row.
 */
export const eventTags = sqliteTable(
  "event_tags",
  {
    requestId: text("request_id").notNull(),
    namespace: text("namespace").notNull(),
    functionName: text("function_name").notNull(),
    key: text("key").notNull(),
    value: text("value").notNull(),
    startTime: integer("start_time").notNull(),
  },
  (table) => [
    primaryKey({ columns: [table.requestId, table.key] }),
    index("event_tags_by_function_tag").on(
      table.namespace,
      table.functionName,
      table.key,
      table.value,
      table.startTime,
      table.requestId,
    ),
    index("event_tags_by_namespace_tag").on(table.namespace, table.key, table.value, table.startTime),
    index("event_tags_by_start").on(table.startTime),
  ],
);

/** An event tag row. */
export type EventTagRow = typeof eventTags.$inferSelect;

/**
 * Per-namespace settings (a row only where a namespace changed a default): how long its ended events
 * are kept, and whether they are archived to R2 before deletion.
 */
export const namespaceSettings = sqliteTable("namespace_settings", {
  namespace: text("namespace").primaryKey(),
  /** Hours an ended event stays readable and listed (72 by default, SCF's). */
  retentionHours: integer("retention_hours").notNull().default(72),
  /** Whether an event is archived (status, timeline, logs) to R2 before it is deleted. */
  archiveEnabled: integer("archive_enabled", { mode: "boolean" }).notNull().default(false),
  updatedAt: integer("updated_at").notNull(),
});

/** A namespace settings row. */
export type NamespaceSettingsRow = typeof namespaceSettings.$inferSelect;
