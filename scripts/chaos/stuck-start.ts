// Scenario "stuck-start": every function container of the platform is frozen (`docker pause`) the
// moment Docker starts it, first for SHORT_PAUSE_MS (a slow start: the events must wait and then
// run), then for LONG_PAUSE_MS, longer than the agent's boot timeout and its one retry (a stuck
// start: the events run on a fresh container or end with a clear platform error). In both, no event
// stays RUNNING past its function's timeout plus STUCK_MARGIN_MS after its invocation.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { ApiClient, type EventView } from "../../test/helpers/api-client";
import type { RunCounter } from "./counter";
import {
  commonFigures,
  createCountingFunction,
  distribution,
  docker,
  type Expectation,
  invokeMany,
  log,
  report,
  type ScenarioReport,
  sidecarOf,
  startChaosPlatform,
  waitTerminal,
  workerdRunOf,
} from "./harness";

/** A slow start: shorter than the agent's boot timeout (AGENT_BOOT_TIMEOUT_MS, 30 s). */
const SHORT_PAUSE_MS = 10_000;
/** A stuck start: longer than the boot timeout and its one retry with a fresh container (2 × 30 s). */
const LONG_PAUSE_MS = 75_000;
/** Events per phase (the function's concurrency: each gets a container of its own). */
const EVENTS_PER_PHASE = 2;
/** The functions' timeout, in seconds. */
const FUNCTION_TIMEOUT_S = 30;
/**
 * The documented margin: an event ends at most this long after its invocation plus its timeout.
 * START_TIMEOUT_MS (120 s for a ready container; the code's loading may then take up to the
 * function's timeout, which this margin is added to) + TIMEOUT_BACKSTOP_GRACE_MS (10 s) + 30 s for
 * dispatch and the watchdog alarm's own delay.
 */
export const STUCK_MARGIN_MS = 160_000;
/** How long the scenario waits for an event to end, in ms (beyond the margin, to measure). */
const EVENT_WAIT_MS = 10 * 60_000;

/** Freezes every function container of one workerd run as Docker starts it, for holdMs each. */
function pauseStarts(run: string, holdMs: number): { stop(): void; paused: string[] } {
  const paused: string[] = [];
  /** Containers still paused, with the timer that unpauses each. */
  const holds = new Map<string, NodeJS.Timeout>();
  const unpause = (id: string) => {
    clearTimeout(holds.get(id));
    holds.delete(id);
    try {
      docker("unpause", id);
    } catch {
      // destroyed meanwhile
    }
  };
  const events = spawn(
    "docker",
    ["events", "--filter", "type=container", "--filter", "event=start", "--format", "{{json .}}"],
    { stdio: ["ignore", "pipe", "ignore"] },
  );
  const pattern = new RegExp(`^workerd-${run}-.*(?<!-proxy)$`);
  createInterface({ input: events.stdout }).on("line", (line) => {
    const event = JSON.parse(line) as { id?: string; Actor?: { Attributes?: { name?: string } } };
    const name = event.Actor?.Attributes?.name ?? "";
    if (!event.id || !pattern.test(name)) return;
    try {
      docker("pause", event.id);
      paused.push(event.id.slice(0, 12));
      log(`stuck-start: paused ${event.id.slice(0, 12)} for ${holdMs} ms`);
    } catch (error) {
      log(`stuck-start: pausing ${event.id.slice(0, 12)} failed: ${String(error).slice(0, 200)}`);
      return;
    }
    const id = event.id;
    holds.set(
      id,
      setTimeout(() => unpause(id), holdMs),
    );
  });
  return {
    paused,
    stop() {
      events.kill();
      // Nothing stays frozen after the phase: the platform must be able to destroy its containers.
      for (const id of [...holds.keys()]) unpause(id);
    },
  };
}

