import { DEFAULT_MEMORY_MB } from "../functions/model";
import { instanceClassOf, instanceName } from "../shared/objects";
import type { AgentHealth } from "./agent-client";
import type { ContainerSelfCheck } from "./container-lifecycle";
import { isWarningDue, nextExecutionAlarm } from "./deadline-warning";
import type { HoldPhase, HoldStatus } from "./diagnostic-holds";
import {
  CURRENT_KEY,
  type CurrentExecution,
  IDLE_CONTAINER_MS,
  InstanceExecution,
  RELAY_CHECK_INTERVAL_MS,
  type RunRequest,
  SLOT_KEY,
} from "./instance-execution";

export { CAPACITY_RETRY_MS, CAPACITY_WAIT_MS, type ContainerSelfCheck, isCapacityError } from "./container-lifecycle";
export { HOLD_MAX_MS, type HoldPhase, type HoldStatus } from "./diagnostic-holds";
export type { RunRequest } from "./instance-execution";
export { IDLE_CONTAINER_MS } from "./instance-execution";

/** What claimAndRun answers runEvent: whether the event started, and a next event to start. */
interface ClaimAnswer {
  started: boolean;
  reason?: string;
  next?: RunRequest;
}

/**
 * A container-enabled Durable Object: owns one container running the runtime agent and runs one
 * event at a time in it. It hands the agent the code package and the event, relays log lines and
 * the outcome to the event's object, enforces the timeout, and destroys the container after any
 * abnormal end so that the next event gets a fresh one.
 *
 * This file holds the object's calls: taking an event (runEvent), terminate (signalTerminate,
 * repossess), the alarm (timeouts, resumption after a restart, the idle container), the namespace
 * lease (leaseCheck, evictIfIdle) and diagnostics. Running one execution is InstanceExecution's
 * (instance-execution.ts); the container and its agent are reached through an AgentRunner
 * (agent-runner.ts) by ContainerLifecycle (container-lifecycle.ts).
 */
export class InstanceContainer extends InstanceExecution {
  /** True while evictIfIdle destroys the idle container: no event may start on it meanwhile. */
  private evicting = false;

  /** True when this object has a container attached (the runtime supports containers). */
  hasContainerSupport(): boolean {
    return this.lifecycle.runner !== undefined;
  }

  /**
   * Whether this instance's container is running, and what it is doing (diagnostics, tests), with
   * this object's Durable Object id: locally, workerd names the instance's Docker container after it
   * (`workerd-<session>-<script>-InstanceContainer-<id>`), so a test can ask Docker itself.
   */
  async status(): Promise<{
    containerRunning: boolean;
    requestId: string | null;
    durableObjectId: string;
    /** The compute size (instance type) of this object's container class, null before its first event. */
    instanceType: string | null;
  }> {
    return {
      containerRunning: this.lifecycle.running,
      requestId: this.current?.requestId ?? null,
      durableObjectId: this.ctx.id.toString(),
      instanceType: this.owner ? instanceClassOf(this.owner.slot).instanceType : null,
    };
  }

  /** The RequestId this instance is running or claiming, if any (the scheduler's audit). */
  async currentRequestId(): Promise<string | undefined> {
    return this.current?.requestId ?? this.startingId;
  }

  /** Whether a container runs here and whether an event holds (or is claiming) it: the lease audit. */
  async leaseCheck(): Promise<{ containerRunning: boolean; busy: boolean }> {
    return {
      containerRunning: this.lifecycle.running,
      busy: this.current !== undefined || this.starting > 0 || this.handingOver > 0 || this.evicting,
    };
  }

