import { describe, expect, inject, it } from "vitest";
import { ADMIN_HEADERS } from "../helpers/api-client";
import { containerActions, waitUntilInstanceContainersGone } from "../helpers/docker";
import { pollUntil } from "../helpers/wait";

const baseUrl = inject("baseUrl");

/** Longest wait for Docker to record the self-check's container dying (the machine is shared and slow). */
const DOCKER_WAIT_MS = 30_000;

describe("real containers through a container-enabled Durable Object", () => {
  it("starts a container, reaches its HTTP port, delivers SIGTERM to its process and destroys it", async () => {
    const before = Date.now();
    const response = await fetch(`${baseUrl}/_diagnostics/container-self-check`, {
      method: "POST",
      headers: ADMIN_HEADERS,
    });
    expect(response.status).toBe(200);
    const check = (await response.json()) as {
      started: boolean;
      agentPid: number;
      agentParentPid: number;
      sigtermObserved: boolean;
      destroyed: boolean;
      durableObjectId: string;
    };
    expect(check.started).toBe(true);
    // The agent answered over its TCP port and runs as the child of its container's init (PID 1),
    // which reaps orphaned processes and forwards signals to it.
    expect(check.agentParentPid).toBe(1);
    expect(check.agentPid).toBeGreaterThan(1);
    expect(check.sigtermObserved).toBe(true);
    expect(check.destroyed).toBe(true);
    // Docker confirms it: a container of this instance was started, then died, and none is alive.
    const actions = await pollUntil(
      async () => containerActions(check.durableObjectId, before).map((entry) => entry.action),
      (seen) => seen.includes("die"),
      DOCKER_WAIT_MS,
    );
    expect(actions).toContain("start");
    expect(actions.slice(actions.indexOf("start"))).toContain("die");
    expect(await waitUntilInstanceContainersGone(check.durableObjectId)).toEqual([]);
  });
});

describe("GET /healthz on the running platform", () => {
  it("answers 200 with every check ok and needs no credentials", async () => {
    const response = await fetch(`${baseUrl}/healthz`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { status: string; checks: Record<string, { ok: boolean }> };
    expect(body.status).toBe("ok");
    expect(body.checks.containers?.ok).toBe(true);
  });
});
