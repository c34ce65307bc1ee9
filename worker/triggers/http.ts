// The http trigger (SCF's function URL): a public URL per trigger, `<origin>/url/<urlId>` with any
// method and any subpath, whose requests become events in API Gateway's shape (invoke type APIGW),
// answered 202 with the RequestId before the handler runs. AuthType CAM (the default) requires the
// platform's own credentials reaching the trigger's namespace; NONE is public.
import { z } from "zod";
import { authenticate, canAccessNamespace, parseBearer } from "../auth/credentials";
import type { SignedOperation } from "../auth/signature-ledger";
import type { TriggerRow } from "../db/schema";
import type { InvocationAnswer } from "../events/idempotency";
import { checkIdempotencyKey } from "../events/idempotency";
import { MAX_ASYNC_PAYLOAD_BYTES } from "../events/invoke";
import { admitRead } from "../ratelimit/read-limit";
import { hex, sha256Hex, toBase64 } from "../shared/encoding";
import { PlatformError, toPlatformError } from "../shared/errors";
import { type BodySource, describeIssues, readRequestBody } from "../shared/validation";
import type { PrepareTrigger } from "./model";
import { ALL_NAMESPACES, deliveryKey, enabledTriggersOf, invokeTrigger } from "./source-consumer";

/** Path prefix of every function URL: `/url/<urlId>[/<subpath>]`. */
export const FUNCTION_URL_PREFIX = "/url";
/** Random bytes of a URL id (128 bits), written as lower-case hex. */
export const URL_ID_BYTES = 16;
/** A URL id: URL_ID_BYTES random bytes in lower-case hex. */
export const URL_ID_PATTERN = /^[0-9a-f]{32}$/;
/** The header of the 202 answer carrying the event's RequestId (the JSON body has `requestId`). */
export const REQUEST_ID_HEADER = "X-Scf-Request-Id";
/** Most characters of a CorsConfig list entry (an origin, header or method). */
export const MAX_CORS_ENTRY_CHARS = 256;
/** Most entries of a CorsConfig list. */
export const MAX_CORS_ENTRIES = 20;
/** Largest CorsConfig MaxAge (s). */
export const MAX_CORS_MAX_AGE_SECONDS = 86_400;
/** The stage the event's requestContext and stageVariables name (function URLs have one). */
const STAGE = "release";

/**
 * Headers left out of the event: the caller's credentials (Authorization, under CAM: they never
 * reach the handler) and what Cloudflare's edge adds per request (a retried request with an
 * Idempotency-Key must build the same event); the client's address is requestContext.sourceIp.
 */
const EDGE_HEADERS = new Set([
  "cf-connecting-ip",
  "cf-connecting-ipv6",
  "cf-ipcountry",
  "cf-ray",
  "cf-visitor",
  "cf-worker",
  "cf-ew-via",
  "cdn-loop",
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-real-ip",
]);

