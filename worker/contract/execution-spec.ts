// The body of the agent's POST /executions: what an instance asks its container's agent to run.
// The worker builds it (worker/instances), the agent checks it with this schema from its bundle
// (containers/runtime/agent/contract.gen.mjs): one set of patterns and bounds for both sides.
import * as z from "zod";

/**
 * The engines the agent runs: each has one bootstrap in the agent's runtime table
 * (containers/runtime/agent/runtimes.mjs) and its language in the container image.
 */
export const RUNTIME_ENGINES = ["Nodejs22", "Python3.11", "CustomRuntime", "CustomImage"] as const;
/** An engine the agent runs. */
export type RuntimeEngine = (typeof RUNTIME_ENGINES)[number];

/**
 * THE runtime table: every runtime name a function may be created with, and the engine that runs
 * it. The platform's own names (Nodejs22, Python3.11) and the SCF names of the languages shipped,
 * each run on the shipped engine (so `Nodejs16.13` runs on Node.js 22): code written for an older
 * version of a language mostly runs on a newer one. A function keeps and reports the name it was
 * created with; the agent gets that name and looks its engine up here. `CustomRuntime` is SCF's
 * Custom Runtime: the package's own executable `scf_bootstrap` (or `bootstrap`) runs any language,
 * served SCF's runtime API by the agent's `bootstrap-custom.mjs`. Not here, so refused: SCF names
 * of languages not shipped (Php*, Java8, Go1), Python2.7 (another language in practice),
 * Nodejs6.10 and Nodejs8.9 (retired by SCF), and names newer than the engine (Python3.12 would run
 * on 3.11). `CustomImage` is SCF's name for an image function (Code.ImageConfig): never given with a
 * code package, it is implied by an image; its specs are image specs (imageExecutionSpecSchema).
 */
export const RUNTIME_TABLE = {
  Nodejs22: "Nodejs22",
  // SCF's console name for Node.js 20; not in the SDK model files checked (scf-reference.md §10).
  "Nodejs20.15": "Nodejs22",
  "Nodejs18.15": "Nodejs22",
  "Nodejs16.13": "Nodejs22",
  "Nodejs14.18": "Nodejs22",
  "Nodejs12.16": "Nodejs22",
  "Nodejs10.15": "Nodejs22",
  "Python3.11": "Python3.11",
  "Python3.10": "Python3.11",
  "Python3.9": "Python3.11",
  // 3.11 runs most 3.6+ code; what it removed (asyncio.coroutine, collections' ABC aliases) fails.
  "Python3.7": "Python3.11",
  "Python3.6": "Python3.11",
  // SCF's Custom Runtime (scf-reference.md §7): the handler string is the program's (`_HANDLER`).
  CustomRuntime: "CustomRuntime",
  // SCF's image functions (scf-reference.md §8): the user's image, its server on port 9000.
  CustomImage: "CustomImage",
} as const satisfies Record<string, RuntimeEngine>;

/** A runtime name a function may use (a key of RUNTIME_TABLE). */
export type RuntimeName = keyof typeof RUNTIME_TABLE;
/** Every runtime name a function may use, in the table's order; anything else is refused. */
export const RUNTIME_NAMES = Object.keys(RUNTIME_TABLE) as [RuntimeName, ...RuntimeName[]];

/** The runtime name of an image function (SCF's): its spec is an image spec, never a code spec. */
export const IMAGE_RUNTIME = "CustomImage" satisfies RuntimeName;
/** The runtime names of code functions (every name but IMAGE_RUNTIME), in the table's order. */
export const CODE_RUNTIME_NAMES = RUNTIME_NAMES.filter((name) => name !== IMAGE_RUNTIME) as [
  RuntimeName,
  ...RuntimeName[],
];

/** The engine that runs a runtime name, or undefined for a name not in the table (own keys only). */
export function engineOf(name: unknown): RuntimeEngine | undefined {
  return typeof name === "string" && Object.hasOwn(RUNTIME_TABLE, name)
    ? RUNTIME_TABLE[name as RuntimeName]
    : undefined;
}

