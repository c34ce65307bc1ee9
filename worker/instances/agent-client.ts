/** The runtime agent's HTTP port inside every function container. */
export const AGENT_PORT = 8080;
/** How long a container may take from start() until its agent answers. */
export const AGENT_BOOT_TIMEOUT_MS = 30_000;
const AGENT_BOOT_POLL_MS = 25;

/** What the agent's `GET /health` returns. */
export interface AgentHealth {
  ok: boolean;
  bootId: string;
  pid: number;
  startedAt: number;
  uptimeMs: number;
  signalsReceived: { signal: string; at: number }[];
  busy: boolean;
  requestId: string | null;
}

/** Talks HTTP to the runtime agent of one container. */
export class AgentClient {
  constructor(private readonly container: Container) {}

  fetch(path: string, init?: RequestInit): Promise<Response> {
    return this.container.getTcpPort(AGENT_PORT).fetch(`http://agent${path}`, init);
  }

  async health(): Promise<AgentHealth> {
    const response = await this.fetch("/health");
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
        lastError = error;
        await new Promise((resolve) => setTimeout(resolve, AGENT_BOOT_POLL_MS));
      }
    }
    throw new Error(`agent did not answer within ${timeoutMs} ms: ${String(lastError)}`);
  }
}
