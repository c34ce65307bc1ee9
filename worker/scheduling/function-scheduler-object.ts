import { DurableObject } from "cloudflare:workers";
import type { DispatchMessage } from "../events/dispatch-message";
import { MAX_PAUSED_BACKLOG } from "../events/paused-backlog";
import type { QueuedReason } from "../events/queued-reason";
import { containerSizes, eventClassOf, functionMaxConcurrency, sizeForMemory } from "../functions/instance-types";
import {
  classOfSlot,
  eventSchedulerName,
  IMAGE_CLASS_INDEX,
  INSTANCE_CLASSES,
  instanceClassOf,
  instanceName,
  instanceStub,
  namespaceOfScheduler,
  namespaceQuotaStub,
  parseSchedulerShard,
  SLOT_CLASS_STRIDE,
  schedulerShardCount,
  shardConcurrency,
  slotInClass,
} from "../shared/objects";
import { SqlSettings } from "../shared/sql-settings";
import { parseNamespaceMaxContainers } from "./namespace-quota-rules";

export { instanceName };

/** Adds a column to a table of this object's SQLite that an older version created without it. */
function addColumnIfMissing(sql: SqlStorage, table: string, column: string, type: string): void {
  const columns = sql.exec<{ name: string }>(`SELECT name FROM pragma_table_info('${table}')`).toArray();
  if (!columns.some((existing) => existing.name === column))
    sql.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
}

/** What the scheduler asks of a slot's instance to start an event (InstanceContainer.runEvent). */
export interface SlotStart {
  requestId: string;
  schedulerName: string;
  slot: number;
  /**
   * The event the slot's namespace lease is busy with: the first event of the slot's run of events
   * handed from one to the next without asking the quota (see release). The instance gives the lease
   * back under this name when it destroys its container. Absent from starts of older schedulers.
   */
  leaseToken?: string;
}

/** How an instance's event left its slot (release). Every field is optional: absent reads as unknown. */
export interface SlotEnding {
  /**
   * True: the container lives on and the slot's namespace lease was not given back, so the slot's
   * next event may take the lease over without a quota call. False: the instance destroyed the
   * container and gave the lease back.
   */
  leaseKept?: boolean;
  /**
   * True: the instance starts the slot's next event itself when the answer names one (the release
   * answers it instead of a runEvent call).
   */
  takeNext?: boolean;
  /** True: the event's claim was refused on the instance (counted in stats' claimsRefused). */
  claimRefused?: boolean;
}

/** The answer to release: the slot's next event, when the instance asked to take it (takeNext). */
export interface ReleaseAnswer {
  next?: SlotStart;
}
/** Starts an event on a slot's instance and answers whether the event's claim was taken. */
export type SlotStarter = (env: Env, instance: string, start: SlotStart) => Promise<{ started: boolean }>;

/** The starter test code installed (see installSlotStarterForTests); never set in production. */
let testStarter: SlotStarter | undefined;

/**
 * Test seam: while a starter is installed, schedulers hand assigned events to it instead of to
 * their slots' InstanceContainer objects (the load simulation, test/integration/load-simulation.test.ts,
 * measures the scheduler and index paths alone). Only test code calls this; undefined uninstalls.
 */
export function installSlotStarterForTests(starter: SlotStarter | undefined): void {
  testStarter = starter;
}

/** How often the scheduler audits busy slots while any exist. */
const AUDIT_INTERVAL_MS = 60_000;
/** A slot whose instance no longer runs its event is freed only after this age (start in flight). */
const AUDIT_MIN_AGE_MS = 30_000;
/**
 * While events wait on the namespace's container cap, the scheduler retries at least this often:
 * the backstop for a wake from the namespace's quota object that was lost.
 */
const QUOTA_RETRY_INTERVAL_MS = 15_000;

/** Settings key of the count of duplicate submissions ignored (see stats). */
const DUPLICATES_IGNORED_KEY = "duplicatesIgnored";
/** Settings key of the count of events whose claim was refused on an instance (see stats). */
const CLAIMS_REFUSED_KEY = "claimsRefused";
/** The scheduler's durable counters. */
type CounterKey = typeof DUPLICATES_IGNORED_KEY | typeof CLAIMS_REFUSED_KEY;
/**
 * Settings key of the time (epoch ms) the function's dispatch was paused; absent while dispatch
 * runs. Durable: a paused scheduler stays paused across restarts until resumed (or the function is
 * deleted).
 */
const PAUSED_AT_KEY = "dispatchPausedAt";
/**
 * Settings key prefix of when (epoch ms) an event of a container class (index into INSTANCE_CLASSES)
 * was last assigned a slot here: `classDispatchedAt:<index>`. A class's idle slots are retired only
 * once none was for CLASS_IDLE_RETIRE_MS (see retireIdleClasses).
 */
