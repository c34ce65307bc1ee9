import { desc, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { type CredentialRow, credentials } from "../db/schema";
import { NAMESPACE_PATTERN } from "../functions/model";
import { fromBase64, toBase64 } from "../shared/encoding";
import { PlatformError } from "../shared/errors";
import { constantTimeEqual, type Principal } from "./principal";

/** How long an isolate trusts a looked-up credential (a revocation takes effect within this). */
export const CREDENTIAL_CACHE_TTL_MS = 2_000;

/** A credential the platform can check a request against. */
export interface ResolvedCredential extends Principal {
  secretKey: string;
}

const cache = new Map<string, { credential: ResolvedCredential | undefined; expiresAt: number }>();
const encoder = new TextEncoder();

async function masterKey(env: Env): Promise<CryptoKey> {
  const raw = env.MASTER_KEY;
  if (!raw) throw new PlatformError("UNAVAILABLE", "the MASTER_KEY secret is not set: credentials cannot be stored");
  const bytes = fromBase64(raw);
  if (bytes.byteLength !== 32) throw new PlatformError("UNAVAILABLE", "MASTER_KEY must be 32 bytes, base64");
  return crypto.subtle.importKey("raw", bytes, "AES-GCM", false, ["encrypt", "decrypt"]);
}

async function encrypt(env: Env, plain: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const cipher = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-GCM", iv }, await masterKey(env), encoder.encode(plain)),
  );
  const out = new Uint8Array(iv.byteLength + cipher.byteLength);
  out.set(iv);
  out.set(cipher, iv.byteLength);
  return toBase64(out);
}

async function decrypt(env: Env, stored: string): Promise<string> {
  const bytes = fromBase64(stored);
  const plain = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: bytes.slice(0, 12) },
    await masterKey(env),
    bytes.slice(12),
  );
  return new TextDecoder().decode(plain);
}

function randomToken(bytes: number): string {
  return toBase64(crypto.getRandomValues(new Uint8Array(bytes)))
    .replaceAll("+", "")
    .replaceAll("/", "")
    .replaceAll("=", "");
}

/** The public description of a credential: never its key. */
export function publicCredential(row: CredentialRow) {
  return {
    secretId: row.secretId,
    namespaces: JSON.parse(row.namespaces) as string[],
    description: row.description,
    createdAt: new Date(row.createdAt).toISOString(),
    revokedAt: row.revokedAt !== null ? new Date(row.revokedAt).toISOString() : null,
  };
}

/** Credentials in D1 plus the development pair from the DEV_SECRET_ID / DEV_SECRET_KEY secrets. */
export class CredentialStore {
  constructor(private readonly env: Env) {}

  /** Finds a usable credential by SecretId (revoked ones are not found). */
  async resolve(secretId: string): Promise<ResolvedCredential | undefined> {
    const devId = this.env.DEV_SECRET_ID;
    const devKey = this.env.DEV_SECRET_KEY;
    if (devId && devKey && (await constantTimeEqual(secretId, devId))) {
      return { secretId: devId, secretKey: devKey, namespaces: "*", admin: true };
    }
    const hit = cache.get(secretId);
    if (hit && hit.expiresAt > Date.now()) return hit.credential;
    const row = await drizzle(this.env.DB).select().from(credentials).where(eq(credentials.secretId, secretId)).get();
    let credential: ResolvedCredential | undefined;
    if (row && row.revokedAt === null) {
      const namespaces = JSON.parse(row.namespaces) as string[];
      credential = {
        secretId: row.secretId,
        secretKey: await decrypt(this.env, row.secretKeyEncrypted),
        namespaces: namespaces.includes("*") ? "*" : namespaces,
        admin: false,
      };
    }
    cache.set(secretId, { credential, expiresAt: Date.now() + CREDENTIAL_CACHE_TTL_MS });
    return credential;
  }

  /** Creates a pair for the namespaces; the SecretKey is returned here and never again. */
  async create(namespaces: string[], description: string) {
    for (const namespace of namespaces) {
      if (namespace !== "*" && !NAMESPACE_PATTERN.test(namespace)) {
        throw new PlatformError("INVALID_PARAMETER", `invalid namespace: ${namespace}`);
      }
    }
    const secretId = `AKID${randomToken(24).slice(0, 32)}`;
    const secretKey = randomToken(32).slice(0, 40);
    const row: CredentialRow = {
      secretId,
      secretKeyEncrypted: await encrypt(this.env, secretKey),
      namespaces: JSON.stringify([...new Set(namespaces)]),
      description,
      createdAt: Date.now(),
      revokedAt: null,
    };
    await drizzle(this.env.DB).insert(credentials).values(row);
    return { ...publicCredential(row), secretKey };
  }

  async list() {
    const rows = await drizzle(this.env.DB).select().from(credentials).orderBy(desc(credentials.createdAt));
    return rows.map(publicCredential);
  }

  async revoke(secretId: string) {
    const [row] = await drizzle(this.env.DB)
      .update(credentials)
      .set({ revokedAt: Date.now() })
      .where(eq(credentials.secretId, secretId))
      .returning();
    if (!row) throw new PlatformError("NOT_FOUND", `no credential ${secretId}`);
    cache.delete(secretId);
    return publicCredential(row);
  }
}
