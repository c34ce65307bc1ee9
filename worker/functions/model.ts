import { z } from "zod";
import {
  MAX_HANDLER_CHARS as CONTRACT_MAX_HANDLER_CHARS,
  DEFAULT_LOG_LIMIT_BYTES,
  HANDLER_PATTERN,
  handlerPathProblem,
  MAX_LOG_LIMIT_BYTES,
  MIN_LOG_LIMIT_BYTES,
  RUNTIME_NAMES,
} from "../contract/execution-spec";
import type { FunctionRow } from "../db/schema";
import { functionNameSchema } from "../shared/names";
import { IMAGE_RUNTIME, imageInputSchema, type StoredImage, storedImageFrom } from "./images";
import { webhookHostProblem } from "./webhook-host";

/**
 * Runtimes a function may use: the names of the container contract's runtime table (RUNTIME_TABLE,
 * SCF's names of the shipped languages among them, each run on its engine). A function keeps and
 * reports the name it was created with.
 */
export const RUNTIMES = RUNTIME_NAMES;
/** A supported runtime name. */
export type Runtime = (typeof RUNTIMES)[number];

/** Largest code package (zip, before base64). */
export const MAX_CODE_PACKAGE_BYTES = 20 * 1024 * 1024;
/** Longest execution an async function may be configured for (24 h). */
export const MAX_ASYNC_TIMEOUT_SECONDS = 86_400;
/** Default execution timeout. */
export const DEFAULT_TIMEOUT_SECONDS = 3;
/** Default and allowed memory sizes (MB). */
export const DEFAULT_MEMORY_MB = 128;
export const MIN_MEMORY_MB = 64;
export const MAX_MEMORY_MB = 3072;
/** Default per-function QPS limit. */
export const DEFAULT_QPS_LIMIT = 1_000;
/**
 * Per-function concurrency (containers running at once): the default when DEFAULT_MAX_CONCURRENCY
 * is not set, and the absolute bound; the platform's own bound is FUNCTION_MAX_CONCURRENCY (default
 * 50, checked by the registry: functions/instance-types.ts).
 */
export const DEFAULT_MAX_CONCURRENCY = 10;
export const MAX_CONCURRENCY_LIMIT = 1_000;
/**
 * How long an idempotency key of an invocation holds (from its first use), by default and at most
 * (seconds): 24 h by default; 72 h at most, as an event stays readable for 72 h after it ends.
 */
export const DEFAULT_IDEMPOTENCY_WINDOW_SECONDS = 86_400;
export const MIN_IDEMPOTENCY_WINDOW_SECONDS = 1;
export const MAX_IDEMPOTENCY_WINDOW_SECONDS = 259_200;
/**
 * Log output one execution of the function keeps, in MiB (UTF-8 bytes of its lines, each + 1):
 * 1 GiB by default, 1 MiB to 3 GiB (the container's disk holds the spool). Past it, lines are counted and dropped with a marker.
 */
const MIB = 1024 * 1024;
export const DEFAULT_LOG_LIMIT_MB = DEFAULT_LOG_LIMIT_BYTES / MIB;
export const MIN_LOG_LIMIT_MB = MIN_LOG_LIMIT_BYTES / MIB;
export const MAX_LOG_LIMIT_MB = MAX_LOG_LIMIT_BYTES / MIB;
/**
 * The deadline warning: the handler gets SIGTERM this many seconds before the function's timeout
 * (so that a long job can save a checkpoint), then runs on until it returns or the timeout ends it.
 * 0 (the default) is off; otherwise 1 to the timeout − 1 (checked against the timeout by the registry).
 */
export const DEFAULT_DEADLINE_WARNING_SECONDS = 0;
export const MAX_DEADLINE_WARNING_SECONDS = MAX_ASYNC_TIMEOUT_SECONDS - 1;
/** The default namespace. */
export const DEFAULT_NAMESPACE = "default";

