// Graceful terminate options and the deadline warning (issue 15): a grace period per request, the
// terminate's outcome in the event (terminationMode, signalDeliveredAt, endedWithinGrace), and the
// function's deadlineWarningSeconds (SIGTERM before the timeout). The instance runs on a fake
// runner (test/helpers/fake-agent-runner.ts); the REST and Tencent checks go through the Worker.
import { env, runDurableObjectAlarm, runInDurableObject, SELF } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GRACEFUL_TERMINATE_TIMEOUT_MS, MAX_GRACE_SECONDS } from "../../worker/events/event-deadlines";
import { STATUS_CODE } from "../../worker/events/event-machine";
import type { FunctionSnapshot } from "../../worker/functions/model";
import { MAX_DEADLINE_WARNING_SECONDS } from "../../worker/functions/model";
import { IDLE_CONTAINER_MS } from "../../worker/instances/instance-container";
import { eventStub, instanceName, instanceStub } from "../../worker/shared/objects";
import { executionOn, installFakeRunners, waitFor } from "../helpers/fake-agent-runner";
import { acceptedEvent, eventLogLines, eventView, uniqueFunction } from "../helpers/fake-dispatch";
import { zipBase64 } from "../helpers/zip";

const BASE = "https://platform.test";
const workerEnv: Env = env;
const ADMIN = { authorization: `Bearer ${workerEnv.DEV_SECRET_ID ?? ""}:${workerEnv.DEV_SECRET_KEY ?? ""}` };
const ZIP = zipBase64({ "index.js": "exports.main_handler = async () => 'ok';" });

let fakes: ReturnType<typeof installFakeRunners>;

beforeEach(() => {
  fakes = installFakeRunners();
});

afterEach(() => {
  fakes.uninstall();
});

/** A new event of a function of its own, run on that function's slot 0 as its scheduler would. */
async function runOnSlotZero(overrides: Partial<FunctionSnapshot> = {}) {
  const { snapshot, scheduler } = uniqueFunction("grace", { timeoutSeconds: 60, ...overrides });
  const { requestId } = await acceptedEvent(snapshot, {});
  const name = instanceName(scheduler, 0);
  await instanceStub(env, name).runEvent({ requestId, schedulerName: scheduler, slot: 0 });
  const runner = fakes.of(name);
  const execution = await executionOn(runner, requestId);
  await waitFor(async () => (await eventView(requestId)).status === "RUNNING", "the event to run");
  return { requestId, name, runner, execution };
}

/** Waits until the event's public status is `status`, and answers its view. */
async function viewOnce(requestId: string, status: string) {
  await waitFor(async () => (await eventView(requestId)).status === status, `event ${requestId} to be ${status}`);
  return eventView(requestId);
}

/** The InstanceContainer internals the warning-race test reaches into. */
interface WarningInternals {
  current: { requestId: string; warnAt?: number } | undefined;
  eventStub: (requestId: string) => unknown;
  /** Ends still handing their slot over (the idle alarm is set once that is answered). */
  handingOver: number;
}

let counter = 0;
function unique(prefix: string): string {
  counter += 1;
  return `${prefix}${Date.now().toString(36)}${counter}`;
}

function call(path: string, init: RequestInit = {}, headers: Record<string, string> = ADMIN): Promise<Response> {
  return SELF.fetch(`${BASE}${path}`, { ...init, headers: { ...headers, ...(init.headers ?? {}) } });
}

async function errorOf(response: Response): Promise<{ code: string; message: string }> {
  return ((await response.json()) as { error: { code: string; message: string } }).error;
}

async function createFunction(namespace: string, body: Record<string, unknown>): Promise<Response> {
  return call(`/v1/namespaces/${namespace}/functions`, {
    method: "POST",
    body: JSON.stringify({ runtime: "Nodejs22", code: { zipFile: ZIP }, ...body }),
  });
}

/** A queued event of a new function in `namespace` (nothing runs it in this pool). */
async function queuedEvent(namespace: string): Promise<string> {
  const name = unique("fn");
  expect((await createFunction(namespace, { name })).status).toBe(201);
  const invoked = await call(`/v1/namespaces/${namespace}/functions/${name}/invocations`, {
    method: "POST",
    body: "{}",
  });
  expect(invoked.status).toBe(202);
  return ((await invoked.json()) as { requestId: string }).requestId;
}

