import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { checkTake, GrantWindow, QPS_WINDOW_MS } from "../../worker/ratelimit/qps-bucket-object";
import {
  DistributedQpsLimiter,
  LOCAL_TOKEN_TTL_MS,
  type QpsBucket,
  TOKEN_BATCH_DIVISOR,
  tokenBatch,
} from "../../worker/ratelimit/qps-limiter";
import { qpsBucketStub } from "../../worker/shared/objects";
import { zipBase64 } from "../helpers/zip";

/** A bucket key no other test uses. */
function uniqueKey(): string {
  return `test:${crypto.randomUUID()}`;
}

/** A clock a test moves by hand. */
function manualClock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

/** A bucket backed by a GrantWindow on the test's clock, counting the takes it answered. */
function windowBucket(clock: { now: () => number }) {
  const window = new GrantWindow();
  const bucket = {
    takes: 0,
    take: async (limit: number, wanted: number) => {
      bucket.takes += 1;
      return window.take(limit, wanted, clock.now());
    },
  };
  return bucket;
}

describe("GrantWindow (the bucket's sliding window)", () => {
  it("grants at most the limit in any window and says when the oldest grant leaves it", () => {
    const window = new GrantWindow();
    expect(window.take(5, 3, 0)).toEqual({ granted: 3, retryAfterMs: 0 });
    expect(window.take(5, 3, 400)).toEqual({ granted: 2, retryAfterMs: 0 });
    expect(window.take(5, 1, 600)).toEqual({ granted: 0, retryAfterMs: 400 });
    // The first grant (3 tokens at 0) leaves the window at 1000: exactly its room frees.
    expect(window.take(5, 5, 1000)).toEqual({ granted: 3, retryAfterMs: 0 });
    expect(window.inWindow(1399)).toBe(5);
    expect(window.inWindow(1400)).toBe(3);
  });

  it("refills over time: a steady caller at the limit is admitted every second", () => {
    const window = new GrantWindow();
    let admitted = 0;
    for (let t = 0; t < 10_000; t += 10) admitted += window.take(10, 1, t).granted;
    expect(admitted).toBe(100);
  });

  it("refuses malformed takes", () => {
    expect(checkTake(0, 1)).toMatch(/limit/);
    expect(checkTake(5, 0)).toMatch(/tokens/);
    expect(checkTake(1.5, 1)).toMatch(/limit/);
    expect(checkTake(100_001, 1)).toMatch(/limit/);
    expect(checkTake(5, 1)).toBeUndefined();
  });
});

describe("QpsBucketObject", () => {
  it("counts grants across stubs: two isolates' takes share one window", async () => {
    const key = uniqueKey();
    const first = qpsBucketStub(env, key);
    const second = qpsBucketStub(env, key);
    expect((await first.take(5, 3)).granted).toBe(3);
    expect((await second.take(5, 3)).granted).toBe(2);
    const refused = await first.take(5, 1);
    expect(refused.granted).toBe(0);
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(QPS_WINDOW_MS);
  });

  it("answers a malformed take with an error and counts nothing", async () => {
    const stub = qpsBucketStub(env, uniqueKey());
    expect((await stub.take(0, 1)).error).toMatch(/limit/);
    expect((await stub.take(5, 1)).granted).toBe(1);
  });
});

