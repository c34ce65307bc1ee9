// A reference TC3-HMAC-SHA256 signer written from Tencent Cloud's API 3.0 specification ("Signature
// v3"), sharing no code with the platform's verifier (worker/auth/tc3.ts): node:crypto instead of
// WebCrypto, its own canonical request, date and key derivation. Tests sign with it so that a bug
// shared by a signer and a verifier written together cannot hide.
import { createHash, createHmac } from "node:crypto";

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

function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

function hmacSha256(key: string | Buffer, text: string): Buffer {
  return createHmac("sha256", key).update(text, "utf8").digest();
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
export function referenceSignedHeaders(request: ReferenceRequest): Record<string, string> {
  const service = request.service ?? "scf";
  const contentType = request.contentType ?? "application/json";
  const signedHeaders = "content-type;host";
  const canonicalRequest = [
    "POST",
    "/",
    "",
    `content-type:${contentType}\nhost:${request.host}\n`,
    signedHeaders,
    sha256Hex(request.body),
  ].join("\n");
  const date = scopeDate(request.timestamp);
  const credentialScope = `${date}/${service}/tc3_request`;
  const stringToSign = [
    "TC3-HMAC-SHA256",
    String(request.timestamp),
    credentialScope,
    sha256Hex(canonicalRequest),
  ].join("\n");
  const secretDate = hmacSha256(`TC3${request.secretKey}`, date);
  const secretService = hmacSha256(secretDate, service);
  const secretSigning = hmacSha256(secretService, "tc3_request");
  const signature = createHmac("sha256", secretSigning).update(stringToSign, "utf8").digest("hex");
  return {
    "content-type": contentType,
    authorization: `TC3-HMAC-SHA256 Credential=${request.secretId}/${credentialScope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
    "x-tc-action": request.action,
    "x-tc-version": request.version ?? "2018-04-16",
    "x-tc-timestamp": String(request.timestamp),
    "x-tc-region": request.region ?? "ap-guangzhou",
  };
}
