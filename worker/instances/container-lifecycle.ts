import { unpackLimitOfStored } from "../functions/code-from-object";
import type { AgentHealth } from "./agent-client";
import { type AgentApi, type AgentRunner, agentRunnerOf } from "./agent-runner";
import {
  bootFits,
  type ContainerBoot,
  type ContainerShape,
  containerStartOptions,
  ImageNotDeployedError,
  imageStartOptions,
  isContainerBoot,
  newContainerBoot,
} from "./container-boot";

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

const SIGTERM = 15;
const SIGNAL_OBSERVE_TIMEOUT_MS = 5_000;
/** Pause between two health probes while a self-check waits for the agent to see SIGTERM. */
const SIGNAL_OBSERVE_POLL_MS = 20;

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

/**
 * A warm container whose agent was heard from this recently (its previous event's end record) is
 * handed the next event without a health request first (ContainerLifecycle.recentHealth).
 */
export const AGENT_HEARD_RECENTLY_MS = 2_000;

/** Storage key of the running container's boot (its agent token and memory size). */
const BOOT_KEY = "boot";

/**
 * The container of one instance: starts it with a fresh boot (waiting while Cloudflare has no
 * capacity), waits for its agent, ships code packages to it, and reaches it through the instance's
 * AgentRunner (its Durable Object's container, or a test's fake).
 */