/** A CORS origin: `*`, or `scheme://host[:port]` (no path, no credentials, no spaces or controls). */
export const CORS_ORIGIN_PATTERN =
  /^(\*|[A-Za-z][A-Za-z0-9+.-]*:\/\/([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?)$/;
/** A CORS method or header name: an RFC 7230 token (which `*` is). */
export const CORS_TOKEN_PATTERN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers the caller's Tencent Cloud API 3.0 signature travels in (left out of the event under CAM). */
const SIGNATURE_HEADER_PREFIX = "x-tc-";

const corsEntries = (pattern: RegExp | undefined, rule: string) =>
  z
    .array(
      pattern === undefined
        ? z.string().min(1).max(MAX_CORS_ENTRY_CHARS)
        : z.string().min(1).max(MAX_CORS_ENTRY_CHARS).regex(pattern, rule),
    )
    .max(MAX_CORS_ENTRIES);

const ORIGIN_RULE = "an origin is * or scheme://host[:port]";
const TOKEN_RULE = "a method or header name is a token (letters, digits and !#$%&'*+.^_`|~-)";

/** SCF's http TriggerDesc; `strict` checks the CORS entries' form (what is stored was checked so). */
function httpDescSchemaOf(strict: boolean) {
  return z.strictObject({
    AuthType: z.enum(["CAM", "NONE"], "AuthType: CAM or NONE").default("CAM"),
    NetConfig: z
      .strictObject({ EnableIntranet: z.boolean().optional(), EnableExtranet: z.boolean().optional() })
      .optional(),
    CorsConfig: z
      .strictObject({
        Enable: z.boolean().default(false),
        Origins: corsEntries(strict ? CORS_ORIGIN_PATTERN : undefined, ORIGIN_RULE).optional(),
        Headers: corsEntries(strict ? CORS_TOKEN_PATTERN : undefined, TOKEN_RULE).optional(),
        Methods: corsEntries(strict ? CORS_TOKEN_PATTERN : undefined, TOKEN_RULE).optional(),
        ExposeHeaders: corsEntries(strict ? CORS_TOKEN_PATTERN : undefined, TOKEN_RULE).optional(),
        MaxAge: z.number().int().min(0).max(MAX_CORS_MAX_AGE_SECONDS).optional(),
        Credentials: z.boolean().optional(),
      })
      .refine((cors) => !strict || !cors.Credentials || (cors.Origins !== undefined && !cors.Origins.includes("*")), {
        message: "Credentials: true needs an Origins list of exact origins (not * nor absent)",
        path: ["Credentials"],
      })
      .optional(),
    ApiGwCompatible: z.boolean().optional(),
  });
}

/** SCF's http TriggerDesc as created or updated. Unknown keys are refused; ApiGwCompatible is accepted and ignored. */
const httpDescSchema = httpDescSchemaOf(true);
/** A stored TriggerDesc (rows stored before the CORS entries were checked are read, their bad entries never sent). */
const storedHttpDescSchema = httpDescSchemaOf(false);

/** An http trigger's TriggerDesc, normalised. */
export type HttpTriggerDesc = z.infer<typeof httpDescSchema>;

/** Parses a TriggerDesc as sent (undefined or empty: AuthType CAM), or INVALID_PARAMETER. */
export function parseHttpTriggerDesc(text: string | undefined): HttpTriggerDesc {
  let value: unknown = {};
  if (text !== undefined && text.trim() !== "") {
    try {
      value = JSON.parse(text);
    } catch {
      throw new PlatformError("INVALID_PARAMETER", "TriggerDesc: an http trigger's TriggerDesc must be a JSON object");
    }
  }
  const parsed = httpDescSchema.safeParse(value);
  if (!parsed.success) {
    throw new PlatformError("INVALID_PARAMETER", `TriggerDesc: ${describeIssues(parsed.error)}`);
  }
  return parsed.data;
}

/** A stored TriggerDesc of an http trigger (AuthType CAM when unreadable: never public by mistake). */
export function storedHttpTriggerDesc(text: string): HttpTriggerDesc {
  try {
    const parsed = storedHttpDescSchema.safeParse(JSON.parse(text));
    if (parsed.success) return parsed.data;
  } catch {
    // falls through
  }
  console.error("an http trigger's stored TriggerDesc is unreadable; it is served as AuthType CAM without CORS");
  return { AuthType: "CAM" };
}

/** A fresh URL id: URL_ID_BYTES random bytes, hex. */
export function newUrlId(): string {
  return hex(crypto.getRandomValues(new Uint8Array(URL_ID_BYTES)));
}

/**
 * The http trigger's check: its TriggerDesc (stored normalised, AuthType always present) and its
 * URL id, generated at creation and kept on every update.
 */
export const prepareHttpTrigger: PrepareTrigger = (_env, input) => {
  const desc = parseHttpTriggerDesc(input.triggerDesc);
  const source = input.existing?.source ?? newUrlId();
  return { triggerDesc: JSON.stringify(desc), source };
};

/** The trigger's function URL on the origin of `requestUrl`. */
export function httpTriggerUrl(requestUrl: string, row: TriggerRow): string {
  return `${new URL(requestUrl).origin}${FUNCTION_URL_PREFIX}/${row.source ?? ""}`;
}

/**
 * The enabled http trigger of a URL id, or NOT_FOUND (the same answer for unknown and disabled).
 * Read from D1 on every request (no per-isolate cache): a URL disabled, deleted or switched from
 * NONE to CAM applies to the next request.
 */
export async function httpTriggerOf(env: Pick<Env, "DB">, urlId: string): Promise<TriggerRow> {
  const row = URL_ID_PATTERN.test(urlId)
    ? (await enabledTriggersOf(env, "http", urlId, ALL_NAMESPACES, { cached: false }))[0]
    : undefined;
  if (!row) throw new PlatformError("NOT_FOUND", "no function URL here");
  return row;
}

/** One request to a function URL, as its route hands it over. */
export interface FunctionUrlRequest {
  urlId: string;
  /** The path after `/url/<urlId>`, "/" at least. */
  subpath: string;
  request: Request;
  /** The request's body, read by readRequestBody (bounded). */
  body: BodySource;
}

/** What a function URL answers: the event's RequestId (or the key's event, for a duplicate key). */
export interface FunctionUrlAnswer {
  answer: InvocationAnswer;
  /** CORS headers the answer carries (empty without CorsConfig.Enable or an allowed Origin). */
  corsHeaders: Record<string, string>;
}

/** A CORS preflight answer's headers, or undefined when the request is no preflight CORS answers. */
export function corsPreflight(desc: HttpTriggerDesc, request: Request): Record<string, string> | undefined {
  if (request.method !== "OPTIONS" || !desc.CorsConfig?.Enable) return undefined;
  if (!request.headers.has("access-control-request-method")) return undefined;
  const headers = corsHeadersFor(desc, request);
  if (!headers["Access-Control-Allow-Origin"]) return headers;
  const cors = desc.CorsConfig;
  headers["Access-Control-Allow-Methods"] = safeTokens(cors.Methods ?? ["*"]).join(", ");
  headers["Access-Control-Allow-Headers"] = safeTokens(cors.Headers ?? ["*"]).join(", ");
  if (cors.MaxAge !== undefined) headers["Access-Control-Max-Age"] = String(cors.MaxAge);
  return safeHeaders(headers);
}

/** The entries that are tokens (a stored row from before the check may hold others: never sent). */
function safeTokens(entries: readonly string[]): string[] {
  return entries.filter((entry) => CORS_TOKEN_PATTERN.test(entry));
}

/** A header value a Response accepts: visible Latin-1 and spaces/tabs, no CR, LF or NUL. */
const HEADER_VALUE_PATTERN = /^[\t\x20-\x7e\x80-\xff]*$/;

/** The headers whose value a Response accepts (building the answer never throws). */
export function safeHeaders(headers: Record<string, string>): Record<string, string> {
  const safe: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (CORS_TOKEN_PATTERN.test(name) && HEADER_VALUE_PATTERN.test(value)) safe[name] = value;
  }
  return safe;
}

/** The CORS headers of an answer to `request` (none unless CorsConfig.Enable and the Origin is allowed). */
export function corsHeadersFor(desc: HttpTriggerDesc, request: Request): Record<string, string> {
  const cors = desc.CorsConfig;
  const origin = request.headers.get("origin");
  if (!cors?.Enable || origin === null) return {};
  const origins = cors.Origins ?? ["*"];
  if (!origins.includes("*") && !origins.includes(origin)) return {};
  // Credentials only with exact origins (a row stored before that was checked never gets both).
  const credentials = cors.Credentials === true && !origins.includes("*");
  const headers: Record<string, string> = {
    "Access-Control-Allow-Origin": credentials ? origin : origins.includes("*") ? "*" : origin,
    "Access-Control-Expose-Headers": [REQUEST_ID_HEADER, ...safeTokens(cors.ExposeHeaders ?? [])].join(", "),
    Vary: "Origin",
  };
  if (credentials) headers["Access-Control-Allow-Credentials"] = "true";
  return safeHeaders(headers);
}

/** The event's body: text when the bytes are UTF-8, else base64 with isBase64Encoded. */
export function eventBodyOf(bytes: Uint8Array): { body: string; isBase64Encoded: boolean } {
  try {
    return { body: new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes), isBase64Encoded: false };
  } catch {
    return { body: toBase64(bytes), isBase64Encoded: true };
  }
}

