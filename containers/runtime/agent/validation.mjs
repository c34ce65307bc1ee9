// Checks every value of a request before the agent uses it: anything that becomes part of a path
// (code hash, handler, request id) is validated against a strict pattern first.
import {
  MAX_ENV_NAME_CHARS,
  MAX_ENV_TOTAL_CHARS,
  MAX_ENV_VALUE_CHARS,
  MAX_ENV_VARIABLES,
  MAX_MEMORY_LIMIT_MB,
} from "./limits.mjs";

/** A code package's SHA-256, lower-case hex: the name of its folder under the code root. */
export const SHA256_PATTERN = /^[0-9a-f]{64}$/;
/** A RequestId (the platform's are UUIDs): letters, digits, - and _, no dots or slashes. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
/** A handler: `path/to/file.function`; the path is checked segment by segment as well. */
const HANDLER_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_./-]*\.[A-Za-z_][A-Za-z0-9_]*$/;
/** Longest handler string. */
const MAX_HANDLER_CHARS = 256;
/** An environment variable name. */
const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The runtimes the agent can run, by the platform's runtime name; anything else is refused. */
export const RUNTIMES = Object.freeze({
  Nodejs22: "node",
  "Python3.11": "python",
});

/** The bootstrap kind of a runtime name, or undefined for an unknown one (own properties only). */
export function runtimeKind(runtime) {
  return typeof runtime === "string" && Object.hasOwn(RUNTIMES, runtime) ? RUNTIMES[runtime] : undefined;
}

/** Why a handler string cannot be used, or undefined when it is a safe relative module path. */
export function handlerProblem(handler) {
  if (typeof handler !== "string" || handler.length === 0) return "handler is required";
  if (handler.length > MAX_HANDLER_CHARS) return `handler is longer than ${MAX_HANDLER_CHARS} characters`;
  if (handler.includes("\u0000")) return "handler contains NUL";
  if (handler.startsWith("/")) return "handler must be a relative path";
  if (!HANDLER_PATTERN.test(handler)) return "handler must be file.function, e.g. index.main_handler";
  const file = handler.slice(0, handler.lastIndexOf("."));
  for (const segment of file.split("/")) {
    if (segment === "" || segment === "." || segment === "..") return "handler path has an empty, . or .. segment";
  }
  return undefined;
}

/** Why an environment cannot be given to a handler (names, sizes), or undefined when it can. */
export function environmentProblem(environment) {
  if (environment === undefined || environment === null) return undefined;
  if (typeof environment !== "object" || Array.isArray(environment)) return "environment must be an object";
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

/**
 * Checks the body of POST /executions. Returns `{ error }` for a request that must be refused with
 * 400 (a path-like value, an unknown runtime, a wrong type), or `{ spec }` when it can be started.
 */
export function checkExecutionSpec(spec) {
  if (typeof spec !== "object" || spec === null || Array.isArray(spec)) return { error: "body must be a JSON object" };
  if (typeof spec.requestId !== "string" || !REQUEST_ID_PATTERN.test(spec.requestId)) {
    return { error: "requestId must be 1-128 letters, digits, - or _" };
  }
  if (typeof spec.codeSha256 !== "string" || !SHA256_PATTERN.test(spec.codeSha256)) {
    return { error: "codeSha256 must be 64 lower-case hex digits" };
  }
  if (runtimeKind(spec.runtime) === undefined) {
    return { error: `unknown runtime ${JSON.stringify(String(spec.runtime)).slice(0, 64)}` };
  }
  const handler = handlerProblem(spec.handler);
  if (handler) return { error: handler };
  const memory = spec.memoryLimitMb;
  if (memory !== undefined && !(Number.isInteger(memory) && memory >= 0 && memory <= MAX_MEMORY_LIMIT_MB)) {
    return { error: `memoryLimitMb must be an integer from 0 to ${MAX_MEMORY_LIMIT_MB}` };
  }
  const timeout = spec.timeoutMs;
  if (timeout !== undefined && !(Number.isFinite(timeout) && timeout >= 0)) {
    return { error: "timeoutMs must be a non-negative number" };
  }
  if (spec.context !== undefined && (typeof spec.context !== "object" || spec.context === null)) {
    return { error: "context must be an object" };
  }
  return { spec };
}
