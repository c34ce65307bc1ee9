// Prints the CI summary of `npm test` from the suites' vitest JSON reports and fails (exit 1) when
// a test failed, a suite wrote no report, or a suite ran fewer tests than its floor.
// Usage: tsx .ci/test-summary.ts <reports-dir> [floor-file]   (reports are <dir>/<suite>.json;
// `npm test` writes them when TEST_REPORT_DIR names the directory, see package.json).
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseFloors, parseReport, suiteLines, summarize, type VitestJsonReport } from "./test-summary-core";

/** The floor file, relative to the repository root (the working directory of npm scripts). */
const DEFAULT_FLOOR_FILE = ".ci/test-count-floor";

function main(argv: readonly string[]): number {
  const [directory, floorFile = DEFAULT_FLOOR_FILE] = argv;
  if (!directory) {
    console.error("usage: tsx .ci/test-summary.ts <reports-dir> [floor-file]");
    return 2;
  }
  const floors = parseFloors(readFileSync(floorFile, "utf8"));
  const reports = new Map<string, VitestJsonReport>();
  for (const suite of floors.keys()) {
    const file = path.join(directory, `${suite}.json`);
    if (existsSync(file)) reports.set(suite, parseReport(suite, readFileSync(file, "utf8")));
  }
  const summary = summarize(floors, reports);
  for (const line of suiteLines(summary)) console.log(line);
  console.log(summary.line);
  for (const problem of summary.problems) console.error(`FAIL ${problem}`);
  return summary.problems.length === 0 ? 0 : 1;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (error) {
  console.error(`test summary: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 2;
}
