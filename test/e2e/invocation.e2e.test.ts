import { beforeAll, describe, expect, inject, it } from "vitest";
import { ADMIN_HEADERS, ApiClient, type EventView } from "../helpers/api-client";
import { containerActions, instanceStatus, waitUntilInstanceContainersGone } from "../helpers/docker";
import { pollUntil } from "../helpers/wait";
import { NODE_HANDLER, NODE_MEMORY_HOG, PYTHON_HANDLER } from "./fixtures";

const api = new ApiClient(inject("baseUrl"));
const NAMESPACE = "default";

const HANDLERS = {
  Nodejs22: { "index.js": NODE_HANDLER },
  "Python3.11": { "index.py": PYTHON_HANDLER },
} as const;

/** A function of the runtime running the shared fixture handler. */
function createHandler(runtime: keyof typeof HANDLERS, options: Record<string, unknown> = {}): Promise<string> {
  return api.createUniqueFunction(NAMESPACE, runtime === "Nodejs22" ? "node" : "python", {
    runtime,
    handler: "index.main_handler",
    files: HANDLERS[runtime],
    timeout: 30,
    environment: { GREETING: "hello" },
    ...options,
  });
}

/** The counters of a function's scheduler, as its diagnostics route answers them. */
interface SchedulerStats {
  pending: number;
  busy: number;
  duplicatesIgnored: number;
  claimsRefused: number;
}

function time(value: string | null): number {
  if (value === null) throw new Error("missing time");
  return Date.parse(value);
}

describe("async invocation of a Node.js function", () => {
  let name: string;
  beforeAll(async () => {
    name = await createHandler("Nodejs22");
  });

  it("returns a RequestId at once, runs RUNNING then FINISHED with the handler's return value", async () => {
    const requestId = await api.invoke(NAMESPACE, name, { sleepMs: 1500, n: 1 });
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    const running = await api.waitForEvent(requestId, (event) => event.phase === "running");
    expect(running.status).toBe("RUNNING");
    const done = await api.waitForEvent(requestId);
    expect(done.status).toBe("FINISHED");
    expect(done.statusCode).toBe(200);
    expect(done.result).toMatchObject({
      echo: { sleepMs: 1500, n: 1 },
      requestId,
      functionName: name,
      namespace: NAMESPACE,
      memoryLimitInMb: 128,
      greeting: "hello",
    });
    expect((done.result as { remainingMs: number }).remainingMs).toBeGreaterThan(0);
    const lines = (await api.logs(requestId)).map((record) => `${record.stream}:${record.line}`);
    expect(lines).toContain(`stdout:start ${requestId}`);
    expect(lines).toContain(`stderr:done ${requestId}`);
  });

  it("ends FAILED/430 with the message when the handler throws", async () => {
    const requestId = await api.invoke(NAMESPACE, name, { throw: "bad input row 7" });
    const done = await api.waitForEvent(requestId);
    expect(done.status).toBe("FAILED");
    expect(done.statusCode).toBe(430);
    expect(done.errorMessage).toContain("bad input row 7");
  });

  it("runs two sequential events in the same warm container, and the next after a failure in a new one", async () => {
    // Its own function: what earlier tests left running or warm cannot decide this one.
    const name = await createHandler("Nodejs22");
    const first = await api.waitForEvent(await api.invoke(NAMESPACE, name, { n: 1 }));
    expect(first.coldStart).toBe(true);
    const second = await api.waitForEvent(await api.invoke(NAMESPACE, name, { n: 2 }));
    expect(second.status).toBe("FINISHED");
    expect(second.coldStart).toBe(false);
    expect(second.containerId).toBe(first.containerId);

    const failed = await api.waitForEvent(await api.invoke(NAMESPACE, name, { exit: 3 }));
    expect(failed.status).toBe("FAILED");
    expect(failed.statusCode).toBe(439);
    expect(failed.containerId).toBe(second.containerId);

    const after = await api.waitForEvent(await api.invoke(NAMESPACE, name, { n: 3 }));
    expect(after.status).toBe("FINISHED");
    expect(after.coldStart).toBe(true);
    expect(after.containerId).not.toBe(failed.containerId);
  });
});

