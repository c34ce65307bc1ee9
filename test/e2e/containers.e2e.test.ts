import { describe, expect, inject, it } from "vitest";
import { ADMIN_HEADERS } from "../helpers/api-client";

const baseUrl = inject("baseUrl");

describe("real containers through a container-enabled Durable Object", () => {
  it("starts a container, reaches its HTTP port, delivers SIGTERM to its process and destroys it", async () => {
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
    };
    expect(check.started).toBe(true);
    // The agent answered over its TCP port and runs as the child of its container's init (PID 1),
    // which reaps orphaned processes and forwards signals to it.
    expect(check.agentParentPid).toBe(1);
    expect(check.agentPid).toBeGreaterThan(1);
    expect(check.sigtermObserved).toBe(true);
    expect(check.destroyed).toBe(true);
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