/** Query parameters: one value as a string, a repeated parameter as the list of its values. */
function queryOf(url: URL): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  for (const key of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(key);
    query[key] = values.length === 1 ? (values[0] as string) : values;
  }
  return query;
}

/** True when an Authorization value carries the platform's own credentials (Bearer id:key, or a TC3 signature). */
export function isPlatformAuthorization(value: string): boolean {
  return parseBearer(value.trim()) !== undefined || /^\s*TC3-HMAC-SHA256\b/i.test(value);
}

/**
 * The event's headers: lower-case names, without the edge's own headers and the platform's
 * credentials: under CAM no Authorization and no `x-tc-*` signature headers (a retry signed afresh
 * with the same Idempotency-Key builds the same event); under NONE an Authorization in the
 * platform's own schemes is left out too, any other scheme is the handler's.
 */
function eventHeadersOf(request: Request, cam: boolean): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of request.headers) {
    const lower = name.toLowerCase();
    if (EDGE_HEADERS.has(lower)) continue;
    if (lower === "authorization" && (cam || isPlatformAuthorization(value))) continue;
    if (cam && lower.startsWith(SIGNATURE_HEADER_PREFIX)) continue;
    headers[lower] = value;
  }
  return headers;
}

/** What the event's requestContext and shape need beyond the request. */
export interface GatewayEventContext {
  triggerName: string;
  /** The gateway's id of the request (requestContext.requestId). */
  gatewayRequestId: string;
  /** The caller's SecretId under CAM ({} identity under NONE). */
  secretId?: string | undefined;
  /** AuthType CAM: credentials and signature headers never reach the event. */
  cam: boolean;
}

