import { DurableObject } from "cloudflare:workers";
import { instanceName } from "../shared/objects";
import { SqlSettings } from "../shared/sql-settings";
import { LeaseAudit } from "./namespace-quota-audit";
import { IdleEviction } from "./namespace-quota-eviction";
import { SlotLeaseTable } from "./namespace-quota-leases";
import { PlatformExchange } from "./namespace-quota-platform";
import {
  type AcquireResult,
  checkAcquire,
  DEFAULT_NAMESPACE_MAX_CONTAINERS,
  type LeaseRequest,
  type QuotaSnapshot,
  validLimit,
} from "./namespace-quota-rules";
import { WaitingLine } from "./namespace-quota-waiters";

export {
  type AcquireResult,
  DEFAULT_NAMESPACE_MAX_CONTAINERS,
  EVICTION_TIMEOUT_MS,
  LEASE_AUDIT_INTERVAL_MS,
  LEASE_AUDIT_MIN_AGE_MS,
  LEASE_AUDIT_PARALLELISM,
  type LeaseRequest,
  type LeaseView,
  MAX_LEASES_PER_ACQUIRE,
  NAMESPACE_MAX_CONTAINERS_CEILING,
  parseNamespaceMaxContainers,
  type QuotaSnapshot,
  WAKE_RESERVATION_MS,
  type WaiterView,
} from "./namespace-quota-rules";

/** Settings key of the cap last given by a scheduler. */
const LIMIT_KEY = "limit";

/**
 * One per namespace (idFromName(namespace)): caps the containers the namespace holds at once.
 *
 * A lease counts one instance slot's container for as long as it may be alive: it is taken when
 * the slot first starts an event, marked idle by the scheduler when the event ends (the container
 * stays warm), busy again when the slot is reused (no new grant), and given back by the instance
 * when it destroys its container (idle timeout, abnormal end, terminate). A busy lease is named
 * after the event it was granted to (its token): the scheduler hands it from an ending event to the
 * slot's next one without asking here (an acquire would grant a busy lease anyway), so it may be
 * held by a later event of the same slot; markIdle and releaseInstance name it by that token. An acquire over the cap
 * evicts the oldest idle lease of the namespace (its instance destroys the container if, and only
 * if, it is still idle) and takes its place; when every lease is busy the scheduler is recorded as
 * waiting (FIFO). Each release, and each lease turning idle, wakes the oldest waiting schedulers,
 * which get a short reservation so that a busier function of the namespace cannot take the room
 * (or reuse its idle container) first. An alarm drops leases whose instance holds no container.
 *
 * The leases (namespace-quota-leases.ts), the waiting line (namespace-quota-waiters.ts), the
 * platform's units (namespace-quota-platform.ts), evictions (namespace-quota-eviction.ts) and the
 * audit (namespace-quota-audit.ts) each live in their own module; this class answers the RPCs.
 */
