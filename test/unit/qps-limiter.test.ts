import { describe, expect, it } from "vitest";
import { QpsLimiter } from "../../worker/ratelimit/qps-limiter";

describe("QpsLimiter", () => {
  it("admits up to the limit within one second and refuses the excess", () => {
    const limiter = new QpsLimiter();
    const admitted = Array.from({ length: 8 }, () => limiter.tryAdmit("f", 5, 10_000)).filter(Boolean);
    expect(admitted).toHaveLength(5);
  });

  it("admits again once the window has slid past the earlier calls", () => {
    const limiter = new QpsLimiter();
    for (let i = 0; i < 5; i++) limiter.tryAdmit("f", 5, 10_000);
    expect(limiter.tryAdmit("f", 5, 10_500)).toBe(false);
    expect(limiter.tryAdmit("f", 5, 12_000)).toBe(true);
  });

  it("counts functions separately", () => {
    const limiter = new QpsLimiter();
    expect(limiter.tryAdmit("a", 1, 0)).toBe(true);
    expect(limiter.tryAdmit("a", 1, 1)).toBe(false);
    expect(limiter.tryAdmit("b", 1, 1)).toBe(true);
  });
});
