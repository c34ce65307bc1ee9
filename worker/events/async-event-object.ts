// The event's Durable Object: its RPC methods, its alarm and the application of state-machine
// commands. Storage, the index row, the log and the deadlines each live in their own module
// (event-storage, event-index-duty, event-log, event-deadlines).
import { DurableObject } from "cloudflare:workers";
import { indexDatabaseOf } from "../db/index-databases";
import { type ContainerSize, containerSizes, eventClassOf, sizeForMemory } from "../functions/instance-types";
import { logLimitBytesOf } from "../functions/model";
import { installCostCounters } from "../shared/cost-counters";
import { type RpcResult, rpcFail, rpcOk } from "../shared/errors";
import {
  classOfSlot,
  deliveryStub,
  eventSchedulerName,
  IMAGE_CLASS_INDEX,
  instanceStub,
  instanceTypeOfName,
  parseInstanceName,
  parseSchedulerShard,
  schedulerName,
  schedulerStub,
} from "../shared/objects";
import { deliveryHandoffOf } from "./delivery";
import { type DispatchMessage, dispatchMessageOf } from "./dispatch-message";
import { sendDispatch, sendIndexRow } from "./dispatch-send";
import {
  type Deadline,
  DISPATCH_WATCHDOG_MS,
  MAX_DISPATCH_WATCHDOG_MS,
  nextDeadline,
  nextWatchdogDelay,
  WATCHDOG_HELD_RECHECK_MS,
} from "./event-deadlines";
import { EventDeliveryDuty } from "./event-delivery-duty";
import { type EventIdentity, eventIdentityOf } from "./event-identity";
import { EventIndexDuty } from "./event-index-duty";
import { EventLog, type EventWithLog, eventWithLog, PLATFORM_LOG_MARGIN_CHARS } from "./event-log";
import type { LogFilter, LogOwner, LogPage, LogRecord, LogStats } from "./event-log-store";
import { NamespaceLogUsage, namespaceLogLimitBytes } from "./event-log-usage";
import {
  type EventCommand,
  type EventState,
  type ExecutionOutcome,
  isTerminal,
  type PublicEvent,
  publicEvent,
  publicStatus,
  recordReplay,
  recordSignalDelivered,
  recordTimeline,
  transition,
} from "./event-machine";
import {
  type ProgressReport,
  progressIndexDueAt,
  progressStoreDelay,
  publicProgress,
  withProgress,
} from "./event-progress";
import type { ClaimResult, EventRefusalCode, ReportResult, WrongSizeRefusal } from "./event-results";
import { deleteIndexRowOf } from "./event-retention";
import { EventRetentionDuty } from "./event-retention-duty";
import { EventStorage } from "./event-storage";
import type { EventTags } from "./event-tags";
import { newTimelineEntries, publicTimelineEntry, type TimelineEntry, timelineEntry } from "./event-timeline";
import { LeasedPlaces } from "./leased-places";
import { MAX_FOLLOWERS_PER_EVENT } from "./log-followers";
import { logTail } from "./log-tail";

export {
  DISPATCH_WATCHDOG_MS,
  EVENT_RETENTION_MS,
  GRACEFUL_TERMINATE_TIMEOUT_MS,
  MAX_GRACE_SECONDS,
  MIN_GRACE_SECONDS,
  START_TIMEOUT_MS,
  TIMEOUT_BACKSTOP_GRACE_MS,
} from "./event-deadlines";
export { type EventWithLog, FUNCTION_LOG_RESULT_BYTES, MAX_LOG_PAGE_CHARS, MAX_LOG_READ } from "./event-log";
export type { ClaimedEvent, ClaimResult, EventRefusalCode, ReportResult, WrongSizeRefusal } from "./event-results";
export { MAX_INLINE_RESULT_BYTES } from "./event-storage";

/** What invokeAsync (invoke.ts) hands to a new event: its identity, function snapshot and payload. */
export type AcceptRequest = EventIdentity &
  Pick<EventState, "function" | "invokedAt" | "replayOf" | "tags"> & {
    /** The event, as JSON text. */
    payload: string;
  };

/**
 * Longest wait of one awaitEnd call: a synchronous invocation (invoke-sync.ts) calls it in a loop
 * until its own deadline, so an object restart or a dropped call costs at most one slice.
 */
export const MAX_AWAIT_END_MS = 30_000;
/**
 * Most callers waiting at once for one event's end (awaitEnd): every caller of a duplicate
 * idempotency key waits on the key's one event. Past it, awaitEnd refuses a new caller with
 * RATE_LIMITED (invoke-sync.ts answers 429 with Retry-After and the RequestId to poll).
 */
