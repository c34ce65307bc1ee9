// A forced terminate in each window of an event's life, each window held open on purpose: queued
// (the function's only slot is busy), starting (a diagnostics hold pauses the instance before the
// hand-over), running (the handler has printed), ending (a hold pauses the instance after the
// handler's end record, before the outcome reaches the event). Each window has one allowed outcome,
// as the event's state machine (worker/events/event-machine.ts, "terminate" and "complete") rules.
import { describe, expect, inject, it } from "vitest";
import { ADMIN_HEADERS, ApiClient, type EventView } from "../helpers/api-client";
import { instanceStatus, waitUntilInstanceContainersGone } from "../helpers/docker";
import { pollUntil } from "../helpers/wait";
import { NODE_LONG_JOB } from "./fixtures";

const baseUrl = inject("baseUrl");
const api = new ApiClient(baseUrl);
const NAMESPACE = "default";

/** Longest wait for a condition of the platform (generous: cold starts on a shared, slow machine). */
const WAIT_MS = 120_000;
/**
 * Longest one race test may take: two cold starts, a few waits and Docker's confirmation, each
 * bounded by WAIT_MS, fit well inside it (the suite's default of 120 s does not).
 */
const RACE_TEST_TIMEOUT_MS = 600_000;
/** How long the blocking event would run: far longer than any test, it is always terminated. */
const BLOCKER_RUN_MS = 300_000;
/** The handler's first line (NODE_LONG_JOB prints it as soon as it runs). */
const FIRST_LINE = "tick";
/** The one log line of an event aborted before its handler ran: the platform's end line. */
const ABORTED_END_LINE = /^\[PLATFORM\] END RequestId: \S+ Status: ABORTED StatusCode: 499/;

type HoldPhase = "starting" | "ending";

/** A long job allowed one event at a time, so that a second event waits behind the first. */
function createSingleSlotJob(): Promise<string> {
  return api.createUniqueFunction(NAMESPACE, "race", {
    runtime: "Nodejs22",
    files: { "index.js": NODE_LONG_JOB },
    timeout: 300,
    maxConcurrency: 1,
  });
}