export class ContainerLifecycle {
  /** The container this object last started: its agent's token and memory size. */
  private boot: ContainerBoot | undefined;
  /** Why the container last started failed, as its monitor reported it (capacity refusals). */
  private startFailure: unknown;
  /**
   * The code package the agent of a container boot was last seen to have ("bootId/sha256"): the
   * agent keeps only its most recently used packages (code-package.mjs MAX_CACHED_PACKAGES), so
   * any other is asked about again.
   */
  private lastCodeShipped: string | undefined;
  /**
   * The agent's last health answer, the boot it came from, and when the agent was last heard from
   * (its health, or an execution's end record: see heardFromAgent). Memory only: a restarted object
   * asks again.
   */
  private lastHealth: { health: AgentHealth; boot: ContainerBoot; heardAt: number } | undefined;

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly env: Env,
  ) {}

  /** Reads back the boot a previous life of this object persisted (call inside blockConcurrencyWhile). */
  async load(): Promise<void> {
    const boot = await this.ctx.storage.get(BOOT_KEY);
    this.boot = isContainerBoot(boot) ? boot : undefined;
  }

  /** The instance's runner, or undefined when it has no container (the runtime attached none). */
  get runner(): AgentRunner | undefined {
    return agentRunnerOf(this.ctx);
  }

  /** True while the instance's container runs. */
  get running(): boolean {
    return this.runner?.running ?? false;
  }

  /** The instance's runner; throws when it has no container. */
  private get container(): AgentRunner {
    const runner = this.runner;
    if (!runner) throw new Error("no container is configured for InstanceContainer");
    return runner;
  }

  /**
   * True when a container runs that this object started for this shape (memory size, and for an
   * image container its image and instance type): the next event starts warm.
   */
  isWarmFor(shape: ContainerShape): boolean {
    return this.container.running && bootFits(this.boot, shape);
  }

  /**
   * The agent's health without asking it, when the container runs for this shape and its agent was
   * heard from within AGENT_HEARD_RECENTLY_MS in the same boot (the slot's previous event ended on
   * it a moment ago); undefined otherwise. A warm event started on this answer must fall back to
   * ensureStarted if the agent turns out to be gone (InstanceExecution does).
   */
  recentHealth(shape: ContainerShape, now = Date.now()): AgentHealth | undefined {
    const last = this.lastHealth;
    if (!last || last.boot !== this.boot || !this.isWarmFor(shape)) return undefined;
    if (last.health.stopping || now - last.heardAt > AGENT_HEARD_RECENTLY_MS) return undefined;
    return last.health;
  }

  /** The agent answered just now (an execution's end record): its last health still holds. */
  heardFromAgent(now = Date.now()): void {
    if (this.lastHealth && this.lastHealth.boot === this.boot) this.lastHealth.heardAt = now;
  }

  /** Destroys the container if one runs; a failure to destroy is ignored (callers check `running`). */
  async destroyQuietly(): Promise<void> {
    const runner = this.runner;
    if (runner?.running) await runner.destroy().catch(() => undefined);
  }

  /** A client of the running container's agent, with its boot's token. */
  agent(): AgentApi {
    if (!this.boot) throw new Error("no container boot is known: start the container first");
    return this.container.agent(this.boot.token);
  }

  /**
   * Starts a container with a fresh boot: a new agent token (persisted before the start, so a
   * restarted object can still talk to it) and the memory and process caps for memoryMb.
   */
  private async startContainer(shape: ContainerShape): Promise<void> {
    const container = this.container;
    // An image the deployment lacks throws here, before anything is started or stored.
    const imageOptions = shape.image ? imageStartOptions(shape.image, container.images) : {};
    const boot = newContainerBoot(shape);
    await this.ctx.storage.put(BOOT_KEY, boot);
    this.boot = boot;
    this.startFailure = undefined;
    container.start({ ...containerStartOptions(boot, this.env), ...imageOptions } as ContainerStartupOptions);
    // Cloudflare reports a refused start (past max_instances) by failing the container's monitor.
    container.monitor().catch((error: unknown) => {
      if (this.boot === boot) this.startFailure = error;
    });
  }

  /**
   * Starts a container, waiting while Cloudflare has no capacity for it (isCapacityError): the
   * start is retried every CAPACITY_RETRY_MS, for at most CAPACITY_WAIT_MS, then fails naming the
   * limit. Other start errors are thrown at once.
   */
  private async startWithCapacityWait(shape: ContainerShape): Promise<AgentHealth> {
    const giveUpAt = Date.now() + CAPACITY_WAIT_MS;
    for (;;) {
      try {
        if (!this.container.running) await this.startContainer(shape);
        const health = await this.agent().waitUntilReady();
        if (this.boot) this.lastHealth = { health, boot: this.boot, heardAt: Date.now() };
        return health;
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
  async ensureStarted(shape: ContainerShape): Promise<AgentHealth> {
    // An image the deployment lacks fails the event at once with the remedy: never retried.
    if (shape.image) imageStartOptions(shape.image, this.container.images);
    if (this.container.running && !bootFits(this.boot, shape)) {
      await this.container.destroy().catch(() => undefined);
    }
    try {
      const health = await this.startWithCapacityWait(shape);
      if (!health.stopping) return health;
      // The platform is stopping this container (a rollout, a host drain): run on a fresh one.
      throw new Error("the container is being stopped by the platform");
    } catch (error) {
      if (isCapacityError(error) || error instanceof ImageNotDeployedError) throw error;
      // One more try with a fresh container: a boot can fail on a busy engine, and a container
      // whose agent refuses our token (started by a lost boot) is of no use.
      console.warn("container did not become ready; starting a fresh one", String(error));
      if (this.container.running) await this.container.destroy().catch(() => undefined);
      return this.startWithCapacityWait(shape);
    }
  }

  /** Sends the code package to the agent unless it has it cached. */
  async ensureCode(agent: AgentApi, bootId: string, sha256: string, codeKey: string): Promise<void> {
    const known = `${bootId}/${sha256}`;
    if (this.lastCodeShipped === known) return;
    if (await agent.hasCode(sha256)) {
      this.lastCodeShipped = known;
      return;
    }
    const object = await this.env.CODE_BUCKET.get(codeKey);
    if (!object) throw new Error(`code package ${codeKey} not found`);
    // Streamed: a package from an R2 object may be 500 MiB (functions/code-from-object.ts); it may
    // unpack to its own bound (256 MiB inline, 1 GiB from an object), which the agent enforces.
    await agent.putCode(sha256, object.body, object.size, unpackLimitOfStored(object));
    this.lastCodeShipped = known;
  }

  /**
   * Exercises the whole container lifecycle against the real engine: start, reach the agent's
   * HTTP port, send SIGTERM and observe the process received it, destroy.
   */
  async selfCheck(memoryMb: number): Promise<ContainerSelfCheck> {
    const startAt = Date.now();
    const health = await this.ensureStarted({ memoryMb });
    const readyAt = Date.now();
    const agent = this.agent();

    this.container.signal(SIGTERM);
    const signalAt = Date.now();
    let sigtermObserved = false;
    while (!sigtermObserved && Date.now() - signalAt < SIGNAL_OBSERVE_TIMEOUT_MS) {
      const now = await agent.health();
      sigtermObserved = now.signalsReceived.some((entry) => entry.signal === "SIGTERM");
      if (!sigtermObserved) await new Promise((resolve) => setTimeout(resolve, SIGNAL_OBSERVE_POLL_MS));
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
}
