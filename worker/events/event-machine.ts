// The pure state machine of one async event: (state, command) → next state | refusal.
// The AsyncEvent Durable Object persists what this returns before any side effect.
import type { ExecutionOutcome } from "../contract/agent-contract";
import type { FunctionSnapshot } from "../functions/model";
import { type RpcResult, rpcFail, rpcOk } from "../shared/errors";
import { type EventIdentity, eventIdentityOf } from "./event-identity";
import { truncateUtf8, utf8Length } from "./text-bounds";

/** Internal phase of an event. */
export type EventPhase = "queued" | "starting" | "running" | "finished" | "failed" | "aborted";
/** SCF's public status. */
export type PublicStatus = "RUNNING" | "FINISHED" | "FAILED" | "ABORTED";

/** StatusCodes, as SCF reports them. */
export const STATUS_CODE = {
  SUCCESS: 200,
  USER_CODE_EXCEPTION: 430,
  TIMEOUT: 433,
  MEMORY_LIMIT: 434,
  USER_PROCESS_EXIT: 439,
  /**
   * Terminated on request without the handler ending by itself: forced, while queued or starting,
   * or still running when the grace period after a graceful terminate's SIGTERM ran out.
   */
  TERMINATED: 499,
  PLATFORM_ERROR: 500,
  /**
   * The platform stopped the container while the handler ran (Cloudflare's SIGTERM on a rollout or
   * a host drain; locally `docker kill -s TERM`). Not an SCF code: SCF documents none for this.
   */
  PLATFORM_STOPPED: 503,
} as const;

/** How one execution ended, as the instance observed it (declared by the container contract). */
export type { ExecutionOutcome };

/** Everything an event's Durable Object keeps about it (the payload is stored beside it). */
export interface EventState extends EventIdentity {
  function: FunctionSnapshot;
  phase: EventPhase;
  /** Grows with every transition; the D1 index never applies an older version over a newer one. */
  version: number;
  invokedAt: number;
  claimedAt?: number;
  startedAt?: number;
  endedAt?: number;
  instanceId?: string;
  /** The boot of the container that ran the handler (a fresh container has a new one). */
  containerId?: string;
  cold?: boolean;
  /** Set when a graceful terminate sent SIGTERM; the execution's end then makes the event ABORTED. */
  terminateRequestedAt?: number;
  statusCode?: number;
  /** JSON text of the handler's return value. */
  result?: string;
  errorMessage?: string;
  errorStack?: string;
  durationMs?: number;
  memoryUsageKb?: number;
  /** The RequestId of the event this one replays (POST /v1/events/{id}/replay), fixed at acceptance. */
  replayOf?: string;
  /** The RequestIds of this event's replays, oldest first: at most MAX_REPLAYS_LISTED. */
  replays?: string[];
  /** How many replays were recorded, listed or not (see recordReplay). */
  replayCount?: number;
}

/** Most replay RequestIds an event lists; past it the list stops growing and only replayCount grows. */
export const MAX_REPLAYS_LISTED = 100;

/**
 * The state with one more replay recorded, or undefined when nothing changes (the replay is
 * already listed: recording is idempotent). Past MAX_REPLAYS_LISTED the list stays as it is and
 * only replayCount grows; there a repeated recording of an unlisted replay cannot be recognised and
 * would count twice, so the replay service records each replay once and never repeats it. The
 * version is not raised: the event index holds nothing of the replays.
 */
export function recordReplay(state: EventState, replayRequestId: string): EventState | undefined {
  const replays = state.replays ?? [];
  if (replays.includes(replayRequestId)) return undefined;
  const replayCount = (state.replayCount ?? replays.length) + 1;
  return replays.length < MAX_REPLAYS_LISTED
    ? { ...state, replays: [...replays, replayRequestId], replayCount }
    : { ...state, replayCount };
}

/** A command to the state machine. */
export type EventCommand =
  | { type: "claim"; instanceId: string; at: number }
  | { type: "started"; instanceId: string; cold: boolean; containerId: string; at: number }
  | { type: "complete"; instanceId: string; outcome: ExecutionOutcome; at: number; memoryUsageKb?: number }
  | { type: "timeout"; at: number }
  | { type: "terminate"; graceful: boolean; at: number };

/** Why a command was refused. */
export type TransitionErrorCode = "ENDED" | "TERMINATING" | "CLAIMED_BY_OTHER" | "WRONG_INSTANCE";
/** A refused command's code and message. */
export type TransitionError = { code: TransitionErrorCode; message: string };

