import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";

describe("GET /healthz", () => {
  it("reports D1, the queue binding, container support and credentials without credentials", async () => {
    const response = await SELF.fetch("https://platform.test/healthz");
    const body = (await response.json()) as { status: string; checks: Record<string, { ok: boolean }> };
    expect(body.checks.database?.ok).toBe(true);
    expect(body.checks.queue?.ok).toBe(true);
    expect(body.checks.credentials?.ok).toBe(true);
    expect(Object.keys(body.checks).sort()).toEqual(["containers", "credentials", "database", "queue"]);
  });
});

describe("diagnostics routes", () => {
  it("are not found when DIAGNOSTICS_ENABLED is not true", async () => {
    const response = await SELF.fetch("https://platform.test/_diagnostics/container-self-check", { method: "POST" });
    expect(response.status).toBe(404);
    const body = (await response.json()) as { error: { code: string } };
    expect(body.error.code).toBe("NOT_FOUND");
  });
});

describe("unknown routes", () => {
  it("answer 404 with the error envelope", async () => {
    const response = await SELF.fetch("https://platform.test/no-such-route");
    expect(response.status).toBe(404);
    const body = (await response.json()) as { error: { code: string; message: string; requestId: string } };
    expect(body.error.code).toBe("NOT_FOUND");
    expect(body.error.requestId).toBeTruthy();
  });
});