function terminate(requestId: string, body: string, headers: Record<string, string> = ADMIN): Promise<Response> {
  return call(`/v1/events/${requestId}/terminate`, { method: "POST", body }, headers);
}

async function tencent(action: string, params: Record<string, unknown>) {
  const response = await call("/", {
    method: "POST",
    headers: { "content-type": "application/json", "x-tc-action": action, "x-tc-version": "2018-04-16" },
    body: JSON.stringify(params),
  });
  return ((await response.json()) as { Response: Record<string, unknown> & { Error?: { Code: string } } }).Response;
}

describe("graceful terminate options on a running event", () => {
  it("reports a graceful terminate the handler answered within its grace period: mode, delivery, within grace", async () => {
    const { requestId, execution } = await runOnSlotZero();
    const answered = await eventStub(env, requestId).terminate(true, 5_000);
    expect(answered.ok).toBe(true);
    expect(execution.signals).toBe(1);
    const terminating = await eventView(requestId);
    expect(terminating).toMatchObject({ status: "RUNNING", terminationMode: "graceful", endedWithinGrace: null });
    expect(terminating.signalDeliveredAt).not.toBeNull();

    execution.end({ kind: "returned", result: "checkpointed" });
    const ended = await viewOnce(requestId, "ABORTED");
    expect(ended).toMatchObject({
      statusCode: STATUS_CODE.SUCCESS,
      terminationMode: "graceful",
      endedWithinGrace: true,
      result: "checkpointed",
    });
    expect(Date.parse(ended.signalDeliveredAt ?? "")).toBeGreaterThanOrEqual(
      Date.parse(ended.terminateRequestedAt ?? ""),
    );
  });

  it("stops a handler still running when its requested grace period runs out: 499, not within grace", async () => {
    const { requestId, runner } = await runOnSlotZero();
    await eventStub(env, requestId).terminate(true, 1_000);
    const stub = eventStub(env, requestId);
    // Before the grace period's end the alarm changes nothing.
    await runDurableObjectAlarm(stub);
    expect((await eventView(requestId)).status).toBe("RUNNING");
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await runDurableObjectAlarm(stub);
    const ended = await viewOnce(requestId, "ABORTED");
    expect(ended).toMatchObject({
      statusCode: STATUS_CODE.TERMINATED,
      terminationMode: "graceful",
      endedWithinGrace: false,
    });
    expect(Date.parse(ended.endedAt ?? "") - Date.parse(ended.terminateRequestedAt ?? "")).toBeLessThan(
      GRACEFUL_TERMINATE_TIMEOUT_MS,
    );
    await waitFor(() => runner.destroys === 1, "the container to be destroyed");
  });

  it("counts a forced terminate during the grace period as the platform stopping the handler", async () => {
    const { requestId } = await runOnSlotZero();
    await eventStub(env, requestId).terminate(true, 60_000);
    expect((await eventStub(env, requestId).terminate(false)).ok).toBe(true);
    expect(await eventView(requestId)).toMatchObject({
      status: "ABORTED",
      statusCode: STATUS_CODE.TERMINATED,
      terminationMode: "graceful",
      endedWithinGrace: false,
    });
  });

  it("reports a forced terminate as forced, with no signal and no grace verdict", async () => {
    const { requestId, execution } = await runOnSlotZero();
    expect((await eventStub(env, requestId).terminate(false)).ok).toBe(true);
    expect(execution.signals).toBe(0);
    expect(await eventView(requestId)).toMatchObject({
      status: "ABORTED",
      terminationMode: "forced",
      signalDeliveredAt: null,
      endedWithinGrace: null,
    });
  });

  it("leaves the terminate fields null on an event nobody terminated", async () => {
    const { requestId, execution } = await runOnSlotZero();
    execution.end({ kind: "returned", result: 1 });
    expect(await viewOnce(requestId, "FINISHED")).toMatchObject({
      terminationMode: null,
      signalDeliveredAt: null,
      endedWithinGrace: null,
    });
  });
});

