import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PlatformError } from "../../worker/shared/errors";
import { CRON_MAX_YEAR, MAX_CRON_CHARS, nextFireAfter, parseCron, searchNextFire } from "../../worker/triggers/cron";

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/** The next `count` firings of `cron` after `fromIso`, as ISO strings. */
function firings(cron: string, fromIso: string, count = 1): (string | undefined)[] {
  const schedule = parseCron(cron);
  const out: (string | undefined)[] = [];
  let after = at(fromIso);
  for (let i = 0; i < count; i++) {
    const next = nextFireAfter(schedule, after);
    out.push(iso(next));
    if (next === undefined) break;
    after = next;
  }
  return out;
}

/** The INVALID_PARAMETER message parseCron throws for `cron`. */
function refusal(cron: string): string {
  try {
    parseCron(cron);
  } catch (error) {
    expect(error).toBeInstanceOf(PlatformError);
    expect((error as PlatformError).code).toBe("INVALID_PARAMETER");
    return (error as PlatformError).message;
  }
  throw new Error(`parseCron accepted ${JSON.stringify(cron)}`);
}

describe("SCF documentation examples", () => {
  it("*/5 * * * * * * fires every 5 seconds", () => {
    expect(firings("*/5 * * * * * *", "2026-03-10T08:00:03.250Z", 3)).toEqual([
      "2026-03-10T08:00:05.000Z",
      "2026-03-10T08:00:10.000Z",
      "2026-03-10T08:00:15.000Z",
    ]);
  });

  it("0 */5 * * * * * fires every 5 minutes on the minute", () => {
    expect(firings("0 */5 * * * * *", "2026-03-10T08:03:00Z", 3)).toEqual([
      "2026-03-10T08:05:00.000Z",
      "2026-03-10T08:10:00.000Z",
      "2026-03-10T08:15:00.000Z",
    ]);
  });

  it("0 0 2 1 * * * fires at 02:00 on the 1st of every month", () => {
    expect(firings("0 0 2 1 * * *", "2026-01-15T00:00:00Z", 3)).toEqual([
      "2026-02-01T02:00:00.000Z",
      "2026-03-01T02:00:00.000Z",
      "2026-04-01T02:00:00.000Z",
    ]);
  });

  it("0 15 10 * * MON-FRI * fires at 10:15 on weekdays only", () => {
    // 2026-03-13 is a Friday: the next firings skip Saturday and Sunday.
    expect(firings("0 15 10 * * MON-FRI *", "2026-03-13T09:00:00Z", 3)).toEqual([
      "2026-03-13T10:15:00.000Z",
      "2026-03-16T10:15:00.000Z",
      "2026-03-17T10:15:00.000Z",
    ]);
  });

  it("0 0 10,14,16 * * * * fires at 10:00, 14:00 and 16:00", () => {
    expect(firings("0 0 10,14,16 * * * *", "2026-03-10T11:00:00Z", 3)).toEqual([
      "2026-03-10T14:00:00.000Z",
      "2026-03-10T16:00:00.000Z",
      "2026-03-11T10:00:00.000Z",
    ]);
  });

  it("0 */30 9-17 * * * * fires every half hour from 09:00 to 17:30", () => {
    expect(firings("0 */30 9-17 * * * *", "2026-03-10T17:10:00Z", 3)).toEqual([
      "2026-03-10T17:30:00.000Z",
      "2026-03-11T09:00:00.000Z",
      "2026-03-11T09:30:00.000Z",
    ]);
  });

  it("0 0 12 * * WED * fires at noon on Wednesdays", () => {
    expect(firings("0 0 12 * * WED *", "2026-03-10T00:00:00Z", 2)).toEqual([
      "2026-03-11T12:00:00.000Z",
      "2026-03-18T12:00:00.000Z",
    ]);
  });

  it("1/10 in minutes fires at minutes 1, 11, 21, … 51", () => {
    expect(firings("0 1/10 * * * * *", "2026-03-10T08:45:00Z", 3)).toEqual([
      "2026-03-10T08:51:00.000Z",
      "2026-03-10T09:01:00.000Z",
      "2026-03-10T09:11:00.000Z",
    ]);
  });
});

