import {
  AGENT_PORT,
  type AgentHealth,
  agentErrorSchema,
  agentHealthSchema,
  type ExecutionSpec,
  problemOf,
  signalAnswerSchema,
} from "../contract/agent-contract";
import { CODE_SHIP_TIMEOUT_MS } from "../events/event-deadlines";

export type { AgentHealth, ExecutionSpec } from "../contract/agent-contract";
export { AGENT_PORT };

/** How long a container may take from start() until its agent answers. */
export const AGENT_BOOT_TIMEOUT_MS = 30_000;
const AGENT_BOOT_POLL_MS = 25;
/** A health probe that takes longer than this counts as no answer (a tunnel to a dead port hangs). */
const HEALTH_PROBE_TIMEOUT_MS = 2_000;
/** Default limit of one request to the agent that is not a stream. */
export const AGENT_REQUEST_TIMEOUT_MS = 30_000;
/**
 * Limit of shipping one code package to the agent (5 min): the transfer of up to 500 MiB
 * (functions/code-from-object.ts) and the agent's extraction (its own limit, EXTRACTION_TIMEOUT_MS).
 * The event's start backstop allows for it (events/event-deadlines.ts startLimitOf).
 */
export { CODE_SHIP_TIMEOUT_MS };
/**
 * Header of PUT /code naming the bytes the package may unpack to (the agent applies the lower of it
 * and its own MAX_UNPACKED_BYTES: containers/runtime/agent/code-package.mjs UNPACK_LIMIT_HEADER).
 */
export const UNPACK_LIMIT_HEADER = "x-afp-max-unpacked-bytes";
/** Longest refusal text of the agent quoted in an error. */
const MAX_REFUSAL_CHARS = 1_000;

/** An execution the agent runs, with its record stream (NDJSON, from seq 1). */
export interface StartedExecution {
  /** True when this request started it; false when it already ran there (the stream is reopened). */
  fresh: boolean;
  records: ReadableStream<Uint8Array>;
}

/** The agent refused the token: the container was started by another boot of this object, or without one. */
export class AgentUnauthorizedError extends Error {
  constructor() {
    super("the agent refused this instance's token (401)");
    this.name = "AgentUnauthorizedError";
  }
}

/**
 * Talks HTTP to the runtime agent of one container, with the token of the container's boot. Its
 * methods are named by intent: no caller builds the agent's URLs or bodies.
 */
export class AgentClient {
  constructor(
    private readonly container: Pick<Container, "getTcpPort" | "running">,
    private readonly token: string,
  ) {}

  /**
   * One request to the agent. Without a signal of the caller's, it is limited to
   * AGENT_REQUEST_TIMEOUT_MS (pass a signal for streams, which last as long as the execution).
   */
  private request(path: string, init: RequestInit = {}): Promise<Response> {
    const signal = init.signal ?? AbortSignal.timeout(AGENT_REQUEST_TIMEOUT_MS);
    const headers = new Headers(init.headers);
    headers.set("authorization", `Bearer ${this.token}`);
    return this.container.getTcpPort(AGENT_PORT).fetch(`http://agent${path}`, { ...init, headers, signal });
  }

