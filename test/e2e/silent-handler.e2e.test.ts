// A handler that prints nothing is running, with its start time, as soon as it has its event; a
// graceful terminate then reaches it as SIGTERM (not as an abort of an unstarted event).
import { beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient, type EventView } from "../helpers/api-client";

const api = new ApiClient(inject("baseUrl"));
const NAMESPACE = "default";

/**
 * Longest time from the invoke until a silent handler on a warm container reads as running: far
 * below the agent's 15 s heartbeat (which was the first byte the instance saw, so the event read
 * `starting` until then), and generous for a shared, slow machine.
 */
const MAX_WARM_START_MS = 8_000;

/** Sleeps event.sleepMs without printing; SIGTERM (listened for at load) makes it print and return. */
const SILENT_NODE = `
let onTerm;
process.on("SIGTERM", () => onTerm?.());
exports.main_handler = async (event) => {
  const stopped = await new Promise((resolve) => {
    onTerm = () => resolve(true);
    setTimeout(() => resolve(false), event.sleepMs ?? 0);
  });
  if (stopped) console.log("silent handler got SIGTERM");
  return stopped ? "stopped by SIGTERM" : "slept";
};
`;

/** The same in Python. */
const SILENT_PYTHON = `
import signal
import threading

stop = threading.Event()
signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())


def main_handler(event, context):
    stop.clear()
    if stop.wait(event.get("sleepMs", 0) / 1000):
        print("silent handler got SIGTERM", flush=True)
        return "stopped by SIGTERM"
    return "slept"
`;

const time = (iso: string | null): number => (iso ? Date.parse(iso) : Number.NaN);

/** Polls the event until it reads as running (or has ended), for at most MAX_WARM_START_MS. */
function waitUntilRunning(requestId: string): Promise<EventView> {
  return api.waitForEvent(
    requestId,
    (event) => event.phase === "running" || event.status !== "RUNNING",
    MAX_WARM_START_MS,
  );
}

/** Creates the silent function of a runtime and runs it once, so that its container is warm. */
async function createWarm(runtime: "Nodejs22" | "Python3.11"): Promise<string> {
  const name = await api.createUniqueFunction(NAMESPACE, runtime === "Nodejs22" ? "silent" : "pysilent", {
    runtime,
    files: runtime === "Nodejs22" ? { "index.js": SILENT_NODE } : { "index.py": SILENT_PYTHON },
    timeout: 120,
  });
  const warmUp = await api.waitForEvent(await api.invoke(NAMESPACE, name, { sleepMs: 0 }), undefined, 120_000);
  expect(warmUp.status).toBe("FINISHED");
  return name;
}

function terminate(requestId: string, graceful: boolean) {
  return api.json<EventView>(`/v1/events/${requestId}/terminate`, {
    method: "POST",
    body: JSON.stringify({ graceful }),
  });
}

for (const runtime of ["Nodejs22", "Python3.11"] as const) {
  describe(`a silent ${runtime} handler`, () => {
    let name: string;
    beforeAll(async () => {
      name = await createWarm(runtime);
    });

    it("reads as running with its start time within seconds of the invoke on a warm container", async () => {
      const invokedAt = Date.now();
      const requestId = await api.invoke(NAMESPACE, name, { sleepMs: 60_000 });
      const running = await waitUntilRunning(requestId);
      expect(Date.now() - invokedAt).toBeLessThan(MAX_WARM_START_MS);
      expect(running).toMatchObject({ status: "RUNNING", phase: "running", coldStart: false });
      // The start is the hand-over of the event: after the invoke, before it was seen running.
      const startedAt = time(running.startedAt);
      expect(startedAt).toBeGreaterThanOrEqual(time(running.invokedAt));
      expect(startedAt - time(running.invokedAt)).toBeLessThan(MAX_WARM_START_MS);
      expect((await terminate(requestId, false)).status).toBe(200);
    });

    it("gets SIGTERM from a graceful terminate sent as soon as it reads running", async () => {
      const requestId = await api.invoke(NAMESPACE, name, { sleepMs: 60_000 });
      expect((await waitUntilRunning(requestId)).phase).toBe("running");
      const response = await terminate(requestId, true);
      expect(response.status).toBe(200);
      // Still running: the handler was sent SIGTERM, not aborted as an unstarted event (499).
      expect(response.body).toMatchObject({ status: "RUNNING", phase: "running" });
      expect(response.body.terminateRequestedAt).not.toBeNull();
      const done = await api.waitForEvent(requestId, undefined, 90_000);
      expect(done.status).toBe("ABORTED");
      expect(done.statusCode).toBe(200);
      expect(done.result).toBe("stopped by SIGTERM");
      const lines = (await api.logs(requestId)).map((record) => record.line);
      expect(lines).toContain("silent handler got SIGTERM");
      expect(lines).toContain("[PLATFORM] Signal received successfully");
    });
  });
}
