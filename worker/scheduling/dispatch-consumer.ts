import type { z } from "zod";
import { type DispatchMessage, dispatchMessageSchema } from "../events/dispatch-message";
import { eventIdentityOf } from "../events/event-identity";
import { type EventIndexEntry, writeIndexEntries } from "../events/event-index";
import { eventSchedulerName, eventStub, schedulerStub } from "../shared/objects";

/**
 * Deliveries of a malformed dispatch message whose send to the dead-letter queue failed, after
 * which it is dropped (logged) instead of retried again: 3 tries, never a message retried forever.
 */
export const MAX_MALFORMED_DELIVERIES = 3;
/** Seconds before a malformed message whose dead-letter send failed is delivered again. */
const MALFORMED_RETRY_DELAY_SECONDS = 1;

/**
 * What this isolate's queue consumers have seen, since the isolate started (diagnostics: counts
 * of one isolate, not of the deployment).
 */
export interface DispatchConsumerStats {
  /** Dispatch messages that failed their schema (each sent to the dead-letter queue or dropped). */
  malformedMessages: number;
  /** Malformed messages dropped after MAX_MALFORMED_DELIVERIES failed dead-letter sends. */
  malformedDropped: number;
  /** Dead letters consumed that are valid dispatch messages (their events' watchdogs re-dispatch). */
  deadLetters: number;
  /** Dead letters consumed that are not dispatch messages (nothing will ever run them). */
  malformedDeadLetters: number;
}

const stats: DispatchConsumerStats = {
  malformedMessages: 0,
  malformedDropped: 0,
  deadLetters: 0,
  malformedDeadLetters: 0,
};

/** A copy of this isolate's consumer counts (see DispatchConsumerStats). */
export function dispatchConsumerStats(): DispatchConsumerStats {
  return { ...stats };
}

/** The first schema issue of a refused message, as "path: message" (the path "(root)" for the body). */
function firstIssueOf(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return "invalid message";
  const path = issue.path.length > 0 ? issue.path.map(String).join(".") : "(root)";
  return `${path}: ${issue.message}`;
}

/**
 * A message that fails the dispatch schema can never run: it is logged with its id and first
 * schema issue, counted, and moved to the dead-letter queue (acknowledged here only once the dead
 * letter is sent). When that send fails the message is retried, up to MAX_MALFORMED_DELIVERIES
 * deliveries, then dropped with an error log: it is never acknowledged silently nor retried forever.
 */
async function deadLetterMalformed(
  message: Message<unknown>,
  issue: string,
  env: Pick<Env, "DISPATCH_DEAD_LETTER_QUEUE">,
): Promise<void> {
  stats.malformedMessages += 1;
  console.error(`malformed dispatch message ${message.id} sent to the dead-letter queue: ${issue}`);
  try {
    await env.DISPATCH_DEAD_LETTER_QUEUE.send(message.body);
    message.ack();
  } catch (error) {
    if (message.attempts >= MAX_MALFORMED_DELIVERIES) {
      stats.malformedDropped += 1;
      console.error(
        `malformed dispatch message ${message.id} dropped: the dead-letter queue refused it ${message.attempts} times`,
        String(error),
      );
      message.ack();
      return;
    }
    console.warn(`dead-lettering malformed dispatch message ${message.id} failed; retrying`, String(error));
    message.retry({ delaySeconds: MALFORMED_RETRY_DELAY_SECONDS });
  }
}

/**
 * Consumes the dispatch queue: writes the events' first index rows in one D1 batch, then hands
 * them to their functions' schedulers. Delivery is at-least-once; both steps are idempotent
 * (versioned index upsert, scheduler de-duplication, and the event's single claim). When the index
 * write fails, each event's Durable Object takes its row over (see handIndexRowsToEvents); a
 * message is acknowledged only once its row is written or owed by its event, and its scheduler has it.
 */
export async function consumeDispatchBatch(
  batch: MessageBatch<unknown>,
  env: Pick<Env, "DB" | "SCHEDULER" | "ASYNC_EVENT" | "DISPATCH_DEAD_LETTER_QUEUE">,
): Promise<void> {
  const valid: { message: Message<unknown>; body: DispatchMessage }[] = [];
  const malformed: Promise<void>[] = [];
  for (const message of batch.messages) {
    const parsed = dispatchMessageSchema.safeParse(message.body);
    if (!parsed.success) {
      malformed.push(deadLetterMalformed(message, firstIssueOf(parsed.error), env));
      continue;
    }
    valid.push({ message, body: parsed.data });
  }
  await Promise.all(malformed);
  if (valid.length === 0) return;

  const entries: EventIndexEntry[] = valid.map(({ body }) => ({
    ...eventIdentityOf(body),
    status: "RUNNING",
    statusCode: null,
    phase: "queued",
    startTime: body.invokedAt,
    endTime: null,
    durationMs: null,
    version: 1,
    ...(body.tags !== undefined ? { tags: body.tags } : {}),
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
    // The event's scheduler shard (the function's one scheduler unless its maxConcurrency needs more).
    const name = eventSchedulerName(
      item.body.namespace,
      item.body.functionName,
      item.body.requestId,
      item.body.maxConcurrency,
    );
    bySchedulers.set(name, [...(bySchedulers.get(name) ?? []), item]);
  }
  await Promise.all(
    [...bySchedulers].map(async ([name, items]) => {
      try {
        await schedulerStub(env, name).submit(items.map((item) => item.body));
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
async function handIndexRowsToEvents(
  requestIds: readonly string[],
  env: Pick<Env, "ASYNC_EVENT">,
): Promise<ReadonlySet<string>> {
  const settled = new Set<string>();
  await Promise.all(
    requestIds.map(async (requestId) => {
      try {
        await eventStub(env, requestId).owesIndexRow();
        settled.add(requestId);
      } catch (error) {
        console.warn("could not hand an index row to its event; the message is redelivered", requestId, String(error));
      }
    }),
  );
  return settled;
}

/**
 * Dead letters: a valid dispatch message's event is dispatched again by its watchdog, and a
 * malformed one can never run; both are logged and counted, then acknowledged.
 */
export async function consumeDeadLetters(batch: MessageBatch<unknown>): Promise<void> {
  for (const message of batch.messages) {
    if (dispatchMessageSchema.safeParse(message.body).success) {
      stats.deadLetters += 1;
      console.error("dispatch message dead-lettered; the event's watchdog will re-dispatch", message.id);
    } else {
      stats.malformedDeadLetters += 1;
      console.error("malformed dispatch message dead-lettered; nothing will run it", message.id);
    }
    message.ack();
  }
}