  /** The agent's health answer; a 401 throws AgentUnauthorizedError, any other non-200 an Error. */
  async health(): Promise<AgentHealth> {
    const response = await this.request("/health", { signal: AbortSignal.timeout(HEALTH_PROBE_TIMEOUT_MS) });
    if (response.status === 401) {
      await response.body?.cancel();
      throw new AgentUnauthorizedError();
    }
    if (!response.ok) throw new Error(`agent health answered ${response.status}`);
    // An answer that is not the contract's health is no answer (as a non-200 is).
    const parsed = agentHealthSchema.safeParse(await response.json());
    if (!parsed.success) throw new Error(`agent health answer is not valid: ${problemOf(parsed.error)}`);
    return parsed.data;
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

  /** True when the agent has the code package of this hash cached (it answered 200). */
  async hasCode(sha256: string): Promise<boolean> {
    const response = await this.request(`/code/${sha256}`);
    await response.body?.cancel();
    return response.status === 200;
  }

  /**
   * Hands the agent a code package (a zip), bytes or a stream of `size` bytes (sent with that
   * content-length, never buffered here), which may unpack to at most unpackLimit bytes; throws
   * with the agent's reason when it refuses it (a 507: no disk space for it in the container).
   * A request that fails before the body is read cancels the source stream (an R2 body).
   */
  async putCode(
    sha256: string,
    bytes: ArrayBuffer | ReadableStream<Uint8Array>,
    size?: number,
    unpackLimit?: number,
  ): Promise<void> {
    let body: ArrayBuffer | ReadableStream<Uint8Array> = bytes;
    let piped: Promise<void> | undefined;
    if (bytes instanceof ReadableStream) {
      if (size === undefined) {
        await bytes.cancel().catch(() => undefined);
        throw new Error("a streamed code package needs its size");
      }
      const sized = new FixedLengthStream(size);
      // A source that fails midway leaves the body short: the request fails, and says so.
      piped = bytes.pipeTo(sized.writable).catch(() => undefined);
      body = sized.readable;
    }
    let response: Response;
    try {
      response = await this.request(`/code/${sha256}`, {
        method: "PUT",
        body,
        signal: AbortSignal.timeout(CODE_SHIP_TIMEOUT_MS),
        ...(unpackLimit !== undefined ? { headers: { [UNPACK_LIMIT_HEADER]: String(unpackLimit) } } : {}),
      });
    } catch (error) {
      // The body may never have been read: end the source's stream rather than leave it open.
      if (body instanceof ReadableStream) await body.cancel().catch(() => undefined);
      await piped;
      throw error;
    }
    if (!response.ok) throw new Error(`the code package was refused: ${await refusalOf(response)}`);
    await response.body?.cancel();
  }

  /**
   * Asks the agent to run an execution and answers its record stream: the new execution's (201),
   * or, when the agent already runs this RequestId (200), the stream read anew from the start. Any
   * other answer throws with the agent's reason. No request timeout: the deadline rules.
   */
  async startExecution(spec: ExecutionSpec): Promise<StartedExecution> {
    const response = await this.request("/executions?stream=1", {
      signal: new AbortController().signal,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(spec),
    });
    if (response.status !== 201 && response.status !== 200) {
      throw new Error(`the agent refused the execution: ${await refusalOf(response)}`);
    }
    if (response.status === 201) {
      if (!response.body) throw new Error("the agent's execution stream has no body");
      return { fresh: true, records: response.body };
    }
    await response.body?.cancel();
    return { fresh: false, records: await this.openStream(spec.requestId, 0, new AbortController().signal) };
  }

  /** Opens the record stream of an execution, from the records after seq `after`, until signal aborts. */
  async openStream(requestId: string, after: number, signal: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const response = await this.request(`/executions/${encodeURIComponent(requestId)}/stream?after=${after}`, {
      signal,
    });
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`agent stream answered ${response.status}`);
    }
    if (!response.body) throw new Error("the agent's execution stream has no body");
    return response.body;
  }

  /** Forwards SIGTERM to the handler process of requestId; answers whether the agent delivered it. */
  async signal(requestId: string): Promise<{ delivered: boolean }> {
    const response = await this.request(`/executions/${encodeURIComponent(requestId)}/signal`, { method: "POST" });
    if (!response.ok) {
      await response.body?.cancel();
      return { delivered: false };
    }
    const parsed = signalAnswerSchema.safeParse(await response.json());
    return { delivered: parsed.success && parsed.data.delivered };
  }
}

/** The agent's reason for refusing a request (its JSON `error`, else the body), bounded. */
async function refusalOf(response: Response): Promise<string> {
  const text = (await response.text()).slice(0, MAX_REFUSAL_CHARS);
  try {
    const body = agentErrorSchema.safeParse(JSON.parse(text));
    if (body.success) return `${body.data.error} (${response.status})`;
  } catch {
    // not JSON: quote the text
  }
  return `${response.status} ${text}`;
}