describe("next firing time", () => {
  it("is strictly after the given time, even when that time is itself a firing", () => {
    expect(firings("0 0 * * * * *", "2026-03-10T08:00:00.000Z")).toEqual(["2026-03-10T09:00:00.000Z"]);
    expect(firings("0 0 * * * * *", "2026-03-10T07:59:59.999Z")).toEqual(["2026-03-10T08:00:00.000Z"]);
  });

  it("fires every second for * * * * * * *", () => {
    expect(firings("* * * * * * *", "2026-03-10T08:00:00.500Z", 2)).toEqual([
      "2026-03-10T08:00:01.000Z",
      "2026-03-10T08:00:02.000Z",
    ]);
  });

  it("carries over the end of a year", () => {
    expect(firings("30 59 23 31 12 ? *", "2026-12-31T23:59:30Z")).toEqual(["2027-12-31T23:59:30.000Z"]);
    expect(firings("0 0 0 * * * *", "2026-12-31T23:59:59Z")).toEqual(["2027-01-01T00:00:00.000Z"]);
  });

  it("is always in whole seconds", () => {
    const next = nextFireAfter(parseCron("*/7 * * * * * *"), at("2026-03-10T08:00:00.123Z"));
    expect(next).toBeDefined();
    expect((next as number) % 1000).toBe(0);
  });

  it("starts no earlier than 1970 for a time before it", () => {
    expect(iso(nextFireAfter(parseCron("0 0 0 1 1 ? *"), -1e15))).toBe("1970-01-01T00:00:00.000Z");
  });

  it("is undefined for a time that is not a number or past the last year", () => {
    const schedule = parseCron("* * * * * * *");
    expect(nextFireAfter(schedule, Number.NaN)).toBeUndefined();
    expect(nextFireAfter(schedule, Number.POSITIVE_INFINITY)).toBeUndefined();
    expect(nextFireAfter(schedule, at("2100-01-01T00:00:00Z"))).toBeUndefined();
  });

  it("stops at the last second of 2099", () => {
    expect(firings("59 59 23 31 DEC ? *", "2099-01-01T00:00:00Z", 2)).toEqual(["2099-12-31T23:59:59.000Z", undefined]);
  });
});

describe("legacy 5-field form", () => {
  it("reads minute hour day month weekday, at second 0 of any year", () => {
    expect(firings("*/15 9 * * *", "2026-03-10T09:20:10Z", 3)).toEqual([
      "2026-03-10T09:30:00.000Z",
      "2026-03-10T09:45:00.000Z",
      "2026-03-11T09:00:00.000Z",
    ]);
  });

  it("keeps its five fields in the normalised text", () => {
    expect(parseCron("  */15   9 * * mon ").text).toBe("*/15 9 * * MON");
  });

  it("matches the equivalent 7-field expression", () => {
    const legacy = parseCron("30 4 1,15 * FRI");
    const full = parseCron("0 30 4 1,15 * FRI *");
    let a: number | undefined = at("2026-01-01T00:00:00Z");
    let b: number | undefined = a;
    for (let i = 0; i < 10; i++) {
      a = nextFireAfter(legacy, a as number);
      b = nextFireAfter(full, b as number);
      expect(a).toBe(b);
    }
  });
});

describe("names and normalisation", () => {
  it("accepts month and weekday names in any case", () => {
    expect(firings("0 0 0 1 jan-Mar,DEC ? *", "2026-03-15T00:00:00Z", 2)).toEqual([
      "2026-12-01T00:00:00.000Z",
      "2027-01-01T00:00:00.000Z",
    ]);
    expect(firings("0 0 8 ? * sat,Sun *", "2026-03-10T00:00:00Z", 2)).toEqual([
      "2026-03-14T08:00:00.000Z",
      "2026-03-15T08:00:00.000Z",
    ]);
  });

  it("reads weekday 0 and 7 as Sunday", () => {
    // 2026-03-15 is a Sunday.
    expect(firings("0 0 8 ? * 0 *", "2026-03-10T00:00:00Z")).toEqual(["2026-03-15T08:00:00.000Z"]);
    expect(firings("0 0 8 ? * 7 *", "2026-03-10T00:00:00Z")).toEqual(["2026-03-15T08:00:00.000Z"]);
    expect(firings("0 0 8 ? * 5-7 *", "2026-03-10T00:00:00Z", 3)).toEqual([
      "2026-03-13T08:00:00.000Z",
      "2026-03-14T08:00:00.000Z",
      "2026-03-15T08:00:00.000Z",
    ]);
  });

  it("reads 0-7 as the whole week, not as Sunday alone", () => {
    expect(firings("0 0 8 ? * 0-7 *", "2026-03-10T00:00:00Z", 2)).toEqual([
      "2026-03-10T08:00:00.000Z",
      "2026-03-11T08:00:00.000Z",
    ]);
  });

  it("normalises whitespace and case in text", () => {
    expect(parseCron("\t0  0\t12 * * wed *  ").text).toBe("0 0 12 * * WED *");
  });
});

