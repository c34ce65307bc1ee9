// Sends fuzz cases to the Worker (SELF) with the credentials they ask for, signing TC3 requests as
// the official SDKs do (or tampering with the signature as the case says), and judges the answers.
import { SELF } from "cloudflare:test";
import { utcDate } from "../../worker/auth/tc3";
import { hex, sha256Hex } from "../../worker/shared/encoding";
import type { BodySpec } from "./fuzz-fields";
import { ADMIN_KEY_TOKEN, type AuthSpec, type FuzzCase, SCOPED_ID_TOKEN, VICTIM_ID_TOKEN } from "./fuzz-model";

/** Origin every case is sent to. */
const ORIGIN = "https://platform.test";
/** Size of the chunks a streamed body is written in. */
const STREAM_CHUNK_BYTES = 64 * 1024;
/** Bodies up to this size are built in memory; larger ones are generated chunk by chunk. */
const IN_MEMORY_BODY_BYTES = 2 * 1024 * 1024;
/** Longest excerpt of a response kept in a failure report. */
const REPORTED_RESPONSE_CHARS = 300;

/** A SecretId/SecretKey pair. */
export interface KeyPair {
  secretId: string;
  secretKey: string;
}

/** The keys cases refer to. */
export interface FuzzKeys {
  admin: KeyPair;
  scoped: KeyPair;
  /** A stored key that serves only as a revocation target. */
  victimId: string;
}

const encoder = new TextEncoder();

function replaceTokens(text: string, keys: FuzzKeys): string {
  return text
    .replaceAll(SCOPED_ID_TOKEN, keys.scoped.secretId)
    .replaceAll(VICTIM_ID_TOKEN, keys.victimId)
    .replaceAll(ADMIN_KEY_TOKEN, keys.admin.secretKey);
}

/** The bytes of an oversized body, chunk by chunk: the JSON prefix, then spaces up to `bytes`. */
function* oversizedChunks(prefix: string, bytes: number): Generator<Uint8Array> {
  const head = encoder.encode(prefix);
  yield head;
  const spaces = new Uint8Array(STREAM_CHUNK_BYTES).fill(0x20);
  for (let remaining = bytes - head.byteLength; remaining > 0; remaining -= STREAM_CHUNK_BYTES) {
    yield remaining >= STREAM_CHUNK_BYTES ? spaces : spaces.subarray(0, remaining);
  }
}

function streamOf(chunks: Iterable<Uint8Array>): ReadableStream<Uint8Array> {
  const iterator = chunks[Symbol.iterator]();
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = iterator.next();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
  });
}

