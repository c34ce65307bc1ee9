import { z } from "zod";
import type { IndexDatabaseEnv } from "../db/index-databases";
import {
  type DispatchMessage,
  dispatchMessageSchema,
  type IndexRowMessage,
  indexRowMessageSchema,
  isIndexRowBody,
} from "../events/dispatch-message";
import { eventIdentityOf } from "../events/event-identity";
import { type EventIndexEntry, writeIndexEntriesByDatabase } from "../events/event-index";
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
  /** Dead letters consumed that are ended events' index rows (handed back to their events). */
  deadIndexRows: number;
}

const stats: DispatchConsumerStats = {
  malformedMessages: 0,
  malformedDropped: 0,
  deadLetters: 0,
  malformedDeadLetters: 0,
  deadIndexRows: 0,
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
 * Consumes the dispatch queue: writes the events' first index rows, with the ended events' rows
 * sent on the same queue (IndexRowMessage), in one D1 batch per index database (many rows per
 * statement; db/index-databases.ts), then hands
 * the dispatched events to their functions' schedulers. Delivery is at-least-once; every step is
 * idempotent (versioned index upsert, scheduler de-duplication, and the event's single claim).
 * When the index write fails, each event's Durable Object takes its row over (see
 * handIndexRowsToEvents); a message is acknowledged only once its row is written or owed by its
 * event, and, for a dispatch, its scheduler has it.
 */
export async function consumeDispatchBatch(
  batch: MessageBatch<unknown>,
  env: IndexDatabaseEnv & Pick<Env, "SCHEDULER" | "ASYNC_EVENT" | "DISPATCH_DEAD_LETTER_QUEUE">,
): Promise<void> {
  const valid: { message: Message<unknown>; body: DispatchMessage }[] = [];
  const rows: { message: Message<unknown>; body: IndexRowMessage }[] = [];
  const malformed: Promise<void>[] = [];
  for (const message of batch.messages) {
    if (isIndexRowBody(message.body)) {
      const row = indexRowMessageSchema.safeParse(message.body);
      if (row.success) {
        rows.push({ message, body: row.data });
        continue;
      }
      // A row that fails its schema but names its event: the event writes its own row.
      const requestId = requestIdOfIndexRow(message.body);
      if (requestId !== undefined) {
        console.error(`malformed index row ${message.id} handed back to its event: ${firstIssueOf(row.error)}`);
        malformed.push(handBack(message, requestId, env));
      } else {
        malformed.push(deadLetterMalformed(message, firstIssueOf(row.error), env));
      }
      continue;
    }
    const parsed = dispatchMessageSchema.safeParse(message.body);
    if (!parsed.success) {
      malformed.push(deadLetterMalformed(message, firstIssueOf(parsed.error), env));
      continue;
    }
    valid.push({ message, body: parsed.data });
  }
  await Promise.all(malformed);
  if (valid.length === 0 && rows.length === 0) return;

  const firstRows: EventIndexEntry[] = valid.map(({ body }) => ({
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
  // The ended events' rows after the first rows: the versioned upsert keeps the newest either way.
  const entries = [...firstRows, ...rows.map(({ body }) => indexEntryOfMessage(body))];
  // Each namespace's rows go to its index database; a database that refuses them hands its rows
  // back to their events (owesIndexRow), the others' rows stand.
  const { written, refused } = await writeIndexEntriesByDatabase(env, entries);
  const indexed = new Set(written);
  for (const group of refused) {
    console.warn(
      `event index write to ${group.binding} failed for a dispatch batch; the events will write their rows`,
      String(group.error),
    );
    // A RequestId's rows share its namespace, so they are all in this group.
    const requestIds = [...new Set(group.entries.map((entry) => entry.requestId))];
    for (const requestId of await handIndexRowsToEvents(requestIds, env)) indexed.add(requestId);
  }
  // An ended event's row is done once written or owed by its event again; else it is redelivered.
  for (const { message, body } of rows) {
    if (indexed.has(body.entry.requestId)) message.ack();
    else message.retry({ delaySeconds: 1 });
  }
  if (valid.length === 0) return;

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

/** A RequestId as events have them. */
const requestIdSchema = z.uuid();

/**
 * Hands an index row back to the event it names (owesIndexRow: its alarm writes the row to D1) and
 * acknowledges the message; when the event cannot be reached, the message is delivered again.
 */
async function handBack(message: Message<unknown>, requestId: string, env: Pick<Env, "ASYNC_EVENT">): Promise<void> {
  const settled = await handIndexRowsToEvents([requestId], env);
  if (settled.has(requestId)) message.ack();
  else message.retry({ delaySeconds: HAND_BACK_RETRY_DELAY_SECONDS });
}

/** Seconds before an index row whose event could not take it back is delivered again. */
const HAND_BACK_RETRY_DELAY_SECONDS = 5;

/** The RequestId an index-row body names, if it names a valid one (whatever the rest of it holds). */
function requestIdOfIndexRow(body: unknown): string | undefined {
  const requestId = (body as { entry?: { requestId?: unknown } }).entry?.requestId;
  return requestIdSchema.safeParse(requestId).success ? (requestId as string) : undefined;
}

/** The index entry an index-row message carries (optional fields absent rather than undefined). */
function indexEntryOfMessage(message: IndexRowMessage): EventIndexEntry {
  const { alias, tags, progressPercent, progressMessage, progressAt, ...rest } = message.entry;
  return {
    ...rest,
    ...(alias !== undefined ? { alias } : {}),
    ...(tags !== undefined ? { tags } : {}),
    progressPercent: progressPercent ?? null,
    progressMessage: progressMessage ?? null,
    progressAt: progressAt ?? null,
  };
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
 * malformed one can never run; both are logged and counted, then acknowledged. An ended event's
 * index row that ran out of deliveries is handed back to its event, whose alarm writes it to D1.
 */
export async function consumeDeadLetters(batch: MessageBatch<unknown>, env: Pick<Env, "ASYNC_EVENT">): Promise<void> {
  for (const message of batch.messages) {
    // An index row, even one that failed its schema, names its event: the event writes its own row.
    const requestId = isIndexRowBody(message.body) ? requestIdOfIndexRow(message.body) : undefined;
    if (requestId !== undefined) {
      stats.deadIndexRows += 1;
      console.error("index row dead-lettered; its event writes it", message.id);
      await handBack(message, requestId, env);
      continue;
    }
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
