import type { MiddlewareHandler } from "hono";
import { PlatformError } from "../shared/errors";
import { namespaceSchema } from "../shared/names";
import { MAX_JSON_BODY_BYTES, parseWith, readRequestBody } from "../shared/validation";
import { CredentialStore } from "./credential-store";
import { canAccessNamespace, constantTimeEqual, type Principal } from "./principal";
import { recordSignatureUse, type SignedOperation } from "./signature-ledger";
import { acceptedServices, parseTc3Authorization, TC3_SERVICE, type Tc3Failure, verifyTc3 } from "./tc3";

export { canAccessNamespace, type Principal } from "./principal";

/** Hono variables set by requireCredentials. */
export interface AuthVariables {
  principal: Principal;
}

/** The Hono environment of every authenticated route: the Worker's bindings and the caller. */
export type AppEnv = { Bindings: Env; Variables: AuthVariables };

/** Validates a namespace from a path and that the caller may see it (not-found otherwise). */
export function visibleNamespace(principal: Principal, raw: string | undefined): string {
  const namespace = parseWith(namespaceSchema, raw);
  if (!canAccessNamespace(principal, namespace)) {
    throw new PlatformError("NOT_FOUND", `namespace ${namespace} not found`);
  }
  return namespace;
}

/** Parses `Authorization: Bearer <SecretId>:<SecretKey>`. */
export function parseBearer(header: string | undefined): { secretId: string; secretKey: string } | undefined {
  const match = /^Bearer ([^:\s]+):(\S+)$/.exec(header ?? "");
  if (!match?.[1] || !match[2]) return undefined;
  return { secretId: match[1], secretKey: match[2] };
}

/** The outcome of authenticating one request. */
export type Authentication = { ok: true; principal: Principal } | { ok: false; failure: Tc3Failure; message: string };

const FAILURE_MESSAGES: Record<Tc3Failure, string> = {
  "AuthFailure.InvalidAuthorization": "the Authorization header is missing or malformed",
  "AuthFailure.SecretIdNotFound": "the SecretId is unknown or revoked",
  "AuthFailure.SignatureExpire": "the request timestamp is more than 5 minutes from the server's clock",
  "AuthFailure.SignatureFailure": "the signature or the credentials do not match",
};

function fail(failure: Tc3Failure, message = FAILURE_MESSAGES[failure]): Authentication {
  return { ok: false, failure, message };
}

/**
 * Authenticates a request signed with TC3-HMAC-SHA256 (Tencent Cloud API 3.0) or carrying
 * `Authorization: Bearer <SecretId>:<SecretKey>`. For a signature, `readBody` gives the body's
 * bytes (a bounded reader: the caller's limit applies before any hashing), and the signature is
 * recorded in the signature ledger for `operation`: a replay of a mutating operation, or the same
 * signature for another operation (but a read right after a change, see SignatureLedgerObject),
 * is refused with AuthFailure.SignatureFailure.
 */
export async function authenticate(
  env: Env,
  request: Request,
  readBody: () => Promise<Uint8Array>,
  operation: SignedOperation,
): Promise<Authentication> {
  const header = request.headers.get("authorization") ?? undefined;
  const store = new CredentialStore(env);
  const bearer = parseBearer(header);
  if (bearer) {
    const credential = await store.resolve(bearer.secretId);
    if (!credential) return fail("AuthFailure.SecretIdNotFound");
    if (!(await constantTimeEqual(bearer.secretKey, credential.secretKey))) return fail("AuthFailure.SignatureFailure");
    return { ok: true, principal: principalOf(credential) };
  }
  const signed = parseTc3Authorization(header);
  if (!signed) return fail("AuthFailure.InvalidAuthorization");
  const services = acceptedServices(request.headers.get("host") ?? new URL(request.url).host);
  if (!services.includes(signed.service)) {
    return fail(
      "AuthFailure.InvalidAuthorization",
      `the credential scope's service must be ${TC3_SERVICE} (or the first label of this endpoint's host)`,
    );
  }
  const timestamp = Number(request.headers.get("x-tc-timestamp"));
  if (!Number.isInteger(timestamp) || timestamp <= 0) return fail("AuthFailure.InvalidAuthorization");
  const credential = await store.resolve(signed.secretId);
  if (!credential) return fail("AuthFailure.SecretIdNotFound");
  const url = new URL(request.url);
  const failure = await verifyTc3({
    authorization: signed,
    secretKey: credential.secretKey,
    method: request.method,
    path: url.pathname,
    query: url.search.slice(1),
    headers: request.headers,
    urlHost: url.host,
    body: await readBody(),
    timestamp,
    nowSeconds: Math.floor(Date.now() / 1000),
  });
  if (failure) return fail(failure);
  const verdict = await recordSignatureUse(env, signed.signature, operation);
  if (!verdict.ok) return fail("AuthFailure.SignatureFailure", verdict.message);
  return { ok: true, principal: principalOf(credential) };
}

/** Methods that only read: a REST request with one of them may repeat its signature. */
const READ_ONLY_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** The operation of a REST request for the signature ledger: its method and path. */
export function restOperation(request: Request): SignedOperation {
  return {
    name: `${request.method} ${new URL(request.url).pathname}`,
    mutating: !READ_ONLY_METHODS.has(request.method),
  };
}

function principalOf(credential: Principal): Principal {
  return { secretId: credential.secretId, namespaces: credential.namespaces, admin: credential.admin };
}

/**
 * Most bytes a TC3 signature check reads from a request that is not a code upload: a caller who
 * knows only a SecretId (it travels in every Authorization header) must not make the Worker buffer
 * and hash a full code package. Every other route's own body limit is at most this.
 */
export const MAX_SIGNED_BODY_BYTES = 1024 * 1024;

/** REST routes that carry a code package (function creation and code upload) and so may be large. */
const CODE_UPLOAD_ROUTE = /^\/v1\/namespaces\/[^/]+\/functions(\/[^/]+\/code)?$/;

/** The bytes a signature check may read for a REST request. */
export function signedBodyLimit(method: string, path: string): number {
  const upload = (method === "POST" || method === "PUT") && CODE_UPLOAD_ROUTE.test(path);
  return upload ? MAX_JSON_BODY_BYTES : MAX_SIGNED_BODY_BYTES;
}

/** Requires credentials (TC3 signature or bearer) on every route it guards. */
export function requireCredentials(): MiddlewareHandler<{ Bindings: Env; Variables: AuthVariables }> {
  return async function credentials(c, next) {
    const result = await authenticate(
      c.env,
      c.req.raw,
      () => readRequestBody(c.req, signedBodyLimit(c.req.method, c.req.path)),
      restOperation(c.req.raw),
    );
    if (!result.ok) throw new PlatformError("UNAUTHORIZED", `${result.failure}: ${result.message}`);
    c.set("principal", result.principal);
    await next();
  };
}

/** Requires the caller to be an administrator (may manage credentials). */
export function requireAdmin(): MiddlewareHandler<{ Bindings: Env; Variables: AuthVariables }> {
  return async function admin(c, next) {
    if (!c.var.principal.admin) throw new PlatformError("NOT_FOUND", `no route ${c.req.method} ${c.req.path}`);
    await next();
  };
}