const CLASS_DISPATCHED_AT_KEY = "classDispatchedAt:";
/**
 * A container class nothing was dispatched to for this long (and no waiting event needs) has its
 * idle slots retired: the instances' own idle end (IDLE_CONTAINER_MS, instances/), so that a
 * function whose events alternate between sizes (an alias splitting between versions of different
 * memorySize) keeps warm containers of each.
 */
export const CLASS_IDLE_RETIRE_MS = 10 * 60_000;

/** The function's dispatch as pause, resume and GET of the function show it. */
export interface DispatchState {
  /** True while dispatch is paused: accepted events wait in the queue. */
  dispatchPaused: boolean;
  /** When dispatch was paused (epoch ms), null while it runs. */
  pausedAt: number | null;
  /** Events waiting in this scheduler for an instance (those still on the dispatch queue not counted). */
  pendingEvents: number;
}

interface Assignment {
  slot: number;
  requestId: string;
  /** The event's container class (the slot's): kept if it has to wait on the namespace's cap. */
  sizeClass: number;
  /** The event's place in the pending queue, kept if it has to wait on the namespace's cap. */
  seq: number;
  enqueuedAt: number;
}

/**
 * Per-function scheduler. Keeps a FIFO of events waiting for capacity, enforces the function's
 * concurrency limit, hands each event to an idle (warm) instance slot first and opens a new slot
 * only when all are busy. Instances report back with release(); an abnormal end has already
 * destroyed the slot's container, so its next event starts a fresh one.
 *
 * Fair share: a slot's container counts against its namespace's cap for as long as it may be alive.
 * Before events go to instances the scheduler asks its namespace's NamespaceQuotaObject for their
 * slots (one call per pump, for all the events it assigned: a warm slot already holds its lease and
 * is only marked busy; a new slot takes a lease, evicting an idle container of the namespace when
 * at the cap). A slot whose event ends with its container kept and whose next event is waiting
 * hands its busy lease straight to that event, without a quota call (the quota would grant a busy
 * lease anyway: see NamespaceQuotaObject.acquire); the lease keeps the name of the run's first event
 * (the slot's lease token). A slot nothing takes marks its lease idle (one call); the instance gives
 * the lease back when it destroys its container. An event refused by the namespace's cap returns to
 * the front of the pending queue in its original order and waits for the quota object's wake(),
 * with this object's alarm as the backstop.
 *
 * Pause: while the function's dispatch is paused (pauseDispatch), events are still taken and kept
 * in the pending queue in their order, but none is assigned to a slot; events already assigned or
 * running are not affected. resumeDispatch assigns them again, oldest first.
 */
export class FunctionSchedulerObject extends DurableObject<Env> {
  /** Wakes received from the quota object: tells a refusal that raced a wake to pump again. */
  private wakes = 0;
  /** True since the namespace's cap last refused an event here (shortens the alarm). */
  private waitingOnQuota = false;

