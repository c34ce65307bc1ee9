// Result delivery, the pure part: the end record an ended event delivers to its function's
// destinations, its webhook signature, the retry schedule and the bounded attempt log. The
// DeliveryObject (delivery-object.ts) does the sending.
//
// Delivery is at least once: an attempt whose 2xx answer is lost is sent again, with the same
// deliveryId (and the same body). Exactly once is not possible over HTTP, so a receiver dedupes
// by deliveryId (the `afp-delivery-id` header, also in the body).
import type { DestinationKind, StoredDestination } from "../functions/model";
import type { EventState, PublicStatus } from "./event-machine";
import { publicEvent, publicStatus } from "./event-machine";

/** An attempt succeeds on a 2xx answer within this time; otherwise it failed (and is retried). */
export const DELIVERY_ATTEMPT_TIMEOUT_MS = 10_000;
/** First wait before a retry when the var DELIVERY_RETRY_BASE_MS is unset or invalid; it doubles per failure. */
export const DEFAULT_DELIVERY_RETRY_BASE_MS = 1_000;
/** Smallest and largest DELIVERY_RETRY_BASE_MS accepted (anything else means the default). */
export const MIN_DELIVERY_RETRY_BASE_MS = 10;
export const MAX_DELIVERY_RETRY_BASE_MS = 60_000;
/** Longest wait between two attempts (1 h). */
export const MAX_DELIVERY_RETRY_DELAY_MS = 60 * 60 * 1000;
/** A delivery is retried for at least this long after the event's end (24 h), then given up (`failed`). */
export const DELIVERY_RETRY_WINDOW_MS = 24 * 60 * 60 * 1000;
/** Most attempts one delivery's log keeps: the oldest ones; attemptCount counts them all. */
export const MAX_LOGGED_ATTEMPTS = 100;
/** Most bytes of a webhook's answer body read (the rest is cancelled unread). */
export const MAX_RESPONSE_BODY_READ_BYTES = 1024;
/**
 * Largest queue destination message (the JSON record, UTF-8 bytes): Cloudflare Queues' message limit,
 * 128 KB (counted as 128,000 bytes). A larger record is not sent: its delivery is `failed` at once.
 */
export const MAX_QUEUE_MESSAGE_BYTES = 128_000;
/** Longest error text kept per logged attempt, in characters. */
export const MAX_ATTEMPT_ERROR_CHARS = 300;

/** The header names of a webhook request. */
export const DELIVERY_ID_HEADER = "afp-delivery-id";
export const TIMESTAMP_HEADER = "afp-timestamp";
export const SIGNATURE_HEADER = "afp-signature";

/** The kind of destination an ended status delivers to (RUNNING: none). */
export function destinationKindOf(status: PublicStatus): DestinationKind | undefined {
  switch (status) {
    case "FINISHED":
      return "onSuccess";
    case "FAILED":
      return "onFailure";
    case "ABORTED":
      return "onTerminate";
    default:
      return undefined;
  }
}

/** The `type` of an end record. */
export type EndRecordType = "event.finished" | "event.failed" | "event.aborted";

const RECORD_TYPE: Record<DestinationKind, EndRecordType> = {
  onSuccess: "event.finished",
  onFailure: "event.failed",
  onTerminate: "event.aborted",
};

/** What an ended event hands to its DeliveryObject (see AsyncEventObject): one call, repeatable. */
export interface DeliveryHandoff {
  requestId: string;
  namespace: string;
  functionName: string;
  kind: DestinationKind;
  type: EndRecordType;
  /** The end record without `type` and `deliveryId` (endRecordFields), as JSON text. */
  recordJson: string;
  /** When the event ended (epoch ms): retries stop DELIVERY_RETRY_WINDOW_MS after it. */
  endedAt: number;
  destination: StoredDestination;
}

/**
 * The end record's fields after `type` and `deliveryId`, with the times and the result exactly as
 * the status view (GET /v1/events/{requestId}) shows them; `result` only for FINISHED (null
 * otherwise).
 */