describe("async invocation of a Python function", () => {
  let name: string;
  beforeAll(async () => {
    name = await createHandler("Python3.11");
  });

  it("runs RUNNING then FINISHED with the handler's return value", async () => {
    const requestId = await api.invoke(NAMESPACE, name, { sleepMs: 1000, n: 2 });
    const running = await api.waitForEvent(requestId, (event) => event.phase === "running");
    expect(running.status).toBe("RUNNING");
    const done = await api.waitForEvent(requestId);
    expect(done.status).toBe("FINISHED");
    expect(done.statusCode).toBe(200);
    expect(done.result).toEqual({
      echo: { sleepMs: 1000, n: 2 },
      requestId,
      functionName: name,
      python: "3.11",
      greeting: "hello",
    });
    const lines = (await api.logs(requestId)).map((record) => record.line);
    expect(lines).toContain(`start ${requestId}`);
  });

  it("ends FAILED/430 with the exception when the handler raises", async () => {
    const done = await api.waitForEvent(await api.invoke(NAMESPACE, name, { throw: "no such bucket" }));
    expect(done.status).toBe("FAILED");
    expect(done.statusCode).toBe(430);
    expect(done.errorMessage).toBe("ValueError: no such bucket");
  });

  it("ends FAILED/439 on sys.exit(3) and repossesses the instance", async () => {
    const warm = await api.waitForEvent(await api.invoke(NAMESPACE, name, {}));
    const failed = await api.waitForEvent(await api.invoke(NAMESPACE, name, { exit: 3 }));
    expect(failed.status).toBe("FAILED");
    expect(failed.statusCode).toBe(439);
    expect(failed.errorMessage).toContain("exit code 3");
    expect(failed.containerId).toBe(warm.containerId);
    const next = await api.waitForEvent(await api.invoke(NAMESPACE, name, {}));
    expect(next.coldStart).toBe(true);
    expect(next.containerId).not.toBe(failed.containerId);
  });
});

describe("timeouts", () => {
  it("fails a handler sleeping past its timeout with 433 within 2 s of the deadline, its container gone", async () => {
    const name = await createHandler("Nodejs22", { timeout: 2 });
    const invokedAt = Date.now();
    const requestId = await api.invoke(NAMESPACE, name, { sleepMs: 20_000 });
    const done = await api.waitForEvent(requestId, undefined, 30_000);
    expect(done.status).toBe("FAILED");
    expect(done.statusCode).toBe(433);
    const overrun = time(done.endedAt) - (time(done.startedAt) + 2_000);
    expect(overrun).toBeGreaterThanOrEqual(0);
    expect(overrun).toBeLessThanOrEqual(2_000);
    const instance = await instanceStatus(inject("baseUrl"), done.instanceId ?? "");
    expect(instance.containerRunning).toBe(false);
    expect(instance.requestId).toBeNull();
    // Docker itself: the instance's container was started for the event, then died, and none is alive.
    expect(await waitUntilInstanceContainersGone(instance.durableObjectId)).toEqual([]);
    const actions = containerActions(instance.durableObjectId, invokedAt).map((entry) => entry.action);
    expect(actions).toContain("start");
    expect(actions.slice(actions.indexOf("start"))).toContain("die");
  });
});

describe("memory limit", () => {
  it("fails a Node.js handler that exceeds its memory size with 434", async () => {
    const name = await api.createUniqueFunction(NAMESPACE, "hog", {
      runtime: "Nodejs22",
      files: { "index.js": NODE_MEMORY_HOG },
      memorySize: 64,
      timeout: 60,
    });
    const done = await api.waitForEvent(await api.invoke(NAMESPACE, name, {}), undefined, 60_000);
    expect(done.status).toBe("FAILED");
    expect(done.statusCode).toBe(434);
  });
});

describe("concurrency limit", () => {
  it("never runs more than maxConcurrency events at once and finishes all of them", async () => {
    const name = await createHandler("Nodejs22", { maxConcurrency: 2 });
    const ids = await Promise.all(
      Array.from({ length: 10 }, (_, n) => api.invoke(NAMESPACE, name, { sleepMs: 2000, n })),
    );
    const events: EventView[] = [];
    for (const id of ids) events.push(await api.waitForEvent(id, undefined, 90_000));
    expect(events.map((event) => event.status)).toEqual(Array(10).fill("FINISHED"));
    // At every start, count the events whose [startedAt, endedAt) covers that moment.
    const spans = events.map((event) => [time(event.startedAt), time(event.endedAt)] as const);
    const maxOverlap = Math.max(...spans.map(([start]) => spans.filter(([s, e]) => s <= start && start < e).length));
    expect(maxOverlap).toBeLessThanOrEqual(2);
    expect(new Set(events.map((event) => event.instanceId)).size).toBeLessThanOrEqual(2);
  });
});

