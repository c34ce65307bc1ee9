import type { Context, HonoRequest } from "hono";
import type { z } from "zod";
import { PlatformError } from "./errors";

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

/** The PAYLOAD_TOO_LARGE error of a body over `limitBytes`. */
export function bodyTooLarge(limitBytes: number): PlatformError {
  return new PlatformError("PAYLOAD_TOO_LARGE", `request body over ${limitBytes} bytes`, { limitBytes });
}

/**
 * Reads a stream to its end, counting the real bytes as they arrive, and cancels it as soon as the
 * count passes `limitBytes` (a chunked body without content-length is bounded the same way).
 */
async function readStreamBounded(stream: ReadableStream<Uint8Array>, limitBytes: number): Promise<ArrayBuffer> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limitBytes) {
      await reader.cancel("request body over its limit").catch(() => undefined);
      throw bodyTooLarge(limitBytes);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes.buffer;
}

/**
 * Hono's per-request body cache: what `c.req.arrayBuffer()`, `.json()` and `.text()` reuse instead
 * of reading the network again. Typed by Hono as `Partial<Body>`; it holds the pending reads.
 */
type HonoBodyCache = { arrayBuffer?: Promise<ArrayBuffer> } & Record<string, unknown>;

/** What readRequestBody needs of a Hono request (`c.req`, whatever its route). */
export type BodySource = Pick<HonoRequest, "raw" | "bodyCache" | "arrayBuffer">;

/**
 * The raw bytes of a request's body, read from the network at most once and never past
 * `limitBytes` (PAYLOAD_TOO_LARGE otherwise): a declared content-length over the limit is refused
 * before reading, and the real byte count is enforced while reading, before any decoding. The read
 * is left in Hono's body cache, so the TC3 signature check, the route's own reader and Hono's
 * `c.req.json()` all get the same bytes; a body refused once stays refused. The first reader's
 * limit bounds the network read: readers with a smaller limit check the byte count again.
 */
export async function readRequestBody(request: BodySource, limitBytes: number): Promise<Uint8Array> {
  const declared = request.raw.headers.get("content-length");
  if (declared !== null && Number(declared) > limitBytes) throw bodyTooLarge(limitBytes);
  const cache = request.bodyCache as HonoBodyCache;
  let pending = cache.arrayBuffer;
  if (!pending) {
    const { body } = request.raw;
    pending =
      Object.keys(cache).length > 0
        ? request.arrayBuffer() // read by Hono in another form already: convert that
        : body
          ? readStreamBounded(body, limitBytes)
          : Promise.resolve(new ArrayBuffer(0));
    cache.arrayBuffer = pending;
  }
  const buffer = await pending;
  if (buffer.byteLength > limitBytes) throw bodyTooLarge(limitBytes);
  return new Uint8Array(buffer);
}

/** Reads the request body as text, refusing bodies over the limit with PAYLOAD_TOO_LARGE. */
export async function readBodyText(c: Context, limitBytes: number): Promise<string> {
  return new TextDecoder().decode(await readRequestBody(c.req, limitBytes));
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
