// Events accepted by their own Durable Objects, as the invoke path creates them, but with a dispatch
// queue that drops what is sent to it: the test hands the dispatch messages to the scheduler itself
// (no queue consumer delivers a second copy at a time of its own).
import { env, runInDurableObject } from "cloudflare:test";
import { type DispatchMessage, dispatchMessageOf } from "../../worker/events/dispatch-message";
import { DISPATCH_QUEUE_BINDINGS } from "../../worker/events/dispatch-send";
import type { PublicEvent } from "../../worker/events/event-machine";
import type { FunctionSnapshot } from "../../worker/functions/model";
import { unwrap } from "../../worker/shared/errors";
import { eventStub, schedulerName } from "../../worker/shared/objects";
import { functionSnapshot } from "./function-snapshot";

/** A queue that takes every message and delivers none. */
const droppingQueue = {
  send: async () => undefined,
  sendBatch: async () => undefined,
} as unknown as Env["DISPATCH_QUEUE"];

/**
 * The same queue under every dispatch queue binding: an object's env with it in place sends all of
 * its dispatch messages there, whichever queue its function's name picks (DISPATCH_QUEUES).
 */
export function everyDispatchQueue(queue: Env["DISPATCH_QUEUE"]): Record<string, Env["DISPATCH_QUEUE"]> {
  return Object.fromEntries(DISPATCH_QUEUE_BINDINGS.map((binding) => [binding, queue]));
}

/** A function no other test uses: a namespace of its own (its own quota), and its scheduler's name. */
export function uniqueFunction(prefix: string, overrides: Partial<FunctionSnapshot> = {}) {
  const namespace = `${prefix}${crypto.randomUUID().slice(0, 8)}`;
  const snapshot = functionSnapshot(namespace, "fn", overrides);
  return { snapshot, scheduler: schedulerName(namespace, snapshot.name) };
}

/**
 * Accepts a new event of the function through its object (its dispatch dropped), and answers its
 * RequestId and the dispatch message the queue would carry.
 */
export async function acceptedEvent(
  snapshot: FunctionSnapshot,
  payload: unknown = {},
): Promise<{ requestId: string; message: DispatchMessage }> {
  const requestId = crypto.randomUUID();
  const stub = eventStub(env, requestId);
  await runInDurableObject(stub, async (object) => {
    const holder = object as unknown as { env: Env };
    holder.env = { ...holder.env, ...everyDispatchQueue(droppingQueue) };
  });
  const request = {
    requestId,
    namespace: snapshot.namespace,
    functionName: snapshot.name,
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    function: snapshot,
    invokedAt: Date.now(),
  };
  await stub.accept({ ...request, payload: JSON.stringify(payload) });
  return { requestId, message: dispatchMessageOf({ ...request, phase: "queued", version: 1 }) };
}

/** The public view of an event. */
export async function eventView(requestId: string): Promise<PublicEvent> {
  return unwrap<PublicEvent>(await eventStub(env, requestId).view());
}

/** The log lines of an event, oldest first. */
export async function eventLogLines(requestId: string): Promise<string[]> {
  const page = unwrap(await eventStub(env, requestId).logs(0, 1_000));
  return page.records.map((record) => record.line);
}
