import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentRecord, executionSpec, putFiles, type RunningAgent, readRecords, startAgent } from "./agent-harness";

/** A Node handler that reports who it runs as, or spawns children that outlive it in various ways. */
const HANDLER = `
const { spawn } = require("child_process");
const { readFileSync } = require("fs");
const stat = () => readFileSync("/proc/self/stat", "utf8").split(") ")[1].split(" ");
exports.main_handler = async (event) => {
  if (event.whoami) {
    return { uid: process.getuid(), gid: process.getgid(), groups: process.getgroups(), pid: process.pid,
      pgid: Number(stat()[2]), sid: Number(stat()[3]), home: process.env.HOME };
  }
  if (event.child) {
    // Listening before the child exists: the child's "ready" line can never come before the listener.
    const term = event.listen
      ? new Promise((resolve) => process.once("SIGTERM", () => { console.log("handler got TERM"); resolve(); }))
      : undefined;
    const child = spawn("sh", ["-c", "trap 'echo child got TERM; exit 0' TERM; echo child ready $$; while :; do sleep 0.05; done"],
      { stdio: ["ignore", "inherit", "inherit"], detached: Boolean(event.escape) });
    if (event.exitAfterMs) setTimeout(() => process.exit(3), event.exitAfterMs);
    await new Promise((resolve) => child.once("exit", resolve));
    // The child's exit and the handler's own SIGTERM come in either order under load: wait for both.
    if (term) await term;
    return { childExited: true };
  }
  return { ok: true };
};
`;

/** True while a process exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ")[0];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

async function start(agent: RunningAgent, spec: Record<string, unknown>): Promise<void> {
  const response = await agent.request("/executions", { method: "POST", body: JSON.stringify(spec) });
  expect(response.status).toBe(201);
}

/** Reads an execution's stream until a line matches; returns that line. */
async function waitForLine(agent: RunningAgent, requestId: string, pattern: RegExp): Promise<string> {
  const controller = new AbortController();
  const response = await agent.request(`/executions/${requestId}/stream?after=0`, { signal: controller.signal });
  const decoder = new TextDecoder();
  let pending = "";
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      pending += decoder.decode(chunk, { stream: true });
      for (const text of pending.split("\n")) {
        if (!text.trim()) continue;
        try {
          const record = JSON.parse(text) as AgentRecord;
          if (record.type === "log" && pattern.test(record.line ?? "")) return record.line ?? "";
        } catch {
          // a partial line: read on
        }
      }
    }
  } finally {
    controller.abort();
  }
  throw new Error(`no line matched ${pattern}`);
}

async function allRecords(agent: RunningAgent, requestId: string): Promise<AgentRecord[]> {
  return readRecords(await agent.request(`/executions/${requestId}/stream?after=0`));
}

describe("handler processes", () => {
  let agent: RunningAgent;
  let sha: string;
  beforeAll(async () => {
    agent = await startAgent();
    sha = await putFiles(agent, { "index.js": HANDLER });
  });
  afterAll(async () => {
    await agent.stop();
  });

  it("run as an unprivileged per-boot user, with no groups, in their own session and group", async () => {
    const spec = executionSpec(sha, { event: { whoami: true } });
    const response = await agent.request("/executions?stream=1", { method: "POST", body: JSON.stringify(spec) });
    const end = (await readRecords(response)).at(-1);
    const result = end?.outcome?.result as Record<string, unknown>;
    expect(result.uid).toBeGreaterThanOrEqual(100_000);
    expect(result.uid).toBeLessThan(2_000_000_000);
    expect(result.gid).toBe(result.uid);
    expect(result.groups).toEqual([result.gid]);
    expect(result.pgid).toBe(result.pid);
    expect(result.sid).toBe(result.pid);
    expect(result.home).toBe("/tmp");
    const health = (await (await agent.request("/health")).json()) as { handlerUid: number };
    expect(health.handlerUid).toBe(result.uid);
  });

  it("send a graceful terminate's SIGTERM to the handler's whole group: its subprocess gets it too", async () => {
    const spec = executionSpec(sha, { event: { child: true, listen: true } });
    await start(agent, spec);
    await waitForLine(agent, String(spec.requestId), /^child ready/);
    const signal = await agent.request(`/executions/${spec.requestId}/signal`, { method: "POST" });
    expect(await signal.json()).toEqual({ delivered: true });
    const records = await allRecords(agent, String(spec.requestId));
    const lines = records.filter((record) => record.type === "log").map((record) => record.line);
    expect(lines).toContain("child got TERM");
    expect(lines).toContain("handler got TERM");
    expect(lines).toContain("[PLATFORM] Signal received successfully");
    expect(records.at(-1)?.outcome).toMatchObject({ kind: "returned", result: { childExited: true } });
  });

  it("kill the handler's subprocesses with it on a timeout", async () => {
    const spec = executionSpec(sha, { event: { child: true }, timeoutMs: 1_500 });
    await start(agent, spec);
    const ready = await waitForLine(agent, String(spec.requestId), /^child ready/);
    const childPid = Number(ready.split(" ").at(-1));
    expect(alive(childPid)).toBe(true);
    const records = await allRecords(agent, String(spec.requestId));
    expect(records.at(-1)?.outcome).toMatchObject({ kind: "timeout" });
    await expect.poll(() => alive(childPid)).toBe(false);
  });

  it("kill what remains of the handler's group when the handler process exits", async () => {
    const spec = executionSpec(sha, { event: { child: true, exitAfterMs: 300 } });
    await start(agent, spec);
    const ready = await waitForLine(agent, String(spec.requestId), /^child ready/);
    const childPid = Number(ready.split(" ").at(-1));
    const records = await allRecords(agent, String(spec.requestId));
    expect(records.at(-1)?.outcome).toMatchObject({ kind: "exited", code: 3 });
    await expect.poll(() => alive(childPid)).toBe(false);
  });

  it("leave no process of the handler user behind when a new handler process starts, even one that left the group", async () => {
    const spec = executionSpec(sha, { event: { child: true, escape: true, exitAfterMs: 300 } });
    await start(agent, spec);
    const ready = await waitForLine(agent, String(spec.requestId), /^child ready/);
    const escapedPid = Number(ready.split(" ").at(-1));
    await allRecords(agent, String(spec.requestId));
    // It left the group with setsid, so the group kill missed it.
    expect(alive(escapedPid)).toBe(true);
    const next = executionSpec(sha, { event: { whoami: true } });
    await start(agent, next);
    await allRecords(agent, String(next.requestId));
    expect(alive(escapedPid)).toBe(false);
  });
});
