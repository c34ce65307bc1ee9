// A small client of the platform's REST API for end-to-end tests and benchmarks.
import { zipBase64 } from "./zip";

/** The public shape of an event, as GET /v1/events/:id returns it. */
export interface EventView {
  requestId: string;
  namespace: string;
  functionName: string;
  qualifier: string;
  /** The alias the invocation named ("$DEFAULT" when it named none), null when it named a version. */
  alias: string | null;
  invokeType: string;
  status: "RUNNING" | "FINISHED" | "FAILED" | "ABORTED";
  statusCode: number | null;
  phase: string;
  invokedAt: string;
  startedAt: string | null;
  endedAt: string | null;
  durationMs: number | null;
  result: unknown;
  errorMessage: string | null;
  instanceId: string | null;
  containerId: string | null;
  coldStart: boolean | null;
  terminateRequestedAt: string | null;
}

/** Credentials the end-to-end platform is started with. */
export const TEST_CREDENTIALS = { secretId: "AKIDe2etests", secretKey: "e2e-secret-key-not-for-production" };

/** Headers carrying the administrator pair (TEST_CREDENTIALS): what /_diagnostics routes require. */
export const ADMIN_HEADERS = {
  authorization: `Bearer ${TEST_CREDENTIALS.secretId}:${TEST_CREDENTIALS.secretKey}`,
} as const;

