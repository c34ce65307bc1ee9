import { type DispatchMessage, dispatchMessageSchema } from "../events/dispatch-message";
import { type EventIndexEntry, writeIndexEntries } from "../events/event-index";
import { schedulerName } from "./function-scheduler-object";

/**
 * Consumes the dispatch queue: writes the events' first index rows in one D1 batch, then hands
 * them to their functions' schedulers. Delivery is at-least-once; both steps are idempotent
 * (versioned index upsert, scheduler de-duplication, and the event's single claim).
 */
export async function consumeDispatchBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const valid: { message: Message<unknown>; body: DispatchMessage }[] = [];
  for (const message of batch.messages) {
    const parsed = dispatchMessageSchema.safeParse(message.body);
    if (!parsed.success) {
      console.error("dropping a malformed dispatch message", message.id);
      message.ack();
      continue;
    }
    valid.push({ message, body: parsed.data });
  }
  if (valid.length === 0) return;

  const entries: EventIndexEntry[] = valid.map(({ body }) => ({
    requestId: body.requestId,
    namespace: body.namespace,
    functionName: body.functionName,
    qualifier: body.qualifier,
    invokeType: body.invokeType,
    status: "RUNNING",
    statusCode: null,
    phase: "queued",
    startTime: body.invokedAt,
    endTime: null,
    durationMs: null,
    version: 1,
  }));
  try {
    await writeIndexEntries(env.DB, entries);
  } catch (error) {
    // The index follows the event objects; later transitions write the row again.
    console.warn("event index write failed for a dispatch batch", String(error));
  }

  const bySchedulers = new Map<string, typeof valid>();
  for (const item of valid) {
    const name = schedulerName(item.body.namespace, item.body.functionName);
    bySchedulers.set(name, [...(bySchedulers.get(name) ?? []), item]);
  }
  await Promise.all(
    [...bySchedulers].map(async ([name, items]) => {
      try {
        await env.SCHEDULER.get(env.SCHEDULER.idFromName(name)).submit(items.map((item) => item.body));
        for (const item of items) item.message.ack();
      } catch (error) {
        console.warn("scheduler submit failed; retrying", name, String(error));
        for (const item of items) item.message.retry({ delaySeconds: 1 });
      }
    }),
  );
}

/** Dead letters: the event objects' watchdogs dispatch again, so these are only logged. */
export async function consumeDeadLetters(batch: MessageBatch<unknown>): Promise<void> {
  for (const message of batch.messages) {
    console.error("dispatch message dead-lettered; the event's watchdog will re-dispatch", message.id);
    message.ack();
  }
}
