/**
 * Names and typed stubs of the platform's Durable Objects: the one place that knows how each
 * object is named. The stub types come from the bindings in `Env` (worker-configuration.d.ts), so
 * a caller gets the object's RPC methods without importing the class (nor the layer it lives in).
 */
import { stableShard } from "./stable-shard";

/** Name of the one platform-wide capacity object. */
export const PLATFORM_CAPACITY_NAME = "platform";

/** Scheduler (one per function) name: `namespace/function`. */
export function schedulerName(namespace: string, functionName: string): string {
  return `${namespace}/${functionName}`;
}

/**
 * Instance slots one scheduler shard owns at most: a function whose maxConcurrency is above it has
 * ceil(maxConcurrency / SCHEDULER_SHARD_SLOTS) schedulers, so that no one Durable Object takes more
 * than about 250 submissions and 250 releases per second for events of 1 s or longer (ARCHITECTURE.md,
 * "Scaling": Cloudflare's soft guide of about 1,000 requests per second per object).
 */
export const SCHEDULER_SHARD_SLOTS = 250;
/** Most scheduler shards of one function: the absolute maxConcurrency ceiling (1,000) over SCHEDULER_SHARD_SLOTS. */
export const MAX_SCHEDULER_SHARDS = 4;
/** Separates a function's scheduler name from a shard's number: `namespace/function~k` (names never hold `~`). */
const SHARD_SEPARATOR = "~";

/** How many scheduler shards a function of this maxConcurrency has (1 up to SCHEDULER_SHARD_SLOTS slots). */
export function schedulerShardCount(maxConcurrency: number): number {
  const wanted = Math.ceil(Math.max(1, maxConcurrency) / SCHEDULER_SHARD_SLOTS);
  return Math.min(MAX_SCHEDULER_SHARDS, Math.max(1, wanted));
}

/** The name of shard `shard` of a function's scheduler: shard 0 is the function's scheduler name itself. */
export function schedulerShardName(namespace: string, functionName: string, shard: number): string {
  const base = schedulerName(namespace, functionName);
  return shard === 0 ? base : `${base}${SHARD_SEPARATOR}${shard}`;
}

/** A stable shard number of a RequestId among `count` shards (FNV-1a, see stableShard). */
export function shardOfRequest(requestId: string, count: number): number {
  return stableShard(requestId, count);
}

/**
 * The scheduler (shard) an event is dispatched to: by its RequestId among its function's shards,
 * the count decided by the maxConcurrency of its snapshot (the same in every message of the event).
 */
export function eventSchedulerName(
  namespace: string,
  functionName: string,
  requestId: string,
  maxConcurrency: number,
): string {
  return schedulerShardName(namespace, functionName, shardOfRequest(requestId, schedulerShardCount(maxConcurrency)));
}

/**
 * The scheduler names that may hold an event whose maxConcurrency is not known here (one per
 * possible shard count, without repeats: shard 0, the function's scheduler, first).
 */
export function candidateSchedulerNames(namespace: string, functionName: string, requestId: string): string[] {
  const names = new Set<string>();
  for (let count = 1; count <= MAX_SCHEDULER_SHARDS; count++) {
    names.add(schedulerShardName(namespace, functionName, shardOfRequest(requestId, count)));
  }
  return [...names];
}

/** Every possible scheduler shard name of a function (shard 0 first): what pause and resume reach. */
export function allSchedulerShardNames(namespace: string, functionName: string): string[] {
  return Array.from({ length: MAX_SCHEDULER_SHARDS }, (_, shard) => schedulerShardName(namespace, functionName, shard));
}

/** A scheduler name read back into its function's scheduler name and shard number (0 for an unsharded name). */
export function parseSchedulerShard(name: string): { functionScheduler: string; shard: number } {
  const at = name.lastIndexOf(SHARD_SEPARATOR);
  if (at < 0) return { functionScheduler: name, shard: 0 };
  const shard = Number(name.slice(at + 1));
  if (!Number.isInteger(shard) || shard < 1 || shard >= MAX_SCHEDULER_SHARDS)
    return { functionScheduler: name, shard: 0 };
  return { functionScheduler: name.slice(0, at), shard };
}

/**
 * The slots shard `shard` of `count` owns of a function's maxConcurrency: an even split, the first
 * shards taking one more when it does not divide (never below 1: a shard always runs its events).
 */
export function shardConcurrency(maxConcurrency: number, shard: number, count: number): number {
  if (count <= 1) return maxConcurrency;
  const base = Math.floor(maxConcurrency / count);
  return Math.max(1, base + (shard < maxConcurrency % count ? 1 : 0));
}

