// The trigger model shared by every trigger type: the types, the invoke type each records on its
// events, and what a type decides when a trigger is created or its TriggerDesc changes.
import type { TriggerRow } from "../db/schema";

/** Trigger types, as SCF names them: timer, http (function URL), ckafka (a Cloudflare Queue), cos (R2). */
export const TRIGGER_TYPES = ["timer", "http", "ckafka", "cos"] as const;
/** A trigger type. */
export type TriggerType = (typeof TRIGGER_TYPES)[number];

/** The invoke type each trigger type records on its events (SCF's ListAsyncEvents InvokeType values). */
export const TRIGGER_INVOKE_TYPES: Record<TriggerType, string> = {
  timer: "TRIGGER_TIMER",
  http: "APIGW",
  ckafka: "CKAFKA_TRIGGER",
  cos: "COS",
};

/** The qualifier a trigger invokes when none is given. */
export const DEFAULT_TRIGGER_QUALIFIER = "$DEFAULT";

/** What a trigger is created from (CreateTrigger, the REST route), before its type checks it. */
export interface TriggerSetupInput {
  namespace: string;
  functionName: string;
  triggerName: string;
  /** SCF's TriggerDesc as sent (undefined when absent). */
  triggerDesc: string | undefined;
  /** The trigger being updated, when this is an update. */
  existing?: TriggerRow;
}

/** What a trigger type decides: the stored (normalised) TriggerDesc and the source it is found by. */
export interface TriggerSetup {
  triggerDesc: string;
  source: string | null;
}

/**
 * Checks a trigger type's TriggerDesc and name, and returns what to store. Throws PlatformError
 * INVALID_PARAMETER with a message naming the bound or format broken; stores nothing itself.
 */
export type PrepareTrigger = (env: Env, input: TriggerSetupInput) => Promise<TriggerSetup> | TriggerSetup;
