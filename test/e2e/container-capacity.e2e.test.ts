import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { ApiClient, type EventView, TEST_CREDENTIALS } from "../helpers/api-client";
import { startPlatform } from "../helpers/platform";

/** PLATFORM_MAX_CONTAINERS of this test's own platform (the stand-in for a small max_instances). */
const PLATFORM_CAP = 3;
/** NAMESPACE_MAX_CONTAINERS of this test's platform: two namespaces could hold 4, the platform 3. */
const NAMESPACE_CAP = 2;
/** Functions per namespace, and events per function: 12 events, four times the cap. */
const FUNCTIONS_PER_NAMESPACE = 2;
const EVENTS_PER_FUNCTION = 3;
/** How long each handler works: long enough that events overlap and the cap is what holds them. */
const HANDLER_MS = 6_000;
/** How often Docker is asked how many of the platform's function containers run. */
const SAMPLE_INTERVAL_MS = 250;

/** Sleeps, then answers the container's hostname (Docker's short container id). */
const HOSTNAME_HANDLER = `
exports.main_handler = async (event) => {
  await new Promise((resolve) => setTimeout(resolve, event.sleepMs));
  return { hostname: require("node:os").hostname() };
};
`;

/** Running function containers (not their network sidecars) per workerd session. */
function functionContainersBySession(): Map<string, number> {
  const out = execFileSync(
    "docker",
    ["ps", "--filter", "name=InstanceContainer", "--format", '{{.Names}}\t{{.Label "dev.workerd.session"}}'],
    { encoding: "utf8" },
  );
  const counts = new Map<string, number>();
  for (const line of out.split("\n")) {
    const [name, session] = line.split("\t");
    if (!name || !session || name.endsWith("-proxy")) continue;
    counts.set(session, (counts.get(session) ?? 0) + 1);
  }
  return counts;
}

/** The workerd session a container belongs to, from its short id (a handler's hostname). */
function sessionOf(containerId: string): string {
  return execFileSync(
    "docker",
    ["inspect", "--format", '{{index .Config.Labels "dev.workerd.session"}}', containerId],
    {
      encoding: "utf8",
    },
  ).trim();
}

function uniqueNamespace(prefix: string): string {
  return `${prefix}${Math.random().toString(36).slice(2, 10)}`;
}

describe("the platform-wide container cap", () => {
  it("keeps events over the cap queued, never FAILED, across two namespaces, and never runs more containers than the cap", async () => {
    const platform = await startPlatform({
      vars: { PLATFORM_MAX_CONTAINERS: String(PLATFORM_CAP), NAMESPACE_MAX_CONTAINERS: String(NAMESPACE_CAP) },
      env: { DEV_SECRET_ID: TEST_CREDENTIALS.secretId, DEV_SECRET_KEY: TEST_CREDENTIALS.secretKey },
    });
    // Highest count seen per session while the events run; this platform's session is found after.
    const highest = new Map<string, number>();
    const sampler = setInterval(() => {
      try {
        for (const [session, count] of functionContainersBySession()) {
          highest.set(session, Math.max(highest.get(session) ?? 0, count));
        }
      } catch {
        // docker busy: the next sample counts
      }
    }, SAMPLE_INTERVAL_MS);
    try {
      const api = new ApiClient(platform.baseUrl);
      const namespaces = [uniqueNamespace("capA"), uniqueNamespace("capB")];
      const functions: [string, string][] = [];
      for (const namespace of namespaces) {
        for (let i = 0; i < FUNCTIONS_PER_NAMESPACE; i++) {
          const name = await api.createUniqueFunction(namespace, "cap", {
            runtime: "Nodejs22",
            files: { "index.js": HOSTNAME_HANDLER },
            timeout: 120,
          });
          functions.push([namespace, name]);
        }
      }
      const invoked: string[] = [];
      for (let round = 0; round < EVENTS_PER_FUNCTION; round++) {
        for (const [namespace, name] of functions)
          invoked.push(await api.invoke(namespace, name, { sleepMs: HANDLER_MS }));
      }

      const ended: EventView[] = [];
      for (const requestId of invoked) ended.push(await api.waitForEvent(requestId, undefined, 600_000));
      clearInterval(sampler);

      for (const event of ended) {
        expect({ requestId: event.requestId, status: event.status, statusCode: event.statusCode }).toEqual({
          requestId: event.requestId,
          status: "FINISHED",
          statusCode: 200,
        });
      }
      const hostname = (ended[0]?.result as { hostname?: string } | null)?.hostname;
      if (!hostname) throw new Error(`no hostname in ${JSON.stringify(ended[0])}`);
      const session = sessionOf(hostname);
      const most = highest.get(session) ?? 0;
      console.log(`containers at once on the capped platform: at most ${most} (cap ${PLATFORM_CAP})`);
      expect(most).toBeGreaterThan(0);
      expect(most).toBeLessThanOrEqual(PLATFORM_CAP);
    } finally {
      clearInterval(sampler);
      await platform.stop();
    }
  }, 900_000);
});
