import { DurableObject } from "cloudflare:workers";
import { SqlSettings } from "../shared/sql-settings";

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
/** A lease is audited only past this age: younger ones may belong to a start still in flight. */
export const LEASE_AUDIT_MIN_AGE_MS = 60_000;
/**
 * A woken scheduler holds a reservation on the room it was woken for this long: other schedulers
 * of the namespace cannot take it first. Past it (a lost wake) the room is free for anyone and the
 * scheduler is woken again at the next release or audit.
 */
export const WAKE_RESERVATION_MS = 5_000;

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

/** The namespace of a scheduler name (`namespace/function`; a namespace never contains `/`). */
export function namespaceOfScheduler(schedulerName: string): string {
  const slash = schedulerName.indexOf("/");
  return slash < 0 ? schedulerName : schedulerName.slice(0, slash);
}

/** One container start a scheduler asks a lease for. */
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
  requestId: string;
  scheduler: string;
  slot: number;
  acquiredAt: number;
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

/**
 * One per namespace (idFromName(namespace)): caps the containers the namespace runs at once.
 * A scheduler takes a lease (keyed by RequestId) before it hands an event to an instance, and gives
 * it back whenever the slot is freed. When the namespace is at its cap the scheduler is recorded as
 * waiting (FIFO); each release wakes the oldest waiting schedulers, which get a short reservation
 * on the freed room so that a busier function of the namespace cannot take it first. An alarm
 * drops leases whose scheduler no longer holds their event (a lost release).
 */