/** A code package's SHA-256, lower-case hex: the name of its folder in the agent's code cache. */
export const SHA256_PATTERN = /^[0-9a-f]{64}$/;
/** A RequestId (the platform's are UUIDs): letters, digits, - and _, no dots or slashes. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
/** A handler: `path/to/file.function`; its path is checked segment by segment as well. */
export const HANDLER_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_./-]*\.[A-Za-z_][A-Za-z0-9_]*$/;
/** Longest handler string. */
export const MAX_HANDLER_CHARS = 256;
/** An environment variable name. */
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Largest JSON body of POST /executions, in bytes (the event payload is bounded far below). */
export const MAX_EXECUTION_SPEC_BYTES = 8 * 1024 * 1024;
/** Most environment variables a handler gets from its function's configuration. */
export const MAX_ENV_VARIABLES = 256;
/** Longest environment variable name. */
export const MAX_ENV_NAME_CHARS = 256;
/** Longest environment variable value (the worker's own limit per value). */
export const MAX_ENV_VALUE_CHARS = 4 * 1024;
/**
 * Total characters of names and values. Above the worker's 32 KiB so that every configuration the
 * API accepts fits; even at 3 UTF-8 bytes a character far below the kernel's argv + environment
 * limit (a quarter of the 8 MiB stack, 128 KiB a string), so a spawn never fails with E2BIG.
 */
export const MAX_ENV_TOTAL_CHARS = 64 * 1024;
/** Largest handler memory size accepted (MB), as a sanity bound on the spec. */
export const MAX_MEMORY_LIMIT_MB = 64 * 1024;
/**
 * A registered image's name (wrangler.toml `[containers.images.<name>]`, CONTAINER_IMAGES): lower-case
 * letters, digits and -, starting with a letter, at most 63 characters. `runtime` is the platform's own.
 */
export const IMAGE_NAME_PATTERN = /^[a-z][a-z0-9-]{0,62}$/;
/**
 * How long an image's server has to listen on port 9000 after its entry is started (SCF's health
 * check window, 30 s): the agent's shim waits this long, the worker's start backstop allows for it.
 */
export const IMAGE_PORT_WAIT_MS = 30_000;
/** Most items of an image spec's command (ImageConfig Command + Args). */
export const MAX_IMAGE_COMMAND_ITEMS = 64;
/** Longest item of an image spec's command. */
export const MAX_IMAGE_COMMAND_ITEM_CHARS = 4096;

/** Longest text of the context the handler sees (function name, namespace, version). */
export const MAX_CONTEXT_TEXT_CHARS = 256;

/**
 * Log output one execution keeps, in "log bytes": the UTF-8 bytes of each kept line plus 1 (its
 * newline, so an empty line counts 1), counted by the agent on the line as stored (NUL replaced,
 * an over-long line cut). Past it the agent keeps no more of the handler's lines: one [PLATFORM]
 * line says so, another gives the number dropped before the end record. The default when the spec
 * has no `logLimitBytes`: 1 GiB.
 */
export const DEFAULT_LOG_LIMIT_BYTES = 1024 * 1024 * 1024;
/** Smallest `logLimitBytes` a spec may ask for: 1 MiB. */
export const MIN_LOG_LIMIT_BYTES = 1024 * 1024;
/**
 * Largest `logLimitBytes` a spec may ask for: 3 GiB. The agent spools an execution's log to the
 * container's disk, at most about twice the limit (a flood of empty lines), which must fit beside
 * the image on the instance type's disk (standard-1: 8 GB).
 */
export const MAX_LOG_LIMIT_BYTES = 3 * 1024 * 1024 * 1024;

/** Why a handler's file path leaves or blurs the code folder (an empty, . or .. segment), if it does. */
export function handlerPathProblem(handler: string): string | undefined {
  const file = handler.slice(0, handler.lastIndexOf("."));
  for (const segment of file.split("/")) {
    if (segment === "" || segment === "." || segment === "..") return "has an empty, . or .. segment in its path";
  }
  return undefined;
}

/**
 * Why an environment cannot be given to a handler (names, sizes, NUL), or undefined when it can.
 * The messages name the variable and the bound it breaks.
 */
