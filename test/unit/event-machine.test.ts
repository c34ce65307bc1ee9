import { describe, expect, it } from "vitest";
import {
  type EventState,
  type ExecutionOutcome,
  endingOf,
  isAbnormal,
  MAX_RESULT_BYTES,
  PLATFORM_STOPPED_MESSAGE,
  publicStatus,
  STATUS_CODE,
  transition,
  USER_PROCESS_EXIT_MESSAGE,
} from "../../worker/events/event-machine";
import { functionSnapshot } from "../helpers/function-snapshot";

function queued(overrides: Partial<EventState> = {}): EventState {
  return {
    requestId: "7f1d2a1e-0000-4000-8000-000000000001",
    namespace: "default",
    functionName: "resize",
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    function: functionSnapshot("default", "resize", {
      codeKey: "code/default/resize/a.zip",
      timeoutSeconds: 5,
      maxConcurrency: 2,
    }),
    phase: "queued",
    version: 1,
    invokedAt: 1_000,
    ...overrides,
  };
}

function apply(state: EventState, ...commands: Parameters<typeof transition>[1][]): EventState {
  let current = state;
  for (const command of commands) {
    const result = transition(current, command);
    if (!result.ok) throw new Error(result.message);
    current = result.value.state;
  }
  return current;
}

describe("event state machine", () => {
  it("goes queued → starting → running → finished with status FINISHED/200 and the result", () => {
    const done = apply(
      queued(),
      { type: "claim", instanceId: "default/resize#0", at: 2_000 },
      { type: "started", instanceId: "default/resize#0", cold: true, containerId: "boot-1", at: 2_500 },
      { type: "complete", instanceId: "default/resize#0", outcome: { kind: "returned", result: { ok: 1 } }, at: 3_000 },
    );
    expect(done.phase).toBe("finished");
    expect(publicStatus(done.phase)).toBe("FINISHED");
    expect(done.statusCode).toBe(200);
    expect(done.result).toBe('{"ok":1}');
    expect(done.durationMs).toBe(500);
    expect(done.version).toBe(4);
  });

  it("reports RUNNING for every phase before the end", () => {
    expect(["queued", "starting", "running"].map((phase) => publicStatus(phase as EventState["phase"]))).toEqual([
      "RUNNING",
      "RUNNING",
      "RUNNING",
    ]);
  });

  it("lets only one instance claim an event, and a repeated claim by the same instance changes nothing", () => {
    const claimed = apply(queued(), { type: "claim", instanceId: "a#0", at: 2 });
    const again = transition(claimed, { type: "claim", instanceId: "a#0", at: 3 });
    expect(again).toEqual({ ok: true, value: { state: claimed, changed: false } });
    const other = transition(claimed, { type: "claim", instanceId: "a#1", at: 3 });
    expect(other.ok).toBe(false);
  });

  it("refuses to claim an event that has ended", () => {
    const ended = apply(queued(), { type: "timeout", at: 5 });
    const result = transition(ended, { type: "claim", instanceId: "a#0", at: 6 });
    expect(result).toMatchObject({ ok: false, code: "ENDED" });
  });

  it("ignores a second completion (at-least-once reports) and keeps the first outcome", () => {
    const first = apply(
      queued(),
      { type: "claim", instanceId: "a#0", at: 1 },
      { type: "complete", instanceId: "a#0", outcome: { kind: "threw", message: "Error: x" }, at: 2 },
    );
    const second = transition(first, {
      type: "complete",
      instanceId: "a#0",
      outcome: { kind: "returned", result: 1 },
      at: 3,
    });
    expect(second).toEqual({ ok: true, value: { state: first, changed: false } });
  });

  it("refuses a completion from an instance that does not own the event", () => {
    const claimed = apply(queued(), { type: "claim", instanceId: "a#0", at: 1 });
    const result = transition(claimed, {
      type: "complete",
      instanceId: "a#9",
      outcome: { kind: "returned", result: 1 },
      at: 2,
    });
    expect(result).toMatchObject({ ok: false, code: "WRONG_INSTANCE" });
  });

  it("maps outcomes to SCF status codes", () => {
    expect(endingOf({ kind: "threw", message: "Error: boom" }, 5)).toMatchObject({ phase: "failed", statusCode: 430 });
    expect(endingOf({ kind: "timeout" }, 5)).toMatchObject({
      phase: "failed",
      statusCode: 433,
      errorMessage: "Invocation timed out after 5 s",
    });
    expect(endingOf({ kind: "oom" }, 5)).toMatchObject({ phase: "failed", statusCode: 434 });
    expect(endingOf({ kind: "exited", code: 3, signal: null }, 5)).toMatchObject({
      phase: "failed",
      statusCode: 439,
      errorMessage: "User process exit when running (exit code 3)",
    });
    expect(endingOf({ kind: "crashed", message: "gone" }, 5)).toMatchObject({ phase: "failed", statusCode: 500 });
  });

  it("fails an event whose result is over the size limit instead of storing it", () => {
    const ending = endingOf({ kind: "returned", result: "x".repeat(MAX_RESULT_BYTES) }, 5);
    expect(ending).toMatchObject({ phase: "failed", statusCode: 430 });
    expect(ending.result).toBeUndefined();
  });

  it("treats every outcome but a returned value as abnormal (the instance is repossessed)", () => {
    expect(isAbnormal({ kind: "returned", result: null })).toBe(false);
    expect(isAbnormal({ kind: "threw", message: "x" })).toBe(true);
    expect(isAbnormal({ kind: "exited", code: 0, signal: null })).toBe(true);
    expect(isAbnormal({ kind: "timeout" })).toBe(true);
  });
});