/** Talks to one running platform with one credential pair. */
export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly credentials = TEST_CREDENTIALS,
  ) {}

  get authorization(): string {
    return `Bearer ${this.credentials.secretId}:${this.credentials.secretKey}`;
  }

  request(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (!headers.has("authorization")) headers.set("authorization", this.authorization);
    if (init.body !== undefined && !headers.has("content-type")) headers.set("content-type", "application/json");
    return fetch(`${this.baseUrl}${path}`, { ...init, headers });
  }

  async json<T>(path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
    const response = await this.request(path, init);
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
  }

  createFunction(namespace: string, definition: Record<string, unknown> & { files?: Record<string, string> }) {
    const { files, ...rest } = definition;
    const body = files ? { ...rest, code: { zipFile: zipBase64(files) } } : rest;
    return this.json<Record<string, unknown>>(`/v1/namespaces/${namespace}/functions`, {
      method: "POST",
      body: JSON.stringify(body),
    });
  }

  /**
   * Creates a function under a fresh name (`prefix-xxxxxxxx`) and returns the name; any answer
   * but 201 throws with the body, which fails the test or benchmark that asked.
   */
  async createUniqueFunction(
    namespace: string,
    prefix: string,
    definition: Record<string, unknown> & { files: Record<string, string> },
  ): Promise<string> {
    const name = uniqueName(prefix);
    const created = await this.createFunction(namespace, { name, ...definition });
    if (created.status !== 201)
      throw new Error(`create ${name} answered ${created.status}: ${JSON.stringify(created.body)}`);
    return name;
  }

  async invoke(namespace: string, name: string, event: unknown = {}): Promise<string> {
    const { status, body } = await this.json<{ requestId: string }>(
      `/v1/namespaces/${namespace}/functions/${name}/invocations`,
      { method: "POST", body: JSON.stringify(event) },
    );
    if (status !== 202) throw new Error(`invoke answered ${status}: ${JSON.stringify(body)}`);
    return body.requestId;
  }

  async event(requestId: string): Promise<EventView> {
    const { status, body } = await this.json<EventView>(`/v1/events/${requestId}`);
    if (status !== 200) throw new Error(`event ${requestId} answered ${status}: ${JSON.stringify(body)}`);
    return body;
  }

  /** Polls an event until the predicate holds (default: it has ended). */
  async waitForEvent(
    requestId: string,
    until: (event: EventView) => boolean = (event) => event.status !== "RUNNING",
    timeoutMs = 60_000,
  ): Promise<EventView> {
    const deadline = Date.now() + timeoutMs;
    let last: EventView | undefined;
    while (Date.now() < deadline) {
      last = await this.event(requestId);
      if (until(last)) return last;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`event ${requestId} did not reach the expected state: ${JSON.stringify(last)}`);
  }

  /**
   * Polls an event's log until a line equal to `line` is stored; answers the lines. On timeout the
   * error carries what would explain it: the event (status, phase, timeline) and its last lines,
   * or the last error reading them.
   */
  async waitForLogLine(requestId: string, line: string, timeoutMs = 60_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    let lines: string[] = [];
    let readError: unknown;
    while (Date.now() < deadline) {
      try {
        lines = (await this.logs(requestId)).map((record) => record.line);
        readError = undefined;
        if (lines.includes(line)) return lines;
      } catch (error) {
        readError = error;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const event = await this.event(requestId).catch((error: unknown) => String(error));
    throw new Error(
      `event ${requestId} logged no line "${line}" within ${timeoutMs} ms; event: ${JSON.stringify(event)}; ` +
        `last lines: ${JSON.stringify(lines.slice(-20))}${readError !== undefined ? `; last read failed: ${String(readError)}` : ""}`,
    );
  }

  async logs(requestId: string): Promise<{ seq: number; stream: string; line: string }[]> {
    return (await this.logPage(requestId, 0)).records;
  }

  /**
   * One page of an event's log (seq > after), as a well-behaved client reads it: a 429 from the
   * per-caller read limit is waited out for its Retry-After, then the read is sent again.
   */
  async logPage(
    requestId: string,
    after: number,
  ): Promise<{ records: { seq: number; stream: string; line: string }[]; lastSeq: number }> {
    for (let attempt = 0; ; attempt++) {
      const response = await this.request(`/v1/events/${requestId}/logs?after=${after}`);
      if (response.status === 429 && attempt < MAX_RATE_LIMITED_RETRIES) {
        const waitSeconds = Number(response.headers.get("retry-after") ?? "1");
        await response.body?.cancel();
        await new Promise((resolve) => setTimeout(resolve, Math.max(1, waitSeconds) * 1000));
        continue;
      }
      const text = await response.text();
      if (response.status !== 200) throw new Error(`logs of ${requestId} answered ${response.status}: ${text}`);
      return JSON.parse(text) as { records: { seq: number; stream: string; line: string }[]; lastSeq: number };
    }
  }
}

/** How many 429 answers one read waits out before it fails. */
const MAX_RATE_LIMITED_RETRIES = 10;

/** A unique function name for one test. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 10)}`;
}

/** One Server-Sent Event of a log stream. */
export interface LogStreamEvent {
  id?: number;
  event: string;
  data: unknown;
  receivedAt: number;
}

/**
 * Follows an event's log over Server-Sent Events until the `end` event, or until `stopAfter` log
 * lines when given (the connection is then dropped, as a client that goes away would). Timeline
 * records (`event: timeline`) go to `timeline`, not into `logs` nor the count.
 */
export async function followLogs(
  api: ApiClient,
  requestId: string,
  options: {
    lastEventId?: number;
    stopAfter?: number;
    onEvent?: (event: LogStreamEvent) => void;
    /** False: log events go to onEvent only, not into the answer (a follower of millions of lines). */
    keep?: boolean;
  } = {},
): Promise<{ logs: LogStreamEvent[]; end: LogStreamEvent | undefined; timeline: LogStreamEvent[] }> {
  const controller = new AbortController();
  const headers: Record<string, string> = { accept: "text/event-stream" };
  if (options.lastEventId !== undefined) headers["last-event-id"] = String(options.lastEventId);
  const response = await api.request(`/v1/events/${requestId}/logs/stream`, { headers, signal: controller.signal });
  if (response.status !== 200 || !response.body) throw new Error(`log stream answered ${response.status}`);
  const logs: LogStreamEvent[] = [];
  const timeline: LogStreamEvent[] = [];
  let count = 0;
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let boundary = buffer.indexOf("\n\n");
      while (boundary >= 0) {
        const block = buffer.slice(0, boundary);
        buffer = buffer.slice(boundary + 2);
        boundary = buffer.indexOf("\n\n");
        const fields: Record<string, string> = {};
        for (const line of block.split("\n")) {
          if (line.startsWith(":") || !line.includes(":")) continue;
          const colon = line.indexOf(":");
          fields[line.slice(0, colon)] = line.slice(colon + 1).replace(/^ /, "");
        }
        if (!fields.event) continue;
        const event: LogStreamEvent = {
          event: fields.event,
          data: JSON.parse(fields.data ?? "null"),
          receivedAt: Date.now(),
          ...(fields.id !== undefined ? { id: Number(fields.id) } : {}),
        };
        options.onEvent?.(event);
        if (event.event === "end") return { logs, end: event, timeline };
        if (event.event === "timeline") {
          timeline.push(event);
          continue;
        }
        if (options.keep !== false) logs.push(event);
        count += 1;
        if (options.stopAfter !== undefined && count >= options.stopAfter) {
          controller.abort();
          return { logs, end: undefined, timeline };
        }
      }
    }
  } catch (error) {
    if (!controller.signal.aborted) throw error;
  }
  return { logs, end: undefined, timeline };
}
