// The ended event's duty to hand its result delivery over to its DeliveryObject: owed in the same
// write as the ending state (a crash right after the end cannot lose it), tried at once, and
// retried by the event's alarm until the DeliveryObject has it. The handoff is idempotent.
import { deliveryStub } from "../shared/objects";
import { deliveryHandoffOf } from "./delivery";
import type { EventState } from "./event-machine";
import type { EventStorage, PendingDelivery } from "./event-storage";

/** First wait before retrying a failed handoff; it doubles per failure up to MAX_HANDOFF_RETRY_MS. */
export const HANDOFF_RETRY_BASE_MS = 1_000;
/** Longest wait between two handoff tries (5 min). */
export const MAX_HANDOFF_RETRY_MS = 5 * 60_000;

/** The handoff one ended event owes (at most one). */
export class EventDeliveryDuty {
  private pending: PendingDelivery | undefined;

  constructor(
    private readonly storage: EventStorage,
    private readonly env: Pick<Env, "DELIVERY">,
    private readonly rearm: () => Promise<void>,
  ) {}

  /** Takes over the debt found in storage when the object starts. */
  restore(pending: PendingDelivery | undefined): void {
    this.pending = pending;
  }

  /** The owed handoff, if any. */
  get owed(): PendingDelivery | undefined {
    return this.pending;
  }

  /** When the owed handoff is next tried (undefined when none is owed). */
  get retryAt(): number | undefined {
    return this.pending?.retryAt;
  }

  /**
   * The handoff `next` owes when it is the end of `previous` and its snapshot has a destination for
   * it (held in memory: the caller persists it with the state, then calls flush()).
   */
  oweOnEnd(ended: boolean, next: EventState, now: number): PendingDelivery | undefined {
    if (!ended || !deliveryHandoffOf(next)) return undefined;
    this.pending = { attempts: 0, retryAt: now };
    return this.pending;
  }

  /** Forgets the debt (the event is being deleted). */
  forget(): void {
    this.pending = undefined;
  }

  /** Hands the delivery over; a failure stays owed and is retried by the alarm with backoff. */
  async flush(state: EventState | undefined): Promise<void> {
    const owed = this.pending;
    if (!state || !owed) return;
    const handoff = deliveryHandoffOf(state);
    try {
      if (handoff) await deliveryStub(this.env, state.requestId).handOver(handoff);
    } catch (error) {
      const attempts = owed.attempts + 1;
      const delay = Math.min(HANDOFF_RETRY_BASE_MS * 2 ** Math.min(attempts - 1, 20), MAX_HANDOFF_RETRY_MS);
      this.pending = { attempts, retryAt: Date.now() + delay };
      await this.storage.savePendingDelivery(this.pending);
      await this.rearm();
      console.warn(
        `result delivery handoff failed (attempt ${attempts}); retrying in ${delay} ms`,
        state.requestId,
        String(error),
      );
      return;
    }
    this.pending = undefined;
    await this.storage.deletePendingDelivery();
    await this.rearm();
  }
}