/** The instance that runs the events of these tests. */
const INSTANCE = "default/resize#0";

/** A running event (started at 2,500). */
function running(overrides: Partial<EventState> = {}): EventState {
  return apply(
    queued(overrides),
    { type: "claim", instanceId: INSTANCE, at: 2_000 },
    { type: "started", instanceId: INSTANCE, cold: true, containerId: "boot-1", at: 2_500 },
  );
}

/** A running event that a graceful terminate has sent SIGTERM (at 3,000). */
function terminating(): EventState {
  return apply(running(), { type: "terminate", graceful: true, at: 3_000 });
}

/** The event after the instance reports this outcome. */
function completed(state: EventState, outcome: ExecutionOutcome): EventState {
  return apply(state, { type: "complete", instanceId: INSTANCE, outcome, at: 4_000 });
}

/** The status, StatusCode and message of an ended event. */
function endingView(state: EventState) {
  return { status: publicStatus(state.phase), statusCode: state.statusCode, errorMessage: state.errorMessage };
}

describe("how an event ends after a graceful terminate's SIGTERM", () => {
  const rows: { how: string; outcome: ExecutionOutcome; status: string; statusCode: number; message?: string }[] = [
    { how: "returns", outcome: { kind: "returned", result: { stopped: true } }, status: "ABORTED", statusCode: 200 },
    {
      how: "throws",
      outcome: { kind: "threw", message: "Error: stopped on SIGTERM", stack: "at x" },
      status: "ABORTED",
      statusCode: 430,
      message: "Error: stopped on SIGTERM",
    },
    {
      how: "exits with code 0",
      outcome: { kind: "exited", code: 0, signal: null },
      status: "ABORTED",
      statusCode: 439,
      message: `${USER_PROCESS_EXIT_MESSAGE} (exit code 0)`,
    },
    {
      how: "exits with code 3",
      outcome: { kind: "exited", code: 3, signal: null },
      status: "ABORTED",
      statusCode: 439,
      message: `${USER_PROCESS_EXIT_MESSAGE} (exit code 3)`,
    },
    {
      how: "dies of the SIGTERM (no handler)",
      outcome: { kind: "sigterm" },
      status: "ABORTED",
      statusCode: 439,
      message: `${USER_PROCESS_EXIT_MESSAGE} (SIGTERM not handled)`,
    },
    {
      how: "dies of another signal",
      outcome: { kind: "exited", code: null, signal: "SIGKILL" },
      status: "ABORTED",
      statusCode: 439,
      message: `${USER_PROCESS_EXIT_MESSAGE} (signal SIGKILL)`,
    },
    {
      how: "reaches its timeout",
      outcome: { kind: "timeout" },
      status: "ABORTED",
      statusCode: 433,
      message: "Invocation timed out after 5 s",
    },
    { how: "runs out of memory", outcome: { kind: "oom" }, status: "ABORTED", statusCode: 434 },
    {
      how: "is lost to a platform error",
      outcome: { kind: "crashed", message: "the container exited during the execution" },
      status: "FAILED",
      statusCode: 500,
      message: "the container exited during the execution",
    },
    {
      how: "is stopped by the platform",
      outcome: { kind: "platform_stop", message: "the handler was ended by SIGTERM" },
      status: "FAILED",
      statusCode: 503,
      message: `${PLATFORM_STOPPED_MESSAGE} (the handler was ended by SIGTERM)`,
    },
  ];

  it.each(rows)("a handler that $how: $status / $statusCode", ({ outcome, status, statusCode, message }) => {
    const ended = completed(terminating(), outcome);
    expect(endingView(ended)).toMatchObject({ status, statusCode });
    if (message !== undefined) expect(ended.errorMessage).toBe(message);
  });

  it("keeps the result of a handler that returns, and no error", () => {
    const ended = completed(terminating(), { kind: "returned", result: { stopped: true } });
    expect(ended.result).toBe('{"stopped":true}');
    expect(ended.errorMessage).toBeUndefined();
  });

  it("gives a 439 message to every exit, code 0 included: never 499 with an exit's message", () => {
    for (const code of [0, 1, 3, 255]) {
      const ended = completed(terminating(), { kind: "exited", code, signal: null });
      expect(ended.statusCode).toBe(STATUS_CODE.USER_PROCESS_EXIT);
      expect(ended.errorMessage).toBe(`${USER_PROCESS_EXIT_MESSAGE} (exit code ${code})`);
    }
  });

  it("ends a handler still running at the end of the grace period ABORTED / 499 with a message saying so", () => {
    // The event's alarm forces the terminate once the grace period after SIGTERM has passed.
    const ended = apply(terminating(), { type: "terminate", graceful: false, at: 33_000 });
    expect(endingView(ended)).toEqual({
      status: "ABORTED",
      statusCode: STATUS_CODE.TERMINATED,
      errorMessage: "Terminated by request: the handler was still running after SIGTERM and was stopped by force",
    });
  });

  it("ends ABORTED / 433 when the event's own timeout backstop fires after the SIGTERM", () => {
    const ended = apply(terminating(), { type: "timeout", at: 20_000 });
    expect(endingView(ended)).toEqual({
      status: "ABORTED",
      statusCode: 433,
      errorMessage: "Invocation timed out after 5 s",
    });
  });

  it("keeps 'Terminated by request' for a forced terminate without a SIGTERM before it", () => {
    const ended = apply(running(), { type: "terminate", graceful: false, at: 3_000 });
    expect(endingView(ended)).toEqual({ status: "ABORTED", statusCode: 499, errorMessage: "Terminated by request" });
  });
});