describe("the deadline warning", () => {
  it("sends SIGTERM the configured seconds before the timeout, logs it, and lets a returning handler finish", async () => {
    const { requestId, runner, execution } = await runOnSlotZero({ timeoutSeconds: 4, deadlineWarningSeconds: 3 });
    // Due 1 s after the start: the instance's alarm sends it.
    await waitFor(() => execution.signals === 1, "the deadline warning's SIGTERM");
    await waitFor(
      async () => (await eventLogLines(requestId)).some((line) => line.includes("Deadline warning")),
      "the deadline warning's platform line",
    );
    expect(await eventLogLines(requestId)).toContain(
      "[PLATFORM] Deadline warning: SIGTERM sent, 3 s before the timeout (the handler runs on until it returns or the timeout ends it)",
    );
    // Only a warning: the event runs on.
    expect(await eventView(requestId)).toMatchObject({ status: "RUNNING", terminationMode: null });

    execution.end({ kind: "returned", result: "saved" });
    const ended = await viewOnce(requestId, "FINISHED");
    expect(ended).toMatchObject({ statusCode: STATUS_CODE.SUCCESS, result: "saved", terminationMode: null });
    // The handler got SIGTERM: its container is not reused.
    await waitFor(() => runner.destroys === 1, "the container to be destroyed");
    expect(execution.signals).toBe(1);
  });

  it("ends a handler killed by the warning's SIGTERM (no listener) as a process exit, not a platform stop", async () => {
    const { requestId, execution } = await runOnSlotZero({ timeoutSeconds: 3, deadlineWarningSeconds: 2 });
    await waitFor(() => execution.signals === 1, "the deadline warning's SIGTERM");
    execution.end({ kind: "sigterm" });
    expect(await viewOnce(requestId, "FAILED")).toMatchObject({
      statusCode: STATUS_CODE.USER_PROCESS_EXIT,
      errorMessage: "User process exit when running (SIGTERM of the deadline warning not handled)",
    });
  });

  it("sends no second SIGTERM when a graceful terminate already sent one", async () => {
    const { requestId, execution } = await runOnSlotZero({ timeoutSeconds: 3, deadlineWarningSeconds: 2 });
    expect((await eventStub(env, requestId).terminate(true, 30_000)).ok).toBe(true);
    expect(execution.signals).toBe(1);
    // Past the warning's time (1 s after the start).
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(execution.signals).toBe(1);
    expect((await eventLogLines(requestId)).some((line) => line.includes("Deadline warning"))).toBe(false);
  });

  it("stops the alarm after the warning when the execution ended meanwhile, keeping the idle alarm its end set", async () => {
    const { requestId, name, execution } = await runOnSlotZero({ timeoutSeconds: 60, deadlineWarningSeconds: 3 });
    const alarmAt = await runInDurableObject(instanceStub(env, name), async (instance, state) => {
      const object = instance as unknown as WarningInternals;
      const live = object.current;
      if (live?.requestId !== requestId) throw new Error("the execution is not current");
      live.warnAt = Date.now() - 1; // The warning is due now.
      const original = object.eventStub;
      // While the warning's log line is written, the handler returns and the relay ends the execution.
      object.eventStub = (_id: string) => {
        object.eventStub = original;
        return {
          noteDeadlineWarning: async () => {
            execution.end({ kind: "returned", result: "done" });
            await waitFor(() => object.current === undefined, "the execution to end during the warning");
          },
        };
      };
      await instance.alarm();
      // The end sets the idle alarm once its release is answered (no next event here).
      await waitFor(() => object.handingOver === 0, "the end to hand its slot back");
      return state.storage.getAlarm();
    });
    await viewOnce(requestId, "FINISHED");
    // The end's idle alarm (IDLE_CONTAINER_MS), not a relay check of the ended execution.
    expect(alarmAt ?? 0).toBeGreaterThan(Date.now() + IDLE_CONTAINER_MS - 60_000);
    expect(execution.signals).toBe(0);
  });

  it("sends nothing when the warning is off", async () => {
    const { requestId, execution } = await runOnSlotZero({ timeoutSeconds: 2, deadlineWarningSeconds: 0 });
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(execution.signals).toBe(0);
    expect((await eventLogLines(requestId)).some((line) => line.includes("Deadline warning"))).toBe(false);
  });
});

