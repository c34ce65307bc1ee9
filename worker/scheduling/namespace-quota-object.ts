import { DurableObject } from "cloudflare:workers";
import {
  instanceName,
  instanceStub,
  namespaceOfScheduler,
  platformCapacityStub,
  schedulerStub,
} from "../shared/objects";
import { SqlSettings } from "../shared/sql-settings";
import type { PlatformCapacityObject, UnitGrant } from "./platform-capacity-object";

/**
 * Containers one namespace may run at once when `NAMESPACE_MAX_CONTAINERS` is unset or invalid:
 * half of the platform's `max_instances` (50, wrangler.toml), so that one tenant's burst always
 * leaves at least half of the containers to every other tenant.
 */
export const DEFAULT_NAMESPACE_MAX_CONTAINERS = 25;
/** Largest accepted `NAMESPACE_MAX_CONTAINERS`; a larger value counts as invalid (default applies). */
export const NAMESPACE_MAX_CONTAINERS_CEILING = 10_000;
/** Most leases one acquire call may ask for (a scheduler asks for at most maxConcurrency, 50). */
export const MAX_LEASES_PER_ACQUIRE = 100;
/** How often the lease audit runs while leases or waiting schedulers exist. */
export const LEASE_AUDIT_INTERVAL_MS = 60_000;
/**
 * A lease is audited only once unchanged for this long: a younger one may belong to a start still
 * in flight (granted, its instance not yet running the event).
 */
export const LEASE_AUDIT_MIN_AGE_MS = 60_000;
/**
 * A woken scheduler holds a reservation on the room it was woken for this long: other schedulers
 * of the namespace cannot take it first. Past it (a lost wake) the room is free for anyone and the
 * scheduler is woken again at the next release or audit.
 */
export const WAKE_RESERVATION_MS = 5_000;

/**
 * An eviction whose instance has not answered within this long counts as refused (the idle lease
 * stays, the acquire is refused and waits); a mark older than this (the object restarted while
 * evicting) is cleared.
 */
export const EVICTION_TIMEOUT_MS = 30_000;

/**
 * Reads the per-namespace container cap from the `NAMESPACE_MAX_CONTAINERS` var: a whole number
 * from 1 to NAMESPACE_MAX_CONTAINERS_CEILING. Anything else falls back to the default.
 */
export function parseNamespaceMaxContainers(value: unknown): number {
  if (typeof value !== "string" || !/^[0-9]{1,6}$/.test(value.trim())) return DEFAULT_NAMESPACE_MAX_CONTAINERS;
  const parsed = Number(value.trim());
  if (parsed < 1 || parsed > NAMESPACE_MAX_CONTAINERS_CEILING) return DEFAULT_NAMESPACE_MAX_CONTAINERS;
  return parsed;
}

/** How many instances the lease audit asks at once. */
export const LEASE_AUDIT_PARALLELISM = 25;

/** One event a scheduler asks to run on one of its instance slots. */
export interface LeaseRequest {
  requestId: string;
  slot: number;
}

/** Answer to acquire: the RequestIds that may start, those that must wait, or why none was read. */
export interface AcquireResult {
  granted: string[];
  refused: string[];
  /** Set when the request was malformed (a caller's bug): nothing was granted or stored. */
  error?: string;
}

/** One lease, as the snapshot shows it. */
export interface LeaseView {
  /** The instance slot whose container the lease counts (`scheduler#slot`, the instance's name). */
  instance: string;
  scheduler: string;
  slot: number;
  /** The event the slot runs, or null while its container is idle (kept warm). */
  requestId: string | null;
  acquiredAt: number;
  /** True while the quota object destroys this idle container to give its room to another slot. */
  evicting: boolean;
}

/** One waiting scheduler, oldest first; wokenAt is set while its wake reservation holds. */
export interface WaiterView {
  scheduler: string;
  wokenAt: number | null;
}

/** State of one namespace's quota (observability and tests). */
export interface QuotaSnapshot {
  limit: number;
  leases: LeaseView[];
  waiters: WaiterView[];
}

/** A row of the lease table. */
type LeaseRow = {
  instance: string;
  scheduler: string;
  slot: number;
  request_id: string | null;
  acquired_at: number;
  touched_at: number;
  evicting_at: number | null;
};

