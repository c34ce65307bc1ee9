import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { executionSpec, putFiles, type RunningAgent, runExecution, startAgent } from "./agent-harness";

const SHA = "a".repeat(64);
/** Every route of the agent, with a body where it takes one. */
const ROUTES: { method: string; path: string; body?: string }[] = [
  { method: "GET", path: "/health" },
  { method: "GET", path: `/code/${SHA}` },
  { method: "PUT", path: `/code/${SHA}`, body: "zip" },
  { method: "POST", path: "/executions", body: "{}" },
  { method: "POST", path: "/executions?stream=1", body: "{}" },
  { method: "GET", path: "/executions/some-request" },
  { method: "GET", path: "/executions/some-request/stream?after=0" },
  { method: "POST", path: "/executions/some-request/signal" },
  { method: "GET", path: "/no-such-route" },
];

describe("agent token", () => {
  let agent: RunningAgent;
  beforeAll(async () => {
    agent = await startAgent();
  });
  afterAll(async () => {
    await agent.stop();
  });

  it("answers every route 401 without a token, with a wrong one, or with another scheme", async () => {
    const wrong = [undefined, "Bearer ", `Bearer ${"0".repeat(64)}`, `Bearer ${agent.token}x`, `Basic ${agent.token}`];
    for (const route of ROUTES) {
      for (const authorization of wrong) {
        const response = await fetch(`${agent.url}${route.path}`, {
          method: route.method,
          ...(route.body !== undefined ? { body: route.body } : {}),
          headers: authorization === undefined ? {} : { authorization },
        });
        expect(response.status, `${route.method} ${route.path} with ${authorization}`).toBe(401);
        expect(await response.json()).toEqual({ error: "unauthorized" });
      }
    }
  });

  it("answers the right token", async () => {
    const response = await agent.request("/health");
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ ok: true, busy: false });
  });

  it("never hands the token to a handler process", async () => {
    const sha = await putFiles(agent, {
      "index.js": `exports.main_handler = async () => ({ env: process.env, own: require("fs").readFileSync("/proc/self/environ", "utf8") });`,
    });
    const { end } = await runExecution(agent, executionSpec(sha));
    expect(end.outcome?.kind).toBe("returned");
    const result = JSON.stringify(end.outcome?.result);
    expect(result).not.toContain(agent.token);
    expect(result).not.toContain("AFP_AGENT_TOKEN");
  });
});

describe("agent started without a token", () => {
  for (const token of [null, "", "short-token"]) {
    it(`refuses every route, even with a matching header (token ${JSON.stringify(token)})`, async () => {
      const agent = await startAgent({ token });
      try {
        for (const route of ROUTES) {
          const response = await fetch(`${agent.url}${route.path}`, {
            method: route.method,
            ...(route.body !== undefined ? { body: route.body } : {}),
            headers: { authorization: `Bearer ${token ?? ""}` },
          });
          expect(response.status, `${route.method} ${route.path}`).toBe(401);
        }
      } finally {
        await agent.stop();
      }
    });
  }
});
