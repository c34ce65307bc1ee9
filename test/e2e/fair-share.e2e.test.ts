import { afterAll, describe, expect, inject, it } from "vitest";
import { ApiClient, type EventView } from "../helpers/api-client";
import { NODE_HANDLER } from "./fixtures";

const api = new ApiClient(inject("baseUrl"));

/** NAMESPACE_MAX_CONTAINERS of the end-to-end platform (global-setup.ts). */
const NAMESPACE_CAP = 2;
/** Long enough that the sleeping handlers outlive the test; they are terminated at its end. */
const SLEEP_MS = 180_000;

/** A namespace of its own (1-30 letters and digits), so no other test's events share its cap. */
function uniqueNamespace(prefix: string): string {
  return `${prefix}${Math.random().toString(36).slice(2, 10)}`;
}

function createSleeper(namespace: string): Promise<string> {
  return api.createUniqueFunction(namespace, "sleeper", {
    runtime: "Nodejs22",
    files: { "index.js": NODE_HANDLER },
    timeout: 600,
  });
}

function terminate(requestId: string) {
  return api.json<EventView>(`/v1/events/${requestId}/terminate`, { method: "POST" });
}

const handlerRunning = (event: EventView) => event.phase === "running";

describe("fair share of containers between namespaces", () => {
  const invoked: string[] = [];
  afterAll(async () => {
    for (const requestId of invoked) await terminate(requestId).catch(() => undefined);
  });

  it("queues a namespace's events over its cap while another namespace starts at once, then runs them as room frees", async () => {
    const namespaceA = uniqueNamespace("fairA");
    const namespaceB = uniqueNamespace("fairB");
    const [sleeperA1, sleeperA2, sleeperB] = await Promise.all([
      createSleeper(namespaceA),
      createSleeper(namespaceA),
      createSleeper(namespaceB),
    ]);

    // Namespace A fills its cap with one event of each of its two functions.
    const first = await api.invoke(namespaceA, sleeperA1, { sleepMs: SLEEP_MS });
    const second = await api.invoke(namespaceA, sleeperA2, { sleepMs: SLEEP_MS });
    invoked.push(first, second);
    await api.waitForEvent(first, handlerRunning);
    await api.waitForEvent(second, handlerRunning);

    // A third event of A (its function is far below its own maxConcurrency) waits on the cap.
    const third = await api.invoke(namespaceA, sleeperA1, { sleepMs: SLEEP_MS });
    invoked.push(third);
    // Namespace B is not held up by A: its event starts at once (a cold start).
    const other = await api.invoke(namespaceB, sleeperB, { sleepMs: SLEEP_MS });
    invoked.push(other);
    const otherRunning = await api.waitForEvent(other, handlerRunning);
    expect(otherRunning.status).toBe("RUNNING");

    const waiting = await api.event(third);
    expect(waiting).toMatchObject({ status: "RUNNING", phase: "queued", startedAt: null, instanceId: null });
    const runningInA = await Promise.all([first, second].map((requestId) => api.event(requestId)));
    expect(runningInA.filter(handlerRunning)).toHaveLength(NAMESPACE_CAP);

    // One of A's events ends (the other function's): the waiting one starts, nothing is lost.
    const terminatedAt = Date.now();
    expect((await terminate(second)).status).toBe(200);
    const started = await api.waitForEvent(third, handlerRunning, 60_000);
    console.log(
      `fair share: queued event started ${Date.now() - terminatedAt} ms after a container of its namespace ended`,
    );
    expect(started.status).toBe("RUNNING");
    expect(started.instanceId).toMatch(new RegExp(`^${namespaceA}/${sleeperA1}#`));
    expect((await api.event(first)).phase).toBe("running");
  });
});
