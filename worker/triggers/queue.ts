// The ckafka trigger, on a Cloudflare Queue: TriggerName is the name of a queue the Worker consumes
// for triggers (wrangler.toml: a [[queues.consumers]] entry and its `<queue>=<namespace>[|...]`
// entry in TRIGGER_QUEUES: only the owning namespaces may have triggers on it). Each
// message becomes one event per enabled trigger of the queue (or, with maxMsgNum > 1, each run of
// up to maxMsgNum messages of a delivered batch one event) in SCF's CKafka event shape, invoke type
// CKAFKA_TRIGGER. A redelivered message never creates a second event (see consumeTriggerQueueBatch).
import { z } from "zod";
import type { TriggerRow } from "../db/schema";
import { MAX_ASYNC_PAYLOAD_BYTES } from "../events/invoke";
import { sha256Hex, toBase64 } from "../shared/encoding";
import { PlatformError } from "../shared/errors";
import { idempotencyName, idempotencyStub } from "../shared/objects";
import { describeIssues } from "../shared/validation";
import type { PrepareTrigger } from "./model";
import {
  claimOwnedSource,
  deliveryKey,
  enabledTriggersOf,
  invokeForOutcome,
  noteRedelivery,
  outcomeOf,
  parseSourceOwners,
  type SourceOutcome,
  type SourceOwners,
  settle,
  TRIGGER_RETRY_DELAY_SECONDS,
} from "./source-consumer";

/** Most messages one event may carry (TriggerDesc maxMsgNum: 1-100). */
export const MAX_MSG_NUM = 100;
/** maxMsgNum when TriggerDesc does not say: one event per message. */
export const DEFAULT_MAX_MSG_NUM = 1;
/**
 * How long a message's deduplication key holds (s): 24 h. A queue redelivers a message within
 * its consumer's max_retries × retry delays (minutes, wrangler.toml), far inside this window.
 */
export const QUEUE_DEDUPE_WINDOW_SECONDS = 86_400;
/** A Cloudflare Queue name: 1-63 lower-case letters, digits and `-`. */
export const QUEUE_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** The partition every record names (a queue has none). */
const PARTITION = 0;

/**
 * The queues the Worker consumes for triggers and the namespaces owning each: TRIGGER_QUEUES,
 * comma-separated `<queue>=<namespace>[|<namespace>...]` entries (`<queue>=*`: every namespace, an
 * explicit opt-in). A bare `<queue>` is refused (ignored and logged): its messages are then
 * handled by nothing, retried and dead-lettered, never delivered to anyone's trigger.
 */
export function triggerQueueOwners(env: Partial<Pick<Env, "TRIGGER_QUEUES">>): ReadonlyMap<string, SourceOwners> {
  return parseSourceOwners(env.TRIGGER_QUEUES, "TRIGGER_QUEUES", QUEUE_NAME_PATTERN);
}

/** The queues the Worker consumes for triggers (those TRIGGER_QUEUES gives an owner). */
export function triggerQueues(env: Partial<Pick<Env, "TRIGGER_QUEUES">>): readonly string[] {
  return [...triggerQueueOwners(env).keys()];
}

/** True when `queue` is one of TRIGGER_QUEUES. */
export function isTriggerQueue(env: Partial<Pick<Env, "TRIGGER_QUEUES">>, queue: string): boolean {
  return triggerQueueOwners(env).has(queue);
}

/** maxMsgNum as SCF sends it: a number or a numeric string. */
const maxMsgNumSchema = z
  .union([
    z.number(),
    z
      .string()
      .regex(/^\d{1,4}$/)
      .transform(Number),
  ])
  .pipe(z.number().int().min(1, `maxMsgNum: 1-${MAX_MSG_NUM}`).max(MAX_MSG_NUM, `maxMsgNum: 1-${MAX_MSG_NUM}`));

/**
 * SCF's ckafka TriggerDesc: maxMsgNum is used; SCF's offset, retry and timeOut are accepted
 * (numbers or strings) and not stored (a queue has no offsets; retries are the consumer's).
 */
const queueDescSchema = z.strictObject({
  maxMsgNum: maxMsgNumSchema.optional(),
  offset: z.string().max(32).optional(),
  retry: z.union([z.number(), z.string().max(16)]).optional(),
  timeOut: z.union([z.number(), z.string().max(16)]).optional(),
});

/** The stored TriggerDesc of a queue trigger. */
export interface QueueTriggerDesc {
  maxMsgNum: number;
}

/** Parses a queue trigger's TriggerDesc (absent or empty: maxMsgNum 1), or INVALID_PARAMETER. */
export function parseQueueTriggerDesc(text: string | undefined): QueueTriggerDesc {
  let value: unknown = {};
  if (text !== undefined && text.trim() !== "") {
    try {
      value = JSON.parse(text);
    } catch {
      throw new PlatformError("INVALID_PARAMETER", "TriggerDesc: a ckafka trigger's TriggerDesc must be a JSON object");
    }
  }
  const parsed = queueDescSchema.safeParse(value);
  if (!parsed.success) throw new PlatformError("INVALID_PARAMETER", `TriggerDesc: ${describeIssues(parsed.error)}`);
  return { maxMsgNum: parsed.data.maxMsgNum ?? DEFAULT_MAX_MSG_NUM };
}

