// A small client of the platform's REST API for end-to-end tests and benchmarks.
import { zipBase64 } from "./zip";

/** The public shape of an event, as GET /v1/events/:id returns it. */
export interface EventView {
  requestId: string;
  namespace: string;
  functionName: string;
  qualifier: string;
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

  async logs(requestId: string): Promise<{ seq: number; stream: string; line: string }[]> {
    const { body } = await this.json<{ records: { seq: number; stream: string; line: string }[] }>(
      `/v1/events/${requestId}/logs`,
    );
    return body.records;
  }
}

/** A unique function name for one test. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 10)}`;
}
