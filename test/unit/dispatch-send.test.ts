import { env as workerEnv } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { DispatchMessage } from "../../worker/events/dispatch-message";
import {
  CHAOS_MAX_DELAY_SECONDS,
  DISPATCH_QUEUE_BINDINGS,
  DISPATCH_QUEUE_COUNT,
  type DispatchSendEnv,
  dispatchQueueCount,
  dispatchQueueIndex,
  duplicatePlan,
  eventQueueIndex,
  isDispatchQueue,
  MAX_PINNED_FUNCTIONS,
  parseDispatchQueuePins,
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

describe("the dispatch queues", () => {
  /** An environment with all the dispatch queues, each recording the functions sent to it. */
  function allQueues(vars: Record<string, string> = {}): { env: DispatchSendEnv; seen: string[][] } {
    const seen: string[][] = DISPATCH_QUEUE_BINDINGS.map(() => []);
    const queues = Object.fromEntries(
      DISPATCH_QUEUE_BINDINGS.map((binding, index) => [
        binding,
        {
          send: async (body: DispatchMessage) => {
            seen[index]?.push(body.functionName);
          },
        } as unknown as Queue,
      ]),
    );
    return { env: { ...queues, DIAGNOSTICS_ENABLED: "false", ...vars } as unknown as DispatchSendEnv, seen };
  }
  const forFunction = (functionName: string): DispatchMessage => ({ ...message(1), functionName });

  it("sends every event of a function to one queue, the one its name hashes to, spreading functions over all forty", async () => {
    const { env, seen } = allQueues();
    const names = Array.from({ length: 1_000 }, (_, index) => `fn-${index}`);
    for (const name of names) for (let n = 0; n < 3; n++) await sendDispatch(env, forFunction(name));
    expect(seen).toHaveLength(DISPATCH_QUEUE_COUNT);
    for (const [index, functions] of seen.entries()) {
      for (const name of new Set(functions))
        expect(dispatchQueueIndex("default", name, DISPATCH_QUEUE_COUNT)).toBe(index);
      // Each function's three messages all went here, and each queue took a fair share (25 of 1,000 on average).
      expect(functions.length % 3).toBe(0);
      expect(new Set(functions).size).toBeGreaterThanOrEqual(10);
    }
    expect(seen.flat()).toHaveLength(3_000);
  });

  it("reads DISPATCH_QUEUES: 1 to 40, anything else all forty", async () => {
    expect(dispatchQueueCount({})).toBe(40);
    for (const [text, count] of [
      ["1", 1],
      [" 2 ", 2],
      ["4", 4],
      ["40", 40],
      ["0", 40],
      ["41", 40],
      ["two", 40],
      ["", 40],
    ] as const) {
      expect(dispatchQueueCount({ DISPATCH_QUEUES: text }), text).toBe(count);
    }
    const { env, seen } = allQueues({ DISPATCH_QUEUES: "1" });
    for (let index = 0; index < 20; index++) await sendDispatch(env, forFunction(`fn-${index}`));
    expect(seen.map((functions) => functions.length)).toEqual([20, ...Array(DISPATCH_QUEUE_COUNT - 1).fill(0)]);
  });

  it("sends to the first queue a function whose queue is not bound (an older configuration)", async () => {
    const { env, sent } = recordingEnv({ DIAGNOSTICS_ENABLED: "false" });
    for (let index = 0; index < 20; index++) await sendDispatch(env, forFunction(`fn-${index}`));
    expect(sent).toHaveLength(20);
  });

  it("knows the forty queue names and no other", () => {
    for (const name of ["afp-dispatch", "afp-dispatch-1", "afp-dispatch-3", "afp-dispatch-39"]) {
      expect(isDispatchQueue(name)).toBe(true);
    }
    for (const name of ["afp-dispatch-dead", "afp-dispatch-40", "afp-dispatch-01", "afp-trigger-dead", ""])
      expect(isDispatchQueue(name)).toBe(false);
  });

  it("has a producer binding in wrangler.toml for every one of them", () => {
    const bindings = workerEnv as unknown as Record<string, { send?: unknown } | undefined>;
    for (const binding of DISPATCH_QUEUE_BINDINGS) expect(typeof bindings[binding]?.send, binding).toBe("function");
    expect(bindings[`DISPATCH_QUEUE_${DISPATCH_QUEUE_COUNT}`]).toBeUndefined();
  });
});

describe("functions pinned to dispatch queues (DISPATCH_QUEUE_PINS)", () => {
  const event = (namespace: string, functionName: string, requestId: string = crypto.randomUUID()) => ({
    namespace,
    functionName,
    requestId,
  });

  it("sends a pinned function's events to its queue, and spreads one pinned to several over exactly those", () => {
    const env = { DISPATCH_QUEUES: "40", DISPATCH_QUEUE_PINS: "video/transcode=7, etl/daily=3|21|39" };
    for (let n = 0; n < 50; n++) expect(eventQueueIndex(env, event("video", "transcode"))).toBe(7);
    const counts = new Map<number, number>();
    for (let n = 0; n < 600; n++) {
      const queue = eventQueueIndex(env, event("etl", "daily"));
      counts.set(queue, (counts.get(queue) ?? 0) + 1);
    }
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual([3, 21, 39]);
    for (const count of counts.values()) expect(count).toBeGreaterThan(100);
    // The same event always goes to the same queue; a function not pinned hashes as before.
    const once = event("etl", "daily");
    expect(eventQueueIndex(env, once)).toBe(eventQueueIndex(env, { ...once }));
    expect(eventQueueIndex(env, event("video", "thumbnail"))).toBe(dispatchQueueIndex("video", "thumbnail", 40));
  });

  it("sends a pinned event through that queue's binding", async () => {
    const seen: number[] = [];
    const queues = Object.fromEntries(
      DISPATCH_QUEUE_BINDINGS.map((binding, index) => [
        binding,
        { send: async () => void seen.push(index) } as unknown as Queue,
      ]),
    );
    const env = { ...queues, DIAGNOSTICS_ENABLED: "false", DISPATCH_QUEUE_PINS: "default/fn-pinned=12" };
    await sendDispatch(env as unknown as DispatchSendEnv, { ...message(1), functionName: "fn-pinned" });
    expect(seen).toEqual([12]);
  });

  it("ignores malformed entries, queues out of range and a second pin, naming each", () => {
    const pins = parseDispatchQueuePins(
      "no-slash=1,a/fa=40,a/fa=x,a/fa/c=1,a/fa=2,a/fa=3,c/fd=0|0|5,=1,e/ff=,ns/-fn=4",
    );
    expect([...pins.byFunction]).toEqual([
      ["a/fa", [2]],
      ["c/fd", [0, 5]],
    ]);
    expect(pins.problems).toHaveLength(8);
    expect(pins.problems.join("\n")).toMatch(/"a\/fa=40" is not/);
    expect(pins.problems.join("\n")).toMatch(/pins a\/fa twice/);
    expect(pins.problems.join("\n")).toMatch(/"ns\/-fn", which is not/);
    expect(parseDispatchQueuePins(undefined).byFunction.size).toBe(0);
  });

  it("stops at MAX_PINNED_FUNCTIONS functions", () => {
    const many = Array.from({ length: MAX_PINNED_FUNCTIONS + 3 }, (_, index) => `ns/fn-${index}=1`).join(",");
    const pins = parseDispatchQueuePins(many);
    expect(pins.byFunction.size).toBe(MAX_PINNED_FUNCTIONS);
    expect(pins.problems).toEqual([expect.stringMatching(/more than 1000 functions/)]);
  });
});