/** Longest handler value, in characters (the container contract's bound). */
export const MAX_HANDLER_CHARS = CONTRACT_MAX_HANDLER_CHARS;
const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Most environment variables one function may have. */
export const MAX_ENV_VARIABLES = 100;
/** Longest environment variable name, in characters. */
export const MAX_ENV_NAME_CHARS = 128;
/** Largest environment variable value, in UTF-8 bytes (4 KiB). */
export const MAX_ENV_VALUE_BYTES = 4 * 1024;
/**
 * Largest total of all names and values, in UTF-8 bytes (32 KiB): the handler's spawn never fails
 * with E2BIG and the event's stored state stays small.
 */
export const MAX_ENV_TOTAL_BYTES = 32 * 1024;

const utf8 = new TextEncoder();

/** UTF-8 length of a text, in bytes. */
function utf8Bytes(text: string): number {
  return utf8.encode(text).byteLength;
}

/** Environment variables, checked against every bound above with a message naming the bound. */
const environmentSchema = z
  .record(
    // Names are checked below, where the message can say which bound a name breaks.
    z.string(),
    z
      .string()
      .refine(
        (value) => utf8Bytes(value) <= MAX_ENV_VALUE_BYTES,
        `environment variable values: at most ${MAX_ENV_VALUE_BYTES} bytes (UTF-8) each`,
      ),
  )
  .superRefine((variables, context) => {
    for (const name of Object.keys(variables)) {
      const problem =
        name.length > MAX_ENV_NAME_CHARS
          ? `environment variable names: at most ${MAX_ENV_NAME_CHARS} characters`
          : ENV_NAME_PATTERN.test(name)
            ? undefined
            : "environment variable names: letters, digits and _, not starting with a digit";
      if (problem) context.addIssue({ code: "custom", message: problem, path: [name.slice(0, 64)] });
    }
  })
  .refine(
    (variables) => Object.keys(variables).length <= MAX_ENV_VARIABLES,
    `at most ${MAX_ENV_VARIABLES} environment variables`,
  )
  .refine(
    (variables) => environmentBytes(variables) <= MAX_ENV_TOTAL_BYTES,
    `environment variables: names and values at most ${MAX_ENV_TOTAL_BYTES} bytes (UTF-8) in total`,
  );

/** Total UTF-8 size of every name and value of an environment. */
export function environmentBytes(variables: Record<string, string>): number {
  let total = 0;
  for (const [name, value] of Object.entries(variables)) total += utf8Bytes(name) + utf8Bytes(value);
  return total;
}

/**
 * A handler value, by the container contract's rule (so the agent never refuses a handler the API
 * accepted): `path/file.function`, the path relative to the code root (it starts with a letter,
 * digit or _) with no empty, `.` or `..` segment.
 */
const handlerSchema = z
  .string()
  .max(MAX_HANDLER_CHARS, `handler: at most ${MAX_HANDLER_CHARS} characters`)
  .regex(HANDLER_PATTERN, "handler: file.function, e.g. index.main_handler")
  .refine(
    (handler) => handlerPathProblem(handler) === undefined,
    "handler: no empty, '.' or '..' path segment (it must stay in the code)",
  );