  private readonly settings: SqlSettings;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.settings = new SqlSettings(ctx.storage.sql);
    ctx.blockConcurrencyWhile(async () => {
      const sql = ctx.storage.sql;
      sql.exec(`CREATE TABLE IF NOT EXISTS pending (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL UNIQUE, enqueued_at INTEGER NOT NULL)`);
      sql.exec(`CREATE TABLE IF NOT EXISTS slots (
        slot INTEGER PRIMARY KEY, request_id TEXT, assigned_at INTEGER, last_used_at INTEGER NOT NULL)`);
      // The event the slot's namespace lease is busy with (its token: see SlotStart.leaseToken);
      // NULL while the slot holds no lease granted here, or in rows older than the hand-over.
      addColumnIfMissing(sql, "slots", "lease_token", "TEXT");
      // The container class each waiting event needs (NULL in rows older than compute sizes: the
      // largest class, see classOfRow). A slot's class is part of its number (shared/objects.ts).
      addColumnIfMissing(sql, "pending", "size_class", "INTEGER");
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
    // This shard's name (the function's scheduler name when it has one shard): its slots'
    // instances and leases are named from it.
    this.settings.set(
      "name",
      eventSchedulerName(last.namespace, last.functionName, last.requestId, last.maxConcurrency),
    );
    this.settings.set("maxConcurrency", String(last.maxConcurrency));
    const now = Date.now();
    for (const message of messages) {
      const waiting = sql.exec("SELECT 1 FROM pending WHERE request_id = ?", message.requestId).toArray();
      if (waiting.length > 0 || this.holds(message.requestId)) {
        this.count(DUPLICATES_IGNORED_KEY);
        continue;
      }
      sql.exec(
        "INSERT INTO pending (request_id, enqueued_at, size_class) VALUES (?, ?, ?)",
        message.requestId,
        now,
        this.classOfMessage(message),
      );
    }
    this.pump();
  }

  /**
   * An instance finished (or gave up) the event in its slot: frees the slot and marks its lease
   * idle (the container stays warm and counted until its instance destroys it).
   *
   * Under a backlog the freed slot takes the next waiting event at once (warm first). When the
   * instance kept its container and lease (`ending.leaseKept`) and the slot's lease was granted
   * here, the lease passes to that event without a quota call; with `ending.takeNext` the answer
   * names the event and the instance starts it itself, without a runEvent call (ARCHITECTURE.md,
   * "Scaling": two Durable Object calls fewer per event). Should that answer be lost, the slot's
   * audit frees it and the event's watchdog dispatches the event again. A release of an event the
   * slot no longer holds (late, or repeated) changes nothing but pumps.
   */
  async release(slot: number, requestId: string, ending: SlotEnding = {}): Promise<ReleaseAnswer> {
    const sql = this.ctx.storage.sql;
    const held = sql
      .exec<{ lease_token: string | null }>(
        "SELECT lease_token FROM slots WHERE slot = ? AND request_id = ?",
        slot,
        requestId,
      )
      .toArray()[0];
    if (!held) {
      this.pump();
      return {};
    }
    if (ending?.claimRefused === true) this.count(CLAIMS_REFUSED_KEY);
    // The container went with its lease: the slot's next event asks the quota for a new one.
    const token = ending?.leaseKept === false ? null : held.lease_token;
    sql.exec(
      "UPDATE slots SET request_id = NULL, assigned_at = NULL, last_used_at = ?, lease_token = ? WHERE slot = ?",
      Date.now(),
      token,
      slot,
    );
    // Pumped before the lease is idled: a slot reused at once keeps its lease busy and idleLease
    // skips the markIdle call. A slot nothing takes is idled, waking the namespace's waiting schedulers.
    const handoff = ending?.leaseKept === true && token !== null ? { slot, token } : undefined;
    const { next } = this.pumpReleased(handoff, ending?.takeNext === true);
    if (ending?.leaseKept !== false) await this.idleLease(slot, requestId);
    // Idle slots of a size the function stopped running in a while ago go with their containers.
    this.retireIdleClasses();
    return next ? { next } : {};
  }

  /**
   * The instance of `slot` was refused `requestId` by the event because the slot is of another
   * container class than the event's memorySize (`memoryMb`) runs in (a wrong class: an event queued
   * before compute sizes, or sizes changed meanwhile). Frees the slot and puts the event back at the
   * front of the pending queue in its own class. When this scheduler's sizes put it in the slot's
   * class anyway (the event's isolate reads CONTAINER_SIZES otherwise, a deploy in flight), it is not
   * queued again here, so the two never bounce it back and forth: the event, still queued in its
   * own object, is dispatched again by its watchdog (backing off). Answers whether it was queued again.
   */
  async misplaced(slot: number, requestId: string, memoryMb: number, image = false): Promise<{ requeued: boolean }> {
    const sql = this.ctx.storage.sql;
    const freed = sql.exec(
      "UPDATE slots SET request_id = NULL, assigned_at = NULL, last_used_at = ? WHERE slot = ? AND request_id = ?",
      Date.now(),
      slot,
      requestId,
    ).rowsWritten;
    // A claim refused for its size counts as refused (stats).
    if (freed > 0) this.count(CLAIMS_REFUSED_KEY);
    await this.idleLease(slot, requestId);
    const needed = eventClassOf(memoryMb, image, containerSizes(this.env));
    const waiting = sql.exec("SELECT 1 FROM pending WHERE request_id = ?", requestId).toArray().length > 0;
    const requeued = needed !== classOfSlot(slot) && !waiting && !this.holds(requestId);
    if (requeued) {
      const front = Number(sql.exec("SELECT COALESCE(MIN(seq), 1) - 1 AS seq FROM pending").one().seq);
      sql.exec(
        "INSERT INTO pending (seq, request_id, enqueued_at, size_class) VALUES (?, ?, ?, ?)",
        front,
        requestId,
        Date.now(),
        needed,
      );
    } else {
      console.warn("an event refused its slot's container class; its watchdog dispatches it again", requestId, slot);
    }
    this.pump();
    return { requeued };
  }

  /**
   * The namespace's quota has room again (called by NamespaceQuotaObject): starts waiting events.
   * Answers whether it asks for leases now; when not (nothing waits, or the function is at its own
   * concurrency limit) the quota object gives the room to the next waiting scheduler.
   */
  async wake(): Promise<{ acquiring: boolean }> {
    this.wakes += 1;
    return { acquiring: this.pump() > 0 };
  }

  /**
   * Pauses the function's dispatch (`name` is its scheduler name, namespace/function): events
   * arriving or waiting stay pending. Idempotent: pausing a paused function keeps its pausedAt.
   */
  async pauseDispatch(name: string): Promise<DispatchState> {
    // A function whose events never reached this scheduler has no name yet: resume needs it.
    if (this.settings.get("name") === undefined) this.settings.set("name", name);
    if (this.pausedAt() === null) this.settings.set(PAUSED_AT_KEY, String(Date.now()));
    return this.dispatchState();
  }

  /**
   * Resumes the function's dispatch: the pending events are assigned again, oldest first, up to
   * the function's concurrency. Idempotent: resuming a running dispatch changes nothing.
   */
  async resumeDispatch(): Promise<DispatchState> {
    if (this.pausedAt() !== null) {
      this.settings.delete(PAUSED_AT_KEY);
      this.pump();
    }
    return this.dispatchState();
  }

  /**
   * True while dispatch is paused and the event waits in the pending queue: the event's dispatch
   * watchdog then does not send its dispatch again (a paused backlog would otherwise cost a queue
   * message and an index write per event every few minutes). When dispatch runs it answers false,
   * so the watchdog re-sends as it always did (the backstop for an assignment whose instance call
   * failed); it pumps either way, as a re-sent dispatch's submit would.
   */
  async holdsPending(requestId: string): Promise<boolean> {
    this.pump();
    if (this.pausedAt() === null) return false;
    const pending = this.ctx.storage.sql.exec("SELECT 1 FROM pending WHERE request_id = ?", requestId).toArray();
    return pending.length > 0;
  }

  /**
   * The event ended before it was assigned (a queued event terminated): it leaves the pending
   * queue, so pendingEvents and the paused backlog stop counting it. An event in a slot is left to
   * its instance (the claim refuses it).
   */
  async forget(requestId: string): Promise<void> {
    this.ctx.storage.sql.exec("DELETE FROM pending WHERE request_id = ?", requestId);
  }

  /**
   * Whether a new invocation is admitted: refused only while dispatch is paused and at least
   * MAX_PAUSED_BACKLOG events wait (see events/paused-backlog.ts, which asks the function's first
   * scheduler). Of a sharded function this shard holds about 1/N of the backlog (events spread by
   * RequestId): it is held to its share of the bound, and answers its count times N.
   */
  async admission(): Promise<{ admitted: boolean; dispatchPaused: boolean; pendingEvents: number }> {
    const { dispatchPaused, pendingEvents } = await this.dispatchState();
    const shards = schedulerShardCount(Number(this.settings.get("maxConcurrency") ?? "1"));
    const admitted = !dispatchPaused || pendingEvents * shards < MAX_PAUSED_BACKLOG;
    return { admitted, dispatchPaused, pendingEvents: pendingEvents * shards };
  }

  /** Whether the function's dispatch is paused, since when, and how many events wait here. */
  async dispatchState(): Promise<DispatchState> {
    const pausedAt = this.pausedAt();
    return { dispatchPaused: pausedAt !== null, pausedAt, pendingEvents: this.pendingCount() };
  }

  /**
   * Why a queued event of this function waits (see QUEUED_REASONS), null when it is not held here
   * for a reason (on the dispatch queue, or handed to an instance): `paused` for any event not yet
   * in a slot while dispatch is paused; `namespace-quota` or `concurrency` for a pending one.
   */
  async queuedReason(requestId: string): Promise<QueuedReason | null> {
    if (this.holds(requestId)) return null;
    if (this.pausedAt() !== null) return "paused";
    const pending = this.ctx.storage.sql.exec("SELECT 1 FROM pending WHERE request_id = ?", requestId).toArray();
    if (pending.length === 0) return null;
    if (this.waitingOnQuota) return "namespace-quota";
    return this.busyCount() >= this.maxConcurrency() ? "concurrency" : null;
  }

  /** Counts for observability and tests. */
  async stats(): Promise<{
    pending: number;
    busy: number;
    slots: number;
    maxConcurrency: number;
    waitingOnNamespace: boolean;
    dispatchPaused: boolean;
    /** Submissions of an event already waiting or in a slot, ignored (a redelivered dispatch). */
    duplicatesIgnored: number;
    /** Events handed to an instance whose claim the event refused (ended, or claimed elsewhere). */
    claimsRefused: number;
    /** The compute size (instance type) of the function's latest assigned event (basic before any). */
    instanceType: string;
    /** Slots per instance type (busy or idle). */
    slotsByType: Record<string, number>;
  }> {
    const sql = this.ctx.storage.sql;
    const slots = Number(sql.exec("SELECT COUNT(*) AS n FROM slots").one().n);
    return {
      pending: this.pendingCount(),
      busy: this.busyCount(),
      slots,
      maxConcurrency: this.maxConcurrency(),
      waitingOnNamespace: this.waitingOnQuota,
      dispatchPaused: this.pausedAt() !== null,
      duplicatesIgnored: this.counted(DUPLICATES_IGNORED_KEY),
      claimsRefused: this.counted(CLAIMS_REFUSED_KEY),
      instanceType: (INSTANCE_CLASSES[this.latestClass()] ?? INSTANCE_CLASSES[0]).instanceType,
      slotsByType: this.slotsByType(),
    };
  }

  /** Slots per instance type (stats). */
  private slotsByType(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const row of this.ctx.storage.sql.exec<{ slot: number }>("SELECT slot FROM slots").toArray()) {
      const type = instanceClassOf(row.slot).instanceType;
      counts[type] = (counts[type] ?? 0) + 1;
    }
    return counts;
  }

