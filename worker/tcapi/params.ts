// What every Tencent Cloud API action shares: its context, its error type, the parameter parser
// that turns zod issues into Tencent error codes, and the parameters most actions take
// (FunctionName, Namespace).
import { z } from "zod";
import { canAccessNamespace, type Principal } from "../auth/principal";
import { DEFAULT_NAMESPACE } from "../functions/model";
import { functionNameSchemaFor, NAMESPACE_PATTERN, NAMESPACE_RULE } from "../shared/names";
import { describeIssues } from "../shared/validation";

/** An error with a Tencent Cloud API code of its own (more precise than the platform's). */
export class TcApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** What every action receives. */
export interface ActionContext {
  env: Env;
  principal: Principal;
  params: Record<string, unknown>;
  /** The request's URL (an http trigger's answer shows its URL on the same origin). */
  requestUrl?: string;
}

/** One Tencent Cloud API action: its answer's fields, without the envelope or RequestId. */
export type Action = (context: ActionContext) => Promise<Record<string, unknown>>;

/**
 * A `FunctionName` parameter: checked against the function name rule on every action, so a
 * malformed name is InvalidParameterValue.FunctionName wherever it is given.
 */
export const functionNameParam = functionNameSchemaFor("FunctionName");

/**
 * A `Namespace` parameter: checked against the namespace rule on every action
 * (InvalidParameterValue.Namespace); an empty one means the default namespace.
 */
export const namespaceParam = z
  .string()
  .refine((value) => value === "" || NAMESPACE_PATTERN.test(value), `Namespace: ${NAMESPACE_RULE}`);

/**
 * An action's parameters checked against its schema. A missing required top-level parameter is
 * MissingParameter; any other issue is InvalidParameterValue.<Parameter> (of the first issue).
 */
export function parseParams<Schema extends z.ZodType>(schema: Schema, value: unknown): z.infer<Schema> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue?.path[0];
  if (issue?.code === "invalid_type" && issue.input === undefined && typeof field === "string") {
    throw new TcApiError("MissingParameter", `${field} is required`);
  }
  throw new TcApiError(
    `InvalidParameterValue${typeof field === "string" ? `.${field}` : ""}`,
    describeIssues(parsed.error),
  );
}

/**
 * The namespace a `Namespace` parameter names (the default one when absent or empty), or
 * ResourceNotFound.Namespace when the caller may not use it.
 */
export function namespaceOf(principal: Principal, value: unknown): string {
  const namespace = typeof value === "string" && value.length > 0 ? value : DEFAULT_NAMESPACE;
  if (!canAccessNamespace(principal, namespace)) {
    throw new TcApiError("ResourceNotFound.Namespace", `namespace ${namespace} not found`);
  }
  return namespace;
}