/**
 * One per namespace (idFromName(namespace)): caps the containers the namespace holds at once.
 *
 * A lease counts one instance slot's container for as long as it may be alive: it is taken when
 * the slot first starts an event, marked idle by the scheduler when the event ends (the container
 * stays warm), busy again when the slot is reused (no new grant), and given back by the instance
 * when it destroys its container (idle timeout, abnormal end, terminate). An acquire over the cap
 * evicts the oldest idle lease of the namespace (its instance destroys the container if, and only
 * if, it is still idle) and takes its place; when every lease is busy the scheduler is recorded as
 * waiting (FIFO). Each release, and each lease turning idle, wakes the oldest waiting schedulers,
 * which get a short reservation so that a busier function of the namespace cannot take the room
 * (or reuse its idle container) first. An alarm drops leases whose instance holds no container.
 */
export class NamespaceQuotaObject extends DurableObject<Env> {
  private readonly settings: SqlSettings;
  private platformStub: DurableObjectStub<PlatformCapacityObject> | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.settings = new SqlSettings(ctx.storage.sql);
    ctx.blockConcurrencyWhile(async () => {
      const sql = ctx.storage.sql;
      // Leases were once kept per event; a slot's lease replaces them (the audit re-derives nothing
      // from the old rows: their slots take a new lease at their next start).
      sql.exec("DROP TABLE IF EXISTS leases");
      sql.exec(`CREATE TABLE IF NOT EXISTS slot_leases (
        instance TEXT PRIMARY KEY, scheduler TEXT NOT NULL, slot INTEGER NOT NULL, request_id TEXT,
        acquired_at INTEGER NOT NULL, touched_at INTEGER NOT NULL, evicting_at INTEGER)`);
      sql.exec(`CREATE TABLE IF NOT EXISTS waiters (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, scheduler TEXT NOT NULL UNIQUE, woken_at INTEGER)`);
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
    const sql = this.ctx.storage.sql;
    const now = Date.now();
    const cap = validLimit(limit);
    this.settings.set("limit", String(cap));
    this.expireReservations(now);
    this.expireEvictionMarks(now);
    const reservedByOthers = this.reservedExcept(scheduler);
    const granted: string[] = [];
    const refused: string[] = [];
    const evictions: Promise<void>[] = [];
    /** New slots leased here before the platform confirmed their containers (see confirmFresh). */
    const fresh: LeaseRequest[] = [];
    for (const request of requests) {
      const instance = instanceName(scheduler, request.slot);
      const lease = this.lease(instance);
      const free = cap - this.leaseCount() - reservedByOthers;
      if (lease) {
        const reuseBlocked =
          lease.evicting_at !== null || (lease.request_id === null && reservedByOthers > 0 && free < 0);
        if (reuseBlocked) {
          refused.push(request.requestId);
          continue;
        }
        sql.exec(
          "UPDATE slot_leases SET request_id = ?, touched_at = ? WHERE instance = ?",
          request.requestId,
          now,
          instance,
        );
        granted.push(request.requestId);
      } else if (free > 0) {
        // Counted here at once (no other acquire can take the same room), confirmed below.
        this.insertLease(instance, scheduler, request, now);
        fresh.push(request);
      } else {
        const victim = this.markEvictionCandidate(now);
        if (!victim) {
          refused.push(request.requestId);
          continue;
        }
        evictions.push(
          this.evictFor(victim, now, scheduler, request).then((swapped) => {
            (swapped ? granted : refused).push(request.requestId);
          }),
        );
      }
    }
    await Promise.all([...evictions, this.confirmFresh(scheduler, fresh, granted, refused)]);
    this.recordWaiter(scheduler, granted.length > 0, refused.length > 0);
    this.ctx.waitUntil(this.ensureAuditAlarm());
    return { granted, refused };
  }

  /**
   * The event in the scheduler's slot ended and its container stays warm: the lease turns idle
   * (still counted, now evictable) and waiting schedulers are woken. Ignored unless the lease is
   * busy with that event (a late call must not idle the slot's next event).
   */
  async markIdle(scheduler: string, slot: number, requestId: string): Promise<{ idle: boolean }> {
    if (typeof scheduler !== "string" || !Number.isInteger(slot) || typeof requestId !== "string") {
      return { idle: false };
    }
    const now = Date.now();
    const changed = this.ctx.storage.sql.exec(
      "UPDATE slot_leases SET request_id = NULL, touched_at = ? WHERE instance = ? AND request_id = ?",
      now,
      instanceName(scheduler, slot),
      requestId,
    ).rowsWritten;
    if (changed > 0) this.wakeWaiters(now);
    return { idle: changed > 0 };
  }

  /**
   * The instance destroyed its container: gives the slot's lease back and wakes waiting schedulers.
   * The lease goes if it is idle or busy with endedRequestId (the event whose abnormal end destroyed
   * the container); a lease busy with another event (the slot was reused meanwhile: a fresh
   * container starts for it) is kept.
   */
  async releaseInstance(instance: string, endedRequestId?: string): Promise<{ released: boolean }> {
    if (typeof instance !== "string") return { released: false };
    const released =
      this.ctx.storage.sql.exec(
        "DELETE FROM slot_leases WHERE instance = ? AND (request_id IS NULL OR request_id = ?)",
        instance,
        typeof endedRequestId === "string" ? endedRequestId : null,
      ).rowsWritten > 0;
    if (released) {
      await this.platformRelease([instance]);
      this.wakeWaiters(Date.now());
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
    let yielded = 0;
    while (yielded < Math.min(wanted, MAX_LEASES_PER_ACQUIRE)) {
      const markedAt = Date.now();
      const victim = this.markEvictionCandidate(markedAt);
      if (!victim) break;
      const evicted = await this.askToEvict(victim);
      const sql = this.ctx.storage.sql;
      if (!evicted) {
        sql.exec("UPDATE slot_leases SET evicting_at = NULL WHERE instance = ? AND evicting_at = ?", victim, markedAt);
        break;
      }
      sql.exec("DELETE FROM slot_leases WHERE instance = ? AND evicting_at = ?", victim, markedAt);
      await this.platformRelease([victim]);
      yielded += 1;
    }
    return { yielded };
  }

  /** The platform has room again (PlatformCapacityObject): wakes this namespace's waiting schedulers. */
  async capacityFreed(): Promise<void> {
    this.wakeWaiters(Date.now());
  }

  /** Leases and waiting schedulers (observability and tests). */
  async snapshot(): Promise<QuotaSnapshot> {
    const sql = this.ctx.storage.sql;
    const leases = sql
      .exec<LeaseRow>("SELECT * FROM slot_leases ORDER BY acquired_at, instance")
      .toArray()
      .map((row) => ({
        instance: row.instance,
        scheduler: row.scheduler,
        slot: row.slot,
        requestId: row.request_id,
        acquiredAt: row.acquired_at,
        evicting: row.evicting_at !== null,
      }));
    const waiters = sql
      .exec<{ scheduler: string; woken_at: number | null }>("SELECT scheduler, woken_at FROM waiters ORDER BY seq")
      .toArray()
      .map((row) => ({ scheduler: row.scheduler, wokenAt: row.woken_at }));
    return { limit: this.limit(), leases, waiters };
  }

  /**
   * Lease audit: asks the instance of each lease unchanged for LEASE_AUDIT_MIN_AGE_MS whether it
   * still holds a container or an event. One holding neither loses its lease (a release that was
   * lost); a busy lease whose instance is idle with a warm container turns idle (a lost markIdle).
   * An instance that cannot be asked keeps its lease. Then wakes waiters into any room.
   */
  override async alarm(): Promise<void> {
    const sql = this.ctx.storage.sql;
    const now = Date.now();
    this.expireEvictionMarks(now);
    const old = sql
      .exec<LeaseRow>(
        "SELECT * FROM slot_leases WHERE touched_at <= ? AND evicting_at IS NULL",
        now - LEASE_AUDIT_MIN_AGE_MS,
      )
      .toArray();
    for (let start = 0; start < old.length; start += LEASE_AUDIT_PARALLELISM) {
      await Promise.all(old.slice(start, start + LEASE_AUDIT_PARALLELISM).map((row) => this.auditLease(row)));
    }
    this.wakeWaiters(Date.now());
    await this.syncPlatform();
    const pending = this.leaseCount() + Number(sql.exec("SELECT COUNT(*) AS n FROM waiters").one().n);
    if (pending > 0) await this.ctx.storage.setAlarm(Date.now() + LEASE_AUDIT_INTERVAL_MS);
  }

  /** Audits one lease against its instance (see alarm); changes it only if untouched meanwhile. */
  private async auditLease(row: LeaseRow): Promise<void> {
    const state = await this.instanceStub(row.instance)
      .leaseCheck()
      .catch((error: unknown) => {
        console.warn("lease audit could not ask the instance", row.instance, String(error));
        return undefined;
      });
    if (!state) return;
    const sql = this.ctx.storage.sql;
    const unchanged = "instance = ? AND touched_at = ? AND evicting_at IS NULL";
    if (!state.containerRunning && !state.busy) {
      console.warn("lease audit: dropping the lease of an instance that holds no container", row.instance);
      const dropped = sql.exec(`DELETE FROM slot_leases WHERE ${unchanged}`, row.instance, row.touched_at).rowsWritten;
      if (dropped > 0) await this.platformRelease([row.instance]);
    } else if (!state.busy && row.request_id !== null) {
      sql.exec(`UPDATE slot_leases SET request_id = NULL WHERE ${unchanged}`, row.instance, row.touched_at);
    }
  }

  /**
   * Destroys the victim's idle container for the request's slot. Swapped: the victim's lease is
   * dropped and the request's taken in one synchronous step, so the count never passes the cap.
   * Not evicted (the instance is busy, or did not answer): the victim stays idle, the request waits.
   */
  private async evictFor(victim: string, markedAt: number, scheduler: string, request: LeaseRequest): Promise<boolean> {
    const evicted = await this.askToEvict(victim);
    const sql = this.ctx.storage.sql;
    if (!evicted) {
      // No wake here: a waiter retrying at once would meet the same instance (its alarm retries).
      sql.exec("UPDATE slot_leases SET evicting_at = NULL WHERE instance = ? AND evicting_at = ?", victim, markedAt);
      return false;
    }
    const now = Date.now();
    const freed =
      sql.exec("DELETE FROM slot_leases WHERE instance = ? AND evicting_at = ?", victim, markedAt).rowsWritten > 0;
    const instance = instanceName(scheduler, request.slot);
    if (this.lease(instance)) {
      // The slot was leased meanwhile (the same event asked again): it needs no second unit.
      sql.exec(
        "UPDATE slot_leases SET request_id = ?, touched_at = ? WHERE instance = ?",
        request.requestId,
        now,
        instance,
      );
      if (freed) {
        await this.platformRelease([victim]);
        this.wakeWaiters(Date.now());
      }
      return true;
    }
    // The victim's lease went meanwhile (its instance gave it back): the room is free only if unreserved.
    if (!freed && this.limit() - this.leaseCount() - this.reservedExcept(scheduler) <= 0) return false;
    this.insertLease(instance, scheduler, request, now);
    // The victim's container is gone: its platform unit moves to the new slot (a new unit if it went).
    const moved = freed ? await this.platformTransfer(victim, instance) : await this.platformAcquire([instance]);
    if (moved.has(instance)) return true;
    sql.exec("DELETE FROM slot_leases WHERE instance = ? AND request_id = ?", instance, request.requestId);
    return false;
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
    const confirmed = await this.platformAcquire(fresh.map((request) => instanceName(scheduler, request.slot)));
    const sql = this.ctx.storage.sql;
    let waiting = 0;
    for (const request of fresh) {
      const instance = instanceName(scheduler, request.slot);
      if (confirmed.has(instance)) {
        granted.push(request.requestId);
        continue;
      }
      sql.exec("DELETE FROM slot_leases WHERE instance = ? AND request_id = ?", instance, request.requestId);
      const markedAt = Date.now();
      const victim = this.markEvictionCandidate(markedAt);
      const swapped = victim ? await this.evictFor(victim, markedAt, scheduler, request) : false;
      if (swapped) {
        granted.push(request.requestId);
      } else {
        refused.push(request.requestId);
        waiting += 1;
      }
    }
    if (waiting > 0) {
      this.ctx.waitUntil(
        this.platform()
          .reclaim(namespaceOfScheduler(scheduler), waiting)
          .catch((error: unknown) => console.warn("asking the platform to reclaim failed", String(error))),
      );
    }
  }

  /** Platform units for new containers; an unreachable platform grants nothing (the events wait). */
  private async platformAcquire(instances: string[]): Promise<Set<string>> {
    if (instances.length === 0) return new Set();
    const namespace = this.namespace(instances[0] ?? "");
    const answer: UnitGrant = await this.platform()
      .acquire(namespace, instances)
      .catch((error: unknown) => {
        console.warn("platform capacity unreachable; events wait", namespace, String(error));
        return { granted: [], refused: instances };
      });
    return new Set(answer.granted);
  }

  /** Moves a destroyed container's platform unit to a new slot of this namespace. */
  private async platformTransfer(from: string, to: string): Promise<Set<string>> {
    const answer = await this.platform()
      .transfer(this.namespace(to), from, to)
      .catch((error: unknown) => {
        console.warn("platform capacity unreachable; events wait", to, String(error));
        return { granted: false };
      });
    return new Set(answer.granted ? [to] : []);
  }

  /** Gives destroyed containers' platform units back; a failure is logged (the sync reclaims). */
  private async platformRelease(instances: string[]): Promise<void> {
    await this.platform()
      .release(instances)
      .catch((error: unknown) => console.warn("releasing platform units failed", instances.join(","), String(error)));
  }

  /** Tells the platform which containers this namespace holds (drops units of lost releases). */
  private async syncPlatform(): Promise<void> {
    const instances = this.ctx.storage.sql
      .exec<{ instance: string; scheduler: string }>("SELECT instance, scheduler FROM slot_leases")
      .toArray();
    const namespace = this.settings.get("namespace");
    if (!namespace) return;
    await this.platform()
      .sync(
        namespace,
        instances.map((row) => row.instance),
      )
      .catch((error: unknown) => console.warn("platform capacity sync failed", namespace, String(error)));
  }

  /** The namespace an instance name belongs to (remembered for the sync). */
  private namespace(instance: string): string {
    const namespace = namespaceOfScheduler(instance);
    if (this.settings.get("namespace") !== namespace) this.settings.set("namespace", namespace);
    return namespace;
  }

  /** The platform-wide capacity object; one stub, so that calls arrive in the order sent. */
  private platform() {
    this.platformStub ??= platformCapacityStub(this.env);
    return this.platformStub;
  }

  /** Asks an instance to destroy its container if idle; no answer within EVICTION_TIMEOUT_MS is a no. */
  private async askToEvict(instance: string): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), EVICTION_TIMEOUT_MS);
    });
    const answer = this.instanceStub(instance)
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

  /** Synchronous: marks the namespace's least recently used idle lease as being evicted. */
  private markEvictionCandidate(now: number): string | undefined {
    const sql = this.ctx.storage.sql;
    const victim = sql
      .exec<{ instance: string }>(
        "SELECT instance FROM slot_leases WHERE request_id IS NULL AND evicting_at IS NULL ORDER BY touched_at, instance LIMIT 1",
      )
      .toArray()[0];
    if (!victim) return undefined;
    sql.exec("UPDATE slot_leases SET evicting_at = ? WHERE instance = ?", now, victim.instance);
    return victim.instance;
  }

  /** Clears eviction marks left by an eviction this object no longer waits for (it restarted). */
  private expireEvictionMarks(now: number): void {
    this.ctx.storage.sql.exec(
      "UPDATE slot_leases SET evicting_at = NULL WHERE evicting_at IS NOT NULL AND evicting_at <= ?",
      now - EVICTION_TIMEOUT_MS,
    );
  }

  private insertLease(instance: string, scheduler: string, request: LeaseRequest, now: number): void {
    this.ctx.storage.sql.exec(
      `INSERT INTO slot_leases (instance, scheduler, slot, request_id, acquired_at, touched_at, evicting_at)
       VALUES (?, ?, ?, ?, ?, ?, NULL)`,
      instance,
      scheduler,
      request.slot,
      request.requestId,
      now,
      now,
    );
  }

  private lease(instance: string): LeaseRow | undefined {
    return this.ctx.storage.sql.exec<LeaseRow>("SELECT * FROM slot_leases WHERE instance = ?", instance).toArray()[0];
  }

  /** Records (or clears) the scheduler's place in the waiting line after an acquire. */
  private recordWaiter(scheduler: string, gotAny: boolean, mustWait: boolean): void {
    const sql = this.ctx.storage.sql;
    if (!mustWait) {
      sql.exec("DELETE FROM waiters WHERE scheduler = ?", scheduler);
      return;
    }
    if (gotAny) {
      // Served: to the back of the line, behind the functions still waiting.
      sql.exec("DELETE FROM waiters WHERE scheduler = ?", scheduler);
      sql.exec("INSERT INTO waiters (scheduler, woken_at) VALUES (?, NULL)", scheduler);
      return;
    }
    // Not served: keep its place (and give up a reservation it found taken).
    sql.exec(
      "INSERT INTO waiters (scheduler, woken_at) VALUES (?, NULL) ON CONFLICT (scheduler) DO UPDATE SET woken_at = NULL",
      scheduler,
    );
  }

  /** A reservation not used within WAKE_RESERVATION_MS lapses: its scheduler waits again. */
  private expireReservations(now: number): void {
    this.ctx.storage.sql.exec(
      "UPDATE waiters SET woken_at = NULL WHERE woken_at IS NOT NULL AND woken_at <= ?",
      now - WAKE_RESERVATION_MS,
    );
  }

  /** Live wake reservations of schedulers other than this one. */
  private reservedExcept(scheduler: string): number {
    return Number(
      this.ctx.storage.sql
        .exec("SELECT COUNT(*) AS n FROM waiters WHERE woken_at IS NOT NULL AND scheduler != ?", scheduler)
        .one().n,
    );
  }

  /**
   * Wakes the oldest waiting schedulers, one per unit of unreserved room, counting each idle lease
   * not yet being evicted as room (a woken scheduler evicts it).
   */
  private wakeWaiters(now: number): void {
    const sql = this.ctx.storage.sql;
    this.expireReservations(now);
    const reserved = Number(sql.exec("SELECT COUNT(*) AS n FROM waiters WHERE woken_at IS NOT NULL").one().n);
    const evictable = Number(
      sql.exec("SELECT COUNT(*) AS n FROM slot_leases WHERE request_id IS NULL AND evicting_at IS NULL").one().n,
    );
    const room = this.limit() - this.leaseCount() + evictable - reserved;
    if (room <= 0) return;
    const woken = sql
      .exec<{ scheduler: string }>("SELECT scheduler FROM waiters WHERE woken_at IS NULL ORDER BY seq LIMIT ?", room)
      .toArray();
    for (const { scheduler } of woken) {
      sql.exec("UPDATE waiters SET woken_at = ? WHERE scheduler = ?", now, scheduler);
      this.ctx.waitUntil(this.wake(scheduler, now));
    }
  }

  /**
   * Wakes one scheduler. One that asks for nothing (no event waits, or its function is at its own
   * concurrency limit) leaves the line, and its room goes to the next waiting scheduler.
   */
  private async wake(scheduler: string, wokenAt: number): Promise<void> {
    try {
      const answer = await this.schedulerStub(scheduler).wake();
      if (answer.acquiring) return;
      this.ctx.storage.sql.exec("DELETE FROM waiters WHERE scheduler = ? AND woken_at = ?", scheduler, wokenAt);
      this.wakeWaiters(Date.now());
    } catch (error) {
      // Lost wake: the reservation lapses, and the scheduler's own alarm retries as well.
      console.warn("waking a scheduler failed", scheduler, String(error));
    }
  }

  private async ensureAuditAlarm(): Promise<void> {
    if ((await this.ctx.storage.getAlarm()) === null) {
      await this.ctx.storage.setAlarm(Date.now() + LEASE_AUDIT_INTERVAL_MS);
    }
  }

  private leaseCount(): number {
    return Number(this.ctx.storage.sql.exec("SELECT COUNT(*) AS n FROM slot_leases").one().n);
  }

  /** The cap last given by a scheduler (the var is read by the schedulers). */
  private limit(): number {
    return validLimit(Number(this.settings.get("limit") ?? DEFAULT_NAMESPACE_MAX_CONTAINERS));
  }

  private schedulerStub(name: string) {
    return schedulerStub(this.env, name);
  }

  private instanceStub(name: string) {
    return instanceStub(this.env, name);
  }
}

/** A cap given by a caller: a whole number from 1 to the ceiling, else the default. */
function validLimit(limit: number): number {
  return Number.isInteger(limit) && limit >= 1 && limit <= NAMESPACE_MAX_CONTAINERS_CEILING
    ? limit
    : DEFAULT_NAMESPACE_MAX_CONTAINERS;
}

/** Why an acquire is malformed (an internal caller's bug), or undefined when it is well formed. */
function checkAcquire(scheduler: string, requests: LeaseRequest[]): string | undefined {
  if (typeof scheduler !== "string" || scheduler.length === 0) return "acquire needs a scheduler name";
  if (!Array.isArray(requests) || requests.length > MAX_LEASES_PER_ACQUIRE) {
    return `acquire takes a list of at most ${MAX_LEASES_PER_ACQUIRE} leases`;
  }
  const wellFormed = requests.every(
    (request) =>
      typeof request?.requestId === "string" && request.requestId.length > 0 && Number.isInteger(request.slot),
  );
  return wellFormed ? undefined : "acquire needs a RequestId and a slot number for every lease";
}
