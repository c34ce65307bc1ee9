// `npm run chaos`: the fault-injection suite. Each scenario starts the real platform (wrangler dev
// with real containers, its own state folder), injects its fault and prints its figures as one JSON
// object on standard output; a summary object follows. Exits 1 when any expectation fails.
//
//   npm run chaos                         full size (1,000 events for the runtime kill, 10,000 for
//                                         duplicate deliveries)
//   npm run chaos -- --size small         CI size (CHAOS_SIZE=small does the same)
//   npm run chaos -- --only runtime-kill,d1-outage
//
// Needs root (the external run counter lives in a network namespace: scripts/chaos/counter.ts),
// iproute2, python3 and the Docker engine of `npm start`. Progress goes to standard error.
import { containerFault } from "./chaos/container-faults";
import { startRunCounter } from "./chaos/counter";
import { d1Outage } from "./chaos/d1-outage";
import { duplicateDeliveries } from "./chaos/duplicates";
import { log, type ScenarioReport } from "./chaos/harness";
import { runtimeKill } from "./chaos/runtime-kill";
import { stuckStart } from "./chaos/stuck-start";

/** Scenario sizes: full (the figures) and small (CI, a few minutes). */
const SIZES = {
  full: { runtimeKillEvents: 1_000, duplicateEvents: 10_000, containerFaultSamples: 5 },
  small: { runtimeKillEvents: 100, duplicateEvents: 500, containerFaultSamples: 2 },
} as const;
type SizeName = keyof typeof SIZES;

const SCENARIOS = [
  "runtime-kill",
  "container-kill",
  "agent-crash",
  "duplicate-deliveries",
  "d1-outage",
  "stuck-start",
] as const;
type ScenarioName = (typeof SCENARIOS)[number];

/** The value following a command-line flag, if given. */
function flag(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index >= 0 ? process.argv[index + 1] : undefined;
}

function parseSize(): SizeName {
  const size = flag("--size") ?? process.env.CHAOS_SIZE ?? "full";
  if (size !== "full" && size !== "small") throw new Error(`--size must be full or small, not ${size}`);
  return size;
}

function parseOnly(): ScenarioName[] {
  const only = flag("--only") ?? process.env.CHAOS_ONLY;
  if (!only) return [...SCENARIOS];
  const names = only.split(",");
  for (const name of names) {
    if (!(SCENARIOS as readonly string[]).includes(name))
      throw new Error(`unknown scenario ${name}; one of ${SCENARIOS.join(", ")}`);
  }
  return names as ScenarioName[];
}

async function main(): Promise<number> {
  const size = parseSize();
  const only = parseOnly();
  const sizes = SIZES[size];
  const counter = await startRunCounter();
  log(`size ${size}; scenarios ${only.join(", ")}; run counter at ${counter.url}`);
  const reports: ScenarioReport[] = [];
  const failures: { scenario: string; error: string }[] = [];
  try {
    for (const name of only) {
      try {
        const figures = await runScenario(name, counter, sizes);
        reports.push(figures);
        process.stdout.write(`${JSON.stringify(figures)}\n`);
      } catch (error) {
        log(`${name} could not run: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        failures.push({ scenario: name, error: String(error) });
        process.stdout.write(`${JSON.stringify({ scenario: name, pass: false, error: String(error) })}\n`);
      }
    }
  } finally {
    counter.stop();
  }
  const summary = {
    summary: true,
    size,
    pass: failures.length === 0 && reports.every((figures) => figures.pass),
    scenarios: [
      ...reports.map((figures) => ({
        scenario: figures.scenario,
        pass: figures.pass,
        accepted: figures.accepted,
        terminal: figures.terminal,
        lost: figures.lost,
        runTwice: figures.runTwice,
        timeToTerminalAfterFaultMs: figures.timeToTerminalAfterFaultMs,
        failed: figures.expectations.filter((expectation) => !expectation.pass).map((expectation) => expectation.name),
      })),
      ...failures.map((failure) => ({ scenario: failure.scenario, pass: false, error: failure.error })),
    ],
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  return summary.pass ? 0 : 1;
}

function runScenario(
  name: ScenarioName,
  counter: Awaited<ReturnType<typeof startRunCounter>>,
  sizes: (typeof SIZES)[SizeName],
): Promise<ScenarioReport> {
  switch (name) {
    case "runtime-kill":
      return runtimeKill(counter, sizes.runtimeKillEvents);
    case "container-kill":
      return containerFault(counter, "container-kill", sizes.containerFaultSamples);
    case "agent-crash":
      return containerFault(counter, "agent-crash", sizes.containerFaultSamples);
    case "duplicate-deliveries":
      return duplicateDeliveries(counter, sizes.duplicateEvents);
    case "d1-outage":
      return d1Outage(counter);
    case "stuck-start":
      return stuckStart(counter);
    default: {
      const unreachable: never = name;
      return unreachable;
    }
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
