import { describe, expect, it } from "vitest";
import {
  type EventState,
  endingOf,
  isAbnormal,
  MAX_RESULT_BYTES,
  publicStatus,
  transition,
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
    if (!result.ok) throw new Error(result.error.message);
    current = result.state;
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
    expect(again).toEqual({ ok: true, state: claimed, changed: false });
    const other = transition(claimed, { type: "claim", instanceId: "a#1", at: 3 });
    expect(other.ok).toBe(false);
  });

  it("refuses to claim an event that has ended", () => {
    const ended = apply(queued(), { type: "timeout", at: 5 });
    const result = transition(ended, { type: "claim", instanceId: "a#0", at: 6 });
    expect(result).toMatchObject({ ok: false, error: { code: "ENDED" } });
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
    expect(second).toEqual({ ok: true, state: first, changed: false });
  });

  it("refuses a completion from an instance that does not own the event", () => {
    const claimed = apply(queued(), { type: "claim", instanceId: "a#0", at: 1 });
    const result = transition(claimed, {
      type: "complete",
      instanceId: "a#9",
      outcome: { kind: "returned", result: 1 },
      at: 2,
    });
    expect(result).toMatchObject({ ok: false, error: { code: "WRONG_INSTANCE" } });
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
    expect(endingOf({ kind: "sigterm" }, 5)).toMatchObject({ phase: "aborted", statusCode: 439 });
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