  /**
   * The container class a dispatched event runs in: its memorySize's compute size (CONTAINER_SIZES).
   * A message without one (sent before compute sizes) takes the largest (never too small for its
   * memory; should its event need another, its claim says so: see misplaced).
   */
  private classOfMessage(message: DispatchMessage): number {
    // An image function's events run in the image class, whatever their memorySize.
    if (message.image) return IMAGE_CLASS_INDEX;
    if (message.memoryMb !== undefined) return sizeForMemory(message.memoryMb, containerSizes(this.env)).classIndex;
    return this.largestClass();
  }

  /**
   * The class of a pending row: its size_class; NULL (a row queued before compute sizes) reads as
   * the largest class, as a message without memoryMb does (classOfMessage).
   */
  private classOfRow(sizeClass: number | null): number {
    return sizeClass ?? this.largestClass();
  }

  /** The largest compute size's container class. */
  private largestClass(): number {
    return containerSizes(this.env).at(-1)?.classIndex ?? 0;
  }

  /** When an event of the class was last assigned a slot here (epoch ms), undefined if never. */
  private classDispatchedAt(classIndex: number): number | undefined {
    const stored = this.settings.get(`${CLASS_DISPATCHED_AT_KEY}${classIndex}`);
    return stored === undefined ? undefined : Number(stored);
  }

