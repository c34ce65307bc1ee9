import { and, desc, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { type CredentialRow, credentials } from "../db/schema";
import { fromBase64, toBase64 } from "../shared/encoding";
import { PlatformError } from "../shared/errors";
import { NAMESPACE_PATTERN } from "../shared/names";
import { constantTimeEqual, type Principal } from "./principal";

/** How long an isolate trusts a looked-up credential (a revocation takes effect within this). */
export const CREDENTIAL_CACHE_TTL_MS = 2_000;

/**
 * Most SecretIds one isolate caches (known and unknown ones alike, so a flood of made-up
 * SecretIds cannot grow it); the oldest entry is evicted first.
 */
export const CREDENTIAL_CACHE_MAX_ENTRIES = 1_000;

/** Shortest DEV_SECRET_KEY the worker accepts; a shorter development pair authenticates nobody. */
export const MIN_DEV_SECRET_KEY_LENGTH = 32;

/** Prefix of a stored SecretKey cipher bound to its SecretId (AES-GCM associated data). */
const CIPHER_V2_PREFIX = "v2:";

/** Bytes of a fresh AES-GCM initialisation vector. */
const IV_BYTES = 12;

/** A credential the platform can check a request against. */
export interface ResolvedCredential extends Principal {
  secretKey: string;
}

/** A map whose entries expire after a time to live and whose size is bounded (oldest out first). */
export class BoundedTtlCache<Value> {
  private readonly entries = new Map<string, { value: Value; expiresAt: number }>();

  constructor(
    private readonly maxEntries: number,
    private readonly ttlMs: number,
  ) {}

  /** The live entry for a key: `{ value }` when cached (the value may be undefined), else undefined. */
  get(key: string, nowMs = Date.now()): { value: Value } | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= nowMs) {
      this.entries.delete(key);
      return undefined;
    }
    return { value: entry.value };
  }

  set(key: string, value: Value, nowMs = Date.now()): void {
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: nowMs + this.ttlMs });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}

const cache = new BoundedTtlCache<ResolvedCredential | undefined>(
  CREDENTIAL_CACHE_MAX_ENTRIES,
  CREDENTIAL_CACHE_TTL_MS,
);

/** Entries in this isolate's credential cache (tests of its bound). */
export function credentialCacheSize(): number {
  return cache.size;
}

const encoder = new TextEncoder();

/** Why the development pair cannot be used, or undefined when it is usable or not configured. */
export function devCredentialProblem(env: Env): string | undefined {
  if (!env.DEV_SECRET_ID && !env.DEV_SECRET_KEY) return undefined;
  if (!env.DEV_SECRET_ID || !env.DEV_SECRET_KEY) return "DEV_SECRET_ID and DEV_SECRET_KEY must be set together";
  if (env.DEV_SECRET_KEY.length < MIN_DEV_SECRET_KEY_LENGTH) {
    return `DEV_SECRET_KEY is shorter than ${MIN_DEV_SECRET_KEY_LENGTH} characters: the development pair is refused`;
  }
  return undefined;
}

async function importMasterKey(name: "MASTER_KEY" | "MASTER_KEY_PREVIOUS", raw: string): Promise<CryptoKey> {
  const bytes = fromBase64(raw);
  if (bytes.byteLength !== 32) throw new PlatformError("UNAVAILABLE", `${name} must be 32 bytes, base64`);
  return crypto.subtle.importKey("raw", bytes, "AES-GCM", false, ["encrypt", "decrypt"]);
}

async function masterKey(env: Env): Promise<CryptoKey> {
  const raw = env.MASTER_KEY;
  if (!raw) throw new PlatformError("UNAVAILABLE", "the MASTER_KEY secret is not set: credentials cannot be stored");
  return importMasterKey("MASTER_KEY", raw);
}

/** The keys a stored cipher may be under: MASTER_KEY, then MASTER_KEY_PREVIOUS during a rotation. */
async function decryptionKeys(env: Env): Promise<{ key: CryptoKey; previous: boolean }[]> {
  const keys = [{ key: await masterKey(env), previous: false }];
  const previous = env.MASTER_KEY_PREVIOUS;
  if (previous) keys.push({ key: await importMasterKey("MASTER_KEY_PREVIOUS", previous), previous: true });
  return keys;
}

/**
 * Encrypts a SecretKey for its row: AES-GCM under MASTER_KEY with the SecretId as associated data,
 * so a cipher copied into another SecretId's row does not decrypt. Stored as `v2:<base64(iv|cipher)>`.
 */
async function encrypt(env: Env, secretId: string, plain: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const cipher = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: encoder.encode(secretId) },
      await masterKey(env),
      encoder.encode(plain),
    ),
  );
  const out = new Uint8Array(iv.byteLength + cipher.byteLength);
  out.set(iv);
  out.set(cipher, iv.byteLength);
  return `${CIPHER_V2_PREFIX}${toBase64(out)}`;
}

/**
 * Encrypts another secret of the platform (a webhook signing secret) under MASTER_KEY, bound to
 * `context` (AES-GCM associated data: the cipher decrypts under the same context only).
 */
export function encryptSecret(env: Env, context: string, plain: string): Promise<string> {
  return encrypt(env, context, plain);
}

/** Decrypts a cipher of encryptSecret (under MASTER_KEY, or MASTER_KEY_PREVIOUS during a rotation). */
export async function decryptSecret(env: Env, context: string, stored: string): Promise<string> {
  return (await decrypt(env, context, stored)).plain;
}

/**
 * Re-encrypts a cipher of encryptSecret under MASTER_KEY: the new cipher when it was under
 * MASTER_KEY_PREVIOUS, undefined when it is already current. Throws when neither key decrypts it
 * (PlatformError: MASTER_KEY missing or malformed).
 */
