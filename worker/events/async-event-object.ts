import { DurableObject } from "cloudflare:workers";
import type { FunctionSnapshot } from "../functions/model";
import { type RpcResult, rpcFail, rpcOk } from "../shared/errors";
import { instanceName, instanceStub, schedulerName } from "../shared/objects";
import type { DispatchMessage } from "./dispatch-message";
import { sendDispatch } from "./dispatch-send";
import {
  afterFailedIndexWrite,
  indexEntryOf,
  logsIndexFailure,
  newPendingIndexWrite,
  type PendingIndexWrite,
  writeIndexEntries,
} from "./event-index";
import { EVENT_INDEX_RETENTION_MS } from "./event-list";
import { EventLogStore, type LogRecord, type StoredLogRecord } from "./event-log-store";
import {
  type EventCommand,
  type EventState,
  type ExecutionOutcome,
  isTerminal,
  publicEvent,
  publicStatus,
  type TransitionError,
  transition,
} from "./event-machine";
import { LogFollowers, type LogStreamEnd, MAX_FOLLOWERS_PER_EVENT } from "./log-followers";
import { truncateUtf8, utf8Length } from "./text-bounds";

/** Status stays readable this long after the event ends. */
export const EVENT_RETENTION_MS = 72 * 60 * 60 * 1000;
/** A queued event whose dispatch has not been claimed by then is enqueued again. */
export const DISPATCH_WATCHDOG_MS = 30_000;
/** Longest wait between two watchdog re-enqueues of a queued event. */
const MAX_DISPATCH_WATCHDOG_MS = 5 * 60_000;
/**
 * How long an instance may take from claiming the event to a ready container. The handler's hand-over
 * may come later by as much as the function's timeout (its code loading at a cold start: the agent
 * fails code still loading past the timeout with 433); see startLimitOf.
 */
export const START_TIMEOUT_MS = 120_000;

/**
 * When a `starting` event is ended by this object's backstop: a container start (START_TIMEOUT_MS)
 * plus the code's loading (at most the function's timeout) after the claim. The instance and the
 * agent end the event earlier with the precise cause; this fires only when they are gone.
 */
function startLimitOf(state: EventState, now: number): number {
  return (state.claimedAt ?? now) + START_TIMEOUT_MS + state.function.timeoutSeconds * 1000;
}
/** The instance enforces the timeout; this object fails the event itself only after this grace. */
export const TIMEOUT_BACKSTOP_GRACE_MS = 10_000;
/** How long a graceful terminate waits for the handler after SIGTERM before forcing the stop. */
export const GRACEFUL_TERMINATE_TIMEOUT_MS = 30_000;
/** Largest number of log records one append call may carry. */
const MAX_LOG_RECORDS_PER_APPEND = 1_000;
/** Most log lines one read returns (and a follower's backlog is sent in pages of this size). */
export const MAX_LOG_READ = 1_000;

/** What the invoke route hands to a new event: its identity, function snapshot and payload. */
export type AcceptRequest = Pick<
  EventState,
  "requestId" | "namespace" | "functionName" | "qualifier" | "invokeType" | "function" | "invokedAt"
> & {
  /** The event, as JSON text. */
  payload: string;
};

/** An event's public view with the start of its log as text. */
export type EventWithLog = ReturnType<typeof publicEvent> & {
  log: string;
  /** The result's JSON cut to FUNCTION_LOG_RESULT_BYTES (null without a result); `result` is null here. */
  resultPreview: string | null;
};

/** Characters of log one page of `logs()` returns at most (besides its first line). */
export const MAX_LOG_PAGE_CHARS = 1024 * 1024;
/** Bytes of a result's JSON a function-log entry carries (the whole result: read the event). */
export const FUNCTION_LOG_RESULT_BYTES = 4 * 1024;

/** What an instance receives when it claims an event. */
export type ClaimResult =
  | { ok: true; payload: string; function: FunctionSnapshot; requestId: string; namespace: string }
  | { ok: false; reason: string };

