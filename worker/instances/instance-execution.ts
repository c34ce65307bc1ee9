import { DurableObject } from "cloudflare:workers";
import type { ClaimedEvent } from "../events/async-event-object";
import type { LogRecord } from "../events/event-log-store";
import { type ExecutionOutcome, isAbnormal } from "../events/event-machine";
import { containerImages, imagesOpenTo } from "../functions/images";
import { containerSizes, effectiveLogLimitMb, sizeForMemory } from "../functions/instance-types";
import type { FunctionSnapshot } from "../functions/model";
import {
  eventStub,
  instanceClassOf,
  instanceName,
  namespaceOfScheduler,
  namespaceQuotaStub,
  type SizeInstanceType,
  schedulerStub,
} from "../shared/objects";
import type { ExecutionSpec } from "./agent-client";
import { readStartedRecord } from "./agent-stream";
import { type ContainerShape, ImageNotDeployedError } from "./container-boot";
import { ContainerLifecycle } from "./container-lifecycle";
import { deadlineWarningAt, nextExecutionAlarm } from "./deadline-warning";
import { DiagnosticHolds } from "./diagnostic-holds";
import { executionSpecOf, type RelayedEnd, relayRecords } from "./execution-relay";

/** What the scheduler hands an instance (runEvent, or a release's answer). */
export interface RunRequest {
  requestId: string;
  schedulerName: string;
  slot: number;
  /** The name the slot's namespace lease is busy under (FunctionSchedulerObject's SlotStart.leaseToken). */
  leaseToken?: string;
}

/** The execution this instance is running, persisted so that a restarted object can resume it. */
export interface CurrentExecution {
  requestId: string;
  schedulerName: string;
  slot: number;
  /** The name the slot's namespace lease is busy under, when the scheduler gave one (see RunRequest). */
  leaseToken?: string;
  /** Epoch ms past which the execution has timed out; set once the handler starts. */
  deadline?: number;
  /** Highest agent record seq already relayed to the event. */
  lastSeq: number;
  /**
   * SIGTERM was forwarded (graceful terminate, or the deadline warning): however it ends, the
   * container is not reused.
   */
  terminated?: boolean;
  /** Epoch ms of the deadline warning's SIGTERM (see deadline-warning.ts); absent when it is off. */
  warnAt?: number;
  /** The deadline warning was sent (never twice, a restart included). */
  warned?: boolean;
}

/** MiB in bytes. */
const MIB = 1024 * 1024;

/**
 * What a snapshot's container is started for in the class of `slot`: its memory size and, for an
 * image function (the image class), its image and the Cloudflare instance type of its memorySize
 * (CONTAINER_SIZES; the image class picks it per start).
 */
export function containerShapeOf(
  snapshot: Pick<FunctionSnapshot, "memoryMb" | "image">,
  env: Pick<Env, "CONTAINER_SIZES">,
): ContainerShape {
  if (!snapshot.image) return { memoryMb: snapshot.memoryMb };
  const instanceType = sizeForMemory(snapshot.memoryMb, containerSizes(env)).instanceType;
  return { memoryMb: snapshot.memoryMb, image: { name: snapshot.image.name, instanceType } };
}

/** The Cloudflare instance type a container of this shape runs on in the class of `slot`. */
export function instanceTypeOfShape(shape: ContainerShape, slot: number): SizeInstanceType {
  const classType = instanceClassOf(slot).instanceType;
  return shape.image?.instanceType ?? (classType === "image" ? "basic" : classType);
}

/**
 * The execution spec of a claim on an instance type: its log limit never above what that type's
 * disk holds (a logLimitMb accepted under other compute sizes is clamped; the event's START is
 * followed by a [PLATFORM] line saying so, see events/event-log.ts).
 */
export function clampedSpecOf(claim: ClaimedEvent, instanceType: SizeInstanceType): ExecutionSpec {
  const spec = executionSpecOf(claim);
  const { limitMb, clamped } = effectiveLogLimitMb(claim.function.logLimitMb, instanceType);
  return clamped ? { ...spec, logLimitBytes: limitMb * MIB } : spec;
}

