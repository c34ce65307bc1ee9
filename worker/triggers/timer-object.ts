// TimerTriggerObject: one per timer trigger (named by the trigger row's id). Its alarm fires at
// each tick's scheduled second: it checks the trigger row (one D1 read per tick), invokes the
// function through invokeAsync with SCF's timer event and an idempotency key of the tick (so a
// retried alarm or a restarted object never creates a second event for it), then stores the next
// tick and sets the alarm for it. The registry (registry.ts) arms it on create, enable and cron
// change, and disarms it on disable and delete; a trigger row that is gone or switched off, or a
// function that is gone, stops it at its next tick.
import { DurableObject } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { type TriggerRow, triggers } from "../db/schema";
import { invokeAsync } from "../events/invoke";
import { FunctionRegistry } from "../functions/registry";
import { type RpcResult, rpcFail, rpcOk, toPlatformError } from "../shared/errors";
import { type CronSchedule, nextFireAfter, parseCron } from "./cron";
import { TRIGGER_INVOKE_TYPES } from "./model";
import { TIMER_IDEMPOTENCY_WINDOW_SECONDS, timerEvent, timerEventTime, timerIdempotencyKey } from "./timer";

/** Attempts at one tick whose invocation failed transiently (rate limited, unavailable) before it is skipped. */
export const MAX_TICK_ATTEMPTS = 5;
/** Wait before the first retry of a tick; it doubles per attempt up to MAX_TICK_RETRY_DELAY_MS. */
export const TICK_RETRY_BASE_MS = 500;
/** Longest wait between two attempts at one tick. */
export const MAX_TICK_RETRY_DELAY_MS = 8_000;
/** Most ticks walked forward when finding the most recent missed tick (the search then stops there). */
export const MAX_CATCH_UP_STEPS = 1_000;

/** What the object stores: which trigger, the cron it was armed with, the next tick and its attempts. */
export interface TimerState {
  triggerId: string;
  cron: string;
  /** Epoch ms of the next tick to fire (whole seconds). */
  nextTickAt: number;
  /** Failed attempts at nextTickAt so far. */
  attempts: number;
}

/** How one fire went. */
type FireOutcome =
  | { kind: "fired"; requestId: string }
  | { kind: "skip"; reason: string }
  | { kind: "retry"; reason: string }
  | { kind: "function-gone" };

const STATE_KEY = "timer";