export function environmentProblem(environment: unknown): string | undefined {
  if (typeof environment !== "object" || environment === null || Array.isArray(environment)) {
    return "environment must be an object";
  }
  const entries = Object.entries(environment);
  if (entries.length > MAX_ENV_VARIABLES) return `more than ${MAX_ENV_VARIABLES} environment variables`;
  let total = 0;
  for (const [name, value] of entries) {
    if (name.length > MAX_ENV_NAME_CHARS || !ENV_NAME_PATTERN.test(name)) {
      return `environment variable name ${JSON.stringify(name.slice(0, 64))} is not valid`;
    }
    if (typeof value !== "string") return `environment variable ${name} is not a string`;
    if (value.includes("\u0000")) return `environment variable ${name} contains NUL`;
    if (value.length > MAX_ENV_VALUE_CHARS) {
      return `environment variable ${name} is ${value.length} characters, over the limit of ${MAX_ENV_VALUE_CHARS}`;
    }
    total += name.length + value.length;
  }
  if (total > MAX_ENV_TOTAL_CHARS) {
    return `the environment is ${total} characters in total, over the limit of ${MAX_ENV_TOTAL_CHARS}`;
  }
  return undefined;
}

/** A RequestId (see REQUEST_ID_PATTERN). */
export const requestIdSchema = z
  .string({ error: "must be 1-128 letters, digits, - or _" })
  .regex(REQUEST_ID_PATTERN, "must be 1-128 letters, digits, - or _");

/** A code package's SHA-256 (see SHA256_PATTERN). */
export const sha256Schema = z
  .string({ error: "must be 64 lower-case hex digits" })
  .regex(SHA256_PATTERN, "must be 64 lower-case hex digits");

/** A runtime name of RUNTIME_NAMES; the refusal quotes what was sent. */
export const runtimeNameSchema = z.enum(RUNTIME_NAMES, {
  error: (issue) => `unknown runtime ${JSON.stringify(String(issue.input)).slice(0, 64)}`,
});

/** An unknown-runtime refusal that quotes what was sent (at most 64 characters of it). */
function unknownRuntimeMessage(input: unknown): string {
  return `unknown runtime ${JSON.stringify(String(input)).slice(0, 64)}`;
}

/** A handler `file.function` whose file is a safe path relative to the code folder. */
export const handlerSchema = z
  .string({ error: "is required" })
  .min(1, "is required")
  .max(MAX_HANDLER_CHARS, `is longer than ${MAX_HANDLER_CHARS} characters`)
  .refine((handler) => !handler.includes("\u0000"), "contains NUL")
  .refine((handler) => !handler.startsWith("/"), "must be a relative path")
  .regex(HANDLER_PATTERN, "must be file.function, e.g. index.main_handler")
  .refine((handler) => handlerPathProblem(handler) === undefined, "has an empty, . or .. segment in its path");

/** The handler's environment variables, within every bound of environmentProblem. */
export const environmentSchema = z.record(z.string(), z.string()).superRefine((environment, context) => {
  const problem = environmentProblem(environment);
  if (problem) context.addIssue({ code: "custom", message: problem });
});

/** Text of the context the handler sees. */
const contextTextSchema = z.string().max(MAX_CONTEXT_TEXT_CHARS);

/**
 * SCF's context fields as the handler receives them (its second argument): their snake_case names
 * are SCF's, not this platform's.
 */
export const executionContextSchema = z.object(
  {
    request_id: requestIdSchema,
    function_name: contextTextSchema,
    namespace: contextTextSchema,
    function_version: contextTextSchema,
    memory_limit_in_mb: z.int().min(0).max(MAX_MEMORY_LIMIT_MB),
    time_limit_in_ms: z.int().min(0),
  },
  { error: "context must be an object" },
);
/** The context a handler receives. */
export type ExecutionContext = z.infer<typeof executionContextSchema>;

const MEMORY_LIMIT_MESSAGE = `must be an integer from 0 to ${MAX_MEMORY_LIMIT_MB}`;
const TIMEOUT_MESSAGE = "must be a non-negative number";
const LOG_LIMIT_MESSAGE = `must be an integer from ${MIN_LOG_LIMIT_BYTES} to ${MAX_LOG_LIMIT_BYTES}`;