describe("terminate request options over REST", () => {
  it("aborts a queued event at once on a graceful request with graceSeconds: forced, no signal", async () => {
    const requestId = await queuedEvent(unique("gq"));
    const response = await terminate(requestId, JSON.stringify({ graceful: true, graceSeconds: 2 }));
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      status: "ABORTED",
      statusCode: STATUS_CODE.TERMINATED,
      terminationMode: "forced",
      signalDeliveredAt: null,
      endedWithinGrace: null,
    });
  });

  it("refuses a malformed or out-of-bounds graceSeconds with 400, leaving the event as it was", async () => {
    const requestId = await queuedEvent(unique("gb"));
    const bodies = [
      { graceful: true, graceSeconds: 0 },
      { graceful: true, graceSeconds: -1 },
      { graceful: true, graceSeconds: 1.5 },
      { graceful: true, graceSeconds: MAX_GRACE_SECONDS + 1 },
      { graceful: true, graceSeconds: "2" },
      { graceful: true, graceSeconds: null },
      { graceSeconds: 2 },
      { graceful: false, graceSeconds: 2 },
    ];
    for (const body of bodies) {
      const response = await terminate(requestId, JSON.stringify(body));
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect((await errorOf(response)).message, JSON.stringify(body)).toMatch(/graceSeconds/);
    }
    expect((await (await call(`/v1/events/${requestId}`)).json()) as { status: string }).toMatchObject({
      status: "RUNNING",
      terminationMode: null,
    });
  });

  it("refuses an oversized terminate body with 413", async () => {
    const requestId = await queuedEvent(unique("go"));
    const response = await terminate(
      requestId,
      JSON.stringify({ graceful: true, graceSeconds: 2, pad: "x".repeat(5_000) }),
    );
    expect(response.status).toBe(413);
    expect((await (await call(`/v1/events/${requestId}`)).json()) as { status: string }).toMatchObject({
      status: "RUNNING",
    });
  });

  it("answers another namespace's event exactly as an unknown one, and does not terminate it", async () => {
    const victim = unique("gv");
    const requestId = await queuedEvent(victim);
    const created = await call("/v1/admin/credentials", {
      method: "POST",
      body: JSON.stringify({ namespaces: [unique("ga")], description: "grace options" }),
    });
    expect(created.status).toBe(201);
    const key = (await created.json()) as { secretId: string; secretKey: string };
    const attacker = { authorization: `Bearer ${key.secretId}:${key.secretKey}` };
    const body = JSON.stringify({ graceful: true, graceSeconds: 2 });
    const foreign = await terminate(requestId, body, attacker);
    const unknown = await terminate(crypto.randomUUID(), body, attacker);
    expect(foreign.status).toBe(404);
    expect(unknown.status).toBe(404);
    expect((await errorOf(foreign)).code).toBe((await errorOf(unknown)).code);
    expect((await (await call(`/v1/events/${requestId}`)).json()) as { status: string }).toMatchObject({
      status: "RUNNING",
      terminationMode: null,
    });
  });
});

