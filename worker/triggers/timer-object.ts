// TimerTriggerObject: one per timer trigger (named by the trigger row's id). It keeps its trigger's
// configuration (function, qualifier, cron, CustomArgument: timer.ts TimerConfig), pushed by the
// registry (registry.ts) on create, update, switching on and off, and delete, so a tick reads no D1
// row. Its alarm fires at each tick's scheduled second: it invokes the function through invokeAsync
// with SCF's timer event and an idempotency key of the tick (so a retried alarm or a restarted
// object never creates a second event for it), then stores the next tick and sets the alarm for
// it. Once per TIMER_REPAIR_INTERVAL_MS a tick first reads the trigger row (the repair read): a row
// that is gone (its function deleted with its triggers) or switched off stops it, and a row that
// differs from what was pushed is followed. A tick whose function is gone stops it and deletes the
// orphan row. A disarm (or re-arm) landing while a tick is being fired wins: the tick does not
// schedule another, and disarm answers only once that fire has returned.
import { DurableObject } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { triggers } from "../db/schema";
import { invokeAsync } from "../events/invoke";
import { FunctionRegistry } from "../functions/registry";
import { type RpcResult, rpcFail, rpcOk, toPlatformError } from "../shared/errors";
import { type CronSchedule, nextFireAfter, parseCron } from "./cron";
import { TRIGGER_INVOKE_TYPES } from "./model";
import {
  TIMER_IDEMPOTENCY_WINDOW_SECONDS,
  type TimerConfig,
  timerConfigOf,
  timerEvent,
  timerEventTime,
  timerIdempotencyKey,
} from "./timer";

/** Attempts at one tick whose invocation failed transiently (rate limited, unavailable) before it is skipped. */
export const MAX_TICK_ATTEMPTS = 5;
/** Wait before the first retry of a tick; it doubles per attempt up to MAX_TICK_RETRY_DELAY_MS. */
export const TICK_RETRY_BASE_MS = 500;
/** Longest wait between two attempts at one tick. */
export const MAX_TICK_RETRY_DELAY_MS = 8_000;
/** Most ticks walked forward when finding the most recent missed tick (the search then stops there). */
export const MAX_CATCH_UP_STEPS = 1_000;

/**
 * Longest time between two reads of the trigger's row by its timer (the repair read): the first tick
 * at least this long after the last read reads it again. It notices what no push told the object
 * (the function deleted with its triggers, a push lost); every other tick reads no trigger row.
 */
export const TIMER_REPAIR_INTERVAL_MS = 5 * 60_000;

/** What the object stores: its trigger's configuration, the next tick and its attempts. */
export interface TimerState extends TimerConfig {
  /** Epoch ms of the next tick to fire (whole seconds). */
  nextTickAt: number;
  /** Failed attempts at nextTickAt so far. */
  attempts: number;
  /** Fresh on every arm: a tick being fired schedules the next only while it is still the same arming. */
  armId: string;
  /** Epoch ms of the last read of the trigger's row (or of the push that armed it). */
  checkedAt: number;
}

/** How one fire went. */
type FireOutcome =
  | { kind: "fired"; requestId: string }
  | { kind: "skip"; reason: string }
  | { kind: "retry"; reason: string }
  | { kind: "function-gone" };

const STATE_KEY = "timer";

/** True when the trigger's function is in D1 (uncached). */
async function functionExists(env: Env, config: TimerConfig): Promise<boolean> {
  try {
    await new FunctionRegistry(env).get(config.namespace, config.functionName);
    return true;
  } catch (error) {
    if (toPlatformError(error)?.code === "FUNCTION_NOT_FOUND") return false;
    throw error;
  }
}

/** True when the stored state is due its repair read (or was stored before it kept its configuration). */
function needsRepair(state: TimerState, now: number): boolean {
  return (
    typeof state.checkedAt !== "number" ||
    typeof state.namespace !== "string" ||
    now - state.checkedAt >= TIMER_REPAIR_INTERVAL_MS
  );
}

/**
 * The most recent tick at or before `nowMs`, from `fromMs` (itself a tick at or before now): the
 * tick a late alarm fires, the ones between skipped. Searched backward from now in doubling
 * windows, then walked forward at most MAX_CATCH_UP_STEPS ticks.
 */
export function latestTickAtOrBefore(schedule: CronSchedule, fromMs: number, nowMs: number): number {
  let latest = fromMs;
  for (let window = 1_000; nowMs - window > latest; window *= 2) {
    const candidate = nextFireAfter(schedule, nowMs - window);
    if (candidate !== undefined && candidate <= nowMs) {
      latest = Math.max(latest, candidate);
      break;
    }
  }
  for (let step = 0; step < MAX_CATCH_UP_STEPS; step += 1) {
    const next = nextFireAfter(schedule, latest);
    if (next === undefined || next > nowMs) break;
    latest = next;
  }
  return latest;
}

