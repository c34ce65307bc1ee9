// The namespace quota's lease table: one row per instance slot whose container may be alive. Every
// SQL statement on `slot_leases` lives here; each method is one synchronous step.
import { EVICTION_TIMEOUT_MS, type LeaseRequest, type LeaseView } from "./namespace-quota-rules";

/** A row of the lease table. */
export type LeaseRow = {
  instance: string;
  scheduler: string;
  slot: number;
  request_id: string | null;
  acquired_at: number;
  touched_at: number;
  evicting_at: number | null;
};

/** A lease unchanged since the audit read it: same instance, same touch, not being evicted. */
const UNCHANGED = "instance = ? AND touched_at = ? AND evicting_at IS NULL";

/** The `slot_leases` table of one namespace's quota object. */
export class SlotLeaseTable {
  constructor(private readonly sql: SqlStorage) {}

  /** Creates the table (and drops the per-event `leases` table an older version kept). */
  createTable(): void {
    // Leases were once kept per event; a slot's lease replaces them (the audit re-derives nothing
    // from the old rows: their slots take a new lease at their next start).
    this.sql.exec("DROP TABLE IF EXISTS leases");
    this.sql.exec(`CREATE TABLE IF NOT EXISTS slot_leases (
      instance TEXT PRIMARY KEY, scheduler TEXT NOT NULL, slot INTEGER NOT NULL, request_id TEXT,
      acquired_at INTEGER NOT NULL, touched_at INTEGER NOT NULL, evicting_at INTEGER)`);
  }

  /** The lease of an instance slot, if it holds one. */
  lease(instance: string): LeaseRow | undefined {
    return this.sql.exec<LeaseRow>("SELECT * FROM slot_leases WHERE instance = ?", instance).toArray()[0];
  }

  /** Leases counted, idle or busy. */
  count(): number {
    return Number(this.sql.exec("SELECT COUNT(*) AS n FROM slot_leases").one().n);
  }

  /** Idle leases not yet being evicted (room a woken scheduler can take by evicting). */
  evictableCount(): number {
    return Number(
      this.sql.exec("SELECT COUNT(*) AS n FROM slot_leases WHERE request_id IS NULL AND evicting_at IS NULL").one().n,
    );
  }

  /** The instance names of every lease. */
  instances(): string[] {
    return this.sql
      .exec<{ instance: string }>("SELECT instance FROM slot_leases")
      .toArray()
      .map((row) => row.instance);
  }

  /** Every lease, oldest first (the snapshot's view). */
  views(): LeaseView[] {
    return this.sql
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
  }

  /** Takes a new, busy lease for the request's slot. */
  insert(instance: string, scheduler: string, request: LeaseRequest, now: number): void {
    this.sql.exec(
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

  /** The slot's lease is busy with this event (a warm container reused, or the same event again). */
  markBusy(instance: string, requestId: string, now: number): void {
    this.sql.exec("UPDATE slot_leases SET request_id = ?, touched_at = ? WHERE instance = ?", requestId, now, instance);
  }

  /** Turns the lease idle if it is busy with this event; true when it was. */
  markIdle(instance: string, requestId: string, now: number): boolean {
    return (
      this.sql.exec(
        "UPDATE slot_leases SET request_id = NULL, touched_at = ? WHERE instance = ? AND request_id = ?",
        now,
        instance,
        requestId,
      ).rowsWritten > 0
    );
  }

  /** Drops the lease if it is idle or busy with endedRequestId; true when it went. */
  release(instance: string, endedRequestId: string | null): boolean {
    return (
      this.sql.exec(
        "DELETE FROM slot_leases WHERE instance = ? AND (request_id IS NULL OR request_id = ?)",
        instance,
        endedRequestId,
      ).rowsWritten > 0
    );
  }

  /** Drops a lease taken for this event whose container the platform did not grant. */
  dropUnconfirmed(instance: string, requestId: string): void {
    this.sql.exec("DELETE FROM slot_leases WHERE instance = ? AND request_id = ?", instance, requestId);
  }

  /** Marks the namespace's least recently used idle lease as being evicted; its instance, if any. */
  markEvictionCandidate(now: number): string | undefined {
    const victim = this.sql
      .exec<{ instance: string }>(
        "SELECT instance FROM slot_leases WHERE request_id IS NULL AND evicting_at IS NULL ORDER BY touched_at, instance LIMIT 1",
      )
      .toArray()[0];
    if (!victim) return undefined;
    this.sql.exec("UPDATE slot_leases SET evicting_at = ? WHERE instance = ?", now, victim.instance);
    return victim.instance;
  }

  /** The eviction marked at markedAt did not happen: the lease is idle and evictable again. */
  clearEvictionMark(instance: string, markedAt: number): void {
    this.sql.exec(
      "UPDATE slot_leases SET evicting_at = NULL WHERE instance = ? AND evicting_at = ?",
      instance,
      markedAt,
    );
  }

  /** The eviction marked at markedAt destroyed the container: drops the lease; true when it was there. */
  dropEvicted(instance: string, markedAt: number): boolean {
    return (
      this.sql.exec("DELETE FROM slot_leases WHERE instance = ? AND evicting_at = ?", instance, markedAt).rowsWritten >
      0
    );
  }

  /** Clears eviction marks left by an eviction this object no longer waits for (it restarted). */
  expireEvictionMarks(now: number): void {
    this.sql.exec(
      "UPDATE slot_leases SET evicting_at = NULL WHERE evicting_at IS NOT NULL AND evicting_at <= ?",
      now - EVICTION_TIMEOUT_MS,
    );
  }

  /** Leases untouched since the cutoff and not being evicted (the ones the audit asks about). */
  untouchedSince(cutoff: number): LeaseRow[] {
    return this.sql
      .exec<LeaseRow>("SELECT * FROM slot_leases WHERE touched_at <= ? AND evicting_at IS NULL", cutoff)
      .toArray();
  }

  /** Drops the lease if unchanged since the audit read it; true when it went. */
  dropIfUnchanged(row: LeaseRow): boolean {
    return this.sql.exec(`DELETE FROM slot_leases WHERE ${UNCHANGED}`, row.instance, row.touched_at).rowsWritten > 0;
  }

  /** Turns the lease idle if unchanged since the audit read it (its touch time is kept). */
  idleIfUnchanged(row: LeaseRow): void {
    this.sql.exec(`UPDATE slot_leases SET request_id = NULL WHERE ${UNCHANGED}`, row.instance, row.touched_at);
  }
}