/** One phase: EVENTS_PER_PHASE events of a fresh function, every container paused for holdMs. */
async function phase(
  api: ApiClient,
  counterUrl: string,
  run: string,
  holdMs: number,
): Promise<{ ids: string[]; views: Map<string, EventView | undefined>; paused: string[] }> {
  const name = await createCountingFunction(api, counterUrl, "stuck", {
    maxConcurrency: EVENTS_PER_PHASE,
    timeout: FUNCTION_TIMEOUT_S,
  });
  const pauser = pauseStarts(run, holdMs);
  try {
    const ids = await invokeMany(api, name, EVENTS_PER_PHASE, () => ({ runMs: 100 }));
    const views = await waitTerminal(api, ids, EVENT_WAIT_MS);
    return { ids, views, paused: pauser.paused };
  } finally {
    pauser.stop();
  }
}

/** How long after invocation + timeout each event ended (negative: before its timeout would have passed). */
function overrun(views: Map<string, EventView | undefined>): number[] {
  return [...views.values()].flatMap((view) =>
    view?.endedAt ? [Date.parse(view.endedAt) - Date.parse(view.invokedAt) - FUNCTION_TIMEOUT_S * 1000] : [],
  );
}

export async function stuckStart(counter: RunCounter): Promise<ScenarioReport> {
  const startedAt = Date.now();
  log(`stuck-start: containers paused ${SHORT_PAUSE_MS} ms, then ${LONG_PAUSE_MS} ms`);
  const platform = await startChaosPlatform();
  try {
    const api = new ApiClient(platform.baseUrl);
    const warm = await createCountingFunction(api, counter.url, "warm");
    const [warmId] = (await invokeMany(api, warm, 1, () => ({}))) as [string];
    const run = workerdRunOf(await sidecarOf(api, warmId, EVENT_WAIT_MS));
    const slow = await phase(api, counter.url, run, SHORT_PAUSE_MS);
    const stuck = await phase(api, counter.url, run, LONG_PAUSE_MS);
    const ids = [...slow.ids, ...stuck.ids];
    const views = new Map([...slow.views, ...stuck.views]);
    const figures = commonFigures(ids, views, await counter.runs());
    const overruns = [...overrun(slow.views), ...overrun(stuck.views)];
    const describe = (view: EventView | undefined) => ({
      requestId: view?.requestId,
      startedAt: view?.startedAt,
      status: view?.status,
      statusCode: view?.statusCode,
      errorMessage: view?.errorMessage,
    });
    const expectations: Expectation[] = [
      { name: "containers were paused as they started", pass: slow.paused.length > 0 && stuck.paused.length > 0 },
      {
        name: "a slow start: the events wait, then run and finish",
        pass: slow.ids.every((id) => slow.views.get(id)?.status === "FINISHED"),
        detail: [...slow.views.values()].map(describe),
      },
      {
        name: "a stuck start: the events run (on a fresh container) or end FAILED with a platform error",
        // `docker pause` follows Docker's start event by a few hundred ms on a loaded machine: when
        // the handler was handed the event before the freeze (startedAt set), the frozen handler
        // honestly times out (433), which is no stuck start.
        pass: stuck.ids.every((id) => {
          const view = stuck.views.get(id);
          return (
            view?.status === "FINISHED" ||
            (view?.status === "FAILED" && view.statusCode === 500 && !!view.errorMessage) ||
            (view?.status === "FAILED" && view.statusCode === 433 && !!view.startedAt)
          );
        }),
        detail: [...stuck.views.values()].map(describe),
      },
      {
        name: `no event stays RUNNING past its timeout plus ${STUCK_MARGIN_MS} ms`,
        pass: figures.lost === 0 && overruns.every((ms) => ms <= STUCK_MARGIN_MS),
        detail: overruns,
      },
      { name: "no event runs twice (external counter)", pass: figures.runTwice === 0 },
    ];
    // The fault is at each container's start: time from invocation to the end, per event.
    const times = [...views.values()].flatMap((view) =>
      view?.endedAt ? [Date.parse(view.endedAt) - Date.parse(view.invokedAt)] : [],
    );
    return report(
      {
        scenario: "stuck-start",
        ...figures,
        timeToTerminalAfterFaultMs: distribution(times),
        pausedContainers: { slow: slow.paused.length, stuck: stuck.paused.length },
        expectations,
      },
      startedAt,
    );
  } finally {
    await platform.stop();
  }
}
