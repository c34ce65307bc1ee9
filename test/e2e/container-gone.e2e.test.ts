// After every abnormal end, the function's container is gone as Docker itself sees it (not as the
// platform's own `containerRunning` claims), no scheduler slot is left held, and the function's
// next event runs on a fresh container.
import { describe, expect, inject, it } from "vitest";
import { ADMIN_HEADERS, ApiClient, type EventView } from "../helpers/api-client";
import {
  aliveFunctionContainer,
  aliveFunctionContainers,
  instanceStatus,
  waitUntilContainerGone,
} from "../helpers/docker";
import { pollUntil } from "../helpers/wait";

const baseUrl = inject("baseUrl");
const api = new ApiClient(baseUrl);
/** A namespace of its own, so that no other test's containers share its cap. */
const NAMESPACE = "containergone";

/**
 * Returns at once by default; otherwise ignores SIGTERM, hoards memory, exits with a code or
 * sleeps, as the event asks. Prints "start" once its SIGTERM listener (if any) is in place.
 */
const HANDLER = `
exports.main_handler = async (event) => {
  if (event.ignoreSigterm) process.on("SIGTERM", () => console.log("ignoring SIGTERM"));
  console.log("start");
  if (event.hog) {
    const hoard = [];
    for (;;) hoard.push(new Array(1e6).fill(Math.random()));
  }
  if (event.exit !== undefined) process.exit(event.exit);
  if (event.sleepMs) await new Promise((resolve) => setTimeout(resolve, event.sleepMs));
  return { ok: true };
};
`;

/** Longest wait for an event to end: a repossession comes only after the 30 s SIGTERM grace. */
const END_WAIT_MS = 120_000;
/** Longest wait for an event to start or for the scheduler to settle (cold starts on a shared machine). */
const WAIT_MS = 60_000;
/** Budget of one test: create, a cold warm-up, the ending (up to END_WAIT_MS), a cold next event. */
const TEST_TIMEOUT_MS = 300_000;
/** StatusCodes of the endings (worker/events/event-machine.ts STATUS_CODE). */
const TERMINATED = 499;
const TIMED_OUT = 433;
const OUT_OF_MEMORY = 434;
const USER_PROCESS_EXIT = 439;

function terminate(requestId: string, graceful: boolean): Promise<{ status: number; body: EventView }> {
  return api.json<EventView>(`/v1/events/${requestId}/terminate`, {
    method: "POST",
    body: JSON.stringify({ graceful }),
  });
}

/** Waits until the handler of requestId runs and has printed "start". */
async function waitForHandlerStart(requestId: string): Promise<void> {
  await api.waitForEvent(requestId, (event) => event.phase === "running", WAIT_MS);
  const lines = await pollUntil(
    async () => (await api.logs(requestId)).map((record) => record.line),
    (seen) => seen.includes("start"),
    WAIT_MS,
  );
  expect(lines).toContain("start");
}

/** The function's scheduler counts (GET /_diagnostics/schedulers/:namespace/:function). */
async function schedulerStats(name: string): Promise<{ busy: number; pending: number }> {
  const response = await fetch(`${baseUrl}/_diagnostics/schedulers/${NAMESPACE}/${name}`, { headers: ADMIN_HEADERS });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`scheduler of ${name} answered ${response.status}: ${text}`);
  return JSON.parse(text) as { busy: number; pending: number };
}

interface Ending {
  ending: string;
  /** Function settings beyond the defaults (maxConcurrency 1, Node.js). */
  options: Record<string, unknown>;
  /** The event that ends abnormally. */
  event: Record<string, unknown>;
  /** What the test does once its handler runs (nothing: the handler ends on its own). */
  act?: (requestId: string) => Promise<void>;
  status: EventView["status"];
  statusCode: number;
  errorMessage?: RegExp;
}

