// The dispatch queue's consumers: a message that fails the dispatch schema is dead-lettered (never
// acknowledged silently, never retried forever), and the scheduler counts the duplicates it absorbs.
import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { DispatchMessage } from "../../worker/events/dispatch-message";
import {
  consumeDeadLetters,
  consumeDispatchBatch,
  dispatchConsumerStats,
  MAX_MALFORMED_DELIVERIES,
} from "../../worker/scheduling/dispatch-consumer";
import { finishedIndexEntry } from "../helpers/index-entry";

/** A dispatch message of a function no other test uses, for an event that does not exist. */
function dispatchMessage(functionName: string, requestId: string = crypto.randomUUID()): DispatchMessage {
  return {
    requestId,
    namespace: "default",
    functionName,
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    invokedAt: Date.now(),
    maxConcurrency: 1,
  };
}

/** A dead-letter queue that records what is sent to it, or refuses every send when `refusing`. */
function fakeDeadLetterQueue(refusing = false) {
  const sent: unknown[] = [];
  const queue = {
    send: async (body: unknown) => {
      if (refusing) throw new Error("injected fault: the dead-letter queue refuses sends");
      sent.push(body);
    },
  };
  return { sent, queue: queue as unknown as Env["DISPATCH_DEAD_LETTER_QUEUE"] };
}

/** A scheduler namespace whose schedulers record the messages submitted to them. */
function recordingSchedulers() {
  const submitted: DispatchMessage[][] = [];
  const scheduler = {
    idFromName: (name: string) => env.SCHEDULER.idFromName(name),
    get: () => ({ submit: async (messages: DispatchMessage[]) => void submitted.push(messages) }),
  };
  return { submitted, scheduler: scheduler as unknown as Env["SCHEDULER"] };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("a malformed dispatch message", () => {
  it("goes to the dead-letter queue with an error naming it and its first schema issue, and is counted", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const deadLetters = fakeDeadLetterQueue();
    const schedulers = recordingSchedulers();
    const valid = dispatchMessage(`fn-${crypto.randomUUID()}`);
    const malformed = { ...dispatchMessage("fn"), requestId: "not-a-uuid" };
    const before = dispatchConsumerStats().malformedMessages;
    const batch = createMessageBatch<unknown>("afp-dispatch", [
      { id: "malformed-1", timestamp: Date.now(), attempts: 1, body: malformed },
      { id: "valid-1", timestamp: Date.now(), attempts: 1, body: valid },
    ]);

    await consumeDispatchBatch(batch, {
      ...env,
      DISPATCH_DEAD_LETTER_QUEUE: deadLetters.queue,
      SCHEDULER: schedulers.scheduler,
    });
    const result = await getQueueResult(batch, createExecutionContext());

    expect(deadLetters.sent).toEqual([malformed]);
    expect(result.explicitAcks.sort()).toEqual(["malformed-1", "valid-1"]);
    expect(result.retryMessages).toEqual([]);
    // The valid message of the same batch is dispatched as usual.
    expect(schedulers.submitted).toEqual([[valid]]);
    expect(dispatchConsumerStats().malformedMessages).toBe(before + 1);
    const logged = errors.mock.calls.map((call) => call.map(String).join(" "));
    expect(logged.some((line) => line.includes("malformed-1") && line.includes("requestId:"))).toBe(true);
  });

  it("is retried when the dead-letter queue refuses it, and dropped with an error at its last delivery", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const refusing = fakeDeadLetterQueue(true);
    const consumerEnv = { ...env, DISPATCH_DEAD_LETTER_QUEUE: refusing.queue };
    const body = { requestId: "not-a-uuid" };

    const first = createMessageBatch<unknown>("afp-dispatch", [
      { id: "refused-1", timestamp: Date.now(), attempts: 1, body },
    ]);
    await consumeDispatchBatch(first, consumerEnv);
    const retried = await getQueueResult(first, createExecutionContext());
    expect(retried.explicitAcks).toEqual([]);
    expect(retried.retryMessages.map((retry) => retry.msgId)).toEqual(["refused-1"]);

    const droppedBefore = dispatchConsumerStats().malformedDropped;
    const last = createMessageBatch<unknown>("afp-dispatch", [
      { id: "refused-1", timestamp: Date.now(), attempts: MAX_MALFORMED_DELIVERIES, body },
    ]);
    await consumeDispatchBatch(last, consumerEnv);
    const dropped = await getQueueResult(last, createExecutionContext());
    expect(dropped.explicitAcks).toEqual(["refused-1"]);
    expect(dropped.retryMessages).toEqual([]);
    expect(dispatchConsumerStats().malformedDropped).toBe(droppedBefore + 1);
    const logged = errors.mock.calls.map((call) => call.map(String).join(" "));
    expect(logged.some((line) => line.includes("refused-1") && line.includes("dropped"))).toBe(true);
  });

  it("is told apart from a valid dispatch message by the dead-letter consumer, both acknowledged", async () => {
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    const before = dispatchConsumerStats();
    const batch = createMessageBatch<unknown>("afp-dispatch-dead", [
      { id: "dead-valid", timestamp: Date.now(), attempts: 1, body: dispatchMessage("fn") },
      { id: "dead-malformed", timestamp: Date.now(), attempts: 1, body: { requestId: 7 } },
    ]);
    await consumeDeadLetters(batch, env);
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks.sort()).toEqual(["dead-malformed", "dead-valid"]);
    const after = dispatchConsumerStats();
    expect(after.deadLetters).toBe(before.deadLetters + 1);
    expect(after.malformedDeadLetters).toBe(before.malformedDeadLetters + 1);
  });
});

