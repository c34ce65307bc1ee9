import { DurableObject } from "cloudflare:workers";
import type { ClaimResult } from "../events/async-event-object";
import type { LogRecord } from "../events/event-log-store";
import { type ExecutionOutcome, isAbnormal } from "../events/event-machine";
import { DEFAULT_MEMORY_MB } from "../functions/model";
import { eventStub, instanceName, namespaceOfScheduler, namespaceQuotaStub, schedulerStub } from "../shared/objects";
import { AgentClient, type AgentHealth } from "./agent-client";
import { type AgentEndRecord, readAgentRecords, readStartedRecord } from "./agent-stream";
import { type ContainerBoot, containerStartOptions, isContainerBoot, newContainerBoot } from "./container-boot";
import { LogForwarder } from "./log-forwarder";

/** Result of a full container lifecycle check (start, reach the port, SIGTERM, destroy). */
export interface ContainerSelfCheck {
  started: boolean;
  agentPid: number;
  agentParentPid: number;
  startToReadyMs: number;
  sigtermObserved: boolean;
  signalToObservedMs: number;
  destroyed: boolean;
  destroyMs: number;
}

/** What the scheduler hands an instance. */
export interface RunRequest {
  requestId: string;
  schedulerName: string;
  slot: number;
}

/** The execution this instance is running, persisted so that a restarted object can resume it. */
interface CurrentExecution {
  requestId: string;
  schedulerName: string;
  slot: number;
  /** Epoch ms past which the execution has timed out; set once the handler starts. */
  deadline?: number;
  /** Highest agent record seq already relayed to the event. */
  lastSeq: number;
  /** SIGTERM was forwarded (graceful terminate): however it ends, the container is not reused. */
  terminated?: boolean;
}

const SIGTERM = 15;
const SIGNAL_OBSERVE_TIMEOUT_MS = 5_000;
/** An idle container is destroyed after this long without an event. */
export const IDLE_CONTAINER_MS = 10 * 60_000;
/** While an execution runs, the alarm checks the relay at least this often (resumes it after a restart). */
const RELAY_CHECK_INTERVAL_MS = 5_000;
/** Times a broken relay stream is reopened in place before the execution counts as crashed. */
const RELAY_RETRIES = 8;

/**
 * How long a start refused for capacity (isCapacityError) is retried before the execution fails:
 * below the event's START_TIMEOUT_MS (120 s), so that the failure names the cause.
 */
export const CAPACITY_WAIT_MS = 90_000;
/** Pause between two starts refused for capacity. */
export const CAPACITY_RETRY_MS = 3_000;
/**
 * How Cloudflare words a container it cannot provide: past max_instances ("there is no container
 * instance that can be provided to this durable object", "Maximum number of running container
 * instances exceeded") or starts asked too fast ("you are requesting too many containers per second").
 */
const CAPACITY_ERROR =
  /there is no container instance that can be provided|maximum number of running container instances exceeded|requesting too many containers per second|no container capacity/i;

/** True when a start failed because Cloudflare had no container for it (wait and retry, never FAILED at once). */
export function isCapacityError(error: unknown): boolean {
  const text = error instanceof Error ? error.message : String(error);
  return CAPACITY_ERROR.test(text);
}

const CURRENT_KEY = "current";
/** Storage key of the running container's boot (its agent token and memory size). */
const BOOT_KEY = "boot";
/** Storage key of the slot this instance serves: whose namespace lease counts its container. */
const SLOT_KEY = "slot";

// --- Diagnostics holds (tests force a terminate race window; inert unless DIAGNOSTICS_ENABLED) ---

/**
 * Where a diagnostics hold pauses an execution: `starting` before the hand-over (the agent has not
 * been asked to run the handler), `ending` after the handler's end record arrived but before the
 * outcome is reported to the event.
 */
export type HoldPhase = "starting" | "ending";
/** Storage key prefix of a diagnostics hold; the RequestId it holds follows. */
const HOLD_KEY_PREFIX = "diagnosticHold:";
/** How often a held execution checks whether its hold was released. */
const HOLD_POLL_MS = 100;
/**
 * Longest a hold pauses one execution (60 s): a forgotten hold cannot wedge an instance, and the
 * pause stays below the event's own start backstop (START_TIMEOUT_MS, 120 s).
 */
export const HOLD_MAX_MS = 60_000;

