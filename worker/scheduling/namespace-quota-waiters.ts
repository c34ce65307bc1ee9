// The namespace quota's waiting line: the schedulers refused room, oldest first, and their wakes.
// Every SQL statement on `waiters` lives here.
import { schedulerStub } from "../shared/objects";
import { WAKE_RESERVATION_MS, type WaiterView } from "./namespace-quota-rules";

/**
 * Schedulers of one namespace waiting for room (FIFO). A woken scheduler holds a reservation
 * (woken_at) for WAKE_RESERVATION_MS so that no other scheduler of the namespace takes its room.
 */
export class WaitingLine {
  private readonly sql: SqlStorage;

  /**
   * @param env The object's env, read at each use (so that a replaced env is seen).
   * @param room Units of room before reservations: the cap, less the leases, plus the idle leases
   *   not yet being evicted (a woken scheduler evicts one).
   */
  constructor(
    private readonly ctx: DurableObjectState,
    private readonly env: () => Pick<Env, "SCHEDULER">,
    private readonly room: () => number,
  ) {
    this.sql = ctx.storage.sql;
  }

  /** Creates the table. */
  createTable(): void {
    this.sql.exec(`CREATE TABLE IF NOT EXISTS waiters (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, scheduler TEXT NOT NULL UNIQUE, woken_at INTEGER)`);
  }

  /** Schedulers waiting, woken or not. */
  count(): number {
    return Number(this.sql.exec("SELECT COUNT(*) AS n FROM waiters").one().n);
  }

  /** The line, oldest first (the snapshot's view). */
  views(): WaiterView[] {
    return this.sql
      .exec<{ scheduler: string; woken_at: number | null }>("SELECT scheduler, woken_at FROM waiters ORDER BY seq")
      .toArray()
      .map((row) => ({ scheduler: row.scheduler, wokenAt: row.woken_at }));
  }

  /** Records (or clears) the scheduler's place in the waiting line after an acquire. */
  record(scheduler: string, gotAny: boolean, mustWait: boolean): void {
    if (!mustWait) {
      this.sql.exec("DELETE FROM waiters WHERE scheduler = ?", scheduler);
      return;
    }
    if (gotAny) {
      // Served: to the back of the line, behind the functions still waiting.
      this.sql.exec("DELETE FROM waiters WHERE scheduler = ?", scheduler);
      this.sql.exec("INSERT INTO waiters (scheduler, woken_at) VALUES (?, NULL)", scheduler);
      return;
    }
    // Not served: keep its place (and give up a reservation it found taken).
    this.sql.exec(
      "INSERT INTO waiters (scheduler, woken_at) VALUES (?, NULL) ON CONFLICT (scheduler) DO UPDATE SET woken_at = NULL",
      scheduler,
    );
  }

  /** A reservation not used within WAKE_RESERVATION_MS lapses: its scheduler waits again. */
  expireReservations(now: number): void {
    this.sql.exec(
      "UPDATE waiters SET woken_at = NULL WHERE woken_at IS NOT NULL AND woken_at <= ?",
      now - WAKE_RESERVATION_MS,
    );
  }

  /** Live wake reservations of schedulers other than this one. */
  reservedExcept(scheduler: string): number {
    return Number(
      this.sql.exec("SELECT COUNT(*) AS n FROM waiters WHERE woken_at IS NOT NULL AND scheduler != ?", scheduler).one()
        .n,
    );
  }

  /**
   * Wakes the oldest waiting schedulers, one per unit of unreserved room, counting each idle lease
   * not yet being evicted as room (a woken scheduler evicts it).
   */
  wakeWaiters(now: number): void {
    this.expireReservations(now);
    const reserved = Number(this.sql.exec("SELECT COUNT(*) AS n FROM waiters WHERE woken_at IS NOT NULL").one().n);
    const room = this.room() - reserved;
    if (room <= 0) return;
    const woken = this.sql
      .exec<{ scheduler: string }>("SELECT scheduler FROM waiters WHERE woken_at IS NULL ORDER BY seq LIMIT ?", room)
      .toArray();
    for (const { scheduler } of woken) {
      this.sql.exec("UPDATE waiters SET woken_at = ? WHERE scheduler = ?", now, scheduler);
      this.ctx.waitUntil(this.wake(scheduler, now));
    }
  }

  /**
   * Wakes one scheduler. One that asks for nothing (no event waits, or its function is at its own
   * concurrency limit) leaves the line, and its room goes to the next waiting scheduler.
   */
  private async wake(scheduler: string, wokenAt: number): Promise<void> {
    try {
      const answer = await schedulerStub(this.env(), scheduler).wake();
      if (answer.acquiring) return;
      this.sql.exec("DELETE FROM waiters WHERE scheduler = ? AND woken_at = ?", scheduler, wokenAt);
      this.wakeWaiters(Date.now());
    } catch (error) {
      // Lost wake: the reservation lapses, and the scheduler's own alarm retries as well.
      console.warn("waking a scheduler failed", scheduler, String(error));
    }
  }
}