export function endRecordFields(state: EventState) {
  const view = publicEvent(state);
  return {
    requestId: view.requestId,
    namespace: view.namespace,
    functionName: view.functionName,
    qualifier: view.qualifier,
    invokeType: view.invokeType,
    status: view.status,
    statusCode: view.statusCode,
    errorMessage: view.errorMessage,
    result: view.status === "FINISHED" ? view.result : null,
    durationMs: view.durationMs,
    memoryUsageKb: view.memoryUsageKb,
    invokedAt: view.invokedAt,
    startedAt: view.startedAt,
    endedAt: view.endedAt,
    replayOf: view.replayOf,
  };
}

/** The handoff an ended event owes, or undefined when its snapshot has no destination for its end. */
export function deliveryHandoffOf(state: EventState): DeliveryHandoff | undefined {
  const kind = destinationKindOf(publicStatus(state.phase));
  if (!kind) return undefined;
  const destination = state.function.destinations?.[kind];
  if (!destination || (!destination.webhook && destination.queue === undefined)) return undefined;
  return {
    requestId: state.requestId,
    namespace: state.namespace,
    functionName: state.functionName,
    kind,
    type: RECORD_TYPE[kind],
    recordJson: JSON.stringify(endRecordFields(state)),
    endedAt: state.endedAt ?? Date.now(),
    destination,
  };
}

/**
 * The body of one delivery: `{"type":…,"deliveryId":…,` then the record's fields, as one JSON
 * object. The same bytes on every attempt (the signature covers them).
 */
export function deliveryBody(type: EndRecordType, deliveryId: string, recordJson: string): string {
  const rest = recordJson.slice(1); // recordJson is a JSON object: "{...}"
  const head = `{"type":${JSON.stringify(type)},"deliveryId":${JSON.stringify(deliveryId)}`;
  return rest === "}" ? `${head}}` : `${head},${rest}`;
}

const encoder = new TextEncoder();

/** Lower-case hex of HMAC-SHA256(secret, `${timestamp}.${body}`): the `v1=` value of afp-signature. */
export async function deliverySignature(secret: string, timestamp: number, body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(`${timestamp}.${body}`)));
  return Array.from(mac, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** The retry base of the var DELIVERY_RETRY_BASE_MS (ms), or the default when unset or out of bounds. */
export function retryBaseOf(raw: unknown): number {
  const value = typeof raw === "string" && /^[0-9]{1,9}$/.test(raw) ? Number(raw) : Number.NaN;
  return value >= MIN_DELIVERY_RETRY_BASE_MS && value <= MAX_DELIVERY_RETRY_BASE_MS
    ? value
    : DEFAULT_DELIVERY_RETRY_BASE_MS;
}

/** The wait after the `failures`-th failed attempt (1, 2, …): base · 2^(failures-1), at most 1 h. */
export function retryDelayMs(failures: number, baseMs: number): number {
  const exponent = Math.max(0, Math.min(failures - 1, 40));
  return Math.min(baseMs * 2 ** exponent, MAX_DELIVERY_RETRY_DELAY_MS);
}

/**
 * When to try again after a failed attempt at `now`, or undefined when the delivery is given up:
 * the failure came DELIVERY_RETRY_WINDOW_MS or more after the event ended.
 */
export function nextAttemptAt(endedAt: number, now: number, failures: number, baseMs: number): number | undefined {
  if (now >= endedAt + DELIVERY_RETRY_WINDOW_MS) return undefined;
  return now + retryDelayMs(failures, baseMs);
}

/** One attempt as the delivery log keeps it. */
export interface DeliveryAttempt {
  attempt: number;
  /** When it was sent (ISO 8601). */
  at: string;
  latencyMs: number;
  /** The receiver's HTTP status (null: a queue, or no answer). */
  statusCode: number | null;
  /** Why it failed (null: it succeeded). */
  error: string | null;
}

/** A delivery's log: the first MAX_LOGGED_ATTEMPTS attempts, and how many were made in all. */
export interface AttemptLog {
  attempts: DeliveryAttempt[];
  attemptCount: number;
}

/** The log with one more attempt: kept while fewer than MAX_LOGGED_ATTEMPTS are, counted always. */
export function logAttempt(log: AttemptLog, attempt: DeliveryAttempt): AttemptLog {
  const attempts = log.attempts.length < MAX_LOGGED_ATTEMPTS ? [...log.attempts, attempt] : log.attempts;
  return { attempts, attemptCount: log.attemptCount + 1 };
}