  /** The class of the latest assigned event (the first class before any). */
  private latestClass(): number {
    let latest = 0;
    let latestAt = -1;
    for (let index = 0; index < INSTANCE_CLASSES.length; index++) {
      const at = this.classDispatchedAt(index);
      if (at !== undefined && at > latestAt) {
        latest = index;
        latestAt = at;
      }
    }
    return latest;
  }

  /**
   * Retires the idle slots of each container class the function has not run an event in for
   * CLASS_IDLE_RETIRE_MS (or never since compute sizes came) and none of its waiting events needs:
   * their rows go, and each instance destroys its container and gives its namespace lease back
   * (retireIfIdle; one that is busy meanwhile keeps both until its idle alarm). A class in use keeps
   * its warm slots however the events of different sizes interleave; busy slots of a retired class
   * finish their event and are looked at again at its release.
   */
  private retireIdleClasses(now = Date.now()): void {
    const name = this.settings.get("name");
    if (!name) return;
    const sql = this.ctx.storage.sql;
    const needed = new Set(
      sql
        .exec<{ size_class: number | null }>("SELECT DISTINCT size_class FROM pending")
        .toArray()
        .map((row) => this.classOfRow(row.size_class)),
    );
    const stale = (classIndex: number) => {
      if (needed.has(classIndex)) return false;
      const at = this.classDispatchedAt(classIndex);
      return at === undefined || now - at >= CLASS_IDLE_RETIRE_MS;
    };
    const idle = sql.exec<{ slot: number }>("SELECT slot FROM slots WHERE request_id IS NULL").toArray();
    const retired = idle.filter((row) => stale(classOfSlot(row.slot)));
    for (const row of retired) sql.exec("DELETE FROM slots WHERE slot = ? AND request_id IS NULL", row.slot);
    if (retired.length === 0) return;
    this.ctx.waitUntil(
      Promise.all(
        retired.map(async (row) => {
          const instance = instanceName(name, row.slot);
          const done = await instanceStub(this.env, instance)
            .retireIfIdle()
            .catch((error: unknown) => {
              console.warn("retiring an idle container of an unused size failed", instance, String(error));
              return false;
            });
          if (!done) console.warn("an idle container of an unused size stays until its idle end", instance);
        }),
      ),
    );
  }

