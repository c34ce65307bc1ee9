import type { DispatchMessage } from "./dispatch-message";

/**
 * What sending a dispatch message reads from the environment. CHAOS_DUPLICATE_DISPATCH is a
 * test-only fault switch (see sendDispatch); it is optional so that an environment without it
 * means "off".
 */
export type DispatchSendEnv = Pick<Env, "DISPATCH_QUEUE" | "DIAGNOSTICS_ENABLED"> & {
  CHAOS_DUPLICATE_DISPATCH?: string;
};

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
  if (!duplicateDispatchEnabled(env)) {
    await env.DISPATCH_QUEUE.send(message);
    return;
  }
  const plan = duplicatePlan(message.requestId);
  const original = plan.kind === "original-delayed" ? { delaySeconds: plan.delaySeconds } : {};
  const copy = plan.kind === "copy-delayed" ? { delaySeconds: plan.delaySeconds } : {};
  await env.DISPATCH_QUEUE.send(message, original);
  await env.DISPATCH_QUEUE.send(message, copy);
}
