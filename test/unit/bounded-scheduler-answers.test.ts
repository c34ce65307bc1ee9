// What GET of an event and GET of a function add from the function's scheduler (why a queued event
// waits; whether its dispatch is paused) is bounded: a failing or stuck scheduler makes the field
// null (unknown) within its timeout, never an error or a stalled read.
import { describe, expect, it } from "vitest";
import { QUEUED_REASON_TIMEOUT_MS, withQueuedReason } from "../../worker/events/queued-reason";
import { DISPATCH_FIELDS_TIMEOUT_MS, functionDispatchFields } from "../../worker/scheduling/dispatch-pause";
import { answerWithin } from "../../worker/shared/within";

type SchedulerBehaviour = "answers" | "fails" | "hangs";

/** An env whose every scheduler answers, fails or never answers; counts the calls. */
function schedulerEnv(behaviour: SchedulerBehaviour) {
  const calls: string[] = [];
  const outcome = <T>(value: T): Promise<T> => {
    if (behaviour === "fails") return Promise.reject(new Error("the scheduler is broken"));
    if (behaviour === "hangs") return new Promise<T>(() => {});
    return Promise.resolve(value);
  };
  const stub = {
    queuedReason: (requestId: string) => {
      calls.push(`queuedReason ${requestId}`);
      return outcome("paused" as const);
    },
    dispatchState: () => {
      calls.push("dispatchState");
      return outcome({ dispatchPaused: true, pausedAt: Date.UTC(2026, 0, 2), pendingEvents: 1 });
    },
  };
  const env = {
    SCHEDULER: { idFromName: (name: string) => name, get: () => stub },
  } as unknown as Pick<Env, "SCHEDULER">;
  return { env, calls };
}

const QUEUED = {
  requestId: "7f1d2a1e-0000-4000-8000-0000000000bb",
  namespace: "default",
  functionName: "job",
  phase: "queued",
  queuedReason: null,
};

/** Runs `read`, answering its value and how long it took (ms). */
async function timed<T>(read: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await read();
  return { value, ms: Date.now() - started };
}

describe("answerWithin", () => {
  it("answers the value, the fallback on a rejection, and the fallback past the time", async () => {
    expect(await answerWithin(Promise.resolve(1), 50, null)).toBe(1);
    expect(await answerWithin(Promise.reject(new Error("no")), 50, null)).toBeNull();
    const late = await timed(() => answerWithin(new Promise<number>(() => {}), 50, "late"));
    expect(late.value).toBe("late");
    expect(late.ms).toBeLessThan(1_000);
  });
});

describe("withQueuedReason", () => {
  it("adds the scheduler's reason to a queued event's view", async () => {
    const { env, calls } = schedulerEnv("answers");
    expect(await withQueuedReason(env, QUEUED)).toEqual({ ...QUEUED, queuedReason: "paused" });
    expect(calls).toEqual([`queuedReason ${QUEUED.requestId}`]);
  });

  it("does not ask the scheduler about an event that is not queued", async () => {
    const { env, calls } = schedulerEnv("answers");
    const running = { ...QUEUED, phase: "running" };
    expect(await withQueuedReason(env, running)).toEqual(running);
    expect(calls).toEqual([]);
  });

  it("answers null when the scheduler fails", async () => {
    const { env } = schedulerEnv("fails");
    expect((await withQueuedReason(env, QUEUED)).queuedReason).toBeNull();
  });

  it(`answers null within about ${QUEUED_REASON_TIMEOUT_MS} ms when the scheduler never answers`, async () => {
    const { env } = schedulerEnv("hangs");
    const { value, ms } = await timed(() => withQueuedReason(env, QUEUED));
    expect(value.queuedReason).toBeNull();
    expect(ms).toBeGreaterThanOrEqual(QUEUED_REASON_TIMEOUT_MS - 50);
    expect(ms).toBeLessThan(QUEUED_REASON_TIMEOUT_MS + 2_000);
  });
});

describe("functionDispatchFields", () => {
  it("answers the scheduler's dispatch state", async () => {
    const { env } = schedulerEnv("answers");
    expect(await functionDispatchFields(env, "default", "job")).toEqual({
      dispatchPaused: true,
      pausedAt: "2026-01-02T00:00:00.000Z",
    });
  });

  it("answers both fields null when the scheduler fails", async () => {
    const { env } = schedulerEnv("fails");
    expect(await functionDispatchFields(env, "default", "job")).toEqual({ dispatchPaused: null, pausedAt: null });
  });

  it(`answers both fields null within about ${DISPATCH_FIELDS_TIMEOUT_MS} ms when the scheduler never answers`, async () => {
    const { env } = schedulerEnv("hangs");
    const { value, ms } = await timed(() => functionDispatchFields(env, "default", "job"));
    expect(value).toEqual({ dispatchPaused: null, pausedAt: null });
    expect(ms).toBeLessThan(DISPATCH_FIELDS_TIMEOUT_MS + 2_000);
  });
});
