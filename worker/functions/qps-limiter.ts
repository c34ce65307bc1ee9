/**
 * Per-function invocation rate limiter: at most `limit` admissions in any 1-second window,
 * counted in this isolate (exact locally, where one isolate serves everything; per isolate when
 * deployed). Pure: the clock is passed in.
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
