// Scenario "runtime-kill": kill -9 of the whole local runtime (start script, container guard,
// wrangler, workerd) with events accepted and in flight, some running long handlers and most still
// queued; restart on the same state folder and port, as `npm start` would.
import { ApiClient } from "../../test/helpers/api-client";
import type { RunCounter } from "./counter";
import {
  commonFigures,
  containersOfRun,
  createCountingFunction,
  distribution,
  type Expectation,
  invokeMany,
  log,
  report,
  type ScenarioReport,
  sidecarOf,
  startChaosPlatform,
  timesToTerminal,
  unfinished,
  waitListConverged,
  waitTerminal,
  workerdRunOf,
} from "./harness";

/** Long handlers running when the runtime dies (their function's concurrency). */
const LONG_EVENTS = 5;
/** How long a long handler works, in ms: it is still running at the kill. */
const LONG_RUN_MS = 120_000;
/** How long a short handler works, in ms. */
const SHORT_RUN_MS = 50;
/** Concurrency of the function of short events: most of them are still queued at the kill. */
const SHORT_CONCURRENCY = 10;
/** How long every accepted event may take to end after the restart, in ms. */
const TERMINAL_TIMEOUT_MS = 30 * 60_000;
/** How long the list may take to show every event's final status after they ended, in ms. */
const LIST_TIMEOUT_MS = 5 * 60_000;
/** How long the long handlers may take to start, in ms. */
const START_WAIT_MS = 5 * 60_000;

export async function runtimeKill(counter: RunCounter, events: number): Promise<ScenarioReport> {
  const startedAt = Date.now();
  log(`runtime-kill: ${events} events, ${LONG_EVENTS} of them long`);
  const first = await startChaosPlatform();
  const port = Number(new URL(first.baseUrl).port);
  let second: Awaited<ReturnType<typeof startChaosPlatform>> | undefined;
  try {
    const api = new ApiClient(first.baseUrl);
    const longFunction = await createCountingFunction(api, counter.url, "kill-long", {
      maxConcurrency: LONG_EVENTS,
      timeout: 600,
    });
    const shortFunction = await createCountingFunction(api, counter.url, "kill-short", {
      maxConcurrency: SHORT_CONCURRENCY,
    });
    const longIds = await invokeMany(api, longFunction, LONG_EVENTS, () => ({ runMs: LONG_RUN_MS }));
    const deadRun = workerdRunOf(await sidecarOf(api, longIds[0] as string, START_WAIT_MS));
    await Promise.all(longIds.map((id) => api.waitForEvent(id, (event) => event.phase === "running", START_WAIT_MS)));
    const shortIds = await invokeMany(api, shortFunction, events - LONG_EVENTS, () => ({ runMs: SHORT_RUN_MS }));
    const ids = [...longIds, ...shortIds];
    log(`runtime-kill: ${ids.length} accepted; killing the runtime`);

    const faultAt = Date.now();
    await first.kill();
    const orphans = containersOfRun(deadRun);
    log(`runtime-kill: the dead run ${deadRun} left ${orphans.length} containers; restarting on port ${port}`);
    let restartedOnSamePort = true;
    try {
      second = await startChaosPlatform({ stateDir: first.stateDir, port });
    } catch (error) {
      // The dead runtime's port can be taken meanwhile (seen: workerd's "Address already in use"):
      // the state folder is what carries the events, so start again on a free port.
      log(`runtime-kill: restart on port ${port} failed (${String(error).slice(0, 200)}); on a free port instead`);
      restartedOnSamePort = false;
      second = await startChaosPlatform({ stateDir: first.stateDir });
    }
    const restartedAt = Date.now();
    const leftAfterRestart = containersOfRun(deadRun);

    const again = new ApiClient(second.baseUrl);
    const views = await waitTerminal(again, ids, TERMINAL_TIMEOUT_MS);
    const { missing, stale } = await waitListConverged(
      again,
      new Map([
        [longFunction, longIds],
        [shortFunction, shortIds],
      ]),
      views,
      LIST_TIMEOUT_MS,
    );
    const runs = await counter.runs();
    const figures = commonFigures(ids, views, runs);
    const failedWithoutRunning = ids.filter((id) => views.get(id)?.status === "FAILED" && (runs.get(id) ?? 0) === 0);
    const neverRan = shortIds.filter((id) => views.get(id)?.status === "FINISHED" && (runs.get(id) ?? 0) === 0);
    const expectations: Expectation[] = [
      {
        name: "every accepted RequestId reaches a terminal status",
        pass: figures.lost === 0,
        detail: figures.statuses,
      },
      { name: "no event runs twice (external counter)", pass: figures.runTwice === 0 },
      {
        name: "a FINISHED event ran (external counter)",
        pass: neverRan.length === 0,
        detail: neverRan.slice(0, 10),
      },
      {
        name: "no event is missing from the list or stale there",
        pass: missing.length === 0 && stale.length === 0,
        detail: {
          missing: missing.slice(0, 10),
          stale: stale.slice(0, 10),
          missingCount: missing.length,
          staleCount: stale.length,
        },
      },
      {
        name: "the dead run's containers are removed by the next start",
        pass: orphans.length > 0 && leftAfterRestart.length === 0,
        detail: { leftBehind: orphans.length, leftAfterRestart: leftAfterRestart.length },
      },
    ];
    return report(
      {
        scenario: "runtime-kill",
        ...figures,
        timeToTerminalAfterFaultMs: distribution(timesToTerminal(views.values(), faultAt)),
        restartMs: restartedAt - faultAt,
        restartedOnSamePort,
        // Accepted events that ended FAILED though their handler never ran (external counter).
        failedWithoutRunning: failedWithoutRunning.length,
        unfinished: unfinished(ids, views, runs),
        expectations,
      },
      startedAt,
    );
  } finally {
    await first.kill();
    await second?.stop();
  }
}