/** An applied command: the next state, or the same one (changed: false) when nothing changed. */
export interface Transition {
  state: EventState;
  changed: boolean;
}
/** Result of applying a command: the transition, or why the command was refused. */
export type TransitionResult = RpcResult<Transition, TransitionErrorCode>;

/**
 * Largest handler result kept (JSON text, UTF-8 bytes: 1 MiB). A larger return value FAILS the
 * event with a message naming this limit (the value is not kept); the agent caps it too.
 */
export const MAX_RESULT_BYTES = 1024 * 1024;
/** Largest errorMessage kept (UTF-8 bytes, 4 KiB); longer ones are cut with truncationMarker. */
export const MAX_ERROR_MESSAGE_BYTES = 4 * 1024;
/** Largest errorStack kept (UTF-8 bytes, 32 KiB); longer ones are cut with truncationMarker. */
export const MAX_ERROR_STACK_BYTES = 32 * 1024;

/** True once the event has ended. */
export function isTerminal(phase: EventPhase): boolean {
  return phase === "finished" || phase === "failed" || phase === "aborted";
}

/** SCF's status for an internal phase. */
export function publicStatus(phase: EventPhase): PublicStatus {
  switch (phase) {
    case "queued":
    case "starting":
    case "running":
      return "RUNNING";
    case "finished":
      return "FINISHED";
    case "failed":
      return "FAILED";
    case "aborted":
      return "ABORTED";
    default: {
      const unreachable: never = phase;
      return unreachable;
    }
  }
}

/** True when the instance that ran an execution with this outcome must not be reused. */
export function isAbnormal(outcome: ExecutionOutcome): boolean {
  return outcome.kind !== "returned";
}

/** The terminal phase and StatusCode an outcome leads to. */
export interface Ending {
  phase: "finished" | "failed" | "aborted";
  statusCode: number;
  result?: string;
  errorMessage?: string;
  errorStack?: string;
}

/** JSON text of a handler's return value, or undefined when it has none (a cycle, a BigInt). */
function resultJson(value: unknown): string | undefined {
  try {
    return JSON.stringify(value ?? null);
  } catch {
    return undefined;
  }
}

/** SCF's message for StatusCode 439: the handler's process exited while an event ran. */
export const USER_PROCESS_EXIT_MESSAGE = "User process exit when running";
/** The message of StatusCode 503 (PLATFORM_STOPPED), followed by how the handler ended. */
export const PLATFORM_STOPPED_MESSAGE = "Container stopped by the platform while the handler ran";

/** The ending of an execution whose container the platform stopped: FAILED, never ABORTED. */
function platformStoppedEnding(detail: string): Ending {
  return {
    phase: "failed",
    statusCode: STATUS_CODE.PLATFORM_STOPPED,
    errorMessage: `${PLATFORM_STOPPED_MESSAGE} (${detail})`,
  };
}

/** Maps an execution outcome to the event's terminal phase and StatusCode. */
export function endingOf(outcome: ExecutionOutcome, timeoutSeconds: number): Ending {
  switch (outcome.kind) {
    case "returned": {
      const result = resultJson(outcome.result);
      if (result === undefined) {
        return {
          phase: "failed",
          statusCode: STATUS_CODE.USER_CODE_EXCEPTION,
          errorMessage: "the handler's return value cannot be written as JSON",
        };
      }
      if (utf8Length(result) > MAX_RESULT_BYTES) {
        return {
          phase: "failed",
          statusCode: STATUS_CODE.USER_CODE_EXCEPTION,
          errorMessage: `the handler's return value is over ${MAX_RESULT_BYTES} bytes of JSON`,
        };
      }
      return { phase: "finished", statusCode: STATUS_CODE.SUCCESS, result };
    }
    case "threw":
      return {
        phase: "failed",
        statusCode: STATUS_CODE.USER_CODE_EXCEPTION,
        errorMessage: outcome.message,
        ...(outcome.stack ? { errorStack: outcome.stack } : {}),
      };
    case "timeout":
      return {
        phase: "failed",
        statusCode: STATUS_CODE.TIMEOUT,
        errorMessage: `Invocation timed out after ${timeoutSeconds} s`,
      };
    case "oom":
      return {
        phase: "failed",
        statusCode: STATUS_CODE.MEMORY_LIMIT,
        errorMessage: outcome.message ? `Memory limit exceeded: ${outcome.message}` : "Memory limit exceeded",
      };
    case "exited":
      return {
        phase: "failed",
        statusCode: STATUS_CODE.USER_PROCESS_EXIT,
        errorMessage:
          outcome.signal !== null
            ? `${USER_PROCESS_EXIT_MESSAGE} (signal ${outcome.signal})`
            : `${USER_PROCESS_EXIT_MESSAGE} (exit code ${outcome.code})`,
      };
    case "sigterm":
      // The agent forwarded a SIGTERM the user did not ask for (no terminate was requested):
      // only the platform's stop of the container sends one.
      return platformStoppedEnding("the handler was ended by SIGTERM");
    case "platform_stop":
      return platformStoppedEnding(outcome.message);
    case "crashed":
    case "error":
      return { phase: "failed", statusCode: STATUS_CODE.PLATFORM_ERROR, errorMessage: outcome.message };
    default: {
      // An outcome of a kind this worker does not know (an agent of another version): a platform error.
      const unknown: never = outcome;
      return {
        phase: "failed",
        statusCode: STATUS_CODE.PLATFORM_ERROR,
        errorMessage: `platform error: unknown execution outcome ${JSON.stringify((unknown as { kind?: unknown }).kind)}`,
      };
    }
  }
}

