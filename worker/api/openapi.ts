import type { Hook } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { type AppEnv, visibleNamespace } from "../auth/credentials";
import { ERROR_STATUS, type ErrorCode, PlatformError } from "../shared/errors";
import { describeIssues, parseWith } from "../shared/validation";

/**
 * The validation hook of every route (OpenAPIHono's `defaultHook`): a request the route's zod
 * schemas refuse is the platform's INVALID_PARAMETER, its message naming the fields. A path
 * parameter's schema carries its own label ("function name: ..."), so its issues are told without
 * the parameter's key, and only those of the first malformed parameter (as one value at a time).
 */
export const refuseInvalid: Hook<unknown, AppEnv, string, undefined> = (result) => {
  if (result.success) return undefined;
  if (result.target !== "param") throw new PlatformError("INVALID_PARAMETER", describeIssues(result.error));
  const first = result.error.issues[0]?.path[0];
  const issues = result.error.issues
    .filter((issue) => issue.path[0] === first)
    .map((issue) => ({ ...issue, path: issue.path.slice(1) }));
  throw new PlatformError("INVALID_PARAMETER", describeIssues(new z.ZodError(issues)));
};

/** The first value of each query parameter given more than once (the REST API reads the first). */
function firstValues(query: unknown): unknown {
  if (typeof query !== "object" || query === null) return query;
  return Object.fromEntries(
    Object.entries(query).map(([key, value]) => [key, Array.isArray(value) ? (value[0] as unknown) : value]),
  );
}

/**
 * A route's query schema: the given one, applied to the first value of each parameter (Hono's
 * validator hands a repeated parameter over as a list; the REST API has always read its first value).
 */
export function queryOf<Schema extends z.ZodObject>(schema: Schema) {
  return z.transform(firstValues).pipe(schema);
}

/**
 * Checks a route's path parameters before anything else of the request (query, body), in their
 * order, as the REST API always has: a malformed `namespace` is INVALID_PARAMETER and one the
 * caller may not see is NOT_FOUND before any other parameter is looked at; each other parameter is
 * checked with its schema, the first malformed one INVALID_PARAMETER. The route's own parameter
 * validator then finds them valid and hands them to the handler.
 */
export function pathFirst(params: z.ZodObject): MiddlewareHandler<AppEnv> {
  return async function checkPath(c, next) {
    for (const [key, schema] of Object.entries(params.shape)) {
      const raw = c.req.param(key);
      if (key === "namespace") visibleNamespace(c.var.principal, raw);
      else parseWith(schema, raw);
    }
    await next();
  };
}

/** The platform's error body: `{error: {code, message, requestId}}`. */
export const errorBodySchema = z
  .object({
    error: z.object({
      code: z.enum(Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]]),
      message: z.string(),
      requestId: z.string().openapi({ description: "The request's cf-ray, or a random UUID without one" }),
    }),
  })
  .openapi("Error", { description: "Every REST error: a platform error code and a readable message." });

/** What each error status of the REST API means, in the document. */
const ERROR_MEANINGS: Record<number, string> = {
  400: "INVALID_PARAMETER, INVALID_JSON, FUNCTION_NOT_ASYNC, IMMUTABLE_PARAMETER or UNSUPPORTED_OPERATION",
  401: "UNAUTHORIZED: credentials missing, unknown, revoked or not matching",
  404: "NOT_FOUND, FUNCTION_NOT_FOUND, EVENT_NOT_FOUND, TRIGGER_NOT_FOUND or QUALIFIER_NOT_FOUND (also for what the credentials may not see)",
  409: "FUNCTION_EXISTS, FUNCTION_IN_USE, EVENT_ALREADY_ENDED, EVENT_TERMINATING, IDEMPOTENCY_KEY_REUSED, TRIGGER_EXISTS, TRIGGER_LIMIT_EXCEEDED, VERSION_IN_USE, VERSION_LIMIT_EXCEEDED, ALIAS_EXISTS, ALIAS_IN_USE or ALIAS_LIMIT_EXCEEDED",
  413: "PAYLOAD_TOO_LARGE: the body is over the route's limit",
  429: "RATE_LIMITED or TOO_MANY_FOLLOWERS; Retry-After says when to retry",
  500: "INTERNAL_ERROR",
  503: "UNAVAILABLE",
  504: "INVOCATION_WAIT_TIMEOUT: a synchronous invocation's event did not end in time; it goes on, and the message names its RequestId",
};

/** Error statuses every authenticated route may answer. */
export const COMMON_ERROR_STATUSES = [400, 401, 404, 429, 500] as const;

/** The document's responses for error statuses, each with the error body. */
export function errorResponses(...statuses: number[]) {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        description: ERROR_MEANINGS[status] ?? "an error",
        content: { "application/json": { schema: errorBodySchema } },
      },
    ]),
  );
}

/** A JSON response of the document. */
export function jsonResponse<Schema extends z.ZodType>(description: string, schema: Schema) {
  return { description, content: { "application/json": { schema } } };
}

/**
 * A JSON request body in the document only: the schema is a reference to a registered component,
 * not a zod schema, so the library adds no validator of its own. Routes with such a body read it
 * themselves with readJson / readBodyText (shared/validation.ts), which bound it while streaming it
 * and validate it with the same zod schema the component is generated from.
 */
export function documentedJsonBody(component: string, description: string, required = true) {
  return documentedBody(description, { $ref: `#/components/schemas/${component}` }, required);
}

/** A request body in the document only, described by a JSON Schema (no validator is added). */
export function documentedBody(
  description: string,
  schema: { $ref: string } | { description: string },
  required = true,
) {
  return { description, required, content: { "application/json": { schema } } };
}
