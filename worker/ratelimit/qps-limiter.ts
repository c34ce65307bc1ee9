import type { TakeResult } from "./qps-bucket-object";
import { MAX_TOKENS_PER_TAKE, QPS_WINDOW_MS } from "./qps-bucket-object";

/**
 * Per-key invocation rate limiter counted in this isolate alone: at most `limit` admissions in any
 * 1-second window (sliding-window estimate). The distributed limiter falls back to it while its
 * bucket cannot be reached. Pure: the clock is passed in.
 */
export class QpsLimiter {
  private readonly windows = new Map<string, { second: number; previous: number; current: number }>();

  /** Admits one call now, or returns false when the key is over its limit. */
  tryAdmit(key: string, limit: number, nowMs: number): boolean {
    const second = Math.floor(nowMs / 1000);
    let window = this.windows.get(key);
    if (!window || second > window.second + 1) {
      window = { second, previous: 0, current: 0 };
    } else if (second === window.second + 1) {
      window = { second, previous: window.current, current: 0 };
    }
    // Sliding-window estimate: the previous second weighted by how much of it is still in range.
    const elapsedFraction = (nowMs % 1000) / 1000;
    const estimate = window.previous * (1 - elapsedFraction) + window.current;
    this.windows.set(key, window);
    if (estimate + 1 > limit) return false;
    window.current += 1;
    return true;
  }
}

/**
 * An isolate takes ceil(limit / TOKEN_BATCH_DIVISOR) tokens per call to the key's bucket: 50 for
 * SCF's default 1,000 per second, 1 (every call asks) for limits up to 20. The bucket then sees
 * about 20 takes per second per key however many calls arrive, and an isolate holds at most one
 * batch: the most the limit can be passed by (see README, "Functions").
 */
export const TOKEN_BATCH_DIVISOR = 20;
/**
 * Tokens an isolate holds unused are dropped this long after they were granted: they were counted
 * in the bucket's window of that time, and must not be spent in a later window on top of it.
 */
export const LOCAL_TOKEN_TTL_MS = QPS_WINDOW_MS;
/** Keys one isolate remembers at most; past it the key it met first is forgotten (its tokens dropped). */
export const MAX_LOCAL_KEYS = 10_000;
/** Most take rounds one admission waits through (each grants someone a token or refuses all). */
const MAX_TAKE_ROUNDS = 8;

/** The bucket of one key, as the limiter calls it (a QpsBucketObject stub, or a test double). */
export interface QpsBucket {
  take(limit: number, wanted: number): Promise<TakeResult>;
}

/** Whether a call is admitted, and when refused, how long the caller should wait (whole seconds). */
export type Admission = { admitted: true } | { admitted: false; retryAfterSeconds: number };

/** What one isolate knows of one key: its unused tokens, a refusal to repeat, a take in flight. */
interface LocalTokens {
  tokens: number;
  /** Epoch ms at which the unused tokens are dropped. */
  expiresAt: number;
  /** Until then the bucket is full: refuse without asking (the bucket said when room frees). */
  refusedUntil: number;
  inflight: Promise<void> | undefined;
}

/** Tokens one take asks for under `limit`. */
export function tokenBatch(limit: number): number {
  return Math.min(MAX_TOKENS_PER_TAKE, Math.max(1, Math.ceil(limit / TOKEN_BATCH_DIVISOR)));
}

/**
 * Rate limit that holds across isolates and machines: one QpsBucketObject per key counts every
 * grant in a sliding 1-second window, and each isolate takes a small batch of tokens at a time so
 * that most calls are admitted without leaving the isolate. A refusal is remembered until the
 * moment the bucket said room frees, so a flood over the limit costs one bucket call per isolate
 * per refusal period. When the bucket cannot be reached the isolate counts on its own (QpsLimiter),
 * so invocations never fail because of the limiter.
 */
export class DistributedQpsLimiter {
  private readonly local = new Map<string, LocalTokens>();
  private readonly fallback = new QpsLimiter();

  /**
   * Admits one call of `key` under `limit` per second, or says how long to wait. `bucket` gives the
   * key's bucket, asked only when this isolate has no token left.
   */
  async admit(key: string, limit: number, bucket: () => QpsBucket, now: () => number = Date.now): Promise<Admission> {
    for (let round = 0; round < MAX_TAKE_ROUNDS; round++) {
      const state = this.stateOf(key);
      const at = now();
      if (state.tokens > 0 && at < state.expiresAt) {
        state.tokens -= 1;
        return { admitted: true };
      }
      if (at < state.refusedUntil) return refused(state.refusedUntil - at);
      // Concurrent callers of this isolate share one take; each then tries the tokens it brought.
      state.inflight ??= this.refill(key, bucket, state, limit, now).finally(() => {
        state.inflight = undefined;
      });
      await state.inflight;
    }
    // Every round's tokens went to other callers of this isolate: the key is at its limit here.
    return refused(QPS_WINDOW_MS);
  }

  /** Takes a batch from the key's bucket into the isolate's tokens (or records the refusal). */
  private async refill(
    key: string,
    bucket: () => QpsBucket,
    state: LocalTokens,
    limit: number,
    now: () => number,
  ): Promise<void> {
    let answer: TakeResult;
    try {
      answer = await bucket().take(limit, tokenBatch(limit));
      if (answer.error) throw new Error(answer.error);
    } catch (error) {
      console.warn("QPS bucket unreachable; counting in this isolate", key, String(error));
      const admitted = this.fallback.tryAdmit(key, limit, now());
      state.tokens = admitted ? 1 : 0;
      state.expiresAt = now() + LOCAL_TOKEN_TTL_MS;
      state.refusedUntil = admitted ? 0 : now() + QPS_WINDOW_MS;
      return;
    }
    const at = now();
    state.tokens = answer.granted;
    state.expiresAt = at + LOCAL_TOKEN_TTL_MS;
    state.refusedUntil = answer.granted > 0 ? 0 : at + answer.retryAfterMs;
  }

  /** The isolate's record of a key, created empty; the map is bounded by MAX_LOCAL_KEYS. */
  private stateOf(key: string): LocalTokens {
    let state = this.local.get(key);
    if (state) return state;
    if (this.local.size >= MAX_LOCAL_KEYS) {
      const oldest = this.local.keys().next().value;
      if (oldest !== undefined) this.local.delete(oldest);
    }
    state = { tokens: 0, expiresAt: 0, refusedUntil: 0, inflight: undefined };
    this.local.set(key, state);
    return state;
  }
}

function refused(waitMs: number): Admission {
  return { admitted: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
}
