// Eviction of a namespace's idle (warm) containers: to give an idle container's room to another
// slot of the namespace (swapFor), or to give its platform unit to another namespace (yieldIdle).
import { type InstanceBinding, instanceName, instanceStub } from "../shared/objects";
import type { SlotLeaseTable } from "./namespace-quota-leases";
import type { PlatformExchange } from "./namespace-quota-platform";
import { EVICTION_TIMEOUT_MS, type LeaseRequest, MAX_LEASES_PER_ACQUIRE } from "./namespace-quota-rules";
import type { WaitingLine } from "./namespace-quota-waiters";

/** Asks an instance to destroy its container if idle; no answer within EVICTION_TIMEOUT_MS is a no. */
export async function askToEvict(env: Pick<Env, InstanceBinding>, instance: string): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), EVICTION_TIMEOUT_MS);
  });
  const answer = instanceStub(env, instance)
    .evictIfIdle()
    .catch((error: unknown) => {
      console.warn("evicting an idle container failed", instance, String(error));
      return false;
    });
  try {
    return await Promise.race([answer, timeout]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

/** Evicts idle containers of one namespace, keeping its leases and platform units in step. */
export class IdleEviction {
  /**
   * @param env The object's env, read at each use (so that a replaced env is seen).
   * @param limit The namespace's cap, as last given by a scheduler.
   */
  constructor(
    private readonly env: () => Pick<Env, InstanceBinding>,
    private readonly leases: SlotLeaseTable,
    private readonly waiters: WaitingLine,
    private readonly platform: PlatformExchange,
    private readonly limit: () => number,
  ) {}

  /**
   * Destroys the victim's idle container (marked for eviction at markedAt) for the request's slot.
   * Swapped: the victim's lease is dropped and the request's taken in one synchronous step, so the
   * count never passes the cap. Not evicted (the instance is busy, or did not answer): the victim
   * stays idle, the request waits.
   */
  async swapFor(victim: string, markedAt: number, scheduler: string, request: LeaseRequest): Promise<boolean> {
    const evicted = await askToEvict(this.env(), victim);
    if (!evicted) {
      // No wake here: a waiter retrying at once would meet the same instance (its alarm retries).
      this.leases.clearEvictionMark(victim, markedAt);
      return false;
    }
    const now = Date.now();
    const freed = this.leases.dropEvicted(victim, markedAt);
    const instance = instanceName(scheduler, request.slot);
    if (this.leases.lease(instance)) {
      // The slot was leased meanwhile (the same event asked again): it needs no second unit.
      this.leases.markBusy(instance, request.requestId, now);
      if (freed) {
        await this.platform.release([victim]);
        this.waiters.wakeWaiters(Date.now());
      }
      return true;
    }
    // The victim's lease went meanwhile (its instance gave it back): the room is free only if unreserved.
    if (!freed && this.limit() - this.leases.count() - this.waiters.reservedExcept(scheduler) <= 0) return false;
    this.leases.insert(instance, scheduler, request, now);
    // The victim's container is gone: its platform unit moves to the new slot (a new unit if it went).
    const moved = freed ? await this.platform.transfer(victim, instance) : await this.platform.acquire([instance]);
    if (moved.has(instance)) return true;
    this.leases.dropUnconfirmed(instance, request.requestId);
    return false;
  }

  /**
   * Destroys up to `wanted` (at most MAX_LEASES_PER_ACQUIRE) idle containers, least recently used
   * first, one at a time, giving back their leases and platform units; stops at the first refusal.
   * Answers how many were destroyed.
   */
  async yieldIdle(wanted: number): Promise<number> {
    let yielded = 0;
    while (yielded < Math.min(wanted, MAX_LEASES_PER_ACQUIRE)) {
      const markedAt = Date.now();
      const victim = this.leases.markEvictionCandidate(markedAt);
      if (!victim) break;
      const evicted = await askToEvict(this.env(), victim);
      if (!evicted) {
        this.leases.clearEvictionMark(victim, markedAt);
        break;
      }
      this.leases.dropEvicted(victim, markedAt);
      await this.platform.release([victim]);
      yielded += 1;
    }
    return yielded;
  }
}
