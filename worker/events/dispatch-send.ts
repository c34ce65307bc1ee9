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
  Partial<Pick<Env, "DISPATCH_QUEUES">> & {
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

/** True for the name of one of the dispatch queues (the Worker consumes them all alike). */
export function isDispatchQueue(name: string): boolean {
  return DISPATCH_QUEUE_NAME_SET.has(name);
}

/** The queue a message goes to (the first one when its function's queue is not bound here). */
export function dispatchQueueOf(
  env: DispatchSendEnv,
  message: Pick<DispatchMessage, "namespace" | "functionName">,
): Queue {
  const index = dispatchQueueIndex(message.namespace, message.functionName, dispatchQueueCount(env));
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