describe("how an event ends when the platform stops its container", () => {
  it("ends FAILED / 503 with the platform's message, whatever the handler did after the SIGTERM", () => {
    const ended = completed(running(), { kind: "platform_stop", message: "the handler returned after SIGTERM" });
    expect(endingView(ended)).toEqual({
      status: "FAILED",
      statusCode: STATUS_CODE.PLATFORM_STOPPED,
      errorMessage: `${PLATFORM_STOPPED_MESSAGE} (the handler returned after SIGTERM)`,
    });
    expect(ended.result).toBeUndefined();
  });

  it("treats a SIGTERM death nobody asked for as the platform's stop, never as a user's terminate (439)", () => {
    const ended = completed(running(), { kind: "sigterm" });
    expect(endingView(ended)).toEqual({
      status: "FAILED",
      statusCode: 503,
      errorMessage: `${PLATFORM_STOPPED_MESSAGE} (the handler was ended by SIGTERM)`,
    });
  });

  it("fails an outcome of an unknown kind as a platform error instead of breaking the event", () => {
    const unknown = { kind: "vanished" } as unknown as ExecutionOutcome;
    const ended = completed(running(), unknown);
    expect(endingView(ended)).toMatchObject({ status: "FAILED", statusCode: 500 });
    expect(ended.errorMessage).toContain("vanished");
  });
});