export const MAX_END_WAITERS_PER_EVENT = 64;
/**
 * How long a caller keeps its place among the event's waiters after its awaitEnd call returns, for
 * its next call (the sync loop calls again at once): a caller that does not come back (it gave up,
 * its connection dropped) loses its place after this. A call's place is also leased only until its
 * slice's end plus this, so a wait whose timer never fires cannot hold a place forever.
 */
export const END_WAITER_LEASE_MS = 5_000;
/** Longest waiter id awaitEnd keeps (a longer or missing one makes the call a waiter of its own). */
export const MAX_END_WAITER_ID_CHARS = 64;

/** What awaitEnd answers: the event as it is once it ended, or when the wait ran out. */
export interface AwaitedEnd {
  ended: boolean;
  /** The function runs with async execution on: its events are never waited for (SCF answers at once). */
  asyncRunEnable: boolean;
  /** The timeout of the function's snapshot the event runs with. */
  timeoutSeconds: number;
  event: PublicEvent;
  /** The last bytes of the log (an ended event, when asked for), else null. */
  logTail: string | null;
}

/** An event's payload as it was sent (JSON text), with the event's identity and its tags (a replay keeps them). */
export type EventPayload = EventIdentity & { payload: string; tags?: EventTags };

/** A replay recorded on its original: how many it has, and whether this one is in its list. */
export interface ReplayRecord {
  replayCount: number;
  listed: boolean;
}

/** True when an instance id names a slot of this event's function (shared/objects.ts instanceName). */
export function isInstanceOfFunction(instanceId: string, namespace: string, functionName: string): boolean {
  const owner = parseInstanceName(instanceId)?.schedulerName;
  // Any shard of the function's scheduler (shared/objects.ts eventSchedulerName).
  return owner !== undefined && parseSchedulerShard(owner).functionScheduler === schedulerName(namespace, functionName);
}

/**
 * The refusal of a claim by an instance whose container class is not the one `memoryMb` runs in
 * (see WrongSizeRefusal), or undefined when it is.
 */
export function wrongSizeRefusal(
  instanceId: string,
  memoryMb: number,
  sizes: ContainerSize[],
  image = false,
): WrongSizeRefusal | undefined {
  const slot = parseInstanceName(instanceId)?.slot;
  if (slot === undefined) return undefined;
  if (eventClassOf(memoryMb, image, sizes) === classOfSlot(slot)) return undefined;
  const needed = image ? "the image class" : sizeForMemory(memoryMb, sizes).instanceType;
  return {
    ok: false,
    code: "WRONG_SIZE",
    message: `memorySize ${memoryMb} MB${image ? " (an image function)" : ""} runs in ${needed}, not in ${instanceTypeOfName(instanceId)} (${instanceId})`,
    memoryMb,
    ...(image ? { image: true } : {}),
  };
}

/** The refusal every read of an event that does not exist (or was deleted) answers. */
function eventNotFound<T>(): RpcResult<T> {
  return rpcFail("EVENT_NOT_FOUND", "event not found");
}