  /**
   * Destroys the container if, and only if, no event runs or is being claimed here (the namespace's
   * quota object gives its lease to another slot). Answers whether the instance now holds no
   * container; a runEvent arriving meanwhile is refused rather than started on a dying container.
   */
  async evictIfIdle(): Promise<boolean> {
    // A release in flight (handingOver) does not hold the container: an idle lease is never handed
    // to a next event (the release idles it only when none takes the slot).
    if (this.current || this.starting > 0 || this.finishing || this.evicting) return false;
    this.evicting = true;
    try {
      const runner = this.lifecycle.runner;
      if (runner?.running) await runner.destroy();
      if (this.lifecycle.running) return false;
      // Nothing left for the idle alarm to destroy (the quota object drops the lease itself).
      await this.ctx.storage.deleteAlarm();
      return true;
    } catch (error) {
      console.warn("evicting the idle container failed", String(error));
      return false;
    } finally {
      this.evicting = false;
    }
  }

  /**
   * The scheduler no longer uses this slot (its function moved to another container class, see
   * FunctionSchedulerObject): destroys the container if idle (evictIfIdle) and gives the slot's
   * namespace lease back. Answers whether it did; a busy instance keeps both (its idle alarm ends them).
   */
  async retireIfIdle(): Promise<boolean> {
    if (!(await this.evictIfIdle())) return false;
    await this.releaseLease(this.owner);
    return true;
  }

  /**
   * Starts the container unless one runs that this object started for the same memory size (a
   * container of another size, or of unknown boot, is destroyed first), then waits for the agent.
   */
  async ensureStarted(memoryMb: number = DEFAULT_MEMORY_MB): Promise<AgentHealth> {
    return this.lifecycle.ensureStarted({ memoryMb });
  }

  /**
   * Takes one event from the scheduler: claims it from its object (only one instance ever can),
   * then runs it in the background. Returns once the claim is settled.
   */
  async runEvent(request: RunRequest): Promise<{ started: boolean; reason?: string }> {
    if (this.current) {
      if (this.current.requestId === request.requestId) return { started: true };
      throw new Error(`instance busy with ${this.current.requestId}`);
    }
    if (this.evicting) {
      // Never granted by the quota while it evicts this slot; the event's watchdog dispatches it again.
      throw new Error("instance is destroying its idle container");
    }
    if (this.startingId !== undefined) {
      // The same event again (a repeated start): it is being claimed here already.
      if (this.startingId === request.requestId) return { started: true };
      throw new Error(`instance busy starting ${this.startingId}`);
    }
    this.startingId = request.requestId;
    let answer: ClaimAnswer;
    try {
      answer = await this.claimAndRun(request);
    } finally {
      this.startingId = undefined;
    }
    // A refused claim's release answered the slot's next event: it starts once this start is over.
    if (answer.next) this.startNext(answer.next);
    return answer.reason === undefined
      ? { started: answer.started }
      : { started: answer.started, reason: answer.reason };
  }