const configurationFields = {
  handler: handlerSchema,
  timeout: z.number().int().min(1).max(MAX_ASYNC_TIMEOUT_SECONDS),
  memorySize: z.number().int().min(MIN_MEMORY_MB).max(MAX_MEMORY_MB),
  environment: environmentSchema,
  description: z.string().max(1000),
  maxConcurrency: z.number().int().min(1).max(MAX_CONCURRENCY_LIMIT),
  qpsLimit: z.number().int().min(1).max(100_000),
  idempotencyWindowSeconds: z
    .number()
    .int()
    .min(
      MIN_IDEMPOTENCY_WINDOW_SECONDS,
      `idempotencyWindowSeconds: ${MIN_IDEMPOTENCY_WINDOW_SECONDS}-${MAX_IDEMPOTENCY_WINDOW_SECONDS} (seconds)`,
    )
    .max(
      MAX_IDEMPOTENCY_WINDOW_SECONDS,
      `idempotencyWindowSeconds: ${MIN_IDEMPOTENCY_WINDOW_SECONDS}-${MAX_IDEMPOTENCY_WINDOW_SECONDS} (seconds)`,
    ),
  logLimitMb: z
    .number()
    .int(`logLimitMb: a whole number of MiB, ${MIN_LOG_LIMIT_MB}-${MAX_LOG_LIMIT_MB}`)
    .min(MIN_LOG_LIMIT_MB, `logLimitMb: ${MIN_LOG_LIMIT_MB}-${MAX_LOG_LIMIT_MB} (MiB)`)
    .max(MAX_LOG_LIMIT_MB, `logLimitMb: ${MIN_LOG_LIMIT_MB}-${MAX_LOG_LIMIT_MB} (MiB)`),
  deadlineWarningSeconds: z
    .number()
    .int("deadlineWarningSeconds: a whole number of seconds (0: off)")
    .min(0, "deadlineWarningSeconds: 0 (off) or a number of seconds less than the timeout")
    .max(MAX_DEADLINE_WARNING_SECONDS, "deadlineWarningSeconds: 0 (off) or a number of seconds less than the timeout"),
};

/** Why a deadline warning does not fit the timeout, or undefined: it must be 0 (off) or less than it. */
export function deadlineWarningProblem(deadlineWarningSeconds: number, timeoutSeconds: number): string | undefined {
  if (deadlineWarningSeconds === 0 || deadlineWarningSeconds < timeoutSeconds) return undefined;
  return `deadlineWarningSeconds: ${deadlineWarningSeconds} s is not less than the timeout (${timeoutSeconds} s); use 0 (off) or 1-${timeoutSeconds - 1}`;
}

/** Longest webhook URL of a result destination, in characters. */
export const MAX_WEBHOOK_URL_CHARS = 2048;
/** Shortest and longest webhook signing secret, in printable ASCII characters. */
export const MIN_WEBHOOK_SECRET_CHARS = 16;
export const MAX_WEBHOOK_SECRET_CHARS = 256;
/** Longest queue destination name N (the producer binding is `DESTINATION_QUEUE_<N>`). */
export const MAX_QUEUE_DESTINATION_CHARS = 64;
/** Prefix of the producer binding of a queue destination. */
export const DESTINATION_QUEUE_PREFIX = "DESTINATION_QUEUE_";
/** The kinds of result destination and the status each is for. */
export const DESTINATION_KINDS = ["onSuccess", "onFailure", "onTerminate"] as const;
/** A kind of result destination. */
export type DestinationKind = (typeof DESTINATION_KINDS)[number];
/** What the GET of a function shows in place of a webhook secret. */
export const SECRET_MASK = "***";

/** A webhook destination: an https URL (see webhookUrlProblem) and the secret its requests are signed with. */
const webhookSchema = z.strictObject({
  url: z.string().max(MAX_WEBHOOK_URL_CHARS, `webhook.url: at most ${MAX_WEBHOOK_URL_CHARS} characters`),
  secret: z
    .string()
    .min(MIN_WEBHOOK_SECRET_CHARS, `webhook.secret: ${MIN_WEBHOOK_SECRET_CHARS}-${MAX_WEBHOOK_SECRET_CHARS} characters`)
    .max(MAX_WEBHOOK_SECRET_CHARS, `webhook.secret: ${MIN_WEBHOOK_SECRET_CHARS}-${MAX_WEBHOOK_SECRET_CHARS} characters`)
    .regex(/^[\x20-\x7e]+$/, "webhook.secret: printable ASCII characters only"),
});

/** One kind's destinations: a webhook, a queue, or both (at least one). */
const destinationSchema = z
  .strictObject({
    webhook: webhookSchema.optional(),
    queue: z
      .string()
      .max(MAX_QUEUE_DESTINATION_CHARS, `queue: at most ${MAX_QUEUE_DESTINATION_CHARS} characters`)
      .regex(/^[A-Z0-9_]+$/, "queue: the name N of a DESTINATION_QUEUE_<N> binding (A-Z, 0-9, _)")
      .optional(),
  })
  .refine((value) => value.webhook !== undefined || value.queue !== undefined, "a destination needs webhook or queue");