/**
 * The ckafka trigger's check: its queue must be one of TRIGGER_QUEUES owned by the trigger's
 * namespace (a queue of another namespace gets the same answer as an unknown one, naming only the
 * namespace's own queues), with room for one more trigger (MAX_TRIGGERS_PER_SOURCE);
 * TriggerDesc {"maxMsgNum":1-100}.
 */
export const prepareQueueTrigger: PrepareTrigger = async (env, input) => {
  const desc = parseQueueTriggerDesc(input.triggerDesc);
  await claimOwnedSource(
    env,
    { type: "ckafka", noun: "queue", variable: "TRIGGER_QUEUES", owners: triggerQueueOwners(env) },
    input,
  );
  return { triggerDesc: JSON.stringify(desc), source: input.triggerName };
};

/** A message body as the event's msgBody: a string as is, bytes as UTF-8 text (else base64), anything else as JSON. */
export function msgBodyOf(body: unknown): string {
  if (typeof body === "string") return body;
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) {
    const bytes =
      body instanceof ArrayBuffer
        ? new Uint8Array(body)
        : new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    try {
      return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch {
      return toBase64(bytes);
    }
  }
  return JSON.stringify(body) ?? "null";
}

/**
 * One message as a CKafka record: topic = the queue, partition 0, offset = the message's enqueue
 * time in epoch ms (a queue has no offsets: roughly ordered, not unique), msgKey = the message id.
 */
export function ckafkaRecordOf(queue: string, message: Pick<Message<unknown>, "id" | "timestamp" | "body">) {
  return {
    Ckafka: {
      topic: queue,
      partition: PARTITION,
      offset: message.timestamp.getTime(),
      msgKey: message.id,
      msgBody: msgBodyOf(message.body),
    },
  };
}

/** The CKafka event of some messages. */
export function ckafkaEventText(
  queue: string,
  messages: readonly Pick<Message<unknown>, "id" | "timestamp" | "body">[],
) {
  return JSON.stringify({ Records: messages.map((message) => ckafkaRecordOf(queue, message)) });
}

/** A message's deduplication key for a trigger (also what a batch claims it by). */
export function messageKey(row: TriggerRow, messageId: string): Promise<string> {
  return deliveryKey("q", row, ["message", messageId]);
}

/** Bytes of an event's JSON text. */
function byteLength(text: string): number {
  return new TextEncoder().encode(text).byteLength;
}

/** One message's invocation (maxMsgNum 1): idempotency key from the trigger and message id. */
async function invokeOne(env: Env, queue: string, row: TriggerRow, message: Message<unknown>): Promise<SourceOutcome> {
  return invokeForOutcome(env, row, {
    payloadText: ckafkaEventText(queue, [message]),
    idempotencyKey: await messageKey(row, message.id),
    idempotencyWindowSeconds: QUEUE_DEDUPE_WINDOW_SECONDS,
  });
}

/** What claiming one message for a batch's event came to. */
type Claim =
  | { kind: "claimed"; release: () => Promise<unknown>; confirm: () => Promise<unknown> }
  | { kind: "done" }
  | { kind: "retry" };

/**
 * Claims a message for the batch event `requestId`, in the reservation of the message's key (the
 * same key a one-message event holds): `claimed` (this batch carries it), `done` (an event already
 * carries it: a redelivery, even regrouped with other messages, or a one-message event of the same
 * trigger) or `retry` (another delivery is creating its event right now).
 */
async function claim(env: Env, row: TriggerRow, message: Message<unknown>, requestId: string): Promise<Claim> {
  const key = await messageKey(row, message.id);
  const reservation = idempotencyStub(env, idempotencyName(row.namespace, row.functionName, key));
  const answer = await reservation.reserve({
    requestId,
    payloadHash: await sha256Hex(`batch-claim\n${key}`),
    windowMs: QUEUE_DEDUPE_WINDOW_SECONDS * 1000,
  });
  if (answer.outcome === "reserved") {
    return {
      kind: "claimed",
      release: () => reservation.release(requestId).catch(() => false),
      confirm: () => reservation.confirm(requestId).catch(() => false),
    };
  }
  if (answer.outcome === "pending") return { kind: "retry" };
  return { kind: "done" };
}

/**
 * One event for up to maxMsgNum messages: each message is first claimed for the event's RequestId
 * (those already carried by an event are left out, those another delivery is handling are retried),
 * then the claimed ones become one event with that RequestId. A claim whose event was never created
 * is released (or, should the worker die between, taken over after the reservation's grace by a
 * redelivery that finds no event with that RequestId).
 */
