// The pure state machine of one async event: (state, command) → next state | refusal.
// The AsyncEvent Durable Object persists what this returns before any side effect.
import type { FunctionSnapshot } from "../functions/model";
import { type RpcResult, rpcFail, rpcOk } from "../shared/errors";
import { instanceTypeOfName } from "../shared/objects";
import { GRACEFUL_TERMINATE_TIMEOUT_MS } from "./event-deadlines";
import {
  type Ending,
  type EventPhase,
  type ExecutionOutcome,
  endingOf,
  isTerminal,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_ERROR_STACK_BYTES,
  publicStatus,
  STATUS_CODE,
  TERMINATED_AFTER_SIGTERM,
  TERMINATED_ENDING,
  terminatedEndingOf,
  USER_PROCESS_EXIT_MESSAGE,
} from "./event-endings";
import { type EventIdentity, eventIdentityOf } from "./event-identity";
import { type EventProgress, publicProgress } from "./event-progress";
import type { EventTags } from "./event-tags";
import {
  addTimelineEntries,
  addTimelineEntryBeforeEnd,
  publicTimelineEntry,
  type TimelineEntry,
  timelineEntry,
  timelineTotal,
} from "./event-timeline";
import type { QueuedReason } from "./queued-reason";
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
  /**
   * The compute size (instance type) of the instance's container class, fixed at the claim; absent
   * in events claimed before compute sizes (their container class's type was another then).
   */
  instanceType?: string;
  /** The boot of the container that ran the handler (a fresh container has a new one). */
  containerId?: string;
  cold?: boolean;
  /** Set when a graceful terminate sent SIGTERM; the execution's end then makes the event ABORTED. */
  terminateRequestedAt?: number;
  /** How the event was terminated on request (see TerminationMode); absent when it was not. */
  terminationMode?: TerminationMode;
  /** The grace period of the graceful terminate (its request's, else GRACEFUL_TERMINATE_TIMEOUT_MS). */
  terminateGraceMs?: number;
  /** When the instance confirmed the graceful terminate's SIGTERM reached the handler. */
  signalDeliveredAt?: number;
  /**
   * After a graceful terminate, once ended: true when the handler's own end (returned, threw,
   * exited, died of a signal, its memory limit) came within the grace period; false when the
   * platform stopped it (the grace period ran out, a forced terminate, the timeout, a platform error).
   */
  endedWithinGrace?: boolean;
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
  /** The transitions so far, oldest first (see event-timeline.ts): bounded, with a truncation marker. */
  timeline?: readonly TimelineEntry[];
  /** The invocation's tags (event-tags.ts), fixed at acceptance; absent when it had none. */
  tags?: EventTags;
  /** The handler's latest progress report (event-progress.ts); absent before any. */
  progress?: EventProgress;
}

/**
 * How a terminate request ended the event: `graceful` when SIGTERM went to the running handler
 * (kept when a forced terminate or the grace period's end then stops it: endedWithinGrace says so),
 * `forced` when the event was ended at once (a forced request, or any request before the handler ran).
 */
export type TerminationMode = "forced" | "graceful";

/**
 * The state with the graceful terminate's SIGTERM recorded as delivered at `at`, or undefined when
 * nothing changes (no graceful terminate, or already recorded). Recorded even once the event ended:
 * the handler's end may reach the event before the instance's answer to the signal does.
 */
