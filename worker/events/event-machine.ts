// The pure state machine of one async event: (state, command) → next state | refusal.
// The AsyncEvent Durable Object persists what this returns before any side effect.
import type { FunctionSnapshot } from "../functions/model";
import { type RpcResult, rpcFail, rpcOk } from "../shared/errors";
import {
  type Ending,
  type EventPhase,
  type ExecutionOutcome,
  endingOf,
  isTerminal,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_ERROR_STACK_BYTES,
  publicStatus,
  TERMINATED_AFTER_SIGTERM,
  TERMINATED_ENDING,
  terminatedEndingOf,
} from "./event-endings";
import { type EventIdentity, eventIdentityOf } from "./event-identity";
import { truncateUtf8 } from "./text-bounds";

// The status vocabulary and the endings live in event-endings.ts; importers of this module keep
// reading them from here.
export {
  type Ending,
  type EventPhase,
  type ExecutionOutcome,
  endingOf,
  isAbnormal,
  isTerminal,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_ERROR_STACK_BYTES,
  MAX_RESULT_BYTES,
  PLATFORM_STOPPED_MESSAGE,
  type PublicStatus,
  publicStatus,
  STATUS_CODE,
  terminatedEndingOf,
  USER_PROCESS_EXIT_MESSAGE,
} from "./event-endings";

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
    alias: state.alias ?? null,
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
