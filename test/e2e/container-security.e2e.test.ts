import { beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient, type EventView } from "../helpers/api-client";

const api = new ApiClient(inject("baseUrl"));
const NAMESPACE = "default";

/** A Node.js handler that probes its own container from the inside, driven by its event. */
const PROBE_HANDLER = `
const { spawn } = require("child_process");
const { readdirSync, readFileSync } = require("fs");

/** Status and body of a request to this container's agent, with the headers given. */
async function callAgent(path, init) {
  const response = await fetch("http://127.0.0.1:8080" + path, init);
  return { status: response.status, body: await response.text() };
}

/** [pid, state] of every process of the container in state Z. */
function zombies() {
  const found = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\\d+$/.test(entry)) continue;
    try {
      const state = readFileSync("/proc/" + entry + "/stat", "utf8").split(") ")[1].split(" ")[0];
      if (state === "Z") found.push([Number(entry), state]);
    } catch {}
  }
  return found;
}

/** Pids whose environment this process could read, among those not its own user's. */
function readableForeignEnvironments() {
  const readable = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\\d+$/.test(entry)) continue;
    try {
      const status = readFileSync("/proc/" + entry + "/status", "utf8");
      const uid = Number(/^Uid:\\s+(\\d+)/m.exec(status)[1]);
      if (uid === process.getuid()) continue;
      readFileSync("/proc/" + entry + "/environ");
      readable.push(Number(entry));
    } catch {}
  }
  return readable;
}

exports.main_handler = async (event) => {
  if (event.probeAgent) {
    return {
      health: await callAgent("/health"),
      healthWrongToken: await callAgent("/health", { headers: { authorization: "Bearer " + "0".repeat(64) } }),
      executions: await callAgent("/executions", { method: "POST", body: "{}" }),
      signal: await callAgent("/executions/x/signal", { method: "POST" }),
    };
  }
  if (event.whoami) {
    let pid1Environ;
    try {
      readFileSync("/proc/1/environ");
      pid1Environ = "readable";
    } catch (error) {
      pid1Environ = error.code;
    }
    return { uid: process.getuid(), gid: process.getgid(), pid1Environ, foreign: readableForeignEnvironments() };
  }
  if (event.child) {
    const child = spawn("sh", ["-c", "trap 'echo child got TERM; exit 0' TERM; echo child ready; while :; do sleep 0.05; done"],
      { stdio: ["ignore", "inherit", "inherit"] });
    process.once("SIGTERM", () => console.log("handler got TERM"));
    await new Promise((resolve) => child.once("exit", resolve));
    return { childExited: true };
  }
  if (event.doubleFork) {
    for (let n = 0; n < 5; n++) spawn("sh", ["-c", "(sleep 0.2 &); exit 0"], { stdio: "ignore" });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    return { zombies: zombies() };
  }
  if (event.emptyLines) {
    const block = "\\n".repeat(10000);
    for (let n = 0; n < event.emptyLines / 10000; n++) require("fs").writeSync(1, block);
    return { flooded: true };
  }
  if (event.throwChars) throw new Error("x".repeat(event.throwChars));
  if (event.resultChars) return { big: "r".repeat(event.resultChars) };
  return { ok: true };
};
`;

async function logLines(requestId: string, after = 0): Promise<string[]> {
  const { body } = await api.json<{ records: { line: string }[] }>(`/v1/events/${requestId}/logs?after=${after}`);
  return body.records.map((record) => record.line);
}

