// A crash of the whole local runtime (kill -9 of the start script, wrangler and workerd): no
// accepted event is lost, and the containers the dead runtime left behind are removed by the next
// start on the same state folder (scripts/container-guard.mjs), while the containers of another
// platform running on the same engine (the suite's shared platform) are left alone.
import { execFileSync } from "node:child_process";
import { describe, expect, inject, it } from "vitest";
import { ApiClient, type EventView, TEST_CREDENTIALS } from "../helpers/api-client";
import { type RunningPlatform, startPlatform } from "../helpers/platform";

const credentials = { DEV_SECRET_ID: TEST_CREDENTIALS.secretId, DEV_SECRET_KEY: TEST_CREDENTIALS.secretKey };
/** The suite's shared platform: a bystander on the same Docker engine. */
const bystanderApi = new ApiClient(inject("baseUrl"));

/** How long the long-running events run, in ms: they outlive the whole test unless killed. */
const LONG_RUN_MS = 240_000;
/** How long an event may take to reach an expected state on this shared, slow machine, in ms. */
const EVENT_WAIT_MS = 300_000;

/**
 * A long job that first prints the short id of its container's network sidecar (its hostname: the
 * function container shares the sidecar's namespaces), then ticks until runMs has passed.
 */
const NODE_REPORTING_JOB = `
const os = require("os");
exports.main_handler = async (event) => {
  console.log("sidecar " + os.hostname());
  const until = Date.now() + (event.runMs ?? 60000);
  while (Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 200));
  return { done: true };
};
`;

/** Runs the Docker client and returns its standard output. */
function docker(...args: string[]): string {
  return execFileSync("docker", args, { encoding: "utf8" });
}

/** The sidecar id a running event of NODE_REPORTING_JOB printed. */
async function sidecarOf(api: ApiClient, requestId: string): Promise<string> {
  const deadline = Date.now() + EVENT_WAIT_MS;
  while (Date.now() < deadline) {
    const line = (await api.logs(requestId)).find((record) => record.line.startsWith("sidecar "));
    if (line) return line.line.slice("sidecar ".length);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`event ${requestId} never printed its sidecar`);
}

/** The workerd run (`workerd-<run>-...`) a container belongs to, from Docker. */
function workerdRunOf(containerId: string): string {
  const name = docker("inspect", "--format", "{{.Name}}", containerId).trim();
  const run = /^\/workerd-([0-9a-f]{16})-/.exec(name)?.[1];
  if (!run) throw new Error(`container ${containerId} is not workerd's: ${name}`);
  return run;
}

/** Ids of every container (running or stopped) of one workerd run, as Docker lists them. */
function containersOfRun(run: string): string[] {
  return docker("ps", "--all", "--quiet", "--filter", `name=^/workerd-${run}-`).split("\n").filter(Boolean);
}

/** Whether Docker reports the container as running. */
function isRunning(containerId: string): boolean {
  return docker("inspect", "--format", "{{.State.Running}}", containerId).trim() === "true";
}

describe("a crash of the whole local runtime", () => {
  it("loses no accepted event, and the next start removes the dead run's containers but no other platform's", async () => {
    // A bystander: a running event of another platform on the same engine.
    const bystanderFunction = await bystanderApi.createUniqueFunction("default", "bystander", {
      runtime: "Nodejs22",
      files: { "index.js": NODE_REPORTING_JOB },
      timeout: 600,
    });
    const bystanderEvent = await bystanderApi.invoke("default", bystanderFunction, { runMs: LONG_RUN_MS });
    const bystanderSidecar = await sidecarOf(bystanderApi, bystanderEvent);

    let first: RunningPlatform | undefined;
    let second: RunningPlatform | undefined;
    let deadRun: string | undefined;
    try {
      first = await startPlatform({ env: credentials });
      const api = new ApiClient(first.baseUrl);
      const name = await api.createUniqueFunction("default", "crash", {
        runtime: "Nodejs22",
        files: { "index.js": NODE_REPORTING_JOB },
        timeout: 600,
        maxConcurrency: 1,
      });
      const running = await api.invoke("default", name, { runMs: LONG_RUN_MS });
      await api.waitForEvent(running, (event) => event.phase === "running", EVENT_WAIT_MS);
      deadRun = workerdRunOf(await sidecarOf(api, running));
      const queued: string[] = [];
      for (let i = 0; i < 3; i++) queued.push(await api.invoke("default", name, { runMs: 100 }));

      await first.kill();
      // The dead runtime's containers outlive it: nothing of the runtime is left to stop them.
      const orphans = containersOfRun(deadRun);
      expect(orphans.length).toBeGreaterThanOrEqual(2); // the function container and its sidecar
      expect(orphans.filter(isRunning).length).toBeGreaterThanOrEqual(2);

      second = await startPlatform({ env: credentials, stateDir: first.stateDir });
      // Removed by the next start, before it serves: Docker knows none of them any more.
      expect(containersOfRun(deadRun)).toEqual([]);
      // The other platform's container is untouched, and its event still runs there.
      expect(isRunning(bystanderSidecar)).toBe(true);
      expect((await bystanderApi.event(bystanderEvent)).status).toBe("RUNNING");

      const again = new ApiClient(second.baseUrl);
      const ended: EventView[] = [];
      for (const id of [running, ...queued]) ended.push(await again.waitForEvent(id, undefined, EVENT_WAIT_MS));
      // The event whose container died with the runtime fails; nothing is left RUNNING or lost.
      expect(ended[0]?.status).toBe("FAILED");
      expect(ended[0]?.statusCode).toBe(500);
      for (const event of ended.slice(1)) expect(event.status).toBe("FINISHED");
    } finally {
      await first?.kill();
      await second?.stop();
      // Whatever a failure left of the dead run is ours to remove (only that run's containers).
      const left = deadRun ? containersOfRun(deadRun) : [];
      if (left.length > 0) docker("rm", "--force", ...left);
      await bystanderApi.request(`/v1/events/${bystanderEvent}/terminate`, { method: "POST" });
    }
  }, 900_000);
});
