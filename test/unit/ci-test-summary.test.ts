// The CI summary line counts from vitest's JSON reports (fixtures written by vitest 4 itself: a file
// with 2 passed, 1 failed, 1 skipped and 1 todo test beside a file whose import fails; and a run that
// found no test files), and fails a suite that ran fewer tests than its floor.
import { describe, expect, it } from "vitest";
import { parseFloors, parseReport, suiteLines, summarize } from "../../.ci/test-summary-core";
import mixed from "./fixtures/vitest-report.json";
import noFiles from "./fixtures/vitest-report-no-files.json";

const MIXED = parseReport("unit", JSON.stringify(mixed));
const NO_FILES = parseReport("e2e", JSON.stringify(noFiles));

describe("the CI test summary", () => {
  it("counts passed, failed and skipped tests (todo as skipped) and a test file that failed to run", () => {
    const summary = summarize(new Map([["unit", 3]]), new Map([["unit", MIXED]]));
    expect(summary.line).toBe("2 passed, 1 failed, 2 skipped");
    expect(summary.suites).toEqual([
      { suite: "unit", passed: 2, failed: 1, skipped: 2, failedFiles: 1, floor: 3, reported: true },
    ]);
    expect(summary.problems).toEqual(["unit: 1 failed", "unit: 1 test files failed to run"]);
    expect(suiteLines(summary)).toEqual(["unit: 2 passed, 1 failed, 2 skipped (floor 3 run)"]);
  });

  it("sums the suites into one line, and passes a run at its floors with no failure", () => {
    const passing = { ...NO_FILES, numPassedTests: 83 };
    const summary = summarize(
      new Map([
        ["agent", 81],
        ["e2e", 83],
      ]),
      new Map([
        ["agent", { ...NO_FILES, numPassedTests: 81, numPendingTests: 1 }],
        ["e2e", passing],
      ]),
    );
    expect(summary.line).toBe("164 passed, 0 failed, 1 skipped");
    expect(summary.problems).toEqual([]);
  });

  it("fails a suite that ran fewer tests than its floor: one that found no test files at all", () => {
    const summary = summarize(new Map([["e2e", 83]]), new Map([["e2e", NO_FILES]]));
    expect(summary.line).toBe("0 passed, 0 failed, 0 skipped");
    expect(summary.problems).toHaveLength(1);
    expect(summary.problems[0]).toMatch(/^e2e: 0 tests ran, fewer than its floor of 83/);
  });

  it("counts failed tests as run against the floor, and skipped ones as not run", () => {
    const atFloor = summarize(new Map([["unit", 3]]), new Map([["unit", MIXED]]));
    expect(atFloor.problems.some((problem) => problem.includes("floor"))).toBe(false);
    const above = summarize(new Map([["unit", 4]]), new Map([["unit", MIXED]]));
    expect(above.problems.some((problem) => problem.startsWith("unit: 3 tests ran, fewer than its floor of 4"))).toBe(
      true,
    );
  });

  it("fails a suite with no report and a report with no floor", () => {
    const summary = summarize(new Map([["agent", 1]]), new Map([["bench", MIXED]]));
    expect(summary.problems).toEqual([
      "agent: no test report (the suite did not run, or crashed)",
      "bench: a test report without a floor in .ci/test-count-floor",
    ]);
    expect(suiteLines(summary)).toEqual(["agent: no report (floor 1 run)"]);
  });

  it("reads the floor file's `suite count` lines and comments, and refuses a malformed one", () => {
    expect(parseFloors("# floors\nunit 236\n\nagent 81 # Node suite\n")).toEqual(
      new Map([
        ["unit", 236],
        ["agent", 81],
      ]),
    );
    expect(() => parseFloors("unit many\n")).toThrow('floor file line 1: expected "suite count"');
    expect(() => parseFloors("unit 1\nunit 2\n")).toThrow("suite unit is listed twice");
    expect(() => parseFloors("# nothing\n")).toThrow("floor file lists no suite");
  });

  it("refuses a report that is not vitest's JSON, naming the suite", () => {
    expect(() => parseReport("unit", "not json")).toThrow("unit: the test report is not JSON");
    expect(() => parseReport("unit", JSON.stringify({ numPassedTests: 1 }))).toThrow("unit: not a vitest JSON report");
  });
});