describe("ranges and steps", () => {
  it("wraps a reversed range around in a cyclic field", () => {
    expect(firings("0 0 22-1 * * * *", "2026-03-10T12:00:00Z", 5)).toEqual([
      "2026-03-10T22:00:00.000Z",
      "2026-03-10T23:00:00.000Z",
      "2026-03-11T00:00:00.000Z",
      "2026-03-11T01:00:00.000Z",
      "2026-03-11T22:00:00.000Z",
    ]);
    // FRI-MON: Friday, Saturday, Sunday, Monday (2026-03-13 is a Friday).
    expect(firings("0 0 0 ? * FRI-MON *", "2026-03-12T00:00:00Z", 5)).toEqual([
      "2026-03-13T00:00:00.000Z",
      "2026-03-14T00:00:00.000Z",
      "2026-03-15T00:00:00.000Z",
      "2026-03-16T00:00:00.000Z",
      "2026-03-20T00:00:00.000Z",
    ]);
    expect(firings("0 0 0 1 NOV-FEB ? *", "2026-03-01T00:00:00Z", 4)).toEqual([
      "2026-11-01T00:00:00.000Z",
      "2026-12-01T00:00:00.000Z",
      "2027-01-01T00:00:00.000Z",
      "2027-02-01T00:00:00.000Z",
    ]);
  });

  it("counts a step along a wrapped range", () => {
    expect(firings("0 50-10/10 * * * * *", "2026-03-10T08:00:00Z", 4)).toEqual([
      "2026-03-10T08:10:00.000Z",
      "2026-03-10T08:50:00.000Z",
      "2026-03-10T09:00:00.000Z",
      "2026-03-10T09:10:00.000Z",
    ]);
  });

  it("steps within a range and from a start value", () => {
    expect(firings("10-30/10 0 0 * * * *", "2026-03-10T00:00:10Z", 3)).toEqual([
      "2026-03-10T00:00:20.000Z",
      "2026-03-10T00:00:30.000Z",
      "2026-03-11T00:00:10.000Z",
    ]);
  });

  it("fires only in the listed years", () => {
    expect(firings("0 0 0 1 1 ? 2027,2029-2030", "2026-06-01T00:00:00Z", 4)).toEqual([
      "2027-01-01T00:00:00.000Z",
      "2029-01-01T00:00:00.000Z",
      "2030-01-01T00:00:00.000Z",
      undefined,
    ]);
    expect(firings("0 0 0 1 1 ? 2030/5", "2036-01-01T00:00:00Z")).toEqual(["2040-01-01T00:00:00.000Z"]);
  });

  it("is undefined when every year is past", () => {
    expect(firings("0 0 0 1 1 ? 1999", "2026-01-01T00:00:00Z")).toEqual([undefined]);
  });
});

describe("special characters", () => {
  it("L in day is the last day of each month, leap February included", () => {
    expect(firings("0 0 0 L * ? *", "2028-01-15T00:00:00Z", 4)).toEqual([
      "2028-01-31T00:00:00.000Z",
      "2028-02-29T00:00:00.000Z",
      "2028-03-31T00:00:00.000Z",
      "2028-04-30T00:00:00.000Z",
    ]);
    expect(firings("0 0 0 L 2 ? *", "2026-01-01T00:00:00Z", 3)).toEqual([
      "2026-02-28T00:00:00.000Z",
      "2027-02-28T00:00:00.000Z",
      "2028-02-29T00:00:00.000Z",
    ]);
  });

  it("LW is the last Monday-Friday of the month", () => {
    // 2026-05-31 is a Sunday, so the last weekday of May 2026 is Friday the 29th.
    expect(firings("0 0 0 LW 5 ? *", "2026-01-01T00:00:00Z")).toEqual(["2026-05-29T00:00:00.000Z"]);
  });

  it("nW is the weekday nearest to day n, never leaving the month", () => {
    // 2026-03-15 is a Sunday → Monday the 16th; 2026-03-14 a Saturday → Friday the 13th.
    expect(firings("0 0 0 15W 3 ? 2026", "2026-01-01T00:00:00Z")).toEqual(["2026-03-16T00:00:00.000Z"]);
    expect(firings("0 0 0 14W 3 ? 2026", "2026-01-01T00:00:00Z")).toEqual(["2026-03-13T00:00:00.000Z"]);
    // 2026-08-01 is a Saturday: the nearest weekday in August is Monday the 3rd, not 31 July.
    expect(firings("0 0 0 1W 8 ? 2026", "2026-01-01T00:00:00Z")).toEqual(["2026-08-03T00:00:00.000Z"]);
    // 2026-05-31 is a Sunday: the nearest weekday in May is Friday the 29th, not 1 June.
    expect(firings("0 0 0 31W 5 ? 2026", "2026-01-01T00:00:00Z")).toEqual(["2026-05-29T00:00:00.000Z"]);
  });

  it("nW does not match in a month without day n", () => {
    // 31W only in months with 31 days: April is skipped.
    expect(firings("0 0 0 31W 3-5 ? 2026", "2026-04-01T00:00:00Z")).toEqual(["2026-05-29T00:00:00.000Z"]);
    // April 2027 has no 31st (which would be a Saturday): no Friday-30th stand-in; next is Mon 31 May.
    expect(firings("0 0 0 31W 4,5 ? 2027", "2027-04-01T00:00:00Z")).toEqual(["2027-05-31T00:00:00.000Z"]);
  });

  it("nL in weekday is the last weekday n of the month", () => {
    expect(firings("0 0 0 ? * 5L *", "2026-03-01T00:00:00Z", 2)).toEqual([
      "2026-03-27T00:00:00.000Z",
      "2026-04-24T00:00:00.000Z",
    ]);
    expect(firings("0 0 0 ? * FRIL *", "2026-03-01T00:00:00Z")).toEqual(["2026-03-27T00:00:00.000Z"]);
    // The last Wednesday of March 2026 is the 25th, six days before the month's end.
    expect(firings("0 0 0 ? * 3L 2026", "2026-03-01T00:00:00Z")).toEqual(["2026-03-25T00:00:00.000Z"]);
  });

  it("n#k in weekday is the k-th weekday n of the month", () => {
    expect(firings("0 0 9 ? * MON#2 *", "2026-03-01T00:00:00Z", 2)).toEqual([
      "2026-03-09T09:00:00.000Z",
      "2026-04-13T09:00:00.000Z",
    ]);
  });

  it("n#5 skips months without a fifth such weekday", () => {
    // Fifth Sunday: March 2026 has one (29th), April 2026 none, May 2026 one (31st).
    expect(firings("0 0 0 ? * 0#5 *", "2026-03-01T00:00:00Z", 2)).toEqual([
      "2026-03-29T00:00:00.000Z",
      "2026-05-31T00:00:00.000Z",
    ]);
  });

  it("? leaves the other field alone", () => {
    expect(firings("0 0 0 ? * TUE *", "2026-03-01T00:00:00Z")).toEqual(["2026-03-03T00:00:00.000Z"]);
    expect(firings("0 0 0 20 * ? *", "2026-03-01T00:00:00Z")).toEqual(["2026-03-20T00:00:00.000Z"]);
  });

  it("special items combine with plain ones in a list", () => {
    expect(firings("0 0 0 1,15,L 2 ? 2026", "2026-01-01T00:00:00Z", 4)).toEqual([
      "2026-02-01T00:00:00.000Z",
      "2026-02-15T00:00:00.000Z",
      "2026-02-28T00:00:00.000Z",
      undefined,
    ]);
  });
});