/** The wait before attempt `attempts + 1` at a tick. */
export function tickRetryDelayMs(attempts: number): number {
  return Math.min(MAX_TICK_RETRY_DELAY_MS, TICK_RETRY_BASE_MS * 2 ** Math.max(0, attempts - 1));
}

/** One timer trigger's firing. */
export class TimerTriggerObject extends DurableObject<Env> {
  /** The fire in progress (an alarm's invocation), which disarm waits for. */
  private firing: Promise<unknown> | undefined;

  /**
   * Arms the timer from now on with the trigger's configuration (its normalised cron): the next
   * tick after now is stored and the alarm set for it. Arming again replaces the schedule, and a
   * tick being fired meanwhile schedules nothing after it.
   */
  async arm(config: TimerConfig): Promise<RpcResult<{ nextTickAt: number }>> {
    let schedule: CronSchedule;
    try {
      schedule = parseCron(config.cron);
    } catch (error) {
      return rpcFail("INVALID_PARAMETER", toPlatformError(error)?.message ?? "TriggerDesc: not a cron expression");
    }
    const now = Date.now();
    const nextTickAt = nextFireAfter(schedule, now);
    if (nextTickAt === undefined) return rpcFail("INVALID_PARAMETER", `TriggerDesc: the cron never fires again`);
    const state: TimerState = { ...config, nextTickAt, attempts: 0, armId: crypto.randomUUID(), checkedAt: now };
    await this.ctx.storage.put(STATE_KEY, state);
    await this.ctx.storage.setAlarm(nextTickAt);
    return rpcOk({ nextTickAt });
  }

  /**
   * Takes a changed configuration (CustomArgument) without touching the schedule; a changed cron,
   * or a timer not armed, is armed from now on instead.
   */
  async update(config: TimerConfig): Promise<RpcResult<{ nextTickAt: number }>> {
    const state = await this.ctx.storage.get<TimerState>(STATE_KEY);
    if (!state || state.cron !== config.cron) return this.arm(config);
    await this.ctx.storage.put(STATE_KEY, { ...state, ...config, checkedAt: Date.now() } satisfies TimerState);
    return rpcOk({ nextTickAt: state.nextTickAt });
  }

  /**
   * Stops the timer: no alarm, nothing stored. Answers once a fire in progress has returned, so
   * that no event of this timer is created after the answer.
   */
  async disarm(): Promise<void> {
    await this.stop();
    await this.firing?.catch(() => undefined);
  }

  /** The stored schedule (null when disarmed): for tests and diagnostics. */
  async state(): Promise<TimerState | null> {
    return (await this.ctx.storage.get<TimerState>(STATE_KEY)) ?? null;
  }

  override async alarm(): Promise<void> {
    let state = await this.ctx.storage.get<TimerState>(STATE_KEY);
    if (!state) return;
    if (needsRepair(state, Date.now())) {
      state = await this.repair(state);
      if (!state) return;
    }
    let schedule: CronSchedule;
    try {
      schedule = parseCron(state.cron);
    } catch {
      console.error(
        `timer trigger ${state.triggerId}: stored cron ${JSON.stringify(state.cron)} does not parse; stopped`,
      );
      await this.stop();
      return;
    }
    const now = Date.now();
    if (state.nextTickAt > now) {
      await this.ctx.storage.setAlarm(state.nextTickAt);
      return;
    }
    let tick = state.nextTickAt;
    let attempts = state.attempts;
    const label = `timer trigger ${state.triggerId} (${state.namespace}/${state.functionName} ${state.name})`;
    const latest = latestTickAtOrBefore(schedule, tick, now);
    if (latest > tick) {
      console.warn(
        `${label}: ticks from ${timerEventTime(tick)} missed; firing only the most recent, ${timerEventTime(latest)}`,
      );
      tick = latest;
      attempts = 0;
    }
    const firing = this.fire(state, tick);
    this.firing = firing;
    let outcome: FireOutcome;
    try {
      outcome = await firing;
    } finally {
      if (this.firing === firing) this.firing = undefined;
    }
    // A disarm or a re-arm that landed during the fire wins: this tick schedules nothing more.
    const current = await this.stillArmed(state.armId);
    if (!current) return;
    if (outcome.kind === "function-gone") {
      // The function was deleted but not its triggers: the orphan row goes too, so that a function
      // created later under the same name does not inherit a trigger nobody sees firing.
      await drizzle(this.env.DB).delete(triggers).where(eq(triggers.id, current.triggerId));
      await this.stop();
      return;
    }
    if (outcome.kind === "retry" && attempts + 1 < MAX_TICK_ATTEMPTS) {
      const retry: TimerState = { ...current, nextTickAt: tick, attempts: attempts + 1 };
      await this.ctx.storage.put(STATE_KEY, retry);
      await this.ctx.storage.setAlarm(Date.now() + tickRetryDelayMs(attempts + 1));
      return;
    }
    if (outcome.kind !== "fired") {
      console.warn(`${label}: tick ${timerEventTime(tick)} skipped: ${outcome.reason}`);
    }
    await this.schedule({ ...current, attempts: 0 }, nextFireAfter(schedule, tick));
  }

