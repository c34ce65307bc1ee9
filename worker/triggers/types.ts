// The table of trigger types: what checks each type's TriggerDesc and name (its PrepareTrigger),
// and the address an http trigger (function URL) is reached at.
import type { TriggerRow } from "../db/schema";
import { prepareCosTrigger } from "./cos";
import { httpTriggerUrl, prepareHttpTrigger } from "./http";
import type { PrepareTrigger, TriggerType } from "./model";
import { prepareQueueTrigger } from "./queue";
import { prepareTimerTrigger } from "./timer";

/** Each trigger type's check of its TriggerDesc and name. */
export const PREPARE_TRIGGER: Readonly<Record<TriggerType, PrepareTrigger>> = {
  timer: prepareTimerTrigger,
  http: prepareHttpTrigger,
  ckafka: prepareQueueTrigger,
  cos: prepareCosTrigger,
};

/**
 * An http trigger's (function URL's) address on the origin of `requestUrl`; undefined for other
 * types, or without a request URL.
 */
export function triggerUrlOf(requestUrl: string | undefined, row: TriggerRow): string | undefined {
  if (row.type !== "http" || requestUrl === undefined) return undefined;
  return httpTriggerUrl(requestUrl, row);
}