describe("container isolation and bounds, against real containers", () => {
  let probe: string;
  beforeAll(async () => {
    probe = await api.createUniqueFunction(NAMESPACE, "probe", {
      runtime: "Nodejs22",
      files: { "index.js": PROBE_HANDLER },
      timeout: 300,
      // The smallest log limit (1 MiB): the empty-line flood below passes it.
      logLimitMb: 1,
    });
  });

  async function run(event: Record<string, unknown>, timeoutMs = 60_000): Promise<EventView> {
    return api.waitForEvent(await api.invoke(NAMESPACE, probe, event), undefined, timeoutMs);
  }

  it("answers a handler that calls its own agent without the token with 401 on every route", async () => {
    const done = await run({ probeAgent: true });
    expect(done.status).toBe("FINISHED");
    const result = done.result as Record<string, { status: number }>;
    expect(result.health?.status).toBe(401);
    expect(result.healthWrongToken?.status).toBe(401);
    expect(result.executions?.status).toBe(401);
    expect(result.signal?.status).toBe(401);
  });

  it("runs the handler as a non-root user that cannot read PID 1's or the agent's environment", async () => {
    const done = await run({ whoami: true });
    const result = done.result as { uid: number; gid: number; pid1Environ: string; foreign: number[] };
    expect(result.uid).toBeGreaterThan(0);
    expect(result.gid).toBeGreaterThan(0);
    expect(result.pid1Environ).toBe("EACCES");
    expect(result.foreign).toEqual([]);
  });

  it("delivers a graceful terminate's SIGTERM to a subprocess the handler spawned", async () => {
    const requestId = await api.invoke(NAMESPACE, probe, { child: true });
    await expect.poll(() => logLines(requestId), { timeout: 30_000 }).toContain("child ready");
    const response = await api.request(`/v1/events/${requestId}/terminate`, {
      method: "POST",
      body: JSON.stringify({ graceful: true }),
    });
    expect(response.status).toBe(200);
    const done = await api.waitForEvent(requestId);
    expect(done.status).toBe("ABORTED");
    const lines = await logLines(requestId);
    expect(lines).toContain("child got TERM");
    expect(lines).toContain("handler got TERM");
    expect(lines).toContain("[PLATFORM] Signal received successfully");
  });

  it("leaves no zombie after a handler's child double-forks and exits", async () => {
    const done = await run({ doubleFork: true });
    expect(done.status).toBe("FINISHED");
    expect((done.result as { zombies: unknown[] }).zombies).toEqual([]);
  });

  it("counts every empty line of a flood against the log limit: the marker, the dropped count, and the event finishes", async () => {
    const limit = 1024 * 1024;
    const done = await run({ emptyLines: 1_100_000 }, 300_000);
    expect(done.status).toBe("FINISHED");
    // START and the 1,048,576 empty lines the agent keeps (1 byte each) fill the first seqs; its own lines follow.
    const { body } = await api.json<{ records: { line: string }[] }>(
      `/v1/events/${done.requestId}/logs?after=${limit - 10}`,
    );
    const platformLines = body.records.map((record) => record.line).filter((line) => line.startsWith("[PLATFORM]"));
    expect(platformLines).toContain(
      `[PLATFORM] Log output reached the limit of ${limit} bytes for this execution (logLimitBytes): further lines are not kept`,
    );
    // An empty line weighs 1 byte (its newline).
    const dropped = 1_100_000 - limit;
    expect(platformLines).toContain(`[PLATFORM] ${dropped} lines (${dropped} bytes) over the log limit were dropped`);
  }, 320_000);

  it("fails an event with an oversized error message promptly, with the message capped", async () => {
    const started = Date.now();
    const done = await run({ throwChars: 3_000_000 });
    expect(done.status).toBe("FAILED");
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(new TextEncoder().encode(done.errorMessage ?? "").byteLength).toBeLessThanOrEqual(4096);
    expect(done.errorMessage).toMatch(/truncated/);
  });

  it("fails an event whose result is over 1 MB with a message naming the limit", async () => {
    const done = await run({ resultChars: 1_100_000 });
    expect(done.status).toBe("FAILED");
    expect(done.errorMessage).toMatch(/Result too large: .* over the limit of 1048576 bytes/);
  });

  it("replaces a warm container when the function's memory size changes", async () => {
    const name = await api.createUniqueFunction(NAMESPACE, "resize", {
      runtime: "Nodejs22",
      files: { "index.js": "exports.main_handler = async (event, context) => context.memory_limit_in_mb;" },
      memorySize: 128,
    });
    const first = await api.waitForEvent(await api.invoke(NAMESPACE, name, {}));
    const warm = await api.waitForEvent(await api.invoke(NAMESPACE, name, {}));
    expect(warm).toMatchObject({ status: "FINISHED", coldStart: false, containerId: first.containerId });
    const patched = await api.request(`/v1/namespaces/${NAMESPACE}/functions/${name}`, {
      method: "PATCH",
      body: JSON.stringify({ memorySize: 256 }),
    });
    expect(patched.status).toBe(200);
    const resized = await api.waitForEvent(await api.invoke(NAMESPACE, name, {}));
    expect(resized).toMatchObject({ status: "FINISHED", result: 256, coldStart: true });
    expect(resized.containerId).not.toBe(first.containerId);
  });
});
