import { DurableObject } from "cloudflare:workers";
import { namespaceQuotaStub } from "../shared/objects";

/**
 * Containers the whole platform may hold at once when `PLATFORM_MAX_CONTAINERS` is unset or
 * invalid: the containers' `max_instances` in wrangler.toml (50). Cloudflare refuses a container
 * past max_instances ("there is no container instance that can be provided"); counting here first
 * makes the platform wait for room instead of meeting that refusal.
 */
export const DEFAULT_PLATFORM_MAX_CONTAINERS = 50;
/** Largest accepted `PLATFORM_MAX_CONTAINERS`; a larger value counts as invalid (default applies). */
export const PLATFORM_MAX_CONTAINERS_CEILING = 10_000;
/** Most instances one acquire, release or sync call may name. */
export const MAX_UNITS_PER_CALL = 10_000;
/**
 * A sync drops a namespace's unit whose instance it no longer leases only once the unit is this
 * old: a younger one may belong to a lease still being taken (granted here, not yet recorded there).
 */
export const UNIT_SYNC_MIN_AGE_MS = 60_000;

/**
 * Reads the platform-wide container cap from the `PLATFORM_MAX_CONTAINERS` var: a whole number from
 * 1 to PLATFORM_MAX_CONTAINERS_CEILING. Anything else falls back to the default.
 */
export function parsePlatformMaxContainers(value: unknown): number {
  if (typeof value !== "string" || !/^[0-9]{1,6}$/.test(value.trim())) return DEFAULT_PLATFORM_MAX_CONTAINERS;
  const parsed = Number(value.trim());
  if (parsed < 1 || parsed > PLATFORM_MAX_CONTAINERS_CEILING) return DEFAULT_PLATFORM_MAX_CONTAINERS;
  return parsed;
}

/** Answer to acquire: the instances that may start a container, and those that must wait. */
export interface UnitGrant {
  granted: string[];
  refused: string[];
}

/** State of the platform's capacity (observability and tests). */
export interface CapacitySnapshot {
  limit: number;
  /** Containers counted, per namespace. */
  byNamespace: Record<string, number>;
  total: number;
  /** Namespaces waiting for room, oldest first. */
  waiting: string[];
}

/** Whether a list of instance names is well formed. */
function validInstances(instances: unknown): instances is string[] {
  return (
    Array.isArray(instances) &&
    instances.length <= MAX_UNITS_PER_CALL &&
    instances.every((instance) => typeof instance === "string" && instance.length > 0)
  );
}

/**
 * One for the whole platform (idFromName(PLATFORM_CAPACITY_NAME)): counts the containers every
 * namespace holds, one unit per instance slot whose container may be alive, and keeps the total
 * under `PLATFORM_MAX_CONTAINERS` (kept equal to max_instances).
 *
 * Only the namespaces' quota objects call it, and only when a container is added or goes (a new
 * slot's lease, a lease given back, an idle container swapped for another): warm reuse never comes
 * here, so its load follows container churn, not events. A refused namespace waits in line; each
 * release wakes the oldest waiting namespaces (their quota objects wake their schedulers, whose own
 * alarms retry too). When full, a namespace with no idle container of its own asks reclaim(): the
 * namespaces holding the most units give back idle (warm) containers, never busy ones.
 */
