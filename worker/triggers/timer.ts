// The timer trigger's rules: its TriggerDesc (SCF's cron, raw or wrapped as {"cron": ...}), the
// event it hands to the function (SCF's timer event) and the idempotency key of one tick. The
// Durable Object that fires it is timer-object.ts.
import type { TriggerRow } from "../db/schema";
import { PlatformError, toPlatformError } from "../shared/errors";
import { type CronSchedule, MAX_CRON_CHARS, nextFireAfter, parseCron } from "./cron";
import type { PrepareTrigger } from "./model";

/**
 * How long a tick's idempotency key holds, in seconds: a retried alarm or a restarted object
 * re-firing a tick within this window finds the tick's event instead of creating another.
 */
export const TIMER_IDEMPOTENCY_WINDOW_SECONDS = 3600;

/**
 * What a timer's Durable Object keeps of its trigger, pushed by the registry on create, update,
 * switching on and off, and delete, so that a tick reads no D1 row: which trigger, the function and
 * qualifier it invokes, its (normalised) cron and its CustomArgument.
 */
export interface TimerConfig {
  triggerId: string;
  namespace: string;
  functionName: string;
  /** The trigger's name (the event's TriggerName). */
  name: string;
  qualifier: string;
  cron: string;
  /** The event's Message. */
  customArgument: string;
}

/** A timer trigger row's configuration, as its Durable Object keeps it. */
export function timerConfigOf(row: TriggerRow): TimerConfig {
  return {
    triggerId: row.id,
    namespace: row.namespace,
    functionName: row.functionName,
    name: row.name,
    qualifier: row.qualifier,
    cron: row.triggerDesc,
    customArgument: row.customArgument,
  };
}

/** True when two configurations would fire the same way. */
export function sameTimerConfig(a: TimerConfig, b: TimerConfig): boolean {
  return (
    a.triggerId === b.triggerId &&
    a.namespace === b.namespace &&
    a.functionName === b.functionName &&
    a.name === b.name &&
    a.qualifier === b.qualifier &&
    a.cron === b.cron &&
    a.customArgument === b.customArgument
  );
}

/** The cron text of a timer TriggerDesc: the raw cron, or SCF's output form `{"cron":"..."}`. */
export function cronTextOf(triggerDesc: string): string {
  const trimmed = triggerDesc.trim();
  if (!trimmed.startsWith("{")) return trimmed;
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch {
    throw new PlatformError("INVALID_PARAMETER", 'TriggerDesc: a cron expression, or {"cron":"<cron>"}');
  }
  const cron = (parsed as { cron?: unknown } | null)?.cron;
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed) || typeof cron !== "string") {
    throw new PlatformError("INVALID_PARAMETER", 'TriggerDesc: {"cron":"<cron>"} with the cron as a string');
  }
  return cron.trim();
}

/**
 * Checks a timer's TriggerDesc: SCF's 7-field cron (or the legacy 5-field form), at most
 * MAX_CRON_CHARS characters, that fires at least once more. Stores the normalised cron text.
 */
export const prepareTimerTrigger: PrepareTrigger = (_env, input) => {
  if (input.triggerDesc === undefined || input.triggerDesc.trim() === "") {
    throw new PlatformError("INVALID_PARAMETER", "TriggerDesc: a timer needs a cron expression");
  }
  const text = cronTextOf(input.triggerDesc);
  if (text.length > MAX_CRON_CHARS) {
    throw new PlatformError("INVALID_PARAMETER", `TriggerDesc: the cron is over ${MAX_CRON_CHARS} characters`);
  }
  let schedule: CronSchedule;
  try {
    schedule = parseCron(text);
  } catch (error) {
    const known = toPlatformError(error);
    if (known) throw new PlatformError(known.code, `TriggerDesc: ${known.message}`);
    throw error;
  }
  if (nextFireAfter(schedule, Date.now()) === undefined) {
    throw new PlatformError("INVALID_PARAMETER", `TriggerDesc: the cron "${schedule.text}" never fires again`);
  }
  return { triggerDesc: schedule.text, source: null };
};

/** A timer's TriggerDesc as SCF answers it (GetFunction, ListTriggers, CreateTrigger): `{"cron":"..."}`. */
export function wrappedCron(triggerDesc: string): string {
  return JSON.stringify({ cron: triggerDesc });
}

/** A tick's time as SCF's timer event shows it: ISO 8601 UTC, whole seconds, `Z`. */
export function timerEventTime(tickMs: number): string {
  return `${new Date(tickMs).toISOString().slice(0, 19)}Z`;
}

/** The event SCF hands a function for one tick of a timer trigger (scf-reference §1.1). */
export function timerEvent(row: Pick<TriggerRow, "name" | "customArgument">, tickMs: number) {
  return { Type: "Timer", TriggerName: row.name, Time: timerEventTime(tickMs), Message: row.customArgument };
}

/**
 * The idempotency key of one tick of one trigger (`timer:<trigger id>:<tick, epoch seconds>`, at
 * most 54 characters of the key rule): however often the tick is fired, it creates one event.
 */
export function timerIdempotencyKey(triggerId: string, tickMs: number): string {
  return `timer:${triggerId}:${Math.floor(tickMs / 1000)}`;
}