  /** Adds one to a durable counter of this scheduler (see stats). */
  private count(key: CounterKey): void {
    this.settings.set(key, String(this.counted(key) + 1));
  }

  /** A durable counter's value (0 before its first count). */
  private counted(key: CounterKey): number {
    return Number(this.settings.get(key) ?? "0");
  }

  /**
   * Audits busy slots: frees a slot whose instance no longer runs its event (lost release), and
   * retries events waiting on the namespace's cap (lost wake).
   */
  override async alarm(): Promise<void> {
    const sql = this.ctx.storage.sql;
    const name = this.settings.get("name");
    const busy = sql
      .exec<{ slot: number; request_id: string; assigned_at: number }>(
        "SELECT slot, request_id, assigned_at FROM slots WHERE request_id IS NOT NULL",
      )
      .toArray();
    if (name) {
      for (const row of busy) {
        if (Date.now() - row.assigned_at < AUDIT_MIN_AGE_MS) continue;
        const instance = instanceStub(this.env, instanceName(name, row.slot));
        // An instance that does not answer still holds its event: only a clear answer frees the slot.
        const current = await instance.currentRequestId().catch(() => row.request_id);
        if (current !== row.request_id) await this.release(row.slot, row.request_id);
      }
    }
    this.pump();
    this.retireIdleClasses();
    // Paused: nothing is assigned, so nothing waits on the namespace's cap (resume pumps).
    const waiting = this.waitingOnQuota && this.pendingCount() > 0 && this.pausedAt() === null;
    if (waiting) await this.ctx.storage.setAlarm(Date.now() + QUOTA_RETRY_INTERVAL_MS);
    else if (this.busyCount() > 0) await this.ctx.storage.setAlarm(Date.now() + AUDIT_INTERVAL_MS);
  }

  /**
   * Assigns waiting events to slots up to the concurrency limit, then starts them; returns how many
   * (none while dispatch is paused).
   */
  private pump(): number {
    return this.pumpReleased(undefined, false).assigned;
  }

  /**
   * pump, for a released slot: when `handoff` names the slot and its lease token and the pump gives
   * the slot an event, that event takes the slot's busy lease over (no quota call; its row keeps the
   * token). It is started here, or, with `takeNext`, answered (`next`) for the releasing instance to
   * start. The other assignments start as in pump.
   */
  private pumpReleased(
    handoff: { slot: number; token: string } | undefined,
    takeNext: boolean,
  ): { assigned: number; next?: SlotStart } {
    const name = this.settings.get("name");
    if (!name || this.pausedAt() !== null) return { assigned: 0 };
    const { assignments, busy } = this.assign();
    const handed = handoff ? assignments.find((assignment) => assignment.slot === handoff.slot) : undefined;
    const others = handed ? assignments.filter((assignment) => assignment !== handed) : assignments;
    if (others.length > 0) this.ctx.waitUntil(this.startAssigned(name, others));
    if (busy > 0) this.ctx.waitUntil(this.ensureAlarmWithin(AUDIT_INTERVAL_MS));
    const assigned = assignments.length;
    if (!handed || !handoff) return { assigned };
    // The handed event runs under the slot's busy lease: the token stays (assign cleared it).
    this.setLeaseToken(handed, handoff.token);
    if (takeNext) return { assigned, next: this.slotStart(name, handed, handoff.token) };
    this.ctx.waitUntil(this.startOnInstance(name, handed, handoff.token));
    return { assigned };
  }

  /** Names the lease of the assignment's slot (its token), while the slot still holds that event. */
  private setLeaseToken(assignment: Assignment, token: string): void {
    this.ctx.storage.sql.exec(
      "UPDATE slots SET lease_token = ? WHERE slot = ? AND request_id = ?",
      token,
      assignment.slot,
      assignment.requestId,
    );
  }

  /** What the instance of an assignment is handed (runEvent, or a release's answer). */
  private slotStart(name: string, assignment: Assignment, leaseToken: string): SlotStart {
    return { requestId: assignment.requestId, schedulerName: name, slot: assignment.slot, leaseToken };
  }

