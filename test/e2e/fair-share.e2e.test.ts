import { afterAll, describe, expect, inject, it } from "vitest";
import { ADMIN_HEADERS, ApiClient, type EventView } from "../helpers/api-client";
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

/** Whether an instance's container runs, and its event (the diagnostics route, admin only). */
async function instanceStatus(instanceId: string): Promise<{ containerRunning: boolean; requestId: string | null }> {
  const response = await fetch(`${inject("baseUrl")}/_diagnostics/instances/${encodeURIComponent(instanceId)}`, {
    headers: ADMIN_HEADERS,
  });
  if (response.status !== 200) throw new Error(`instance status answered ${response.status}`);
  return (await response.json()) as { containerRunning: boolean; requestId: string | null };
}

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

  it("counts a namespace's idle warm containers against its cap, and evicts one for another function rather than exceed it", async () => {
    const namespace = uniqueNamespace("fairIdle");
    const [f1, f2, f3] = await Promise.all([
      createSleeper(namespace),
      createSleeper(namespace),
      createSleeper(namespace),
    ]);
    // Two short events of two functions: both end, and both containers stay warm (idle).
    const ended = await Promise.all(
      [f1, f2].map(async (name) => api.waitForEvent(await api.invoke(namespace, name, { sleepMs: 100 }))),
    );
    expect(ended.map((event) => event.status)).toEqual(["FINISHED", "FINISHED"]);
    const warm = ended.map((event) => event.instanceId ?? "");
    for (const instanceId of warm) expect((await instanceStatus(instanceId)).containerRunning).toBe(true);

    // A third function's event: the namespace is at its cap with idle containers, so one is evicted.
    const third = await api.invoke(namespace, f3, { sleepMs: SLEEP_MS });
    invoked.push(third);
    const running = await api.waitForEvent(third, handlerRunning, 60_000);
    expect(running.instanceId).toMatch(new RegExp(`^${namespace}/${f3}#`));
    const states = await Promise.all(warm.map((instanceId) => instanceStatus(instanceId)));
    const alive = states.filter((state) => state.containerRunning).length;
    // Never more than the cap: one warm container was destroyed to make room.
    expect(alive).toBe(NAMESPACE_CAP - 1);
    expect(states.every((state) => state.requestId === null)).toBe(true);
  });
});
