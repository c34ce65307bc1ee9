import { beforeAll, describe, expect, inject, it } from "vitest";
import { ADMIN_HEADERS, ApiClient, type EventView } from "../helpers/api-client";
import { NODE_LONG_JOB, PYTHON_LONG_JOB } from "./fixtures";

const api = new ApiClient(inject("baseUrl"));
const NAMESPACE = "default";

function createJob(runtime: "Nodejs22" | "Python3.11", options: Record<string, unknown> = {}): Promise<string> {
  return api.createUniqueFunction(NAMESPACE, runtime === "Nodejs22" ? "job" : "pyjob", {
    runtime,
    files: runtime === "Nodejs22" ? { "index.js": NODE_LONG_JOB } : { "index.py": PYTHON_LONG_JOB },
    timeout: 300,
    ...options,
  });
}

function terminate(requestId: string, body?: unknown) {
  return api.json<EventView & { error?: { code: string } }>(`/v1/events/${requestId}/terminate`, {
    method: "POST",
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
}

async function instanceRunning(instanceId: string): Promise<boolean> {
  const response = await fetch(`${inject("baseUrl")}/_diagnostics/instances/${encodeURIComponent(instanceId)}`, {
    headers: ADMIN_HEADERS,
  });
  return ((await response.json()) as { containerRunning: boolean }).containerRunning;
}

const isRunningHandler = (event: EventView) => event.phase === "running";

describe("forced terminate", () => {
  let name: string;
  beforeAll(async () => {
    name = await createJob("Nodejs22");
  });

  it("ends a running event ABORTED at once, destroys its container and repossesses the instance", async () => {
    const requestId = await api.invoke(NAMESPACE, name, { runMs: 60_000 });
    const running = await api.waitForEvent(requestId, isRunningHandler);
    const response = await terminate(requestId);
    expect(response.status).toBe(200);
    expect(response.body.status).toBe("ABORTED");
    expect(response.body.statusCode).toBe(499);
    expect(await instanceRunning(running.instanceId ?? "")).toBe(false);
    const next = await api.waitForEvent(await api.invoke(NAMESPACE, name, { runMs: 0 }));
    expect(next.status).toBe("FINISHED");
    expect(next.coldStart).toBe(true);
    expect(next.containerId).not.toBe(running.containerId);
  });

  it("refuses a second terminate with EVENT_ALREADY_ENDED and changes nothing", async () => {
    const requestId = await api.invoke(NAMESPACE, name, { runMs: 60_000 });
    await api.waitForEvent(requestId, isRunningHandler);
    expect((await terminate(requestId)).status).toBe(200);
    const before = await api.event(requestId);
    const again = await terminate(requestId, { graceful: true });
    expect(again.status).toBe(409);
    expect(again.body.error?.code).toBe("EVENT_ALREADY_ENDED");
    expect(await api.event(requestId)).toEqual(before);
  });

  it("refuses to terminate an event that finished, and changes nothing", async () => {
    const done = await api.waitForEvent(await api.invoke(NAMESPACE, name, { runMs: 0 }));
    expect(done.status).toBe("FINISHED");
    const response = await terminate(done.requestId);
    expect(response.status).toBe(409);
    expect(response.body.error?.code).toBe("EVENT_ALREADY_ENDED");
    expect(await api.event(done.requestId)).toEqual(done);
  });

  it("aborts a queued event without starting a container for it", async () => {
    const single = await createJob("Nodejs22", { maxConcurrency: 1 });
    const blocker = await api.invoke(NAMESPACE, single, { runMs: 60_000 });
    await api.waitForEvent(blocker, isRunningHandler);
    const queued = await api.invoke(NAMESPACE, single, { runMs: 0 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await api.event(queued)).phase).toBe("queued");
    const response = await terminate(queued);
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ status: "ABORTED", statusCode: 499, instanceId: null, startedAt: null });
    await terminate(blocker);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const after = await api.event(queued);
    expect(after).toMatchObject({ status: "ABORTED", instanceId: null, startedAt: null });
    // Nothing ran: the only log line is the platform's end line.
    const lines = (await api.logs(queued)).map((record) => `${record.stream}:${record.line}`);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^platform:\[PLATFORM\] END RequestId: .* Status: ABORTED StatusCode: 499/);
  });

  it("refuses a body that is not JSON or has unknown fields", async () => {
    const requestId = await api.invoke(NAMESPACE, name, { runMs: 0 });
    const notJson = await api.request(`/v1/events/${requestId}/terminate`, { method: "POST", body: "{graceful" });
    expect(notJson.status).toBe(400);
    const unknown = await terminate(requestId, { force: "yes" });
    expect(unknown.status).toBe(400);
  });
});

