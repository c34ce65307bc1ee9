// Pause / resume dispatch on the running platform with real containers (issue 15): while a
// function's dispatch is paused its invocations are accepted and stay queued (reason "paused");
// resumed, they run in order and FINISH. One function, one container (maxConcurrency 1).
import { beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient, type EventView } from "../helpers/api-client";

const api = new ApiClient(inject("baseUrl"));
const NAMESPACE = "default";
/** How long the paused events are watched staying queued. */
const HELD_FOR_MS = 3_000;

const HANDLER = `
exports.main_handler = async (event) => ({ n: event.n });
`;

/** The event view with the queue reason (GET /v1/events/{id}). */
type QueuedView = EventView & { phase: string; queuedReason: string | null; startedAt: string | null };

interface DispatchState {
  dispatchPaused: boolean;
  pausedAt: string | null;
  pendingEvents: number;
}

describe("pause / resume dispatch", () => {
  let name: string;
  beforeAll(async () => {
    name = await api.createUniqueFunction(NAMESPACE, "pause", {
      runtime: "Nodejs22",
      handler: "index.main_handler",
      files: { "index.js": HANDLER },
      timeout: 30,
      maxConcurrency: 1,
    });
  });

  it("keeps invocations queued while paused, then runs them in order once resumed", async () => {
    const base = `/v1/namespaces/${NAMESPACE}/functions/${name}`;
    const paused = await api.json<DispatchState>(`${base}/dispatch/pause`, { method: "POST" });
    expect(paused.status).toBe(200);
    expect(paused.body.dispatchPaused).toBe(true);
    const fn = await api.json<DispatchState>(base);
    expect(fn.body).toMatchObject({ dispatchPaused: true, pausedAt: paused.body.pausedAt });

    const first = await api.invoke(NAMESPACE, name, { n: 1 });
    const second = await api.invoke(NAMESPACE, name, { n: 2 });
    const heldUntil = Date.now() + HELD_FOR_MS;
    while (Date.now() < heldUntil) {
      for (const requestId of [first, second]) {
        const view = (await api.event(requestId)) as QueuedView;
        expect(view).toMatchObject({ status: "RUNNING", phase: "queued", queuedReason: "paused", startedAt: null });
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const waiting = await api.json<DispatchState>(base);
    expect(waiting.body.dispatchPaused).toBe(true);

    const resumed = await api.json<DispatchState>(`${base}/dispatch/resume`, { method: "POST", body: "{}" });
    expect(resumed.status).toBe(200);
    expect(resumed.body).toMatchObject({ dispatchPaused: false, pausedAt: null });

    const ends = (await Promise.all([first, second].map((id) => api.waitForEvent(id)))) as QueuedView[];
    expect(ends.map((end) => [end.status, end.result])).toEqual([
      ["FINISHED", { n: 1 }],
      ["FINISHED", { n: 2 }],
    ]);
    // One at a time (maxConcurrency 1), oldest first.
    expect(Date.parse(ends[0]?.startedAt ?? "")).toBeLessThanOrEqual(Date.parse(ends[1]?.startedAt ?? ""));
    expect((await api.json<DispatchState>(base)).body).toMatchObject({ dispatchPaused: false, pausedAt: null });
  });
});
