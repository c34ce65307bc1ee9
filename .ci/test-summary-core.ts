// The CI summary of a test run, from vitest's JSON reports (one per suite): passed, failed and
// skipped tests over all suites, and a floor per suite on the tests run, against a suite or a test
// file that silently stops running. Pure (no file system): .ci/test-summary.ts reads the files.
import { z } from "zod";

/** The part of vitest's JSON reporter output (`--reporter=json`) the summary reads. */
const vitestJsonReportSchema = z.object({
  numPassedTests: z.number().int().min(0),
  numFailedTests: z.number().int().min(0),
  /** Skipped tests (`it.skip`, `describe.skip`, a filter). */
  numPendingTests: z.number().int().min(0),
  numTodoTests: z.number().int().min(0),
  testResults: z.array(
    z.object({
      name: z.string(),
      status: z.string(),
      message: z.string().optional(),
      assertionResults: z.array(z.unknown()),
    }),
  ),
});
/** One suite's vitest JSON report, as far as the summary reads it. */
export type VitestJsonReport = z.infer<typeof vitestJsonReportSchema>;

/** One suite's counts and what is wrong with them. */
export interface SuiteSummary {
  suite: string;
  passed: number;
  failed: number;
  skipped: number;
  /** Test files that failed without running a test (an import or a hook failed). */
  failedFiles: number;
  /** The floor on passed + failed (tests run) recorded for the suite. */
  floor: number;
  /** False when the suite has no report (it did not run, or crashed before writing one). */
  reported: boolean;
}

/** The whole run: the closing line, the per-suite lines, and every reason the run fails. */
export interface TestSummary {
  suites: SuiteSummary[];
  passed: number;
  failed: number;
  skipped: number;
  /** "N passed, F failed, S skipped". */
  line: string;
  /** Why the run fails (empty when it passes). */
  problems: string[];
}

/** Parses one suite's JSON report; throws an error naming the suite when it is not one. */
export function parseReport(suite: string, text: string): VitestJsonReport {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${suite}: the test report is not JSON (${String(error)})`);
  }
  const parsed = vitestJsonReportSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${suite}: not a vitest JSON report (${issue?.path.join(".") || "(root)"}: ${issue?.message})`);
  }
  return parsed.data;
}

/**
 * Parses the floor file: one `suite count` per line (the suites of `npm test`, each with the
 * fewest tests it may run), `#` starting a comment. Throws on a malformed line or a repeated suite.
 */
export function parseFloors(text: string): Map<string, number> {
  const floors = new Map<string, number>();
  for (const [index, raw] of text.split("\n").entries()) {
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") continue;
    const match = /^([a-z0-9-]+)\s+(\d+)$/.exec(line);
    if (!match?.[1] || !match[2]) throw new Error(`floor file line ${index + 1}: expected "suite count", got "${raw}"`);
    if (floors.has(match[1])) throw new Error(`floor file line ${index + 1}: suite ${match[1]} is listed twice`);
    floors.set(match[1], Number(match[2]));
  }
  if (floors.size === 0) throw new Error("floor file lists no suite");
  return floors;
}

/** One suite's counts from its report (undefined when the suite wrote none). */
function suiteSummary(suite: string, floor: number, report: VitestJsonReport | undefined): SuiteSummary {
  if (!report) return { suite, passed: 0, failed: 0, skipped: 0, failedFiles: 0, floor, reported: false };
  return {
    suite,
    passed: report.numPassedTests,
    failed: report.numFailedTests,
    skipped: report.numPendingTests + report.numTodoTests,
    failedFiles: report.testResults.filter((file) => file.status === "failed" && file.assertionResults.length === 0)
      .length,
    floor,
    reported: true,
  };
}

/** The reasons one suite fails the run. */
function suiteProblems(summary: SuiteSummary): string[] {
  if (!summary.reported) return [`${summary.suite}: no test report (the suite did not run, or crashed)`];
  const problems: string[] = [];
  const run = summary.passed + summary.failed;
  if (summary.failed > 0) problems.push(`${summary.suite}: ${summary.failed} failed`);
  if (summary.failedFiles > 0) problems.push(`${summary.suite}: ${summary.failedFiles} test files failed to run`);
  if (run < summary.floor) {
    problems.push(
      `${summary.suite}: ${run} tests ran, fewer than its floor of ${summary.floor} (.ci/test-count-floor): ` +
        "a test file or suite did not run; if tests were removed on purpose, lower the floor in the same change",
    );
  }
  return problems;
}

/**
 * Sums the suites named in the floor file over their reports. A report of a suite without a floor
 * is a problem too: every suite CI runs has one.
 */
export function summarize(
  floors: ReadonlyMap<string, number>,
  reports: ReadonlyMap<string, VitestJsonReport>,
): TestSummary {
  const suites = [...floors].map(([suite, floor]) => suiteSummary(suite, floor, reports.get(suite)));
  const problems = suites.flatMap(suiteProblems);
  for (const suite of reports.keys()) {
    if (!floors.has(suite)) problems.push(`${suite}: a test report without a floor in .ci/test-count-floor`);
  }
  const passed = suites.reduce((sum, suite) => sum + suite.passed, 0);
  const failed = suites.reduce((sum, suite) => sum + suite.failed, 0);
  const skipped = suites.reduce((sum, suite) => sum + suite.skipped, 0);
  return { suites, passed, failed, skipped, line: `${passed} passed, ${failed} failed, ${skipped} skipped`, problems };
}

/** The per-suite lines printed above the closing line. */
export function suiteLines(summary: TestSummary): string[] {
  return summary.suites.map((suite) =>
    suite.reported
      ? `${suite.suite}: ${suite.passed} passed, ${suite.failed} failed, ${suite.skipped} skipped (floor ${suite.floor} run)`
      : `${suite.suite}: no report (floor ${suite.floor} run)`,
  );
}
