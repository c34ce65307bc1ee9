// The namespace quota's lease audit: finds leases whose release or markIdle was lost by asking their
// instances, and keeps the audit's alarm set while there is anything to audit.
import { type InstanceBinding, instanceStub } from "../shared/objects";
import type { LeaseRow, SlotLeaseTable } from "./namespace-quota-leases";
import type { PlatformExchange } from "./namespace-quota-platform";
import { LEASE_AUDIT_INTERVAL_MS, LEASE_AUDIT_MIN_AGE_MS, LEASE_AUDIT_PARALLELISM } from "./namespace-quota-rules";

/** The lease audit of one namespace's quota object. */
export class LeaseAudit {
  /** @param env The object's env, read at each use (so that a replaced env is seen). */
  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly env: () => Pick<Env, InstanceBinding>,
    private readonly leases: SlotLeaseTable,
    private readonly platform: PlatformExchange,
  ) {}

  /**
   * Asks the instance of each lease unchanged for LEASE_AUDIT_MIN_AGE_MS (LEASE_AUDIT_PARALLELISM at
   * a time) whether it still holds a container or an event. One holding neither loses its lease (a
   * release that was lost); a busy lease whose instance is idle with a warm container turns idle (a
   * lost markIdle). An instance that cannot be asked keeps its lease.
   */
  async run(now: number): Promise<void> {
    const old = this.leases.untouchedSince(now - LEASE_AUDIT_MIN_AGE_MS);
    for (let start = 0; start < old.length; start += LEASE_AUDIT_PARALLELISM) {
      await Promise.all(old.slice(start, start + LEASE_AUDIT_PARALLELISM).map((row) => this.auditLease(row)));
    }
  }

  /** Sets the audit's alarm unless one is set already. */
  async ensureScheduled(): Promise<void> {
    if ((await this.storage.getAlarm()) === null) {
      await this.storage.setAlarm(Date.now() + LEASE_AUDIT_INTERVAL_MS);
    }
  }

  /** Sets the next audit LEASE_AUDIT_INTERVAL_MS from now. */
  async scheduleNext(): Promise<void> {
    await this.storage.setAlarm(Date.now() + LEASE_AUDIT_INTERVAL_MS);
  }

  /** Audits one lease against its instance (see run); changes it only if untouched meanwhile. */
  private async auditLease(row: LeaseRow): Promise<void> {
    const state = await instanceStub(this.env(), row.instance)
      .leaseCheck()
      .catch((error: unknown) => {
        console.warn("lease audit could not ask the instance", row.instance, String(error));
        return undefined;
      });
    if (!state) return;
    if (!state.containerRunning && !state.busy) {
      console.warn("lease audit: dropping the lease of an instance that holds no container", row.instance);
      if (this.leases.dropIfUnchanged(row)) await this.platform.release([row.instance]);
    } else if (!state.busy && row.request_id !== null) {
      this.leases.idleIfUnchanged(row);
    }
  }
}