/** The API Gateway event (SCF reference §1.2) of a function URL request. */
export function gatewayEventOf(
  request: Request,
  subpath: string,
  bytes: Uint8Array,
  context: GatewayEventContext,
): Record<string, unknown> {
  const url = new URL(request.url);
  const query = queryOf(url);
  const { body, isBase64Encoded } = eventBodyOf(bytes);
  return {
    requestContext: {
      serviceId: context.triggerName,
      path: subpath,
      httpMethod: request.method,
      requestId: context.gatewayRequestId,
      identity: context.secretId !== undefined ? { secretId: context.secretId } : {},
      sourceIp: request.headers.get("cf-connecting-ip") ?? "",
      stage: STAGE,
    },
    headers: eventHeadersOf(request, context.cam),
    body,
    isBase64Encoded,
    pathParameters: {},
    queryStringParameters: query,
    headerParameters: {},
    stageVariables: { stage: STAGE },
    path: subpath,
    queryString: query,
    httpMethod: request.method,
  };
}

/** The gateway request id: random, or derived from the Idempotency-Key (a retry builds the same event). */
async function gatewayRequestIdOf(urlId: string, idempotencyKey: string | undefined): Promise<string> {
  if (idempotencyKey === undefined) return crypto.randomUUID();
  const digest = await sha256Hex(`${urlId}\n${idempotencyKey}`);
  return `${digest.slice(0, 8)}-${digest.slice(8, 12)}-${digest.slice(12, 16)}-${digest.slice(16, 20)}-${digest.slice(20, 32)}`;
}

/**
 * Accepts a request to a function URL: finds its enabled trigger (NOT_FOUND otherwise), checks
 * its credentials under CAM (UNAUTHORIZED without valid ones, NOT_FOUND for credentials that do not
 * reach the trigger's namespace), reads the body (at most MAX_ASYNC_PAYLOAD_BYTES), builds the
 * API Gateway event (at most MAX_ASYNC_PAYLOAD_BYTES of JSON: PAYLOAD_TOO_LARGE) and invokes the
 * trigger's qualifier with invoke type APIGW and the request's Idempotency-Key, if any.
 */
