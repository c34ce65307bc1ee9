// A reference TC3-HMAC-SHA256 signer written from Tencent Cloud's API 3.0 specification ("Signature
// v3"), sharing no code with the platform's verifier (worker/auth/tc3.ts): its own hashing, hex,
// canonical request, date and key derivation. Tests sign with it so that a bug
// shared by a signer and a verifier written together cannot hide.

/** What one signed Tencent Cloud API 3.0 request is made of. */
export interface ReferenceRequest {
  secretId: string;
  secretKey: string;
  /** Unix seconds, sent as X-TC-Timestamp. */
  timestamp: number;
  host: string;
  action: string;
  body: string;
  /** Credential scope's service (the product's name, `scf`). */
  service?: string;
  contentType?: string;
  version?: string;
  region?: string;
}

const utf8 = new TextEncoder();

function toHex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

async function sha256Hex(text: string): Promise<string> {
  return toHex(await crypto.subtle.digest("SHA-256", utf8.encode(text)));
}

async function hmacSha256(key: Uint8Array, text: string): Promise<Uint8Array> {
  const imported = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", imported, utf8.encode(text)));
}

/** YYYY-MM-DD of a Unix time in UTC, as the credential scope names the day. */
function scopeDate(timestamp: number): string {
  const date = new Date(timestamp * 1000);
  const pad = (value: number) => String(value).padStart(2, "0");
  return `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}`;
}

/**
 * The headers of a POST / request signed as the specification describes: the canonical request
 * over content-type and host, the string to sign, and the key derived from "TC3" + SecretKey through
 * the date, the service and "tc3_request".
 */
export async function referenceSignedHeaders(request: ReferenceRequest): Promise<Record<string, string>> {
  const service = request.service ?? "scf";
  const contentType = request.contentType ?? "application/json";
  const signedHeaders = "content-type;host";
  const canonicalRequest = [
    "POST",
    "/",
    "",
    `content-type:${contentType}\nhost:${request.host}\n`,
    signedHeaders,
    await sha256Hex(request.body),
  ].join("\n");
  const date = scopeDate(request.timestamp);
  const credentialScope = `${date}/${service}/tc3_request`;
  const stringToSign = [
    "TC3-HMAC-SHA256",
    String(request.timestamp),
    credentialScope,
    await sha256Hex(canonicalRequest),
  ].join("\n");
  const secretDate = await hmacSha256(utf8.encode(`TC3${request.secretKey}`), date);
  const secretService = await hmacSha256(secretDate, service);
  const secretSigning = await hmacSha256(secretService, "tc3_request");
  const signature = toHex((await hmacSha256(secretSigning, stringToSign)).buffer as ArrayBuffer);
  return {
    "content-type": contentType,
    authorization: `TC3-HMAC-SHA256 Credential=${request.secretId}/${credentialScope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
    "x-tc-action": request.action,
    "x-tc-version": request.version ?? "2018-04-16",
    "x-tc-timestamp": String(request.timestamp),
    "x-tc-region": request.region ?? "ap-guangzhou",
  };
}