/** The scheduler slot an instance serves (its Durable Object name is `schedulerName#slot`). */
export interface SlotOwner {
  schedulerName: string;
  slot: number;
}

/** An idle container is destroyed after this long without an event. */
export const IDLE_CONTAINER_MS = 10 * 60_000;
/** While an execution runs, the alarm checks the relay at least this often (resumes it after a restart). */
export const RELAY_CHECK_INTERVAL_MS = 5_000;
/** Times a broken relay stream is reopened in place before the execution counts as crashed. */
const RELAY_RETRIES = 8;
/** Backoff before reopening a broken relay stream: doubles from this, up to RELAY_BACKOFF_MAX_MS. */
const RELAY_BACKOFF_BASE_MS = 100;
const RELAY_BACKOFF_MAX_MS = 2_000;

/** Storage key of the current execution (a CurrentExecution). */
export const CURRENT_KEY = "current";
/** Storage key of the slot this instance serves: whose namespace lease counts its container. */
export const SLOT_KEY = "slot";

/**
 * The part of InstanceContainer that runs one claimed execution: starts the container (see
 * ContainerLifecycle), hands the agent the code and the event, marks the event started, relays the
 * agent's records to the event, and ends the execution once (reporting its outcome, destroying the
 * container after an abnormal end, freeing the slot and, with the container, the namespace lease).
 * Its state is the instance's: InstanceContainer (instance-container.ts) adds the object's calls.
 */
export abstract class InstanceExecution extends DurableObject<Env> {
  protected current: CurrentExecution | undefined;
  /** True while this object instance is reading the agent's record stream. */
  protected relaying = false;
  /** Guards against ending the same execution twice (timeout racing the handler's end). */
  protected finishing = false;
  /** Aborts the open relay (see InstanceContainer.interruptRelay). */
  protected relayInterrupt: AbortController | undefined;
  /** The slot this instance serves, known since its first event (releases the namespace's lease). */
  protected owner: SlotOwner | undefined;
  /** execute() calls in progress in this object instance (none after a restart). */
  protected executing = 0;
  /** Slot releases in flight whose answer may hand this instance the slot's next event (see finish). */
  protected handingOver = 0;
  /** The event a runEvent call is claiming here, between its entry and its claim's answer (one at a time). */
  protected startingId: string | undefined;