describe("deadlineWarningSeconds in the function's configuration", () => {
  it("stores it on create and update, shows it, and carries it into the invoked event's snapshot", async () => {
    const namespace = unique("dw");
    const name = unique("fn");
    const created = await createFunction(namespace, { name, timeout: 10, deadlineWarningSeconds: 4 });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ timeout: 10, deadlineWarningSeconds: 4 });
    const patched = await call(`/v1/namespaces/${namespace}/functions/${name}`, {
      method: "PATCH",
      body: JSON.stringify({ deadlineWarningSeconds: 9 }),
    });
    expect(patched.status).toBe(200);
    expect(await patched.json()).toMatchObject({ deadlineWarningSeconds: 9 });
    const off = await createFunction(namespace, { name: unique("fn") });
    expect(await off.json()).toMatchObject({ deadlineWarningSeconds: 0 });
    // Published versions keep it.
    const published = await call(`/v1/namespaces/${namespace}/functions/${name}/versions`, {
      method: "POST",
      body: "{}",
    });
    expect(published.status).toBe(201);
    const { version } = (await published.json()) as { version: string };
    const frozen = await call(`/v1/namespaces/${namespace}/functions/${name}/versions/${version}`);
    expect(frozen.status).toBe(200);
    expect(await frozen.json()).toMatchObject({ function: { deadlineWarningSeconds: 9 } });
  });

  it("refuses a warning not less than the timeout, or one a shorter timeout would leave too late, changing nothing", async () => {
    const namespace = unique("dx");
    const name = unique("fn");
    const equal = await createFunction(namespace, { name, timeout: 5, deadlineWarningSeconds: 5 });
    expect(equal.status).toBe(400);
    expect((await errorOf(equal)).message).toMatch(/deadlineWarningSeconds: 5 s is not less than the timeout \(5 s\)/);
    expect((await createFunction(namespace, { name, timeout: 5, deadlineWarningSeconds: 4 })).status).toBe(201);
    const path = `/v1/namespaces/${namespace}/functions/${name}`;
    for (const body of [
      { timeout: 4 },
      { deadlineWarningSeconds: 5 },
      { deadlineWarningSeconds: -1 },
      { deadlineWarningSeconds: 1.5 },
      { deadlineWarningSeconds: "2" },
      { deadlineWarningSeconds: MAX_DEADLINE_WARNING_SECONDS + 1 },
    ]) {
      const response = await call(path, { method: "PATCH", body: JSON.stringify(body) });
      expect(response.status, JSON.stringify(body)).toBe(400);
    }
    expect(await (await call(path)).json()).toMatchObject({ timeout: 5, deadlineWarningSeconds: 4 });
    // Shortening both at once is fine.
    const both = await call(path, { method: "PATCH", body: JSON.stringify({ timeout: 2, deadlineWarningSeconds: 1 }) });
    expect(both.status).toBe(200);
  });

  it("answers another namespace's function as an unknown one when a scoped key sets the warning", async () => {
    const victim = unique("dv");
    const name = unique("fn");
    expect((await createFunction(victim, { name, timeout: 10 })).status).toBe(201);
    const created = await call("/v1/admin/credentials", {
      method: "POST",
      body: JSON.stringify({ namespaces: [unique("da")], description: "deadline warning" }),
    });
    const key = (await created.json()) as { secretId: string; secretKey: string };
    const attacker = { authorization: `Bearer ${key.secretId}:${key.secretKey}` };
    const response = await call(
      `/v1/namespaces/${victim}/functions/${name}`,
      { method: "PATCH", body: JSON.stringify({ deadlineWarningSeconds: 3 }) },
      attacker,
    );
    expect(response.status).toBe(404);
    expect(await (await call(`/v1/namespaces/${victim}/functions/${name}`)).json()).toMatchObject({
      deadlineWarningSeconds: 0,
    });
  });

  it("takes DeadlineWarningSeconds as a Tencent extension parameter and shows it in GetFunction", async () => {
    const namespace = unique("dt");
    const name = unique("fn");
    const created = await tencent("CreateFunction", {
      FunctionName: name,
      Namespace: namespace,
      Runtime: "Nodejs22",
      Code: { ZipFile: ZIP },
      Timeout: 20,
      DeadlineWarningSeconds: 5,
    });
    expect(created.Error).toBeUndefined();
    expect(await tencent("GetFunction", { FunctionName: name, Namespace: namespace })).toMatchObject({
      Timeout: 20,
      DeadlineWarningSeconds: 5,
    });
    const refused = await tencent("UpdateFunctionConfiguration", {
      FunctionName: name,
      Namespace: namespace,
      DeadlineWarningSeconds: 20,
    });
    expect(refused.Error?.Code).toMatch(/^InvalidParameter/);
    const wrongType = await tencent("UpdateFunctionConfiguration", {
      FunctionName: name,
      Namespace: namespace,
      DeadlineWarningSeconds: "5",
    });
    // A parameter of the wrong type is refused as the endpoint refuses any (parseParams).
    expect(wrongType.Error?.Code).toMatch(/^(InvalidParameter|MissingParameter)/);
    expect(await tencent("GetFunction", { FunctionName: name, Namespace: namespace })).toMatchObject({
      DeadlineWarningSeconds: 5,
    });
  });
});