const ENDINGS: Ending[] = [
  {
    ending: "a forced terminate",
    options: { timeout: 300 },
    event: { sleepMs: 600_000 },
    act: async (requestId) => {
      const response = await terminate(requestId, false);
      expect(response.status).toBe(200);
    },
    status: "ABORTED",
    statusCode: TERMINATED,
  },
  {
    ending: "a timeout",
    options: { timeout: 2 },
    event: { sleepMs: 600_000 },
    status: "FAILED",
    statusCode: TIMED_OUT,
  },
  {
    ending: "a memory kill",
    options: { memorySize: 64, timeout: 60 },
    event: { hog: true },
    status: "FAILED",
    statusCode: OUT_OF_MEMORY,
  },
  {
    ending: "a user exit",
    options: { timeout: 60 },
    event: { exit: 3 },
    status: "FAILED",
    statusCode: USER_PROCESS_EXIT,
  },
  {
    // The event's grace period after SIGTERM runs out with the handler still running: the event
    // ends it by force and repossesses the instance (AsyncEvent's alarm, then instance.repossess).
    ending: "a repossession after the handler ignored SIGTERM past the grace period",
    options: { timeout: 300 },
    event: { ignoreSigterm: true, sleepMs: 600_000 },
    act: async (requestId) => {
      const response = await terminate(requestId, true);
      expect(response.status).toBe(200);
      expect(response.body.status).toBe("RUNNING");
    },
    status: "ABORTED",
    statusCode: TERMINATED,
    errorMessage: /still running after SIGTERM/,
  },
];

describe("the container after an abnormal end, as Docker sees it", () => {
  it.each(ENDINGS)(
    "after $ending, Docker no longer runs the event's container, no slot is held and the next event runs cold",
    async ({ options, event, act, status, statusCode, errorMessage }) => {
      const name = await api.createUniqueFunction(NAMESPACE, "gone", {
        runtime: "Nodejs22",
        files: { "index.js": HANDLER },
        maxConcurrency: 1,
        ...options,
      });
      // A first event leaves its container warm: that is the container the ending event runs in.
      const warm = await api.waitForEvent(await api.invoke(NAMESPACE, name, {}), undefined, WAIT_MS);
      expect(warm.status).toBe("FINISHED");
      const instance = await instanceStatus(baseUrl, warm.instanceId ?? "");
      const container = aliveFunctionContainer(instance.durableObjectId);

      const requestId = await api.invoke(NAMESPACE, name, event);
      if (act) {
        await waitForHandlerStart(requestId);
        await act(requestId);
      }
      const done = await api.waitForEvent(requestId, undefined, END_WAIT_MS);
      expect(done).toMatchObject({ status, statusCode, instanceId: warm.instanceId, containerId: warm.containerId });
      if (errorMessage) expect(done.errorMessage).toMatch(errorMessage);

      // Docker itself: the container that ran the event is no longer alive, nor any other of its instance.
      expect(await waitUntilContainerGone(container)).toBe(false);
      expect(aliveFunctionContainers(instance.durableObjectId)).toEqual([]);
      expect(await instanceStatus(baseUrl, warm.instanceId ?? "")).toMatchObject({
        containerRunning: false,
        requestId: null,
      });

      // No scheduler slot leaks: nothing busy, nothing waiting.
      const stats = await pollUntil(
        () => schedulerStats(name),
        (counts) => counts.busy === 0 && counts.pending === 0,
        WAIT_MS,
      );
      expect(stats).toMatchObject({ busy: 0, pending: 0 });

      // The next event runs, on a fresh container.
      const next = await api.waitForEvent(await api.invoke(NAMESPACE, name, {}), undefined, WAIT_MS);
      expect(next).toMatchObject({ status: "FINISHED", coldStart: true });
      expect(next.containerId).not.toBe(done.containerId);
      const nextInstance = await instanceStatus(baseUrl, next.instanceId ?? "");
      expect(aliveFunctionContainer(nextInstance.durableObjectId)).not.toBe(container);
    },
    TEST_TIMEOUT_MS,
  );
});