  /**
   * Takes the namespace's leases for the assigned events in one call, starts those granted and
   * puts the others back at the front of the pending queue, their slots freed. An unreachable quota
   * object counts as a refusal (the events wait; the alarm retries): the cap is never skipped.
   */
  private async startAssigned(name: string, assignments: Assignment[]): Promise<void> {
    const wakesBefore = this.wakes;
    let granted: Set<string>;
    try {
      const answer = await this.quotaStub(name).acquire(
        name,
        assignments.map(({ requestId, slot }) => ({ requestId, slot })),
        parseNamespaceMaxContainers(this.env.NAMESPACE_MAX_CONTAINERS),
      );
      if (answer.error) console.warn("namespace quota refused a malformed acquire; events wait", name, answer.error);
      granted = new Set(answer.granted);
    } catch (error) {
      console.warn("namespace quota unreachable; events wait", name, String(error));
      granted = new Set();
    }
    const refused = assignments.filter((assignment) => !granted.has(assignment.requestId));
    this.waitingOnQuota = refused.length > 0;
    if (refused.length > 0) {
      this.requeue(refused);
      // A wake that arrived while the answer travelled found nothing to start: pump for it now.
      if (this.wakes !== wakesBefore) this.pump();
      await this.ensureAlarmWithin(QUOTA_RETRY_INTERVAL_MS);
    }
    const starting = assignments.filter((assignment) => granted.has(assignment.requestId));
    // The lease is busy with the event now: its name is the slot's lease token until the lease idles.
    for (const assignment of starting) this.setLeaseToken(assignment, assignment.requestId);
    await Promise.all(starting.map((assignment) => this.startOnInstance(name, assignment, assignment.requestId)));
  }

  /**
   * Synchronous: frees the slots of events the namespace's cap refused and puts the events back
   * under their original sequence numbers, so they keep their order ahead of later arrivals.
   */
  private requeue(refused: Assignment[]): void {
    const sql = this.ctx.storage.sql;
    for (const assignment of refused) {
      sql.exec(
        "UPDATE slots SET request_id = NULL, assigned_at = NULL WHERE slot = ? AND request_id = ?",
        assignment.slot,
        assignment.requestId,
      );
      // Assigned again meanwhile (a redelivery): that assignment owns it now.
      if (this.holds(assignment.requestId)) continue;
      // With its class: the slot was chosen for its memorySize, and so will the next one be.
      sql.exec(
        "INSERT OR IGNORE INTO pending (seq, request_id, enqueued_at, size_class) VALUES (?, ?, ?, ?)",
        assignment.seq,
        assignment.requestId,
        assignment.enqueuedAt,
        assignment.sizeClass,
      );
    }
  }

  /**
   * Marks the slot's lease idle unless the slot runs an event again; a failure is logged (the lease
   * audit idles it once the instance reads idle).
   */
  private async idleLease(slot: number, requestId: string): Promise<void> {
    const name = this.settings.get("name");
    if (!name) return;
    const sql = this.ctx.storage.sql;
    const row = sql
      .exec<{ request_id: string | null; lease_token: string | null }>(
        "SELECT request_id, lease_token FROM slots WHERE slot = ?",
        slot,
      )
      .toArray()[0];
    if (row?.request_id) return;
    // The lease is busy under its token (the run's first event); a row without one (older, or
    // retired meanwhile) names the event itself, as before the hand-over.
    const token = row?.lease_token ?? requestId;
    if (row) sql.exec("UPDATE slots SET lease_token = NULL WHERE slot = ? AND request_id IS NULL", slot);
    await this.quotaStub(name)
      .markIdle(name, slot, token)
      .catch((error: unknown) => console.warn("idling the namespace lease failed", requestId, String(error)));
  }

  /** Synchronous (no await): no other call can interleave between choosing and recording. */
  private assign(): { assignments: Assignment[]; busy: number } {
    const sql = this.ctx.storage.sql;
    const limit = this.maxConcurrency();
    const assignments: Assignment[] = [];
    let busy = this.busyCount();
    while (busy < limit) {
      const next = sql
        .exec<{ seq: number; request_id: string; enqueued_at: number; size_class: number | null }>(
          "SELECT seq, request_id, enqueued_at, size_class FROM pending ORDER BY seq LIMIT 1",
        )
        .toArray()[0];
      if (!next) break;
      // The event's container class: its slots are numbered from slotInClass(class, 0).
      const sizeClass = this.classOfRow(next.size_class);
      const first = slotInClass(sizeClass, 0);
      // Warm first: the idle slot of its class used most recently still has a running container.
      const idle = sql
        .exec<{ slot: number }>(
          "SELECT slot FROM slots WHERE request_id IS NULL AND slot >= ? AND slot < ? ORDER BY last_used_at DESC LIMIT 1",
          first,
          first + SLOT_CLASS_STRIDE,
        )
        .toArray()[0];
      const slot = idle?.slot ?? this.newSlotNumber(first);
      const now = Date.now();
      this.settings.set(`${CLASS_DISPATCHED_AT_KEY}${sizeClass}`, String(now));
      // The slot's lease token is the acquire's to set (startAssigned); a hand-over puts it back
      // at once (pumpReleased).
      sql.exec(
        `INSERT INTO slots (slot, request_id, assigned_at, last_used_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (slot) DO UPDATE SET request_id = excluded.request_id, assigned_at = excluded.assigned_at,
           lease_token = NULL`,
        slot,
        next.request_id,
        now,
        now,
      );
      sql.exec("DELETE FROM pending WHERE seq = ?", next.seq);
      assignments.push({ slot, requestId: next.request_id, sizeClass, seq: next.seq, enqueuedAt: next.enqueued_at });
      busy += 1;
    }
    return { assignments, busy };
  }

