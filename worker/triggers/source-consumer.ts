// What the three source-driven trigger types (http: a function URL, ckafka: a Cloudflare Queue,
// cos: R2 event notifications) share on their runtime paths: finding the enabled triggers of a
// source (cached briefly per isolate), invoking the trigger's function through the one entry point
// (events/invoke.ts) with the trigger's qualifier and invoke type, and telling what a failed
// invocation means for a queue message (deduplicated, retry later, or never deliverable).
import { and, asc, count, eq, inArray, ne, type SQL } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { type TriggerRow, triggers } from "../db/schema";
import type { InvocationAnswer } from "../events/idempotency";
import { type InvocationRequest, invokeAsync } from "../events/invoke";
import { sha256Hex } from "../shared/encoding";
import { type ErrorCode, PlatformError, toPlatformError } from "../shared/errors";
import { NAMESPACE_PATTERN } from "../shared/names";
import { TRIGGER_INVOKE_TYPES, type TriggerType } from "./model";

/**
 * How long an isolate serves a cached lookup of a source's enabled triggers (ms): a ckafka or cos
 * trigger created, disabled, re-enabled, changed or deleted applies to its source within this time.
 * Function URLs (http) are never cached: each request reads its trigger (one indexed D1 read).
 */
export const TRIGGER_SOURCE_CACHE_TTL_MS = 5_000;
/** Most sources an isolate keeps cached lookups of (the oldest is dropped past it). */
export const MAX_CACHED_TRIGGER_SOURCES = 1_000;
/**
 * Most triggers one source (a queue or bucket) may have, enabled or not, across its owning
 * namespaces: the 101st is refused at creation (TRIGGER_LIMIT_EXCEEDED), so every enabled trigger
 * of a source is served.
 */
export const MAX_TRIGGERS_PER_SOURCE = 100;

/**
 * The namespaces a source (a trigger queue or bucket) belongs to: a list, or `*` (every namespace,
 * an explicit opt-in of the operator).
 */
export type SourceOwners = readonly string[] | "*";

/** The entry of TRIGGER_QUEUES / COS_TRIGGER_BUCKETS that opens a source to every namespace. */
export const ALL_NAMESPACES = "*";

/**
 * Parses an ownership list, `<source>=<namespace>[|<namespace>...]` entries separated by commas
 * (TRIGGER_QUEUES, COS_TRIGGER_BUCKETS). `<source>=*` opens the source to every namespace. An
 * entry without `=` (a bare `<source>`), a malformed source name or namespace is ignored and
 * logged: a source is never open to every namespace unless it says `*`.
 */
export function parseSourceOwners(
  text: string | undefined,
  variable: string,
  sourcePattern: RegExp,
): ReadonlyMap<string, SourceOwners> {
  const owners = new Map<string, SourceOwners>();
  for (const raw of (text ?? "").split(",")) {
    const entry = raw.trim();
    if (entry === "") continue;
    const equals = entry.indexOf("=");
    const source = (equals < 0 ? entry : entry.slice(0, equals)).trim();
    const namespaces =
      equals < 0
        ? []
        : entry
            .slice(equals + 1)
            .split("|")
            .map((name) => name.trim());
    if (!sourcePattern.test(source) || namespaces.length === 0) {
      warnOnce(`${variable}: entry "${entry}" ignored: write <name>=<namespace>[|<namespace>...] or <name>=*`);
      continue;
    }
    if (namespaces.includes(ALL_NAMESPACES)) {
      owners.set(source, ALL_NAMESPACES);
      continue;
    }
    const valid = namespaces.filter((name) => NAMESPACE_PATTERN.test(name));
    if (valid.length !== namespaces.length) {
      warnOnce(`${variable}: entry "${entry}" names a malformed namespace; it is left out`);
    }
    if (valid.length === 0) continue;
    const previous = owners.get(source);
    if (previous === ALL_NAMESPACES) continue;
    owners.set(source, [...new Set([...(previous ?? []), ...valid])]);
  }
  return owners;
}

const warned = new Set<string>();
function warnOnce(message: string): void {
  if (warned.has(message)) return;
  warned.add(message);
  console.error(message);
}

/** True when `namespace` may have triggers on a source owned by `owners` (undefined: not a source). */
export function ownsSource(owners: SourceOwners | undefined, namespace: string): boolean {
  if (owners === undefined) return false;
  return owners === ALL_NAMESPACES || owners.includes(namespace);
}

const cache = new Map<string, { rows: readonly TriggerRow[]; expiresAt: number }>();

/** Forgets this isolate's cached trigger lookups (tests that change a trigger and fire it at once). */
export function clearTriggerSourceCache(): void {
  cache.clear();
}

