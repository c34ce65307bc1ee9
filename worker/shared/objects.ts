/**
 * Names and typed stubs of the platform's Durable Objects: the one place that knows how each
 * object is named. The stub types come from the bindings in `Env` (worker-configuration.d.ts), so
 * a caller gets the object's RPC methods without importing the class (nor the layer it lives in).
 */

/** Name of the one platform-wide capacity object. */
export const PLATFORM_CAPACITY_NAME = "platform";

/** Scheduler (one per function) name: `namespace/function`. */
export function schedulerName(namespace: string, functionName: string): string {
  return `${namespace}/${functionName}`;
}

/** Instance (one per scheduler slot) name: `namespace/function#slot`. */
export function instanceName(schedulerName: string, slot: number): string {
  return `${schedulerName}#${slot}`;
}

/** The namespace of a scheduler name (`namespace/function`; a namespace never contains `/`). */
export function namespaceOfScheduler(schedulerName: string): string {
  const slash = schedulerName.indexOf("/");
  return slash < 0 ? schedulerName : schedulerName.slice(0, slash);
}

/** The event's state machine (one per RequestId). */
export function eventStub(env: Pick<Env, "ASYNC_EVENT">, requestId: string) {
  return env.ASYNC_EVENT.get(env.ASYNC_EVENT.idFromName(requestId));
}

/** A function's scheduler, by its scheduler name. */
export function schedulerStub(env: Pick<Env, "SCHEDULER">, name: string) {
  return env.SCHEDULER.get(env.SCHEDULER.idFromName(name));
}

/** One container instance, by its instance name. */
export function instanceStub(env: Pick<Env, "INSTANCE">, name: string) {
  return env.INSTANCE.get(env.INSTANCE.idFromName(name));
}

/** A namespace's container quota. */
export function namespaceQuotaStub(env: Pick<Env, "NAMESPACE_QUOTA">, namespace: string) {
  return env.NAMESPACE_QUOTA.get(env.NAMESPACE_QUOTA.idFromName(namespace));
}

/** The platform-wide container capacity. */
export function platformCapacityStub(env: Pick<Env, "PLATFORM_CAPACITY">) {
  return env.PLATFORM_CAPACITY.get(env.PLATFORM_CAPACITY.idFromName(PLATFORM_CAPACITY_NAME));
}

/** A QPS token bucket, by its key (`fn:namespace/function`). */
export function qpsBucketStub(env: Pick<Env, "QPS_BUCKET">, key: string) {
  return env.QPS_BUCKET.get(env.QPS_BUCKET.idFromName(key));
}

/**
 * Name of an idempotency key's reservation: `namespace/function/key` (neither a namespace nor a
 * function name contains `/`, so the key's scope is exactly its namespace and function).
 */
export function idempotencyName(namespace: string, functionName: string, key: string): string {
  return `${namespace}/${functionName}/${key}`;
}

/** The reservation of one idempotency key, by its name (idempotencyName). */
export function idempotencyStub(env: Pick<Env, "IDEMPOTENCY">, name: string) {
  return env.IDEMPOTENCY.get(env.IDEMPOTENCY.idFromName(name));
}

/** One shard of the signature replay ledger. */
export function signatureLedgerStub(env: Pick<Env, "SIGNATURE_LEDGER">, shard: string) {
  return env.SIGNATURE_LEDGER.get(env.SIGNATURE_LEDGER.idFromName(shard));
}

/** The delivery of one ended event's result to its function's destinations (one per RequestId). */
export function deliveryStub(env: Pick<Env, "DELIVERY">, requestId: string) {
  return env.DELIVERY.get(env.DELIVERY.idFromName(requestId));
}

/** A timer trigger's firing object (worker/triggers/timer-object.ts), by the trigger's id. */
export function timerTriggerStub(env: Pick<Env, "TIMER_TRIGGER">, triggerId: string) {
  return env.TIMER_TRIGGER.get(env.TIMER_TRIGGER.idFromName(triggerId));
}

/** A namespace's bulk termination jobs (worker/events/bulk-terminate-object.ts), by the namespace. */
export function bulkTerminationStub(env: Pick<Env, "BULK_TERMINATION">, namespace: string) {
  return env.BULK_TERMINATION.get(env.BULK_TERMINATION.idFromName(namespace));
}
