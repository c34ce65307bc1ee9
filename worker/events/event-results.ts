// What the event object answers the instance that runs it: every answer is an RpcResult whose
// refusal codes are the event's own (they never reach an HTTP answer).
import type { FunctionSnapshot } from "../functions/model";
import type { RpcResult } from "../shared/errors";
import type { TransitionErrorCode } from "./event-machine";

/**
 * Why the event refused an instance's claim or report: the state machine's refusals, plus
 * UNKNOWN_EVENT (no such event) and FOREIGN_INSTANCE (the instance is no slot of the event's function).
 */
export type EventRefusalCode = TransitionErrorCode | "UNKNOWN_EVENT" | "FOREIGN_INSTANCE";

/** The answer to an instance's report (started, complete): done, or refused. */
export type ReportResult = RpcResult<void, EventRefusalCode>;

/** What an instance receives when it claims an event. */
export interface ClaimedEvent {
  payload: string;
  function: FunctionSnapshot;
  requestId: string;
  namespace: string;
  /** The version the event runs ("$LATEST", "1", ...): the handler's context.function_version. */
  qualifier?: string;
}

/**
 * A claim refused because the claiming slot is of another container class than the event's
 * memorySize runs in (CONTAINER_SIZES): nothing changed, the event stays queued; `memoryMb` tells
 * the scheduler which class it needs (FunctionSchedulerObject.misplaced).
 */
export interface WrongSizeRefusal {
  ok: false;
  code: "WRONG_SIZE";
  message: string;
  memoryMb: number;
  /** The event is of an image function: it runs in the image class (shared/objects.ts IMAGE_CLASS_INDEX). */
  image?: boolean;
}

/** The answer to a claim: the claimed event, or why the claim is refused. */
export type ClaimResult = RpcResult<ClaimedEvent, EventRefusalCode> | WrongSizeRefusal;
