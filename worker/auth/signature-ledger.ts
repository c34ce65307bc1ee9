import { DurableObject } from "cloudflare:workers";
import { signatureLedgerStub } from "../shared/objects";
import { MAX_CLOCK_SKEW_SECONDS } from "./tc3";

/**
 * How long a TC3 signature is remembered. A signature is accepted while its X-TC-Timestamp is
 * within MAX_CLOCK_SKEW_SECONDS of the server's clock on either side: at most twice that after it
 * is first seen, which this covers.
 */
export const SIGNATURE_LEDGER_TTL_MS = (2 * MAX_CLOCK_SKEW_SECONDS + 5) * 1000;

/**
 * How long after a signed change the same signature may still serve one read. The official SDKs
 * sign neither the action nor a nonce, so a client that reads right after a change with the same
 * parameters in the same second (DeleteFunction, then GetFunction to confirm) sends the very same
 * signature; a replay of a captured change comes later than this, and only one read action is
 * ever admitted.
 */
export const SIGNATURE_FOLLOW_UP_WINDOW_MS = 2_000;

/** How many leading hex characters of a signature pick its ledger shard (16^2 = 256 shards). */
export const SIGNATURE_LEDGER_SHARD_HEX_CHARS = 2;

/** The operation a signed request asks for, as the ledger records it. */
export interface SignedOperation {
  /** The Tencent action (X-TC-Action), or `METHOD /path` on the REST API. */
  name: string;
  /** False only for read-only operations (Get*, List*, REST GET), which may be repeated. */
  mutating: boolean;
}

/** The ledger's verdict on one use of a signature. */
export type LedgerVerdict = { ok: true } | { ok: false; message: string };

/** True for a Tencent action that only reads (Get*, List*); anything else counts as mutating. */
export function isReadOnlyAction(action: string): boolean {
  return /^(Get|List)[A-Z]/.test(action);
}

/** Name of the ledger shard of a signature (lower-case hex). */
export function ledgerShardName(signature: string): string {
  return `signatures-${signature.slice(0, SIGNATURE_LEDGER_SHARD_HEX_CHARS)}`;
}

/** Records one use of a signature in its shard; refused when it is a replay or an action swap. */
export async function recordSignatureUse(
  env: Env,
  signature: string,
  operation: SignedOperation,
): Promise<LedgerVerdict> {
  const ledger = signatureLedgerStub(env, ledgerShardName(signature));
  return ledger.record(signature, operation.name, operation.mutating);
}

/**
 * One shard of the short-lived ledger of TC3 signatures seen (signature → operation), so that a
 * captured signature cannot be replayed for a mutating operation within its 5-minute window, nor
 * reused for another operation (the official SDKs do not sign X-TC-Action). Entries expire after
 * SIGNATURE_LEDGER_TTL_MS; an alarm deletes them.
 */
export class SignatureLedgerObject extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS signatures (
        signature TEXT PRIMARY KEY, operation TEXT NOT NULL, mutating INTEGER NOT NULL, expires_at INTEGER NOT NULL,
        first_seen_at INTEGER NOT NULL, follow_up TEXT)`);
      ctx.storage.sql.exec("CREATE INDEX IF NOT EXISTS signatures_expiry ON signatures (expires_at)");
    });
  }

  /**
   * Records a use of `signature` for `operation`. The first use is admitted. A later use is
   * admitted only when it is read-only and either repeats the first use's read, or is the one read
   * that follows a change within SIGNATURE_FOLLOW_UP_WINDOW_MS (that same read may repeat within
   * the window). A change is never admitted twice, nor after any other use: a captured signature
   * cannot replay a change, turn a read into one, or be turned into another read later.
   */
  async record(signature: string, operation: string, mutating: boolean, nowMs = Date.now()): Promise<LedgerVerdict> {
    const sql = this.ctx.storage.sql;
    const seen = sql
      .exec<{ operation: string; mutating: number; first_seen_at: number; follow_up: string | null }>(
        "SELECT operation, mutating, first_seen_at, follow_up FROM signatures WHERE signature = ? AND expires_at > ?",
        signature,
        nowMs,
      )
      .toArray()[0];
    if (seen) {
      const sameOperation = seen.operation === operation;
      if (!mutating && seen.mutating === 0 && sameOperation) return { ok: true };
      const inWindow = nowMs - seen.first_seen_at <= SIGNATURE_FOLLOW_UP_WINDOW_MS;
      if (!mutating && seen.mutating !== 0 && inWindow && (seen.follow_up ?? operation) === operation) {
        sql.exec("UPDATE signatures SET follow_up = ? WHERE signature = ?", operation, signature);
        return { ok: true };
      }
      if (sameOperation) {
        return { ok: false, message: "this signature was already used: a signed change cannot be replayed" };
      }
      return { ok: false, message: "this signature was already used for another action: sign each request anew" };
    }
    const expiresAt = nowMs + SIGNATURE_LEDGER_TTL_MS;
    sql.exec(
      `INSERT OR REPLACE INTO signatures (signature, operation, mutating, expires_at, first_seen_at, follow_up)
       VALUES (?, ?, ?, ?, ?, NULL)`,
      signature,
      operation,
      mutating ? 1 : 0,
      expiresAt,
      nowMs,
    );
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(expiresAt);
    return { ok: true };
  }

  /** Number of live entries (observability and tests). */
  async size(nowMs = Date.now()): Promise<number> {
    return Number(
      this.ctx.storage.sql.exec("SELECT COUNT(*) AS n FROM signatures WHERE expires_at > ?", nowMs).one().n,
    );
  }

  /** Deletes expired entries, then wakes again at the next expiry while any remain. */
  override async alarm(): Promise<void> {
    const sql = this.ctx.storage.sql;
    const now = Date.now();
    sql.exec("DELETE FROM signatures WHERE expires_at <= ?", now);
    const next = sql.exec<{ at: number | null }>("SELECT MIN(expires_at) AS at FROM signatures").one().at;
    if (next !== null) await this.ctx.storage.setAlarm(next);
  }
}