/** True for the outcomes the platform caused, which stay FAILED even after a terminate request. */
function isPlatformOutcome(outcome: ExecutionOutcome): boolean {
  return outcome.kind === "crashed" || outcome.kind === "error" || outcome.kind === "platform_stop";
}

/**
 * How an execution that was asked to stop with SIGTERM (graceful terminate) ends. One rule: the
 * status is ABORTED (the user asked), and the StatusCode and message say how the handler ended,
 * exactly as they would without the terminate: returned 200 (result kept), threw 430, exited
 * with any code or died of a signal 439 (SIGTERM itself: "SIGTERM not handled"), timed out 433,
 * over memory 434. Still running at the end of the grace period: 499 (see TERMINATED_AFTER_SIGTERM).
 * The platform's own failures (500) and stop (503) stay FAILED: the terminate did not cause them.
 */
export function terminatedEndingOf(outcome: ExecutionOutcome, timeoutSeconds: number): Ending {
  if (isPlatformOutcome(outcome)) return endingOf(outcome, timeoutSeconds);
  if (outcome.kind === "sigterm") {
    return {
      phase: "aborted",
      statusCode: STATUS_CODE.USER_PROCESS_EXIT,
      errorMessage: `${USER_PROCESS_EXIT_MESSAGE} (SIGTERM not handled)`,
    };
  }
  return { ...endingOf(outcome, timeoutSeconds), phase: "aborted" };
}

/** A forced terminate, or one of an event that was queued or starting (no handler ran). */
const TERMINATED_ENDING: Ending = {
  phase: "aborted",
  statusCode: STATUS_CODE.TERMINATED,
  errorMessage: "Terminated by request",
};

/**
 * A forced stop after a graceful terminate's SIGTERM: the grace period ran out with the handler
 * still running (or the user forced the terminate meanwhile).
 */
const TERMINATED_AFTER_SIGTERM: Ending = {
  phase: "aborted",
  statusCode: STATUS_CODE.TERMINATED,
  errorMessage: "Terminated by request: the handler was still running after SIGTERM and was stopped by force",
};

function end(state: EventState, ending: Ending, at: number, memoryUsageKb?: number): EventState {
  const { result, errorMessage, errorStack } = ending;
  return {
    ...state,
    phase: ending.phase,
    statusCode: ending.statusCode,
    version: state.version + 1,
    endedAt: at,
    durationMs: state.startedAt !== undefined ? at - state.startedAt : 0,
    ...(result !== undefined ? { result } : {}),
    // Bounded so that an oversized error can never make the event's state write fail.
    ...(errorMessage !== undefined
      ? { errorMessage: truncateUtf8(String(errorMessage), MAX_ERROR_MESSAGE_BYTES) }
      : {}),
    ...(errorStack !== undefined ? { errorStack: truncateUtf8(String(errorStack), MAX_ERROR_STACK_BYTES) } : {}),
    ...(memoryUsageKb !== undefined ? { memoryUsageKb } : {}),
  };
}

/** A transition to `state` (changed: false when it is the state the command was applied to). */
function changedTo(state: EventState, changed = true): TransitionResult {
  return rpcOk({ state, changed });
}

/** A refused command. */
function refused(code: TransitionErrorCode, message: string): TransitionResult {
  return rpcFail(code, message);
}