/**
 * The container classes function instances live in, one per compute size (wrangler.toml
 * [[containers]] with these instance types; which memorySize goes where is CONTAINER_SIZES, see
 * functions/instance-types.ts). A slot number carries its class: slot = class index ×
 * SLOT_CLASS_STRIDE + the slot's number within the class, so every name made from a scheduler and a
 * slot (the instance's, its namespace lease's, the event's instanceId) reaches the same class.
 */
export const INSTANCE_CLASSES = [
  { binding: "INSTANCE", className: "InstanceContainer", instanceType: "basic" },
  { binding: "INSTANCE_STANDARD", className: "InstanceContainerStandard", instanceType: "standard-1" },
  { binding: "INSTANCE_LARGE", className: "InstanceContainerLarge", instanceType: "standard-2" },
  // Image functions (wrangler.toml: scheduling_policy "durable_object"): the instance picks the image
  // and the Cloudflare instance type (from memorySize) at each start, so "image" names no type.
  { binding: "IMAGE_INSTANCE", className: "ImageContainer", instanceType: "image" },
  // The smallest size, for small functions in great numbers (opt-in: CONTAINER_SIZES names it). Last,
  // since a class's place is part of every slot number stored before it existed.
  { binding: "INSTANCE_LITE", className: "InstanceContainerLite", instanceType: "lite" },
] as const;
/** The container class (index into INSTANCE_CLASSES) of every image function's instances. */
export const IMAGE_CLASS_INDEX = 3;
/** The binding of one container class. */
export type InstanceBinding = (typeof INSTANCE_CLASSES)[number]["binding"];
/** The instance type of one container class. */
export type ClassInstanceType = (typeof INSTANCE_CLASSES)[number]["instanceType"];
/** The Cloudflare instance type of a compute size (every class's but the image class's "image"). */
export type SizeInstanceType = Exclude<ClassInstanceType, "image">;
/** Slot numbers per container class (a function never has more slots than its maxConcurrency, ≤ 1000). */
export const SLOT_CLASS_STRIDE = 1_000_000;

/** The container class (index into INSTANCE_CLASSES) of a slot number; unknown ones read as the first. */
export function classOfSlot(slot: number): number {
  const index = Math.floor(slot / SLOT_CLASS_STRIDE);
  return index >= 0 && index < INSTANCE_CLASSES.length ? index : 0;
}

/** The container class of a slot number (see classOfSlot). */
export function instanceClassOf(slot: number): (typeof INSTANCE_CLASSES)[number] {
  return INSTANCE_CLASSES[classOfSlot(slot)] ?? INSTANCE_CLASSES[0];
}

/** The slot number of the `number`-th slot (from 0) in a container class. */
export function slotInClass(classIndex: number, number: number): number {
  return classIndex * SLOT_CLASS_STRIDE + number;
}

/**
 * Instance (one per scheduler slot) name: `namespace/function#n` in the first class (basic),
 * `namespace/function#n@<instance type>` in the others (n: the slot's number within its class).
 */
export function instanceName(schedulerName: string, slot: number): string {
  const index = Math.floor(slot / SLOT_CLASS_STRIDE);
  const type = index > 0 ? INSTANCE_CLASSES[index]?.instanceType : undefined;
  return type ? `${schedulerName}#${slot % SLOT_CLASS_STRIDE}@${type}` : `${schedulerName}#${slot}`;
}

/** An instance name (instanceName) read back into its scheduler name and slot; undefined if it is none. */
export function parseInstanceName(name: string): { schedulerName: string; slot: number } | undefined {
  const match = /^(.+)#(0|[1-9][0-9]{0,5})(?:@([a-z0-9-]{1,16}))?$/.exec(name);
  if (!match?.[1] || match[2] === undefined) return undefined;
  const number = Number(match[2]);
  if (match[3] === undefined) return { schedulerName: match[1], slot: number };
  const index = INSTANCE_CLASSES.findIndex((entry) => entry.instanceType === match[3]);
  if (index <= 0) return undefined;
  return { schedulerName: match[1], slot: slotInClass(index, number) };
}

/** The instance type of the container class an instance name lives in (basic for a name of no slot). */
export function instanceTypeOfName(name: string): ClassInstanceType {
  const parsed = parseInstanceName(name);
  return instanceClassOf(parsed ? parsed.slot : 0).instanceType;
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

/**
 * One container instance, by its instance name, in the container class its name says (a name of
 * no slot, such as the health probe's, in the first).
 */
export function instanceStub(env: Pick<Env, InstanceBinding>, name: string) {
  const parsed = parseInstanceName(name);
  const binding = instanceClassOf(parsed ? parsed.slot : 0).binding;
  // The classes share one implementation (instances/instance-classes.ts): one stub type serves all.
  const namespace = env[binding] as Env["INSTANCE"];
  return namespace.get(namespace.idFromName(name));
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