describe("at-least-once dispatch", () => {
  /** The handler sleeps this long: the first duplicate must reach the scheduler while it runs. */
  const RUNNING_MS = 15_000;
  /** The function's concurrency limit, which its dispatch message carries. */
  const MAX_CONCURRENCY = 3;
  /** Longest wait for a redelivered message to be consumed and counted (the machine is shared). */
  const COUNTED_WAIT_MS = 30_000;

  /** Asks the event to send its own dispatch message again (POST /_diagnostics/redeliver). */
  function redeliver(requestId: string): Promise<Response> {
    return fetch(`${inject("baseUrl")}/_diagnostics/redeliver`, {
      method: "POST",
      headers: ADMIN_HEADERS,
      body: JSON.stringify({ requestId }),
    });
  }

  /** The function's scheduler counters (GET /_diagnostics/schedulers/:namespace/:function). */
  async function schedulerStats(functionName: string): Promise<SchedulerStats> {
    const response = await fetch(`${inject("baseUrl")}/_diagnostics/schedulers/${NAMESPACE}/${functionName}`, {
      headers: ADMIN_HEADERS,
    });
    expect(response.status).toBe(200);
    return (await response.json()) as SchedulerStats;
  }

  it("ignores a redelivered dispatch while the event runs and refuses its claim once it ended: one execution", async () => {
    const name = await createHandler("Nodejs22", { maxConcurrency: MAX_CONCURRENCY });
    const requestId = await api.invoke(NAMESPACE, name, { sleepMs: RUNNING_MS });
    const running = await api.waitForEvent(requestId, (event) => event.phase === "running");
    const expectedMessage = {
      requestId,
      namespace: NAMESPACE,
      functionName: name,
      qualifier: running.qualifier,
      // The alias the invocation named ($DEFAULT: it named none); absent when it names a version.
      ...(running.alias !== null ? { alias: running.alias } : {}),
      invokeType: running.invokeType,
      invokedAt: time(running.invokedAt),
      maxConcurrency: MAX_CONCURRENCY,
      // The function's memorySize (the default): it picks the container class the event runs in.
      memoryMb: 128,
    };

    // While it runs: the scheduler holds the event in a slot and ignores the copy.
    const first = await redeliver(requestId);
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ sent: true, message: expectedMessage });
    const ignored = await pollUntil(
      () => schedulerStats(name),
      (stats) => stats.duplicatesIgnored >= 1,
      COUNTED_WAIT_MS,
    );
    expect(ignored).toMatchObject({ duplicatesIgnored: 1, claimsRefused: 0 });
    expect((await api.event(requestId)).phase).toBe("running");

    // Once it ended: the copy reaches an instance, whose claim the ended event refuses.
    const done = await api.waitForEvent(requestId);
    expect(done.status).toBe("FINISHED");
    const second = await redeliver(requestId);
    expect(second.status).toBe(200);
    expect(await second.json()).toEqual({ sent: true, message: expectedMessage });
    const refused = await pollUntil(
      () => schedulerStats(name),
      (stats) => stats.claimsRefused >= 1,
      COUNTED_WAIT_MS,
    );
    expect(refused).toMatchObject({ duplicatesIgnored: 1, claimsRefused: 1, pending: 0, busy: 0 });

    expect(await api.event(requestId)).toEqual(done);
    const starts = (await api.logs(requestId)).filter((record) => record.line === `start ${requestId}`);
    expect(starts).toHaveLength(1);
  });

  it("refuses a redeliver of an unknown event with 404 and a malformed one with 400", async () => {
    expect((await redeliver(crypto.randomUUID())).status).toBe(404);
    const malformed = await fetch(`${inject("baseUrl")}/_diagnostics/redeliver`, {
      method: "POST",
      headers: ADMIN_HEADERS,
      body: JSON.stringify({ requestId: "not-a-uuid" }),
    });
    expect(malformed.status).toBe(400);
  });
});

describe("a malformed dispatch message", () => {
  it("is dead-lettered and counted, not silently acknowledged", async () => {
    const stats = async () => {
      const response = await fetch(`${inject("baseUrl")}/_diagnostics/dispatch-consumer`, { headers: ADMIN_HEADERS });
      expect(response.status).toBe(200);
      return (await response.json()) as { malformedMessages: number; malformedDeadLetters: number };
    };
    const before = await stats();
    const sent = await fetch(`${inject("baseUrl")}/_diagnostics/dispatch-queue/malformed`, {
      method: "POST",
      headers: ADMIN_HEADERS,
    });
    expect(sent.status).toBe(200);
    // The dispatch consumer counts it and sends it on; the dead-letter consumer counts its arrival.
    const after = await pollUntil(stats, (now) => now.malformedDeadLetters > before.malformedDeadLetters, 30_000);
    expect(after.malformedMessages).toBe(before.malformedMessages + 1);
    expect(after.malformedDeadLetters).toBe(before.malformedDeadLetters + 1);
  });
});
