import { configEntries } from "../shared/config-entries";
import { FUNCTION_NAME_PATTERN, NAMESPACE_PATTERN } from "../shared/names";
import { stableShard } from "../shared/stable-shard";
import { type DispatchMessage, INDEX_ROW_MESSAGE_KIND, type IndexRowMessage } from "./dispatch-message";
import type { EventIndexEntry } from "./event-index-entry";

/**
 * The dispatch queues wrangler.toml declares (scripts/dispatch-queues.mjs writes them: the same
 * count). One queue carries at most 5,000 messages a second (Cloudflare's published limit): two per
 * event (the dispatch and the end's index row, sendIndexRow), so about 2.5 functions at 1,000 QPS
 * each, and the 100 functions of the target need 40: a function's events go to one of
 * DISPATCH_QUEUES of them, chosen by its name, so that many functions spread over them while each
 * function's events keep one queue (ARCHITECTURE.md, "Scaling").
 */
export const DISPATCH_QUEUE_COUNT = 40;
/** The dispatch queues' bindings, in order: DISPATCH_QUEUE, DISPATCH_QUEUE_1, ... */
export const DISPATCH_QUEUE_BINDINGS: readonly string[] = Array.from({ length: DISPATCH_QUEUE_COUNT }, (_, index) =>
  index === 0 ? "DISPATCH_QUEUE" : `DISPATCH_QUEUE_${index}`,
);
/** The dispatch queues' names, in the same order: afp-dispatch, afp-dispatch-1, ... */
export const DISPATCH_QUEUE_NAMES: readonly string[] = Array.from({ length: DISPATCH_QUEUE_COUNT }, (_, index) =>
  index === 0 ? "afp-dispatch" : `afp-dispatch-${index}`,
);
const DISPATCH_QUEUE_NAME_SET: ReadonlySet<string> = new Set(DISPATCH_QUEUE_NAMES);
/** DISPATCH_QUEUES when absent or malformed: every dispatch queue. */
export const DEFAULT_DISPATCH_QUEUES = DISPATCH_QUEUE_BINDINGS.length;

/**
 * What sending a dispatch message reads from the environment. The queues past the first and
 * DISPATCH_QUEUES are optional (an environment without them sends everything to the first), and so
 * is the test-only fault switch CHAOS_DUPLICATE_DISPATCH (see sendDispatch): absent means "off".
 */
export type DispatchSendEnv = Pick<Env, "DISPATCH_QUEUE" | "DIAGNOSTICS_ENABLED"> &
  Partial<Pick<Env, "DISPATCH_QUEUES" | "DISPATCH_QUEUE_PINS">> & {
    CHAOS_DUPLICATE_DISPATCH?: string;
  };

/** How many dispatch queues are in use: DISPATCH_QUEUES, a whole number from 1 to all of them (default all). */
export function dispatchQueueCount(env: Pick<DispatchSendEnv, "DISPATCH_QUEUES">): number {
  const text = env.DISPATCH_QUEUES?.trim();
  if (text === undefined || !/^[1-9][0-9]?$/.test(text)) return DEFAULT_DISPATCH_QUEUES;
  const count = Number(text);
  return count <= DISPATCH_QUEUE_BINDINGS.length ? count : DEFAULT_DISPATCH_QUEUES;
}

/** The dispatch queue (index) of a function's events among `count`: FNV-1a of `namespace/function`. */
export function dispatchQueueIndex(namespace: string, functionName: string, count: number): number {
  return stableShard(`${namespace}/${functionName}`, count);
}

/** Functions DISPATCH_QUEUE_PINS may pin (entries past it are ignored, logged). */
export const MAX_PINNED_FUNCTIONS = 1_000;
/** Longest DISPATCH_QUEUE_PINS text read (the rest is ignored, logged). */
export const MAX_PINS_CHARS = 64 * 1024;

/** The parsed pins: `namespace/function` → its queues (indexes), and what was ignored. */
export interface DispatchQueuePins {
  byFunction: ReadonlyMap<string, readonly number[]>;
  problems: readonly string[];
}

/**
 * Parses DISPATCH_QUEUE_PINS: comma-separated `<namespace>/<function>=<queue>[|<queue>...]`
 * entries, each queue an index of a declared dispatch queue (0 for afp-dispatch, n for
 * afp-dispatch-n). A function pinned twice keeps its first entry; a malformed entry, a queue out of
 * range and functions past MAX_PINNED_FUNCTIONS are ignored, each with a problem.
 */
export function parseDispatchQueuePins(text: string | undefined): DispatchQueuePins {
  const byFunction = new Map<string, number[]>();
  const { entries, problems } = configEntries(text, "DISPATCH_QUEUE_PINS", MAX_PINS_CHARS);
  for (const entry of entries) {
    const match = /^([^/=\s]+\/[^/=\s]+)\s*=\s*([0-9]{1,2}(?:\s*\|\s*[0-9]{1,2})*)$/.exec(entry);
    const queues = match?.[2]?.split("|").map((part) => Number(part.trim()));
    if (!match || !queues || queues.some((queue) => queue >= DISPATCH_QUEUE_COUNT)) {
      problems.push(
        `DISPATCH_QUEUE_PINS entry "${entry.slice(0, 80)}" is not <namespace>/<function>=<queue 0-${DISPATCH_QUEUE_COUNT - 1}>[|...]: ignored`,
      );
      continue;
    }
    const name = match[1] as string;
    const [namespace = "", functionName = ""] = name.split("/");
    if (!NAMESPACE_PATTERN.test(namespace) || !FUNCTION_NAME_PATTERN.test(functionName)) {
      problems.push(`DISPATCH_QUEUE_PINS names "${name.slice(0, 100)}", which is not <namespace>/<function>: ignored`);
      continue;
    }
    if (byFunction.has(name)) {
      problems.push(`DISPATCH_QUEUE_PINS pins ${name} twice: the first kept`);
      continue;
    }
    if (byFunction.size >= MAX_PINNED_FUNCTIONS) {
      problems.push(`DISPATCH_QUEUE_PINS pins more than ${MAX_PINNED_FUNCTIONS} functions: ${name} and later ignored`);
      break;
    }
    byFunction.set(name, [...new Set(queues)]);
  }
  return { byFunction, problems };
}

