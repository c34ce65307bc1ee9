import type { MiddlewareHandler } from "hono";
import { PlatformError } from "../shared/errors";

/** Who is calling, and which namespaces the credentials reach ("*" for all). */
export interface Principal {
  secretId: string;
  namespaces: "*" | readonly string[];
}

/** Hono variables set by requireCredentials. */
export interface AuthVariables {
  principal: Principal;
}

const encoder = new TextEncoder();

/** Compares two strings in time independent of where they differ. */
export async function constantTimeEqual(a: string, b: string): Promise<boolean> {
  // Hash first so that lengths do not leak and both buffers have the same size.
  const [left, right] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(a)),
    crypto.subtle.digest("SHA-256", encoder.encode(b)),
  ]);
  return crypto.subtle.timingSafeEqual(left, right);
}

/** Parses `Authorization: Bearer <SecretId>:<SecretKey>`. */
export function parseBearer(header: string | undefined): { secretId: string; secretKey: string } | undefined {
  const match = /^Bearer ([^:\s]+):(\S+)$/.exec(header ?? "");
  if (!match?.[1] || !match[2]) return undefined;
  return { secretId: match[1], secretKey: match[2] };
}

/**
 * Requires credentials on every route it guards. Accepted today: the development pair from the
 * DEV_SECRET_ID / DEV_SECRET_KEY Worker secrets, with access to every namespace. Without them
 * configured, every request is refused.
 */
export function requireCredentials(): MiddlewareHandler<{ Bindings: Env; Variables: AuthVariables }> {
  return async function credentials(c, next) {
    const presented = parseBearer(c.req.header("authorization"));
    if (!presented) {
      throw new PlatformError("UNAUTHORIZED", "credentials required: Authorization: Bearer <SecretId>:<SecretKey>");
    }
    const expectedId = c.env.DEV_SECRET_ID;
    const expectedKey = c.env.DEV_SECRET_KEY;
    const valid =
      typeof expectedId === "string" &&
      typeof expectedKey === "string" &&
      expectedId.length > 0 &&
      expectedKey.length > 0 &&
      (await constantTimeEqual(presented.secretId, expectedId)) &&
      (await constantTimeEqual(presented.secretKey, expectedKey));
    if (!valid) throw new PlatformError("UNAUTHORIZED", "invalid credentials");
    c.set("principal", { secretId: presented.secretId, namespaces: "*" });
    await next();
  };
}

/** True when the principal may act in the namespace. Callers answer not-found otherwise. */
export function canAccessNamespace(principal: Principal, namespace: string): boolean {
  return principal.namespaces === "*" || principal.namespaces.includes(namespace);
}