  /**
   * The repair read: the trigger's row, once per TIMER_REPAIR_INTERVAL_MS. A row gone (deleted, or
   * with its function) or switched off stops the timer; a row that differs from the stored
   * configuration is followed (a changed cron from the next tick after now). Answers the state to
   * go on with, or undefined when this alarm is done.
   */
  private async repair(state: TimerState): Promise<TimerState | undefined> {
    const row = await drizzle(this.env.DB).select().from(triggers).where(eq(triggers.id, state.triggerId)).get();
    // A disarm or a re-arm during the read wins.
    const current = await this.stillArmed(state.armId);
    if (!current) return undefined;
    if (row?.type !== "timer" || !row.enabled) {
      await this.stop();
      return undefined;
    }
    const now = Date.now();
    const repaired: TimerState = { ...current, ...timerConfigOf(row), checkedAt: now };
    if (row.triggerDesc === current.cron) {
      await this.ctx.storage.put(STATE_KEY, repaired);
      return repaired;
    }
    // The cron changed without this object being re-armed: follow the row from now on.
    let schedule: CronSchedule;
    try {
      schedule = parseCron(row.triggerDesc);
    } catch {
      console.error(`timer trigger ${row.id}: stored cron ${JSON.stringify(row.triggerDesc)} does not parse; stopped`);
      await this.stop();
      return undefined;
    }
    await this.schedule({ ...repaired, attempts: 0 }, nextFireAfter(schedule, now));
    return undefined;
  }

  /** The stored state when it is still the arming `armId`; undefined once disarmed or re-armed. */
  private async stillArmed(armId: string): Promise<TimerState | undefined> {
    const current = await this.ctx.storage.get<TimerState>(STATE_KEY);
    return current && current.armId === armId ? current : undefined;
  }

  /** No alarm, nothing stored. */
  private async stop(): Promise<void> {
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
  }

  /** Invokes the function for one tick; the tick's idempotency key makes a repeated fire a no-op. */
  private async fire(config: TimerConfig, tickMs: number): Promise<FireOutcome> {
    try {
      const answer = await invokeAsync(this.env, {
        namespace: config.namespace,
        functionName: config.functionName,
        payloadText: JSON.stringify(timerEvent(config, tickMs)),
        qualifier: config.qualifier,
        invokeType: TRIGGER_INVOKE_TYPES.timer,
        idempotencyKey: timerIdempotencyKey(config.triggerId, tickMs),
        idempotencyWindowSeconds: TIMER_IDEMPOTENCY_WINDOW_SECONDS,
      });
      return { kind: "fired", requestId: answer.requestId };
    } catch (error) {
      const known = toPlatformError(error);
      // The invoke path caches lookups briefly: the function's absence is checked in D1 itself.
      if (known?.code === "FUNCTION_NOT_FOUND") {
        return (await functionExists(this.env, config))
          ? { kind: "retry", reason: "function just created (a cached lookup missed it)" }
          : { kind: "function-gone" };
      }
      // A refusal of this invocation (qualifier gone, key reused with another payload, ...) would
      // be refused again: the tick is skipped. Rate limits and server errors are retried.
      if (known && known.status < 500 && known.status !== 429) return { kind: "skip", reason: known.message };
      return { kind: "retry", reason: known?.message ?? String(error) };
    }
  }

  /** Stores the next tick and sets the alarm for it, or stops when the cron never fires again. */
  private async schedule(state: TimerState, nextTickAt: number | undefined): Promise<void> {
    if (nextTickAt === undefined) {
      await this.stop();
      return;
    }
    await this.ctx.storage.put(STATE_KEY, { ...state, nextTickAt });
    await this.ctx.storage.setAlarm(nextTickAt);
  }
}
