import { describe, expect, it } from "vitest";
import {
  type EventCommand,
  type EventState,
  publicEvent,
  recordSignalDelivered,
  recordTimeline,
  transition,
} from "../../worker/events/event-machine";
import {
  addTimelineEntries,
  MAX_TIMELINE_DETAIL_CHARS,
  MAX_TIMELINE_ENTRIES,
  newTimelineEntries,
  TIMELINE_HEAD_ENTRIES,
  type TimelineEntry,
  timelineEntry,
  timelineTotal,
} from "../../worker/events/event-timeline";
import { queuedEventState } from "../helpers/event-state";

const INSTANCE = "default/resize#0";

function accepted(overrides: Partial<EventState> = {}): EventState {
  return queuedEventState({
    timeline: [timelineEntry("accepted", 1_000), timelineEntry("queued", 1_001, "dispatch enqueued")],
    ...overrides,
  });
}

function apply(state: EventState, ...commands: EventCommand[]): EventState {
  let current = state;
  for (const command of commands) {
    const result = transition(current, command);
    if (!result.ok) throw new Error(result.message);
    current = result.value.state;
  }
  return current;
}

const claim: EventCommand = { type: "claim", instanceId: INSTANCE, at: 2_000 };
const startedCold: EventCommand = {
  type: "started",
  instanceId: INSTANCE,
  cold: true,
  containerId: "boot-1",
  at: 2_500,
};
const returned: EventCommand = {
  type: "complete",
  instanceId: INSTANCE,
  outcome: { kind: "returned", result: { ok: 1 } },
  at: 3_000,
};

function kinds(state: EventState): string[] {
  return (state.timeline ?? []).map((entry) => entry.kind);
}

describe("event timeline in the state machine", () => {
  it("records accepted, queued, instance-assigned, container-starting, running and ended in order", () => {
    const done = apply(accepted(), claim, startedCold, returned);
    expect(done.timeline).toEqual([
      { at: 1_000, kind: "accepted" },
      { at: 1_001, kind: "queued", detail: "dispatch enqueued" },
      { at: 2_000, kind: "instance-assigned", detail: INSTANCE },
      { at: 2_500, kind: "container-starting", detail: "new container" },
      { at: 2_500, kind: "running", detail: "cold start" },
      { at: 3_000, kind: "ended", detail: "FINISHED 200" },
    ]);
  });

  it("records a warm start as container-warm", () => {
    const running = apply(accepted(), claim, { ...startedCold, cold: false } as EventCommand);
    expect(kinds(running)).toEqual(["accepted", "queued", "instance-assigned", "container-warm", "running"]);
    expect(running.timeline?.at(-1)?.detail).toBe("warm start");
  });

  it("keeps the container entry the instance reported before the start and adds no second one", () => {
    const claimed = apply(accepted(), claim);
    const reported = recordTimeline(claimed, [timelineEntry("container-starting", 2_100, "new container")]);
    if (!reported) throw new Error("the container report was not recorded");
    const running = apply(reported, startedCold);
    expect(running.timeline?.filter((entry) => entry.kind === "container-starting")).toEqual([
      { at: 2_100, kind: "container-starting", detail: "new container" },
    ]);
    expect(kinds(running).slice(-2)).toEqual(["container-starting", "running"]);
  });

  it("adds nothing when a command is redelivered (claim, start, complete repeated)", () => {
    const done = apply(accepted(), claim, claim, startedCold, startedCold, returned, returned);
    expect(kinds(done)).toEqual(["accepted", "queued", "instance-assigned", "container-starting", "running", "ended"]);
  });

  it("adds nothing when an entry recorded outside a transition is repeated", () => {
    const running = apply(accepted(), claim, startedCold);
    const signalled = recordTimeline(running, [timelineEntry("signal-delivered", 2_700, "SIGTERM")]);
    if (!signalled) throw new Error("the signal was not recorded");
    expect(recordTimeline(signalled, [timelineEntry("signal-delivered", 2_800, "SIGTERM")])).toBeUndefined();
    expect(
      recordTimeline(signalled, [timelineEntry("container-warm", 2_800, "idle container reused")]),
    ).toBeUndefined();
  });

  it("records a graceful terminate as requested, the signal, then the end ABORTED", () => {
    const running = apply(accepted(), claim, startedCold);
    const requested = apply(running, { type: "terminate", graceful: true, at: 2_600 });
    const signalled = recordSignalDelivered(requested, 2_610);
    if (!signalled) throw new Error("the signal was not recorded");
    const ended = apply(signalled, { ...returned, at: 2_700 } as EventCommand);
    expect(ended.timeline?.slice(-3)).toEqual([
      { at: 2_600, kind: "terminate-requested", detail: "graceful" },
      { at: 2_610, kind: "signal-delivered", detail: "SIGTERM" },
      { at: 2_700, kind: "ended", detail: expect.stringMatching(/^ABORTED /) },
    ]);
  });

  it("places a signal reported after the end before the end, at the end's time at the latest", () => {
    const requested = apply(accepted(), claim, startedCold, { type: "terminate", graceful: true, at: 2_600 });
    const ended = apply(requested, { ...returned, at: 2_700 } as EventCommand);
    const signalled = recordSignalDelivered(ended, 2_900);
    expect(signalled?.timeline?.slice(-3)).toEqual([
      { at: 2_600, kind: "terminate-requested", detail: "graceful" },
      { at: 2_700, kind: "signal-delivered", detail: "SIGTERM" },
      { at: 2_700, kind: "ended", detail: expect.stringMatching(/^ABORTED/) },
    ]);
    if (!signalled) throw new Error("the signal was not recorded");
    expect(recordSignalDelivered(signalled, 3_000)).toBeUndefined();
  });

  it("records a forced terminate of a queued event as requested then ended", () => {
    const ended = apply(accepted(), { type: "terminate", graceful: false, at: 1_500 });
    expect(ended.timeline?.slice(-2)).toEqual([
      { at: 1_500, kind: "terminate-requested", detail: "forced" },
      { at: 1_500, kind: "ended", detail: expect.stringMatching(/^ABORTED/) },
    ]);
  });

  it("names a forced stop after a graceful terminate (a forced request or the grace period ending)", () => {
    const requested = apply(accepted(), claim, startedCold, { type: "terminate", graceful: true, at: 2_600 });
    const forced = apply(requested, { type: "terminate", graceful: false, at: 9_000 });
    expect(forced.timeline?.filter((entry) => entry.kind === "terminate-requested").map((e) => e.detail)).toEqual([
      "graceful",
      "forced after SIGTERM",
    ]);
  });

  it("records a timeout as the end", () => {
    const ended = apply(accepted(), claim, startedCold, { type: "timeout", at: 8_000 });
    expect(ended.timeline?.at(-1)).toEqual({ at: 8_000, kind: "ended", detail: expect.stringMatching(/^FAILED /) });
  });

  it("adds nothing for a refused command", () => {
    const claimed = apply(accepted(), claim);
    const other = transition(claimed, { type: "claim", instanceId: "default/resize#1", at: 2_100 });
    expect(other.ok).toBe(false);
    expect(kinds(claimed)).toEqual(["accepted", "queued", "instance-assigned"]);
  });

  it("shows the timeline in the public view with ISO times and null details", () => {
    const view = publicEvent(apply(accepted(), claim));
    expect(view.timeline).toEqual([
      { at: new Date(1_000).toISOString(), kind: "accepted", detail: null },
      { at: new Date(1_001).toISOString(), kind: "queued", detail: "dispatch enqueued" },
      { at: new Date(2_000).toISOString(), kind: "instance-assigned", detail: INSTANCE },
    ]);
  });

  it("shows an empty timeline for an event stored before timelines existed", () => {
    expect(publicEvent(accepted({ timeline: undefined })).timeline).toEqual([]);
  });
});

