// The namespace quota's bounds, timings and the shapes of its RPC answers, with the pure checks of
// what callers hand it. No storage and no I/O here.

/**
 * Containers one namespace may run at once when `NAMESPACE_MAX_CONTAINERS` is unset or invalid:
 * half of the platform's `max_instances` (50, wrangler.toml), so that one tenant's burst always
 * leaves at least half of the containers to every other tenant.
 */
export const DEFAULT_NAMESPACE_MAX_CONTAINERS = 25;
/** Largest accepted `NAMESPACE_MAX_CONTAINERS`; a larger value counts as invalid (default applies). */
export const NAMESPACE_MAX_CONTAINERS_CEILING = 10_000;
/** Most leases one acquire call may ask for (a scheduler asks for at most maxConcurrency, 50). */
export const MAX_LEASES_PER_ACQUIRE = 100;
/** How often the lease audit runs while leases or waiting schedulers exist. */
export const LEASE_AUDIT_INTERVAL_MS = 60_000;
/**
 * A lease is audited only once unchanged for this long: a younger one may belong to a start still
 * in flight (granted, its instance not yet running the event).
 */
export const LEASE_AUDIT_MIN_AGE_MS = 60_000;
/** How many instances the lease audit asks at once. */
export const LEASE_AUDIT_PARALLELISM = 25;
/**
 * A woken scheduler holds a reservation on the room it was woken for this long: other schedulers
 * of the namespace cannot take it first. Past it (a lost wake) the room is free for anyone and the
 * scheduler is woken again at the next release or audit.
 */
export const WAKE_RESERVATION_MS = 5_000;

/**
 * An eviction whose instance has not answered within this long counts as refused (the idle lease
 * stays, the acquire is refused and waits); a mark older than this (the object restarted while
 * evicting) is cleared.
 */
export const EVICTION_TIMEOUT_MS = 30_000;

/**
 * Reads the per-namespace container cap from the `NAMESPACE_MAX_CONTAINERS` var: a whole number
 * from 1 to NAMESPACE_MAX_CONTAINERS_CEILING. Anything else falls back to the default.
 */
export function parseNamespaceMaxContainers(value: unknown): number {
  if (typeof value !== "string" || !/^[0-9]{1,6}$/.test(value.trim())) return DEFAULT_NAMESPACE_MAX_CONTAINERS;
  const parsed = Number(value.trim());
  if (parsed < 1 || parsed > NAMESPACE_MAX_CONTAINERS_CEILING) return DEFAULT_NAMESPACE_MAX_CONTAINERS;
  return parsed;
}

/** One event a scheduler asks to run on one of its instance slots. */
export interface LeaseRequest {
  requestId: string;
  slot: number;
}

/** Answer to acquire: the RequestIds that may start, those that must wait, or why none was read. */
export interface AcquireResult {
  granted: string[];
  refused: string[];
  /** Set when the request was malformed (a caller's bug): nothing was granted or stored. */
  error?: string;
}

/** One lease, as the snapshot shows it. */
export interface LeaseView {
  /** The instance slot whose container the lease counts (`scheduler#slot`, the instance's name). */
  instance: string;
  scheduler: string;
  slot: number;
  /** The event the slot runs, or null while its container is idle (kept warm). */
  requestId: string | null;
  acquiredAt: number;
  /** True while the quota object destroys this idle container to give its room to another slot. */
  evicting: boolean;
}

/** One waiting scheduler, oldest first; wokenAt is set while its wake reservation holds. */
export interface WaiterView {
  scheduler: string;
  wokenAt: number | null;
}

/** State of one namespace's quota (observability and tests). */
export interface QuotaSnapshot {
  limit: number;
  leases: LeaseView[];
  waiters: WaiterView[];
}

/** A cap given by a caller: a whole number from 1 to the ceiling, else the default. */
export function validLimit(limit: number): number {
  return Number.isInteger(limit) && limit >= 1 && limit <= NAMESPACE_MAX_CONTAINERS_CEILING
    ? limit
    : DEFAULT_NAMESPACE_MAX_CONTAINERS;
}

/** Why an acquire is malformed (an internal caller's bug), or undefined when it is well formed. */
export function checkAcquire(scheduler: string, requests: LeaseRequest[]): string | undefined {
  if (typeof scheduler !== "string" || scheduler.length === 0) return "acquire needs a scheduler name";
  if (!Array.isArray(requests) || requests.length > MAX_LEASES_PER_ACQUIRE) {
    return `acquire takes a list of at most ${MAX_LEASES_PER_ACQUIRE} leases`;
  }
  const wellFormed = requests.every(
    (request) =>
      typeof request?.requestId === "string" && request.requestId.length > 0 && Number.isInteger(request.slot),
  );
  return wellFormed ? undefined : "acquire needs a RequestId and a slot number for every lease";
}