/**
 * `destinations` of a function's configuration: where an event's end record is delivered, per
 * kind (onSuccess: FINISHED, onFailure: FAILED, onTerminate: ABORTED). `null` removes a kind (and
 * `destinations: null` all of them). The URL and queue checks that depend on the Worker's vars and
 * bindings are made by the registry (see destinationProblems).
 */
export const destinationsSchema = z.strictObject({
  onSuccess: destinationSchema.nullable().optional(),
  onFailure: destinationSchema.nullable().optional(),
  onTerminate: destinationSchema.nullable().optional(),
});
/** A validated `destinations` value, as sent. */
export type DestinationsInput = z.infer<typeof destinationsSchema>;

/** One kind's destinations as stored: the webhook secret encrypted (auth/credential-store.ts). */
export interface StoredDestination {
  webhook?: { url: string; secretEncrypted: string };
  queue?: string;
}
/** A function's destinations as stored (D1, JSON) and carried in its snapshot. */
export type StoredDestinations = Partial<Record<DestinationKind, StoredDestination>>;

/** True for a URL to exactly 127.0.0.1 or localhost (any port), over http or https. */
function isLoopbackDev(url: URL): boolean {
  return (
    (url.protocol === "http:" || url.protocol === "https:") &&
    (url.hostname === "127.0.0.1" || url.hostname === "localhost")
  );
}

/**
 * Why a webhook URL is refused, or undefined: https only, to a public host (webhookHostProblem: no
 * loopback, private, link-local or reserved IP literal, no local, internal or single-label name),
 * no credentials in it. With the var ALLOW_HTTP_WEBHOOKS "true" (local runs), http or https to
 * exactly 127.0.0.1 or localhost is accepted too. Checked at configuration and before each attempt.
 */
export function webhookUrlProblem(raw: string, allowHttpLoopback: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "webhook.url: not a valid URL";
  }
  if (url.username !== "" || url.password !== "") return "webhook.url: no credentials in the URL";
  if (allowHttpLoopback && isLoopbackDev(url)) return undefined;
  if (url.protocol !== "https:") return "webhook.url: https only";
  const hostProblem = webhookHostProblem(url.hostname);
  return hostProblem ? `webhook.url: ${hostProblem}` : undefined;
}

/** The public (masked) form of stored destinations: the secret is never shown. */
export function publicDestinations(stored: StoredDestinations) {
  const shown: Partial<
    Record<DestinationKind, { webhook?: { url: string; secret: typeof SECRET_MASK; hasSecret: true }; queue?: string }>
  > = {};
  for (const kind of DESTINATION_KINDS) {
    const destination = stored[kind];
    if (!destination) continue;
    shown[kind] = {
      ...(destination.webhook
        ? { webhook: { url: destination.webhook.url, secret: SECRET_MASK, hasSecret: true as const } }
        : {}),
      ...(destination.queue !== undefined ? { queue: destination.queue } : {}),
    };
  }
  return shown;
}

/** Reads the stored destinations of a registry row. */
export function storedDestinationsOf(row: FunctionRow): StoredDestinations {
  return row.destinations ? (JSON.parse(row.destinations) as StoredDestinations) : {};
}

/** An R2 bucket's name, as cos triggers name buckets: 3-63 lower-case letters, digits and `-`. */
const CODE_BUCKET_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;
/** Longest R2 object key of a code package, in UTF-8 bytes (R2's own limit on keys). */
export const MAX_CODE_OBJECT_KEY_BYTES = 1024;
const keyEncoder = new TextEncoder();

/**
 * Body of `PUT /v1/namespaces/:namespace/functions/:name/code` and the create request's code:
 * either `zipFile` (base64 of a zip, at most MAX_CODE_PACKAGE_BYTES) or `bucket` and `key`, an R2
 * object of a bucket the namespace owns (functions/code-from-object.ts, SCF's Code.CosBucketName
 * and Code.CosObjectName; at most MAX_OBJECT_CODE_PACKAGE_BYTES).
 */