describe("graceful terminate (SIGTERM)", () => {
  for (const runtime of ["Nodejs22", "Python3.11"] as const) {
    it(`lets a ${runtime} handler that listens clean up and return; the event ends ABORTED`, async () => {
      const name = await createJob(runtime);
      const requestId = await api.invoke(NAMESPACE, name, { listen: true, runMs: 60_000 });
      await api.waitForEvent(requestId, isRunningHandler);
      await new Promise((resolve) => setTimeout(resolve, runtime === "Nodejs22" ? 300 : 1_000));
      const response = await terminate(requestId, { graceful: true });
      expect(response.status).toBe(200);
      expect(response.body.status).toBe("RUNNING");
      expect(response.body.terminateRequestedAt).not.toBeNull();
      const done = await api.waitForEvent(requestId);
      expect(done.status).toBe("ABORTED");
      expect(done.statusCode).toBe(200);
      expect(done.result).toEqual({ stopped: true });
      const lines = (await api.logs(requestId)).map((record) => record.line);
      expect(lines).toContain("cleanup: checkpoint saved");
      expect(lines).toContain("[PLATFORM] Signal received successfully");
      expect(lines).not.toContain("[PLATFORM] Signal reception failed");
    });
  }

  it("ends a handler that does not listen with 439 and logs the failed reception", async () => {
    const name = await createJob("Nodejs22");
    const requestId = await api.invoke(NAMESPACE, name, { runMs: 60_000 });
    const running = await api.waitForEvent(requestId, isRunningHandler);
    expect((await terminate(requestId, { graceful: true })).status).toBe(200);
    const done = await api.waitForEvent(requestId);
    expect(done.status).toBe("ABORTED");
    expect(done.statusCode).toBe(439);
    const lines = (await api.logs(requestId)).map((record) => record.line);
    expect(lines).toContain("[PLATFORM] Signal reception failed");
    expect(await instanceRunning(running.instanceId ?? "")).toBe(false);
  });

  it("refuses a second graceful terminate while the first is in progress, and lets a forced one through", async () => {
    const name = await createJob("Nodejs22");
    const requestId = await api.invoke(NAMESPACE, name, { ignoreSigterm: true, runMs: 60_000 });
    const running = await api.waitForEvent(requestId, isRunningHandler);
    expect((await terminate(requestId, { graceful: true })).status).toBe(200);
    const second = await terminate(requestId, { graceful: true });
    expect(second.status).toBe(409);
    expect(second.body.error?.code).toBe("EVENT_TERMINATING");
    const stillRunning = await api.event(requestId);
    expect(stillRunning.status).toBe("RUNNING");
    await expect
      .poll(async () => (await api.logs(requestId)).map((record) => record.line), { timeout: 5_000 })
      .toContain("ignoring SIGTERM");
    const forced = await terminate(requestId);
    expect(forced.status).toBe(200);
    expect(forced.body).toMatchObject({ status: "ABORTED", statusCode: 499 });
    expect(await instanceRunning(running.instanceId ?? "")).toBe(false);
  });
});

describe("terminate races end in exactly one terminal state", () => {
  it("while the container starts", async () => {
    const name = await createJob("Nodejs22");
    const requestId = await api.invoke(NAMESPACE, name, { runMs: 0 });
    const response = await terminate(requestId);
    expect(response.status).toBe(200);
    expect(response.body.status).toBe("ABORTED");
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const after = await api.event(requestId);
    expect(after.status).toBe("ABORTED");
    expect(after.endedAt).toBe(response.body.endedAt);
  });

  it("while the handler returns", async () => {
    const name = await createJob("Nodejs22");
    await api.waitForEvent(await api.invoke(NAMESPACE, name, { runMs: 0 }));
    const outcomes: string[] = [];
    for (const delay of [150, 200, 250, 300]) {
      const requestId = await api.invoke(NAMESPACE, name, { runMs: 200, tickMs: 50 });
      await api.waitForEvent(requestId, (event) => event.phase !== "queued" && event.phase !== "starting");
      await new Promise((resolve) => setTimeout(resolve, delay - 50));
      const response = await terminate(requestId);
      const settled = await api.waitForEvent(requestId);
      await new Promise((resolve) => setTimeout(resolve, 500));
      const later = await api.event(requestId);
      expect(later).toEqual(settled);
      if (response.status === 200) expect(settled.status).toBe("ABORTED");
      else expect(settled.status).toBe("FINISHED");
      outcomes.push(settled.status);
    }
    expect(outcomes.every((status) => status === "ABORTED" || status === "FINISHED")).toBe(true);
  });
});