const pinsByEnv = new WeakMap<object, { text: string | undefined; pins: DispatchQueuePins }>();

/** The environment's pins, parsed once per environment object and text; problems logged when parsed. */
export function dispatchQueuePins(env: Pick<DispatchSendEnv, "DISPATCH_QUEUE_PINS">): DispatchQueuePins {
  const known = pinsByEnv.get(env);
  if (known !== undefined && known.text === env.DISPATCH_QUEUE_PINS) return known.pins;
  const pins = parseDispatchQueuePins(env.DISPATCH_QUEUE_PINS);
  for (const problem of pins.problems) console.error(problem);
  pinsByEnv.set(env, { text: env.DISPATCH_QUEUE_PINS, pins });
  return pins;
}

/**
 * The queue (index) of one event: its function's pinned queues when DISPATCH_QUEUE_PINS names it
 * (several: spread over them by a hash of the RequestId), else the one its name hashes to among
 * the first DISPATCH_QUEUES.
 */
export function eventQueueIndex(
  env: Pick<DispatchSendEnv, "DISPATCH_QUEUES" | "DISPATCH_QUEUE_PINS">,
  message: Pick<DispatchMessage, "namespace" | "functionName" | "requestId">,
): number {
  const pinned = dispatchQueuePins(env).byFunction.get(`${message.namespace}/${message.functionName}`);
  if (pinned !== undefined && pinned.length > 0) {
    return pinned[stableShard(message.requestId, pinned.length)] as number;
  }
  return dispatchQueueIndex(message.namespace, message.functionName, dispatchQueueCount(env));
}

/** True for the name of one of the dispatch queues (the Worker consumes them all alike). */
export function isDispatchQueue(name: string): boolean {
  return DISPATCH_QUEUE_NAME_SET.has(name);
}

/** The queue a message goes to (the first one when its queue is not bound here). */
export function dispatchQueueOf(
  env: DispatchSendEnv,
  message: Pick<DispatchMessage, "namespace" | "functionName" | "requestId">,
): Queue {
  const index = eventQueueIndex(env, message);
  const binding = DISPATCH_QUEUE_BINDINGS[index] ?? "DISPATCH_QUEUE";
  return (env as unknown as Record<string, Queue | undefined>)[binding] ?? env.DISPATCH_QUEUE;
}

/** Longest delay of a delayed copy under the duplicate-dispatch fault switch, in seconds. */
export const CHAOS_MAX_DELAY_SECONDS = 3;

/** How one message is sent twice under the fault switch. */
export type DuplicatePlan =
  /** Both copies at once. */
  | { kind: "together" }
  /** The original at once, the copy after delaySeconds (it arrives after later messages). */
  | { kind: "copy-delayed"; delaySeconds: number }
  /** The original delayed by delaySeconds, the copy at once (the copy arrives first). */
  | { kind: "original-delayed"; delaySeconds: number };

/** True when the duplicate-dispatch fault switch is on: only with diagnostics on (local test runs). */
export function duplicateDispatchEnabled(env: DispatchSendEnv): boolean {
  return env.DIAGNOSTICS_ENABLED === "true" && env.CHAOS_DUPLICATE_DISPATCH === "true";
}

/**
 * The plan for one RequestId: a third of the events each way, and delays of 1 to
 * CHAOS_MAX_DELAY_SECONDS, both chosen from the RequestId so that a run can be reasoned about.
 */
export function duplicatePlan(requestId: string): DuplicatePlan {
  let hash = 0;
  for (const char of requestId) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  const delaySeconds = 1 + (Math.floor(hash / 3) % CHAOS_MAX_DELAY_SECONDS);
  switch (hash % 3) {
    case 0:
      return { kind: "together" };
    case 1:
      return { kind: "copy-delayed", delaySeconds };
    default:
      return { kind: "original-delayed", delaySeconds };
  }
}

/**
 * Enqueues an event's dispatch message. Under the test-only fault switch CHAOS_DUPLICATE_DISPATCH
 * (honoured only when DIAGNOSTICS_ENABLED is "true"), every message is sent twice, some copies
 * delayed or ahead of their original (see duplicatePlan): the at-least-once delivery the consumers
 * must absorb, made systematic for `npm run chaos`.
 */
export async function sendDispatch(env: DispatchSendEnv, message: DispatchMessage): Promise<void> {
  const queue = dispatchQueueOf(env, message);
  if (!duplicateDispatchEnabled(env)) {
    await queue.send(message);
    return;
  }
  const plan = duplicatePlan(message.requestId);
  const original = plan.kind === "original-delayed" ? { delaySeconds: plan.delaySeconds } : {};
  const copy = plan.kind === "copy-delayed" ? { delaySeconds: plan.delaySeconds } : {};
  await queue.send(message, original);
  await queue.send(message, copy);
}

/**
 * Sends an ended event's index row to its function's dispatch queue (see IndexRowMessage), whose
 * consumer writes it with the rest of its batch.
 */
export async function sendIndexRow(env: DispatchSendEnv, entry: EventIndexEntry): Promise<void> {
  const message: IndexRowMessage = { kind: INDEX_ROW_MESSAGE_KIND, entry };
  await dispatchQueueOf(env, entry).send(message);
}