/** The fields every spec has, code or image. */
const commonSpecFields = {
  requestId: requestIdSchema,
  event: z.unknown(),
  environment: environmentSchema,
  memoryLimitMb: z
    .int({ error: MEMORY_LIMIT_MESSAGE })
    .min(0, MEMORY_LIMIT_MESSAGE)
    .max(MAX_MEMORY_LIMIT_MB, MEMORY_LIMIT_MESSAGE),
  timeoutMs: z.number({ error: TIMEOUT_MESSAGE }).min(0, TIMEOUT_MESSAGE),
  logLimitBytes: z
    .int({ error: LOG_LIMIT_MESSAGE })
    .min(MIN_LOG_LIMIT_BYTES, LOG_LIMIT_MESSAGE)
    .max(MAX_LOG_LIMIT_BYTES, LOG_LIMIT_MESSAGE)
    .optional(),
  context: executionContextSchema,
};

/** A code function's spec: its runtime, handler and code package (by hash, in the agent's cache). */
export const codeExecutionSpecSchema = z.object(
  {
    ...commonSpecFields,
    runtime: z.enum(CODE_RUNTIME_NAMES, { error: (issue) => unknownRuntimeMessage(issue.input) }),
    handler: handlerSchema,
    codeSha256: sha256Schema,
  },
  { error: "the execution spec must be a JSON object" },
);

/** An image spec's image: the registered image's name and the command that starts its server. */
export const imageSpecImageSchema = z.object(
  {
    name: z
      .string({ error: "must be a registered image name" })
      .regex(IMAGE_NAME_PATTERN, "must be a registered image name"),
    // ImageConfig Command + Args: the program and its arguments; absent: the image's ENTRYPOINT + CMD.
    command: z
      .array(
        z
          .string({ error: "must be a string" })
          .max(MAX_IMAGE_COMMAND_ITEM_CHARS, `is longer than ${MAX_IMAGE_COMMAND_ITEM_CHARS} characters`)
          .refine((item) => !item.includes("\u0000"), "contains NUL"),
        { error: "must be an array of strings" },
      )
      .min(1, "must name a program")
      .max(MAX_IMAGE_COMMAND_ITEMS, `has more than ${MAX_IMAGE_COMMAND_ITEMS} items`)
      .refine((command) => command[0] !== "", "must name a program")
      .optional(),
    // ImageConfig Args alone (no Command): the image's ENTRYPOINT with these instead of its CMD.
    args: z
      .array(
        z
          .string({ error: "must be a string" })
          .max(MAX_IMAGE_COMMAND_ITEM_CHARS, `is longer than ${MAX_IMAGE_COMMAND_ITEM_CHARS} characters`)
          .refine((item) => !item.includes("\u0000"), "contains NUL"),
        { error: "must be an array of strings" },
      )
      .max(MAX_IMAGE_COMMAND_ITEMS, `has more than ${MAX_IMAGE_COMMAND_ITEMS} items`)
      .optional(),
  },
  { error: "image must be an object" },
);

/** An image function's spec (runtime CustomImage): no handler, no code package. */
export const imageExecutionSpecSchema = z.object(
  {
    ...commonSpecFields,
    runtime: z.literal(IMAGE_RUNTIME),
    image: imageSpecImageSchema,
  },
  { error: "the execution spec must be a JSON object" },
);

/**
 * The body of POST /executions: a code spec or an image spec, told apart by `runtime`.
 * `timeoutMs` (0: none) runs from the hand-over to the handler; `memoryLimitMb` (0: none) caps a
 * Node.js heap or a Python process's data; `event` is any JSON. `logLimitBytes` (optional,
 * DEFAULT_LOG_LIMIT_BYTES when absent) bounds the log output kept.
 */
export const executionSpecSchema = z.discriminatedUnion(
  "runtime",
  [codeExecutionSpecSchema, imageExecutionSpecSchema],
  {
    error: (issue) =>
      issue.code === "invalid_union"
        ? unknownRuntimeMessage((issue.input as { runtime?: unknown } | undefined)?.runtime)
        : "the execution spec must be a JSON object",
  },
);
/** What an instance asks its agent to run. */
export type ExecutionSpec = z.infer<typeof executionSpecSchema>;
/** A code function's spec. */
export type CodeExecutionSpec = z.infer<typeof codeExecutionSpecSchema>;
/** An image function's spec. */
export type ImageExecutionSpec = z.infer<typeof imageExecutionSpecSchema>;