describe("timeline bound", () => {
  function requeues(count: number, from = 10_000): TimelineEntry[] {
    return Array.from({ length: count }, (_, i) =>
      timelineEntry("queued", from + i, "dispatched again by the watchdog"),
    );
  }

  it("keeps at most MAX_TIMELINE_ENTRIES: the head, a truncated marker counting those left out, the latest", () => {
    const start = [timelineEntry("accepted", 1), timelineEntry("queued", 2, "dispatch enqueued")];
    const extra = 100;
    const timeline = addTimelineEntries(start, requeues(extra));
    expect(timeline).toHaveLength(MAX_TIMELINE_ENTRIES);
    expect(timeline.slice(0, 2).map((entry) => entry.kind)).toEqual(["accepted", "queued"]);
    const marker = timeline[TIMELINE_HEAD_ENTRIES];
    const leftOut = start.length + extra - (MAX_TIMELINE_ENTRIES - 1);
    expect(marker).toMatchObject({ kind: "truncated", dropped: leftOut, detail: `${leftOut} entries left out` });
    expect(timeline.at(-1)?.at).toBe(10_000 + extra - 1);
    expect(timelineTotal(timeline)).toBe(start.length + extra);
    // Still in time order, the marker at the time of the latest entry it stands for.
    const times = timeline.map((entry) => entry.at);
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  it("keeps the end once the timeline is full", () => {
    const full = addTimelineEntries([timelineEntry("accepted", 1)], requeues(200));
    const ended = addTimelineEntries(full, [timelineEntry("ended", 99_999, "ABORTED 500")]);
    expect(ended).toHaveLength(MAX_TIMELINE_ENTRIES);
    expect(ended.at(-1)).toEqual({ at: 99_999, kind: "ended", detail: "ABORTED 500" });
    expect(ended[0]?.kind).toBe("accepted");
  });

  it("answers a transition's new entries past the bound, never the marker", () => {
    const full = addTimelineEntries([timelineEntry("accepted", 1)], requeues(200));
    const after = addTimelineEntries(full, [timelineEntry("queued", 50_000, "x"), timelineEntry("ended", 50_001)]);
    expect(newTimelineEntries(full, after).map((entry) => entry.kind)).toEqual(["queued", "ended"]);
    expect(newTimelineEntries(after, after)).toEqual([]);
  });

  it("cuts a detail to MAX_TIMELINE_DETAIL_CHARS", () => {
    expect(timelineEntry("queued", 1, "x".repeat(5_000)).detail).toHaveLength(MAX_TIMELINE_DETAIL_CHARS);
  });
});
