// The event's status vocabulary and how an execution's outcome ends it: phases, SCF's statuses and
// StatusCodes, the bounds of what an ending keeps, and the mapping from an outcome (with or without
// a terminate request) to the terminal phase. Pure; the state machine (event-machine.ts) applies it.
import type { ExecutionOutcome } from "../contract/agent-contract";
import { utf8Length } from "./text-bounds";

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
export const TERMINATED_ENDING: Ending = {
  phase: "aborted",
  statusCode: STATUS_CODE.TERMINATED,
  errorMessage: "Terminated by request",
};

/**
 * A forced stop after a graceful terminate's SIGTERM: the grace period ran out with the handler
 * still running (or the user forced the terminate meanwhile).
 */
export const TERMINATED_AFTER_SIGTERM: Ending = {
  phase: "aborted",
  statusCode: STATUS_CODE.TERMINATED,
  errorMessage: "Terminated by request: the handler was still running after SIGTERM and was stopped by force",
};