  /** runEvent calls between their entry and their claim's answer, 0 or 1 (an eviction must not race them). */
  protected get starting(): number {
    return this.startingId === undefined ? 0 : 1;
  }
  protected readonly lifecycle: ContainerLifecycle;
  protected readonly holds: DiagnosticHolds;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.lifecycle = new ContainerLifecycle(ctx, env);
    // Holds act only where diagnostics are enabled (never in a deployment: see the diagnostics routes).
    this.holds = new DiagnosticHolds(ctx.storage, () => this.env.DIAGNOSTICS_ENABLED === "true");
    ctx.blockConcurrencyWhile(async () => {
      this.current = await ctx.storage.get<CurrentExecution>(CURRENT_KEY);
      await this.lifecycle.load();
      this.owner = await ctx.storage.get<SlotOwner>(SLOT_KEY);
    });
  }

  /** Starts the slot's next event that a release answered (InstanceContainer.runEvent, in the background). */
  protected abstract startNext(next: RunRequest): void;

  protected get instanceId(): string {
    return this.current ? instanceName(this.current.schedulerName, this.current.slot) : "";
  }

  /**
   * Gives the slot's namespace lease back once its container is destroyed. endedRequestId names the
   * event whose end destroyed it (the lease is busy with it); a failure is logged (the audit reclaims).
   */
  protected async releaseLease(owner: SlotOwner | undefined, endedRequestId?: string): Promise<void> {
    if (!owner) return;
    const namespace = namespaceOfScheduler(owner.schedulerName);
    const instance = instanceName(owner.schedulerName, owner.slot);
    await namespaceQuotaStub(this.env, namespace)
      .releaseInstance(instance, endedRequestId)
      .catch((error: unknown) => console.warn("releasing the namespace lease failed", instance, String(error)));
  }

  /**
   * Starts again an execution whose start died with this object (a restart before the hand-over):
   * the event's claim by this instance is repeated (idempotent) for its payload and snapshot.
   */
  protected async resumeStart(requestId: string): Promise<void> {
    this.executing += 1;
    try {
      const claim = await this.eventStub(requestId).claim(this.instanceId);
      if (this.current?.requestId !== requestId) return;
      if (!claim.ok) {
        // Ended meanwhile (terminated, timed out by its backstop): free the slot.
        await this.finish(requestId, undefined);
        return;
      }
      console.warn("resuming the start of an execution after a restart", requestId);
      this.ctx.waitUntil(this.execute(claim.value));
    } finally {
      this.executing -= 1;
    }
  }

  /** Runs one claimed execution (see runClaimed), counted in `executing` meanwhile. */
  protected async execute(claim: ClaimedEvent): Promise<void> {
    this.executing += 1;
    try {
      await this.runClaimed(claim);
    } finally {
      this.executing -= 1;
    }
  }

  private async runClaimed(claim: ClaimedEvent): Promise<void> {
    const requestId = claim.requestId;
    const snapshot = claim.function;
    try {
      // An image runs only for the namespaces CONTAINER_IMAGES opens it to now: an operator who took
      // a namespace off an image stops its functions' new events too (not only new functions).
      if (snapshot.image && !imagesOpenTo(containerImages(this.env), claim.namespace).includes(snapshot.image.name)) {
        throw new ImageNotDeployedError(
          `image "${snapshot.image.name}" is not in this deployment for namespace "${claim.namespace}" (CONTAINER_IMAGES opens each image to its namespaces: npm run image:add -- ${snapshot.image.name} --namespaces ${claim.namespace})`,
        );
      }
      // After each wait, check the event is still ours: a terminate may have repossessed it.
      const shape = containerShapeOf(snapshot, this.env);
      let cold = !this.lifecycle.isWarmFor(shape);
      // The event's timeline: a new container starting is told now (it takes a while, and live
      // followers see it); an idle container reused is not, as the start follows at once and the
      // event's `started` transition records it (one call and one storage write fewer per warm event).
      if (cold) {
        await this.eventStub(requestId)
          .markContainer(this.instanceId, cold, Date.now())
          .catch((error: unknown) => console.warn("reporting the container failed", requestId, String(error)));
      }
      // A warm container whose agent ended the slot's previous event a moment ago is not asked for
      // its health first (one request fewer per event under a backlog); should its agent be gone
      // after all, the hand-over fails and the container is checked (or replaced) as usual below.
      const recent = cold ? undefined : this.lifecycle.recentHealth(shape);
      let health = recent ?? (await this.lifecycle.ensureStarted(shape));
      if (this.current?.requestId !== requestId) return;
      const ours = () => this.current?.requestId === requestId && this.lifecycle.running;
      const timeoutMs = snapshot.timeoutSeconds * 1000;
      const spec = clampedSpecOf(claim, instanceTypeOfShape(shape, this.current.slot));
      let postedAt = Date.now();
      const handOver = async (bootId: string): Promise<ReadableStream<Uint8Array> | undefined> => {
        const agent = this.lifecycle.agent();
        // An image function ships no code: its image holds it.
        if (!snapshot.image) await this.lifecycle.ensureCode(agent, bootId, snapshot.codeSha256, snapshot.codeKey);
        if (!ours()) return undefined;
        // Diagnostics hold point "starting" (before the hand-over); a terminate meanwhile repossessed it.
        await this.holds.pauseAt(requestId, "starting");
        if (!ours()) return undefined;
        postedAt = Date.now();
        // The answer is the execution's record stream (a new one, or one already running there).
        return (await agent.startExecution(spec)).records;
      };
      let records: ReadableStream<Uint8Array> | undefined;
      try {
        records = await handOver(health.bootId);
      } catch (error) {
        if (!recent || this.current?.requestId !== requestId) throw error;
        console.warn(
          "the warm container's agent did not take the event; checking the container",
          requestId,
          String(error),
        );
        health = await this.lifecycle.ensureStarted(shape);
        // A new container was started for it: the event's start is a cold one.
        if (health.bootId !== recent.bootId) cold = true;
        if (this.current?.requestId !== requestId) return;
        records = await handOver(health.bootId);
      }
      if (!records) return;
      // The stream opens with the started record, written as the handler is handed the event.
      const { started: handedOver, rest } = await readStartedRecord(records);
      const current = this.current;
      if (current?.requestId !== requestId) {
        await rest.cancel();
        return;
      }
      // The hand-over, by the agent's clock, kept between the request and its answer (clock skew);
      // without a started record (the execution ended before any hand-over), its answer.
      const answeredAt = Date.now();
      const startedAt = handedOver ? Math.min(Math.max(handedOver.ts, postedAt), answeredAt) : answeredAt;
      current.deadline = startedAt + timeoutMs;
      const warnAt = deadlineWarningAt(current.deadline, snapshot.deadlineWarningSeconds, snapshot.timeoutSeconds);
      if (warnAt !== undefined) current.warnAt = warnAt;
      if (handedOver) current.lastSeq = Math.max(current.lastSeq, handedOver.seq);
      await this.ctx.storage.put(CURRENT_KEY, current);
      // The claim's relay check is armed already and usually due first (the alarm re-arms itself
      // from there, by the deadline); set only when the deadline or its warning comes earlier.
      const due = nextExecutionAlarm(current, Date.now() + RELAY_CHECK_INTERVAL_MS);
      const armed = await this.ctx.storage.getAlarm();
      if (armed === null || armed > due) await this.ctx.storage.setAlarm(due);
      const started = await this.eventStub(requestId).markStarted(this.instanceId, cold, health.bootId, startedAt);
      if (!started.ok) {
        // Terminated while the container was starting: the event has ended, stop the handler.
        await rest.cancel();
        await this.finish(requestId, undefined);
        return;
      }
      await this.relayAndFinish(requestId, rest);
    } catch (error) {
      await this.finish(requestId, { kind: "crashed", message: `platform error: ${String(error)}` });
    }
  }

  /** Relays the agent's records to the event until the end record, then ends the execution. */
  protected async relayAndFinish(requestId: string, opened?: ReadableStream<Uint8Array>): Promise<void> {
    if (this.relaying) return;
    this.relaying = true;
    const interrupt = new AbortController();
    this.relayInterrupt = interrupt;
    let records = opened;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const relayed = await this.relay(requestId, records, interrupt.signal);
          // The agent sent the end record just now: the slot's next event need not ask its health.
          if (relayed) this.lifecycle.heardFromAgent();
          if (relayed) await this.finish(requestId, relayed.end.outcome, relayed.end.maxRssKb, relayed.finalLogs);
          return;
        } catch (error) {
          records = undefined;
          if (this.current?.requestId !== requestId || this.finishing) return;
          // Interrupted on purpose (diagnostics): leave the resumption to the alarm, as after a restart.
          if (interrupt.signal.aborted) return;
          const running = this.lifecycle.running;
          if (running && attempt < RELAY_RETRIES) {
            // The stream broke but the container lives: the agent buffers, pick up after lastSeq.
            const backoff = Math.min(RELAY_BACKOFF_BASE_MS * 2 ** attempt, RELAY_BACKOFF_MAX_MS);
            await new Promise((resolve) => setTimeout(resolve, backoff));
            continue;
          }
          await this.finish(requestId, {
            kind: "crashed",
            message: running
              ? `lost the agent's stream: ${String(error)}`
              : "the container exited during the execution",
          });
          return;
        }
      }
    } finally {
      if (this.relayInterrupt === interrupt) this.relayInterrupt = undefined;
      this.relaying = false;
    }
  }

  /**
   * Reads the agent's record stream (the one already open, or a new one from the last relayed seq)
   * and forwards log lines to the event, recording the last relayed seq; answers the end record
   * with the lines not yet forwarded (see relayRecords).
   */
  private async relay(
    requestId: string,
    opened: ReadableStream<Uint8Array> | undefined,
    signal: AbortSignal,
  ): Promise<RelayedEnd | undefined> {
    const agent = this.lifecycle.agent();
    const records = opened ?? (await agent.openStream(requestId, this.current?.lastSeq ?? 0, signal));
    const event = this.eventStub(requestId);
    return relayRecords(records, signal, {
      stillCurrent: () => this.current?.requestId === requestId,
      sendLogs: async (batch) => {
        await event.appendLogs(batch);
        const current = this.current;
        const last = batch.at(-1);
        if (current?.requestId === requestId && last && last.seq > current.lastSeq) {
          current.lastSeq = last.seq;
          await this.ctx.storage.put(CURRENT_KEY, current);
        }
      },
      sendProgress: async (record) => {
        await event
          .reportProgress(this.instanceId, { percent: record.percent, message: record.message, seq: record.seq })
          .catch((error: unknown) => console.warn("relaying progress failed", requestId, String(error)));
      },
    });
  }

  /**
   * Ends the current execution once: reports the outcome (undefined: the event was already ended
   * by its own object), destroys the container after an abnormal end, frees the slot.
   */
  protected async finish(
    requestId: string,
    outcome: ExecutionOutcome | undefined,
    maxRssKb?: number,
    finalLogs: LogRecord[] = [],
  ): Promise<void> {
    const current = this.current;
    if (current?.requestId !== requestId || this.finishing) return;
    this.finishing = true;
    // Busy until the slot's next event has started here or the idle alarm is set (see the finally).
    this.handingOver += 1;
    const instanceId = this.instanceId;
    let containerDestroyed = false;
    let reported: Promise<unknown> = Promise.resolve();
    try {
      // Container first: once the event reads as ended, an abnormal end's container is gone.
      if (!outcome || isAbnormal(outcome) || current.terminated) {
        await this.lifecycle.destroyQuietly();
        containerDestroyed = !this.lifecycle.running;
      }
      this.current = undefined;
      await this.ctx.storage.delete(CURRENT_KEY);
      // Diagnostics hold point "ending": the handler's outcome is known here, not yet reported.
      if (outcome) await this.holds.pauseAt(requestId, "ending");
      // If this report is lost, the event's own backstop alarm still ends it. It travels beside the
      // slot's release (below): the slot's next event does not wait for this end to be stored.
      if (outcome) {
        reported = this.eventStub(requestId)
          .complete(instanceId, outcome, maxRssKb, finalLogs)
          .catch((error: unknown) => console.warn("reporting the outcome failed", requestId, String(error)));
      }
    } finally {
      // Cleared before the release goes out: the slot's next event may arrive while the report travels.
      this.current = undefined;
      this.finishing = false;
      // Until the slot's next event has started here, or the idle alarm is set, the instance counts
      // as busy: to the lease audit, to an eviction (refused) and to an alarm due meanwhile (the
      // execution's relay check), which then sets the idle alarm instead of destroying the container.
      try {
        // Before the slot is freed, so that its next event asks for a fresh container's room. The
        // lease is busy under its token (the first event of the slot's run), else under this event.
        if (containerDestroyed) await this.releaseLease(current, current.leaseToken ?? requestId);
        // A kept container keeps its lease: the release hands both to the slot's next waiting event
        // and answers it, and it starts here at once, without a runEvent call and without waiting
        // for this end's report (FunctionSchedulerObject.release). Its claim sets its alarm.
        const released = this.schedulerStub(current.schedulerName)
          .release(current.slot, requestId, { leaseKept: !containerDestroyed, takeNext: true })
          .then((answer) => {
            if (answer?.next) this.startNext(answer.next);
          })
          .catch((error: unknown) => console.warn("releasing the slot failed", requestId, String(error)));
        await Promise.all([reported, released]);
        await this.setIdleAlarmIfIdle(0);
      } finally {
        this.handingOver -= 1;
      }
    }
  }

  /**
   * Sets the idle alarm unless an execution runs or is starting here besides `ownStarts` (the
   * caller's own start, when it is one): that execution's claim set its alarm, which must not be
   * moved to the idle one (an event the scheduler started here while this end's release travelled).
   */
  protected async setIdleAlarmIfIdle(ownStarts: number): Promise<void> {
    if (this.current !== undefined || this.starting > ownStarts) return;
    await this.ctx.storage.setAlarm(Date.now() + IDLE_CONTAINER_MS);
  }

  protected eventStub(requestId: string) {
    return eventStub(this.env, requestId);
  }

  protected schedulerStub(name: string) {
    return schedulerStub(this.env, name);
  }
}
