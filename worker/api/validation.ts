import type { Context } from "hono";
import type { z } from "zod";
import { PlatformError } from "../shared/errors";

/** Largest JSON request body accepted by the REST API (a code package in base64 fits). */
export const MAX_JSON_BODY_BYTES = 32 * 1024 * 1024;

/** Turns a zod error into one readable sentence naming the fields. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => (issue.path.length > 0 ? `${issue.path.join(".")}: ${issue.message}` : issue.message))
    .join("; ");
}

/** Parses a value with a schema, or throws INVALID_PARAMETER naming the fields. */
export function parseWith<Schema extends z.ZodType>(schema: Schema, value: unknown): z.infer<Schema> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new PlatformError("INVALID_PARAMETER", describeIssues(parsed.error));
  return parsed.data;
}

/** Reads the request body as text, refusing bodies over the limit with PAYLOAD_TOO_LARGE. */
export async function readBodyText(c: Context, limitBytes: number): Promise<string> {
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > limitBytes) throw new PlatformError("PAYLOAD_TOO_LARGE", `body over ${limitBytes} bytes`);
  const buffer = await c.req.arrayBuffer();
  if (buffer.byteLength > limitBytes) throw new PlatformError("PAYLOAD_TOO_LARGE", `body over ${limitBytes} bytes`);
  return new TextDecoder().decode(buffer);
}

/** Reads and parses a JSON body, then validates it. */
export async function readJson<Schema extends z.ZodType>(
  c: Context,
  schema: Schema,
  limitBytes = MAX_JSON_BODY_BYTES,
): Promise<z.infer<Schema>> {
  const text = await readBodyText(c, limitBytes);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new PlatformError("INVALID_JSON", "request body is not valid JSON");
  }
  return parseWith(schema, value);
}