export function recordSignalDelivered(state: EventState, at: number): EventState | undefined {
  if (state.terminationMode !== "graceful" || state.signalDeliveredAt !== undefined) return undefined;
  // On the timeline before the end, should the end have been reported first.
  const timeline = addTimelineEntryBeforeEnd(state.timeline, timelineEntry("signal-delivered", at, "SIGTERM"));
  return { ...state, signalDeliveredAt: at, timeline };
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
  | {
      type: "claim";
      instanceId: string;
      at: number;
      /** The Cloudflare instance type, when the instance's class does not say it (the image class). */
      instanceType?: string;
    }
  | { type: "started"; instanceId: string; cold: boolean; containerId: string; at: number }
  | { type: "complete"; instanceId: string; outcome: ExecutionOutcome; at: number; memoryUsageKb?: number }
  | { type: "timeout"; at: number }
  | { type: "terminate"; graceful: boolean; at: number; graceMs?: number };

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

/**
 * Applies one command. Repeated commands (at-least-once delivery) leave the state unchanged; a
 * changing one also records its steps on the timeline (see timelineOfTransition).
 */
export function transition(state: EventState, command: EventCommand): TransitionResult {
  const result = applyCommand(state, command);
  if (!result.ok || !result.value.changed) return result;
  const next = result.value.state;
  const entries = timelineOfTransition(state, next, command);
  return entries.length === 0 ? result : changedTo({ ...next, timeline: addTimelineEntries(state.timeline, entries) });
}

/** The state with entries added to its timeline (repeats left out), or undefined when nothing was added. */
export function recordTimeline(state: EventState, entries: readonly TimelineEntry[]): EventState | undefined {
  const timeline = addTimelineEntries(state.timeline, entries);
  return timelineTotal(timeline) === timelineTotal(state.timeline) ? undefined : { ...state, timeline };
}

/**
 * The timeline steps of an applied command: the claim assigns the instance; the start is the
 * container (when the instance did not report it earlier) then running; a terminate is requested
 * (graceful, forced, or forced once the grace period ran out); every end is `ended`.
 */
export function timelineOfTransition(before: EventState, after: EventState, command: EventCommand): TimelineEntry[] {
  const entries: TimelineEntry[] = [];
  if (command.type === "claim" && after.phase === "starting" && before.phase === "queued") {
    entries.push(timelineEntry("instance-assigned", command.at, command.instanceId));
  }
  if (command.type === "started" && after.phase === "running" && before.phase !== "running") {
    // Recorded only when the instance's earlier report is missing (repeats are left out).
    const container = command.cold ? "container-starting" : "container-warm";
    entries.push(timelineEntry(container, command.at, command.cold ? "new container" : "idle container reused"));
    entries.push(timelineEntry("running", command.at, command.cold ? "cold start" : "warm start"));
  }
  if (command.type === "terminate") {
    const mode =
      before.terminateRequestedAt !== undefined && !command.graceful
        ? "forced after SIGTERM"
        : command.graceful && after.terminateRequestedAt !== undefined && !isTerminal(after.phase)
          ? "graceful"
          : "forced";
    entries.push(timelineEntry("terminate-requested", command.at, mode));
  }
  if (isTerminal(after.phase) && !isTerminal(before.phase)) {
    const code = after.statusCode !== undefined ? ` ${after.statusCode}` : "";
    entries.push(timelineEntry("ended", after.endedAt ?? command.at, `${publicStatus(after.phase)}${code}`));
  }
  return entries;
}

/**
 * After a graceful terminate: whether the instance's outcome is the handler's own end within the
 * grace period (a timeout or a platform outcome is the platform stopping it).
 */
function endedWithinGraceOf(state: EventState, outcome: ExecutionOutcome, at: number): boolean {
  const graceEnd = (state.terminateRequestedAt ?? at) + (state.terminateGraceMs ?? GRACEFUL_TERMINATE_TIMEOUT_MS);
  const platformStopped =
    outcome.kind === "timeout" ||
    outcome.kind === "crashed" ||
    outcome.kind === "error" ||
    outcome.kind === "platform_stop";
  return !platformStopped && at <= graceEnd;
}

/**
 * The ending of an execution no terminate was asked for. A handler killed by the SIGTERM of its
 * function's deadline warning (it had no listener) exited while running (439), not a platform stop.
 */
function untouchedEndingOf(state: EventState, outcome: ExecutionOutcome): Ending {
  if (outcome.kind === "sigterm" && (state.function.deadlineWarningSeconds ?? 0) > 0) {
    return {
      phase: "failed",
      statusCode: STATUS_CODE.USER_PROCESS_EXIT,
      errorMessage: `${USER_PROCESS_EXIT_MESSAGE} (SIGTERM of the deadline warning not handled)`,
    };
  }
  return endingOf(outcome, state.function.timeoutSeconds);
}

/** Applies one command to the state (transition adds the timeline). */
function applyCommand(state: EventState, command: EventCommand): TransitionResult {
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
        instanceType: command.instanceType ?? instanceTypeOfName(command.instanceId),
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
      if (state.terminateRequestedAt !== undefined) {
        const ending = terminatedEndingOf(command.outcome, state.function.timeoutSeconds);
        const ended = end(state, ending, command.at, command.memoryUsageKb);
        return changedTo({ ...ended, endedWithinGrace: endedWithinGraceOf(state, command.outcome, command.at) });
      }
      return changedTo(end(state, untouchedEndingOf(state, command.outcome), command.at, command.memoryUsageKb));
    }
    case "timeout": {
      if (isTerminal(state.phase)) return unchanged;
      const timedOut: ExecutionOutcome = { kind: "timeout" };
      if (state.terminateRequestedAt !== undefined) {
        const ending = terminatedEndingOf(timedOut, state.function.timeoutSeconds);
        return changedTo({ ...end(state, ending, command.at), endedWithinGrace: false });
      }
      return changedTo(end(state, endingOf(timedOut, state.function.timeoutSeconds), command.at));
    }
    case "terminate": {
      if (isTerminal(state.phase)) return refused("ENDED", `event has already ended (${publicStatus(state.phase)})`);
      // Only a running handler can receive SIGTERM; a queued or starting event is aborted at once.
      if (command.graceful && state.phase === "running") {
        if (state.terminateRequestedAt !== undefined) {
          return refused("TERMINATING", "a graceful terminate is already in progress");
        }
        return changedTo({
          ...state,
          terminateRequestedAt: command.at,
          terminationMode: "graceful",
          terminateGraceMs: command.graceMs ?? GRACEFUL_TERMINATE_TIMEOUT_MS,
          version: state.version + 1,
        });
      }
      if (state.terminateRequestedAt !== undefined) {
        // A forced terminate during the grace period, or the grace period's end: the platform stops it.
        return changedTo({ ...end(state, TERMINATED_AFTER_SIGTERM, command.at), endedWithinGrace: false });
      }
      return changedTo({ ...end(state, TERMINATED_ENDING, command.at), terminationMode: "forced" });
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
    /** Why a queued event waits: null here; GET of the event fills it in (queued-reason.ts withQueuedReason). */
    queuedReason: null as QueuedReason | null,
    invokedAt: new Date(state.invokedAt).toISOString(),
    startedAt: state.startedAt !== undefined ? new Date(state.startedAt).toISOString() : null,
    endedAt: state.endedAt !== undefined ? new Date(state.endedAt).toISOString() : null,
    durationMs: state.durationMs ?? null,
    memoryUsageKb: state.memoryUsageKb ?? null,
    result: state.result !== undefined ? (JSON.parse(state.result) as unknown) : null,
    errorMessage: state.errorMessage ?? null,
    errorStack: state.errorStack ?? null,
    instanceId: state.instanceId ?? null,
    /**
     * The compute size (instance type) of the container class the event was given to, as recorded at
     * its claim: null before, and for events claimed before compute sizes (not guessed from the id).
     */
    instanceType: state.instanceType ?? null,
    containerId: state.containerId ?? null,
    coldStart: state.cold ?? null,
    terminateRequestedAt:
      state.terminateRequestedAt !== undefined ? new Date(state.terminateRequestedAt).toISOString() : null,
    terminationMode: state.terminationMode ?? null,
    signalDeliveredAt: state.signalDeliveredAt !== undefined ? new Date(state.signalDeliveredAt).toISOString() : null,
    endedWithinGrace: state.endedWithinGrace ?? null,
    replayOf: state.replayOf ?? null,
    replays: state.replays ?? [],
    replayCount: state.replayCount ?? 0,
    /** True when replays were recorded past MAX_REPLAYS_LISTED: `replays` lists the first ones only. */
    replaysTruncated: (state.replayCount ?? 0) > (state.replays?.length ?? 0),
    /** The invocation's tags ({} when none), fixed at acceptance. */
    tags: state.tags ?? {},
    /** The handler's latest progress report, null before any (event-progress.ts). */
    progress: publicProgress(state.progress),
    /** The transitions so far, oldest first (a `truncated` entry stands for those left out). */
    timeline: (state.timeline ?? []).map(publicTimelineEntry),
  };
}

/** The public (REST) view of an event. */
export type PublicEvent = ReturnType<typeof publicEvent>;