/**
 * A diagnostics hold as stored: where it pauses, when an execution reached it, and when it was
 * released (the paused execution deletes it as it goes on).
 */
interface HoldRecord {
  phase: HoldPhase;
  reachedAt?: number;
  releasedAt?: number;
}

/**
 * A diagnostics hold as the route reports it: `phase` is null once no hold is left (never set, or
 * its execution went on after the release); `held` is true while an execution is paused at it.
 */
export interface HoldStatus {
  requestId: string;
  phase: HoldPhase | null;
  held: boolean;
}

/** The scheduler slot an instance serves (its Durable Object name is `schedulerName#slot`). */
interface SlotOwner {
  schedulerName: string;
  slot: number;
}

/**
 * A container-enabled Durable Object: owns one container running the runtime agent and runs one
 * event at a time in it. It hands the agent the code package and the event, relays log lines and
 * the outcome to the event's object, enforces the timeout, and destroys the container after any
 * abnormal end so that the next event gets a fresh one.
 */
export class InstanceContainer extends DurableObject<Env> {
  private current: CurrentExecution | undefined;
  /** True while this object instance is reading the agent's record stream. */
  private relaying = false;
  /** Guards against ending the same execution twice (timeout racing the handler's end). */
  private finishing = false;
  /** Aborts the open relay (see interruptRelay). */
  private relayInterrupt: AbortController | undefined;
  /** Code packages the agent of a container boot already has ("bootId/sha256"). */
  private readonly codeShipped = new Set<string>();
  /** The container this object last started: its agent's token and memory size. */
  private boot: ContainerBoot | undefined;
  /** The slot this instance serves, known since its first event (releases the namespace's lease). */
  private owner: SlotOwner | undefined;
  /** runEvent calls between their entry and their claim's answer (an eviction must not race them). */
  private starting = 0;
  /** True while evictIfIdle destroys the idle container: no event may start on it meanwhile. */
  private evicting = false;
  /** execute() calls in progress in this object instance (none after a restart). */
  private executing = 0;
  /** Why the container last started failed, as its monitor reported it (capacity refusals). */
  private startFailure: unknown;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      this.current = await ctx.storage.get<CurrentExecution>(CURRENT_KEY);
      const boot = await ctx.storage.get(BOOT_KEY);
      this.boot = isContainerBoot(boot) ? boot : undefined;
      this.owner = await ctx.storage.get<SlotOwner>(SLOT_KEY);
    });
  }

  private get container(): Container {
    const container = this.ctx.container;
    if (!container) throw new Error("no container is configured for InstanceContainer");
    return container;
  }

  private get instanceId(): string {
    return this.current ? `${this.current.schedulerName}#${this.current.slot}` : "";
  }

  /** True when this object has a container attached (the runtime supports containers). */
  hasContainerSupport(): boolean {
    return this.ctx.container !== undefined;
  }

  /**
   * Whether this instance's container is running, and what it is doing (diagnostics, tests), with
   * this object's Durable Object id: locally, workerd names the instance's Docker container after it
   * (`workerd-<session>-<script>-InstanceContainer-<id>`), so a test can ask Docker itself.
   */
  async status(): Promise<{ containerRunning: boolean; requestId: string | null; durableObjectId: string }> {
    return {
      containerRunning: this.ctx.container?.running ?? false,
      requestId: this.current?.requestId ?? null,
      durableObjectId: this.ctx.id.toString(),
    };
  }

  /** The RequestId this instance is running, if any (the scheduler's audit). */
  async currentRequestId(): Promise<string | undefined> {
    return this.current?.requestId;
  }

  /** Whether a container runs here and whether an event holds (or is claiming) it: the lease audit. */
  async leaseCheck(): Promise<{ containerRunning: boolean; busy: boolean }> {
    return {
      containerRunning: this.ctx.container?.running ?? false,
      busy: this.current !== undefined || this.starting > 0 || this.evicting,
    };
  }

  /**
   * Destroys the container if, and only if, no event runs or is being claimed here (the namespace's
   * quota object gives its lease to another slot). Answers whether the instance now holds no
   * container; a runEvent arriving meanwhile is refused rather than started on a dying container.
   */
  async evictIfIdle(): Promise<boolean> {
    if (this.current || this.starting > 0 || this.finishing || this.evicting) return false;
    this.evicting = true;
    try {
      const container = this.ctx.container;
      if (container?.running) await container.destroy();
      if (this.ctx.container?.running) return false;
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
   * Gives the slot's namespace lease back once its container is destroyed. endedRequestId names the
   * event whose end destroyed it (the lease is busy with it); a failure is logged (the audit reclaims).
   */
  private async releaseLease(owner: SlotOwner | undefined, endedRequestId?: string): Promise<void> {
    if (!owner) return;
    const namespace = namespaceOfScheduler(owner.schedulerName);
    const instance = instanceName(owner.schedulerName, owner.slot);
    await namespaceQuotaStub(this.env, namespace)
      .releaseInstance(instance, endedRequestId)
      .catch((error: unknown) => console.warn("releasing the namespace lease failed", instance, String(error)));
  }

  /** A client of the running container's agent, with its boot's token. */
  private agent(): AgentClient {
    if (!this.boot) throw new Error("no container boot is known: start the container first");
    return new AgentClient(this.container, this.boot.token);
  }

  /**
   * Starts a container with a fresh boot: a new agent token (persisted before the start, so a
   * restarted object can still talk to it) and the memory and process caps for memoryMb.
   */
  private async startContainer(memoryMb: number): Promise<void> {
    const boot = newContainerBoot(memoryMb);
    await this.ctx.storage.put(BOOT_KEY, boot);
    this.boot = boot;
    this.startFailure = undefined;
    this.container.start(containerStartOptions(boot, this.env));
    // Cloudflare reports a refused start (past max_instances) by failing the container's monitor.
    this.container.monitor().catch((error: unknown) => {
      if (this.boot === boot) this.startFailure = error;
    });
  }

  /**
   * Starts a container, waiting while Cloudflare has no capacity for it (isCapacityError): the
   * start is retried every CAPACITY_RETRY_MS, for at most CAPACITY_WAIT_MS, then fails naming the
   * limit. Other start errors are thrown at once.
   */
  private async startWithCapacityWait(memoryMb: number): Promise<AgentHealth> {
    const giveUpAt = Date.now() + CAPACITY_WAIT_MS;
    for (;;) {
      try {
        if (!this.container.running) await this.startContainer(memoryMb);
        return await this.agent().waitUntilReady();
      } catch (error) {
        const cause = this.startFailure ?? error;
        if (!isCapacityError(cause) && !isCapacityError(error)) throw error;
        if (this.container.running) await this.container.destroy().catch(() => undefined);
        if (Date.now() + CAPACITY_RETRY_MS > giveUpAt) {
          throw new Error(
            `no container capacity: the platform's containers are at Cloudflare's max_instances (${String(cause)})`,
          );
        }
        console.warn("no container capacity; waiting to start again", String(cause));
        await new Promise((resolve) => setTimeout(resolve, CAPACITY_RETRY_MS));
      }
    }
  }

  /**
   * Starts the container unless one runs that this object started for the same memory size (a
   * container of another size, or of unknown boot, is destroyed first), then waits for the agent.
   */
  async ensureStarted(memoryMb: number = DEFAULT_MEMORY_MB): Promise<AgentHealth> {
    if (this.container.running && this.boot?.memoryMb !== memoryMb) {
      await this.container.destroy().catch(() => undefined);
    }
    try {
      const health = await this.startWithCapacityWait(memoryMb);
      if (!health.stopping) return health;
      // The platform is stopping this container (a rollout, a host drain): run on a fresh one.
      throw new Error("the container is being stopped by the platform");
    } catch (error) {
      if (isCapacityError(error)) throw error;
      // One more try with a fresh container: a boot can fail on a busy engine, and a container
      // whose agent refuses our token (started by a lost boot) is of no use.
      console.warn("container did not become ready; starting a fresh one", String(error));
      if (this.container.running) await this.container.destroy().catch(() => undefined);
      return this.startWithCapacityWait(memoryMb);
    }
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
    this.starting += 1;
    try {
      return await this.claimAndRun(request);
    } finally {
      this.starting -= 1;
    }
  }

  /** runEvent's body, run while `starting` counts it. */
  private async claimAndRun(request: RunRequest): Promise<{ started: boolean; reason?: string }> {
    const instanceId = `${request.schedulerName}#${request.slot}`;
    const event = this.eventStub(request.requestId);
    const claim = await event.claim(instanceId);
    if (!claim.ok) {
      // Ended, terminated or run elsewhere already: nothing to do, give the slot back.
      await this.schedulerStub(request.schedulerName).release(request.slot, request.requestId);
      return { started: false, reason: claim.reason };
    }
    this.current = {
      requestId: request.requestId,
      schedulerName: request.schedulerName,
      slot: request.slot,
      lastSeq: 0,
    };
    this.finishing = false;
    this.owner = { schedulerName: request.schedulerName, slot: request.slot };
    await this.ctx.storage.put({ [CURRENT_KEY]: this.current, [SLOT_KEY]: this.owner });
    await this.ctx.storage.setAlarm(Date.now() + RELAY_CHECK_INTERVAL_MS);
    this.ctx.waitUntil(this.execute(claim));
    return { started: true };
  }

  /** Forwards SIGTERM to the handler process of requestId (graceful terminate). */
  async signalTerminate(requestId: string): Promise<{ delivered: boolean }> {
    const current = this.current;
    if (current?.requestId !== requestId || !this.ctx.container?.running) return { delivered: false };
    current.terminated = true;
    await this.ctx.storage.put(CURRENT_KEY, current);
    const response = await this.agent().fetch(`/executions/${encodeURIComponent(requestId)}/signal`, {
      method: "POST",
    });
    if (!response.ok) return { delivered: false };
    return (await response.json()) as { delivered: boolean };
  }

  /** Ends the execution of requestId by force (timeout backstop or terminate): destroys the container. */
  async repossess(requestId: string): Promise<void> {
    if (this.current?.requestId !== requestId) return;
    await this.finish(requestId, undefined);
  }

  /** Timeout enforcement, relay resumption after a restart, and idle-container clean-up. */
  override async alarm(): Promise<void> {
    const current = this.current;
    if (!current) {
      if (this.starting > 0) {
        // An event is being claimed here: it will use the container (or idle it again).
        await this.ctx.storage.setAlarm(Date.now() + IDLE_CONTAINER_MS);
        return;
      }
      const container = this.ctx.container;
      if (container?.running) await container.destroy();
      // Idle past IDLE_CONTAINER_MS: the container is gone, so is its place in the namespace's cap.
      if (!this.current && this.starting === 0) await this.releaseLease(this.owner);
      return;
    }
    if (current.deadline !== undefined && Date.now() >= current.deadline) {
      await this.finish(current.requestId, { kind: "timeout" });
      return;
    }
    if (current.deadline !== undefined && !this.relaying) {
      // This object restarted mid-run: pick the agent's stream up where the last relay stopped.
      this.ctx.waitUntil(this.relayAndFinish(current.requestId));
    }
    if (current.deadline === undefined && this.executing === 0 && this.starting === 0) {
      // This object restarted while it was starting the execution (the whole runtime died, say):
      // nothing is starting it any more, so start it again under the same claim.
      await this.resumeStart(current.requestId);
    }
    const next = Date.now() + RELAY_CHECK_INTERVAL_MS;
    await this.ctx.storage.setAlarm(current.deadline !== undefined ? Math.min(current.deadline, next) : next);
  }

  /**
   * Exercises the whole container lifecycle against the real engine: start, reach the agent's
   * HTTP port, send SIGTERM and observe the process received it, destroy.
   */
  async selfCheck(): Promise<ContainerSelfCheck> {
    const startAt = Date.now();
    const health = await this.ensureStarted();
    const readyAt = Date.now();
    const agent = this.agent();

    this.container.signal(SIGTERM);
    const signalAt = Date.now();
    let sigtermObserved = false;
    while (!sigtermObserved && Date.now() - signalAt < SIGNAL_OBSERVE_TIMEOUT_MS) {
      const now = await agent.health();
      sigtermObserved = now.signalsReceived.some((entry) => entry.signal === "SIGTERM");
      if (!sigtermObserved) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const observedAt = Date.now();

    await this.container.destroy();
    const destroyedAt = Date.now();
    return {
      started: true,
      agentPid: health.pid,
      agentParentPid: health.parentPid,
      startToReadyMs: readyAt - startAt,
      sigtermObserved,
      signalToObservedMs: observedAt - signalAt,
      destroyed: !this.container.running,
      destroyMs: destroyedAt - observedAt,
    };
  }

  /**
   * Starts again an execution whose start died with this object (a restart before the hand-over):
   * the event's claim by this instance is repeated (idempotent) for its payload and snapshot.
   */
  private async resumeStart(requestId: string): Promise<void> {
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
      this.ctx.waitUntil(this.execute(claim));
    } finally {
      this.executing -= 1;
    }
  }

  /** Runs one claimed execution (see runClaimed), counted in `executing` meanwhile. */
  private async execute(claim: Extract<ClaimResult, { ok: true }>): Promise<void> {
    this.executing += 1;
    try {
      await this.runClaimed(claim);
    } finally {
      this.executing -= 1;
    }
  }

  private async runClaimed(claim: Extract<ClaimResult, { ok: true }>): Promise<void> {
    const requestId = claim.requestId;
    const snapshot = claim.function;
    try {
      // After each wait, check the event is still ours: a terminate may have repossessed it.
      const cold = !this.container.running || this.boot?.memoryMb !== snapshot.memoryMb;
      const health = await this.ensureStarted(snapshot.memoryMb);
      if (this.current?.requestId !== requestId) return;
      const agent = this.agent();
      await this.ensureCode(agent, health.bootId, snapshot.codeSha256, snapshot.codeKey);
      if (this.current?.requestId !== requestId || !this.container.running) return;
      // Diagnostics hold point "starting" (before the hand-over); a terminate meanwhile repossessed it.
      await this.pauseAtHold(requestId, "starting");
      if (this.current?.requestId !== requestId || !this.container.running) return;
      const timeoutMs = snapshot.timeoutSeconds * 1000;
      const postedAt = Date.now();
      // The answer is the execution's record stream: no request timeout, the deadline rules.
      const response = await agent.fetch("/executions?stream=1", {
        signal: new AbortController().signal,
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          requestId,
          runtime: snapshot.runtime,
          handler: snapshot.handler,
          codeSha256: snapshot.codeSha256,
          event: JSON.parse(claim.payload) as unknown,
          environment: snapshot.environment,
          memoryLimitMb: snapshot.memoryMb,
          timeoutMs: timeoutMs + 1_000,
          context: {
            request_id: requestId,
            function_name: snapshot.name,
            namespace: snapshot.namespace,
            function_version: "$LATEST",
            memory_limit_in_mb: snapshot.memoryMb,
            time_limit_in_ms: timeoutMs,
          },
        }),
      });
      if (response.status !== 201 && response.status !== 200) {
        throw new Error(`the agent refused the execution: ${await refusalOf(response)}`);
      }
      // 201 carries the new execution's stream; 200 (it already runs here) means reading it anew.
      let stream = response;
      if (response.status !== 201) {
        await response.body?.cancel();
        stream = await agent.fetch(`/executions/${encodeURIComponent(requestId)}/stream?after=0`, {
          signal: new AbortController().signal,
        });
        if (!stream.ok) throw new Error(`agent stream answered ${stream.status}`);
      }
      if (!stream.body) throw new Error("the agent's execution stream has no body");
      // The stream opens with the started record, written as the handler is handed the event.
      const { started: handedOver, rest } = await readStartedRecord(stream.body);
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
      if (handedOver) current.lastSeq = Math.max(current.lastSeq, handedOver.seq);
      await this.ctx.storage.put(CURRENT_KEY, current);
      await this.ctx.storage.setAlarm(Math.min(current.deadline, Date.now() + RELAY_CHECK_INTERVAL_MS));
      const started = await this.eventStub(requestId).markStarted(this.instanceId, cold, health.bootId, startedAt);
      if (!started.ok) {
        // Terminated while the container was starting: the event has ended, stop the handler.
        await rest.cancel();
        await this.finish(requestId, undefined);
        return;
      }
      await this.relayAndFinish(requestId, new Response(rest));
    } catch (error) {
      await this.finish(requestId, { kind: "crashed", message: `platform error: ${String(error)}` });
    }
  }

  /** Sends the code package to the agent unless it has it cached. */
  private async ensureCode(agent: AgentClient, bootId: string, sha256: string, codeKey: string): Promise<void> {
    const known = `${bootId}/${sha256}`;
    if (this.codeShipped.has(known)) return;
    const cached = await agent.fetch(`/code/${sha256}`);
    if (cached.status === 200) {
      this.codeShipped.add(known);
      return;
    }
    const object = await this.env.CODE_BUCKET.get(codeKey);
    if (!object) throw new Error(`code package ${codeKey} not found`);
    const stored = await agent.fetch(`/code/${sha256}`, { method: "PUT", body: await object.arrayBuffer() });
    if (!stored.ok) throw new Error(`the code package was refused: ${await refusalOf(stored)}`);
    this.codeShipped.add(known);
  }

  /** Relays the agent's records to the event until the end record, then ends the execution. */
  private async relayAndFinish(requestId: string, opened?: Response): Promise<void> {
    if (this.relaying) return;
    this.relaying = true;
    const interrupt = new AbortController();
    this.relayInterrupt = interrupt;
    let response = opened;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const relayed = await this.relay(requestId, response, interrupt.signal);
          if (relayed) await this.finish(requestId, relayed.end.outcome, relayed.end.maxRssKb, relayed.finalLogs);
          return;
        } catch (error) {
          response = undefined;
          if (this.current?.requestId !== requestId || this.finishing) return;
          // Interrupted on purpose (diagnostics): leave the resumption to the alarm, as after a restart.
          if (interrupt.signal.aborted) return;
          const running = this.ctx.container?.running ?? false;
          if (running && attempt < RELAY_RETRIES) {
            // The stream broke but the container lives: the agent buffers, pick up after lastSeq.
            await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** attempt, 2_000)));
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
   * Drops the open relay as a restart of this object would (diagnostics): the relay is not retried
   * here; the next alarm resumes it from the last relayed seq, and the agent's buffer fills the gap.
   */
  async interruptRelay(): Promise<{ interrupted: boolean }> {
    const interrupt = this.relayInterrupt;
    if (!interrupt) return { interrupted: false };
    interrupt.abort(new Error("relay interrupted by diagnostics"));
    return { interrupted: true };
  }

  /** True when diagnostics holds may act (never in a deployment: see the diagnostics routes). */
  private get holdsEnabled(): boolean {
    return this.env.DIAGNOSTICS_ENABLED === "true";
  }

  /**
   * Diagnostics: the next execution of requestId on this instance pauses at `phase` until
   * releaseHold (or HOLD_MAX_MS). Refused unless DIAGNOSTICS_ENABLED is "true".
   */
  async setHold(requestId: string, phase: HoldPhase): Promise<HoldStatus> {
    if (!this.holdsEnabled) throw new Error("diagnostics holds are disabled");
    const record: HoldRecord = { phase };
    await this.ctx.storage.put(HOLD_KEY_PREFIX + requestId, record);
    return { requestId, phase, held: false };
  }

  /** Diagnostics: the hold set for requestId, and whether an execution is paused at it. */
  async holdStatus(requestId: string): Promise<HoldStatus> {
    const record = this.holdsEnabled ? await this.ctx.storage.get<HoldRecord>(HOLD_KEY_PREFIX + requestId) : undefined;
    return {
      requestId,
      phase: record?.phase ?? null,
      held: record?.reachedAt !== undefined && record.releasedAt === undefined,
    };
  }

  /**
   * Diagnostics: releases the hold of requestId. A hold no execution reached is removed; a paused
   * execution goes on within HOLD_POLL_MS and then removes it (holdStatus answers phase null).
   */
  async releaseHold(requestId: string): Promise<{ released: boolean }> {
    if (!this.holdsEnabled) return { released: false };
    const key = HOLD_KEY_PREFIX + requestId;
    const record = await this.ctx.storage.get<HoldRecord>(key);
    if (!record) return { released: false };
    if (record.reachedAt === undefined) await this.ctx.storage.delete(key);
    else await this.ctx.storage.put(key, { ...record, releasedAt: Date.now() } satisfies HoldRecord);
    return { released: true };
  }

  /**
   * A hold point: pauses the execution of requestId while a diagnostics hold for `phase` is set and
   * not released (at most HOLD_MAX_MS), then removes the hold. Does nothing, and reads nothing,
   * unless DIAGNOSTICS_ENABLED is "true".
   */
  private async pauseAtHold(requestId: string, phase: HoldPhase): Promise<void> {
    if (!this.holdsEnabled) return;
    const key = HOLD_KEY_PREFIX + requestId;
    const record = await this.ctx.storage.get<HoldRecord>(key);
    if (record?.phase !== phase) return;
    await this.ctx.storage.put(key, { ...record, reachedAt: Date.now() } satisfies HoldRecord);
    const giveUpAt = Date.now() + HOLD_MAX_MS;
    for (;;) {
      const now = await this.ctx.storage.get<HoldRecord>(key);
      if (!now || now.releasedAt !== undefined) break;
      if (Date.now() >= giveUpAt) {
        console.warn("diagnostics hold not released in time; going on", requestId, phase);
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, HOLD_POLL_MS));
    }
    await this.ctx.storage.delete(key);
  }

  /**
   * Reads the agent's record stream (the one already open, or a new one from the last relayed seq)
   * and forwards log lines; returns the end record with the lines not yet forwarded.
   */
  private async relay(
    requestId: string,
    opened: Response | undefined,
    signal: AbortSignal,
  ): Promise<{ end: AgentEndRecord; finalLogs: LogRecord[] } | undefined> {
    const agent = this.agent();
    const after = this.current?.lastSeq ?? 0;
    const response =
      opened ?? (await agent.fetch(`/executions/${encodeURIComponent(requestId)}/stream?after=${after}`, { signal }));
    if (!response.ok || !response.body) throw new Error(`agent stream answered ${response.status}`);
    const event = this.eventStub(requestId);
    const forwarder = new LogForwarder(async (batch) => {
      await event.appendLogs(batch);
      const current = this.current;
      const last = batch.at(-1);
      if (current?.requestId === requestId && last && last.seq > current.lastSeq) {
        current.lastSeq = last.seq;
        await this.ctx.storage.put(CURRENT_KEY, current);
      }
    });
    for await (const record of readAgentRecords(response.body, signal)) {
      if (this.current?.requestId !== requestId) return undefined;
      if (record.type === "log") {
        forwarder.add({ seq: record.seq, ts: record.ts, stream: record.stream, line: record.line });
      } else if (record.type === "end") {
        return { end: record, finalLogs: await forwarder.drain() };
      }
    }
    forwarder.flush();
    await forwarder.drain();
    throw new Error("the agent's stream ended before the execution did");
  }

  /**
   * Ends the current execution once: reports the outcome (undefined: the event was already ended
   * by its own object), destroys the container after an abnormal end, frees the slot.
   */
  private async finish(
    requestId: string,
    outcome: ExecutionOutcome | undefined,
    maxRssKb?: number,
    finalLogs: LogRecord[] = [],
  ): Promise<void> {
    const current = this.current;
    if (current?.requestId !== requestId || this.finishing) return;
    this.finishing = true;
    const instanceId = this.instanceId;
    let containerDestroyed = false;
    try {
      // Container first: once the event reads as ended, an abnormal end's container is gone.
      if (!outcome || isAbnormal(outcome) || current.terminated) {
        const container = this.ctx.container;
        if (container?.running) await container.destroy().catch(() => undefined);
        containerDestroyed = !(this.ctx.container?.running ?? false);
      }
      this.current = undefined;
      await this.ctx.storage.delete(CURRENT_KEY);
      await this.ctx.storage.setAlarm(Date.now() + IDLE_CONTAINER_MS);
      // Diagnostics hold point "ending": the handler's outcome is known here, not yet reported.
      if (outcome) await this.pauseAtHold(requestId, "ending");
      // If this report is lost, the event's own backstop alarm still ends it.
      if (outcome) {
        await this.eventStub(requestId)
          .complete(instanceId, outcome, maxRssKb, finalLogs)
          .catch((error: unknown) => console.warn("reporting the outcome failed", requestId, String(error)));
      }
    } finally {
      this.current = undefined;
      this.finishing = false;
      // Before the slot is freed, so that its next event asks for a fresh container's room.
      if (containerDestroyed) await this.releaseLease(current, requestId);
      await this.schedulerStub(current.schedulerName)
        .release(current.slot, requestId)
        .catch((error: unknown) => console.warn("releasing the slot failed", requestId, String(error)));
    }
  }

  private eventStub(requestId: string) {
    return eventStub(this.env, requestId);
  }

  private schedulerStub(name: string) {
    return schedulerStub(this.env, name);
  }
}

/** Longest refusal text of the agent quoted in an event's error. */
const MAX_REFUSAL_CHARS = 1_000;

/** The agent's reason for refusing a request (its JSON `error`, else the body), bounded. */
async function refusalOf(response: Response): Promise<string> {
  const text = (await response.text()).slice(0, MAX_REFUSAL_CHARS);
  try {
    const body = JSON.parse(text) as { error?: unknown };
    if (typeof body.error === "string") return `${body.error} (${response.status})`;
  } catch {
    // not JSON: quote the text
  }
  return `${response.status} ${text}`;
}
