// Pause / resume dispatch per function: the service the REST routes (api/routes/dispatch.ts) and
// GET of a function call. The state lives in the function's FunctionSchedulerObject (it decides
// dispatch), durable in its SQLite settings; invocations are accepted as ever while paused.
import { forgetDispatchRunning } from "../events/paused-backlog";
import { FunctionRegistry } from "../functions/registry";
import { PlatformError } from "../shared/errors";
import { allSchedulerShardNames, schedulerName, schedulerStub } from "../shared/objects";
import { answerWithin } from "../shared/within";
import type { DispatchState } from "./function-scheduler-object";

/** The function's dispatch as the API shows it (pausedAt as an ISO date). */
export interface PublicDispatchState {
  namespace: string;
  functionName: string;
  dispatchPaused: boolean;
  pausedAt: string | null;
  pendingEvents: number;
}

/**
 * What the function's GET adds: whether its dispatch is paused, and since when; both null when its
 * scheduler does not answer within DISPATCH_FIELDS_TIMEOUT_MS (or fails): unknown, not an error.
 */
export type FunctionDispatchFields =
  | Pick<PublicDispatchState, "dispatchPaused" | "pausedAt">
  | { dispatchPaused: null; pausedAt: null };

/** How long GET of a function waits for its scheduler's dispatch state; then both fields are null. */
export const DISPATCH_FIELDS_TIMEOUT_MS = 300;

function publicState(namespace: string, functionName: string, state: DispatchState): PublicDispatchState {
  return {
    namespace,
    functionName,
    dispatchPaused: state.dispatchPaused,
    pausedAt: state.pausedAt === null ? null : new Date(state.pausedAt).toISOString(),
    pendingEvents: state.pendingEvents,
  };
}

function scheduler(env: Pick<Env, "SCHEDULER">, namespace: string, functionName: string) {
  return schedulerStub(env, schedulerName(namespace, functionName));
}

/**
 * Pauses every scheduler shard the function may have (shared/objects.ts MAX_SCHEDULER_SHARDS, the
 * first its own scheduler), each named so it can resume; answers shard 0's pause time and the
 * events waiting in all of them. A shard that fails fails the pause (it is idempotent: retried whole).
 */
async function pauseShards(
  env: Pick<Env, "SCHEDULER">,
  namespace: string,
  functionName: string,
): Promise<DispatchState> {
  const states = await Promise.all(
    allSchedulerShardNames(namespace, functionName).map((name) => schedulerStub(env, name).pauseDispatch(name)),
  );
  return combined(states);
}

/** Resumes every scheduler shard of the function (see pauseShards). */
export async function resumeShards(
  env: Pick<Env, "SCHEDULER">,
  namespace: string,
  functionName: string,
): Promise<DispatchState> {
  const states = await Promise.all(
    allSchedulerShardNames(namespace, functionName).map((name) => schedulerStub(env, name).resumeDispatch()),
  );
  return combined(states);
}

/** The shards' states as one: shard 0's pause, the sum of their waiting events. */
function combined(states: DispatchState[]): DispatchState {
  const first = states[0] ?? { dispatchPaused: false, pausedAt: null, pendingEvents: 0 };
  return { ...first, pendingEvents: states.reduce((sum, state) => sum + state.pendingEvents, 0) };
}

/**
 * Pauses the function's dispatch: accepted events stay queued (their status shows
 * `queuedReason: "paused"`); events already handed to an instance are not affected. Idempotent.
 * FUNCTION_NOT_FOUND for a function that does not exist.
 */
export async function pauseDispatch(env: Env, namespace: string, functionName: string): Promise<PublicDispatchState> {
  const registry = new FunctionRegistry(env);
  await registry.get(namespace, functionName);
  const state = await pauseShards(env, namespace, functionName);
  forgetDispatchRunning(namespace, functionName);
  // A delete between the check and the pause would leave the deleted function's scheduler paused:
  // checked again (from D1, not the isolate's cache) and rolled back. The delete resumes after
  // removing the row, and create resumes too, so either order ends unpaused.
  await registry.get(namespace, functionName).catch(async (error: unknown) => {
    if (error instanceof PlatformError && error.code === "FUNCTION_NOT_FOUND")
      await resumeShards(env, namespace, functionName);
    throw error;
  });
  return publicState(namespace, functionName, state);
}

/**
 * Resumes the function's dispatch: the events held meanwhile start, oldest first, within the
 * function's concurrency. Idempotent. FUNCTION_NOT_FOUND for a function that does not exist.
 */
export async function resumeDispatch(env: Env, namespace: string, functionName: string): Promise<PublicDispatchState> {
  await new FunctionRegistry(env).get(namespace, functionName);
  const state = await resumeShards(env, namespace, functionName);
  return publicState(namespace, functionName, state);
}

/**
 * Whether an existing function's dispatch is paused (one call to its scheduler, bounded by
 * DISPATCH_FIELDS_TIMEOUT_MS): `dispatchPaused: null, pausedAt: null` when the scheduler fails or
 * does not answer in time, so that GET of the function never fails on it.
 */
export async function functionDispatchFields(
  env: Pick<Env, "SCHEDULER">,
  namespace: string,
  functionName: string,
): Promise<FunctionDispatchFields> {
  const state = await answerWithin(
    scheduler(env, namespace, functionName).dispatchState(),
    DISPATCH_FIELDS_TIMEOUT_MS,
    null,
  );
  if (state === null) return { dispatchPaused: null, pausedAt: null };
  return { dispatchPaused: state.dispatchPaused, pausedAt: publicState(namespace, functionName, state).pausedAt };
}