/** The rows of a type and source in its owning namespaces (all namespaces for `*`). */
function sourceConditions(type: TriggerType, source: string, owners: SourceOwners): SQL | undefined {
  return and(
    eq(triggers.type, type),
    eq(triggers.source, source),
    owners === ALL_NAMESPACES ? undefined : inArray(triggers.namespace, [...owners]),
  );
}

/**
 * The enabled triggers of a type whose source is `source` (a URL id, queue name or bucket name)
 * in the namespaces `owners` lets have them (a trigger of another namespace, e.g. created before
 * the source changed hands, gets nothing), oldest first. Lookups of queues and buckets are cached
 * per isolate for TRIGGER_SOURCE_CACHE_TTL_MS; `cached: false` reads D1 every time.
 */
export async function enabledTriggersOf(
  env: Pick<Env, "DB">,
  type: TriggerType,
  source: string,
  owners: SourceOwners,
  options: { cached?: boolean } = {},
): Promise<readonly TriggerRow[]> {
  if (owners !== ALL_NAMESPACES && owners.length === 0) return [];
  const cached = options.cached ?? true;
  const key = `${type}\n${source}\n${owners === ALL_NAMESPACES ? ALL_NAMESPACES : owners.join("|")}`;
  const now = Date.now();
  const hit = cached ? cache.get(key) : undefined;
  if (hit && hit.expiresAt > now) return hit.rows;
  const rows = await drizzle(env.DB)
    .select()
    .from(triggers)
    .where(and(sourceConditions(type, source, owners), eq(triggers.enabled, true)))
    .orderBy(asc(triggers.createdAt), asc(triggers.id))
    .limit(MAX_TRIGGERS_PER_SOURCE + 1)
    .all();
  if (rows.length > MAX_TRIGGERS_PER_SOURCE) {
    // Only creations racing past the check of checkSourceCapacity get here.
    console.error(`${type} source ${source} has over ${MAX_TRIGGERS_PER_SOURCE} enabled triggers; the oldest serve`);
  }
  const kept = rows.slice(0, MAX_TRIGGERS_PER_SOURCE);
  if (!cached) return kept;
  cache.delete(key);
  if (cache.size >= MAX_CACHED_TRIGGER_SOURCES) {
    const oldest = cache.keys().next().value;
    if (oldest !== undefined) cache.delete(oldest);
  }
  cache.set(key, { rows: kept, expiresAt: now + TRIGGER_SOURCE_CACHE_TTL_MS });
  return kept;
}

/**
 * Refuses a trigger that would be the (MAX_TRIGGERS_PER_SOURCE + 1)th on its source (enabled or
 * not, in the source's owning namespaces) with TRIGGER_LIMIT_EXCEEDED; `existingId` is the trigger
 * being updated (not counted). `label` names the source in the message ("queue x", "bucket y").
 */
export async function checkSourceCapacity(
  env: Pick<Env, "DB">,
  type: TriggerType,
  source: string,
  owners: SourceOwners,
  label: string,
  existingId?: string,
): Promise<void> {
  const rows = await drizzle(env.DB)
    .select({ total: count() })
    .from(triggers)
    .where(
      and(sourceConditions(type, source, owners), existingId !== undefined ? ne(triggers.id, existingId) : undefined),
    );
  const total = rows[0]?.total ?? 0;
  if (total >= MAX_TRIGGERS_PER_SOURCE) {
    throw new PlatformError(
      "TRIGGER_LIMIT_EXCEEDED",
      `${label} already has ${MAX_TRIGGERS_PER_SOURCE} ${type} triggers (enabled or not), the most one source serves; delete one first`,
      { limit: MAX_TRIGGERS_PER_SOURCE },
    );
  }
}

/** A queue or bucket a ckafka or cos trigger names, with the owners its variable gives each. */
export interface OwnedSourceClaim {
  type: "ckafka" | "cos";
  /** "queue" or "bucket", naming the source in messages. */
  noun: string;
  /** TRIGGER_QUEUES or COS_TRIGGER_BUCKETS. */
  variable: string;
  owners: ReadonlyMap<string, SourceOwners>;
}

/**
 * Checks that the trigger's namespace owns the source its TriggerName names (a source it does not
 * own is refused exactly as an unknown one, listing only the namespace's own sources) and that the
 * source has room for one more trigger (checkSourceCapacity).
 */
