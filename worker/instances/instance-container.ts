import { DurableObject } from "cloudflare:workers";
import { AgentClient, type AgentHealth } from "./agent-client";

/** Result of a full container lifecycle check (start, reach the port, SIGTERM, destroy). */
export interface ContainerSelfCheck {
  started: boolean;
  agentPid: number;
  startToReadyMs: number;
  sigtermObserved: boolean;
  signalToObservedMs: number;
  destroyed: boolean;
  destroyMs: number;
}

const SIGTERM = 15;
const SIGNAL_OBSERVE_TIMEOUT_MS = 5_000;

/**
 * A container-enabled Durable Object: owns one container running the runtime agent and runs one
 * event at a time in it.
 */
export class InstanceContainer extends DurableObject<Env> {
  private get container(): Container {
    const container = this.ctx.container;
    if (!container) throw new Error("no container is configured for InstanceContainer");
    return container;
  }

  /** True when this object has a container attached (the runtime supports containers). */
  hasContainerSupport(): boolean {
    return this.ctx.container !== undefined;
  }

  /** Starts the container unless it runs, and waits until the agent answers. */
  async ensureStarted(): Promise<AgentHealth> {
    if (!this.container.running) this.container.start({ enableInternet: true });
    return new AgentClient(this.container).waitUntilReady();
  }

  /** Destroys the container (its /tmp is lost). */
  async destroyContainer(): Promise<void> {
    if (this.container.running) await this.container.destroy();
  }

  /**
   * Exercises the whole container lifecycle against the real engine: start, reach the agent's
   * HTTP port, send SIGTERM and observe the process received it, destroy.
   */
  async selfCheck(): Promise<ContainerSelfCheck> {
    const agent = new AgentClient(this.container);
    const startAt = Date.now();
    const health = await this.ensureStarted();
    const readyAt = Date.now();

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
      startToReadyMs: readyAt - startAt,
      sigtermObserved,
      signalToObservedMs: observedAt - signalAt,
      destroyed: !this.container.running,
      destroyMs: destroyedAt - observedAt,
    };
  }
}
