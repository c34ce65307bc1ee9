// Shipping a code package to the agent (PUT /code): the package's unpack limit travels with it,
// and a request that fails before its body is read ends the source stream (an R2 body).
import { describe, expect, it } from "vitest";
import { AgentClient, UNPACK_LIMIT_HEADER } from "../../worker/instances/agent-client";

const TOKEN = "t".repeat(64);

function containerWith(fetch: (url: string, init: RequestInit) => Promise<Response>) {
  return { running: true, getTcpPort: () => ({ fetch }) as unknown as Fetcher };
}

describe("shipping a code package to the agent", () => {
  it("names the package's unpack limit in a header of PUT /code", async () => {
    const seen: Request[] = [];
    const client = new AgentClient(
      containerWith(async (url, init) => {
        const request = new Request(url, init);
        await request.arrayBuffer();
        seen.push(request);
        return new Response("{}", { status: 201 });
      }),
      TOKEN,
    );
    await client.putCode("a".repeat(64), new ArrayBuffer(3), undefined, 256 * 1024 * 1024);
    expect(seen[0]?.headers.get(UNPACK_LIMIT_HEADER)).toBe(String(256 * 1024 * 1024));
    expect(seen[0]?.headers.get("authorization")).toBe(`Bearer ${TOKEN}`);
  });

  it("cancels the source stream when the request fails before reading the body", async () => {
    let cancelled = false;
    const source = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new Uint8Array(1024));
      },
      cancel() {
        cancelled = true;
      },
    });
    const client = new AgentClient(
      containerWith(() => Promise.reject(new Error("connection refused"))),
      TOKEN,
    );
    await expect(client.putCode("a".repeat(64), source, 1024 * 1024)).rejects.toThrow("connection refused");
    expect(cancelled).toBe(true);
  });
});