export class NamespaceQuotaObject extends DurableObject<Env> {
  private readonly settings: SqlSettings;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.settings = new SqlSettings(ctx.storage.sql);
    ctx.blockConcurrencyWhile(async () => {
      const sql = ctx.storage.sql;
      sql.exec(`CREATE TABLE IF NOT EXISTS leases (
        request_id TEXT PRIMARY KEY, scheduler TEXT NOT NULL, slot INTEGER NOT NULL, acquired_at INTEGER NOT NULL)`);
      sql.exec(`CREATE TABLE IF NOT EXISTS waiters (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, scheduler TEXT NOT NULL UNIQUE, woken_at INTEGER)`);
    });
  }

  /**
   * Grants leases in the order asked while the namespace is under `limit` (room reserved for
   * another woken scheduler does not count as free). Idempotent by RequestId: a lease already held
   * is granted again without counting twice. When anything is refused the scheduler is recorded as
   * waiting: at its old place if it got nothing, at the back if it got some (round robin).
   */
  async acquire(scheduler: string, requests: LeaseRequest[], limit: number): Promise<AcquireResult> {
    const malformed = checkAcquire(scheduler, requests);
    if (malformed) return { granted: [], refused: [], error: malformed };
    const sql = this.ctx.storage.sql;
    const now = Date.now();
    const cap = validLimit(limit);
    this.settings.set("limit", String(cap));
    this.expireReservations(now);
    const reservedByOthers = Number(
      sql.exec("SELECT COUNT(*) AS n FROM waiters WHERE woken_at IS NOT NULL AND scheduler != ?", scheduler).one().n,
    );
    let room = cap - this.leaseCount() - reservedByOthers;
    const granted: string[] = [];
    const refused: string[] = [];
    for (const request of requests) {
      const held = sql.exec("SELECT 1 FROM leases WHERE request_id = ?", request.requestId).toArray().length > 0;
      if (held) {
        sql.exec(
          "UPDATE leases SET scheduler = ?, slot = ? WHERE request_id = ?",
          scheduler,
          request.slot,
          request.requestId,
        );
        granted.push(request.requestId);
      } else if (room > 0) {
        sql.exec(
          "INSERT INTO leases (request_id, scheduler, slot, acquired_at) VALUES (?, ?, ?, ?)",
          request.requestId,
          scheduler,
          request.slot,
          now,
        );
        room -= 1;
        granted.push(request.requestId);
      } else {
        refused.push(request.requestId);
      }
    }
    this.recordWaiter(scheduler, granted.length > 0, refused.length > 0);
    this.ctx.waitUntil(this.ensureAuditAlarm());
    return { granted, refused };
  }

  /** Gives leases back (unknown RequestIds are ignored) and wakes waiting schedulers into the room. */
  async release(requestIds: string[]): Promise<{ released: number; error?: string }> {
    if (!Array.isArray(requestIds) || requestIds.length > MAX_LEASES_PER_ACQUIRE) {
      return { released: 0, error: `release takes a list of at most ${MAX_LEASES_PER_ACQUIRE} RequestIds` };
    }
    let released = 0;
    for (const requestId of requestIds) {
      if (typeof requestId !== "string") continue;
      released += this.ctx.storage.sql.exec("DELETE FROM leases WHERE request_id = ?", requestId).rowsWritten;
    }
    this.wakeWaiters(Date.now());
    return { released };
  }

  /** Leases and waiting schedulers (observability and tests). */
  async snapshot(): Promise<QuotaSnapshot> {
    const sql = this.ctx.storage.sql;
    const leases = sql
      .exec<{ request_id: string; scheduler: string; slot: number; acquired_at: number }>(
        "SELECT request_id, scheduler, slot, acquired_at FROM leases ORDER BY acquired_at, request_id",
      )
      .toArray()
      .map((row) => ({
        requestId: row.request_id,
        scheduler: row.scheduler,
        slot: row.slot,
        acquiredAt: row.acquired_at,
      }));
    const waiters = sql
      .exec<{ scheduler: string; woken_at: number | null }>("SELECT scheduler, woken_at FROM waiters ORDER BY seq")
      .toArray()
      .map((row) => ({ scheduler: row.scheduler, wokenAt: row.woken_at }));
    return { limit: this.limit(), leases, waiters };
  }

  /**
   * Lease audit: asks each scheduler holding a lease older than LEASE_AUDIT_MIN_AGE_MS whether it
   * still holds the event in a slot, and drops the leases it does not (a release that was lost).
   * A scheduler that cannot be asked keeps its leases. Then wakes waiters into any room.
   */
  override async alarm(): Promise<void> {
    const sql = this.ctx.storage.sql;
    const now = Date.now();
    const old = sql
      .exec<{ request_id: string; scheduler: string }>(
        "SELECT request_id, scheduler FROM leases WHERE acquired_at <= ?",
        now - LEASE_AUDIT_MIN_AGE_MS,
      )
      .toArray();
    const bySchedulers = new Map<string, string[]>();
    for (const row of old)
      bySchedulers.set(row.scheduler, [...(bySchedulers.get(row.scheduler) ?? []), row.request_id]);
    for (const [scheduler, requestIds] of bySchedulers) {
      for (let start = 0; start < requestIds.length; start += MAX_LEASES_PER_ACQUIRE) {
        const batch = requestIds.slice(start, start + MAX_LEASES_PER_ACQUIRE);
        const held = await this.schedulerStub(scheduler)
          .heldRequestIds(batch)
          .catch((error: unknown) => {
            console.warn("lease audit could not ask the scheduler", scheduler, String(error));
            return batch;
          });
        const stillHeld = new Set(held);
        for (const requestId of batch) {
          if (stillHeld.has(requestId)) continue;
          console.warn("lease audit: dropping a lease its scheduler no longer holds", scheduler, requestId);
          sql.exec("DELETE FROM leases WHERE request_id = ? AND scheduler = ?", requestId, scheduler);
        }
      }
    }
    this.wakeWaiters(Date.now());
    const pending = this.leaseCount() + Number(sql.exec("SELECT COUNT(*) AS n FROM waiters").one().n);
    if (pending > 0) await this.ctx.storage.setAlarm(Date.now() + LEASE_AUDIT_INTERVAL_MS);
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

  /** Wakes the oldest waiting schedulers, one per unit of unreserved room. */
  private wakeWaiters(now: number): void {
    const sql = this.ctx.storage.sql;
    this.expireReservations(now);
    const reserved = Number(sql.exec("SELECT COUNT(*) AS n FROM waiters WHERE woken_at IS NOT NULL").one().n);
    const room = this.limit() - this.leaseCount() - reserved;
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
    return Number(this.ctx.storage.sql.exec("SELECT COUNT(*) AS n FROM leases").one().n);
  }

  /** The cap last given by a scheduler (the var is read by the schedulers). */
  private limit(): number {
    return validLimit(Number(this.settings.get("limit") ?? DEFAULT_NAMESPACE_MAX_CONTAINERS));
  }

  private schedulerStub(name: string) {
    return this.env.SCHEDULER.get(this.env.SCHEDULER.idFromName(name));
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
