import { PlatformError } from "../shared/errors";
import { QpsLimiter } from "./qps-limiter";

/**
 * Reads per second per caller (SecretId), shared by every list and log read: REST event lists,
 * one event's log (paged or followed) and payload, function logs, and the Tencent `ListAsyncEvents` and
 * `GetFunctionLogs` actions. Counted per isolate, as the invoke QPS limit is.
 */
export const READ_RATE_PER_SECOND = 20;
/** What a refused read is told to wait, in seconds (the `Retry-After` header). */
export const READ_RETRY_AFTER_SECONDS = 1;

const limiter = new QpsLimiter();

/** Admits one read for the caller, or throws RATE_LIMITED carrying `retryAfterSeconds`. */
export function admitRead(secretId: string, nowMs = Date.now()): void {
  if (limiter.tryAdmit(secretId, READ_RATE_PER_SECOND, nowMs)) return;
  throw new PlatformError(
    "RATE_LIMITED",
    `over ${READ_RATE_PER_SECOND} list and log reads per second for this SecretId; retry after ${READ_RETRY_AFTER_SECONDS} s, or poll one event's status (GET /v1/events/{requestId})`,
    { retryAfterSeconds: READ_RETRY_AFTER_SECONDS },
  );
}
