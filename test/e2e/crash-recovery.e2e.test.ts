import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { ApiClient, type EventView, TEST_CREDENTIALS } from "../helpers/api-client";
import { startPlatform } from "../helpers/platform";
import { NODE_LONG_JOB } from "./fixtures";

/** Names of the running containers that workerd started. */
function workerdContainers(): Set<string> {
  const out = execFileSync("docker", ["ps", "--format", "{{.Names}}"], { encoding: "utf8" });
  return new Set(out.split("\n").filter((name) => name.startsWith("workerd-")));
}

const credentials = { DEV_SECRET_ID: TEST_CREDENTIALS.secretId, DEV_SECRET_KEY: TEST_CREDENTIALS.secretKey };

describe("a crash of the whole local runtime", () => {
  it("loses no accepted event: each reaches a terminal status after the platform restarts", async () => {
    const before = workerdContainers();
    const first = await startPlatform({ env: credentials });
    const api = new ApiClient(first.baseUrl);
    const name = await api.createUniqueFunction("default", "crash", {
      runtime: "Nodejs22",
      files: { "index.js": NODE_LONG_JOB },
      timeout: 120,
      maxConcurrency: 1,
    });
    const running = await api.invoke("default", name, { runMs: 60_000 });
    await api.waitForEvent(running, (event) => event.phase === "running");
    const queued = [];
    for (let i = 0; i < 3; i++) queued.push(await api.invoke("default", name, { runMs: 100 }));

    // The killed runtime's containers outlive it (nothing stops them): remember them to clean up.
    const orphans = [...workerdContainers()].filter((name) => !before.has(name));
    await first.kill();
    const second = await startPlatform({
      env: credentials,
      stateDir: first.stateDir,
      port: Number(new URL(first.baseUrl).port),
    });
    try {
      const again = new ApiClient(second.baseUrl);
      const ended: EventView[] = [];
      for (const id of [running, ...queued]) ended.push(await again.waitForEvent(id, undefined, 300_000));
      // The event whose container died with the runtime fails; nothing is left RUNNING or lost.
      expect(ended[0]?.status).toBe("FAILED");
      expect(ended[0]?.statusCode).toBe(500);
      for (const event of ended.slice(1)) expect(event.status).toBe("FINISHED");
    } finally {
      await second.stop();
      if (orphans.length > 0) execFileSync("docker", ["rm", "-f", ...orphans], { stdio: "ignore" });
    }
  }, 600_000);
});