describe("day and weekday OR rule", () => {
  it("fires on either when both are restricted", () => {
    // The 13th or any Friday: Fri 6th, Fri 13th, Fri 20th in March 2026; 13 April is a Monday.
    expect(firings("0 0 0 13 * FRI *", "2026-03-01T00:00:00Z", 5)).toEqual([
      "2026-03-06T00:00:00.000Z",
      "2026-03-13T00:00:00.000Z",
      "2026-03-20T00:00:00.000Z",
      "2026-03-27T00:00:00.000Z",
      "2026-04-03T00:00:00.000Z",
    ]);
    expect(firings("0 0 0 13 4 FRI 2026", "2026-04-04T00:00:00Z", 2)).toEqual([
      "2026-04-10T00:00:00.000Z",
      "2026-04-13T00:00:00.000Z",
    ]);
  });

  it("uses the day alone when the weekday is *", () => {
    expect(firings("0 0 0 13 * * *", "2026-03-01T00:00:00Z", 2)).toEqual([
      "2026-03-13T00:00:00.000Z",
      "2026-04-13T00:00:00.000Z",
    ]);
  });

  it("uses the weekday alone when the day is *", () => {
    expect(firings("0 0 0 * * FRI *", "2026-03-01T00:00:00Z", 2)).toEqual([
      "2026-03-06T00:00:00.000Z",
      "2026-03-13T00:00:00.000Z",
    ]);
  });

  it("counts */n as restricted", () => {
    // Odd days or Sundays: Sun 1st, 3rd, 5th, 7th, Sun 8th.
    expect(firings("0 0 0 */2 * SUN *", "2026-02-28T12:00:00Z", 5)).toEqual([
      "2026-03-01T00:00:00.000Z",
      "2026-03-03T00:00:00.000Z",
      "2026-03-05T00:00:00.000Z",
      "2026-03-07T00:00:00.000Z",
      "2026-03-08T00:00:00.000Z",
    ]);
  });
});

describe("leap years and month ends", () => {
  it("fires on 29 February only in leap years", () => {
    expect(firings("0 0 0 29 2 ? *", "2025-01-01T00:00:00Z", 3)).toEqual([
      "2028-02-29T00:00:00.000Z",
      "2032-02-29T00:00:00.000Z",
      "2036-02-29T00:00:00.000Z",
    ]);
  });

  it("skips 2100 (not a leap year, and past the last year)", () => {
    expect(firings("0 0 0 29 2 ? *", "2096-03-01T00:00:00Z")).toEqual([undefined]);
  });

  it("fires on day 31 only in months that have one", () => {
    expect(firings("0 0 0 31 * ? *", "2026-03-31T00:00:00Z", 3)).toEqual([
      "2026-05-31T00:00:00.000Z",
      "2026-07-31T00:00:00.000Z",
      "2026-08-31T00:00:00.000Z",
    ]);
  });

  it("refuses a schedule no date can ever match", () => {
    expect(refusal("0 0 0 30 2 ? *")).toMatch(/never fires/);
    expect(refusal("0 0 0 31 APR,JUN,SEP,NOV ? *")).toMatch(/never fires/);
    expect(refusal("0 0 0 29 2 ? 2097-2099")).toMatch(/never fires/);
  });
});