function terminate(requestId: string, body?: unknown) {
  return api.json<EventView & { error?: { code: string } }>(`/v1/events/${requestId}/terminate`, {
    method: "POST",
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
}

/** Calls a diagnostics route with the administrator pair; any answer but 200 throws with its body. */
async function diagnostics<T>(path: string, init: RequestInit = {}): Promise<T> {
  const response = await fetch(`${baseUrl}/_diagnostics${path}`, {
    ...init,
    headers: { ...ADMIN_HEADERS, "content-type": "application/json" },
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`${init.method ?? "GET"} ${path} answered ${response.status}: ${text}`);
  return JSON.parse(text) as T;
}

function holdPath(instanceId: string, requestId?: string): string {
  return `/instances/${encodeURIComponent(instanceId)}/holds${requestId ? `/${requestId}` : ""}`;
}

/** Sets a hold: the execution of requestId on instanceId will pause at `phase`. */
function setHold(instanceId: string, requestId: string, phase: HoldPhase) {
  return diagnostics(holdPath(instanceId), { method: "POST", body: JSON.stringify({ requestId, phase }) });
}

/** Waits until the execution of requestId is paused at its hold; answers whether it is. */
async function waitUntilHeld(instanceId: string, requestId: string): Promise<boolean> {
  const status = await pollUntil(
    () => diagnostics<{ held: boolean }>(holdPath(instanceId, requestId)),
    (hold) => hold.held,
    WAIT_MS,
  );
  return status.held;
}

/**
 * Releases the hold and waits until the paused execution has gone on past it (the instance removes
 * the hold then); answers whether the release was accepted and the hold is gone.
 */
async function releaseHold(instanceId: string, requestId: string): Promise<boolean> {
  const release = await diagnostics<{ released: boolean }>(holdPath(instanceId, requestId), { method: "DELETE" });
  const status = await pollUntil(
    () => diagnostics<{ phase: HoldPhase | null }>(holdPath(instanceId, requestId)),
    (hold) => hold.phase === null,
    WAIT_MS,
  );
  return release.released && status.phase === null;
}

/** Waits until the function's scheduler has nothing waiting and no busy slot; answers its counts. */
function waitUntilSchedulerIdle(functionName: string) {
  return pollUntil(
    () => diagnostics<{ pending: number; busy: number }>(`/schedulers/${NAMESPACE}/${functionName}`),
    (stats) => stats.pending === 0 && stats.busy === 0,
    WAIT_MS,
  );
}

async function logLines(requestId: string): Promise<string[]> {
  return (await api.logs(requestId)).map((record) => record.line);
}

/**
 * Starts an event that occupies the function's only slot and waits until its handler runs: any
 * later event of the function stays queued until the blocker is terminated. Answers the blocker's
 * RequestId and its instance (the slot every event of the function runs in).
 */
async function startBlocker(functionName: string): Promise<{ blocker: string; instanceId: string }> {
  const blocker = await api.invoke(NAMESPACE, functionName, { runMs: BLOCKER_RUN_MS });
  const running = await api.waitForEvent(blocker, (event) => event.phase === "running", WAIT_MS);
  if (!running.instanceId) throw new Error(`the running blocker has no instance: ${JSON.stringify(running)}`);
  return { blocker, instanceId: running.instanceId };
}

/**
 * Queues an event behind a blocker, sets a hold on it at `phase`, then frees the slot (forced
 * terminate of the blocker) and waits until the event is paused at the hold.
 */
async function holdEventAt(phase: HoldPhase, event: unknown) {
  const functionName = await createSingleSlotJob();
  const { blocker, instanceId } = await startBlocker(functionName);
  const requestId = await api.invoke(NAMESPACE, functionName, event);
  // The slot is busy: the event cannot have been claimed yet, so the hold is set before it can matter.
  expect((await api.event(requestId)).phase).toBe("queued");
  await setHold(instanceId, requestId, phase);
  expect((await terminate(blocker)).status).toBe(200);
  expect(await waitUntilHeld(instanceId, requestId)).toBe(true);
  return { functionName, instanceId, requestId };
}

describe("the diagnostics hold route", () => {
  it("refuses a hold that is not a RequestId and a known phase with 400, and sets nothing", async () => {
    const instanceId = `${NAMESPACE}/hold-input#0`;
    const requestId = crypto.randomUUID();
    const post = (body: string) =>
      fetch(`${baseUrl}/_diagnostics${holdPath(instanceId)}`, {
        method: "POST",
        headers: { ...ADMIN_HEADERS, "content-type": "application/json" },
        body,
      });
    for (const body of [
      "{phase",
      JSON.stringify({ requestId, phase: "running" }),
      JSON.stringify({ requestId: "not-a-uuid", phase: "starting" }),
      JSON.stringify({ requestId, phase: "starting", extra: true }),
      JSON.stringify({ phase: "ending" }),
    ]) {
      const response = await post(body);
      expect(response.status, body).toBe(400);
    }
    const badRead = await fetch(`${baseUrl}/_diagnostics${holdPath(instanceId, "not-a-uuid")}`, {
      headers: ADMIN_HEADERS,
    });
    expect(badRead.status).toBe(400);
    expect(await diagnostics(holdPath(instanceId, requestId))).toEqual({ requestId, phase: null, held: false });
    // Without administrator keys the route does not answer at all.
    const anonymous = await fetch(`${baseUrl}/_diagnostics${holdPath(instanceId, requestId)}`);
    expect(anonymous.status).toBe(401);
  });
});

describe("terminate races: one allowed outcome per window", { timeout: RACE_TEST_TIMEOUT_MS }, () => {
  it("queued: ends ABORTED 499 at once, and no container is ever started for the event", async () => {
    const functionName = await createSingleSlotJob();
    const { blocker, instanceId } = await startBlocker(functionName);
    const queued = await api.invoke(NAMESPACE, functionName, { runMs: BLOCKER_RUN_MS });
    // The scheduler has the event and cannot run it: the function's only slot is busy.
    const waiting = await pollUntil(
      () => diagnostics<{ pending: number; busy: number }>(`/schedulers/${NAMESPACE}/${functionName}`),
      (stats) => stats.pending === 1,
      WAIT_MS,
    );
    expect(waiting).toMatchObject({ pending: 1, busy: 1 });
    expect((await api.event(queued)).phase).toBe("queued");

    const response = await terminate(queued);
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      status: "ABORTED",
      statusCode: 499,
      instanceId: null,
      startedAt: null,
      containerId: null,
    });

    // Freeing the slot hands the aborted event to the instance, which must refuse to run it.
    expect((await terminate(blocker)).status).toBe(200);
    expect(await waitUntilSchedulerIdle(functionName)).toMatchObject({ pending: 0, busy: 0 });
    expect(await api.event(queued)).toMatchObject({
      status: "ABORTED",
      statusCode: 499,
      endedAt: response.body.endedAt,
      instanceId: null,
      startedAt: null,
    });
    const lines = await logLines(queued);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(ABORTED_END_LINE);
    // Docker itself: the slot's container (the blocker's, destroyed by its terminate) is gone, and
    // none was started for the aborted event.
    const instance = await instanceStatus(baseUrl, instanceId);
    expect(instance).toMatchObject({ containerRunning: false, requestId: null });
    expect(await waitUntilInstanceContainersGone(instance.durableObjectId)).toEqual([]);
  });

  it("starting: ends ABORTED 499 at once and the handler never runs", async () => {
    const { functionName, instanceId, requestId } = await holdEventAt("starting", { runMs: BLOCKER_RUN_MS });
    // Claimed, its container started, paused before the hand-over.
    expect(await api.event(requestId)).toMatchObject({ phase: "starting", instanceId, startedAt: null });

    const response = await terminate(requestId);
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ status: "ABORTED", statusCode: 499, startedAt: null, containerId: null });
    // At once: the instance gave the execution up and destroyed its container while still paused.
    const instance = await instanceStatus(baseUrl, instanceId);
    expect(instance).toMatchObject({ containerRunning: false, requestId: null });

    expect(await releaseHold(instanceId, requestId)).toBe(true);
    expect(await waitUntilSchedulerIdle(functionName)).toMatchObject({ pending: 0, busy: 0 });
    expect(await instanceStatus(baseUrl, instanceId)).toMatchObject({ containerRunning: false, requestId: null });
    expect(await waitUntilInstanceContainersGone(instance.durableObjectId)).toEqual([]);

    // The release did not start the handler: no first line, no START line, the same ending.
    expect(await api.event(requestId)).toMatchObject({
      status: "ABORTED",
      statusCode: 499,
      endedAt: response.body.endedAt,
      startedAt: null,
    });
    const lines = await logLines(requestId);
    expect(lines).not.toContain(FIRST_LINE);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(ABORTED_END_LINE);
  });

  it("running (forced): ends ABORTED 499 at once and the container is destroyed", async () => {
    const functionName = await createSingleSlotJob();
    const requestId = await api.invoke(NAMESPACE, functionName, { runMs: BLOCKER_RUN_MS });
    // The handler runs: it has printed its first line.
    const printed = await pollUntil(
      () => logLines(requestId),
      (lines) => lines.includes(FIRST_LINE),
      WAIT_MS,
    );
    expect(printed).toContain(FIRST_LINE);
    const running = await api.event(requestId);
    expect(running).toMatchObject({ status: "RUNNING", phase: "running" });
    const instance = await instanceStatus(baseUrl, running.instanceId ?? "");

    const response = await terminate(requestId);
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ status: "ABORTED", statusCode: 499, startedAt: running.startedAt });

    expect(await instanceStatus(baseUrl, running.instanceId ?? "")).toMatchObject({ containerRunning: false });
    expect(await waitUntilInstanceContainersGone(instance.durableObjectId)).toEqual([]);
    expect(await waitUntilSchedulerIdle(functionName)).toMatchObject({ pending: 0, busy: 0 });
    expect(await api.event(requestId)).toMatchObject({
      status: "ABORTED",
      statusCode: 499,
      endedAt: response.body.endedAt,
    });
  });

  it("ending (the handler returned, its outcome not yet reported): the terminate wins, ABORTED 499, and the late outcome changes nothing", async () => {
    const { functionName, instanceId, requestId } = await holdEventAt("ending", { runMs: 0 });
    // The handler returned; the event has not heard of it and still reads as running.
    const before = await api.event(requestId);
    expect(before).toMatchObject({ status: "RUNNING", phase: "running", instanceId });

    // Running, by the event's own state: a forced terminate ends it ABORTED 499 (TERMINATED).
    const response = await terminate(requestId);
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ status: "ABORTED", statusCode: 499, result: null });
    const again = await terminate(requestId);
    expect(again.status).toBe(409);
    expect(again.body.error?.code).toBe("EVENT_ALREADY_ENDED");

    // The held outcome ("returned") now reaches an event that has ended: it is ignored.
    expect(await releaseHold(instanceId, requestId)).toBe(true);
    expect(await waitUntilSchedulerIdle(functionName)).toMatchObject({ pending: 0, busy: 0 });
    const after = await api.event(requestId);
    expect(after).toMatchObject({
      status: "ABORTED",
      statusCode: 499,
      result: null,
      endedAt: response.body.endedAt,
    });
    const ends = (await logLines(requestId)).filter((line) => line.startsWith("[PLATFORM] END"));
    expect(ends).toHaveLength(1);
    expect(ends[0]).toMatch(ABORTED_END_LINE);
  });
});
