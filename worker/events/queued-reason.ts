// Why a queued event is still waiting: answered by its function's scheduler
// (scheduling/function-scheduler-object.ts queuedReason) and shown as `queuedReason` in the
// event's status (GET /v1/events/{requestId}).

/**
 * The reasons a queued event waits:
 * - `paused`: its function's dispatch is paused (POST .../dispatch/pause); it runs after resume;
 * - `concurrency`: its function already runs maxConcurrency events; it runs when one ends;
 * - `namespace-quota`: its namespace is at its container cap; it runs when a container is freed.
 */
export const QUEUED_REASONS = ["paused", "concurrency", "namespace-quota"] as const;
/** Why a queued event waits (see QUEUED_REASONS). */
export type QueuedReason = (typeof QUEUED_REASONS)[number];
