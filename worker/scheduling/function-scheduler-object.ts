import { DurableObject } from "cloudflare:workers";
import type { DispatchMessage } from "../events/dispatch-message";

/** How often the scheduler audits busy slots while any exist. */
const AUDIT_INTERVAL_MS = 60_000;
/** A slot whose instance no longer runs its event is freed only after this age (start in flight). */
const AUDIT_MIN_AGE_MS = 30_000;

/** Name of one instance slot: the instance Durable Object's name. */
export function instanceName(schedulerName: string, slot: number): string {
  return `${schedulerName}#${slot}`;
}

/** Name of the scheduler of one function. */
export function schedulerName(namespace: string, functionName: string): string {
  return `${namespace}/${functionName}`;
}

interface Assignment {
  slot: number;
  requestId: string;
}

/**
 * Per-function scheduler. Keeps a FIFO of events waiting for capacity, enforces the function's
 * concurrency limit, hands each event to an idle (warm) instance slot first and opens a new slot
 * only when all are busy. Instances report back with release(); an abnormal end has already
 * destroyed the slot's container, so its next event starts a fresh one.
 */
export class FunctionSchedulerObject extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      const sql = ctx.storage.sql;
      sql.exec(`CREATE TABLE IF NOT EXISTS pending (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL UNIQUE, enqueued_at INTEGER NOT NULL)`);
      sql.exec(`CREATE TABLE IF NOT EXISTS slots (
        slot INTEGER PRIMARY KEY, request_id TEXT, assigned_at INTEGER, last_used_at INTEGER NOT NULL)`);
      sql.exec("CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    });
  }

  /**
   * Takes dispatch messages of this function. Idempotent: an event already waiting or running is
   * not added again (the event's claim is the final guard against a second execution).
   */
  async submit(messages: DispatchMessage[]): Promise<void> {
    const sql = this.ctx.storage.sql;
    const last = messages.at(-1);
    if (!last) return;
    this.setSetting("name", `${last.namespace}/${last.functionName}`);
    this.setSetting("maxConcurrency", String(last.maxConcurrency));
    const now = Date.now();
    for (const message of messages) {
      const running = sql.exec("SELECT 1 FROM slots WHERE request_id = ?", message.requestId).toArray();
      if (running.length > 0) continue;
      sql.exec("INSERT OR IGNORE INTO pending (request_id, enqueued_at) VALUES (?, ?)", message.requestId, now);
    }
    this.pump();
  }

  /** An instance finished (or gave up) the event in its slot. */
  async release(slot: number, requestId: string): Promise<void> {
    this.ctx.storage.sql.exec(
      "UPDATE slots SET request_id = NULL, assigned_at = NULL, last_used_at = ? WHERE slot = ? AND request_id = ?",
      Date.now(),
      slot,
      requestId,
    );
    this.pump();
  }

  /** Counts for observability and tests. */
  async stats(): Promise<{ pending: number; busy: number; slots: number; maxConcurrency: number }> {
    const sql = this.ctx.storage.sql;
    const pending = Number(sql.exec("SELECT COUNT(*) AS n FROM pending").one().n);
    const busy = this.busyCount();
    const slots = Number(sql.exec("SELECT COUNT(*) AS n FROM slots").one().n);
    return { pending, busy, slots, maxConcurrency: this.maxConcurrency() };
  }

  /** Audits busy slots: frees a slot whose instance no longer runs its event (lost release). */
  override async alarm(): Promise<void> {
    const sql = this.ctx.storage.sql;
    const name = this.getSetting("name");
    const busy = sql
      .exec<{ slot: number; request_id: string; assigned_at: number }>(
        "SELECT slot, request_id, assigned_at FROM slots WHERE request_id IS NOT NULL",
      )
      .toArray();
    if (name) {
      for (const row of busy) {
        if (Date.now() - row.assigned_at < AUDIT_MIN_AGE_MS) continue;
        const instance = this.env.INSTANCE.get(this.env.INSTANCE.idFromName(instanceName(name, row.slot)));
        const current = await instance.currentRequestId().catch(() => undefined);
        if (current !== row.request_id) await this.release(row.slot, row.request_id);
      }
    }
    this.pump();
    if (this.busyCount() > 0) await this.ctx.storage.setAlarm(Date.now() + AUDIT_INTERVAL_MS);
  }

  /** Assigns waiting events to slots up to the concurrency limit, then starts them. */
  private pump(): void {
    const { assignments, busy } = this.assign();
    const name = this.getSetting("name");
    if (!name) return;
    for (const assignment of assignments) {
      this.ctx.waitUntil(this.startOnInstance(name, assignment));
    }
    if (busy > 0) this.ctx.waitUntil(this.ensureAuditAlarm());
  }

  /** Synchronous (no await): no other call can interleave between choosing and recording. */
  private assign(): { assignments: Assignment[]; busy: number } {
    const sql = this.ctx.storage.sql;
    const limit = this.maxConcurrency();
    const assignments: Assignment[] = [];
    let busy = this.busyCount();
    while (busy < limit) {
      const next = sql
        .exec<{ seq: number; request_id: string }>("SELECT seq, request_id FROM pending ORDER BY seq LIMIT 1")
        .toArray()[0];
      if (!next) break;
      // Warm first: the idle slot used most recently still has a running container.
      const idle = sql
        .exec<{ slot: number }>("SELECT slot FROM slots WHERE request_id IS NULL ORDER BY last_used_at DESC LIMIT 1")
        .toArray()[0];
      const slot = idle?.slot ?? this.newSlotNumber();
      const now = Date.now();
      sql.exec(
        `INSERT INTO slots (slot, request_id, assigned_at, last_used_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (slot) DO UPDATE SET request_id = excluded.request_id, assigned_at = excluded.assigned_at`,
        slot,
        next.request_id,
        now,
        now,
      );
      sql.exec("DELETE FROM pending WHERE seq = ?", next.seq);
      assignments.push({ slot, requestId: next.request_id });
      busy += 1;
    }
    return { assignments, busy };
  }

  private busyCount(): number {
    return Number(this.ctx.storage.sql.exec("SELECT COUNT(*) AS n FROM slots WHERE request_id IS NOT NULL").one().n);
  }

  private newSlotNumber(): number {
    const row = this.ctx.storage.sql.exec("SELECT COALESCE(MAX(slot), -1) + 1 AS next FROM slots").one();
    return Number(row.next);
  }

  private async startOnInstance(name: string, assignment: Assignment): Promise<void> {
    const instance = this.env.INSTANCE.get(this.env.INSTANCE.idFromName(instanceName(name, assignment.slot)));
    try {
      await instance.runEvent({
        requestId: assignment.requestId,
        schedulerName: name,
        slot: assignment.slot,
      });
    } catch (error) {
      // The event is still queued in its own object; its watchdog dispatches it again.
      console.warn("instance did not take the event", assignment.requestId, String(error));
      await this.release(assignment.slot, assignment.requestId);
    }
  }

  private async ensureAuditAlarm(): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null) await this.ctx.storage.setAlarm(Date.now() + AUDIT_INTERVAL_MS);
  }

  private maxConcurrency(): number {
    return Number(this.getSetting("maxConcurrency") ?? "1");
  }

  private getSetting(key: string): string | undefined {
    const row = this.ctx.storage.sql
      .exec<{ value: string }>("SELECT value FROM settings WHERE key = ?", key)
      .toArray()[0];
    return row?.value;
  }

  private setSetting(key: string, value: string): void {
    this.ctx.storage.sql.exec(
      "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      key,
      value,
    );
  }
}
