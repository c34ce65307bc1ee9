// Checks every value of a request before the agent uses it, with the container contract's schemas
// (contract.gen.mjs, built from worker/contract): anything that becomes part of a path (code hash,
// handler, request id) is checked against a strict pattern first, and the handler's path once more
// segment by segment here, by the agent's own code, before it reaches a file name.
import {
  environmentProblem,
  executionSpecSchema,
  IMAGE_RUNTIME,
  problemOf,
  REQUEST_ID_PATTERN,
  SHA256_PATTERN,
  signalRequestSchema,
} from "./contract.gen.mjs";
import { runtimeOf } from "./runtimes.mjs";

export { REQUEST_ID_PATTERN, SHA256_PATTERN };

/** Why a handler string cannot be used as a path, or undefined when it is a safe relative module path. */
export function handlerProblem(handler) {
  if (typeof handler !== "string" || handler.length === 0) return "is required";
  if (handler.includes("\u0000")) return "contains NUL";
  if (handler.startsWith("/")) return "must be a relative path";
  const file = handler.slice(0, handler.lastIndexOf("."));
  for (const segment of file.split("/")) {
    if (segment === "" || segment === "." || segment === "..") return "has an empty, . or .. segment in its path";
  }
  return undefined;
}

/** True when every issue of a failed parse concerns the environment (and nothing else is wrong). */
function onlyEnvironmentIsWrong(error) {
  return error.issues.every((issue) => issue.path[0] === "environment");
}

/**
 * Checks the body of POST /executions with executionSpecSchema. Returns `{ error }` for a request
 * that must be refused with 400 (a path-like value, an unknown runtime, a wrong type), or `{ spec }`
 * when it can be started. A spec whose only fault is its environment is not refused: it comes back
 * with an empty environment and `environmentError`, and its execution ends at once with that error
 * (the user sees why on the event, as when the spawn itself fails).
 */
export function checkExecutionSpec(body) {
  const parsed = executionSpecSchema.safeParse(body);
  if (!parsed.success) {
    if (typeof body !== "object" || body === null || Array.isArray(body) || !onlyEnvironmentIsWrong(parsed.error)) {
      return { error: problemOf(parsed.error) };
    }
    const rest = executionSpecSchema.safeParse({ ...body, environment: {} });
    if (!rest.success) return { error: problemOf(rest.error) };
    const environmentError = environmentProblem(body.environment) ?? problemOf(parsed.error);
    return { spec: rest.data, environmentError };
  }
  const spec = parsed.data;
  // The agent's own checks, beside the schema's: a runtime it has a bootstrap for, a safe path.
  if (!runtimeOf(spec.runtime)) return { error: `runtime: unknown runtime ${JSON.stringify(spec.runtime)}` };
  // An image spec has no handler (its image's entry is the program).
  if (spec.runtime === IMAGE_RUNTIME) return { spec };
  const handler = handlerProblem(spec.handler);
  if (handler) return { error: `handler: ${handler}` };
  return { spec };
}

/** Checks the body of POST /executions/:id/signal (`{}` means SIGTERM): `{ error }` or `{ signal }`. */
export function checkSignalRequest(body) {
  const parsed = signalRequestSchema.safeParse(body);
  return parsed.success ? { signal: parsed.data.signal } : { error: problemOf(parsed.error) };
}