describe("refusals", () => {
  const cases: [string, string | RegExp][] = [
    ["", "cron expression is empty"],
    ["   ", "cron expression is empty"],
    ["* * * * * *", /has 6 fields; expected 7 .* or the legacy 5/],
    ["* * * *", /has 4 fields/],
    ["* * * * * * * *", /has 8 fields/],
    ["60 * * * * * *", 'cron second field "60": value 60 is out of range 0-59'],
    ["* 60 * * * * *", 'cron minute field "60": value 60 is out of range 0-59'],
    ["* * 24 * * * *", 'cron hour field "24": value 24 is out of range 0-23'],
    ["* * * 0 * * *", 'cron day field "0": value 0 is out of range 1-31'],
    ["* * * 32 * * *", 'cron day field "32": value 32 is out of range 1-31'],
    ["* * * * 13 * *", 'cron month field "13": value 13 is out of range 1-12'],
    ["* * * * 0 * *", 'cron month field "0": value 0 is out of range 1-12'],
    ["* * * ? * 8 *", 'cron weekday field "8": value 8 is out of range 0-7'],
    ["* * * * * * 1969", 'cron year field "1969": value 1969 is out of range 1970-2099'],
    ["* * * * * * 2100", 'cron year field "2100": value 2100 is out of range 1970-2099'],
    ["* * * * * * 99999", 'cron year field "99999": value 99999 is out of range 1970-2099'],
    [
      "* * * * * * 2030-2020",
      'cron year field "2030-2020": range 2030-2020 is reversed (the year does not wrap around)',
    ],
    ["*/0 * * * * * *", 'cron second field "*/0": step 0 is out of range 1-60'],
    ["*/61 * * * * * *", 'cron second field "*/61": step 61 is out of range 1-60'],
    ["* * * ? * */8 *", 'cron weekday field "*/8": step 8 is out of range 1-7'],
    ["1/x * * * * * *", 'cron second field "1/X": step "X" is not a number'],
    ["1/2/3 * * * * * *", 'cron second field "1/2/3": "1/2/3" has more than one "/"'],
    ["1-2-3 * * * * * *", 'cron second field "1-2-3": "1-2-3" has more than one "-"'],
    ["1,,2 * * * * * *", 'cron second field "1,,2": an item of the list is empty'],
    ["1, * * * * * *", 'cron second field "1,": an item of the list is empty'],
    ["-5 * * * * * *", 'cron second field "-5": a value is missing'],
    ["5- * * * * * *", 'cron second field "5-": a value is missing'],
    ["/5 * * * * * *", 'cron second field "/5": a value is missing'],
    ["a * * * * * *", 'cron second field "A": "A" is not a number'],
    ["* * * * FOO * *", 'cron month field "FOO": "FOO" is neither a number nor a month name (JAN-DEC)'],
    ["* * * ? * MONDAY *", 'cron weekday field "MONDAY": "MONDAY" is neither a number nor a weekday name (SUN-SAT)'],
    ["? * * * * * *", 'cron second field "?": "?" is allowed only as the whole day or weekday field'],
    ["* * * * ? * *", 'cron month field "?": "?" is allowed only as the whole day or weekday field'],
    ["* * * ? * ? *", 'cron day and weekday fields cannot both be "?"'],
    ["* * * 1,? * * *", 'cron day field "1,?": "?" must be the whole field'],
    ["* * * ? * 1,? *", 'cron weekday field "1,?": "?" must be the whole field'],
    ["* * * L-3 * ? *", 'cron day field "L-3": "L-3": L and W are allowed only as L, LW or nW'],
    ["* * * W * ? *", 'cron day field "W": "W": W needs one day before it (e.g. 15W)'],
    ["* * * 1-5W * ? *", 'cron day field "1-5W": "1-5W": W needs one day before it (e.g. 15W)'],
    ["* * * 32W * ? *", 'cron day field "32W": value 32 is out of range 1-31'],
    ["* * * 1#2 * ? *", 'cron day field "1#2": "#" is allowed only in the weekday field'],
    ["* * * ? * L *", 'cron weekday field "L": "L" needs a weekday before it (e.g. 5L or FRIL, the last Friday)'],
    ["* * * ? * 8L *", 'cron weekday field "8L": value 8 is out of range 0-7'],
    ["* * * ? * 1#6 *", 'cron weekday field "1#6": "1#6": the occurrence after "#" must be 1-5'],
    ["* * * ? * 1#0 *", 'cron weekday field "1#0": "1#0": the occurrence after "#" must be 1-5'],
    ["* * * ? * #2 *", 'cron weekday field "#2": a value is missing'],
    ["* * * ? * 1#2#3 *", 'cron weekday field "1#2#3": "1#2#3" has more than one "#"'],
    ["* * * * * * L", 'cron year field "L": "L" is not a number'],
    [
      "* * * * * * *;",
      'cron expression contains the character ";"; allowed are digits, letters, space, tab and * ? , / - #',
    ],
    [
      "* * * * * *\n*",
      'cron expression contains the character "\\n"; allowed are digits, letters, space, tab and * ? , / - #',
    ],
    [
      "* * * * * * ５",
      'cron expression contains the character "５"; allowed are digits, letters, space, tab and * ? , / - #',
    ],
  ];
  it.each(cases)("refuses %j", (cron, message) => {
    if (typeof message === "string") expect(refusal(cron)).toBe(message);
    else expect(refusal(cron)).toMatch(message);
  });

  it("refuses text over MAX_CRON_CHARS, and accepts it at the limit", () => {
    const atLimit = `0 0 0 * * * ${"2030,".repeat(16)}2031`.padEnd(MAX_CRON_CHARS, " ");
    expect(atLimit).toHaveLength(MAX_CRON_CHARS);
    expect(parseCron(atLimit).text).toBe(atLimit.trim());
    expect(refusal(`${atLimit} `)).toBe(`cron expression is over ${MAX_CRON_CHARS} characters`);
  });

  it("refuses a value that is not a string", () => {
    expect(refusal(42 as unknown as string)).toBe("cron expression must be a string");
  });
});

