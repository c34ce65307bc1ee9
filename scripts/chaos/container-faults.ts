// Scenarios "container-kill" (docker kill of a running handler's container) and "agent-crash" (the
// runtime agent, PID 1's child in the container, dies of SIGKILL mid-execution). Expected of both:
// the event ends FAILED within FAILED_WITHIN_MS of the fault, the instance is repossessed (the next
// event of the function runs in another container), and that next event runs.
import type { EventView } from "../../test/helpers/api-client";
import { ApiClient } from "../../test/helpers/api-client";
import type { RunCounter } from "./counter";
import {
  commonFigures,
  createCountingFunction,
  distribution,
  docker,
  type Expectation,
  functionContainerOf,
  invokeMany,
  log,
  report,
  type ScenarioReport,
  sidecarOf,
  startChaosPlatform,
  waitTerminal,
} from "./harness";

/** The bound: a killed container's (or agent's) event ends FAILED within this, in ms. */
export const FAILED_WITHIN_MS = 2_000;
/** How long the victim handler works, in ms: far longer than the test. */
const VICTIM_RUN_MS = 300_000;
/** How long an event may take to start or end on this shared machine, in ms. */
const EVENT_WAIT_MS = 5 * 60_000;

/** Which fault a sample injects. */
export type ContainerFault = "container-kill" | "agent-crash";

/** The host pid of the runtime agent in a container, from `docker top` (host pids). */
function agentHostPid(container: string): number {
  const rows = docker("top", container, "-o", "pid,args").split("\n").slice(1);
  const row = rows.find((line) => line.includes("/opt/afp/agent.mjs") && !line.includes("init.py"));
  const pid = Number(row?.trim().split(/\s+/)[0]);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no agent process in ${container}: ${rows.join(" | ")}`);
  return pid;
}

/** Injects the fault into the container running an event; returns when the fault was injected (epoch ms). */
function inject(fault: ContainerFault, container: string): number {
  if (fault === "container-kill") {
    const at = Date.now();
    docker("kill", container);
    return at;
  }
  const pid = agentHostPid(container);
  const at = Date.now();
  process.kill(pid, "SIGKILL");
  return at;
}

/** One sample: a victim event, the fault, then the next event of the same function. */
interface Sample {
  victim: string;
  next: string;
  faultAt: number;
  victimView: EventView | undefined;
  nextView: EventView | undefined;
  /** When Docker last started the container the next event ran in (epoch ms). */
  nextContainerStartedAt: number | undefined;
}

/** When Docker last started a container (epoch ms). */
function startedAtOf(container: string): number {
  return Date.parse(docker("inspect", "--format", "{{.State.StartedAt}}", container).trim());
}

export async function containerFault(
  counter: RunCounter,
  fault: ContainerFault,
  samples: number,
): Promise<ScenarioReport> {
  const startedAt = Date.now();
  log(`${fault}: ${samples} samples`);
  const platform = await startChaosPlatform();
  try {
    const api = new ApiClient(platform.baseUrl);
    const name = await createCountingFunction(api, counter.url, fault, { maxConcurrency: 1, timeout: 600 });
    const done: Sample[] = [];
    for (let i = 0; i < samples; i++) {
      const [victim] = (await invokeMany(api, name, 1, () => ({ runMs: VICTIM_RUN_MS }))) as [string];
      const victimSidecar = await sidecarOf(api, victim, EVENT_WAIT_MS);
      const faultAt = inject(fault, functionContainerOf(victimSidecar));
      const victimView = (await waitTerminal(api, [victim], EVENT_WAIT_MS)).get(victim);
      const [next] = (await invokeMany(api, name, 1, () => ({ runMs: 0 }))) as [string];
      const nextView = (await waitTerminal(api, [next], EVENT_WAIT_MS)).get(next);
      const nextSidecar = nextView?.status === "FINISHED" ? await sidecarOf(api, next, EVENT_WAIT_MS) : undefined;
      const nextContainerStartedAt = nextSidecar ? startedAtOf(functionContainerOf(nextSidecar)) : undefined;
      log(
        `${fault}: sample ${i + 1}: ${victimView?.status}/${victimView?.statusCode} "${victimView?.errorMessage}" ` +
          `${victimView?.endedAt ? Date.parse(victimView.endedAt) - faultAt : "?"} ms after the fault; next ${nextView?.status}`,
      );
      done.push({ victim, next, faultAt, victimView, nextView, nextContainerStartedAt });
    }
    const ids = done.flatMap((sample) => [sample.victim, sample.next]);
    const views = new Map<string, EventView | undefined>(
      done.flatMap((sample) => [
        [sample.victim, sample.victimView],
        [sample.next, sample.nextView],
      ]),
    );
    const figures = commonFigures(ids, views, await counter.runs());
    const times = done.flatMap((sample) =>
      sample.victimView?.endedAt ? [Date.parse(sample.victimView.endedAt) - sample.faultAt] : [],
    );
    const expectations: Expectation[] = [
      {
        name: "the event ends FAILED",
        pass: done.every((sample) => sample.victimView?.status === "FAILED"),
        detail: done.map((sample) => ({
          requestId: sample.victim,
          status: sample.victimView?.status,
          statusCode: sample.victimView?.statusCode,
          errorMessage: sample.victimView?.errorMessage,
        })),
      },
      {
        name: `the event ends within ${FAILED_WITHIN_MS} ms of the fault`,
        pass: times.length === done.length && times.every((ms) => ms <= FAILED_WITHIN_MS),
        detail: times,
      },
      {
        // workerd names a container after its Durable Object and may start the same one again:
        // a fresh boot is a cold start with another agent boot id, in a container started after the fault.
        name: "the instance is repossessed: the next event runs on a fresh container",
        pass: done.every(
          (sample) =>
            sample.nextView?.coldStart === true &&
            sample.nextView.containerId !== sample.victimView?.containerId &&
            (sample.nextContainerStartedAt ?? 0) > sample.faultAt,
        ),
        detail: done.map((sample) => ({
          coldStart: sample.nextView?.coldStart,
          containerStartedAfterFaultMs:
            sample.nextContainerStartedAt === undefined ? null : sample.nextContainerStartedAt - sample.faultAt,
        })),
      },
      {
        name: "the next event of the function runs and finishes",
        pass: done.every((sample) => sample.nextView?.status === "FINISHED"),
      },
      { name: "no event runs twice (external counter)", pass: figures.runTwice === 0 },
    ];
    return report(
      { scenario: fault, ...figures, timeToTerminalAfterFaultMs: distribution(times), expectations },
      startedAt,
    );
  } finally {
    await platform.stop();
  }
}
