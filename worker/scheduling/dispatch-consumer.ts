import { type DispatchMessage, dispatchMessageSchema } from "../events/dispatch-message";
import { type EventIndexEntry, writeIndexEntries } from "../events/event-index";
import { schedulerName } from "./function-scheduler-object";

/**
 * Consumes the dispatch queue: writes the events' first index rows in one D1 batch, then hands
 * them to their functions' schedulers. Delivery is at-least-once; both steps are idempotent
 * (versioned index upsert, scheduler de-duplication, and the event's single claim). When the index
 * write fails, each event's Durable Object takes its row over (see handIndexRowsToEvents); a
 * message is acknowledged only once its row is written or owed by its event, and its scheduler has it.
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
  let indexed: ReadonlySet<string>;
  try {
    await writeIndexEntries(env.DB, entries);
    indexed = new Set(valid.map(({ body }) => body.requestId));
  } catch (error) {
    console.warn("event index write failed for a dispatch batch; the events will write their rows", String(error));
    indexed = await handIndexRowsToEvents(
      valid.map(({ body }) => body.requestId),
      env,
    );
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
        for (const item of items) {
          // A row neither written nor owed by its event: the redelivery writes it (and the
          // scheduler ignores the repeated submission).
          if (indexed.has(item.body.requestId)) item.message.ack();
          else item.message.retry({ delaySeconds: 1 });
        }
      } catch (error) {
        console.warn("scheduler submit failed; retrying", name, String(error));
        for (const item of items) item.message.retry({ delaySeconds: 1 });
      }
    }),
  );
}

/**
 * Asks each event's Durable Object to take over its index row (it keeps the write owed and its
 * alarm retries it until D1 has it). Returns the RequestIds whose row is now owed by their event
 * or needs none (the event no longer exists); the others could not be handed over.
 */
async function handIndexRowsToEvents(requestIds: readonly string[], env: Env): Promise<ReadonlySet<string>> {
  const settled = new Set<string>();
  await Promise.all(
    requestIds.map(async (requestId) => {
      try {
        await env.ASYNC_EVENT.get(env.ASYNC_EVENT.idFromName(requestId)).owesIndexRow();
        settled.add(requestId);
      } catch (error) {
        console.warn("could not hand an index row to its event; the message is redelivered", requestId, String(error));
      }
    }),
  );
  return settled;
}

/** Dead letters: the event objects' watchdogs dispatch again, so these are only logged. */
export async function consumeDeadLetters(batch: MessageBatch<unknown>): Promise<void> {
  for (const message of batch.messages) {
    console.error("dispatch message dead-lettered; the event's watchdog will re-dispatch", message.id);
    message.ack();
  }
}