describe("search cost", () => {
  it("stays bounded by the field sizes, however far the next firing is", () => {
    const cases = [
      ["0 0 0 29 2 MON 2096-2099", "1970-01-01T00:00:00Z"],
      ["0 0 0 29 2 ? *", "1970-01-01T00:00:00Z"],
      ["59 59 23 31 12 ? 2099", "1970-01-01T00:00:00Z"],
      ["* * * * * * *", "2026-03-10T08:00:00Z"],
      ["0-58 0-58 0-22 * * * *", "2026-03-10T23:59:59Z"],
    ] as const;
    // 130 years × 12 months × (1 + 31 days) + the years' own pass + one pass over each time field.
    const bound = (CRON_MAX_YEAR - 1970 + 1) * (1 + 12 * 32) + 24 + 60 + 60 + 1;
    for (const [cron, from] of cases) {
      const { time, steps } = searchNextFire(parseCron(cron), at(from));
      expect(time).toBeDefined();
      expect(steps).toBeLessThanOrEqual(bound);
    }
    // An every-second schedule: the earlier years and months are passed one step each, then it is found.
    expect(searchNextFire(parseCron("* * * * * * *"), at("2026-03-10T08:00:00Z")).steps).toBeLessThan(150);
  });
});

// ---------------------------------------------------------------------------------------------
// Property: nextFireAfter agrees with a brute-force reference that walks day by day and then second
// by second, judging each date and time directly from a model of the generated expression (not
// from the parser's sets).

type Item =
  | { kind: "star"; step?: number }
  | { kind: "value"; value: number }
  | { kind: "from"; value: number; step: number }
  | { kind: "range"; from: number; to: number; step?: number };

interface FieldModel {
  min: number;
  max: number;
  items: Item[];
  text: string;
}

const MONTH_NAMES = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const WEEKDAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

function itemArb(min: number, max: number): fc.Arbitrary<Item> {
  const value = fc.integer({ min, max });
  const step = fc.integer({ min: 1, max: Math.max(1, Math.ceil((max - min + 1) / 2)) });
  return fc.oneof(
    fc.constant<Item>({ kind: "star" }),
    step.map<Item>((s) => ({ kind: "star", step: s })),
    value.map<Item>((v) => ({ kind: "value", value: v })),
    fc.tuple(value, step).map<Item>(([v, s]) => ({ kind: "from", value: v, step: s })),
    fc.tuple(value, value, fc.option(step, { nil: undefined })).map<Item>(([a, b, s]) => ({
      kind: "range",
      from: a,
      to: b,
      step: s,
    })),
  );
}

function renderValue(value: number, names: string[] | undefined, min: number, useName: boolean): string {
  return names && useName ? (names[value - min] as string) : String(value);
}

/**
 * A field over min-max. `years` models a slice of the year field: no `*` (which means 1970-2099
 * there) and no reversed range (years do not wrap).
 */
function fieldArb(min: number, max: number, names?: string[], years = false): fc.Arbitrary<FieldModel> {
  return fc
    .tuple(fc.array(itemArb(min, max), { minLength: 1, maxLength: 3 }), fc.boolean())
    .map(([rawItems, useName]) => {
      const items = rawItems.map((item): Item => {
        if (!years) return item;
        if (item.kind === "star") return { kind: "range", from: min, to: max, step: item.step };
        if (item.kind === "range" && item.from > item.to) return { ...item, from: item.to, to: item.from };
        return item;
      });
      const text = items
        .map((item) => {
          const v = (n: number) => renderValue(n, names, min, useName);
          const s = (step: number | undefined) => (step === undefined ? "" : `/${step}`);
          if (item.kind === "star") return `*${s(item.step)}`;
          if (item.kind === "value") return v(item.value);
          if (item.kind === "from") return `${v(item.value)}/${item.step}`;
          return `${v(item.from)}-${v(item.to)}${s(item.step)}`;
        })
        .join(",");
      return { min, max, items, text };
    });
}

