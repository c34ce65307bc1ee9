// The deadline warning of a running execution: SIGTERM to the handler a configured number of
// seconds before its timeout (functions/model.ts deadlineWarningSeconds), sent by the instance's
// alarm through the same agent call as a graceful terminate. Pure: when it is due, and when the
// instance's alarm must next wake.

/** What of a running execution decides its alarms (see CurrentExecution). */
export interface ExecutionDeadlines {
  /** Epoch ms past which the execution has timed out. */
  deadline?: number;
  /** Epoch ms at which the handler gets the deadline warning's SIGTERM; absent when it is off. */
  warnAt?: number;
  /** The warning was sent (or its sending began): never twice. */
  warned?: boolean;
}

/**
 * When the deadline warning is due for an execution whose timeout ends at `deadline`: `warningSeconds`
 * before it, or undefined when the warning is off (0, absent) or not less than the timeout.
 */
export function deadlineWarningAt(
  deadline: number,
  warningSeconds: number | undefined,
  timeoutSeconds: number,
): number | undefined {
  if (warningSeconds === undefined || warningSeconds <= 0 || warningSeconds >= timeoutSeconds) return undefined;
  return deadline - warningSeconds * 1000;
}

/** True when the warning is due now and not yet sent (and the timeout has not come). */
export function isWarningDue(execution: ExecutionDeadlines, now: number): boolean {
  return (
    execution.warnAt !== undefined &&
    execution.warned !== true &&
    now >= execution.warnAt &&
    (execution.deadline === undefined || now < execution.deadline)
  );
}

/**
 * The instance's next alarm while the execution runs: the earliest of its relay check (`relayCheckAt`),
 * its timeout and its unsent warning.
 */
export function nextExecutionAlarm(execution: ExecutionDeadlines, relayCheckAt: number): number {
  let at = relayCheckAt;
  if (execution.deadline !== undefined) at = Math.min(at, execution.deadline);
  if (execution.warnAt !== undefined && execution.warned !== true) at = Math.min(at, execution.warnAt);
  return at;
}
