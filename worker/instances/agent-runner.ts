import { AgentClient, type AgentHealth, type ExecutionSpec, type StartedExecution } from "./agent-client";

/** What the instance asks of a container's agent: the AgentClient's methods, named by intent. */
export interface AgentApi {
  health(): Promise<AgentHealth>;
  waitUntilReady(timeoutMs?: number): Promise<AgentHealth>;
  hasCode(sha256: string): Promise<boolean>;
  putCode(
    sha256: string,
    bytes: ArrayBuffer | ReadableStream<Uint8Array>,
    size?: number,
    unpackLimit?: number,
  ): Promise<void>;
  startExecution(spec: ExecutionSpec): Promise<StartedExecution>;
  openStream(requestId: string, after: number, signal: AbortSignal): Promise<ReadableStream<Uint8Array>>;
  signal(requestId: string): Promise<{ delivered: boolean }>;
}

/**
 * What InstanceContainer needs of its container and the agent inside it: the container's lifecycle
 * (as Cloudflare's `Container` offers it) and a client of the agent for a boot's token.
 */
export interface AgentRunner {
  /** True while the container runs. */
  readonly running: boolean;
  /**
   * The deployment's images this container may start (name → reference; ctx.container.images of a
   * class with scheduling_policy "durable_object", empty elsewhere).
   */
  readonly images?: Record<string, string>;
  /** Starts the container (does not wait for the agent: see AgentApi.waitUntilReady). */
  start(options: ContainerStartupOptions): void;
  /** Settles when the container stops; rejects when it failed (how Cloudflare reports a refused start). */
  monitor(): Promise<unknown>;
  /** Stops the container and waits until it is gone. */
  destroy(): Promise<void>;
  /** Sends a signal to the container's init (PID 1). */
  signal(signo: number): void;
  /** A client of the container's agent, authenticated with a boot's token. */
  agent(token: string): AgentApi;
}

/** The runner over Cloudflare's container of a Durable Object: production's only runner. */
class ContainerAgentRunner implements AgentRunner {
  constructor(private readonly container: Container) {}

  get running(): boolean {
    return this.container.running;
  }

  get images(): Record<string, string> | undefined {
    return this.container.images;
  }

  start(options: ContainerStartupOptions): void {
    this.container.start(options);
  }

  monitor(): Promise<unknown> {
    return this.container.monitor();
  }

  destroy(): Promise<void> {
    return this.container.destroy();
  }

  signal(signo: number): void {
    this.container.signal(signo);
  }

  agent(token: string): AgentApi {
    return new AgentClient(this.container, token);
  }
}

/** Gives the runner of an instance, by its Durable Object id (undefined: the instance has no container). */
export type AgentRunnerFactory = (durableObjectId: string) => AgentRunner | undefined;

/** The factory test code installed (see installAgentRunnersForTests); never set in production. */
let testRunners: AgentRunnerFactory | undefined;

/**
 * Test seam: while a factory is installed, every InstanceContainer takes its runner from it instead
 * of from its Durable Object's container (the Workers test pool has no containers). Only test code
 * calls this; pass undefined to uninstall.
 */
export function installAgentRunnersForTests(factory: AgentRunnerFactory | undefined): void {
  testRunners = factory;
}

/**
 * The runner of the instance whose state is `ctx`: its container (undefined when the runtime
 * attached none), or the installed test factory's answer.
 */
export function agentRunnerOf(ctx: DurableObjectState): AgentRunner | undefined {
  if (testRunners) return testRunners(ctx.id.toString());
  const container = ctx.container;
  return container ? new ContainerAgentRunner(container) : undefined;
}