const STATE_KEY = "state";
const PAYLOAD_KEY = "payload";
const WATCHDOG_DELAY_KEY = "watchdogDelayMs";
/** When the dispatch watchdog of a queued event is due (the alarm may also wake for the index). */
const WATCHDOG_AT_KEY = "watchdogAt";
/** The index write this event still owes D1 (a PendingIndexWrite), absent when none is owed. */
const INDEX_PENDING_KEY = "indexPending";
/**
 * Results larger than this (UTF-8 bytes of JSON, 16 KiB) are kept in the object's SQL table
 * `event_result` (as UTF-8 text) rather than inside the state value. A storage value is limited
 * (2 MB with SQLite-backed objects, 128 KiB with key-value ones), and the value serialiser stores a
 * string holding any non-Latin-1 character at 2 bytes per character: a result of MAX_RESULT_BYTES
 * inside the state could pass the limit and leave the event RUNNING. The state stays small.
 */
export const MAX_INLINE_RESULT_BYTES = 16 * 1024;

/** The state as stored: a large result lives in SQL, and the stored state says so. */
type StoredEventState = EventState & { resultInSql?: true };

/** True when an instance id names a slot of this event's function: `${schedulerName}#${slot}`. */
export function isInstanceOfFunction(instanceId: string, namespace: string, functionName: string): boolean {
  const prefix = instanceName(schedulerName(namespace, functionName), 0).slice(0, -1);
  return instanceId.startsWith(prefix) && /^(0|[1-9][0-9]{0,5})$/.test(instanceId.slice(prefix.length));
}