  /** runEvent's body, run while `startingId` names its event; `next` is an event its release answered. */
  private async claimAndRun(request: RunRequest): Promise<ClaimAnswer> {
    const instanceId = instanceName(request.schedulerName, request.slot);
    const event = this.eventStub(request.requestId);
    const claim = await event.claim(instanceId);
    if (!claim.ok) {
      if (claim.code === "WRONG_SIZE") {
        // This slot's container class is not the one the event's memorySize runs in: the event stays
        // queued; its scheduler frees the slot and queues it in its class (or leaves it to the event's
        // watchdog, should the two disagree on the sizes). Were this call lost, the audit frees the
        // slot and the watchdog dispatches the event again: it is never started here, nor lost.
        await this.schedulerStub(request.schedulerName)
          .misplaced(request.slot, request.requestId, claim.memoryMb, claim.image === true)
          .catch((error: unknown) =>
            console.warn("handing back a misplaced event failed", request.requestId, String(error)),
          );
        // A handed-over start: the previous end left the idle alarm to it.
        await this.setIdleAlarmIfIdle(1);
        return { started: false, reason: claim.message };
      }
      // Ended, terminated or run elsewhere already: nothing to do, give the slot back (the container
      // and the lease are untouched: the slot's next event may take both over at once).
      const answer = await this.schedulerStub(request.schedulerName).release(request.slot, request.requestId, {
        leaseKept: true,
        takeNext: true,
        claimRefused: true,
      });
      // The previous event's end left the idle alarm to the event it handed over (this one).
      if (answer?.next) return { started: false, reason: claim.message, next: answer.next };
      await this.setIdleAlarmIfIdle(1);
      return { started: false, reason: claim.message };
    }
    this.current = {
      requestId: request.requestId,
      schedulerName: request.schedulerName,
      slot: request.slot,
      lastSeq: 0,
      ...(typeof request.leaseToken === "string" ? { leaseToken: request.leaseToken } : {}),
    };
    this.finishing = false;
    // The slot is written once: an instance serves one slot for life, so its later events only
    // write their execution.
    const sameOwner = this.owner?.schedulerName === request.schedulerName && this.owner.slot === request.slot;
    this.owner = { schedulerName: request.schedulerName, slot: request.slot };
    if (sameOwner) await this.ctx.storage.put(CURRENT_KEY, this.current);
    else await this.ctx.storage.put({ [CURRENT_KEY]: this.current, [SLOT_KEY]: this.owner });
    await this.ctx.storage.setAlarm(Date.now() + RELAY_CHECK_INTERVAL_MS);
    this.ctx.waitUntil(this.execute(claim.value));
    return { started: true };
  }

  /**
   * Starts the slot's next event that a release answered (in place of the scheduler's runEvent
   * call). Should it not start (this instance began destroying its container meanwhile), the slot
   * is given back, the lease's state unknown: the scheduler asks the quota for the slot's next event.
   */
  protected startNext(next: RunRequest): void {
    this.ctx.waitUntil(
      this.runEvent(next).catch(async (error: unknown) => {
        console.warn("the slot's next event did not start here", next.requestId, String(error));
        await this.schedulerStub(next.schedulerName)
          .release(next.slot, next.requestId)
          .catch((failure: unknown) => console.warn("releasing the slot failed", next.requestId, String(failure)));
      }),
    );
  }

  /** Forwards SIGTERM to the handler process of requestId (graceful terminate). */
  async signalTerminate(requestId: string): Promise<{ delivered: boolean }> {
    const current = this.current;
    if (current?.requestId !== requestId || !this.lifecycle.running) return { delivered: false };
    current.terminated = true;
    await this.ctx.storage.put(CURRENT_KEY, current);
    return this.lifecycle.agent().signal(requestId);
  }

  /** Ends the execution of requestId by force (timeout backstop or terminate): destroys the container. */
  async repossess(requestId: string): Promise<void> {
    if (this.current?.requestId !== requestId) return;
    await this.finish(requestId, undefined);
  }

  /** Timeout enforcement, relay resumption after a restart, and idle-container clean-up. */
  override async alarm(): Promise<void> {
    let current = this.current;
    if (!current) {
      if (this.starting > 0 || this.handingOver > 0) {
        // An event is being claimed here: it will use the container (or idle it again).
        await this.ctx.storage.setAlarm(Date.now() + IDLE_CONTAINER_MS);
        return;
      }
      const runner = this.lifecycle.runner;
      if (runner?.running) await runner.destroy();
      // Idle past IDLE_CONTAINER_MS: the container is gone, so is its place in the namespace's cap.
      if (!this.current && this.starting === 0) await this.releaseLease(this.owner);
      return;
    }
    if (current.deadline !== undefined && Date.now() >= current.deadline) {
      await this.finish(current.requestId, { kind: "timeout" });
      return;
    }
    if (isWarningDue(current, Date.now())) {
      await this.sendDeadlineWarning(current);
      // The warning awaited the event and the agent: the execution may have ended meanwhile (its end
      // set the idle alarm), or been replaced. Go on only with the live copy of the same execution;
      // its deadline stays enforced (nextExecutionAlarm below, or the next alarm).
      const live = this.current;
      if (live?.requestId !== current.requestId) return;
      current = live;
    }
    if (current.deadline !== undefined && !this.relaying && this.executing === 0) {
      // This object restarted mid-run (or a relay was interrupted): pick the agent's stream up where
      // the last relay stopped. Not while execute() runs here: between the hand-over (the deadline
      // set) and its own relay it is awaiting the event, and a second stream would be opened beside
      // the one it holds, which would then stay open unread.
      this.ctx.waitUntil(this.relayAndFinish(current.requestId));
    }
    if (current.deadline === undefined && this.executing === 0 && this.starting === 0) {
      // This object restarted while it was starting the execution (the whole runtime died, say):
      // nothing is starting it any more, so start it again under the same claim.
      await this.resumeStart(current.requestId);
    }
    await this.ctx.storage.setAlarm(nextExecutionAlarm(current, Date.now() + RELAY_CHECK_INTERVAL_MS));
  }

