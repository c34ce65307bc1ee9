import { DurableObject } from "cloudflare:workers";

/** Length of the window a QPS limit counts in: SCF's limits are per second. */
export const QPS_WINDOW_MS = 1_000;
/** Largest limit a bucket accepts (the function model's `qpsLimit` ceiling). */
export const QPS_LIMIT_CEILING = 100_000;
/** Most tokens one take may ask for (an isolate asks for a small batch, see TOKEN_BATCH_DIVISOR). */
export const MAX_TOKENS_PER_TAKE = 5_000;

/** Answer to a take: how many tokens were granted, and when to ask again if none were. */
export interface TakeResult {
  /** Tokens granted (0 to the number asked for); each admits one call. */
  granted: number;
  /** When nothing was granted: milliseconds until the oldest grant leaves the window (room frees). */
  retryAfterMs: number;
  /** Set when the take was malformed (a caller's bug): nothing was granted or counted. */
  error?: string;
}

/**
 * Sliding-window log of grants: at most `limit` tokens granted in any window of QPS_WINDOW_MS.
 * Each take is one entry (its time and count), so the log holds at most one entry per take in the
 * last window. Exact, not an estimate. Pure: the clock is passed in.
 */
export class GrantWindow {
  private readonly entries: { at: number; count: number }[] = [];
  /** Index of the oldest entry still in the window (entries before it are dropped lazily). */
  private head = 0;
  /** Tokens granted by the entries from head on. */
  private total = 0;

  /** Grants up to `wanted` tokens at `now` within `limit` per window. */
  take(limit: number, wanted: number, now: number): TakeResult {
    this.expire(now);
    const room = Math.max(0, limit - this.total);
    const granted = Math.min(room, wanted);
    if (granted > 0) {
      this.entries.push({ at: now, count: granted });
      this.total += granted;
      return { granted, retryAfterMs: 0 };
    }
    const oldest = this.entries[this.head];
    // Full: room frees when the oldest grant leaves the window (an empty log with room 0 cannot happen).
    const retryAfterMs = oldest ? Math.max(1, oldest.at + QPS_WINDOW_MS - now) : QPS_WINDOW_MS;
    return { granted: 0, retryAfterMs };
  }

  /** Tokens granted in the window ending at `now` (observability and tests). */
  inWindow(now: number): number {
    this.expire(now);
    return this.total;
  }

  /** Drops entries that left the window; compacts the array once half of it is dead. */
  private expire(now: number): void {
    while (this.head < this.entries.length) {
      const entry = this.entries[this.head];
      if (!entry || entry.at + QPS_WINDOW_MS > now) break;
      this.total -= entry.count;
      this.head += 1;
    }
    if (this.head > 0 && this.head * 2 >= this.entries.length) {
      this.entries.splice(0, this.head);
      this.head = 0;
    }
  }
}

/** Why a take is malformed, or undefined when it is well formed. */
export function checkTake(limit: unknown, wanted: unknown): string | undefined {
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > QPS_LIMIT_CEILING) {
    return `limit must be a whole number from 1 to ${QPS_LIMIT_CEILING}`;
  }
  if (typeof wanted !== "number" || !Number.isInteger(wanted) || wanted < 1 || wanted > MAX_TOKENS_PER_TAKE) {
    return `a take asks for 1 to ${MAX_TOKENS_PER_TAKE} tokens`;
  }
  return undefined;
}

/**
 * One per rate-limited key (idFromName: `fn:namespace/function` for invocations, `read:SecretId`
 * for list and log reads): the one place that counts the key's calls across every isolate and
 * machine. Isolates take small batches of tokens (see worker/ratelimit/qps-limiter.ts), so this
 * object sees about limit / batch calls per second, not one per call.
 *
 * The window lives in memory only: when the object restarts (rare: a deploy, an eviction after
 * idling) the grants of the last second are forgotten, which can admit at most one more window.
 */
export class QpsBucketObject extends DurableObject<Env> {
  private readonly window = new GrantWindow();

  /** Grants up to `wanted` tokens within `limit` per second (see GrantWindow). */
  async take(limit: number, wanted: number): Promise<TakeResult> {
    const malformed = checkTake(limit, wanted);
    if (malformed) return { granted: 0, retryAfterMs: QPS_WINDOW_MS, error: malformed };
    return this.window.take(limit, wanted, Date.now());
  }

  /** Tokens granted in the last window (observability and tests). */
  async granted(): Promise<number> {
    return this.window.inWindow(Date.now());
  }
}
