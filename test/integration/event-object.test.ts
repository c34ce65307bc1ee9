import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { EventState } from "../../worker/events/event-machine";
import { functionSnapshot } from "../helpers/function-snapshot";

const HOUR = 60 * 60 * 1000;

function endedState(requestId: string, endedAt: number): EventState {
  return {
    requestId,
    namespace: "default",
    functionName: "report",
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    function: functionSnapshot("default", "report", {
      codeSha256: "b".repeat(64),
      codeKey: "code/default/report/b.zip",
    }),
    phase: "finished",
    statusCode: 200,
    result: '"done"',
    version: 4,
    invokedAt: endedAt - 5_000,
    startedAt: endedAt - 4_000,
    endedAt,
  };
}

/** Stores an ended event as if it had run, with its retention alarm, then restarts the object. */
async function seedEndedEvent(endedAt: number) {
  const requestId = crypto.randomUUID();
  const stub = env.ASYNC_EVENT.get(env.ASYNC_EVENT.idFromName(requestId));
  await runInDurableObject(stub, async (_instance, state) => {
    await state.storage.put("state", endedState(requestId, endedAt));
    await state.storage.setAlarm(Date.now() + 60_000);
  });
  await evictDurableObject(stub);
  return { requestId, stub };
}

describe("AsyncEvent retention", () => {
  it("keeps an event's status readable until 72 h after it ended", async () => {
    const { stub } = await seedEndedEvent(Date.now() - 71 * HOUR);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.view()).toMatchObject({
      ok: true,
      value: { status: "FINISHED", statusCode: 200, result: "done" },
    });
  });

  it("deletes the event once 72 h have passed since it ended, and then answers not-found", async () => {
    const { stub } = await seedEndedEvent(Date.now() - 72 * HOUR - 1_000);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.view()).toMatchObject({ ok: false, code: "EVENT_NOT_FOUND" });
    await runInDurableObject(stub, async (_instance, state) => {
      expect(await state.storage.get("state")).toBeUndefined();
    });
  });

  it("refuses to terminate an event that has ended and changes nothing", async () => {
    const { stub } = await seedEndedEvent(Date.now() - HOUR);
    const before = await stub.view();
    expect(await stub.terminate(false)).toMatchObject({ ok: false, code: "EVENT_ALREADY_ENDED" });
    expect(await stub.view()).toEqual(before);
  });
});
