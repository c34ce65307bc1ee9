// The pure parts of the graceful terminate options and the deadline warning (issue 15): the state
// machine's terminate outcome (terminationMode, signalDeliveredAt, endedWithinGrace), the grace
// period's deadline, and when an instance sends the deadline warning.
import { describe, expect, it } from "vitest";
import { GRACEFUL_TERMINATE_TIMEOUT_MS, nextDeadline } from "../../worker/events/event-deadlines";
import {
  type EventCommand,
  type EventState,
  publicEvent,
  recordSignalDelivered,
  STATUS_CODE,
  transition,
} from "../../worker/events/event-machine";
import { deadlineWarningProblem } from "../../worker/functions/model";
import { deadlineWarningAt, isWarningDue, nextExecutionAlarm } from "../../worker/instances/deadline-warning";
import { functionSnapshot } from "../helpers/function-snapshot";

const INSTANCE = "default/job#0";

/** A running event (started at 2_000) of a function with a 60 s timeout. */
function running(overrides: Partial<EventState> = {}): EventState {
  return {
    requestId: "7f1d2a1e-0000-4000-8000-0000000000aa",
    namespace: "default",
    functionName: "job",
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    function: functionSnapshot("default", "job", { timeoutSeconds: 60 }),
    phase: "running",
    version: 3,
    invokedAt: 1_000,
    claimedAt: 1_500,
    startedAt: 2_000,
    instanceId: INSTANCE,
    ...overrides,
  };
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

describe("the terminate outcome in the event", () => {
  it("records a graceful terminate's mode and grace period, and its forced stop once that grace runs out", () => {
    const terminating = apply(running(), { type: "terminate", graceful: true, at: 10_000, graceMs: 2_000 });
    expect(terminating).toMatchObject({ terminationMode: "graceful", terminateGraceMs: 2_000 });
    expect(nextDeadline(terminating, 10_000, undefined)).toEqual({ kind: "terminate-grace", at: 12_000 });
    const stopped = apply(terminating, { type: "terminate", graceful: false, at: 12_000 });
    expect(publicEvent(stopped)).toMatchObject({
      status: "ABORTED",
      statusCode: STATUS_CODE.TERMINATED,
      terminationMode: "graceful",
      endedWithinGrace: false,
    });
  });

  it("keeps today's 30 s grace period when the request names none", () => {
    const terminating = apply(running(), { type: "terminate", graceful: true, at: 10_000 });
    expect(terminating.terminateGraceMs).toBe(GRACEFUL_TERMINATE_TIMEOUT_MS);
    expect(nextDeadline(terminating, 10_000, undefined).at).toBe(10_000 + GRACEFUL_TERMINATE_TIMEOUT_MS);
  });

  it("says the handler ended within grace when its own end came before the grace period's end", () => {
    const terminating = apply(running(), { type: "terminate", graceful: true, at: 10_000, graceMs: 5_000 });
    const returned = apply(terminating, {
      type: "complete",
      instanceId: INSTANCE,
      outcome: { kind: "returned", result: 1 },
      at: 12_000,
    });
    expect(publicEvent(returned)).toMatchObject({ statusCode: 200, endedWithinGrace: true });
    const died = apply(terminating, {
      type: "complete",
      instanceId: INSTANCE,
      outcome: { kind: "sigterm" },
      at: 10_100,
    });
    expect(died.endedWithinGrace).toBe(true);
    // An end reported after the grace period (the alarm was late) is not within it.
    const late = apply(terminating, {
      type: "complete",
      instanceId: INSTANCE,
      outcome: { kind: "returned", result: 1 },
      at: 15_001,
    });
    expect(late.endedWithinGrace).toBe(false);
  });

  it("counts the timeout or a platform error during the grace period as the platform stopping the handler", () => {
    const terminating = apply(running(), { type: "terminate", graceful: true, at: 10_000, graceMs: 5_000 });
    expect(apply(terminating, { type: "timeout", at: 11_000 }).endedWithinGrace).toBe(false);
    const crashed = apply(terminating, {
      type: "complete",
      instanceId: INSTANCE,
      outcome: { kind: "crashed", message: "gone" },
      at: 11_000,
    });
    expect(crashed.endedWithinGrace).toBe(false);
  });

  it("reports a forced terminate, or any terminate before the handler ran, as forced", () => {
    expect(apply(running(), { type: "terminate", graceful: false, at: 3_000 })).toMatchObject({
      terminationMode: "forced",
      phase: "aborted",
    });
    const queued = running({ phase: "queued", startedAt: undefined, claimedAt: undefined, instanceId: undefined });
    const aborted = apply(queued, { type: "terminate", graceful: true, at: 3_000, graceMs: 2_000 });
    expect(publicEvent(aborted)).toMatchObject({
      terminationMode: "forced",
      signalDeliveredAt: null,
      endedWithinGrace: null,
    });
    expect(aborted.terminateGraceMs).toBeUndefined();
  });

  it("records the signal's delivery once, only for a graceful terminate, even after the end", () => {
    expect(recordSignalDelivered(running(), 5_000)).toBeUndefined();
    const terminating = apply(running(), { type: "terminate", graceful: true, at: 10_000 });
    const delivered = recordSignalDelivered(terminating, 10_050);
    expect(delivered && publicEvent(delivered).signalDeliveredAt).toBe(new Date(10_050).toISOString());
    expect(delivered && recordSignalDelivered(delivered, 10_060)).toBeUndefined();
    const ended = apply(terminating, {
      type: "complete",
      instanceId: INSTANCE,
      outcome: { kind: "sigterm" },
      at: 10_020,
    });
    expect(recordSignalDelivered(ended, 10_050)?.signalDeliveredAt).toBe(10_050);
  });
});

describe("the deadline warning", () => {
  it("is due the configured seconds before the deadline, and off at 0 or at the timeout or past it", () => {
    expect(deadlineWarningAt(62_000, 3, 60)).toBe(59_000);
    expect(deadlineWarningAt(62_000, 0, 60)).toBeUndefined();
    expect(deadlineWarningAt(62_000, undefined, 60)).toBeUndefined();
    expect(deadlineWarningAt(62_000, 60, 60)).toBeUndefined();
  });

  it("is sent once, only between its time and the deadline", () => {
    const execution = { deadline: 10_000, warnAt: 7_000 };
    expect(isWarningDue(execution, 6_999)).toBe(false);
    expect(isWarningDue(execution, 7_000)).toBe(true);
    expect(isWarningDue({ ...execution, warned: true }, 8_000)).toBe(false);
    expect(isWarningDue(execution, 10_000)).toBe(false);
    expect(isWarningDue({ deadline: 10_000 }, 9_000)).toBe(false);
  });

  it("wakes the instance at the earliest of its relay check, its unsent warning and its deadline", () => {
    expect(nextExecutionAlarm({ deadline: 10_000, warnAt: 7_000 }, 9_000)).toBe(7_000);
    expect(nextExecutionAlarm({ deadline: 10_000, warnAt: 7_000, warned: true }, 9_000)).toBe(9_000);
    expect(nextExecutionAlarm({ deadline: 10_000, warnAt: 7_000, warned: true }, 12_000)).toBe(10_000);
    expect(nextExecutionAlarm({}, 5_000)).toBe(5_000);
  });

  it("must be less than the function's timeout", () => {
    expect(deadlineWarningProblem(0, 1)).toBeUndefined();
    expect(deadlineWarningProblem(2, 3)).toBeUndefined();
    expect(deadlineWarningProblem(3, 3)).toMatch(/not less than the timeout \(3 s\)/);
  });

  it("makes a handler killed by the warning's SIGTERM a process exit (439), not a platform stop", () => {
    const state = running({
      function: functionSnapshot("default", "job", { timeoutSeconds: 6, deadlineWarningSeconds: 3 }),
    });
    const died = apply(state, { type: "complete", instanceId: INSTANCE, outcome: { kind: "sigterm" }, at: 5_000 });
    expect(died).toMatchObject({ phase: "failed", statusCode: STATUS_CODE.USER_PROCESS_EXIT });
    expect(died.terminationMode).toBeUndefined();
  });
});
