import { describe, expect, it } from "vitest";
import type { DispatchMessage } from "../../worker/events/dispatch-message";
import {
  CHAOS_MAX_DELAY_SECONDS,
  type DispatchSendEnv,
  duplicatePlan,
  sendDispatch,
} from "../../worker/events/dispatch-send";

/** One send as the fake queue saw it. */
interface Sent {
  body: unknown;
  delaySeconds: number | undefined;
}

/** An environment whose dispatch queue records every send. */
function recordingEnv(vars: { DIAGNOSTICS_ENABLED: string; CHAOS_DUPLICATE_DISPATCH?: string }): {
  env: DispatchSendEnv;
  sent: Sent[];
} {
  const sent: Sent[] = [];
  const queue = {
    send: async (body: unknown, options?: QueueSendOptions) => {
      sent.push({ body, delaySeconds: options?.delaySeconds });
    },
  } as unknown as Queue;
  return { env: { DISPATCH_QUEUE: queue, ...vars }, sent };
}

function message(n: number): DispatchMessage {
  return {
    requestId: `00000000-0000-4000-8000-${n.toString().padStart(12, "0")}`,
    namespace: "default",
    functionName: "f",
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    invokedAt: 1,
    maxConcurrency: 1,
  };
}

describe("sendDispatch", () => {
  it("sends each message once when the fault switch is off", async () => {
    const { env, sent } = recordingEnv({ DIAGNOSTICS_ENABLED: "true", CHAOS_DUPLICATE_DISPATCH: "false" });
    await sendDispatch(env, message(1));
    expect(sent).toEqual([{ body: message(1), delaySeconds: undefined }]);
  });

  it("ignores the fault switch unless diagnostics are on", async () => {
    const { env, sent } = recordingEnv({ DIAGNOSTICS_ENABLED: "false", CHAOS_DUPLICATE_DISPATCH: "true" });
    await sendDispatch(env, message(1));
    expect(sent).toHaveLength(1);
  });

  it("sends every message twice under the switch, some copies delayed and some ahead of their original", async () => {
    const { env, sent } = recordingEnv({ DIAGNOSTICS_ENABLED: "true", CHAOS_DUPLICATE_DISPATCH: "true" });
    const kinds = new Set<string>();
    for (let n = 0; n < 60; n++) {
      sent.length = 0;
      await sendDispatch(env, message(n));
      expect(sent.map((entry) => entry.body)).toEqual([message(n), message(n)]);
      const plan = duplicatePlan(message(n).requestId);
      kinds.add(plan.kind);
      const [original, copy] = sent.map((entry) => entry.delaySeconds ?? 0);
      if (plan.kind === "together") expect([original, copy]).toEqual([0, 0]);
      if (plan.kind === "copy-delayed") expect(original).toBe(0);
      if (plan.kind === "original-delayed") expect(copy).toBe(0);
      for (const delay of [original, copy]) expect(delay).toBeLessThanOrEqual(CHAOS_MAX_DELAY_SECONDS);
    }
    expect([...kinds].sort()).toEqual(["copy-delayed", "original-delayed", "together"]);
  });
});