export class PlatformCapacityObject extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      const sql = ctx.storage.sql;
      sql.exec(`CREATE TABLE IF NOT EXISTS units (
        instance TEXT PRIMARY KEY, namespace TEXT NOT NULL, acquired_at INTEGER NOT NULL)`);
      sql.exec(`CREATE TABLE IF NOT EXISTS waiters (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, namespace TEXT NOT NULL UNIQUE)`);
    });
  }

  /**
   * Grants each instance a unit while the platform is under its cap (an instance that holds one
   * already is granted without counting twice). A namespace refused anything waits in line.
   */
  async acquire(namespace: string, instances: string[]): Promise<UnitGrant> {
    if (typeof namespace !== "string" || !validInstances(instances)) return { granted: [], refused: [] };
    const sql = this.ctx.storage.sql;
    const cap = this.limit();
    const now = Date.now();
    const granted: string[] = [];
    const refused: string[] = [];
    for (const instance of instances) {
      const held = sql.exec("SELECT 1 FROM units WHERE instance = ?", instance).toArray().length > 0;
      if (held) {
        granted.push(instance);
      } else if (this.total() < cap) {
        sql.exec("INSERT INTO units (instance, namespace, acquired_at) VALUES (?, ?, ?)", instance, namespace, now);
        granted.push(instance);
      } else {
        refused.push(instance);
      }
    }
    if (refused.length > 0) sql.exec("INSERT OR IGNORE INTO waiters (namespace) VALUES (?)", namespace);
    else sql.exec("DELETE FROM waiters WHERE namespace = ?", namespace);
    return { granted, refused };
  }

  /**
   * An idle container of the namespace was destroyed for another slot of it: the unit moves from
   * one instance to the other (the count does not change). Without a unit to move, an acquire.
   */
  async transfer(namespace: string, from: string, to: string): Promise<{ granted: boolean }> {
    if (typeof from !== "string" || typeof to !== "string") return { granted: false };
    const sql = this.ctx.storage.sql;
    const moved = sql.exec("DELETE FROM units WHERE instance = ?", from).rowsWritten > 0;
    if (moved) {
      sql.exec(
        "INSERT OR REPLACE INTO units (instance, namespace, acquired_at) VALUES (?, ?, ?)",
        to,
        namespace,
        Date.now(),
      );
      return { granted: true };
    }
    const answer = await this.acquire(namespace, [to]);
    return { granted: answer.granted.length === 1 };
  }

  /** Containers were destroyed: their units go and waiting namespaces are woken. */
  async release(instances: string[]): Promise<{ released: number }> {
    if (!validInstances(instances)) return { released: 0 };
    let released = 0;
    for (const instance of instances) {
      released += this.ctx.storage.sql.exec("DELETE FROM units WHERE instance = ?", instance).rowsWritten;
    }
    if (released > 0) this.wakeWaiters();
    return { released };
  }

  /**
   * The namespace's lease audit: units of the namespace whose instance it no longer leases (a lost
   * release) go, once older than UNIT_SYNC_MIN_AGE_MS.
   */
  async sync(namespace: string, instances: string[]): Promise<{ dropped: number }> {
    if (typeof namespace !== "string" || !validInstances(instances)) return { dropped: 0 };
    const sql = this.ctx.storage.sql;
    const leased = new Set(instances);
    const stale = sql
      .exec<{ instance: string }>(
        "SELECT instance FROM units WHERE namespace = ? AND acquired_at <= ?",
        namespace,
        Date.now() - UNIT_SYNC_MIN_AGE_MS,
      )
      .toArray()
      .filter((row) => !leased.has(row.instance));
    for (const row of stale) sql.exec("DELETE FROM units WHERE instance = ?", row.instance);
    if (stale.length > 0) {
      console.warn("platform capacity: dropped units of containers no longer leased", namespace, stale.length);
      this.wakeWaiters();
    }
    return { dropped: stale.length };
  }

  /**
   * The platform is full and the namespace has no idle container of its own to swap: asks the other
   * namespaces, most units first, to give back up to `wanted` idle containers (in the background;
   * each release wakes the line). Answers how many namespaces were asked.
   */
  async reclaim(namespace: string, wanted: number): Promise<{ asked: number }> {
    if (typeof namespace !== "string" || !Number.isInteger(wanted) || wanted < 1) return { asked: 0 };
    const holders = this.ctx.storage.sql
      .exec<{ namespace: string }>(
        "SELECT namespace FROM units WHERE namespace != ? GROUP BY namespace ORDER BY COUNT(*) DESC, namespace",
        namespace,
      )
      .toArray()
      .map((row) => row.namespace);
    if (holders.length > 0) this.ctx.waitUntil(this.reclaimFrom(holders, Math.min(wanted, MAX_UNITS_PER_CALL)));
    return { asked: holders.length };
  }

  /** Units and the waiting line (observability and tests). */
  async snapshot(): Promise<CapacitySnapshot> {
    const sql = this.ctx.storage.sql;
    const byNamespace: Record<string, number> = {};
    for (const row of sql
      .exec<{ namespace: string; n: number }>("SELECT namespace, COUNT(*) AS n FROM units GROUP BY namespace")
      .toArray()) {
      byNamespace[row.namespace] = Number(row.n);
    }
    const waiting = sql
      .exec<{ namespace: string }>("SELECT namespace FROM waiters ORDER BY seq")
      .toArray()
      .map((row) => row.namespace);
    return { limit: this.limit(), byNamespace, total: this.total(), waiting };
  }

  /** Asks each holder in turn to give back idle containers until `wanted` were given. */
  private async reclaimFrom(holders: string[], wanted: number): Promise<void> {
    let remaining = wanted;
    for (const holder of holders) {
      if (remaining <= 0) return;
      const quota = namespaceQuotaStub(this.env, holder);
      const given = await quota.yieldIdle(remaining).catch((error: unknown) => {
        console.warn("platform capacity: reclaiming idle containers failed", holder, String(error));
        return { yielded: 0 };
      });
      remaining -= given.yielded;
    }
  }

  /** Wakes the oldest waiting namespaces, one per free unit; each leaves the line (it re-enters if refused). */
  private wakeWaiters(): void {
    const sql = this.ctx.storage.sql;
    const room = this.limit() - this.total();
    if (room <= 0) return;
    const woken = sql
      .exec<{ seq: number; namespace: string }>("SELECT seq, namespace FROM waiters ORDER BY seq LIMIT ?", room)
      .toArray();
    for (const { seq, namespace } of woken) {
      sql.exec("DELETE FROM waiters WHERE seq = ?", seq);
      const quota = namespaceQuotaStub(this.env, namespace);
      this.ctx.waitUntil(
        quota
          .capacityFreed()
          .catch((error: unknown) =>
            console.warn("platform capacity: waking a namespace failed", namespace, String(error)),
          ),
      );
    }
  }

  private total(): number {
    return Number(this.ctx.storage.sql.exec("SELECT COUNT(*) AS n FROM units").one().n);
  }

  private limit(): number {
    return parsePlatformMaxContainers(this.env.PLATFORM_MAX_CONTAINERS);
  }
}