/** True when the trigger's function is in D1 (uncached). */
async function functionExists(env: Env, row: TriggerRow): Promise<boolean> {
  try {
    await new FunctionRegistry(env).get(row.namespace, row.functionName);
    return true;
  } catch (error) {
    if (toPlatformError(error)?.code === "FUNCTION_NOT_FOUND") return false;
    throw error;
  }
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
  /**
   * Arms the timer from now on with the trigger's (normalised) cron: the next tick after now is
   * stored and the alarm set for it. Arming again replaces the schedule.
   */
  async arm(config: { triggerId: string; cron: string }): Promise<RpcResult<{ nextTickAt: number }>> {
    let schedule: CronSchedule;
    try {
      schedule = parseCron(config.cron);
    } catch (error) {
      return rpcFail("INVALID_PARAMETER", toPlatformError(error)?.message ?? "TriggerDesc: not a cron expression");
    }
    const nextTickAt = nextFireAfter(schedule, Date.now());
    if (nextTickAt === undefined) return rpcFail("INVALID_PARAMETER", `TriggerDesc: the cron never fires again`);
    const state: TimerState = { triggerId: config.triggerId, cron: config.cron, nextTickAt, attempts: 0 };
    await this.ctx.storage.put(STATE_KEY, state);
    await this.ctx.storage.setAlarm(nextTickAt);
    return rpcOk({ nextTickAt });
  }

  /** Stops the timer: no alarm, nothing stored. */
  async disarm(): Promise<void> {
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
  }

  /** The stored schedule (null when disarmed): for tests and diagnostics. */
  async state(): Promise<TimerState | null> {
    return (await this.ctx.storage.get<TimerState>(STATE_KEY)) ?? null;
  }

  override async alarm(): Promise<void> {
    const state = await this.ctx.storage.get<TimerState>(STATE_KEY);
    if (!state) return;
    const row = await drizzle(this.env.DB).select().from(triggers).where(eq(triggers.id, state.triggerId)).get();
    if (row?.type !== "timer" || !row.enabled) {
      // Deleted or switched off (or its function was deleted with its triggers): stop for good.
      await this.disarm();
      return;
    }
    let schedule: CronSchedule;
    try {
      schedule = parseCron(row.triggerDesc);
    } catch {
      console.error(`timer trigger ${row.id}: stored cron ${JSON.stringify(row.triggerDesc)} does not parse; stopped`);
      await this.disarm();
      return;
    }
    const now = Date.now();
    if (row.triggerDesc !== state.cron) {
      // The cron changed without this object being re-armed: follow the row from now on.
      await this.schedule({ ...state, cron: row.triggerDesc, attempts: 0 }, nextFireAfter(schedule, now));
      return;
    }
    if (state.nextTickAt > now) {
      await this.ctx.storage.setAlarm(state.nextTickAt);
      return;
    }
    let tick = state.nextTickAt;
    let attempts = state.attempts;
    const latest = latestTickAtOrBefore(schedule, tick, now);
    if (latest > tick) {
      console.warn(
        `timer trigger ${row.id} (${row.namespace}/${row.functionName} ${row.name}): ticks from ${timerEventTime(tick)} missed; firing only the most recent, ${timerEventTime(latest)}`,
      );
      tick = latest;
      attempts = 0;
    }
    const outcome = await this.fire(row, tick);
    if (outcome.kind === "function-gone") {
      // The function was deleted but not its triggers: the orphan row goes too, so that a function
      // created later under the same name does not inherit a trigger nobody sees firing.
      await drizzle(this.env.DB).delete(triggers).where(eq(triggers.id, row.id));
      await this.disarm();
      return;
    }
    if (outcome.kind === "retry" && attempts + 1 < MAX_TICK_ATTEMPTS) {
      const retry: TimerState = { ...state, nextTickAt: tick, attempts: attempts + 1 };
      await this.ctx.storage.put(STATE_KEY, retry);
      await this.ctx.storage.setAlarm(Date.now() + tickRetryDelayMs(attempts + 1));
      return;
    }
    if (outcome.kind !== "fired") {
      console.warn(
        `timer trigger ${row.id} (${row.namespace}/${row.functionName} ${row.name}): tick ${timerEventTime(tick)} skipped: ${outcome.reason}`,
      );
    }
    await this.schedule({ ...state, attempts: 0 }, nextFireAfter(schedule, tick));
  }

  /** Invokes the function for one tick; the tick's idempotency key makes a repeated fire a no-op. */
  private async fire(row: TriggerRow, tickMs: number): Promise<FireOutcome> {
    try {
      const answer = await invokeAsync(this.env, {
        namespace: row.namespace,
        functionName: row.functionName,
        payloadText: JSON.stringify(timerEvent(row, tickMs)),
        qualifier: row.qualifier,
        invokeType: TRIGGER_INVOKE_TYPES.timer,
        idempotencyKey: timerIdempotencyKey(row.id, tickMs),
        idempotencyWindowSeconds: TIMER_IDEMPOTENCY_WINDOW_SECONDS,
      });
      return { kind: "fired", requestId: answer.requestId };
    } catch (error) {
      const known = toPlatformError(error);
      // The invoke path caches lookups briefly: the function's absence is checked in D1 itself.
      if (known?.code === "FUNCTION_NOT_FOUND") {
        return (await functionExists(this.env, row))
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
      await this.disarm();
      return;
    }
    await this.ctx.storage.put(STATE_KEY, { ...state, nextTickAt });
    await this.ctx.storage.setAlarm(nextTickAt);
  }
}