/** Applies one command. Repeated commands (at-least-once delivery) leave the state unchanged. */
export function transition(state: EventState, command: EventCommand): TransitionResult {
  const unchanged = changedTo(state, false);
  switch (command.type) {
    case "claim": {
      if (isTerminal(state.phase)) return refused("ENDED", "event has ended");
      if (state.phase !== "queued") {
        if (state.instanceId === command.instanceId) return unchanged;
        return refused("CLAIMED_BY_OTHER", `claimed by ${state.instanceId}`);
      }
      return changedTo({
        ...state,
        phase: "starting",
        instanceId: command.instanceId,
        claimedAt: command.at,
        version: state.version + 1,
      });
    }
    case "started": {
      if (isTerminal(state.phase)) return refused("ENDED", "event has ended");
      if (state.instanceId !== command.instanceId) {
        return refused("WRONG_INSTANCE", `event belongs to ${state.instanceId}`);
      }
      if (state.phase === "running") return unchanged;
      return changedTo({
        ...state,
        phase: "running",
        startedAt: command.at,
        cold: command.cold,
        containerId: command.containerId,
        version: state.version + 1,
      });
    }
    case "complete": {
      if (isTerminal(state.phase)) return unchanged;
      // Only the claimant reports an outcome: an unclaimed (queued) event has none yet.
      if (state.instanceId === undefined || state.instanceId !== command.instanceId) {
        return refused("WRONG_INSTANCE", `event belongs to ${state.instanceId}`);
      }
      const ending =
        state.terminateRequestedAt !== undefined
          ? terminatedEndingOf(command.outcome, state.function.timeoutSeconds)
          : endingOf(command.outcome, state.function.timeoutSeconds);
      return changedTo(end(state, ending, command.at, command.memoryUsageKb));
    }
    case "timeout": {
      if (isTerminal(state.phase)) return unchanged;
      const timedOut: ExecutionOutcome = { kind: "timeout" };
      const ending =
        state.terminateRequestedAt !== undefined
          ? terminatedEndingOf(timedOut, state.function.timeoutSeconds)
          : endingOf(timedOut, state.function.timeoutSeconds);
      return changedTo(end(state, ending, command.at));
    }
    case "terminate": {
      if (isTerminal(state.phase)) return refused("ENDED", `event has already ended (${publicStatus(state.phase)})`);
      // Only a running handler can receive SIGTERM; a queued or starting event is aborted at once.
      if (command.graceful && state.phase === "running") {
        if (state.terminateRequestedAt !== undefined) {
          return refused("TERMINATING", "a graceful terminate is already in progress");
        }
        return changedTo({ ...state, terminateRequestedAt: command.at, version: state.version + 1 });
      }
      const forced = state.terminateRequestedAt !== undefined ? TERMINATED_AFTER_SIGTERM : TERMINATED_ENDING;
      return changedTo(end(state, forced, command.at));
    }
    default: {
      const unreachable: never = command;
      return unreachable;
    }
  }
}

/** The public (REST) view of an event. */
export function publicEvent(state: EventState) {
  return {
    ...eventIdentityOf(state),
    status: publicStatus(state.phase),
    statusCode: state.statusCode ?? null,
    phase: state.phase,
    invokedAt: new Date(state.invokedAt).toISOString(),
    startedAt: state.startedAt !== undefined ? new Date(state.startedAt).toISOString() : null,
    endedAt: state.endedAt !== undefined ? new Date(state.endedAt).toISOString() : null,
    durationMs: state.durationMs ?? null,
    memoryUsageKb: state.memoryUsageKb ?? null,
    result: state.result !== undefined ? (JSON.parse(state.result) as unknown) : null,
    errorMessage: state.errorMessage ?? null,
    errorStack: state.errorStack ?? null,
    instanceId: state.instanceId ?? null,
    containerId: state.containerId ?? null,
    coldStart: state.cold ?? null,
    terminateRequestedAt:
      state.terminateRequestedAt !== undefined ? new Date(state.terminateRequestedAt).toISOString() : null,
    replayOf: state.replayOf ?? null,
    replays: state.replays ?? [],
    replayCount: state.replayCount ?? 0,
    /** True when replays were recorded past MAX_REPLAYS_LISTED: `replays` lists the first ones only. */
    replaysTruncated: (state.replayCount ?? 0) > (state.replays?.length ?? 0),
  };
}

/** The public (REST) view of an event. */
export type PublicEvent = ReturnType<typeof publicEvent>;