describe("the scheduler's duplicate counters", () => {
  it("count a repeated submission as ignored, and an event whose claim is refused on its instance", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const functionName = `dup-${crypto.randomUUID()}`;
    const scheduler = env.SCHEDULER.get(env.SCHEDULER.idFromName(`default/${functionName}`));
    // No such event exists: its instance's claim is refused ("unknown event"), as for an ended one.
    const message = dispatchMessage(functionName);
    await scheduler.submit([message, message]);
    await expect.poll(async () => (await scheduler.stats()).claimsRefused, { timeout: 5_000 }).toBe(1);
    expect(await scheduler.stats()).toMatchObject({ duplicatesIgnored: 1, claimsRefused: 1, pending: 0, busy: 0 });
  });
});

describe("an ended event's index row on the dispatch queue", () => {
  /** The index-row message of an ended event of `functionName` (no event object behind it). */
  function indexRowMessage(functionName: string, requestId: string, version: number) {
    return {
      kind: "index-row",
      entry: {
        ...finishedIndexEntry("default", functionName, {
          requestId,
          startTime: Date.now() - 1_000,
          endTime: Date.now(),
          version,
        }),
        tags: { team: "video" },
        progressPercent: null,
        progressMessage: null,
        progressAt: null,
      },
    };
  }

  async function indexRow(requestId: string) {
    return env.DB.prepare("SELECT status, status_code, phase, version, tags FROM events WHERE request_id = ?")
      .bind(requestId)
      .first();
  }

  it("is written with the batch's first rows, in one D1 batch, acknowledged and never sent to a scheduler", async () => {
    const schedulers = recordingSchedulers();
    const functionName = `rows-${crypto.randomUUID()}`;
    const dispatched = dispatchMessage(functionName);
    const ended = crypto.randomUUID();
    // A dispatch and the end of the same event in one delivery: the end's newer version wins.
    const both = crypto.randomUUID();
    const batch = createMessageBatch<unknown>("afp-dispatch-2", [
      { id: "dispatch", timestamp: Date.now(), attempts: 1, body: dispatched },
      { id: "row", timestamp: Date.now(), attempts: 1, body: indexRowMessage(functionName, ended, 4) },
      { id: "both-first", timestamp: Date.now(), attempts: 1, body: dispatchMessage(functionName, both) },
      { id: "both-end", timestamp: Date.now(), attempts: 1, body: indexRowMessage(functionName, both, 3) },
    ]);
    const batches = vi.spyOn(env.DB, "batch");
    await consumeDispatchBatch(batch, { ...env, SCHEDULER: schedulers.scheduler });
    const result = await getQueueResult(batch, createExecutionContext());

    expect(result.explicitAcks.sort()).toEqual(["both-end", "both-first", "dispatch", "row"]);
    expect(result.retryMessages).toEqual([]);
    expect(batches).toHaveBeenCalledTimes(1);
    expect(
      schedulers.submitted
        .flat()
        .map((message) => message.requestId)
        .sort(),
    ).toEqual([dispatched.requestId, both].sort());
    expect(await indexRow(ended)).toMatchObject({ status: "FINISHED", status_code: 200, version: 4 });
    expect(await indexRow(both)).toMatchObject({ status: "FINISHED", phase: "succeeded", version: 3 });
    expect(await indexRow(dispatched.requestId)).toMatchObject({ status: "RUNNING", version: 1 });
    // A redelivered older row never moves an event back.
    const late = createMessageBatch<unknown>("afp-dispatch", [
      { id: "late", timestamp: Date.now(), attempts: 2, body: { ...indexRowMessage(functionName, ended, 2) } },
    ]);
    await consumeDispatchBatch(late, env);
    expect((await getQueueResult(late, createExecutionContext())).explicitAcks).toEqual(["late"]);
    expect(await indexRow(ended)).toMatchObject({ version: 4 });
  });

  it("is dead-lettered when malformed, and handed back to its event when dead-lettered valid", async () => {
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    const deadLetters = fakeDeadLetterQueue();
    const functionName = `rows-${crypto.randomUUID()}`;
    const malformed = { ...indexRowMessage(functionName, crypto.randomUUID(), 3), entry: { requestId: "x" } };
    // One that names a valid RequestId is handed back to that event instead (none exists here: acknowledged).
    const namesItsEvent = { kind: "index-row", entry: { requestId: crypto.randomUUID(), status: 5 } };
    const batch = createMessageBatch<unknown>("afp-dispatch", [
      { id: "malformed-row", timestamp: Date.now(), attempts: 1, body: malformed },
      { id: "odd-row", timestamp: Date.now(), attempts: 1, body: namesItsEvent },
    ]);
    await consumeDispatchBatch(batch, { ...env, DISPATCH_DEAD_LETTER_QUEUE: deadLetters.queue });
    expect((await getQueueResult(batch, createExecutionContext())).explicitAcks.sort()).toEqual([
      "malformed-row",
      "odd-row",
    ]);
    expect(deadLetters.sent).toEqual([malformed]);

    // A row out of deliveries, valid or not, that names its event: the event (none here) is asked
    // to write its own row; acknowledged. One naming no valid RequestId is a malformed dead letter.
    const before = dispatchConsumerStats();
    const dead = createMessageBatch<unknown>("afp-dispatch-dead", [
      {
        id: "dead-row",
        timestamp: Date.now(),
        attempts: 1,
        body: indexRowMessage(functionName, crypto.randomUUID(), 3),
      },
      {
        id: "dead-odd-row",
        timestamp: Date.now(),
        attempts: 1,
        body: { kind: "index-row", entry: { requestId: crypto.randomUUID(), status: 5 } },
      },
      { id: "dead-malformed-row", timestamp: Date.now(), attempts: 1, body: malformed },
    ]);
    await consumeDeadLetters(dead, env);
    expect((await getQueueResult(dead, createExecutionContext())).explicitAcks.sort()).toEqual([
      "dead-malformed-row",
      "dead-odd-row",
      "dead-row",
    ]);
    expect(dispatchConsumerStats()).toMatchObject({
      deadIndexRows: before.deadIndexRows + 2,
      malformedDeadLetters: before.malformedDeadLetters + 1,
      deadLetters: before.deadLetters,
    });
  });

  it("is handed back to its event when D1 refuses the batch, and redelivered when the event cannot take it", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const functionName = `rows-${crypto.randomUUID()}`;
    const requestId = crypto.randomUUID();
    const refusingDb = {
      prepare: (sql: string) => env.DB.prepare(sql),
      batch: async () => {
        throw new Error("injected fault: D1 refuses the batch");
      },
    } as unknown as D1Database;
    const unreachableEvents = {
      idFromName: (name: string) => env.ASYNC_EVENT.idFromName(name),
      get: () => ({
        owesIndexRow: async () => {
          throw new Error("injected fault: the event is unreachable");
        },
      }),
    } as unknown as Env["ASYNC_EVENT"];
    const batch = createMessageBatch<unknown>("afp-dispatch", [
      { id: "row", timestamp: Date.now(), attempts: 1, body: indexRowMessage(functionName, requestId, 3) },
    ]);
    await consumeDispatchBatch(batch, { ...env, DB: refusingDb, ASYNC_EVENT: unreachableEvents });
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages.map((retry) => retry.msgId)).toEqual(["row"]);
    expect(await indexRow(requestId)).toBeNull();
    // Dead-lettered, it is delivered again until its event can take it back: never dropped.
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    const dead = createMessageBatch<unknown>("afp-dispatch-dead", [
      { id: "dead-row", timestamp: Date.now(), attempts: 1, body: indexRowMessage(functionName, requestId, 3) },
    ]);
    await consumeDeadLetters(dead, { ...env, ASYNC_EVENT: unreachableEvents });
    const deadResult = await getQueueResult(dead, createExecutionContext());
    expect(deadResult.explicitAcks).toEqual([]);
    expect(deadResult.retryMessages.map((retry) => retry.msgId)).toEqual(["dead-row"]);
  });
});