export const codeSchema = z
  .strictObject({
    zipFile: z.base64("code.zipFile must be base64").min(1, "code.zipFile is required").optional(),
    bucket: z
      .string()
      .regex(CODE_BUCKET_NAME_PATTERN, "code.bucket: an R2 bucket name (3-63 lower-case letters, digits and -)")
      .optional(),
    key: z
      .string()
      .min(1, "code.key is required with code.bucket")
      .refine(
        (key) => keyEncoder.encode(key).byteLength <= MAX_CODE_OBJECT_KEY_BYTES,
        `code.key: at most ${MAX_CODE_OBJECT_KEY_BYTES} bytes (UTF-8)`,
      )
      .optional(),
  })
  .refine(
    (code) =>
      code.zipFile !== undefined
        ? code.bucket === undefined && code.key === undefined
        : code.bucket !== undefined && code.key !== undefined,
    "code: give zipFile (a base64 zip) or bucket and key (an R2 object), not both",
  );
/** A function's code as a request gives it. */
export type CodeInput = z.infer<typeof codeSchema>;

/** The refusal of a request that gives both a code package and an image, or neither. */
export const CODE_OR_IMAGE_MESSAGE = "give code (a zip package) or image (a registered image), exactly one of them";
/** The refusal of runtime CustomImage with a code package. */
export const IMAGE_RUNTIME_MESSAGE = `runtime ${IMAGE_RUNTIME} is implied by image (an image function); code needs a code runtime`;

/**
 * Body of `PUT /v1/namespaces/:namespace/functions/:name/code`: a code package (codeSchema's
 * fields; `runtime` too when the function was an image function), or `image` (the function becomes
 * an image function: runtime CustomImage).
 */
export const codeUpdateSchema = z
  .strictObject({
    ...codeSchema.shape,
    image: imageInputSchema.optional(),
    runtime: z.enum(RUNTIMES, { message: `runtime must be one of ${RUNTIMES.join(", ")}` }).optional(),
  })
  .superRefine((body, context) => {
    const hasCode = body.zipFile !== undefined || body.bucket !== undefined || body.key !== undefined;
    if (hasCode === (body.image !== undefined)) {
      context.addIssue({ code: "custom", message: CODE_OR_IMAGE_MESSAGE });
      return;
    }
    if (hasCode) {
      const code = codeSchema.safeParse({ zipFile: body.zipFile, bucket: body.bucket, key: body.key });
      if (!code.success) context.addIssue({ code: "custom", message: code.error.issues[0]?.message ?? "code" });
      if (body.runtime === IMAGE_RUNTIME)
        context.addIssue({ code: "custom", path: ["runtime"], message: IMAGE_RUNTIME_MESSAGE });
    } else if (body.runtime !== undefined && body.runtime !== IMAGE_RUNTIME) {
      context.addIssue({
        code: "custom",
        path: ["runtime"],
        message: `runtime: ${IMAGE_RUNTIME} (or absent) with image`,
      });
    }
  });
/** A validated code update. */
export type CodeUpdateInput = z.infer<typeof codeUpdateSchema>;

