// Compute sizes: a function's memorySize picks its container class (CONTAINER_SIZES), the event
// shows the instance type it ran on, Docker shows the class in the container's name and the local
// guard's memory cap, and a memorySize update moves the next event to the new class while the old
// class's warm container stays for its idle time (an alias may still send it events). Plus the
// capacity knobs' refusals.
import { execFileSync } from "node:child_process";
import { describe, expect, inject, it } from "vitest";
import { ApiClient, type EventView, TEST_CREDENTIALS } from "../helpers/api-client";
import { aliveContainerOfInstance, instanceStatus } from "../helpers/docker";
import { startPlatform } from "../helpers/platform";
import { pollUntil } from "../helpers/wait";

const baseUrl = inject("baseUrl");
const api = new ApiClient(baseUrl);
const NAMESPACE = "default";
const MIB = 1024 * 1024;
/** The handler answers the memory size it was given and stays a moment (so its container can be inspected). */
const HANDLER = {
  "index.js":
    "exports.main_handler = async (event) => { await new Promise((r) => setTimeout(r, event.sleepMs ?? 0)); return { memory: Number(process.env.SCF_MEMORY_SIZE ?? 0) }; };",
};

type SizedEvent = EventView & { instanceType: string | null };

function createSized(memorySize: number, client = api): Promise<string> {
  return client.createUniqueFunction(NAMESPACE, "size", {
    runtime: "Nodejs22",
    handler: "index.main_handler",
    files: HANDLER,
    timeout: 60,
    memorySize,
  });
}

/** Docker's name and memory cap (bytes, 0 for none) of a container. */
function inspect(dockerId: string): { name: string; memory: number } {
  const [name = "", memory = "0"] = execFileSync(
    "docker",
    ["inspect", "-f", "{{.Name}}\t{{.HostConfig.Memory}}", dockerId],
    { encoding: "utf8", timeout: 30_000 },
  )
    .trim()
    .split("\t");
  return { name, memory: Number(memory) };
}

/** Runs one event that stays 4 s and, while it runs, reads its container from Docker. */
async function runAndInspect(
  name: string,
  client = api,
  url = baseUrl,
): Promise<{ done: SizedEvent; container: { name: string; memory: number } }> {
  const requestId = await client.invoke(NAMESPACE, name, { sleepMs: 4_000 });
  const running = await client.waitForEvent(requestId, (event) => event.phase === "running");
  if (!running.instanceId) throw new Error(`no instance: ${JSON.stringify(running)}`);
  const dockerId = await aliveContainerOfInstance(url, running.instanceId);
  // The guard applies the caps as soon as Docker reports the container; the agent waits for them.
  const container = await pollUntil(
    async () => inspect(dockerId),
    (seen) => seen.memory > 0,
    10_000,
  );
  const done = (await client.waitForEvent(requestId)) as SizedEvent;
  return { done, container };
}

