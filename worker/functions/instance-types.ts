// Compute sizes (pure): Cloudflare's container instance types, which one a function's memorySize
// runs in (the var CONTAINER_SIZES over the container classes of wrangler.toml), the log limit its
// disk allows, and the concurrency knobs FUNCTION_MAX_CONCURRENCY and DEFAULT_MAX_CONCURRENCY.
// Here (functions/) rather than with the instances: the registry and the schedulers need it too.
import { IMAGE_CLASS_INDEX, INSTANCE_CLASSES, type SizeInstanceType } from "../shared/objects";
import { DEFAULT_LOG_LIMIT_MB, MAX_CONCURRENCY_LIMIT, MAX_MEMORY_MB, MIN_MEMORY_MB } from "./model";

/** One Cloudflare container instance type (developers.cloudflare.com/containers/platform/limits). */
export interface InstanceType {
  vcpu: number;
  memoryMib: number;
  diskMb: number;
}

/** Cloudflare's instance types. Only those of a deployed container class (INSTANCE_CLASSES) are used. */
export const INSTANCE_TYPES = {
  lite: { vcpu: 1 / 16, memoryMib: 256, diskMb: 2_000 },
  basic: { vcpu: 1 / 4, memoryMib: 1_024, diskMb: 4_000 },
  "standard-1": { vcpu: 1 / 2, memoryMib: 4_096, diskMb: 8_000 },
  "standard-2": { vcpu: 1, memoryMib: 6_144, diskMb: 12_000 },
  "standard-3": { vcpu: 2, memoryMib: 8_192, diskMb: 16_000 },
  "standard-4": { vcpu: 4, memoryMib: 12_288, diskMb: 20_000 },
} as const satisfies Record<string, InstanceType>;

/**
 * Memory a container needs on top of its function's memorySize, in MB: the runtime agent (Node)
 * and the code extraction. scripts/container-guard.mjs gives local containers the same overhead.
 */
export const AGENT_OVERHEAD_MB = 128;

/**
 * The log output (logLimitMb) an execution may keep, per instance type, in MiB: the agent spools it
 * to the container's disk, which also holds the image and the code. 3 GiB (MAX_LOG_LIMIT_MB) needs
 * at least standard-1's 8 GB; lite's 2 GB keeps 512 MiB (a function created there without a
 * logLimitMb gets that much, see defaultLogLimitMb).
 */
export const LOG_LIMIT_CAP_MB: Record<SizeInstanceType, number> = {
  lite: 512,
  basic: 1_024,
  "standard-1": 3_072,
  "standard-2": 3_072,
};

/** CONTAINER_SIZES when the var is absent or malformed. */
export const DEFAULT_CONTAINER_SIZES = "basic:512,standard-1:1536,standard-2:3072";
/** Longest CONTAINER_SIZES read; longer is malformed. */
const MAX_CONTAINER_SIZES_CHARS = 200;

/** One compute size: the container class whose instances run functions of memorySize ≤ maxMemoryMb. */
export interface ContainerSize {
  instanceType: SizeInstanceType;
  /** Index into INSTANCE_CLASSES (shared/objects.ts): the class's place in slot numbers. */
  classIndex: number;
  maxMemoryMb: number;
}

/** CONTAINER_SIZES read: the sizes in force, and why the text was refused (then the default's sizes). */
export interface ContainerSizesReading {
  sizes: ContainerSize[];
  problem?: string;
}

