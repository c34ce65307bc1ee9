import { beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient, type EventView } from "../helpers/api-client";
import { aliveContainerOfInstance, containerStillThere } from "../helpers/docker";
import { pollUntil } from "../helpers/wait";
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

/** The Docker id of the container running the event's handler, asked of Docker. */
function dockerContainerOf(running: EventView): Promise<string> {
  return aliveContainerOfInstance(inject("baseUrl"), running.instanceId ?? "");
}

/** Whether the event's container is still there, as the platform claims and as Docker shows it. */
function stillThere(running: EventView, dockerId: string): Promise<{ platform: boolean; docker: boolean }> {
  return containerStillThere(inject("baseUrl"), running.instanceId ?? "", dockerId);
}

/** What stillThere answers for a container that is gone. */
const GONE = { platform: false, docker: false };

const isRunningHandler = (event: EventView) => event.phase === "running";

/** Longest wait for a handler's line (generous: cold starts on a shared, slow machine). */
const LINE_WAIT_MS = 60_000;
/**
 * The line NODE_LONG_JOB and PYTHON_LONG_JOB print in their loop, after their SIGTERM listener (if
 * any) is set up: the event reads `running` from the hand-over, before the handler's first line.
 */
const WORKING_LINE = "tick";

/** Waits until the handler of requestId has printed `line`; answers the log's lines by then. */
async function waitForLine(requestId: string, line: string): Promise<string[]> {
  return pollUntil(
    async () => (await api.logs(requestId)).map((record) => record.line),
    (lines) => lines.includes(line),
    LINE_WAIT_MS,
  );
}

describe("forced terminate", () => {
  let name: string;
  beforeAll(async () => {
    name = await createJob("Nodejs22");
  });

  it("ends a running event ABORTED at once, destroys its container and repossesses the instance", async () => {
    const requestId = await api.invoke(NAMESPACE, name, { runMs: 60_000 });
    const running = await api.waitForEvent(requestId, isRunningHandler);
    const container = await dockerContainerOf(running);
    const response = await terminate(requestId);
    expect(response.status).toBe(200);
    expect(response.body.status).toBe("ABORTED");
    expect(response.body.statusCode).toBe(499);
    expect(await stillThere(running, container)).toEqual(GONE);
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
      // Its SIGTERM listener is installed once it prints: a SIGTERM before that would kill it.
      expect(await waitForLine(requestId, WORKING_LINE)).toContain(WORKING_LINE);
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
    expect(await waitForLine(requestId, WORKING_LINE)).toContain(WORKING_LINE);
    const container = await dockerContainerOf(running);
    expect((await terminate(requestId, { graceful: true })).status).toBe(200);
    const done = await api.waitForEvent(requestId);
    expect(done.status).toBe("ABORTED");
    expect(done.statusCode).toBe(439);
    const lines = (await api.logs(requestId)).map((record) => record.line);
    expect(lines).toContain("[PLATFORM] Signal reception failed");
    expect(await stillThere(running, container)).toEqual(GONE);
  });

  it("refuses a second graceful terminate while the first is in progress, and lets a forced one through", async () => {
    const name = await createJob("Nodejs22");
    const requestId = await api.invoke(NAMESPACE, name, { ignoreSigterm: true, runMs: 60_000 });
    const running = await api.waitForEvent(requestId, isRunningHandler);
    // Its "ignore" listener is installed once it prints: a SIGTERM before that would kill it.
    expect(await waitForLine(requestId, WORKING_LINE)).toContain(WORKING_LINE);
    const container = await dockerContainerOf(running);
    expect((await terminate(requestId, { graceful: true })).status).toBe(200);
    const second = await terminate(requestId, { graceful: true });
    expect(second.status).toBe(409);
    expect(second.body.error?.code).toBe("EVENT_TERMINATING");
    const stillRunning = await api.event(requestId);
    expect(stillRunning.status).toBe("RUNNING");
    expect(await waitForLine(requestId, "ignoring SIGTERM")).toContain("ignoring SIGTERM");
    const forced = await terminate(requestId);
    expect(forced.status).toBe(200);
    expect(forced.body).toMatchObject({ status: "ABORTED", statusCode: 499 });
    expect(await stillThere(running, container)).toEqual(GONE);
  });
});
