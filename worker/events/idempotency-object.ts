// The reservation of one idempotency key: one Durable Object per (namespace, function, key), which
// serialises every invocation carrying the key. The invocation path (idempotency.ts) reserves the
// key for a new RequestId, accepts the event, then confirms; duplicates get the reserved RequestId.
import { DurableObject } from "cloudflare:workers";
import { eventStub } from "../shared/objects";

/**
 * How long a reservation whose event was never accepted blocks its key (ms). The invocation that
 * reserved it accepts its event within milliseconds; past this grace, a reservation without an
 * event is one whose worker died between reserving and accepting, and a later duplicate takes the
 * key over with a new event.
 */
export const IDEMPOTENCY_RESERVATION_GRACE_MS = 30_000;

/** Where the one reservation of the key is stored. */
const RESERVATION = "reservation";

/** What the object records for its key. */
export interface IdempotencyReservation {
  /** The event the key stands for. */
  requestId: string;
  /** SHA-256 (hex) of the first invocation's qualifier and payload text. */
  payloadHash: string;
  /** When the key was (last) reserved, epoch ms. */
  reservedAt: number;
  /** When the key is released (its window ends), epoch ms. */
  expiresAt: number;
  /** True once the event is known to exist (confirmed by the invocation, or found). */
  accepted: boolean;
}

/** One invocation's request to reserve the key. */
export interface ReserveRequest {
  /** The RequestId the invocation will give its event if it gets the key. */
  requestId: string;
  payloadHash: string;
  /** The function's idempotency window, ms (from now). */
  windowMs: number;
}

/**
 * The answer to a reservation: `reserved` (the caller owns the key for its RequestId: it accepts
 * the event, then confirms or releases), `existing` (the key's event exists: the caller answers
 * with its RequestId), `pending` (another invocation is accepting the key's event right now: ask
 * again shortly) or `conflict` (the key was used with another payload or qualifier).
 */
export type ReserveAnswer =
  | { outcome: "reserved"; requestId: string; takenOver: boolean }
  | { outcome: "existing"; requestId: string }
  | { outcome: "pending"; requestId: string }
  | { outcome: "conflict" };

/** The reservation of one idempotency key (see the module comment); deleted by its alarm at expiry. */
export class IdempotencyObject extends DurableObject<Env> {
  private async load(nowMs: number): Promise<IdempotencyReservation | undefined> {
    const stored = await this.ctx.storage.get<IdempotencyReservation>(RESERVATION);
    return stored && stored.expiresAt > nowMs ? stored : undefined;
  }

  private async store(reservation: IdempotencyReservation): Promise<void> {
    await this.ctx.storage.put(RESERVATION, reservation);
    await this.ctx.storage.setAlarm(reservation.expiresAt);
  }

  /** Reserves the key for `request`, or tells what holds it (see ReserveAnswer). */
  async reserve(request: ReserveRequest, nowMs = Date.now()): Promise<ReserveAnswer> {
    const held = await this.load(nowMs);
    if (!held) {
      return this.reserveAnew(request, nowMs, false);
    }
    if (held.payloadHash !== request.payloadHash) return { outcome: "conflict" };
    if (held.accepted) return { outcome: "existing", requestId: held.requestId };
    // Not confirmed yet: the event may exist all the same (its invocation could not confirm).
    const exists = (await eventStub(this.env, held.requestId).namespaceOf()) !== undefined;
    // Other calls ran during that await: act only if the reservation is still the one looked at.
    const current = await this.load(nowMs);
    if (!current || current.requestId !== held.requestId || current.accepted) {
      return current?.accepted && current.payloadHash === request.payloadHash
        ? { outcome: "existing", requestId: current.requestId }
        : { outcome: "pending", requestId: current?.requestId ?? held.requestId };
    }
    if (exists) {
      await this.store({ ...current, accepted: true });
      return { outcome: "existing", requestId: current.requestId };
    }
    if (nowMs - current.reservedAt < IDEMPOTENCY_RESERVATION_GRACE_MS) {
      return { outcome: "pending", requestId: current.requestId };
    }
    // Its invocation died before accepting: this one takes the key over with its own event.
    return this.reserveAnew(request, nowMs, true);
  }

  /** Stores a fresh, unconfirmed reservation of the key for `request`, its window from now. */
  private async reserveAnew(request: ReserveRequest, nowMs: number, takenOver: boolean): Promise<ReserveAnswer> {
    await this.store({
      requestId: request.requestId,
      payloadHash: request.payloadHash,
      reservedAt: nowMs,
      expiresAt: nowMs + request.windowMs,
      accepted: false,
    });
    return { outcome: "reserved", requestId: request.requestId, takenOver };
  }

  /** The reserving invocation's event is accepted. False when the key is no longer reserved for it. */
  async confirm(requestId: string, nowMs = Date.now()): Promise<boolean> {
    const held = await this.load(nowMs);
    if (!held || held.requestId !== requestId) return false;
    if (!held.accepted) await this.ctx.storage.put(RESERVATION, { ...held, accepted: true });
    return true;
  }

  /**
   * The reserving invocation failed (refused, or its acceptance threw): the key is free again,
   * unless the event exists all the same (the acceptance failed after storing it), which the key
   * then stands for. True when the key was freed.
   */
  async release(requestId: string, nowMs = Date.now()): Promise<boolean> {
    const held = await this.load(nowMs);
    if (!held || held.requestId !== requestId || held.accepted) return false;
    const exists = (await eventStub(this.env, requestId).namespaceOf()) !== undefined;
    const current = await this.load(nowMs);
    if (!current || current.requestId !== requestId || current.accepted) return false;
    if (exists) {
      await this.ctx.storage.put(RESERVATION, { ...current, accepted: true });
      return false;
    }
    await this.clear();
    return true;
  }

  private async clear(): Promise<void> {
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
  }

  /** At the window's end the key's record is deleted (a later reservation re-arms the alarm). */
  override async alarm(): Promise<void> {
    const stored = await this.ctx.storage.get<IdempotencyReservation>(RESERVATION);
    if (stored && stored.expiresAt > Date.now()) {
      await this.ctx.storage.setAlarm(stored.expiresAt);
      return;
    }
    await this.clear();
  }
}