async function invokeBatch(
  env: Env,
  queue: string,
  row: TriggerRow,
  messages: readonly Message<unknown>[],
): Promise<Map<Message<unknown>, SourceOutcome>> {
  const outcomes = new Map<Message<unknown>, SourceOutcome>();
  const requestId = crypto.randomUUID();
  const claims = await Promise.all(
    messages.map(async (message) => {
      try {
        return { message, claim: await claim(env, row, message, requestId) };
      } catch (error) {
        return { message, claim: { kind: "retry" } as Claim, error };
      }
    }),
  );
  const claimed: { message: Message<unknown>; claim: Extract<Claim, { kind: "claimed" }> }[] = [];
  for (const entry of claims) {
    if (entry.claim.kind === "claimed") claimed.push({ message: entry.message, claim: entry.claim });
    else if (entry.claim.kind === "done") outcomes.set(entry.message, { kind: "duplicate" });
    else
      outcomes.set(entry.message, {
        kind: "retry",
        reason: "the message's event is being created by another delivery",
        delaySeconds: TRIGGER_RETRY_DELAY_SECONDS,
      });
  }
  if (claimed.length === 0) return outcomes;
  const outcome = await invokeForOutcome(env, row, {
    payloadText: ckafkaEventText(
      queue,
      claimed.map((entry) => entry.message),
    ),
    requestId,
  });
  await Promise.all(
    claimed.map((entry) => (outcome.kind === "accepted" ? entry.claim.confirm() : entry.claim.release())),
  );
  for (const entry of claimed) outcomes.set(entry.message, outcome);
  return outcomes;
}

/**
 * Splits messages into runs of at most maxMsgNum whose event stays within MAX_ASYNC_PAYLOAD_BYTES
 * (a message too large on its own forms a run of one, which is refused and dropped).
 */
export function batchesOf<M extends Pick<Message<unknown>, "id" | "timestamp" | "body">>(
  queue: string,
  messages: readonly M[],
  maxMsgNum: number,
): M[][] {
  const runs: M[][] = [];
  let current: M[] = [];
  let bytes = byteLength('{"Records":[]}');
  for (const message of messages) {
    const recordBytes = byteLength(JSON.stringify(ckafkaRecordOf(queue, message))) + 1;
    if (current.length > 0 && (current.length >= maxMsgNum || bytes + recordBytes > MAX_ASYNC_PAYLOAD_BYTES)) {
      runs.push(current);
      current = [];
      bytes = byteLength('{"Records":[]}');
    }
    current.push(message);
    bytes += recordBytes;
  }
  if (current.length > 0) runs.push(current);
  return runs;
}

/**
 * Consumes a batch of a trigger queue. Every message becomes one event per enabled trigger of the
 * queue in its owning namespaces (TRIGGER_QUEUES; a trigger of any other namespace gets nothing); a message is acknowledged once every trigger's event is accepted or found (a redelivery),
 * or the event can never be accepted (dropped, logged), and retried with a delay when any
 * invocation failed passingly (its other triggers then find their events). A message no enabled
 * trigger is on is acknowledged and logged: as a CKafka trigger reading from `latest`, messages sent
 * while no trigger is on are not delivered later.
 */
export async function consumeTriggerQueueBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const queue = batch.queue;
  const messages = [...batch.messages];
  const owners = triggerQueueOwners(env).get(queue) ?? [];
  const rows = await enabledTriggersOf(env, "ckafka", queue, owners).catch((error: unknown) => {
    console.warn(`trigger lookup failed for queue ${queue}; retrying the batch`, String(error));
    return undefined;
  });
  if (rows === undefined) {
    for (const message of messages) message.retry({ delaySeconds: TRIGGER_RETRY_DELAY_SECONDS });
    return;
  }
  if (rows.length === 0) {
    console.warn(`queue ${queue}: ${messages.length} messages with no enabled ckafka trigger acknowledged`);
    for (const message of messages) message.ack();
    return;
  }
  const perMessage = new Map<Message<unknown>, SourceOutcome[]>(messages.map((message) => [message, []]));
  await Promise.all(
    rows.map(async (row) => {
      const { maxMsgNum } = parseQueueTriggerDesc(row.triggerDesc);
      if (maxMsgNum === 1) {
        await Promise.all(
          messages.map(async (message) => perMessage.get(message)?.push(await invokeOne(env, queue, row, message))),
        );
        return;
      }
      for (const run of batchesOf(queue, messages, maxMsgNum)) {
        const outcomes = await invokeBatch(env, queue, row, run).catch((error: unknown) => {
          const failed = outcomeOf({ error });
          return new Map(run.map((message) => [message, failed]));
        });
        for (const [message, outcome] of outcomes) perMessage.get(message)?.push(outcome);
      }
    }),
  );
  for (const [message, outcomes] of perMessage) {
    for (const outcome of outcomes) {
      if (outcome.kind === "dropped") console.error(`queue ${queue} message ${message.id} dropped: ${outcome.reason}`);
      if (outcome.kind === "retry") console.warn(`queue ${queue} message ${message.id} retried: ${outcome.reason}`);
      if (outcome.kind === "duplicate") noteRedelivery(`${queue}/${message.id}`);
    }
    settle(env, message, outcomes);
  }
}