/** One event's state machine: the source of truth for one RequestId. */
export class AsyncEventObject extends DurableObject<Env> {
  private state: EventState | undefined;
  /** The index write still owed to D1, as stored under INDEX_PENDING_KEY. */
  private pendingIndex: PendingIndexWrite | undefined;
  private readonly logStore: EventLogStore;
  private readonly followers: LogFollowers;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.logStore = new EventLogStore(ctx.storage.sql);
    this.followers = new LogFollowers((after, limit) => this.logStore.read(after, limit), MAX_LOG_READ);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS event_result (id INTEGER PRIMARY KEY, json TEXT NOT NULL)");
    ctx.blockConcurrencyWhile(async () => {
      this.state = this.loadedState(await ctx.storage.get<StoredEventState>(STATE_KEY));
      this.pendingIndex = await ctx.storage.get<PendingIndexWrite>(INDEX_PENDING_KEY);
    });
  }

  /** The state as this object holds it in memory: with its result, wherever that is stored. */
  private loadedState(stored: StoredEventState | undefined): EventState | undefined {
    if (!stored) return undefined;
    const { resultInSql, ...state } = stored;
    if (!resultInSql) return state;
    const row = this.ctx.storage.sql.exec<{ json: string }>("SELECT json FROM event_result WHERE id = 1").toArray()[0];
    return row ? { ...state, result: row.json } : state;
  }

  /**
   * Persists the state, with the index write it makes owed (if any) in the same write: a crash
   * after it cannot lose the index update. A result over MAX_INLINE_RESULT_BYTES goes to SQL, beside
   * it (in the same implicit transaction: nothing is awaited in between).
   */
  private async saveState(state: EventState, pendingIndex?: PendingIndexWrite): Promise<void> {
    const { result, ...rest } = state;
    const index: Record<string, PendingIndexWrite> = pendingIndex ? { [INDEX_PENDING_KEY]: pendingIndex } : {};
    if (result === undefined || utf8Length(result) <= MAX_INLINE_RESULT_BYTES) {
      await this.ctx.storage.put<EventState | PendingIndexWrite>({ [STATE_KEY]: state, ...index });
      return;
    }
    this.ctx.storage.sql.exec(
      "INSERT INTO event_result (id, json) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET json = excluded.json",
      result,
    );
    const stored: StoredEventState = { ...rest, resultInSql: true };
    await this.ctx.storage.put<StoredEventState | PendingIndexWrite>({ [STATE_KEY]: stored, ...index });
  }

  /**
   * Persists a new event, arms the dispatch watchdog, then enqueues its dispatch. Repeating the call
   * for the same RequestId changes nothing.
   */
  async accept(request: AcceptRequest): Promise<{ requestId: string }> {
    if (this.state) return { requestId: this.state.requestId };
    const state: EventState = {
      requestId: request.requestId,
      namespace: request.namespace,
      functionName: request.functionName,
      qualifier: request.qualifier,
      invokeType: request.invokeType,
      function: request.function,
      phase: "queued",
      version: 1,
      invokedAt: request.invokedAt,
    };
    this.state = state;
    const watchdogAt = Date.now() + DISPATCH_WATCHDOG_MS;
    // Not awaited on purpose: the writes coalesce into one, and the output gate holds this call's
    // answer (and the enqueue) until they are durable, so the RequestId never leaves before the
    // event is stored. Were the write to fail, the caller gets an error and nothing is dispatched.
    void this.ctx.storage.put({ [STATE_KEY]: state, [PAYLOAD_KEY]: request.payload, [WATCHDOG_AT_KEY]: watchdogAt });
    void this.ctx.storage.setAlarm(watchdogAt);
    try {
      await sendDispatch(this.env, this.dispatchMessage(state));
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
    if (!state) return { ok: false, reason: "unknown event" };
    if (!isInstanceOfFunction(instanceId, state.namespace, state.functionName)) {
      return { ok: false, reason: `instance ${instanceId} does not belong to function ${state.functionName}` };
    }
    const applied = await this.apply({ type: "claim", instanceId, at: Date.now() });
    if (!applied.ok) return { ok: false, reason: applied.message };
    const payload = (await this.ctx.storage.get<string>(PAYLOAD_KEY)) ?? "{}";
    return { ok: true, payload, function: state.function, requestId: state.requestId, namespace: state.namespace };
  }

  /** The handler has started in the instance's container. */
  async markStarted(
    instanceId: string,
    cold: boolean,
    containerId: string,
    startedAt: number,
  ): Promise<{ ok: boolean; reason?: string }> {
    // The instance's clock starts the timeout, so the event reports the same start.
    const applied = await this.apply({ type: "started", instanceId, cold, containerId, at: startedAt });
    return applied.ok ? { ok: true } : { ok: false, reason: applied.message };
  }

  /** The execution ended; repeated reports are ignored. */
  async complete(
    instanceId: string,
    outcome: ExecutionOutcome,
    memoryUsageKb?: number,
    finalLogs: LogRecord[] = [],
  ): Promise<{ ok: boolean; reason?: string }> {
    // Only the claimant reports: another instance's report (and its log lines) changes nothing.
    if (this.state?.instanceId === undefined || this.state.instanceId !== instanceId) {
      return { ok: false, reason: `event belongs to ${this.state?.instanceId ?? "no instance"}` };
    }
    // The last log lines travel with the outcome: one call for a short execution.
    if (finalLogs.length > 0 && !isTerminal(this.state.phase)) await this.appendLogs(finalLogs, instanceId);
    const applied = await this.apply({
      type: "complete",
      instanceId,
      outcome,
      at: Date.now(),
      ...(memoryUsageKb !== undefined ? { memoryUsageKb } : {}),
    });
    return applied.ok ? { ok: true } : { ok: false, reason: applied.message };
  }

  /**
   * Appends captured log lines (repeats are ignored) and sends them to live followers. When the
   * sending instance is given, lines from any instance but the claimant are ignored.
   */
  async appendLogs(records: LogRecord[], instanceId?: string): Promise<void> {
    if (!this.state) return;
    if (instanceId !== undefined && instanceId !== this.state.instanceId) return;
    this.followers.publish(this.logStore.appendCaptured(records.slice(0, MAX_LOG_RECORDS_PER_APPEND)));
  }

  /** Log lines with seq > after, oldest first. */
  async logs(after: number, limit: number): Promise<RpcResult<StoredLogRecord[]>> {
    if (!this.state) return rpcFail("EVENT_NOT_FOUND", "event not found");
    return rpcOk(this.logStore.read(after, Math.min(limit, MAX_LOG_READ), MAX_LOG_PAGE_CHARS));
  }

  /**
   * Follows the log live as Server-Sent Events: every line after `after`, then new lines as they
   * are captured, then an `end` event with the final status.
   */
  async followLogs(after: number): Promise<RpcResult<ReadableStream<Uint8Array>>> {
    const state = this.state;
    if (!state) return rpcFail("EVENT_NOT_FOUND", "event not found");
    // The backlog is read page by page as the client reads (see LogFollowers).
    const stream = this.followers.open(after, isTerminal(state.phase) ? streamEndOf(state) : undefined);
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
   * GRACEFUL_TERMINATE_TIMEOUT_MS). A queued or starting event is aborted without running.
   */
  async terminate(graceful: boolean): Promise<RpcResult<ReturnType<typeof publicEvent>>> {
    const before = this.state;
    if (!before) return rpcFail("EVENT_NOT_FOUND", "event not found");
    const applied = await this.apply({ type: "terminate", graceful, at: Date.now() });
    if (!applied.ok) {
      return rpcFail(applied.code === "TERMINATING" ? "EVENT_TERMINATING" : "EVENT_ALREADY_ENDED", applied.message);
    }
    const after = this.state ?? before;
    const instanceId = before.instanceId;
    if (instanceId) {
      const instance = instanceStub(this.env, instanceId);
      if (isTerminal(after.phase)) await instance.repossess(before.requestId);
      else await instance.signalTerminate(before.requestId);
    }
    return rpcOk(publicEvent(this.state ?? after));
  }

  /** The public view with the first lines of the log as one text (SCF's GetFunctionLogs entries). */
  async viewWithLog(maxChars: number): Promise<RpcResult<EventWithLog>> {
    if (!this.state) return rpcFail("EVENT_NOT_FOUND", "event not found");
    let log = "";
    for (const record of this.logStore.read(0, MAX_LOG_READ, maxChars + 1)) {
      const line = `${new Date(record.ts).toISOString()} ${record.line}\n`;
      if (log.length + line.length > maxChars) {
        log += "…[truncated: read the whole log by RequestId]\n";
        break;
      }
      log += line;
    }
    // Function-log answers carry many events: the result is cut and the stack left out.
    const view = publicEvent(this.state);
    const resultPreview =
      this.state.result !== undefined ? truncateUtf8(this.state.result, FUNCTION_LOG_RESULT_BYTES) : null;
    return rpcOk({ ...view, result: null, errorStack: null, log, resultPreview });
  }

  /** The public view, or EVENT_NOT_FOUND (never existed, or deleted 72 h after it ended). */
  async view(): Promise<RpcResult<ReturnType<typeof publicEvent>>> {
    if (!this.state) return rpcFail("EVENT_NOT_FOUND", "event not found");
    return rpcOk(publicEvent(this.state));
  }

  /**
   * Diagnostics only (the redeliver route): enqueues this event's own dispatch message again, as
   * at-least-once delivery may, whatever its phase. Changes nothing here: the consumers must absorb
   * the copy. Answers the message sent.
   */
  async redispatch(): Promise<RpcResult<DispatchMessage>> {
    const state = this.state;
    if (!state) return rpcFail("EVENT_NOT_FOUND", "event not found");
    const message = this.dispatchMessage(state);
    await sendDispatch(this.env, message);
    return rpcOk(message);
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
    if (this.pendingIndex) return true;
    this.pendingIndex = newPendingIndexWrite(state.version, Date.now());
    await this.ctx.storage.put(INDEX_PENDING_KEY, this.pendingIndex);
    await this.armAlarm();
    return true;
  }

  /**
   * Watchdogs (dispatch, start, timeout backstop), retention and the retry of an owed index write,
   * multiplexed on one alarm set to the earliest of them. Each is acted on only once due, since the
   * alarm may wake for another.
   */
  override async alarm(): Promise<void> {
    // An owed index write is tried whenever the alarm runs (it is due, or the alarm woke anyway).
    if (this.pendingIndex) await this.flushIndex();
    const state = this.state;
    if (!state) return;
    const now = Date.now();
    switch (state.phase) {
      case "queued": {
        const dueAt = await this.ctx.storage.get<number>(WATCHDOG_AT_KEY);
        if (dueAt !== undefined && now < dueAt) return this.armAlarm();
        // Dispatch was lost or is waiting for capacity: enqueue again (consumers are idempotent).
        const delay = Math.min(
          ((await this.ctx.storage.get<number>(WATCHDOG_DELAY_KEY)) ?? DISPATCH_WATCHDOG_MS) * 2,
          MAX_DISPATCH_WATCHDOG_MS,
        );
        await this.ctx.storage.put({ [WATCHDOG_DELAY_KEY]: delay, [WATCHDOG_AT_KEY]: now + delay });
        await this.armAlarm();
        await sendDispatch(this.env, this.dispatchMessage(state));
        return;
      }
      case "starting": {
        if (now < startLimitOf(state, now)) return this.armAlarm();
        await this.endByPlatform({ kind: "crashed", message: "the container did not start the handler in time" });
        return;
      }
      case "running": {
        if (
          state.terminateRequestedAt !== undefined &&
          now >= state.terminateRequestedAt + GRACEFUL_TERMINATE_TIMEOUT_MS
        ) {
          // The handler did not finish after SIGTERM: force the stop.
          await this.apply({ type: "terminate", graceful: false, at: now });
          await this.repossessInstance(state);
          return;
        }
        const limit = (state.startedAt ?? now) + state.function.timeoutSeconds * 1000 + TIMEOUT_BACKSTOP_GRACE_MS;
        if (now < limit) return this.armAlarm();
        await this.endByPlatform({ kind: "timeout" });
        return;
      }
      case "finished":
      case "failed":
      case "aborted": {
        const expiry = (state.endedAt ?? now) + EVENT_RETENTION_MS;
        if (now < expiry) return this.armAlarm();
        // The index row has expired by now too (it is kept 3 days from the start): nothing is owed.
        this.state = undefined;
        this.pendingIndex = undefined;
        await this.ctx.storage.deleteAlarm();
        await this.ctx.storage.deleteAll();
        return;
      }
      default: {
        const unreachable: never = state.phase;
        return unreachable;
      }
    }
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
   * (alarm, index). The index holds what list filters use, the public status and times: the
   * dispatch consumer writes the first row, and only the end changes it again (internal phases are
   * not indexed). A failed index write stays owed and the alarm retries it.
   */
  private async apply(
    command: EventCommand,
  ): Promise<{ ok: true } | { ok: false; code: TransitionError["code"] | "UNKNOWN"; message: string }> {
    const state = this.state;
    if (!state) return { ok: false, code: "UNKNOWN", message: "unknown event" };
    const result = transition(state, command);
    if (!result.ok) return { ok: false, code: result.error.code, message: result.error.message };
    if (!result.changed) return { ok: true };
    const next = result.state;
    this.state = next;
    const owesIndex = publicStatus(next.phase) !== publicStatus(state.phase);
    if (owesIndex) this.pendingIndex = newPendingIndexWrite(next.version, Date.now());
    await this.saveState(next, owesIndex ? this.pendingIndex : undefined);
    await this.armAlarm();
    this.narrate(state, next);
    if (owesIndex) await this.flushIndex();
    return { ok: true };
  }

  /**
   * Writes the owed index row (the current state's entry: the versioned upsert never lets it
   * replace a newer row) and forgets the debt once D1 has it. A failure is logged (see
   * logsIndexFailure) and retried by the alarm with backoff; it is never given up while the row
   * could be listed. D1's errors never escape from here.
   */
  private async flushIndex(): Promise<void> {
    const state = this.state;
    const owed = this.pendingIndex;
    if (!state || !owed) return;
    if (state.invokedAt < Date.now() - EVENT_INDEX_RETENTION_MS) {
      // The index keeps rows 3 days from the start: this one would be purged, so it is not written.
      console.warn("event index write dropped: the row is past the index's retention", state.requestId);
      return this.settleIndex(owed.version);
    }
    const entry = indexEntryOf(state);
    try {
      await writeIndexEntries(this.env.DB, [entry]);
    } catch (error) {
      // Another call may have replaced the debt while D1 answered: count the failure on the newest.
      const failed = afterFailedIndexWrite(this.pendingIndex ?? owed, Date.now());
      this.pendingIndex = failed;
      await this.ctx.storage.put(INDEX_PENDING_KEY, failed);
      await this.armAlarm();
      if (logsIndexFailure(failed.attempts)) {
        console.warn(
          `event index write failed (attempt ${failed.attempts}); retrying in ${failed.retryAt - Date.now()} ms`,
          state.requestId,
          String(error),
        );
      }
      return;
    }
    return this.settleIndex(entry.version);
  }

  /** D1 has the row at `version`: the debt is forgotten unless a newer one was owed meanwhile. */
  private async settleIndex(version: number): Promise<void> {
    if (!this.pendingIndex || this.pendingIndex.version > version) return;
    this.pendingIndex = undefined;
    await this.ctx.storage.delete(INDEX_PENDING_KEY);
    await this.armAlarm();
  }

  /**
   * Sets the one alarm to the earliest of the phase's watchdog or retention time and the retry of
   * an owed index write.
   */
  private async armAlarm(): Promise<void> {
    const state = this.state;
    if (!state) return;
    const phaseAt =
      state.phase === "queued"
        ? ((await this.ctx.storage.get<number>(WATCHDOG_AT_KEY)) ?? Date.now() + DISPATCH_WATCHDOG_MS)
        : this.nextAlarmAt(state);
    await this.ctx.storage.setAlarm(Math.min(phaseAt, this.pendingIndex?.retryAt ?? phaseAt));
  }

  /** Platform log lines for a transition: the start (instance, cold or warm) and the end. */
  private narrate(before: EventState, after: EventState): void {
    const lines: StoredLogRecord[] = [];
    if (after.phase === "running" && before.phase !== "running") {
      lines.push(
        this.logStore.appendPlatform(
          `[PLATFORM] START RequestId: ${after.requestId} Instance: ${after.instanceId} (${after.cold ? "cold" : "warm"} start)`,
          after.startedAt,
        ),
      );
    }
    if (isTerminal(after.phase) && !isTerminal(before.phase)) {
      const memory = after.memoryUsageKb !== undefined ? ` Memory: ${(after.memoryUsageKb / 1024).toFixed(1)} MB` : "";
      const error = after.errorMessage ? ` Error: ${after.errorMessage}` : "";
      lines.push(
        this.logStore.appendPlatform(
          `[PLATFORM] END RequestId: ${after.requestId} Status: ${publicStatus(after.phase)} StatusCode: ${after.statusCode} Duration: ${after.durationMs ?? 0} ms${memory}${error}`,
          after.endedAt,
        ),
      );
    }
    this.followers.publish(lines);
    if (isTerminal(after.phase)) this.followers.end(streamEndOf(after));
  }

  private nextAlarmAt(state: EventState): number {
    if (isTerminal(state.phase)) return (state.endedAt ?? Date.now()) + EVENT_RETENTION_MS;
    if (state.phase === "starting") return startLimitOf(state, Date.now());
    if (state.phase === "running") {
      const timeoutAt =
        (state.startedAt ?? Date.now()) + state.function.timeoutSeconds * 1000 + TIMEOUT_BACKSTOP_GRACE_MS;
      if (state.terminateRequestedAt === undefined) return timeoutAt;
      return Math.min(timeoutAt, state.terminateRequestedAt + GRACEFUL_TERMINATE_TIMEOUT_MS);
    }
    return Date.now() + DISPATCH_WATCHDOG_MS;
  }

  private dispatchMessage(state: EventState): DispatchMessage {
    return {
      requestId: state.requestId,
      namespace: state.namespace,
      functionName: state.functionName,
      qualifier: state.qualifier,
      invokeType: state.invokeType,
      invokedAt: state.invokedAt,
      maxConcurrency: state.function.maxConcurrency,
    };
  }
}

function streamEndOf(state: EventState): LogStreamEnd {
  return {
    requestId: state.requestId,
    status: publicStatus(state.phase),
    statusCode: state.statusCode ?? null,
    durationMs: state.durationMs ?? null,
    errorMessage: state.errorMessage ?? null,
  };
}
