/** Who is calling, and which namespaces the credentials reach ("*" for all). */
export interface Principal {
  secretId: string;
  namespaces: "*" | readonly string[];
  /** May manage credentials (the development pair only). */
  admin: boolean;
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

/** True when the principal may act in the namespace. Callers answer not-found otherwise. */
export function canAccessNamespace(principal: Principal, namespace: string): boolean {
  return principal.namespaces === "*" || principal.namespaces.includes(namespace);
}
