import { z } from "zod";
import type { FunctionRow } from "../db/schema";

/** Runtimes the runtime agent can run. */
export const RUNTIMES = ["Nodejs22", "Python3.11"] as const;
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
/** Default and largest per-function concurrency (containers running at once). */
export const DEFAULT_MAX_CONCURRENCY = 10;
export const MAX_CONCURRENCY_LIMIT = 50;
/** The default namespace. */
export const DEFAULT_NAMESPACE = "default";

/** Function name rule: letters, digits, - and _, starts with a letter, does not end with - or _, 2–60 chars. */
export const FUNCTION_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,58}[A-Za-z0-9]$/;
/** Namespace rule (same alphabet, 1–30 chars). */
export const NAMESPACE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,29}$/;
const HANDLER_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_./-]*\.[A-Za-z_][A-Za-z0-9_]*$/;
const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const functionNameSchema = z
  .string()
  .regex(
    FUNCTION_NAME_PATTERN,
    "function name: 2-60 letters, digits, - or _, starting with a letter and not ending with - or _",
  );
export const namespaceSchema = z.string().regex(NAMESPACE_PATTERN, "namespace: 1-30 letters, digits, - or _");

const environmentSchema = z
  .record(z.string().regex(ENV_NAME_PATTERN, "environment variable names: letters, digits and _"), z.string())
  .refine((variables) => Object.keys(variables).length <= 100, "at most 100 environment variables");

const configurationFields = {
  handler: z.string().regex(HANDLER_PATTERN, "handler: file.function, e.g. index.main_handler"),
  timeout: z.number().int().min(1).max(MAX_ASYNC_TIMEOUT_SECONDS),
  memorySize: z.number().int().min(MIN_MEMORY_MB).max(MAX_MEMORY_MB),
  environment: environmentSchema,
  description: z.string().max(1000),
  maxConcurrency: z.number().int().min(1).max(MAX_CONCURRENCY_LIMIT),
  qpsLimit: z.number().int().min(1).max(100_000),
};

/** Body of `PUT /v1/namespaces/:namespace/functions/:name/code` and the create request's code. */
export const codeSchema = z.strictObject({
  zipFile: z.base64("code.zipFile must be base64").min(1, "code.zipFile is required"),
});

/** Body of `POST /v1/namespaces/:namespace/functions`. */
export const createFunctionSchema = z.strictObject({
  name: functionNameSchema,
  runtime: z.enum(RUNTIMES, { message: `runtime must be one of ${RUNTIMES.join(", ")}` }),
  handler: configurationFields.handler.default("index.main_handler"),
  code: codeSchema,
  timeout: configurationFields.timeout.default(DEFAULT_TIMEOUT_SECONDS),
  memorySize: configurationFields.memorySize.default(DEFAULT_MEMORY_MB),
  environment: configurationFields.environment.default({}),
  description: configurationFields.description.default(""),
  asyncRunEnable: z.boolean().default(true),
  maxConcurrency: configurationFields.maxConcurrency.default(DEFAULT_MAX_CONCURRENCY),
  qpsLimit: configurationFields.qpsLimit.default(DEFAULT_QPS_LIMIT),
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
  runtime: z.enum(RUNTIMES, { message: `runtime must be one of ${RUNTIMES.join(", ")}` }).optional(),
  // Accepted by the schema only to be refused with a clear error (it is fixed at creation).
  asyncRunEnable: z.boolean().optional(),
});
/** A validated configuration update. */
export type UpdateConfigurationInput = z.infer<typeof updateConfigurationSchema>;

/** Query of `GET /v1/namespaces/:namespace/functions`. */
export const listFunctionsQuerySchema = z.object({
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
    createdAt: new Date(row.createdAt).toISOString(),
    updatedAt: new Date(row.updatedAt).toISOString(),
  };
}

/** R2 key of a code package. */
export function codeKeyOf(namespace: string, name: string, sha256: string): string {
  return `code/${namespace}/${name}/${sha256}.zip`;
}