/** SHA-256 (hex) of a body generated chunk by chunk, without holding it in memory. */
async function streamedSha256Hex(chunks: Iterable<Uint8Array>): Promise<string> {
  const digest = new crypto.DigestStream("SHA-256");
  const writer = digest.getWriter();
  for (const chunk of chunks) await writer.write(chunk);
  await writer.close();
  return [...new Uint8Array(await digest.digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** A body ready to send, with its SHA-256 for a TC3 signature. */
interface PreparedBody {
  body: BodyInit | null;
  sha256: string;
}

async function prepareBody(spec: BodySpec, keys: FuzzKeys): Promise<PreparedBody> {
  if (spec.kind === "none") return { body: null, sha256: await sha256Hex(new Uint8Array()) };
  if (spec.kind === "text") {
    const bytes = encoder.encode(replaceTokens(spec.text, keys));
    return { body: bytes, sha256: await sha256Hex(bytes) };
  }
  const chunks = () => oversizedChunks(spec.prefix, spec.bytes);
  if (spec.bytes <= IN_MEMORY_BODY_BYTES) {
    const bytes = new Uint8Array(spec.bytes);
    let offset = 0;
    for (const chunk of chunks()) {
      bytes.set(chunk, offset);
      offset += chunk.byteLength;
    }
    const sha256 = await sha256Hex(bytes);
    return { body: spec.streamed ? streamOf(splitChunks(bytes)) : bytes, sha256 };
  }
  const sha256 = await streamedSha256Hex(chunks());
  if (spec.streamed) return { body: streamOf(chunks()), sha256 };
  // A known length: sent with Content-Length although it is generated chunk by chunk.
  const fixed = new FixedLengthStream(spec.bytes);
  // The server may refuse the body before reading it all: the write side then fails, as expected.
  streamOf(chunks())
    .pipeTo(fixed.writable)
    .catch(() => undefined);
  return { body: fixed.readable, sha256 };
}

function* splitChunks(bytes: Uint8Array): Generator<Uint8Array> {
  for (let offset = 0; offset < bytes.byteLength; offset += STREAM_CHUNK_BYTES) {
    yield bytes.subarray(offset, offset + STREAM_CHUNK_BYTES);
  }
}

async function hmac(key: Uint8Array, message: string): Promise<Uint8Array> {
  const cryptoKey = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", cryptoKey, encoder.encode(message)));
}

/**
 * TC3-HMAC-SHA256 as a client computes it (Tencent Cloud API 3.0), from the body's SHA-256 so that
 * a body generated chunk by chunk can be signed. Independent of the server's implementation.
 */
async function clientSignature(input: {
  secretKey: string;
  method: string;
  path: string;
  query: string;
  canonicalHeaders: string;
  signedHeaders: string;
  payloadSha256: string;
  timestamp: number;
  date: string;
  service: string;
}): Promise<string> {
  const canonicalRequest = [
    input.method,
    input.path,
    input.query,
    input.canonicalHeaders,
    input.signedHeaders,
    input.payloadSha256,
  ].join("\n");
  const scope = `${input.date}/${input.service}/tc3_request`;
  const stringToSign = ["TC3-HMAC-SHA256", String(input.timestamp), scope, await sha256Hex(canonicalRequest)].join(
    "\n",
  );
  const secretDate = await hmac(encoder.encode(`TC3${input.secretKey}`), input.date);
  const secretService = await hmac(secretDate, input.service);
  const secretSigning = await hmac(secretService, "tc3_request");
  return hex(await hmac(secretSigning, stringToSign));
}

/** Seconds in a day (a credential scope dated the day before its timestamp). */
const DAY_SECONDS = 86_400;
/** Non-numeric X-TC-Timestamp values. */
const NON_NUMERIC_TIMESTAMPS = ["abc", "1.5e9x", "", "-5", "0"];

/** Sets the Authorization (and X-TC-Timestamp) headers a case asks for. */
async function authenticate(
  auth: AuthSpec,
  keys: FuzzKeys,
  request: { method: string; url: URL; headers: Headers; sha256: string },
): Promise<void> {
  if (auth.kind === "header") {
    if (auth.header !== undefined) request.headers.set("authorization", replaceTokens(auth.header, keys));
    return;
  }
  const key = auth.caller === "admin" ? keys.admin : keys.scoped;
  if (auth.kind === "bearer") {
    request.headers.set("authorization", `Bearer ${key.secretId}:${key.secretKey}`);
    return;
  }
  const tamper = auth.kind === "tampered" ? auth.tamper : undefined;
  const skew = auth.kind === "tampered" ? auth.skewSeconds : 0;
  const now = Math.floor(Date.now() / 1000);
  const timestamp = tamper === "stale-timestamp" ? now - skew : tamper === "future-timestamp" ? now + skew : now;
  const signedHeaders =
    tamper === "host-not-signed"
      ? ["content-type"]
      : tamper === "content-type-not-signed"
        ? ["host"]
        : ["content-type", "host"];
  const contentType = request.headers.get("content-type") ?? "";
  const canonicalHeaders = signedHeaders
    .map((name) => `${name}:${name === "host" ? request.url.hostname : contentType}\n`)
    .join("");
  const date = utcDate(tamper === "scope-date-mismatch" ? timestamp - DAY_SECONDS : timestamp);
  const service = tamper === "service-not-scf" ? "cvm" : "scf";
  const signature =
    tamper === "random-signature"
      ? await sha256Hex(`random ${skew}`)
      : await clientSignature({
          secretKey: tamper === "wrong-secret-key" ? `${key.secretKey}x` : key.secretKey,
          method: request.method,
          path: request.url.pathname,
          query: request.url.search.slice(1),
          canonicalHeaders,
          signedHeaders: signedHeaders.join(";"),
          payloadSha256:
            tamper === "body-changed-after-signing" ? await sha256Hex(`${request.sha256} changed`) : request.sha256,
          timestamp,
          date,
          service,
        });
  const secretId = tamper === "unknown-secret-id" ? "AKIDnosuchkey" : key.secretId;
  const algorithm = tamper === "wrong-algorithm" ? "TC3-HMAC-SHA1" : "TC3-HMAC-SHA256";
  const signedHeaderList = tamper === "upper-case-signed-headers" ? "Content-Type;Host" : signedHeaders.join(";");
  request.headers.set(
    "authorization",
    `${algorithm} Credential=${secretId}/${date}/${service}/tc3_request, SignedHeaders=${signedHeaderList}, Signature=${signature}`,
  );
  if (tamper === "missing-timestamp") return;
  request.headers.set(
    "x-tc-timestamp",
    tamper === "non-numeric-timestamp"
      ? (NON_NUMERIC_TIMESTAMPS[skew % NON_NUMERIC_TIMESTAMPS.length] as string)
      : String(timestamp),
  );
}

/** Sends one case and returns the answer. */
export async function sendCase(fuzzCase: FuzzCase, keys: FuzzKeys): Promise<Response> {
  const url = new URL(replaceTokens(fuzzCase.target, keys), ORIGIN);
  const headers = new Headers(fuzzCase.headers);
  const prepared = await prepareBody(fuzzCase.body, keys);
  await authenticate(fuzzCase.auth, keys, { method: fuzzCase.method, url, headers, sha256: prepared.sha256 });
  return SELF.fetch(url, { method: fuzzCase.method, headers, body: prepared.body });
}

/** What is wrong with an answer (empty: a well-formed refusal). */
export interface Verdict {
  status: number;
  /** The REST error code or the Tencent Error.Code, when the answer has one. */
  code: string | undefined;
  problems: string[];
  /** The start of the answer, for reports. */
  excerpt: string;
}

/** Secrets no answer may contain. */
export function secretsOf(env: { MASTER_KEY?: string; DEV_SECRET_KEY?: string }, keys: FuzzKeys): string[] {
  return [env.MASTER_KEY, env.DEV_SECRET_KEY, keys.admin.secretKey, keys.scoped.secretKey].filter(
    (secret): secret is string => typeof secret === "string" && secret.length > 0,
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Reads an answer's JSON, or records why it is not JSON. */
async function readJson(response: Response, problems: string[]): Promise<{ text: string; json: unknown }> {
  const text = await response.text();
  if (!(response.headers.get("content-type") ?? "").includes("application/json")) {
    problems.push(`content-type ${response.headers.get("content-type") ?? "missing"}`);
  }
  try {
    return { text, json: JSON.parse(text) };
  } catch {
    problems.push("answer is not JSON");
    return { text, json: undefined };
  }
}

/**
 * Judges an answer to a malformed request. REST: a 4xx with exactly
 * `{error: {code, message, requestId}}` (strings). Tencent: HTTP 200 with exactly
 * `{Response: {Error: {Code, Message}, RequestId}}`, never InternalError, and the expected code
 * when the case determines one. Neither may contain a secret.
 */
export async function judge(fuzzCase: FuzzCase, response: Response, secrets: readonly string[]): Promise<Verdict> {
  const problems: string[] = [];
  const status = response.status;
  const streaming = (response.headers.get("content-type") ?? "").includes("text/event-stream");
  if (streaming || (!fuzzCase.tencent && status < 400)) {
    // Accepted: do not wait on a stream that may never end.
    await response.body?.cancel();
    problems.push(status >= 500 ? "5xx" : `accepted with ${status}`);
    return { status, code: undefined, problems, excerpt: "" };
  }
  const { text, json } = await readJson(response, problems);
  for (const secret of secrets) if (text.includes(secret)) problems.push("answer contains a secret");
  const code = fuzzCase.tencent ? judgeTencent(status, json, fuzzCase, problems) : judgeRest(status, json, problems);
  return { status, code, problems, excerpt: text.slice(0, REPORTED_RESPONSE_CHARS) };
}

function judgeRest(status: number, json: unknown, problems: string[]): string | undefined {
  if (status >= 500) problems.push("5xx");
  const error = isRecord(json) ? json.error : undefined;
  if (!isRecord(json) || Object.keys(json).join() !== "error" || !isRecord(error)) {
    problems.push("REST envelope is not {error}");
    return undefined;
  }
  if (Object.keys(error).sort().join() !== "code,message,requestId")
    problems.push("error keys are not code, message, requestId");
  for (const field of ["code", "message", "requestId"]) {
    if (typeof error[field] !== "string" || error[field] === "")
      problems.push(`error.${field} is not a non-empty string`);
  }
  return typeof error.code === "string" ? error.code : undefined;
}

function judgeTencent(status: number, json: unknown, fuzzCase: FuzzCase, problems: string[]): string | undefined {
  if (status >= 500) problems.push("5xx");
  else if (status !== 200) problems.push(`Tencent answer with HTTP ${status}`);
  const body = isRecord(json) ? json.Response : undefined;
  if (!isRecord(json) || Object.keys(json).join() !== "Response" || !isRecord(body)) {
    problems.push("Tencent envelope is not {Response}");
    return undefined;
  }
  const error = body.Error;
  if (!isRecord(error)) {
    problems.push("accepted: Response has no Error");
    return undefined;
  }
  if (Object.keys(body).sort().join() !== "Error,RequestId") problems.push("Response keys are not Error, RequestId");
  if (typeof body.RequestId !== "string" || body.RequestId === "") problems.push("RequestId is not a non-empty string");
  if (Object.keys(error).sort().join() !== "Code,Message") problems.push("Error keys are not Code, Message");
  if (typeof error.Code !== "string" || typeof error.Message !== "string")
    problems.push("Error.Code/Message not strings");
  const code = typeof error.Code === "string" ? error.Code : undefined;
  if (code === "InternalError") problems.push("InternalError (a server error)");
  if (fuzzCase.expectedCode !== undefined && code !== fuzzCase.expectedCode) {
    problems.push(`expected ${fuzzCase.expectedCode}`);
  }
  return code;
}
