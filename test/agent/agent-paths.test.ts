import { readdirSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { executionSpec, putFiles, type RunningAgent, startAgent } from "./agent-harness";

async function post(agent: RunningAgent, spec: unknown): Promise<{ status: number; error: string }> {
  const response = await agent.request("/executions", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(spec),
  });
  const body = (await response.json()) as { error?: string };
  return { status: response.status, error: body.error ?? "" };
}

describe("path-like values of a request", () => {
  let agent: RunningAgent;
  let sha: string;
  beforeAll(async () => {
    agent = await startAgent();
    sha = await putFiles(agent, { "index.js": "exports.main_handler = async () => 1;" });
  });
  afterAll(async () => {
    await agent.stop();
  });

  it("refuses a codeSha256 that is not 64 lower-case hex digits with 400", async () => {
    for (const codeSha256 of ["..", "../../etc", `${sha}/../..`, sha.toUpperCase(), `${sha}0`, "", 42, null]) {
      const answer = await post(agent, executionSpec(sha, { codeSha256 }));
      expect(answer.status, String(codeSha256)).toBe(400);
      expect(answer.error).toMatch(/codeSha256/);
    }
  });

  it("refuses a handler with a .. segment, an absolute path or a NUL with 400", async () => {
    for (const handler of [
      "a/../../x.main",
      "../index.main_handler",
      "/etc/passwd.main",
      "index\u0000.main",
      "./index.main",
    ]) {
      const answer = await post(agent, executionSpec(sha, { handler }));
      expect(answer.status, handler).toBe(400);
      expect(answer.error).toMatch(/handler/);
    }
  });

  it("refuses a requestId that is not letters, digits, - and _ with 400", async () => {
    for (const requestId of ["../x", "a/b", "..", "", "x".repeat(129), 7]) {
      const answer = await post(agent, executionSpec(sha, { requestId }));
      expect(answer.status, String(requestId)).toBe(400);
      expect(answer.error).toMatch(/requestId/);
    }
    for (const path of ["/executions/%2e%2e%2fx", "/executions/%E0%A4%A/stream", "/executions/a%2Fb/signal"]) {
      const response = await agent.request(path, { method: path.endsWith("signal") ? "POST" : "GET" });
      expect(response.status, path).toBe(400);
    }
  });

  it("refuses an unknown runtime with 400 instead of running it as Python", async () => {
    for (const runtime of ["Ruby3", "Python2.7", "constructor", "__proto__", "toString", undefined]) {
      const answer = await post(agent, executionSpec(sha, { runtime }));
      expect(answer.status, String(runtime)).toBe(400);
      expect(answer.error).toMatch(/unknown runtime/);
    }
  });

  it("refuses a body that is not JSON with 400", async () => {
    const response = await agent.request("/executions", { method: "POST", body: "{not json" });
    expect(response.status).toBe(400);
  });

  it("refuses a code route whose hash is not 64 lower-case hex digits with 400", async () => {
    for (const hash of ["x..", "A".repeat(64), `${"a".repeat(63)}g`]) {
      expect((await agent.request(`/code/${hash}`)).status, hash).toBe(400);
      expect((await agent.request(`/code/${hash}`, { method: "PUT", body: "x" })).status, hash).toBe(400);
    }
  });

  it("wrote nothing outside the code root, and only the one package inside it", () => {
    expect(readdirSync(agent.sandbox)).toEqual(["code"]);
    expect(readdirSync(agent.codeRoot)).toEqual([sha]);
  });
});