export async function claimOwnedSource(
  env: Pick<Env, "DB">,
  claim: OwnedSourceClaim,
  input: { namespace: string; triggerName: string; existing?: { id: string } | undefined },
): Promise<void> {
  const sourceOwners = claim.owners.get(input.triggerName);
  if (sourceOwners === undefined || !ownsSource(sourceOwners, input.namespace)) {
    const own = [...claim.owners].filter(([, who]) => ownsSource(who, input.namespace)).map(([source]) => source);
    throw new PlatformError(
      "INVALID_PARAMETER",
      `TriggerName: a ${claim.type} trigger names a ${claim.noun} this namespace may have triggers on (${claim.variable}: ${own.join(", ") || "none"})`,
    );
  }
  await checkSourceCapacity(
    env,
    claim.type,
    input.triggerName,
    sourceOwners,
    `${claim.noun} ${input.triggerName}`,
    input.existing?.id,
  );
}

/** What a trigger's invocation carries beyond its function, qualifier and invoke type. */
export interface TriggerInvocation {
  payloadText: string;
  idempotencyKey?: string | undefined;
  idempotencyWindowSeconds?: number | undefined;
  /** The RequestId to give the event (a batch claims its messages for it first). */
  requestId?: string | undefined;
  callerSecretId?: string | undefined;
}

/** Invokes the trigger's function: its namespace, function, qualifier and its type's invoke type. */
export function invokeTrigger(env: Env, row: TriggerRow, invocation: TriggerInvocation): Promise<InvocationAnswer> {
  const request: InvocationRequest = {
    namespace: row.namespace,
    functionName: row.functionName,
    qualifier: row.qualifier,
    invokeType: TRIGGER_INVOKE_TYPES[row.type as TriggerType],
    payloadText: invocation.payloadText,
    ...(invocation.idempotencyKey !== undefined ? { idempotencyKey: invocation.idempotencyKey } : {}),
    ...(invocation.idempotencyWindowSeconds !== undefined
      ? { idempotencyWindowSeconds: invocation.idempotencyWindowSeconds }
      : {}),
    ...(invocation.requestId !== undefined ? { requestId: invocation.requestId } : {}),
    ...(invocation.callerSecretId !== undefined ? { callerSecretId: invocation.callerSecretId } : {}),
  };
  return invokeAsync(env, request);
}

/**
 * What a queue message's invocation came to: `accepted` (a new event), `duplicate` (its key's
 * event exists: a redelivery), `retry` (a passing failure: QPS limit, unavailable, unexpected:
 * deliver again later) or `dropped` (it can never be accepted: the function is gone, the event is
 * too large, ...; logged and acknowledged, never retried forever).
 */
export type SourceOutcome =
  | { kind: "accepted"; requestId: string }
  | { kind: "duplicate"; requestId?: string }
  | { kind: "retry"; reason: string; delaySeconds: number }
  | { kind: "dropped"; reason: string };

/** Seconds before a message whose invocation failed passingly is delivered again (at least). */
export const TRIGGER_RETRY_DELAY_SECONDS = 2;
/** Longest retry delay a QPS refusal's Retry-After may ask for (s). */
export const MAX_TRIGGER_RETRY_DELAY_SECONDS = 60;

/** Errors that mean the key's event already exists (or existed): the message is a redelivery. */
const DUPLICATE_CODES: readonly ErrorCode[] = ["IDEMPOTENCY_KEY_REUSED", "EVENT_NOT_FOUND"];
/** Errors that pass: the message is delivered again later. */
const PASSING_CODES: readonly ErrorCode[] = ["RATE_LIMITED", "UNAVAILABLE", "INTERNAL_ERROR"];

/** What an invocation's answer or error means for its message (see SourceOutcome). */
export function outcomeOf(result: { answer: InvocationAnswer } | { error: unknown }): SourceOutcome {
  if ("answer" in result) {
    return result.answer.idempotentReplay
      ? { kind: "duplicate", requestId: result.answer.requestId }
      : { kind: "accepted", requestId: result.answer.requestId };
  }
  const known = toPlatformError(result.error);
  if (!known) return { kind: "retry", reason: String(result.error), delaySeconds: TRIGGER_RETRY_DELAY_SECONDS };
  if (DUPLICATE_CODES.includes(known.code)) return { kind: "duplicate" };
  if (PASSING_CODES.includes(known.code)) {
    const asked = known.details?.retryAfterSeconds;
    const delaySeconds =
      typeof asked === "number" && Number.isFinite(asked)
        ? Math.min(MAX_TRIGGER_RETRY_DELAY_SECONDS, Math.max(TRIGGER_RETRY_DELAY_SECONDS, Math.ceil(asked)))
        : TRIGGER_RETRY_DELAY_SECONDS;
    return { kind: "retry", reason: `${known.code}: ${known.message}`, delaySeconds };
  }
  return { kind: "dropped", reason: `${known.code}: ${known.message}` };
}