describe("DistributedQpsLimiter", () => {
  it("takes tokens in batches of limit / 20, so most admissions never leave the isolate", async () => {
    expect(tokenBatch(1000)).toBe(1000 / TOKEN_BATCH_DIVISOR);
    expect(tokenBatch(5)).toBe(1);
    const clock = manualClock();
    const bucket = windowBucket(clock);
    const limiter = new DistributedQpsLimiter();
    for (let i = 0; i < 100; i++) {
      expect((await limiter.admit("k", 1000, () => bucket, clock.now)).admitted).toBe(true);
    }
    expect(bucket.takes).toBe(2);
  });

  it("holds the limit across two isolates sharing one bucket, within one batch per isolate", async () => {
    const clock = manualClock();
    const bucket = windowBucket(clock);
    const isolates = [new DistributedQpsLimiter(), new DistributedQpsLimiter()];
    const limit = 100;
    let admitted = 0;
    let refusedWithRetry = 0;
    // 300 calls within one second, alternating between the isolates.
    for (let i = 0; i < 300; i++) {
      const answer = await isolates[i % 2]?.admit("k", limit, () => bucket, clock.now);
      if (answer?.admitted) admitted += 1;
      else if (answer && answer.retryAfterSeconds === 1) refusedWithRetry += 1;
      clock.advance(3);
    }
    expect(admitted).toBeLessThanOrEqual(limit + isolates.length * tokenBatch(limit));
    expect(admitted).toBeGreaterThanOrEqual(limit - isolates.length * tokenBatch(limit));
    expect(admitted + refusedWithRetry).toBe(300);
  });

  it("remembers a refusal until the bucket's room frees, then admits again", async () => {
    const clock = manualClock();
    const bucket = windowBucket(clock);
    const limiter = new DistributedQpsLimiter();
    for (let i = 0; i < 5; i++) expect((await limiter.admit("k", 5, () => bucket, clock.now)).admitted).toBe(true);
    const takes = bucket.takes;
    expect(await limiter.admit("k", 5, () => bucket, clock.now)).toEqual({ admitted: false, retryAfterSeconds: 1 });
    clock.advance(100);
    expect((await limiter.admit("k", 5, () => bucket, clock.now)).admitted).toBe(false);
    // The second refusal did not ask the bucket: the first said room frees only at +1 s.
    expect(bucket.takes).toBe(takes + 1);
    clock.advance(QPS_WINDOW_MS);
    expect((await limiter.admit("k", 5, () => bucket, clock.now)).admitted).toBe(true);
  });

  it("drops tokens it held unused past their window rather than spending them later", async () => {
    const clock = manualClock();
    const bucket = windowBucket(clock);
    const limiter = new DistributedQpsLimiter();
    expect((await limiter.admit("k", 1000, () => bucket, clock.now)).admitted).toBe(true);
    clock.advance(LOCAL_TOKEN_TTL_MS);
    expect((await limiter.admit("k", 1000, () => bucket, clock.now)).admitted).toBe(true);
    expect(bucket.takes).toBe(2);
  });

  it("shares one take among concurrent callers of an isolate", async () => {
    const clock = manualClock();
    const bucket = windowBucket(clock);
    const limiter = new DistributedQpsLimiter();
    const answers = await Promise.all(
      Array.from({ length: 40 }, () => limiter.admit("k", 1000, () => bucket, clock.now)),
    );
    expect(answers.every((answer) => answer.admitted)).toBe(true);
    expect(bucket.takes).toBe(1);
  });

  it("counts in the isolate when the bucket cannot be reached, so invocations never fail on the limiter", async () => {
    const broken: QpsBucket = { take: async () => Promise.reject(new Error("unreachable")) };
    const clock = manualClock();
    const limiter = new DistributedQpsLimiter();
    let admitted = 0;
    for (let i = 0; i < 10; i++) {
      if ((await limiter.admit("k", 3, () => broken, clock.now)).admitted) admitted += 1;
      clock.advance(10);
    }
    expect(admitted).toBe(3);
  });
});

describe("the invoke route over a function's qpsLimit", () => {
  it("answers 429 RATE_LIMITED with Retry-After past the limit", async () => {
    const workerEnv = env as Env;
    const auth = { authorization: `Bearer ${workerEnv.DEV_SECRET_ID}:${workerEnv.DEV_SECRET_KEY}` };
    const name = `qps${crypto.randomUUID().slice(0, 8)}`;
    const created = await SELF.fetch("https://afp.test/v1/namespaces/default/functions", {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({
        name,
        runtime: "Nodejs22",
        handler: "index.main_handler",
        qpsLimit: 2,
        code: { zipFile: zipBase64({ "index.js": "exports.main_handler = async () => 1;" }) },
      }),
    });
    expect(created.status).toBe(201);
    const statuses: number[] = [];
    let refusal: Response | undefined;
    for (let i = 0; i < 4; i++) {
      const response = await SELF.fetch(`https://afp.test/v1/namespaces/default/functions/${name}/invocations`, {
        method: "POST",
        headers: auth,
        body: "{}",
      });
      statuses.push(response.status);
      if (response.status === 429) refusal = response;
      else await response.body?.cancel();
    }
    expect(statuses.slice(0, 2)).toEqual([202, 202]);
    expect(statuses.slice(2)).toEqual([429, 429]);
    if (!refusal) throw new Error("no invocation was refused");
    expect(refusal.headers.get("retry-after")).toBe("1");
    expect(((await refusal.json()) as { error: { code: string } }).error.code).toBe("RATE_LIMITED");
  });
});