/** Reads a CONTAINER_SIZES text strictly: the sizes, or why it is malformed. */
function readSizes(text: string): ContainerSize[] | string {
  if (text.length > MAX_CONTAINER_SIZES_CHARS) return `longer than ${MAX_CONTAINER_SIZES_CHARS} characters`;
  const entries = text.split(",").map((entry) => entry.trim());
  const sizes: ContainerSize[] = [];
  for (const entry of entries) {
    const match = /^([a-z0-9-]+):([1-9][0-9]{0,5})$/.exec(entry);
    if (!match?.[1] || !match[2]) return `"${entry}" is not <instance type>:<largest memorySize in MB>`;
    const classIndex = INSTANCE_CLASSES.findIndex((entry) => entry.instanceType === match[1]);
    const deployed = classIndex === IMAGE_CLASS_INDEX ? undefined : INSTANCE_CLASSES[classIndex];
    if (!deployed || deployed.instanceType === "image") {
      const types = INSTANCE_CLASSES.filter((_, index) => index !== IMAGE_CLASS_INDEX).map((c) => c.instanceType);
      return `"${match[1]}" is no container class's instance type (${types.join(", ")})`;
    }
    if (sizes.some((size) => size.classIndex === classIndex)) return `"${match[1]}" is named twice`;
    const maxMemoryMb = Number(match[2]);
    const previous = sizes.at(-1);
    if (previous && maxMemoryMb <= previous.maxMemoryMb) return `bounds must ascend (${entry})`;
    if (maxMemoryMb < MIN_MEMORY_MB) return `${entry}: below the smallest memorySize, ${MIN_MEMORY_MB}`;
    const memoryMib = INSTANCE_TYPES[deployed.instanceType].memoryMib;
    if (maxMemoryMb + AGENT_OVERHEAD_MB > memoryMib) {
      return `${entry}: ${maxMemoryMb} MB + ${AGENT_OVERHEAD_MB} MB (agent) does not fit ${deployed.instanceType}'s ${memoryMib} MiB`;
    }
    sizes.push({ instanceType: deployed.instanceType, classIndex, maxMemoryMb });
  }
  const last = sizes.at(-1);
  if (!last || last.maxMemoryMb < MAX_MEMORY_MB) {
    return `the last bound must be at least ${MAX_MEMORY_MB} (the largest memorySize)`;
  }
  return sizes;
}

/** Reads CONTAINER_SIZES: absent means the default; malformed means the default, with the problem. */
export function parseContainerSizes(text: string | undefined): ContainerSizesReading {
  const fallback = readSizes(DEFAULT_CONTAINER_SIZES) as ContainerSize[];
  if (text === undefined || text.trim() === "") return { sizes: fallback };
  const read = readSizes(text.trim());
  return typeof read === "string" ? { sizes: fallback, problem: read } : { sizes: read };
}

/** The last CONTAINER_SIZES text read in this isolate and its reading (it is logged once per text). */
let lastRead: { text: string | undefined; reading: ContainerSizesReading } | undefined;

/** The compute sizes in force (env CONTAINER_SIZES); a malformed var is logged once and means the default. */
export function containerSizes(env: Pick<Env, "CONTAINER_SIZES">): ContainerSize[] {
  const text = env.CONTAINER_SIZES;
  if (lastRead?.text !== text) {
    const reading = parseContainerSizes(text);
    if (reading.problem) {
      console.warn(`CONTAINER_SIZES ignored (${reading.problem}); using ${DEFAULT_CONTAINER_SIZES}`);
    }
    lastRead = { text, reading };
  }
  return lastRead.reading.sizes;
}

/**
 * The container class (index into INSTANCE_CLASSES) an event of a function runs in: the image class
 * for an image function (whatever its memorySize), else its memorySize's compute size's.
 */
export function eventClassOf(memoryMb: number, image: boolean, sizes: ContainerSize[]): number {
  return image ? IMAGE_CLASS_INDEX : sizeForMemory(memoryMb, sizes).classIndex;
}

/** The compute size of a memorySize: the first whose bound holds it (past every bound: the largest). */
export function sizeForMemory(memoryMb: number, sizes: ContainerSize[]): ContainerSize {
  const size = sizes.find((candidate) => memoryMb <= candidate.maxMemoryMb) ?? sizes.at(-1);
  if (!size) throw new Error("no compute sizes");
  return size;
}

/**
 * Why a log limit does not fit the disk of the size its memorySize runs in, or undefined: the
 * refusal names both settings and what would fit.
 */
export function logLimitProblem(logLimitMb: number, memoryMb: number, sizes: ContainerSize[]): string | undefined {
  const size = sizeForMemory(memoryMb, sizes);
  const cap = LOG_LIMIT_CAP_MB[size.instanceType];
  if (logLimitMb <= cap) return undefined;
  const larger = sizes.find((candidate) => LOG_LIMIT_CAP_MB[candidate.instanceType] >= logLimitMb);
  const remedy = larger
    ? ` Lower logLimitMb to ${cap}, or raise memorySize above ${size.maxMemoryMb} MB (${larger.instanceType} keeps up to ${LOG_LIMIT_CAP_MB[larger.instanceType]} MiB).`
    : ` Lower logLimitMb to ${cap}.`;
  return `logLimitMb: ${logLimitMb} MiB does not fit memorySize ${memoryMb} MB, which runs on instance type ${size.instanceType} (${INSTANCE_TYPES[size.instanceType].diskMb / 1000} GB disk, at most ${cap} MiB of log).${remedy}`;
}