export async function reencryptSecret(env: Env, context: string, stored: string): Promise<string | undefined> {
  const { plain, stale } = await decrypt(env, context, stored);
  return stale ? encrypt(env, context, plain) : undefined;
}

/** A stored cipher in the legacy format (no version prefix, not bound to its SecretId). */
class LegacyCipherError extends Error {}

/**
 * Decrypts a stored SecretKey of `secretId`. A cipher under MASTER_KEY_PREVIOUS is decrypted with
 * that key and reported `stale`, so that the caller rewrites it under MASTER_KEY. A legacy cipher
 * (no version prefix, no associated data) is refused unless `allowLegacy`: only the administrator's
 * re-encryption reads it, since a legacy cipher copied into another row would still decrypt there.
 */
async function decrypt(
  env: Env,
  secretId: string,
  stored: string,
  allowLegacy = false,
): Promise<{ plain: string; stale: boolean }> {
  const legacy = !stored.startsWith(CIPHER_V2_PREFIX);
  if (legacy && !allowLegacy) throw new LegacyCipherError(`the stored key of ${secretId} is in the legacy format`);
  const bytes = fromBase64(legacy ? stored : stored.slice(CIPHER_V2_PREFIX.length));
  const algorithm = {
    name: "AES-GCM",
    iv: bytes.slice(0, IV_BYTES),
    ...(legacy ? {} : { additionalData: encoder.encode(secretId) }),
  };
  let lastError: unknown;
  for (const { key, previous } of await decryptionKeys(env)) {
    try {
      const plain = await crypto.subtle.decrypt(algorithm, key, bytes.slice(IV_BYTES));
      return { plain: new TextDecoder().decode(plain), stale: legacy || previous };
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
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

  /**
   * Finds a usable credential by SecretId: revoked ones, ones whose stored key does not decrypt
   * (for example a cipher moved from another row) and a development pair with a weak key are not
   * found.
   */
  async resolve(secretId: string): Promise<ResolvedCredential | undefined> {
    const devId = this.env.DEV_SECRET_ID;
    const devKey = this.env.DEV_SECRET_KEY;
    if (devId && devKey && (await constantTimeEqual(secretId, devId))) {
      if (devCredentialProblem(this.env)) return undefined;
      return { secretId: devId, secretKey: devKey, namespaces: "*", admin: true };
    }
    const hit = cache.get(secretId);
    if (hit) return hit.value;
    const row = await drizzle(this.env.DB).select().from(credentials).where(eq(credentials.secretId, secretId)).get();
    const credential = row && row.revokedAt === null ? await this.usable(row) : undefined;
    cache.set(secretId, credential);
    return credential;
  }

  /** The credential of an active row, or undefined when its stored key does not decrypt. */
  private async usable(row: CredentialRow): Promise<ResolvedCredential | undefined> {
    let secretKey: string;
    try {
      const decrypted = await decrypt(this.env, row.secretId, row.secretKeyEncrypted);
      secretKey = decrypted.plain;
      if (decrypted.stale) await this.rewriteCipher(row, secretKey);
    } catch (error) {
      if (error instanceof PlatformError) throw error; // MASTER_KEY missing or malformed
      console.error(
        error instanceof LegacyCipherError
          ? `${error.message}: the credential is refused until an administrator runs npm run keys -- reencrypt`
          : `the stored key of ${row.secretId} does not decrypt: the credential is refused`,
      );
      return undefined;
    }
    const namespaces = JSON.parse(row.namespaces) as string[];
    return {
      secretId: row.secretId,
      secretKey,
      namespaces: namespaces.includes("*") ? "*" : namespaces,
      admin: false,
    };
  }

  /** Rewrites a stale cipher (legacy format or previous MASTER_KEY) under MASTER_KEY, SecretId-bound. */
  private async rewriteCipher(row: CredentialRow, secretKey: string): Promise<void> {
    await drizzle(this.env.DB)
      .update(credentials)
      .set({ secretKeyEncrypted: await encrypt(this.env, row.secretId, secretKey) })
      .where(and(eq(credentials.secretId, row.secretId), eq(credentials.secretKeyEncrypted, row.secretKeyEncrypted)));
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
      secretKeyEncrypted: await encrypt(this.env, secretId, secretKey),
      namespaces: JSON.stringify([...new Set(namespaces)]),
      description,
      createdAt: Date.now(),
      revokedAt: null,
    };
    await drizzle(this.env.DB).insert(credentials).values(row);
    return { ...publicCredential(row), secretKey };
  }

  /**
   * Re-encrypts every stored SecretKey under the current MASTER_KEY (the last step of a rotation,
   * before MASTER_KEY_PREVIOUS is removed). Rows that decrypt under neither key are counted and left.
   */
  async reencryptAll(): Promise<{ rewritten: number; current: number; undecryptable: string[] }> {
    const rows = await drizzle(this.env.DB).select().from(credentials);
    const outcome = { rewritten: 0, current: 0, undecryptable: [] as string[] };
    for (const row of rows) {
      let decrypted: { plain: string; stale: boolean };
      try {
        decrypted = await decrypt(this.env, row.secretId, row.secretKeyEncrypted, true);
      } catch (error) {
        if (error instanceof PlatformError) throw error;
        outcome.undecryptable.push(row.secretId);
        continue;
      }
      if (!decrypted.stale) {
        outcome.current += 1;
        continue;
      }
      await this.rewriteCipher(row, decrypted.plain);
      cache.delete(row.secretId);
      outcome.rewritten += 1;
    }
    return outcome;
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
