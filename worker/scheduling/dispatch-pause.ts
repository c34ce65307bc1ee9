// Pause / resume dispatch per function: the service the REST routes (api/routes/dispatch.ts) and
// GET of a function call. The state lives in the function's FunctionSchedulerObject (it decides
// dispatch), durable in its SQLite settings; invocations are accepted as ever while paused.
import { FunctionRegistry } from "../functions/registry";
import { schedulerName, schedulerStub } from "../shared/objects";
import type { DispatchState } from "./function-scheduler-object";

/** The function's dispatch as the API shows it (pausedAt as an ISO date). */
export interface PublicDispatchState {
  namespace: string;
  functionName: string;
  dispatchPaused: boolean;
  pausedAt: string | null;
  pendingEvents: number;
}

/** What the function's GET adds: whether its dispatch is paused, and since when. */
export type FunctionDispatchFields = Pick<PublicDispatchState, "dispatchPaused" | "pausedAt">;

function publicState(namespace: string, functionName: string, state: DispatchState): PublicDispatchState {
  return {
    namespace,
    functionName,
    dispatchPaused: state.dispatchPaused,
    pausedAt: state.pausedAt === null ? null : new Date(state.pausedAt).toISOString(),
    pendingEvents: state.pendingEvents,
  };
}

function scheduler(env: Env, namespace: string, functionName: string) {
  return schedulerStub(env, schedulerName(namespace, functionName));
}

/**
 * Pauses the function's dispatch: accepted events stay queued (their status shows
 * `queuedReason: "paused"`); events already handed to an instance are not affected. Idempotent.
 * FUNCTION_NOT_FOUND for a function that does not exist.
 */
export async function pauseDispatch(env: Env, namespace: string, functionName: string): Promise<PublicDispatchState> {
  await new FunctionRegistry(env).get(namespace, functionName);
  const state = await scheduler(env, namespace, functionName).pauseDispatch(schedulerName(namespace, functionName));
  return publicState(namespace, functionName, state);
}

/**
 * Resumes the function's dispatch: the events held meanwhile start, oldest first, within the
 * function's concurrency. Idempotent. FUNCTION_NOT_FOUND for a function that does not exist.
 */
export async function resumeDispatch(env: Env, namespace: string, functionName: string): Promise<PublicDispatchState> {
  await new FunctionRegistry(env).get(namespace, functionName);
  const state = await scheduler(env, namespace, functionName).resumeDispatch();
  return publicState(namespace, functionName, state);
}

/** Whether an existing function's dispatch is paused (one call to its scheduler). */
export async function functionDispatchFields(
  env: Env,
  namespace: string,
  functionName: string,
): Promise<FunctionDispatchFields> {
  const state = await scheduler(env, namespace, functionName).dispatchState();
  return { dispatchPaused: state.dispatchPaused, pausedAt: publicState(namespace, functionName, state).pausedAt };
}