/**
 * The logLimitMb of a function created without one: DEFAULT_LOG_LIMIT_MB, or the cap of its
 * memorySize's compute size when that keeps less (512 MiB on lite), so that naming a small size in
 * CONTAINER_SIZES never makes a plain create fail the disk check.
 */
export function defaultLogLimitMb(memoryMb: number, sizes: ContainerSize[]): number {
  return Math.min(DEFAULT_LOG_LIMIT_MB, LOG_LIMIT_CAP_MB[sizeForMemory(memoryMb, sizes).instanceType]);
}

/**
 * The log limit (MiB) one execution keeps in a container of `instanceType`: the function's logLimitMb
 * (or the default), never above the cap of that type's disk (LOG_LIMIT_CAP_MB). A function whose
 * logLimitMb was accepted under other compute sizes may exceed it (`clamped`: the instance clamps,
 * the event says so in a [PLATFORM] line at its start).
 */
export function effectiveLogLimitMb(
  logLimitMb: number | undefined,
  instanceType: SizeInstanceType,
): { limitMb: number; clamped: boolean; configuredMb: number } {
  const configuredMb = logLimitMb ?? DEFAULT_LOG_LIMIT_MB;
  const cap = LOG_LIMIT_CAP_MB[instanceType];
  return configuredMb > cap
    ? { limitMb: cap, clamped: true, configuredMb }
    : { limitMb: configuredMb, clamped: false, configuredMb };
}

/** Absolute bound of maxConcurrency (the schema's); FUNCTION_MAX_CONCURRENCY may only lower it. */
export const ABSOLUTE_MAX_CONCURRENCY = MAX_CONCURRENCY_LIMIT;
/** FUNCTION_MAX_CONCURRENCY when absent or malformed: the largest maxConcurrency a function may have. */
export const DEFAULT_FUNCTION_MAX_CONCURRENCY = 50;
/** DEFAULT_MAX_CONCURRENCY when absent or malformed: the maxConcurrency of a function created without one. */
export const DEFAULT_DEFAULT_MAX_CONCURRENCY = 10;

/** A whole number from 1 to max in a var's text, or undefined. */
function wholeNumber(text: string | undefined, max: number): number | undefined {
  if (text === undefined || !/^[1-9][0-9]{0,6}$/.test(text.trim())) return undefined;
  const value = Number(text.trim());
  return value <= max ? value : undefined;
}

/** The largest maxConcurrency a function may be given (FUNCTION_MAX_CONCURRENCY, 1-1000, default 50). */
export function functionMaxConcurrency(env: Pick<Env, "FUNCTION_MAX_CONCURRENCY">): number {
  return wholeNumber(env.FUNCTION_MAX_CONCURRENCY, ABSOLUTE_MAX_CONCURRENCY) ?? DEFAULT_FUNCTION_MAX_CONCURRENCY;
}

/**
 * The maxConcurrency of a function created without one (DEFAULT_MAX_CONCURRENCY, default 10), never
 * above FUNCTION_MAX_CONCURRENCY.
 */
export function defaultMaxConcurrency(env: Pick<Env, "FUNCTION_MAX_CONCURRENCY" | "DEFAULT_MAX_CONCURRENCY">): number {
  const bound = functionMaxConcurrency(env);
  const value = wholeNumber(env.DEFAULT_MAX_CONCURRENCY, ABSOLUTE_MAX_CONCURRENCY) ?? DEFAULT_DEFAULT_MAX_CONCURRENCY;
  return Math.min(value, bound);
}

/** Why a maxConcurrency is over the configured bound, or undefined. */
export function maxConcurrencyProblem(
  maxConcurrency: number,
  env: Pick<Env, "FUNCTION_MAX_CONCURRENCY">,
): string | undefined {
  const bound = functionMaxConcurrency(env);
  return maxConcurrency <= bound
    ? undefined
    : `maxConcurrency: at most ${bound} on this platform (FUNCTION_MAX_CONCURRENCY), got ${maxConcurrency}`;
}
