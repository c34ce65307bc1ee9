import { describe, expect, it } from "vitest";
import { isInstanceOfFunction } from "../../worker/events/async-event-object";
import {
  type EventState,
  endingOf,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_ERROR_STACK_BYTES,
  transition,
} from "../../worker/events/event-machine";
import { truncateUtf8, utf8Length } from "../../worker/events/text-bounds";
import { functionSnapshot } from "../helpers/function-snapshot";

function running(): EventState {
  return {
    requestId: "7f1d2a1e-0000-4000-8000-000000000002",
    namespace: "default",
    functionName: "resize",
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    function: functionSnapshot("default", "resize", {
      codeKey: "code/default/resize/a.zip",
      timeoutSeconds: 5,
      maxConcurrency: 2,
    }),
    phase: "running",
    version: 3,
    invokedAt: 1_000,
    claimedAt: 1_100,
    startedAt: 1_200,
    instanceId: "default/resize#0",
  };
}

describe("text truncation", () => {
  it("keeps a text that fits and cuts one that does not, with the count of removed characters", () => {
    expect(truncateUtf8("short", 10)).toBe("short");
    const cut = truncateUtf8("a".repeat(1_000), 100);
    expect(utf8Length(cut)).toBeLessThanOrEqual(100);
    const kept = cut.indexOf("…");
    expect(cut.slice(kept)).toBe(`…[truncated ${1_000 - kept} characters]`);
  });

  it("never cuts a multi-byte character in two", () => {
    const cut = truncateUtf8("中😀".repeat(500), 200);
    expect(utf8Length(cut)).toBeLessThanOrEqual(200);
    expect(cut).not.toContain("\uFFFD");
    expect(/^(中😀)*中?…\[truncated \d+ characters\]$/u.test(cut)).toBe(true);
  });
});

describe("bounded outcomes in the state machine", () => {
  it("cuts an oversized error message and stack with a visible marker", () => {
    const result = transition(running(), {
      type: "complete",
      instanceId: "default/resize#0",
      outcome: { kind: "threw", message: "é".repeat(10_000), stack: "s".repeat(100_000) },
      at: 2_000,
    });
    if (!result.ok) throw new Error(result.message);
    expect(utf8Length(result.value.state.errorMessage ?? "")).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_BYTES);
    expect(utf8Length(result.value.state.errorStack ?? "")).toBeLessThanOrEqual(MAX_ERROR_STACK_BYTES);
    expect(result.value.state.errorMessage).toMatch(/…\[truncated \d+ characters\]$/);
    expect(result.value.state.errorStack).toMatch(/…\[truncated \d+ characters\]$/);
  });

  it("fails an event whose return value cannot be written as JSON, instead of throwing", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(endingOf({ kind: "returned", result: cyclic }, 5)).toMatchObject({
      phase: "failed",
      statusCode: 430,
      errorMessage: "the handler's return value cannot be written as JSON",
    });
  });

  it("refuses a completion for an event no instance has claimed", () => {
    const result = transition(
      { ...running(), phase: "queued", instanceId: undefined },
      { type: "complete", instanceId: "default/resize#0", outcome: { kind: "returned", result: 1 }, at: 2 },
    );
    expect(result).toMatchObject({ ok: false, code: "WRONG_INSTANCE" });
  });
});

describe("instance ownership", () => {
  it("accepts only slots of the event's own function", () => {
    expect(isInstanceOfFunction("default/resize#0", "default", "resize")).toBe(true);
    expect(isInstanceOfFunction("default/resize#12", "default", "resize")).toBe(true);
    for (const foreign of [
      "default/other#0",
      "other/resize#0",
      "default/resize",
      "default/resize#",
      "default/resize#01",
      "default/resize#0#1",
      "default/resize#-1",
      "default/resizer#0",
    ]) {
      expect(isInstanceOfFunction(foreign, "default", "resize"), foreign).toBe(false);
    }
  });
});