  /**
   * The deadline warning (see deadline-warning.ts): marked sent first (never twice), logged on the
   * event, then SIGTERM through the agent as for a graceful terminate. The handler runs on; the
   * container is not reused after it.
   */
  private async sendDeadlineWarning(current: CurrentExecution): Promise<void> {
    const { requestId, deadline, warnAt } = current;
    // A graceful terminate already sent SIGTERM: the handler is ending, no second signal.
    const signalled = current.terminated === true;
    current.warned = true;
    current.terminated = true;
    await this.ctx.storage.put(CURRENT_KEY, current);
    if (signalled) return;
    const secondsBefore = deadline !== undefined && warnAt !== undefined ? Math.round((deadline - warnAt) / 1000) : 0;
    // Logged before the signal, so that the line comes before anything the handler prints on it.
    await this.eventStub(requestId)
      .noteDeadlineWarning(this.instanceId, secondsBefore, Date.now())
      .catch((error: unknown) => console.warn("logging the deadline warning failed", requestId, String(error)));
    if (this.current?.requestId !== requestId || !this.lifecycle.running) return;
    await this.lifecycle
      .agent()
      .signal(requestId)
      .catch((error: unknown) => console.warn("sending the deadline warning failed", requestId, String(error)));
  }

  /**
   * Exercises the whole container lifecycle against the real engine: start, reach the agent's
   * HTTP port, send SIGTERM and observe the process received it, destroy.
   */
  async selfCheck(): Promise<ContainerSelfCheck> {
    return this.lifecycle.selfCheck(DEFAULT_MEMORY_MB);
  }

  /**
   * Drops the open relay as a restart of this object would (diagnostics): the relay is not retried
   * here; the next alarm resumes it from the last relayed seq, and the agent's buffer fills the gap.
   */
  async interruptRelay(): Promise<{ interrupted: boolean }> {
    const interrupt = this.relayInterrupt;
    if (!interrupt) return { interrupted: false };
    interrupt.abort(new Error("relay interrupted by diagnostics"));
    return { interrupted: true };
  }

  /**
   * Diagnostics: the next execution of requestId on this instance pauses at `phase` until
   * releaseHold (or HOLD_MAX_MS). Refused unless DIAGNOSTICS_ENABLED is "true".
   */
  async setHold(requestId: string, phase: HoldPhase): Promise<HoldStatus> {
    return this.holds.set(requestId, phase);
  }

  /** Diagnostics: the hold set for requestId, and whether an execution is paused at it. */
  async holdStatus(requestId: string): Promise<HoldStatus> {
    return this.holds.status(requestId);
  }

  /** Diagnostics: releases the hold of requestId (see DiagnosticHolds.release). */
  async releaseHold(requestId: string): Promise<{ released: boolean }> {
    return this.holds.release(requestId);
  }
}
