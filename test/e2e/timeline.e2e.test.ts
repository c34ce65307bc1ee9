import { beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient, type EventView, followLogs, type LogStreamEvent } from "../helpers/api-client";
import { NODE_HANDLER } from "./fixtures";

const api = new ApiClient(inject("baseUrl"));
const NAMESPACE = "default";

interface TimelineEntry {
  at: string;
  kind: string;
  detail: string | null;
}

async function timelineOf(requestId: string): Promise<TimelineEntry[]> {
  return ((await api.event(requestId)) as EventView & { timeline: TimelineEntry[] }).timeline;
}

function expectIncreasing(timeline: readonly TimelineEntry[]): void {
  const times = timeline.map((entry) => Date.parse(entry.at));
  expect(times.every((time) => Number.isFinite(time))).toBe(true);
  expect(times).toEqual([...times].sort((a, b) => a - b));
}

/** The stream's events in order: "timeline:<kind>", "log:<stream>" or the type. */
function order(events: readonly LogStreamEvent[]): string[] {
  return events.map((event) =>
    event.event === "timeline"
      ? `timeline:${(event.data as TimelineEntry).kind}`
      : event.event === "log"
        ? `log:${(event.data as { stream: string }).stream}`
        : event.event,
  );
}

describe("event timeline (real containers)", () => {
  let name: string;
  beforeAll(async () => {
    name = await api.createUniqueFunction(NAMESPACE, "timeline", {
      runtime: "Nodejs22",
      files: { "index.js": NODE_HANDLER },
      timeout: 30,
    });
  });

  it("records a cold event accepted → queued → instance-assigned → container-starting → running → ended, streamed live among its lines", async () => {
    const requestId = await api.invoke(NAMESPACE, name, { sleepMs: 1_000 });
    const streamed: LogStreamEvent[] = [];
    const followed = await followLogs(api, requestId, { onEvent: (event) => streamed.push(event) });
    expect(followed.end?.data).toMatchObject({ status: "FINISHED" });

    const timeline = await timelineOf(requestId);
    expect(timeline.map((entry) => entry.kind)).toEqual([
      "accepted",
      "queued",
      "instance-assigned",
      "container-starting",
      "running",
      "ended",
    ]);
    expectIncreasing(timeline);
    const event = await api.event(requestId);
    expect(timeline[2]?.detail).toBe(event.instanceId);
    expect(timeline[4]?.detail).toBe("cold start");
    expect(timeline.at(-1)?.detail).toBe("FINISHED 200");

    // The follower saw the same entries, once each, and in order with the lines: running before the
    // handler's first line, ended after its last one, then the end.
    expect(followed.timeline.map((record) => record.data)).toEqual(timeline);
    const sequence = order(streamed);
    expect(sequence.indexOf("timeline:running")).toBeLessThan(sequence.indexOf("log:stdout"));
    expect(sequence.indexOf("timeline:ended")).toBeGreaterThan(sequence.lastIndexOf("log:stderr"));
    expect(sequence.at(-1)).toBe("end");
  });

  it("records the next event on the idle container as container-warm", async () => {
    const requestId = await api.invoke(NAMESPACE, name, {});
    await api.waitForEvent(requestId);
    const timeline = await timelineOf(requestId);
    expect(timeline.map((entry) => entry.kind)).toEqual([
      "accepted",
      "queued",
      "instance-assigned",
      "container-warm",
      "running",
      "ended",
    ]);
    expect(timeline[4]?.detail).toBe("warm start");
    expectIncreasing(timeline);
  });

  it("records a graceful terminate as requested, the signal delivered, then the end", async () => {
    const requestId = await api.invoke(NAMESPACE, name, { sleepMs: 20_000 });
    await api.waitForEvent(requestId, (event) => event.phase === "running");
    const response = await api.request(`/v1/events/${requestId}/terminate`, {
      method: "POST",
      body: JSON.stringify({ graceful: true }),
    });
    expect(response.status).toBe(200);
    await api.waitForEvent(requestId);
    const timeline = await timelineOf(requestId);
    expect(timeline.slice(-3).map((entry) => [entry.kind, entry.detail])).toEqual([
      ["terminate-requested", "graceful"],
      ["signal-delivered", "SIGTERM"],
      ["ended", expect.stringMatching(/^ABORTED/)],
    ]);
    expectIncreasing(timeline);
  });
});