describe("compute sizes", () => {
  it("runs a 2048 MB function in an InstanceContainerLarge container capped at 2048 MB + the agent's", async () => {
    const name = await createSized(2048);
    const { done, container } = await runAndInspect(name);
    expect(done).toMatchObject({ status: "FINISHED", instanceType: "standard-2" });
    expect(done.instanceId).toMatch(/#\d+@standard-2$/);
    expect(container.name).toMatch(/-InstanceContainerLarge-[0-9a-f]{64}$/);
    expect(container.memory).toBeGreaterThanOrEqual(2048 * MIB);
    expect((await instanceStatus(baseUrl, done.instanceId ?? "")).instanceType).toBe("standard-2");
  });

  it("runs a 128 MB function in an InstanceContainer (basic) container", async () => {
    const name = await createSized(128);
    const { done, container } = await runAndInspect(name);
    expect(done).toMatchObject({ status: "FINISHED", instanceType: "basic" });
    expect(done.instanceId).toMatch(/#\d+$/);
    expect(container.name).toMatch(/-InstanceContainer-[0-9a-f]{64}$/);
    expect(container.memory).toBeLessThan(1024 * MIB);
  });

  it("moves the next event to the new size after a memorySize update; the old class's warm container stays", async () => {
    const name = await createSized(128);
    const first = (await api.waitForEvent(await api.invoke(NAMESPACE, name, {}))) as SizedEvent;
    expect(first).toMatchObject({ status: "FINISHED", instanceType: "basic" });
    const oldInstance = await instanceStatus(baseUrl, first.instanceId ?? "");
    const patched = await api.request(`/v1/namespaces/${NAMESPACE}/functions/${name}`, {
      method: "PATCH",
      body: JSON.stringify({ memorySize: 2048 }),
    });
    expect(patched.status).toBe(200);
    const next = (await api.waitForEvent(await api.invoke(NAMESPACE, name, {}))) as SizedEvent;
    expect(next).toMatchObject({ status: "FINISHED", instanceType: "standard-2", coldStart: true });
    expect(next.instanceId).toMatch(/@standard-2$/);
    // The basic class ran an event moments ago: its warm container is kept (retired only once the
    // class goes unused for CLASS_IDLE_RETIRE_MS, see test/integration/compute-sizes.test.ts).
    expect(await instanceStatus(baseUrl, first.instanceId ?? "")).toMatchObject({
      containerRunning: true,
      durableObjectId: oldInstance.durableObjectId,
    });
  });
});

describe("the lite compute size, where CONTAINER_SIZES names it", () => {
  it("runs a 128 MB function in an InstanceContainerLite container within lite's 256 MiB, its default log limit lite's 512 MiB; 129 MB runs on basic", async () => {
    // A platform of its own: the suite's runs the default sizes, which never name lite.
    const platform = await startPlatform({
      vars: { DIAGNOSTICS_ENABLED: "true", CONTAINER_SIZES: "lite:128,basic:512,standard-1:1536,standard-2:3072" },
      env: { DEV_SECRET_ID: TEST_CREDENTIALS.secretId, DEV_SECRET_KEY: TEST_CREDENTIALS.secretKey },
    });
    try {
      const client = new ApiClient(platform.baseUrl);
      const small = await createSized(128, client);
      const stored = await client.json<{ logLimitMb: number }>(`/v1/namespaces/${NAMESPACE}/functions/${small}`);
      expect(stored.body.logLimitMb).toBe(512);
      const { done, container } = await runAndInspect(small, client, platform.baseUrl);
      expect(done).toMatchObject({ status: "FINISHED", instanceType: "lite" });
      expect(done.instanceId).toMatch(/#\d+@lite$/);
      expect(container.name).toMatch(/-InstanceContainerLite-[0-9a-f]{64}$/);
      // The function's 128 MB plus the agent's 128: all of lite's memory, no more.
      expect(container.memory).toBeGreaterThanOrEqual(128 * MIB);
      expect(container.memory).toBeLessThanOrEqual(256 * MIB);
      const lines = (await client.logs(done.requestId)).map((record) => record.line);
      expect(lines.filter((line) => line.startsWith("[PLATFORM] Log limit"))).toEqual([]);
      // A log limit given explicitly is checked against lite's disk, as on any size.
      const refused = await client.createFunction(NAMESPACE, {
        name: `size-lite-${Math.random().toString(16).slice(2, 10)}`,
        runtime: "Nodejs22",
        files: HANDLER,
        memorySize: 128,
        logLimitMb: 1024,
      });
      expect(refused.status).toBe(400);
      expect(JSON.stringify(refused.body)).toContain("runs on instance type lite (2 GB disk, at most 512 MiB of log)");
      const larger = await createSized(129, client);
      const next = (await client.waitForEvent(await client.invoke(NAMESPACE, larger, {}))) as SizedEvent;
      expect(next).toMatchObject({ status: "FINISHED", instanceType: "basic" });
      expect(next.instanceId).toMatch(/#\d+$/);
    } finally {
      await platform.stop();
    }
  }, 300_000);
});

describe("capacity knobs and size bounds", () => {
  const create = (definition: Record<string, unknown>) =>
    api.createFunction(NAMESPACE, {
      name: `size-refused-${Math.random().toString(16).slice(2, 10)}`,
      runtime: "Nodejs22",
      files: HANDLER,
      ...definition,
    });

  it("refuses a maxConcurrency above FUNCTION_MAX_CONCURRENCY, naming the bound", async () => {
    const refused = await create({ maxConcurrency: 51 });
    expect(refused.status).toBe(400);
    expect(JSON.stringify(refused.body)).toContain("at most 50 on this platform (FUNCTION_MAX_CONCURRENCY)");
  });

  it("refuses a log limit the size's disk cannot hold, naming both settings", async () => {
    const refused = await create({ memorySize: 128, logLimitMb: 2048 });
    expect(refused.status).toBe(400);
    const text = JSON.stringify(refused.body);
    expect(text).toContain("logLimitMb: 2048 MiB");
    expect(text).toContain("memorySize 128 MB");
    const accepted = await create({ memorySize: 2048, logLimitMb: 2048 });
    expect(accepted.status).toBe(201);
  });
});