/** One event's state machine: the source of truth for one RequestId. */
export class AsyncEventObject extends DurableObject<Env> {
  private state: EventState | undefined;
  private readonly storage: EventStorage;
  private readonly index: EventIndexDuty;
  private readonly delivery: EventDeliveryDuty;
  private readonly retention: EventRetentionDuty;
  private readonly log: EventLog;
  /**
   * The callers waiting for the end, by waiter id, each with its lease (in memory: a restart ends
   * their slice, the caller calls again), and the wake of each call now waiting.
   */
  private readonly endWaiters = new LeasedPlaces(MAX_END_WAITERS_PER_EVENT);
  private readonly endWakes = new Map<string, () => void>();
  /**
   * Progress coalescing (see reportProgress), in memory: when a report was last stored, whether a
   * newer one is held in this.state only, and the timer that stores it.
   */
  private progressStoredAt: number | undefined;
  private progressHeld = false;
  private progressTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Diagnostics only (DIAGNOSTICS_ENABLED): the bench's per-event cost counters; else a no-op.
    installCostCounters(env, ctx.storage);
    this.log = new EventLog(
      ctx.storage.sql,
      env.LOG_BUCKET,
      () => this.logOwner(),
      new NamespaceLogUsage(env.DB, namespaceLogLimitBytes(env.NAMESPACE_LOG_LIMIT_BYTES)),
    );
    this.storage = new EventStorage(ctx.storage);
    this.index = new EventIndexDuty(
      this.storage,
      (namespace) => indexDatabaseOf(env, namespace),
      () => this.armAlarm(),
      (entry) => sendIndexRow(this.env, entry),
    );
    this.delivery = new EventDeliveryDuty(this.storage, env, () => this.armAlarm());
    this.retention = new EventRetentionDuty(this.storage, env);
    ctx.blockConcurrencyWhile(async () => {
      const loaded = await this.storage.load();
      this.state = loaded.state;
      this.retention.restore(loaded.retention);
      this.index.restore(loaded.pendingIndex);
      this.delivery.restore(loaded.pendingDelivery);
    });
  }

  /**
   * Persists a new event, arms the dispatch watchdog, then enqueues its dispatch. Repeating the call
   * for the same RequestId changes nothing.
   */
  async accept(request: AcceptRequest): Promise<{ requestId: string }> {
    if (this.state) return { requestId: this.state.requestId };
    const state: EventState = {
      ...eventIdentityOf(request),
      function: request.function,
      phase: "queued",
      version: 1,
      invokedAt: request.invokedAt,
      ...(request.replayOf !== undefined ? { replayOf: request.replayOf } : {}),
      ...(request.tags !== undefined && Object.keys(request.tags).length > 0 ? { tags: request.tags } : {}),
      timeline: [
        timelineEntry("accepted", request.invokedAt),
        timelineEntry("queued", Math.max(request.invokedAt, Date.now()), "dispatch enqueued"),
      ],
    };
    this.state = state;
    // Not awaited (see storeAccepted): the RequestId never leaves before the event is stored, and
    // were the write to fail, the caller gets an error and nothing is dispatched.
    this.storage.storeAccepted(state, request.payload, Date.now() + DISPATCH_WATCHDOG_MS);
    try {
      await sendDispatch(this.env, dispatchMessageOf(state));
    } catch (error) {
      // The watchdog alarm enqueues again: the event is accepted either way.
      console.warn("dispatch enqueue failed; the watchdog will retry", request.requestId, String(error));
    }
    return { requestId: state.requestId };
  }

  /**
   * The instance takes the event (only one instance ever can). The instance must be a slot of the
   * event's own function (see isInstanceOfFunction); any other is refused and nothing changes.
   */
  async claim(instanceId: string): Promise<ClaimResult> {
    const state = this.state;
    if (!state) return rpcFail("UNKNOWN_EVENT", "unknown event");
    if (!isInstanceOfFunction(instanceId, state.namespace, state.functionName)) {
      return rpcFail("FOREIGN_INSTANCE", `instance ${instanceId} does not belong to function ${state.functionName}`);
    }
    // A new claim only from a slot of the container class the event's memorySize runs in.
    if (state.phase === "queued") {
      const wrongSize = wrongSizeRefusal(
        instanceId,
        state.function.memoryMb,
        containerSizes(this.env),
        state.function.image !== undefined,
      );
      if (wrongSize) return wrongSize;
    }
    // The image class picks the Cloudflare type per start: the event records its memorySize's.
    const slot = parseInstanceName(instanceId)?.slot;
    const instanceType =
      slot !== undefined && classOfSlot(slot) === IMAGE_CLASS_INDEX
        ? sizeForMemory(state.function.memoryMb, containerSizes(this.env)).instanceType
        : undefined;
    const applied = await this.apply({
      type: "claim",
      instanceId,
      at: Date.now(),
      ...(instanceType !== undefined ? { instanceType } : {}),
    });
    if (!applied.ok) return applied;
    const payload = (await this.storage.payload()) ?? "{}";
    return rpcOk({
      payload,
      function: state.function,
      requestId: state.requestId,
      namespace: state.namespace,
      qualifier: state.qualifier,
    });
  }

  /**
   * The claimant is getting its container (cold: starting a new one; warm: reusing its idle one),
   * recorded on the timeline at `at`; a repeat, another instance's report or an event past its
   * start changes nothing.
   */
  async markContainer(instanceId: string, cold: boolean, at: number): Promise<void> {
    const state = this.state;
    if (state?.phase !== "starting" || state.instanceId !== instanceId) return;
    const detail = cold ? "new container" : "idle container reused";
    await this.recordTimeline([timelineEntry(cold ? "container-starting" : "container-warm", at, detail)]);
  }

  /** The handler has started in the instance's container. */
  async markStarted(instanceId: string, cold: boolean, containerId: string, startedAt: number): Promise<ReportResult> {
    // The instance's clock starts the timeout, so the event reports the same start.
    return this.apply({ type: "started", instanceId, cold, containerId, at: startedAt });
  }

  /** The execution ended; repeated reports are ignored. */
  async complete(
    instanceId: string,
    outcome: ExecutionOutcome,
    memoryUsageKb?: number,
    finalLogs: LogRecord[] = [],
  ): Promise<ReportResult> {
    // Only the claimant reports: another instance's report (and its log lines) changes nothing.
    if (this.state?.instanceId === undefined || this.state.instanceId !== instanceId) {
      return rpcFail("WRONG_INSTANCE", `event belongs to ${this.state?.instanceId ?? "no instance"}`);
    }
    // The last log lines travel with the outcome: one call for a short execution.
    if (finalLogs.length > 0 && !isTerminal(this.state.phase)) await this.appendLogs(finalLogs, instanceId);
    // The end's index row is stored as owed with the ending state and written after this answer
    // (see apply's `owedAfterAnswer`): the instance does not wait on D1.
    return this.apply(
      {
        type: "complete",
        instanceId,
        outcome,
        at: Date.now(),
        ...(memoryUsageKb !== undefined ? { memoryUsageKb } : {}),
      },
      true,
    );
  }

  /**
   * Appends captured log lines (repeats are ignored) and sends them to live followers. When the
   * sending instance is given, lines from any instance but the claimant are ignored.
   */
  async appendLogs(records: LogRecord[], instanceId?: string): Promise<void> {
    if (!this.state) return;
    if (instanceId !== undefined && instanceId !== this.state.instanceId) return;
    await this.log.appendCaptured(records);
  }

  /**
   * The handler's progress, relayed by the claimant instance (see withProgress: ignored unless the
   * event runs on that instance and the report is newer). Kept as the latest (its state version
   * grows), sent live to the log followers, and owed to the index at most every
   * PROGRESS_INDEX_INTERVAL_MS (progressIndexDueAt): the owed write is made by the alarm, never here.
   * The instance's rate is not trusted: a report within MIN_PROGRESS_INTERVAL_MS of the last stored
   * one is held in memory only (the latest winning; the status shows it at once) and stored, sent
   * and owed once the interval has passed (progressStoreDelay), so a flood of reports costs at most
   * one storage write per interval. The end (apply) stores the state with the held report; the
   * alarm stores it before any index write. A restart may lose a held report: an intermediate one
   * only, since the end never is.
   */
  async reportProgress(instanceId: string, report: ProgressReport): Promise<void> {
    const state = this.state;
    if (!state) return;
    const now = Date.now();
    const next = withProgress(state, instanceId, report, now);
    if (!next) return;
    this.state = next;
    const delay = progressStoreDelay(now, this.progressStoredAt);
    if (delay === 0) return this.storeProgress(next);
    this.progressHeld = true;
    this.progressTimer ??= setTimeout(() => {
      this.progressTimer = undefined;
      this.storeHeldProgress().catch((error: unknown) =>
        console.warn("storing the held progress failed", next.requestId, String(error)),
      );
    }, delay);
  }

  /** Stores the state with its progress (the index write it owes with it), then sends it live. */
  private async storeProgress(state: EventState): Promise<void> {
    this.progressStoredAt = Date.now();
    this.progressHeld = false;
    const owed = this.index.oweAt(state.version, progressIndexDueAt(Date.now(), this.index.retryAt));
    await this.storage.saveState(state, owed);
    await this.armAlarm();
    const progress = publicProgress(state.progress);
    if (progress) this.log.publishProgress(progress);
  }

  /**
   * Stores a progress report held in memory (see reportProgress). An event no longer running has
   * stored it already: leaving running is a transition, stored with the state that holds it.
   */
  private async storeHeldProgress(): Promise<void> {
    const state = this.state;
    if (!this.progressHeld) return;
    if (state?.phase !== "running") {
      this.progressHeld = false;
      return;
    }
    await this.storeProgress(state);
  }

  /** Log lines with seq > after that pass the filter, oldest first (see EventLog.page). */
  async logs(after: number, limit: number, filter?: LogFilter): Promise<RpcResult<LogPage>> {
    if (!this.state) return eventNotFound();
    return rpcOk(await this.log.page(after, limit, filter));
  }

  /** Where the log is stored and how much (diagnostics and the bench). */
  async logStats(): Promise<RpcResult<LogStats>> {
    if (!this.state) return eventNotFound();
    return rpcOk(this.log.stats());
  }

  /** The whole stored log as text, one line per stored line (see EventLog.download). */
  async downloadLog(filter?: LogFilter): Promise<RpcResult<ReadableStream<Uint8Array>>> {
    if (!this.state) return eventNotFound();
    return rpcOk(this.log.download(filter));
  }

  /**
   * Follows the log live as Server-Sent Events: every line after `after`, then new lines as they
   * are captured, then an `end` event with the final status.
   */
  async followLogs(
    start: { after: number } | { tail: number },
    filter?: LogFilter,
  ): Promise<RpcResult<ReadableStream<Uint8Array>>> {
    const state = this.state;
    if (!state) return eventNotFound();
    // `tail`: the last N stored lines (by seq), then live. The backlog is read page by page as the
    // client reads (see LogFollowers).
    const after = "after" in start ? start.after : Math.max(0, this.log.lastSeq() - start.tail);
    const stream = this.log.follow(after, state, filter);
    if (!stream) {
      return rpcFail(
        "TOO_MANY_FOLLOWERS",
        `this event already has ${MAX_FOLLOWERS_PER_EVENT} live log followers, the most allowed; close one or page the log with GET /v1/events/{requestId}/logs`,
      );
    }
    return rpcOk(stream);
  }

  /**
   * Terminates the event. Forced (default): ends it ABORTED and destroys its container. Graceful:
   * sends SIGTERM to the running handler, whose end then makes the event ABORTED (forced after
   * graceMs, by default GRACEFUL_TERMINATE_TIMEOUT_MS). A queued or starting event is aborted
   * without running.
   */
  async terminate(graceful: boolean, graceMs?: number): Promise<RpcResult<PublicEvent>> {
    const before = this.state;
    if (!before) return eventNotFound();
    const applied = await this.apply({
      type: "terminate",
      graceful,
      at: Date.now(),
      ...(graceful && graceMs !== undefined ? { graceMs } : {}),
    });
    if (!applied.ok) {
      return rpcFail(applied.code === "TERMINATING" ? "EVENT_TERMINATING" : "EVENT_ALREADY_ENDED", applied.message);
    }
    const after = this.state ?? before;
    const instanceId = before.instanceId;
    if (before.phase === "queued" && isTerminal(after.phase)) {
      // Ended before it was assigned: it leaves its scheduler's pending queue (best effort; the
      // claim refuses it should it be assigned still).
      const shard = eventSchedulerName(
        before.namespace,
        before.functionName,
        before.requestId,
        before.function.maxConcurrency,
      );
      await schedulerStub(this.env, shard)
        .forget(before.requestId)
        .catch((error: unknown) =>
          console.warn("scheduler did not forget the ended event", before.requestId, String(error)),
        );
    }
    if (instanceId) {
      const instance = instanceStub(this.env, instanceId);
      if (isTerminal(after.phase)) await instance.repossess(before.requestId);
      else if ((await instance.signalTerminate(before.requestId)).delivered) {
        await this.markSignalDelivered(Date.now());
      }
    }
    return rpcOk(publicEvent(this.state ?? after));
  }

  /**
   * The claimant is about to send its handler the deadline warning's SIGTERM, `secondsBefore` the
   * timeout: logged as a platform line while the event runs. Another instance's call, or one for an
   * event no longer running, changes nothing.
   */
  async noteDeadlineWarning(instanceId: string, secondsBefore: number, at: number): Promise<void> {
    const state = this.state;
    if (state?.phase !== "running" || state.instanceId !== instanceId) return;
    this.log.platformNote(
      `[PLATFORM] Deadline warning: SIGTERM sent, ${secondsBefore} s before the timeout (the handler runs on until it returns or the timeout ends it)`,
      at,
    );
    await this.recordTimeline([
      timelineEntry("deadline-warning", at, `deadline warning sent: SIGTERM ${secondsBefore} s before the timeout`),
    ]);
  }

  /** Records when the graceful terminate's SIGTERM reached the handler (see recordSignalDelivered). */
  private async markSignalDelivered(at: number): Promise<void> {
    const state = this.state;
    const next = state ? recordSignalDelivered(state, at) : undefined;
    if (!next) return;
    this.state = next;
    await this.storage.saveState(next);
    // Its timeline entry, live (followers of an ended event have had its end).
    if (state && !isTerminal(state.phase)) {
      this.log.publishTimeline(newTimelineEntries(state.timeline, next.timeline).map(publicTimelineEntry));
    }
  }

  /** The public view with the first lines of the log as one text (SCF's GetFunctionLogs entries). */
  async viewWithLog(maxChars: number): Promise<RpcResult<EventWithLog>> {
    if (!this.state) return eventNotFound();
    const log = await this.log.excerpt(maxChars);
    if (!this.state) return eventNotFound();
    return rpcOk(eventWithLog(this.state, log));
  }

  /**
   * The payload as it was sent (the exact JSON text) with the event's identity, readable as long as
   * the event is; EVENT_NOT_FOUND otherwise.
   */
  async payload(): Promise<RpcResult<EventPayload>> {
    const state = this.state;
    if (!state) return eventNotFound();
    // Stored with the state in one write at acceptance; "{}" only for a state stored without one.
    const payload = (await this.storage.payload()) ?? "{}";
    return rpcOk({ ...eventIdentityOf(state), payload, ...(state.tags !== undefined ? { tags: state.tags } : {}) });
  }

  /**
   * Records a replay of this event (see recordReplay in event-machine.ts: idempotent for a listed
   * replay, at most MAX_REPLAYS_LISTED listed, replayCount counts them all). The event may be in
   * any phase; EVENT_NOT_FOUND when it no longer exists.
   */
  async recordReplay(replayRequestId: string): Promise<RpcResult<ReplayRecord>> {
    const state = this.state;
    if (!state) return eventNotFound();
    const next = recordReplay(state, replayRequestId);
    if (next) {
      this.state = next;
      await this.storage.saveState(next);
    }
    const recorded = next ?? state;
    return rpcOk({
      replayCount: recorded.replayCount ?? 0,
      listed: recorded.replays?.includes(replayRequestId) ?? false,
    });
  }

  /**
   * Waits until the event ends or `waitMs` (at most MAX_AWAIT_END_MS) passes, then answers the
   * event as it is, with the last `tailBytes` of its log once it ended. An event of a function with
   * async execution on is answered at once (nobody waits for those). EVENT_NOT_FOUND when unknown.
   * `waiterId` names the caller across its calls: it keeps its place among the event's waiters
   * from one call to the next (END_WAITER_LEASE_MS); a new caller past MAX_END_WAITERS_PER_EVENT
   * is refused with RATE_LIMITED and waits for nothing.
   */
  async awaitEnd(waitMs: number, tailBytes = 0, waiterId?: string): Promise<RpcResult<AwaitedEnd>> {
    const before = this.state;
    if (!before) return eventNotFound();
    const waiter =
      typeof waiterId === "string" && waiterId.length > 0 && waiterId.length <= MAX_END_WAITER_ID_CHARS
        ? waiterId
        : crypto.randomUUID();
    const waits = !isTerminal(before.phase) && !before.function.asyncRunEnable;
    if (waits) {
      const slice = Math.min(Math.max(0, Number.isFinite(waitMs) ? waitMs : 0), MAX_AWAIT_END_MS);
      const now = Date.now();
      if (!this.endWaiters.hold(waiter, now + slice + END_WAITER_LEASE_MS, now)) {
        return rpcFail(
          "RATE_LIMITED",
          `event ${before.requestId} already has ${MAX_END_WAITERS_PER_EVENT} callers waiting for its end`,
        );
      }
      this.forgetLapsedWakes(now);
      // The same caller calling again while its previous call still waits (a retry after a dropped
      // connection): the previous call answers now, its caller is gone.
      this.endWakes.get(waiter)?.();
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          if (this.endWakes.get(waiter) === wake) this.endWakes.delete(waiter);
          resolve();
        };
        const timer = setTimeout(wake, slice);
        this.endWakes.set(waiter, wake);
      });
    }
    const state = this.state;
    const ended = state === undefined || isTerminal(state.phase);
    // A caller that got the end (or the event is gone) does not call again: its place is freed now;
    // one that goes on keeps it until its next call.
    if (ended) this.endWaiters.release(waiter);
    else if (waits) this.endWaiters.hold(waiter, Date.now() + END_WAITER_LEASE_MS, Date.now());
    if (!state) return eventNotFound();
    const tail =
      ended && tailBytes > 0
        ? await logTail((after, limit) => this.log.page(after, limit), this.log.lastSeq(), tailBytes)
        : null;
    return rpcOk({
      ended,
      asyncRunEnable: state.function.asyncRunEnable,
      timeoutSeconds: state.function.timeoutSeconds,
      event: publicEvent(state),
      logTail: tail,
    });
  }

  /** Wakes every awaitEnd call (the event ended, or is gone). */
  private wakeEndWaiters(): void {
    for (const wake of [...this.endWakes.values()]) wake();
  }

  /** Drops the wakes of calls whose place lapsed (their timer never fired): nothing waits on them. */
  private forgetLapsedWakes(now: number): void {
    for (const waiter of [...this.endWakes.keys()]) {
      if (!this.endWaiters.holds(waiter, now)) this.endWakes.delete(waiter);
    }
  }

  /**
   * The public view, or EVENT_NOT_FOUND (never existed, or deleted its namespace's retention, 72 h
   * by default, after it ended). A local
   * read: queuedReason is null here; GET of the event adds it after its access check
   * (queued-reason.ts withQueuedReason).
   */
  async view(): Promise<RpcResult<PublicEvent>> {
    const state = this.state;
    if (!state) return eventNotFound();
    return rpcOk(publicEvent(state));
  }

  /**
   * Diagnostics only (the redeliver route): enqueues this event's own dispatch message again, as
   * at-least-once delivery may, whatever its phase. Changes nothing here: the consumers must absorb
   * the copy. Answers the message sent.
   */
  async redispatch(): Promise<RpcResult<DispatchMessage>> {
    const state = this.state;
    if (!state) return eventNotFound();
    const message = dispatchMessageOf(state);
    await sendDispatch(this.env, message);
    return rpcOk(message);
  }

  /**
   * Diagnostics only (the expire route): an ended event's retention is due now, whatever its
   * namespace's setting; its alarm runs at once (archive, then deletion). False when the event is
   * unknown or has not ended.
   */
  async expireNow(): Promise<boolean> {
    const state = this.state;
    if (!state || !isTerminal(state.phase)) return false;
    await this.retention.force(Date.now());
    await this.alarm();
    return true;
  }

  /** The namespace of the event, or undefined when there is no such event. */
  async namespaceOf(): Promise<string | undefined> {
    return this.state?.namespace;
  }

  /**
   * The index may lack this event's row (the dispatch consumer's write of it failed): the event
   * takes the write over, and its alarm retries it until D1 has the row. True when the event
   * exists (an unknown or expired event owes no row).
   */
  async owesIndexRow(): Promise<boolean> {
    const state = this.state;
    if (!state) return false;
    await this.index.takeOver(state);
    return true;
  }

  /**
   * Deadlines (see nextDeadline: dispatch watchdog, start and timeout backstops, the forced stop
   * after a graceful terminate, retention) and the retry of an owed index write, multiplexed on one
   * alarm set to the earliest of them. A deadline is acted on only once due, since the alarm may
   * wake for the index.
   */
  override async alarm(): Promise<void> {
    // A held progress report is stored first: the index never gets a version the storage lacks.
    await this.storeHeldProgress();
    // An owed index write is tried whenever the alarm runs (it is due, or the alarm woke anyway).
    if (this.index.owed) await this.index.flush(this.state);
    // An owed delivery handoff likewise.
    if (this.delivery.owed) await this.delivery.flush(this.state);
    const state = this.state;
    if (!state) return;
    const now = Date.now();
    const deadline = await this.deadlineOf(state, now);
    if (now < deadline.at) return this.armAlarm();
    switch (deadline.kind) {
      case "dispatch-watchdog": {
        // Held in its paused scheduler's pending queue: nothing is lost, so nothing is sent; looked
        // at again after WATCHDOG_HELD_RECHECK_MS. Dispatch running, or an unanswered ask: it sends.
        const shard = eventSchedulerName(
          state.namespace,
          state.functionName,
          state.requestId,
          state.function.maxConcurrency,
        );
        const held = await schedulerStub(this.env, shard)
          .holdsPending(state.requestId)
          .catch(() => false);
        if (held) {
          await this.storage.scheduleWatchdog(MAX_DISPATCH_WATCHDOG_MS, now + WATCHDOG_HELD_RECHECK_MS);
          return this.armAlarm();
        }
        // Dispatch was lost or is waiting for capacity: enqueue again (consumers are idempotent).
        const delay = nextWatchdogDelay(await this.storage.watchdogDelay());
        await this.storage.scheduleWatchdog(delay, now + delay);
        await this.armAlarm();
        await sendDispatch(this.env, dispatchMessageOf(state));
        if (this.state?.phase === "queued") {
          await this.recordTimeline([timelineEntry("queued", Date.now(), "dispatched again by the watchdog")]);
        }
        return;
      }
      case "start-backstop":
        return this.endByPlatform({ kind: "crashed", message: "the container did not start the handler in time" });
      case "terminate-grace":
        // The handler did not finish after SIGTERM: force the stop.
        await this.apply({ type: "terminate", graceful: false, at: now });
        return this.repossessInstance(state);
      case "timeout-backstop":
        return this.endByPlatform({ kind: "timeout" });
      case "retention": {
        // The namespace's retention, read again (a longer one re-arms), and its archive first.
        const ready = await this.retention.readyToDelete(state, now, {
          view: () => publicEvent(state),
          page: (after, limit) => this.log.page(after, limit),
          lastSeq: () => this.log.lastSeq(),
        });
        if (!ready) return this.armAlarm();
        // The log's R2 segments go first: were this to fail, the alarm retries with the event intact.
        await this.log.deleteSegments(state.namespace, state.requestId);
        // Nothing is owed to the index any more: its row and tags go now (best effort; the purge by
        // its namespace's retention removes them otherwise, event-retention.ts).
        this.state = undefined;
        this.wakeEndWaiters();
        this.index.forget();
        this.delivery.forget();
        await this.storage.deleteEverything();
        await deleteIndexRowOf(indexDatabaseOf(this.env, state.namespace), state.requestId);
        // Its delivery log goes with it (best effort: the DeliveryObject expires by itself otherwise).
        if (deliveryHandoffOf(state)) {
          await deliveryStub(this.env, state.requestId)
            .expire()
            .catch((error: unknown) => console.warn("delivery log not expired", state.requestId, String(error)));
        }
        return;
      }
      default: {
        const unreachable: never = deadline.kind;
        return unreachable;
      }
    }
  }

  /** Who owns the log and how much captured output it stores (the function's limit, plus platform lines). */
  private logOwner(): LogOwner | undefined {
    const state = this.state;
    if (!state) return undefined;
    return {
      namespace: state.namespace,
      requestId: state.requestId,
      limitChars: logLimitBytesOf(state.function) + PLATFORM_LOG_MARGIN_CHARS,
    };
  }

  /** Ends the event from this side (the instance went silent) and repossesses the instance. */
  private async endByPlatform(outcome: ExecutionOutcome): Promise<void> {
    const instanceId = this.state?.instanceId;
    const command: EventCommand =
      outcome.kind === "timeout"
        ? { type: "timeout", at: Date.now() }
        : { type: "complete", instanceId: instanceId ?? "", outcome, at: Date.now() };
    await this.apply(command);
    if (this.state) await this.repossessInstance(this.state);
  }

  private async repossessInstance(state: EventState): Promise<void> {
    const instanceId = state.instanceId;
    if (!instanceId) return;
    const instance = instanceStub(this.env, instanceId);
    await instance.repossess(state.requestId).catch((error: unknown) => {
      console.warn("repossess failed", instanceId, String(error));
    });
  }

  /**
   * Applies a command: persist first (with the index write it makes owed), then the side effects
   * (alarm, log lines, index). The index holds what list filters use, the public status and times:
   * the dispatch consumer writes the first row, and only the end changes it again (internal phases
   * are not indexed). A failed index write stays owed and the alarm retries it.
   * `owedAfterAnswer`: the owed index write is made after the call answers (it is stored as owed in
   * the same write as the state, and the alarm, armed for its retry, makes it should the object stop
   * first): the instance's end report, on the pipeline's path, does not wait on D1.
   */
  private async apply(command: EventCommand, owedAfterAnswer = false): Promise<RpcResult<void, EventRefusalCode>> {
    const state = this.state;
    if (!state) return rpcFail("UNKNOWN_EVENT", "unknown event");
    const result = transition(state, command);
    if (!result.ok) return result;
    if (!result.value.changed) return rpcOk(undefined);
    const next = result.value.state;
    this.state = next;
    const owesIndex = publicStatus(next.phase) !== publicStatus(state.phase);
    // The end owes the result delivery's handoff, stored in the same write as the ending state.
    const owedDelivery = this.delivery.oweOnEnd(isTerminal(next.phase) && !isTerminal(state.phase), next, Date.now());
    await this.storage.saveState(next, owesIndex ? this.index.owe(next.version, Date.now()) : undefined, owedDelivery);
    // The end arms the retention with the namespace's settings (re-read when it is due).
    if (isTerminal(next.phase) && !isTerminal(state.phase)) await this.retention.onEnd(next);
    await this.armAlarm();
    this.log.narrate(state, next);
    if (isTerminal(next.phase)) this.wakeEndWaiters();
    if (owesIndex && owedAfterAnswer) {
      this.ctx.waitUntil(
        this.index
          .flush(this.state, true)
          .catch((error: unknown) =>
            console.warn("the end's index write failed; the alarm retries it", next.requestId, String(error)),
          ),
      );
    } else if (owesIndex) await this.index.flush(this.state);
    if (owedDelivery) await this.delivery.flush(this.state);
    return rpcOk(undefined);
  }

  /**
   * Adds steps that are not transitions of the machine (the container, a watchdog re-dispatch; the
   * signal delivered is recorded by recordSignalDelivered) to the timeline, stores it and sends them to live followers; repeats are left out.
   */
  private async recordTimeline(entries: readonly TimelineEntry[]): Promise<void> {
    const state = this.state;
    if (!state) return;
    const next = recordTimeline(state, entries);
    if (!next) return;
    this.state = next;
    await this.storage.saveState(next);
    this.log.publishTimeline(
      entries.filter((entry) => next.timeline?.includes(entry)).map((entry) => publicTimelineEntry(entry)),
    );
  }

  /** The event's next deadline (see nextDeadline), with the stored watchdog time of a queued event. */
  private async deadlineOf(state: EventState, now: number): Promise<Deadline> {
    const watchdogAt = state.phase === "queued" ? await this.storage.watchdogAt() : undefined;
    const retentionAt = isTerminal(state.phase) ? this.retention.dueAt(state.endedAt ?? now) : undefined;
    return nextDeadline(state, now, watchdogAt, retentionAt);
  }

  /** Sets the one alarm to the earliest of the next deadline and the retry of an owed index write. */
  private async armAlarm(): Promise<void> {
    const state = this.state;
    if (!state) return;
    const deadlineAt = (await this.deadlineOf(state, Date.now())).at;
    await this.storage.setAlarm(
      Math.min(deadlineAt, this.index.retryAt ?? deadlineAt, this.delivery.retryAt ?? deadlineAt),
    );
  }
}