/** Whether `value` is in the field, judged item by item with modular arithmetic. */
function fieldMatches(field: FieldModel, value: number): boolean {
  const size = field.max - field.min + 1;
  return field.items.some((item) => {
    if (item.kind === "star") return (value - field.min) % (item.step ?? 1) === 0;
    if (item.kind === "value") return value === item.value;
    if (item.kind === "from") return value >= item.value && (value - item.value) % item.step === 0;
    const position = (((value - item.from) % size) + size) % size;
    const length = (((item.to - item.from) % size) + size) % size;
    return position <= length && position % (item.step ?? 1) === 0;
  });
}

type DaySpecial = { kind: "L" } | { kind: "LW" } | { kind: "W"; day: number };
type WeekdaySpecial = { kind: "last"; weekday: number } | { kind: "nth"; weekday: number; k: number };

interface ExpressionModel {
  text: string;
  second: FieldModel;
  minute: FieldModel;
  hour: FieldModel;
  day: { mode: "*" | "?" | "set"; plain?: FieldModel; specials: DaySpecial[] };
  month: FieldModel;
  weekday: { mode: "*" | "?" | "set"; plain?: FieldModel; specials: WeekdaySpecial[] };
  year: FieldModel;
}

const daySpecialArb: fc.Arbitrary<DaySpecial> = fc.oneof(
  fc.constant<DaySpecial>({ kind: "L" }),
  fc.constant<DaySpecial>({ kind: "LW" }),
  fc.integer({ min: 1, max: 31 }).map<DaySpecial>((day) => ({ kind: "W", day })),
);
const weekdaySpecialArb: fc.Arbitrary<WeekdaySpecial> = fc.oneof(
  fc.integer({ min: 0, max: 6 }).map<WeekdaySpecial>((weekday) => ({ kind: "last", weekday })),
  fc
    .tuple(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 1, max: 5 }))
    .map<WeekdaySpecial>(([weekday, k]) => ({ kind: "nth", weekday, k })),
);

const dayFieldArb = fc.oneof(
  { arbitrary: fc.constant({ mode: "*" as const, specials: [] as DaySpecial[] }), weight: 2 },
  { arbitrary: fc.constant({ mode: "?" as const, specials: [] as DaySpecial[] }), weight: 2 },
  {
    arbitrary: fc
      .tuple(fc.option(fieldArb(1, 31), { nil: undefined }), fc.array(daySpecialArb, { maxLength: 2 }))
      .filter(([plain, specials]) => plain !== undefined || specials.length > 0)
      .map(([plain, specials]) => ({ mode: "set" as const, plain, specials })),
    weight: 3,
  },
);
const weekdayFieldArb = fc.oneof(
  { arbitrary: fc.constant({ mode: "*" as const, specials: [] as WeekdaySpecial[] }), weight: 2 },
  { arbitrary: fc.constant({ mode: "?" as const, specials: [] as WeekdaySpecial[] }), weight: 2 },
  {
    arbitrary: fc
      .tuple(
        fc.option(fieldArb(0, 6, WEEKDAY_NAMES), { nil: undefined }),
        fc.array(weekdaySpecialArb, { maxLength: 2 }),
      )
      .filter(([plain, specials]) => plain !== undefined || specials.length > 0)
      .map(([plain, specials]) => ({ mode: "set" as const, plain, specials })),
    weight: 3,
  },
);

/** Second, minute and hour fields, often the whole range so that the search crosses days. */
function timeFieldArb(max: number): fc.Arbitrary<FieldModel> {
  return fc.oneof(fieldArb(0, max), fc.constant<FieldModel>({ min: 0, max, items: [{ kind: "star" }], text: "*" }));
}

const yearFieldArb = fc.oneof(
  { arbitrary: fc.constant<FieldModel>({ min: 1970, max: 2099, items: [{ kind: "star" }], text: "*" }), weight: 4 },
  { arbitrary: fieldArb(2024, 2032, undefined, true), weight: 1 },
);

const expressionArb: fc.Arbitrary<ExpressionModel> = fc
  .record({
    second: timeFieldArb(59),
    minute: timeFieldArb(59),
    hour: timeFieldArb(23),
    day: dayFieldArb,
    month: fc.oneof(
      fc.constant<FieldModel>({ min: 1, max: 12, items: [{ kind: "star" }], text: "*" }),
      fieldArb(1, 12, MONTH_NAMES),
    ),
    weekday: weekdayFieldArb,
    year: yearFieldArb,
  })
  .filter((model) => !(model.day.mode === "?" && model.weekday.mode === "?"))
  .map((model) => {
    const dayText =
      model.day.mode === "set"
        ? [
            ...(model.day.plain ? [model.day.plain.text] : []),
            ...model.day.specials.map((s) => (s.kind === "W" ? `${s.day}W` : s.kind)),
          ].join(",")
        : model.day.mode;
    const weekdayText =
      model.weekday.mode === "set"
        ? [
            ...(model.weekday.plain ? [model.weekday.plain.text] : []),
            ...model.weekday.specials.map((s) => (s.kind === "last" ? `${s.weekday}L` : `${s.weekday}#${s.k}`)),
          ].join(",")
        : model.weekday.mode;
    const text = [
      model.second.text,
      model.minute.text,
      model.hour.text,
      dayText,
      model.month.text,
      weekdayText,
      model.year.text,
    ].join(" ");
    return { ...model, text };
  });

