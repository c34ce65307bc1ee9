// The instance's client of the runtime agent, against a scripted agent: what it sends (paths,
// token, body) and how it reads the agent's answers (health by the contract's schema, the 201/200
// start of an execution, refusals, the signal's answer).
import { describe, expect, it } from "vitest";
import type { AgentHealth, ExecutionSpec } from "../../worker/contract/agent-contract";
import { AGENT_PORT, AgentClient, AgentUnauthorizedError } from "../../worker/instances/agent-client";

const TOKEN = "t".repeat(64);

/** A container whose agent answers every request with `answer`, recording what it was sent. */
function scriptedContainer(answer: (request: Request) => Response | Promise<Response>) {
  const requests: Request[] = [];
  const ports: number[] = [];
  const container = {
    running: true,
    getTcpPort: (port: number) => {
      ports.push(port);
      return {
        fetch: async (url: string, init: RequestInit) => {
          const request = new Request(url, init);
          requests.push(request.clone());
          return answer(request);
        },
      } as unknown as Fetcher;
    },
  };
  return { client: new AgentClient(container, TOKEN), requests, ports };
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

const HEALTH: AgentHealth = {
  ok: true,
  bootId: "boot-1",
  pid: 7,
  parentPid: 1,
  startedAt: 1,
  uptimeMs: 2,
  signalsReceived: [],
  busy: false,
  requestId: null,
};

const SPEC: ExecutionSpec = {
  requestId: "0b5e6c1e-4a9e-4a39-9d0c-2f0f4f1b9d11",
  runtime: "Nodejs22",
  handler: "index.main_handler",
  codeSha256: "a".repeat(64),
  event: { hello: "world" },
  environment: {},
  memoryLimitMb: 128,
  timeoutMs: 61_000,
  context: {
    request_id: "0b5e6c1e-4a9e-4a39-9d0c-2f0f4f1b9d11",
    function_name: "fn",
    namespace: "default",
    function_version: "$LATEST",
    memory_limit_in_mb: 128,
    time_limit_in_ms: 60_000,
  },
};

describe("AgentClient", () => {
  it("asks the agent's port for its health with the boot's token and returns the contract's answer", async () => {
    const { client, requests, ports } = scriptedContainer(() => json(200, HEALTH));
    expect(await client.health()).toEqual(HEALTH);
    expect(ports).toEqual([AGENT_PORT]);
    expect(new URL(requests[0]?.url ?? "").pathname).toBe("/health");
    expect(requests[0]?.headers.get("authorization")).toBe(`Bearer ${TOKEN}`);
  });

  it("counts a health answer outside the contract as an error, as a non-200 answer", async () => {
    const invalid = scriptedContainer(() => json(200, { ...HEALTH, bootId: 42 }));
    await expect(invalid.client.health()).rejects.toThrow(/agent health answer is not valid: bootId/);
    const refused = scriptedContainer(() => json(503, { error: "not yet" }));
    await expect(refused.client.health()).rejects.toThrow(/agent health answered 503/);
    // Waiting for the agent keeps polling past such answers, and gives up at its timeout.
    await expect(invalid.client.waitUntilReady(100)).rejects.toThrow(/agent did not answer within 100 ms/);
  });

  it("stops waiting for an agent that refuses the token", async () => {
    const { client, requests } = scriptedContainer(() => json(401, { error: "unauthorized" }));
    await expect(client.waitUntilReady(5_000)).rejects.toBeInstanceOf(AgentUnauthorizedError);
    expect(requests).toHaveLength(1);
  });

  it("posts the execution spec and answers the new execution's record stream (201)", async () => {
    const { client, requests } = scriptedContainer(
      () => new Response('{"type":"started","seq":1,"ts":1}\n', { status: 201 }),
    );
    const started = await client.startExecution(SPEC);
    expect(started.fresh).toBe(true);
    expect(await new Response(started.records).text()).toBe('{"type":"started","seq":1,"ts":1}\n');
    const request = requests[0];
    expect(request?.method).toBe("POST");
    expect(request ? new URL(request.url).pathname + new URL(request.url).search : "").toBe("/executions?stream=1");
    expect(await request?.json()).toEqual(SPEC);
  });

  it("reads an execution already running there from its first record (200)", async () => {
    const { client, requests } = scriptedContainer((request) =>
      request.method === "POST" ? json(200, { requestId: SPEC.requestId, started: false }) : new Response("records\n"),
    );
    const started = await client.startExecution(SPEC);
    expect(started.fresh).toBe(false);
    expect(await new Response(started.records).text()).toBe("records\n");
    const reopened = new URL(requests[1]?.url ?? "");
    expect(reopened.pathname + reopened.search).toBe(`/executions/${SPEC.requestId}/stream?after=0`);
  });

  it("throws the agent's reason when it refuses an execution or a code package", async () => {
    const busy = scriptedContainer(() => json(409, { error: "busy", requestId: "other" }));
    await expect(busy.client.startExecution(SPEC)).rejects.toThrow("the agent refused the execution: busy (409)");
    const full = scriptedContainer(() => new Response("disk full", { status: 507 }));
    await expect(full.client.putCode("a".repeat(64), new ArrayBuffer(1))).rejects.toThrow(
      "the code package was refused: 507 disk full",
    );
  });

  it("answers whether the agent delivered a signal, and false for a refusal or an answer outside the contract", async () => {
    const delivered = scriptedContainer(() => json(200, { delivered: true }));
    expect(await delivered.client.signal(SPEC.requestId)).toEqual({ delivered: true });
    const path = new URL(delivered.requests[0]?.url ?? "").pathname;
    expect([delivered.requests[0]?.method, path]).toEqual(["POST", `/executions/${SPEC.requestId}/signal`]);
    const unknown = scriptedContainer(() => json(404, { error: "unknown execution" }));
    expect(await unknown.client.signal(SPEC.requestId)).toEqual({ delivered: false });
    const malformed = scriptedContainer(() => json(200, { delivered: "yes" }));
    expect(await malformed.client.signal(SPEC.requestId)).toEqual({ delivered: false });
  });
});