/** Invokes and tells the outcome, never throwing. */
export async function invokeForOutcome(
  env: Env,
  row: TriggerRow,
  invocation: TriggerInvocation,
): Promise<SourceOutcome> {
  try {
    return outcomeOf({ answer: await invokeTrigger(env, row, invocation) });
  } catch (error) {
    return outcomeOf({ error });
  }
}

/**
 * A trigger's idempotency key for one delivery: `<prefix>.<trigger id>.<hash>` where the hash is
 * the SHA-256 of the parts that identify the delivery (a message id; an object's notification).
 * Within the key rule (events/idempotency.ts) whatever the parts hold.
 */
export async function deliveryKey(prefix: string, row: TriggerRow, parts: readonly string[]): Promise<string> {
  const hash = await sha256Hex([row.id, ...parts].join("\n"));
  const id = /^[A-Za-z0-9_-]{1,40}$/.test(row.id) ? row.id : hash.slice(0, 16);
  return `${prefix}.${id}.${hash.slice(0, 48)}`;
}

/**
 * True when the test-only fault switch CHAOS_REDELIVER_TRIGGER_MESSAGES is on (honoured only with
 * DIAGNOSTICS_ENABLED): the trigger consumers then retry each message's first delivery after
 * handling it, so every message is delivered (at least) twice.
 */
export function redeliverForChaos(
  env: Pick<Env, "DIAGNOSTICS_ENABLED" | "CHAOS_REDELIVER_TRIGGER_MESSAGES">,
  attempts: number,
): boolean {
  return env.DIAGNOSTICS_ENABLED === "true" && env.CHAOS_REDELIVER_TRIGGER_MESSAGES === "true" && attempts <= 1;
}

/** Most redeliveries this isolate remembers for diagnostics (the oldest is dropped past it). */
export const MAX_RECENT_REDELIVERIES = 100;
const recentRedeliveries: string[] = [];

/**
 * Notes a delivery that found its event already there (a redelivery), by what it delivered
 * (`<queue>/<message id>`, `<bucket>/<object key>`): logged, and kept for /_diagnostics/trigger-consumers.
 */
export function noteRedelivery(label: string): void {
  console.log(`trigger delivery ${label} already has its event`);
  recentRedeliveries.push(label);
  if (recentRedeliveries.length > MAX_RECENT_REDELIVERIES) recentRedeliveries.shift();
}

/** This isolate's most recent redeliveries, oldest first (diagnostics). */
export function recentTriggerRedeliveries(): readonly string[] {
  return [...recentRedeliveries];
}

/** What a trigger consumer does with one message once every trigger of it is handled. */
export function settle(env: Env, message: Message<unknown>, outcomes: readonly SourceOutcome[]): void {
  const retry = outcomes.filter((outcome) => outcome.kind === "retry");
  if (retry.length > 0) {
    const delaySeconds = Math.max(...retry.map((outcome) => outcome.delaySeconds));
    message.retry({ delaySeconds });
    return;
  }
  if (redeliverForChaos(env, message.attempts)) {
    message.retry({ delaySeconds: 0 });
    return;
  }
  message.ack();
}

/** Trigger queue messages dead-lettered, counted by this isolate (diagnostics). */
const deadLetterStats = { deadLetters: 0 };

/** How many trigger queue messages this isolate received dead-lettered. */
export function triggerDeadLetterStats(): { deadLetters: number } {
  return { ...deadLetterStats };
}

/**
 * Consumes the trigger queues' dead-letter queue (afp-trigger-dead): a ckafka message or an R2
 * notification that was still retried after its consumer's max_retries (QPS limit, unavailable,
 * a queue in no owner's TRIGGER_QUEUES entry). Each is logged with its body (bounded) and counted,
 * then acknowledged: nothing creates its event any more.
 */
export async function consumeTriggerDeadLetters(batch: MessageBatch<unknown>): Promise<void> {
  for (const message of batch.messages) {
    deadLetterStats.deadLetters += 1;
    let body = "";
    try {
      body = (typeof message.body === "string" ? message.body : JSON.stringify(message.body)) ?? "";
    } catch {
      body = String(message.body);
    }
    console.error(
      `trigger message ${message.id} dead-lettered after ${message.attempts} attempts; no event was created for it`,
      body.slice(0, MAX_DEAD_LETTER_LOG_CHARS),
    );
    message.ack();
  }
}

/** Most characters of a dead-lettered message's body that its log line shows. */
export const MAX_DEAD_LETTER_LOG_CHARS = 1_024;
