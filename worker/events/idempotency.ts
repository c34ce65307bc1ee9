// Idempotency keys of invocations: the key's rule, and the invocation with a key, which reserves
// the key in its Durable Object (idempotency-object.ts) before the event is accepted, so that any
// number of duplicates, concurrent or later, get the one event's RequestId.
import { z } from "zod";
import { admitRead } from "../ratelimit/read-limit";
import { sha256Hex } from "../shared/encoding";
import { PlatformError, unwrap } from "../shared/errors";
import { eventStub, idempotencyName, idempotencyStub } from "../shared/objects";
import type { PublicEvent } from "./event-machine";
import { IDEMPOTENCY_RESERVATION_GRACE_MS } from "./idempotency-object";

export { IDEMPOTENCY_RESERVATION_GRACE_MS } from "./idempotency-object";

/** Longest idempotency key, in characters. */
export const MAX_IDEMPOTENCY_KEY_CHARS = 128;
/** An idempotency key: 1-128 letters, digits, `-`, `_`, `.` or `:`. */
export const IDEMPOTENCY_KEY_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
/** The key's rule, as error messages tell it. */
export const IDEMPOTENCY_KEY_RULE = `1-${MAX_IDEMPOTENCY_KEY_CHARS} letters, digits, -, _, . or :`;
/**
 * How long a duplicate waits before asking again while the key's first invocation is still
 * accepting its event (ms): the first wait, doubling after each ask up to the longest. It asks until
 * the event exists or, should that invocation have died, the reservation's grace
 * (IDEMPOTENCY_RESERVATION_GRACE_MS) has passed and it takes the key over.
 */
export const IDEMPOTENCY_PENDING_POLL_FIRST_MS = 50;
export const IDEMPOTENCY_PENDING_POLL_MAX_MS = 1_000;
/** Longest a duplicate waits for the key's first invocation (ms): the grace, and a margin. */
export const IDEMPOTENCY_PENDING_WAIT_MS = IDEMPOTENCY_RESERVATION_GRACE_MS + 5_000;

/** An idempotency key's schema, its messages naming the parameter (`label`). */
export function idempotencyKeySchemaFor(label: string) {
  return z.string().regex(IDEMPOTENCY_KEY_PATTERN, `${label}: ${IDEMPOTENCY_KEY_RULE}`);
}

/** The key checked, or INVALID_PARAMETER naming `label`. */
export function checkIdempotencyKey(key: string, label = "idempotency key"): string {
  if (!IDEMPOTENCY_KEY_PATTERN.test(key))
    throw new PlatformError("INVALID_PARAMETER", `${label}: ${IDEMPOTENCY_KEY_RULE}`);
  return key;
}

/** What an invocation with a key compares with the key's first one: its qualifier and payload text. */
export function idempotencyPayloadHash(qualifier: string, payloadText: string): Promise<string> {
  return sha256Hex(`${qualifier}\n${payloadText}`);
}

/** An invocation's answer: a new event, or (a duplicate key) the key's event and its status now. */
export type InvocationAnswer =
  | { requestId: string; idempotentReplay?: undefined }
  | { requestId: string; idempotentReplay: true; status: PublicEvent["status"] };

/** An invocation with a key, as invoke.ts hands it over once the invocation is checked. */
export interface IdempotentInvocation {
  namespace: string;
  functionName: string;
  key: string;
  qualifier: string;
  payloadText: string;
  /** The function's idempotency window, seconds. */
  windowSeconds: number;
  /**
   * The caller's SecretId: a duplicate's answer reads the key's event, and counts against this
   * caller's read limit (ratelimit/read-limit.ts). Absent for the platform's own invocations.
   */
  callerSecretId?: string;
}

/** The wait before the `asked`-th ask again (1, 2, …): the first wait doubling, at most the longest. */
export function pendingPollDelayMs(asked: number): number {
  const exponent = Math.max(0, Math.min(asked - 1, 20));
  return Math.min(IDEMPOTENCY_PENDING_POLL_FIRST_MS * 2 ** exponent, IDEMPOTENCY_PENDING_POLL_MAX_MS);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs `accept` (the QPS admission and the event's acceptance, for a new RequestId) only if the
 * key is not held: the same key with the same qualifier and payload within its window answers with
 * the key's event (its RequestId and current status) instead; with another qualifier or payload it
 * is IDEMPOTENCY_KEY_REUSED. When `accept` fails, the key is released.
 */
export async function invokeIdempotent(
  env: Env,
  invocation: IdempotentInvocation,
  accept: (requestId: string) => Promise<{ requestId: string }>,
): Promise<InvocationAnswer> {
  const reservation = idempotencyStub(
    env,
    idempotencyName(invocation.namespace, invocation.functionName, invocation.key),
  );
  const payloadHash = await idempotencyPayloadHash(invocation.qualifier, invocation.payloadText);
  const waitUntil = Date.now() + IDEMPOTENCY_PENDING_WAIT_MS;
  for (let asked = 1; ; asked += 1) {
    const answer = await reservation.reserve({
      requestId: crypto.randomUUID(),
      payloadHash,
      windowMs: invocation.windowSeconds * 1000,
    });
    if (answer.outcome === "conflict") {
      throw new PlatformError(
        "IDEMPOTENCY_KEY_REUSED",
        `idempotency key ${invocation.key} was already used with another payload or qualifier for function ${invocation.functionName}`,
      );
    }
    if (answer.outcome === "reserved") {
      let accepted: { requestId: string };
      try {
        accepted = await accept(answer.requestId);
      } catch (error) {
        await reservation.release(answer.requestId).catch(() => false);
        throw error;
      }
      // The event exists; were the confirmation lost, the next duplicate finds the event itself.
      const confirmed = await reservation.confirm(answer.requestId).catch(() => true);
      if (!confirmed) console.warn("idempotency key taken over while its event was accepted", answer.requestId);
      return { requestId: accepted.requestId };
    }
    if (answer.outcome === "existing") {
      // A duplicate is answered with a read of the key's event: it counts as one read.
      if (invocation.callerSecretId !== undefined) admitRead(invocation.callerSecretId);
      const view = await eventStub(env, answer.requestId).view();
      // The key's window (at most 72 h from the invocation) outlives no event kept the default 72 h
      // after its end; a namespace's shorter retention (event-retention.ts) may delete it first:
      // the duplicate is then told so.
      if (view.ok === false) {
        throw new PlatformError("EVENT_NOT_FOUND", `the event of idempotency key ${invocation.key} no longer exists`);
      }
      const event = unwrap<PublicEvent>(view);
      return { requestId: answer.requestId, idempotentReplay: true, status: event.status };
    }
    if (Date.now() >= waitUntil) {
      throw new PlatformError(
        "UNAVAILABLE",
        `the first invocation with idempotency key ${invocation.key} is still being accepted; retry`,
      );
    }
    await sleep(Math.min(pendingPollDelayMs(asked), Math.max(0, waitUntil - Date.now())));
  }
}