export async function acceptFunctionUrlRequest(env: Env, input: FunctionUrlRequest): Promise<FunctionUrlAnswer> {
  const row = await httpTriggerOf(env, input.urlId);
  const desc = storedHttpTriggerDesc(row.triggerDesc);
  const readBody = () => readRequestBody(input.body, MAX_ASYNC_PAYLOAD_BYTES);
  let secretId: string | undefined;
  if (desc.AuthType === "CAM") {
    const result = await authenticate(env, input.request, readBody, functionUrlOperation(input.request));
    if (!result.ok) throw new PlatformError("UNAUTHORIZED", `${result.failure}: ${result.message}`);
    if (!canAccessNamespace(result.principal, row.namespace)) {
      throw new PlatformError("NOT_FOUND", "no function URL here");
    }
    secretId = result.principal.secretId;
  }
  const keyHeader = input.request.headers.get("idempotency-key") ?? undefined;
  const idempotencyKey = keyHeader === undefined ? undefined : checkIdempotencyKey(keyHeader, "Idempotency-Key");
  const bytes = await readBody();
  const event = gatewayEventOf(input.request, input.subpath, bytes, {
    triggerName: row.name,
    gatewayRequestId: await gatewayRequestIdOf(input.urlId, idempotencyKey),
    secretId,
    cam: desc.AuthType === "CAM",
  });
  const payloadText = JSON.stringify(event);
  if (new TextEncoder().encode(payloadText).byteLength > MAX_ASYNC_PAYLOAD_BYTES) {
    throw new PlatformError(
      "PAYLOAD_TOO_LARGE",
      `the API Gateway event of this request is over ${MAX_ASYNC_PAYLOAD_BYTES} bytes of JSON (the body and headers count)`,
      { limitBytes: MAX_ASYNC_PAYLOAD_BYTES },
    );
  }
  const isPublic = desc.AuthType === "NONE";
  let answer: InvocationAnswer;
  try {
    answer = await invokeTrigger(env, row, {
      payloadText,
      idempotencyKey: idempotencyKey === undefined ? undefined : await functionUrlKey(row, idempotencyKey),
      callerSecretId: secretId,
    });
  } catch (error) {
    if (isPublic && toPlatformError(error)?.code === "IDEMPOTENCY_KEY_REUSED") admitReplay(row);
    throw isPublic ? publicError(error) : error;
  }
  if (isPublic && answer.idempotentReplay) {
    try {
      admitReplay(row);
    } catch (error) {
      throw publicError(error);
    }
  }
  return { answer, corsHeaders: corsHeadersFor(desc, input.request) };
}

/**
 * The signature ledger's operation of a function URL request: always mutating (every request may
 * create an event), so a TC3 signature is never accepted twice, whatever the method.
 */
export function functionUrlOperation(request: Request): SignedOperation {
  return { name: `${request.method} ${new URL(request.url).pathname}`, mutating: true };
}

/**
 * The idempotency key a function URL's Idempotency-Key becomes: `http.<trigger id>.<hash>`, in the
 * function URL's own key space (a caller of the URL can neither reserve nor probe the keys the
 * function's owner invokes with), like the queue and cos triggers' keys.
 */
export function functionUrlKey(row: TriggerRow, idempotencyKey: string): Promise<string> {
  return deliveryKey("http", row, ["idempotency-key", idempotencyKey]);
}

/** Admits one duplicate-key answer to a public caller of the URL (the read limit, per trigger). */
function admitReplay(row: TriggerRow): void {
  admitRead(`function-url:${row.id}`);
}

/** Generic messages for a public (AuthType NONE) caller: no function name, no limits' figures. */
const PUBLIC_MESSAGES: Partial<Record<number, string>> = {
  404: "no function URL here",
  409: "this Idempotency-Key was used for another request",
  413: "the request is too large",
  429: "too many requests; retry later",
  503: "unavailable; retry later",
};

/**
 * What a public caller is told of an invocation's refusal: the same code and status, a generic
 * message, and only `retryAfterSeconds` of its details (the Retry-After header).
 */
export function publicError(error: unknown): unknown {
  const known = toPlatformError(error);
  if (!known) return error;
  const retryAfter = known.details?.retryAfterSeconds;
  return new PlatformError(
    known.code,
    PUBLIC_MESSAGES[known.status] ?? "the request could not be accepted",
    typeof retryAfter === "number" ? { retryAfterSeconds: retryAfter } : undefined,
  );
}

/** The trigger's parsed TriggerDesc for a CORS preflight, or undefined when it answers none. */
export async function functionUrlPreflight(
  env: Pick<Env, "DB">,
  urlId: string,
  request: Request,
): Promise<Record<string, string> | undefined> {
  if (request.method !== "OPTIONS" || !request.headers.has("access-control-request-method")) return undefined;
  const row = await httpTriggerOf(env, urlId);
  return corsPreflight(storedHttpTriggerDesc(row.triggerDesc), request);
}
