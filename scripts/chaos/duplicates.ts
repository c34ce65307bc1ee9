// Scenario "duplicate-deliveries": the platform runs with the test-only fault switch
// CHAOS_DUPLICATE_DISPATCH, so every dispatch message is delivered twice, some copies delayed by
// 1-3 s and some ahead of their original (worker/events/dispatch-send.ts). Every handler counts its
// own run in the external counter: zero double executions is expected.
import { ApiClient } from "../../test/helpers/api-client";
import type { RunCounter } from "./counter";
import {
  commonFigures,
  createCountingFunction,
  distribution,
  type Expectation,
  invokeMany,
  log,
  report,
  type ScenarioReport,
  sleep,
  startChaosPlatform,
  timesToTerminal,
  unfinished,
  waitListConverged,
  waitTerminal,
} from "./harness";

/** Functions the events are spread over. */
const FUNCTIONS = 4;
/** Concurrency of each function. */
const CONCURRENCY = 5;
/** How long every event may take to end, in ms (10,000 events on a 2-core machine). */
const TERMINAL_TIMEOUT_MS = 60 * 60_000;
/** How long the list may take to converge after the events ended, in ms. */
const LIST_TIMEOUT_MS = 5 * 60_000;
/** Wait after the last event ended for late (delayed) copies to be delivered, in ms. */
const LATE_COPIES_WAIT_MS = 10_000;

export async function duplicateDeliveries(counter: RunCounter, events: number): Promise<ScenarioReport> {
  const startedAt = Date.now();
  log(`duplicate-deliveries: ${events} events over ${FUNCTIONS} functions`);
  const platform = await startChaosPlatform({ vars: { CHAOS_DUPLICATE_DISPATCH: "true" } });
  try {
    const api = new ApiClient(platform.baseUrl);
    const names: string[] = [];
    for (let f = 0; f < FUNCTIONS; f++)
      names.push(await createCountingFunction(api, counter.url, "dup", { maxConcurrency: CONCURRENCY }));
    const byFunction = new Map<string, string[]>();
    const perFunction = Math.ceil(events / FUNCTIONS);
    const faultAt = Date.now();
    await Promise.all(
      names.map(async (name, f) => {
        const count = Math.max(0, Math.min(perFunction, events - f * perFunction));
        byFunction.set(name, await invokeMany(api, name, count, () => ({})));
      }),
    );
    const ids = [...byFunction.values()].flat();
    log(`duplicate-deliveries: ${ids.length} accepted`);
    const views = await waitTerminal(api, ids, TERMINAL_TIMEOUT_MS);
    // A delayed copy may arrive after its event ended: give those time to (not) run again.
    await sleep(LATE_COPIES_WAIT_MS);
    const { missing, stale } = await waitListConverged(api, byFunction, views, LIST_TIMEOUT_MS);
    const runs = await counter.runs();
    const figures = commonFigures(ids, views, runs);
    const counted = ids.reduce((sum, id) => sum + (runs.get(id) ?? 0), 0);
    const expectations: Expectation[] = [
      {
        name: "every accepted RequestId reaches a terminal status",
        pass: figures.lost === 0,
        detail: figures.statuses,
      },
      { name: "every event finishes", pass: (figures.statuses.FINISHED ?? 0) === ids.length },
      {
        name: "zero double executions (external counter)",
        pass: figures.runTwice === 0,
        detail: ids.filter((id) => (runs.get(id) ?? 0) > 1).slice(0, 10),
      },
      { name: "the counter saw exactly one run per event", pass: counted === ids.length, detail: { counted } },
      {
        name: "no event is missing from the list or stale there",
        pass: missing.length === 0 && stale.length === 0,
        detail: { missingCount: missing.length, staleCount: stale.length, missing: missing.slice(0, 10) },
      },
    ];
    return report(
      {
        scenario: "duplicate-deliveries",
        ...figures,
        // The fault is present from the first invocation: time from it to each end.
        timeToTerminalAfterFaultMs: distribution(timesToTerminal(views.values(), faultAt)),
        countedRuns: counted,
        unfinished: unfinished(ids, views, runs),
        expectations,
      },
      startedAt,
    );
  } finally {
    await platform.stop();
  }
}
