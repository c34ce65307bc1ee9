/** The runtime agent's HTTP port inside every function container. */
export const AGENT_PORT = 8080;
/** How long a container may take from start() until its agent answers. */
export const AGENT_BOOT_TIMEOUT_MS = 30_000;
const AGENT_BOOT_POLL_MS = 25;
/** A health probe that takes longer than this counts as no answer (a tunnel to a dead port hangs). */
const HEALTH_PROBE_TIMEOUT_MS = 2_000;
/** Default limit of one request to the agent that is not a stream. */
export const AGENT_REQUEST_TIMEOUT_MS = 30_000;

/** What the agent's `GET /health` returns. */
export interface AgentHealth {
  ok: boolean;
  bootId: string;
  pid: number;
  /** The container's init (PID 1) runs the agent, so this is 1. */
  parentPid: number;
  startedAt: number;
  uptimeMs: number;
  signalsReceived: { signal: string; at: number }[];
  busy: boolean;
  requestId: string | null;
  /** The platform sent the container SIGTERM: it is going away and takes no new execution. */
  stopping?: boolean;
}

/** The agent refused the token: the container was started by another boot of this object, or without one. */
export class AgentUnauthorizedError extends Error {
  constructor() {
    super("the agent refused this instance's token (401)");
    this.name = "AgentUnauthorizedError";
  }
}

/** Talks HTTP to the runtime agent of one container, with the token of the container's boot. */
export class AgentClient {
  constructor(
    private readonly container: Container,
    private readonly token: string,
  ) {}

  /**
   * One request to the agent. Without a signal of the caller's, it is limited to
   * AGENT_REQUEST_TIMEOUT_MS (pass a signal for streams, which last as long as the execution).
   */
  fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const signal = init.signal ?? AbortSignal.timeout(AGENT_REQUEST_TIMEOUT_MS);
    const headers = new Headers(init.headers);
    headers.set("authorization", `Bearer ${this.token}`);
    return this.container.getTcpPort(AGENT_PORT).fetch(`http://agent${path}`, { ...init, headers, signal });
  }

  async health(): Promise<AgentHealth> {
    const response = await this.fetch("/health", { signal: AbortSignal.timeout(HEALTH_PROBE_TIMEOUT_MS) });
    if (response.status === 401) {
      await response.body?.cancel();
      throw new AgentUnauthorizedError();
    }
    if (!response.ok) throw new Error(`agent health answered ${response.status}`);
    return (await response.json()) as AgentHealth;
  }

  /** Polls /health until the agent answers (the container is booting) or the timeout passes. */
  async waitUntilReady(timeoutMs = AGENT_BOOT_TIMEOUT_MS): Promise<AgentHealth> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    while (Date.now() < deadline) {
      if (!this.container.running) throw new Error("container stopped while booting");
      try {
        return await this.health();
      } catch (error) {
        // A wrong token does not get better with time: the caller starts a fresh container.
        if (error instanceof AgentUnauthorizedError) throw error;
        lastError = error;
        await new Promise((resolve) => setTimeout(resolve, AGENT_BOOT_POLL_MS));
      }
    }
    throw new Error(`agent did not answer within ${timeoutMs} ms: ${String(lastError)}`);
  }
}
