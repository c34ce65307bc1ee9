import { z } from "zod";

/** Function name rule: letters, digits, - and _, starts with a letter, does not end with - or _, 2–60 chars. */
export const FUNCTION_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,58}[A-Za-z0-9]$/;
/** Namespace rule (same alphabet, 1–30 chars). */
export const NAMESPACE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,29}$/;

export const FUNCTION_NAME_RULE = "2-60 letters, digits, - or _, starting with a letter and not ending with - or _";
export const NAMESPACE_RULE = "1-30 letters, digits, - or _";

/** A function name, its error message starting with `label` (REST: "function name"; Tencent: "FunctionName"). */
export function functionNameSchemaFor(label: string) {
  return z.string().regex(FUNCTION_NAME_PATTERN, `${label}: ${FUNCTION_NAME_RULE}`);
}

/** A namespace, its error message starting with `label`. */
export function namespaceSchemaFor(label: string) {
  return z.string().regex(NAMESPACE_PATTERN, `${label}: ${NAMESPACE_RULE}`);
}

/** A function name in the REST API and the registry. */
export const functionNameSchema = functionNameSchemaFor("function name");
/** A namespace in the REST API and the registry. */
export const namespaceSchema = namespaceSchemaFor("namespace");