/** Whether a calendar date matches, found by looking at the month's days one by one. */
function dateMatches(model: ExpressionModel, year: number, month: number, day: number): boolean {
  if (!fieldMatches(model.year, year) || !fieldMatches(model.month, month)) return false;
  const lastDay = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const weekdayOf = (d: number) => new Date(Date.UTC(year, month - 1, d)).getUTCDay();
  const isWorkday = (d: number) => weekdayOf(d) >= 1 && weekdayOf(d) <= 5;
  const monthDays = Array.from({ length: lastDay }, (_, i) => i + 1);
  const dayHit = (): boolean => {
    if (model.day.plain && fieldMatches(model.day.plain, day)) return true;
    return model.day.specials.some((special) => {
      if (special.kind === "L") return day === lastDay;
      if (special.kind === "LW") return day === Math.max(...monthDays.filter(isWorkday));
      if (special.day > lastDay) return false;
      const nearest = monthDays
        .filter(isWorkday)
        .reduce((best, d) => (Math.abs(d - special.day) < Math.abs(best - special.day) ? d : best));
      return day === nearest;
    });
  };
  const weekdayHit = (): boolean => {
    const weekday = weekdayOf(day);
    if (model.weekday.plain && fieldMatches(model.weekday.plain, weekday)) return true;
    return model.weekday.specials.some((special) => {
      if (special.weekday !== weekday) return false;
      const sameBefore = monthDays.filter((d) => d < day && weekdayOf(d) === weekday).length;
      const sameAfter = monthDays.filter((d) => d > day && weekdayOf(d) === weekday).length;
      return special.kind === "last" ? sameAfter === 0 : sameBefore + 1 === special.k;
    });
  };
  // A field is unrestricted only when its text is exactly `*` or `?`.
  const [, , , dayText, , weekdayText] = model.text.split(" ");
  const dayRestricted = dayText !== "*" && dayText !== "?";
  const weekdayRestricted = weekdayText !== "*" && weekdayText !== "?";
  if (dayRestricted && weekdayRestricted) return dayHit() || weekdayHit();
  if (dayRestricted) return dayHit();
  if (weekdayRestricted) return weekdayHit();
  return true;
}

function timeMatches(model: ExpressionModel, secondOfDay: number): boolean {
  return (
    fieldMatches(model.hour, Math.floor(secondOfDay / 3600)) &&
    fieldMatches(model.minute, Math.floor(secondOfDay / 60) % 60) &&
    fieldMatches(model.second, secondOfDay % 60)
  );
}

/** The first matching second after `afterMs` within `windowDays` days, by brute force. */
function referenceNext(model: ExpressionModel, afterMs: number, windowDays: number): number | undefined {
  const firstSecond = Math.floor(afterMs / 1000) + 1;
  const firstDay = Math.floor(firstSecond / 86_400);
  for (let dayIndex = firstDay; dayIndex < firstDay + windowDays; dayIndex++) {
    const date = new Date(dayIndex * 86_400_000);
    if (!dateMatches(model, date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate())) continue;
    for (let second = dayIndex === firstDay ? firstSecond % 86_400 : 0; second < 86_400; second++) {
      if (timeMatches(model, second)) return (dayIndex * 86_400 + second) * 1000;
    }
  }
  return undefined;
}

/** Whether an instant matches the model, judged directly. */
function instantMatches(model: ExpressionModel, ms: number): boolean {
  const date = new Date(ms);
  return (
    dateMatches(model, date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate()) &&
    timeMatches(model, Math.floor((ms % 86_400_000) / 1000))
  );
}

describe("nextFireAfter against a brute-force reference", () => {
  const WINDOW_DAYS = 120;
  const afterArb = fc.integer({ min: Date.UTC(2024, 0, 1), max: Date.UTC(2030, 0, 1) });

  it("finds the same first firing for random valid expressions", () => {
    fc.assert(
      fc.property(expressionArb, afterArb, (model, afterMs) => {
        let schedule: ReturnType<typeof parseCron>;
        try {
          schedule = parseCron(model.text);
        } catch (error) {
          // Only a schedule no date can match may be refused; the reference finds nothing either.
          expect((error as Error).message).toMatch(/never fires/);
          expect(referenceNext(model, afterMs, WINDOW_DAYS)).toBeUndefined();
          return;
        }
        const actual = nextFireAfter(schedule, afterMs);
        const expected = referenceNext(model, afterMs, WINDOW_DAYS);
        if (expected !== undefined) {
          expect(iso(actual)).toBe(iso(expected));
        } else if (actual !== undefined) {
          // Beyond the window: later than it, and a real firing.
          expect(actual).toBeGreaterThanOrEqual(Math.floor(afterMs / 86_400_000 + WINDOW_DAYS) * 86_400_000);
          expect(instantMatches(model, actual)).toBe(true);
        }
      }),
      { numRuns: 1000, seed: 20261126 },
    );
  });
});