/** Body of `POST /v1/namespaces/:namespace/functions`. */
const createFunctionObject = z.strictObject({
  name: functionNameSchema,
  // Required with code; with image absent or CustomImage (implied).
  runtime: z.enum(RUNTIMES, { message: `runtime must be one of ${RUNTIMES.join(", ")}` }).optional(),
  handler: configurationFields.handler.default("index.main_handler"),
  code: codeSchema.optional(),
  image: imageInputSchema.optional(),
  timeout: configurationFields.timeout.default(DEFAULT_TIMEOUT_SECONDS),
  memorySize: configurationFields.memorySize.default(DEFAULT_MEMORY_MB),
  environment: configurationFields.environment.default({}),
  description: configurationFields.description.default(""),
  asyncRunEnable: z.boolean().default(true),
  // Absent: the platform's DEFAULT_MAX_CONCURRENCY (default 10), applied by the registry.
  maxConcurrency: configurationFields.maxConcurrency.optional(),
  qpsLimit: configurationFields.qpsLimit.default(DEFAULT_QPS_LIMIT),
  idempotencyWindowSeconds: configurationFields.idempotencyWindowSeconds.default(DEFAULT_IDEMPOTENCY_WINDOW_SECONDS),
  // Absent: DEFAULT_LOG_LIMIT_MB, or less where the memorySize's compute size keeps less (lite),
  // applied by the registry (instance-types.ts defaultLogLimitMb).
  logLimitMb: configurationFields.logLimitMb.optional(),
  deadlineWarningSeconds: configurationFields.deadlineWarningSeconds.default(DEFAULT_DEADLINE_WARNING_SECONDS),
  destinations: destinationsSchema.nullable().optional(),
});
/** Body of `POST /v1/namespaces/:namespace/functions`: a code function or an image function. */
export const createFunctionSchema = createFunctionObject.superRefine((body, context) => {
  if ((body.code === undefined) === (body.image === undefined)) {
    context.addIssue({ code: "custom", message: CODE_OR_IMAGE_MESSAGE });
  } else if (body.code !== undefined && body.runtime === undefined) {
    context.addIssue({ code: "custom", path: ["runtime"], message: `runtime must be one of ${RUNTIMES.join(", ")}` });
  } else if (body.code !== undefined && body.runtime === IMAGE_RUNTIME) {
    context.addIssue({ code: "custom", path: ["runtime"], message: IMAGE_RUNTIME_MESSAGE });
  } else if (body.image !== undefined && body.runtime !== undefined && body.runtime !== IMAGE_RUNTIME) {
    context.addIssue({
      code: "custom",
      path: ["runtime"],
      message: `runtime: ${IMAGE_RUNTIME} (or absent) with image`,
    });
  }
});
/** A validated create request. */
export type CreateFunctionInput = z.infer<typeof createFunctionSchema>;

/** Body of `PATCH /v1/namespaces/:namespace/functions/:name` (configuration only). */
export const updateConfigurationSchema = z.strictObject({
  handler: configurationFields.handler.optional(),
  timeout: configurationFields.timeout.optional(),
  memorySize: configurationFields.memorySize.optional(),
  environment: configurationFields.environment.optional(),
  description: configurationFields.description.optional(),
  maxConcurrency: configurationFields.maxConcurrency.optional(),
  qpsLimit: configurationFields.qpsLimit.optional(),
  idempotencyWindowSeconds: configurationFields.idempotencyWindowSeconds.optional(),
  logLimitMb: configurationFields.logLimitMb.optional(),
  deadlineWarningSeconds: configurationFields.deadlineWarningSeconds.optional(),
  /** Per kind: absent keeps it, null removes it, a value replaces it; `destinations: null` removes all. */
  destinations: destinationsSchema.nullable().optional(),
  runtime: z.enum(RUNTIMES, { message: `runtime must be one of ${RUNTIMES.join(", ")}` }).optional(),
  // Accepted by the schema only to be refused with a clear error (it is fixed at creation).
  asyncRunEnable: z.boolean().optional(),
});
/** A validated configuration update. */
export type UpdateConfigurationInput = z.infer<typeof updateConfigurationSchema>;

/** Longest text a function list's `search` may hold (a function name's length). */
export const MAX_FUNCTION_SEARCH_CHARS = 60;

/** Query of `GET /v1/namespaces/:namespace/functions`. */
export const listFunctionsQuerySchema = z.object({
  search: z
    .string()
    .min(1)
    .max(MAX_FUNCTION_SEARCH_CHARS)
    .optional()
    .describe(
      `Only functions whose name contains this text (case-insensitive, at most ${MAX_FUNCTION_SEARCH_CHARS} characters)`,
    ),
  offset: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(100).default(20),
});