  /** True when a slot holds the event (assigned or running). */
  private holds(requestId: string): boolean {
    return this.ctx.storage.sql.exec("SELECT 1 FROM slots WHERE request_id = ?", requestId).toArray().length > 0;
  }

  private pendingCount(): number {
    return Number(this.ctx.storage.sql.exec("SELECT COUNT(*) AS n FROM pending").one().n);
  }

  private busyCount(): number {
    return Number(this.ctx.storage.sql.exec("SELECT COUNT(*) AS n FROM slots WHERE request_id IS NOT NULL").one().n);
  }

  /**
   * The lowest slot number not in use of the container class whose slots start at `first` (numbers
   * freed by retirement are taken again, so they never creep towards the next class's range). A
   * class never holds more slots than the function's concurrency (≤ 1000 ≪ SLOT_CLASS_STRIDE).
   */
  private newSlotNumber(first: number): number {
    const used = this.ctx.storage.sql
      .exec<{ slot: number }>(
        "SELECT slot FROM slots WHERE slot >= ? AND slot < ? ORDER BY slot",
        first,
        first + SLOT_CLASS_STRIDE,
      )
      .toArray();
    let next = first;
    for (const row of used) {
      if (row.slot !== next) break;
      next += 1;
    }
    if (next >= first + SLOT_CLASS_STRIDE) throw new Error(`no free slot number in the class starting at ${first}`);
    return next;
  }

  private async startOnInstance(name: string, assignment: Assignment, leaseToken: string): Promise<void> {
    const stillAssigned = this.ctx.storage.sql
      .exec("SELECT 1 FROM slots WHERE slot = ? AND request_id = ?", assignment.slot, assignment.requestId)
      .toArray();
    if (stillAssigned.length === 0) {
      // The slot was freed while the lease was asked for (audit): idle the lease, queue again.
      this.requeue([assignment]);
      await this.idleLease(assignment.slot, assignment.requestId);
      this.pump();
      return;
    }
    const instance = instanceName(name, assignment.slot);
    const start = this.slotStart(name, assignment, leaseToken);
    try {
      // A refused claim (a duplicate of an ended or claimed event) comes back as the instance's
      // release of the slot, which counts it (SlotEnding.claimRefused).
      if (testStarter) await testStarter(this.env, instance, start);
      else await instanceStub(this.env, instance).runEvent(start);
    } catch (error) {
      // The event is still queued in its own object; its watchdog dispatches it again.
      console.warn("instance did not take the event", assignment.requestId, String(error));
      await this.release(assignment.slot, assignment.requestId);
    }
  }

  /** Sets the alarm to fire within delayMs, never pushing an earlier one later. */
  private async ensureAlarmWithin(delayMs: number): Promise<void> {
    const at = Date.now() + delayMs;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }

  private quotaStub(schedulerName: string) {
    const namespace = namespaceOfScheduler(schedulerName);
    return namespaceQuotaStub(this.env, namespace);
  }

  /** When dispatch was paused (epoch ms), or null while it runs. */
  private pausedAt(): number | null {
    const stored = this.settings.get(PAUSED_AT_KEY);
    return stored === undefined ? null : Number(stored);
  }

  /**
   * The slots this scheduler may run at once: the function's maxConcurrency, never above the
   * platform's FUNCTION_MAX_CONCURRENCY (it may have been lowered), and of a sharded function this
   * shard's share of it (shared/objects.ts shardConcurrency).
   */
  private maxConcurrency(): number {
    const configured = Number(this.settings.get("maxConcurrency") ?? "1");
    const limit = Math.min(configured, functionMaxConcurrency(this.env));
    // The shard count is the events' (decided by their snapshot's maxConcurrency, eventSchedulerName).
    const { shard } = parseSchedulerShard(this.settings.get("name") ?? "");
    return shardConcurrency(limit, shard, schedulerShardCount(configured));
  }
}