export class NamespaceQuotaObject extends DurableObject<Env> {
  private readonly settings: SqlSettings;
  private readonly leases: SlotLeaseTable;
  private readonly waiters: WaitingLine;
  private readonly platform: PlatformExchange;
  private readonly eviction: IdleEviction;
  private readonly audit: LeaseAudit;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const currentEnv = () => this.env;
    this.settings = new SqlSettings(ctx.storage.sql);
    this.leases = new SlotLeaseTable(ctx.storage.sql);
    this.waiters = new WaitingLine(
      ctx,
      currentEnv,
      () => this.limit() - this.leases.count() + this.leases.evictableCount(),
    );
    this.platform = new PlatformExchange(ctx, currentEnv, this.settings);
    this.eviction = new IdleEviction(currentEnv, this.leases, this.waiters, this.platform, () => this.limit());
    this.audit = new LeaseAudit(ctx.storage, currentEnv, this.leases, this.platform);
    ctx.blockConcurrencyWhile(async () => {
      this.leases.createTable();
      this.waiters.createTable();
    });
  }

  /**
   * Grants, in the order asked, each event the slot it was assigned to. A slot that holds a lease
   * (a warm container, or the same event again) is granted without counting twice, unless its idle
   * container is being evicted or a woken scheduler of the namespace needs its room. A new slot is
   * granted while the namespace is under `limit` (room reserved for another woken scheduler does
   * not count as free), else in place of an idle lease it evicts. When anything is refused the
   * scheduler is recorded as waiting: at its old place if it got nothing, at the back if it got some.
   */
  async acquire(scheduler: string, requests: LeaseRequest[], limit: number): Promise<AcquireResult> {
    const malformed = checkAcquire(scheduler, requests);
    if (malformed) return { granted: [], refused: [], error: malformed };
    const now = Date.now();
    const cap = validLimit(limit);
    this.settings.set(LIMIT_KEY, String(cap));
    this.waiters.expireReservations(now);
    this.leases.expireEvictionMarks(now);
    const reservedByOthers = this.waiters.reservedExcept(scheduler);
    const granted: string[] = [];
    const refused: string[] = [];
    const evictions: Promise<void>[] = [];
    /** New slots leased here before the platform confirmed their containers (see confirmFresh). */
    const fresh: LeaseRequest[] = [];
    for (const request of requests) {
      const instance = instanceName(scheduler, request.slot);
      const lease = this.leases.lease(instance);
      const free = cap - this.leases.count() - reservedByOthers;
      if (lease) {
        const reuseBlocked =
          lease.evicting_at !== null || (lease.request_id === null && reservedByOthers > 0 && free < 0);
        if (reuseBlocked) {
          refused.push(request.requestId);
          continue;
        }
        this.leases.markBusy(instance, request.requestId, now);
        granted.push(request.requestId);
      } else if (free > 0) {
        // Counted here at once (no other acquire can take the same room), confirmed below.
        this.leases.insert(instance, scheduler, request, now);
        fresh.push(request);
      } else {
        const victim = this.leases.markEvictionCandidate(now);
        if (!victim) {
          refused.push(request.requestId);
          continue;
        }
        evictions.push(
          this.eviction.swapFor(victim, now, scheduler, request).then((swapped) => {
            (swapped ? granted : refused).push(request.requestId);
          }),
        );
      }
    }
    await Promise.all([...evictions, this.confirmFresh(scheduler, fresh, granted, refused)]);
    this.waiters.record(scheduler, granted.length > 0, refused.length > 0);
    this.ctx.waitUntil(this.audit.ensureScheduled());
    return { granted, refused };
  }

  /**
   * The event in the scheduler's slot ended and its container stays warm: the lease turns idle
   * (still counted, now evictable) and waiting schedulers are woken. Ignored unless the lease is
   * busy under that token (a late call must not idle the slot's next event).
   */
  async markIdle(scheduler: string, slot: number, requestId: string): Promise<{ idle: boolean }> {
    if (typeof scheduler !== "string" || !Number.isInteger(slot) || typeof requestId !== "string") {
      return { idle: false };
    }
    const now = Date.now();
    const changed = this.leases.markIdle(instanceName(scheduler, slot), requestId, now);
    if (changed) this.waiters.wakeWaiters(now);
    return { idle: changed };
  }

  /**
   * The instance destroyed its container: gives the slot's lease back and wakes waiting schedulers.
   * The lease goes if it is idle or busy under endedRequestId (the token of the event whose abnormal
   * end destroyed the container); a lease busy under another (the slot was reused meanwhile: a fresh
   * container starts for it) is kept.
   */
  async releaseInstance(instance: string, endedRequestId?: string): Promise<{ released: boolean }> {
    if (typeof instance !== "string") return { released: false };
    const released = this.leases.release(instance, typeof endedRequestId === "string" ? endedRequestId : null);
    if (released) {
      await this.platform.release([instance]);
      this.waiters.wakeWaiters(Date.now());
    }
    return { released };
  }

  /**
   * The platform is full and another namespace needs room (PlatformCapacityObject.reclaim): destroys
   * up to `wanted` of this namespace's idle containers, least recently used first, and gives their
   * units back. Busy containers are never touched. Answers how many were given back.
   */
  async yieldIdle(wanted: number): Promise<{ yielded: number }> {
    if (!Number.isInteger(wanted) || wanted < 1) return { yielded: 0 };
    return { yielded: await this.eviction.yieldIdle(wanted) };
  }

  /** The platform has room again (PlatformCapacityObject): wakes this namespace's waiting schedulers. */
  async capacityFreed(): Promise<void> {
    this.waiters.wakeWaiters(Date.now());
  }

  /** Leases and waiting schedulers (observability and tests). */
  async snapshot(): Promise<QuotaSnapshot> {
    const leases = this.leases.views();
    const waiters = this.waiters.views();
    return { limit: this.limit(), leases, waiters };
  }

  /**
   * Lease audit (see LeaseAudit.run): clears stale eviction marks, audits the leases unchanged for
   * LEASE_AUDIT_MIN_AGE_MS, wakes waiters into any room, tells the platform which containers the
   * namespace holds, and sets the next audit while leases or waiters remain.
   */
  override async alarm(): Promise<void> {
    const now = Date.now();
    this.leases.expireEvictionMarks(now);
    await this.audit.run(now);
    this.waiters.wakeWaiters(Date.now());
    await this.platform.sync(this.leases.instances());
    const pending = this.leases.count() + this.waiters.count();
    if (pending > 0) await this.audit.scheduleNext();
  }

  /**
   * Asks the platform for the containers of new slots leased in this acquire. Granted ones count as
   * granted; refused ones give their lease back and try to swap an idle container of this namespace
   * (platform-neutral); with none idle they wait, and the platform is asked to reclaim idle
   * containers of other namespaces.
   */
  private async confirmFresh(
    scheduler: string,
    fresh: LeaseRequest[],
    granted: string[],
    refused: string[],
  ): Promise<void> {
    if (fresh.length === 0) return;
    const confirmed = await this.platform.acquire(fresh.map((request) => instanceName(scheduler, request.slot)));
    let waiting = 0;
    for (const request of fresh) {
      const instance = instanceName(scheduler, request.slot);
      if (confirmed.has(instance)) {
        granted.push(request.requestId);
        continue;
      }
      this.leases.dropUnconfirmed(instance, request.requestId);
      const markedAt = Date.now();
      const victim = this.leases.markEvictionCandidate(markedAt);
      const swapped = victim ? await this.eviction.swapFor(victim, markedAt, scheduler, request) : false;
      if (swapped) {
        granted.push(request.requestId);
      } else {
        refused.push(request.requestId);
        waiting += 1;
      }
    }
    if (waiting > 0) this.platform.reclaimFor(scheduler, waiting);
  }

  /** The cap last given by a scheduler (the var is read by the schedulers). */
  private limit(): number {
    return validLimit(Number(this.settings.get(LIMIT_KEY) ?? DEFAULT_NAMESPACE_MAX_CONTAINERS));
  }
}
