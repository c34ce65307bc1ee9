// TC3-HMAC-SHA256, Tencent Cloud API 3.0's request signature, verified on the server side.
import { hex, sha256Hex } from "../shared/encoding";
import { constantTimeEqual } from "./principal";

/** How far a request's X-TC-Timestamp may be from now. */
export const MAX_CLOCK_SKEW_SECONDS = 300;

/** The service a credential scope names: this endpoint speaks SCF. */
export const TC3_SERVICE = "scf";

/**
 * The services a credential scope may name for a request sent to `host`: `scf`, or the first
 * label of the host the client was pointed at, which is what the official SDKs sign (they derive
 * the service from the endpoint: `scf` for scf.tencentcloudapi.com, `127` for 127.0.0.1:8787).
 * Any other service (a signature made for another service's scope) is refused.
 */
export function acceptedServices(host: string): string[] {
  const hostname = host.includes(":") && !host.startsWith("[") ? host.slice(0, host.lastIndexOf(":")) : host;
  const label = hostname.toLowerCase().split(".")[0] ?? "";
  return label && label !== TC3_SERVICE ? [TC3_SERVICE, label] : [TC3_SERVICE];
}

/** Most headers a signature may cover (the SDKs sign two; a few more are tolerated). */
export const MAX_SIGNED_HEADERS = 16;

/** Header names a signature must cover, as the official SDKs sign them. */
const REQUIRED_SIGNED_HEADERS = ["content-type", "host"];

/** The parts of an `Authorization: TC3-HMAC-SHA256 ...` header. */
export interface Tc3Authorization {
  secretId: string;
  date: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

/** Why a signed request was refused (Tencent's error codes). */
export type Tc3Failure =
  | "AuthFailure.InvalidAuthorization"
  | "AuthFailure.SecretIdNotFound"
  | "AuthFailure.SignatureExpire"
  | "AuthFailure.SignatureFailure";

const encoder = new TextEncoder();

async function hmac(key: Uint8Array, message: string): Promise<Uint8Array> {
  const cryptoKey = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", cryptoKey, encoder.encode(message)));
}

/**
 * True when signed header names are as Tencent canonicalises them (and the SDKs produce them):
 * lower case, sorted, each once, none empty, at most MAX_SIGNED_HEADERS.
 */
function wellFormedSignedHeaders(names: string[]): boolean {
  if (names.length === 0 || names.length > MAX_SIGNED_HEADERS) return false;
  return names.every((name, index) => name.length > 0 && (index === 0 || (names[index - 1] ?? "") < name));
}

/** Parses the Authorization header; undefined when it is not a well-formed TC3 header. */
export function parseTc3Authorization(header: string | undefined): Tc3Authorization | undefined {
  const match =
    /^TC3-HMAC-SHA256 Credential=([^/\s]+)\/(\d{4}-\d{2}-\d{2})\/([a-z0-9.-]+)\/tc3_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(
      header?.trim() ?? "",
    );
  if (!match) return undefined;
  const [, secretId, date, service, signedHeaderList, signature] = match;
  if (!secretId || !date || !service || !signedHeaderList || !signature) return undefined;
  const signedHeaders = signedHeaderList.split(";");
  if (!wellFormedSignedHeaders(signedHeaders)) return undefined;
  return { secretId, date, service, signedHeaders, signature };
}

/** The UTC date (YYYY-MM-DD) of a Unix timestamp in seconds. */
export function utcDate(timestampSeconds: number): string {
  return new Date(timestampSeconds * 1000).toISOString().slice(0, 10);
}

/** Computes the signature of a request (the client's algorithm). */
export async function tc3Signature(input: {
  secretKey: string;
  method: string;
  path: string;
  query: string;
  canonicalHeaders: string;
  signedHeaders: string;
  body: Uint8Array;
  timestamp: number;
  service: string;
}): Promise<string> {
  const date = utcDate(input.timestamp);
  const canonicalRequest = [
    input.method,
    input.path,
    input.query,
    input.canonicalHeaders,
    input.signedHeaders,
    await sha256Hex(input.body),
  ].join("\n");
  const stringToSign = [
    "TC3-HMAC-SHA256",
    String(input.timestamp),
    `${date}/${input.service}/tc3_request`,
    await sha256Hex(canonicalRequest),
  ].join("\n");
  const secretDate = await hmac(encoder.encode(`TC3${input.secretKey}`), date);
  const secretService = await hmac(secretDate, input.service);
  const secretSigning = await hmac(secretService, "tc3_request");
  return hex(await hmac(secretSigning, stringToSign));
}

/**
 * Verifies a TC3-signed request. The canonical headers are the signed ones as received, names in
 * lower case and values trimmed. For `host`, clients sign the host name without the port (the
 * official SDKs do), so a port-bearing Host header is also tried without it.
 */
export async function verifyTc3(input: {
  authorization: Tc3Authorization;
  secretKey: string;
  method: string;
  path: string;
  query: string;
  headers: Headers;
  /** The request URL's host, used when no Host header is present (an in-process request). */
  urlHost: string;
  body: Uint8Array;
  timestamp: number;
  nowSeconds: number;
}): Promise<Tc3Failure | undefined> {
  const { authorization } = input;
  if (Math.abs(input.nowSeconds - input.timestamp) > MAX_CLOCK_SKEW_SECONDS) return "AuthFailure.SignatureExpire";
  if (authorization.date !== utcDate(input.timestamp)) return "AuthFailure.SignatureFailure";
  if (!REQUIRED_SIGNED_HEADERS.every((name) => authorization.signedHeaders.includes(name))) {
    return "AuthFailure.SignatureFailure";
  }
  // A signature over a header the request does not carry covers nothing: refused.
  if (authorization.signedHeaders.some((name) => name !== "host" && !input.headers.has(name))) {
    return "AuthFailure.SignatureFailure";
  }
  const host = input.headers.get("host") ?? input.urlHost;
  const hostVariants =
    host.includes(":") && !host.startsWith("[") ? [host, host.slice(0, host.lastIndexOf(":"))] : [host];
  for (const hostValue of hostVariants) {
    const canonicalHeaders = authorization.signedHeaders
      .map((name) => `${name}:${(name === "host" ? hostValue : (input.headers.get(name) ?? "")).trim()}\n`)
      .join("");
    const expected = await tc3Signature({
      secretKey: input.secretKey,
      method: input.method,
      path: input.path,
      query: input.query,
      canonicalHeaders,
      signedHeaders: authorization.signedHeaders.join(";"),
      body: input.body,
      timestamp: input.timestamp,
      service: authorization.service,
    });
    if (await constantTimeEqual(expected, authorization.signature)) return undefined;
  }
  return "AuthFailure.SignatureFailure";
}