/** What the platform needs to run one event of a function: a snapshot taken at invocation. */
export interface FunctionSnapshot {
  namespace: string;
  name: string;
  runtime: Runtime;
  handler: string;
  codeSha256: string;
  codeKey: string;
  timeoutSeconds: number;
  memoryMb: number;
  environment: Record<string, string>;
  maxConcurrency: number;
  qpsLimit: number;
  asyncRunEnable: boolean;
  /**
   * How long an invocation's idempotency key holds (seconds). Absent from snapshots stored by
   * events invoked before it existed; only the invocation reads it.
   */
  idempotencyWindowSeconds?: number;
  /** Log output one execution keeps, in MiB; absent from snapshots stored before it existed. */
  logLimitMb?: number;
  /**
   * Seconds before the timeout at which the handler gets SIGTERM (0: off); absent from snapshots
   * stored before it existed (off).
   */
  deadlineWarningSeconds?: number;
  /**
   * Where the event's end record is delivered (secrets encrypted), as configured when it was
   * invoked. Absent when none is configured, and from snapshots stored before it existed.
   */
  destinations?: StoredDestinations;
  /** An image function's image (runtime CustomImage; no code package), absent for code. */
  image?: StoredImage;
}

/** The log output one execution of a function keeps, in bytes (its logLimitMb, or the default). */
export function logLimitBytesOf(snapshot: Pick<FunctionSnapshot, "logLimitMb">): number {
  return (snapshot.logLimitMb ?? DEFAULT_LOG_LIMIT_MB) * MIB;
}

/** Reads a registry row into a snapshot. */
export function snapshotOf(row: FunctionRow): FunctionSnapshot {
  return {
    namespace: row.namespace,
    name: row.name,
    runtime: row.runtime as Runtime,
    handler: row.handler,
    codeSha256: row.codeSha256,
    codeKey: row.codeKey,
    timeoutSeconds: row.timeoutSeconds,
    memoryMb: row.memoryMb,
    environment: JSON.parse(row.environment) as Record<string, string>,
    maxConcurrency: row.maxConcurrency,
    qpsLimit: row.qpsLimit,
    asyncRunEnable: row.asyncRunEnable,
    idempotencyWindowSeconds: row.idempotencyWindowSeconds,
    logLimitMb: row.logLimitMb,
    // A version published before the field existed has none: off.
    deadlineWarningSeconds: row.deadlineWarningSeconds ?? DEFAULT_DEADLINE_WARNING_SECONDS,
    ...(row.destinations ? { destinations: storedDestinationsOf(row) } : {}),
    ...(row.imageConfig ? { image: storedImageFrom(row.imageConfig) } : {}),
  };
}

/** The public shape of a function (REST). Environment values are shown: they are configuration. */
export function publicFunction(row: FunctionRow) {
  return {
    namespace: row.namespace,
    name: row.name,
    runtime: row.runtime,
    handler: row.handler,
    codeSha256: row.codeSha256,
    codeSize: row.codeSize,
    timeout: row.timeoutSeconds,
    memorySize: row.memoryMb,
    environment: JSON.parse(row.environment) as Record<string, string>,
    description: row.description,
    asyncRunEnable: row.asyncRunEnable,
    maxConcurrency: row.maxConcurrency,
    qpsLimit: row.qpsLimit,
    idempotencyWindowSeconds: row.idempotencyWindowSeconds,
    logLimitMb: row.logLimitMb,
    deadlineWarningSeconds: row.deadlineWarningSeconds ?? DEFAULT_DEADLINE_WARNING_SECONDS,
    destinations: publicDestinations(storedDestinationsOf(row)),
    image: storedImageFrom(row.imageConfig) ?? null,
    createdAt: new Date(row.createdAt).toISOString(),
    updatedAt: new Date(row.updatedAt).toISOString(),
  };
}

/** R2 key of a code package. */
export function codeKeyOf(namespace: string, name: string, sha256: string): string {
  return `code/${namespace}/${name}/${sha256}.zip`;
}
