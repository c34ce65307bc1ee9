// Pause / resume dispatch per function (issue 15): the scheduler holds accepted events while its
// function's dispatch is paused (their status shows queuedReason "paused"), starts them in order on
// resume, leaves running events alone and keeps the pause across restarts; the REST routes
// (POST .../dispatch/pause and .../dispatch/resume) with GET of the function, and their attacks
// (another namespace, unknown function, malformed and oversized bodies, no credentials).
import { env, evictDurableObject, SELF } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MAX_DISPATCH_BODY_BYTES } from "../../worker/api/routes/dispatch";
import { withQueuedReason } from "../../worker/events/queued-reason";
import { parseNamespaceMaxContainers } from "../../worker/scheduling/namespace-quota-rules";
import { instanceName, namespaceQuotaStub, schedulerStub } from "../../worker/shared/objects";
import { executionOn, installFakeRunners, waitFor } from "../helpers/fake-agent-runner";
import { acceptedEvent, eventView as localView, uniqueFunction } from "../helpers/fake-dispatch";
import { zipBase64 } from "../helpers/zip";

const BASE = "https://platform.test";
/** The Worker's environment with its secrets (vitest.config.ts sets them). */
const workerEnv: Env = env;
const ADMIN = { authorization: `Bearer ${workerEnv.DEV_SECRET_ID ?? ""}:${workerEnv.DEV_SECRET_KEY ?? ""}` };
const ZIP = zipBase64({ "index.js": "exports.main_handler = async (event) => event;" });

let fakes: ReturnType<typeof installFakeRunners>;

beforeEach(() => {
  fakes = installFakeRunners();
});

afterEach(() => {
  fakes.uninstall();
});

/** A function of its own (namespace, scheduler) with `count` accepted events. */
async function functionWithEvents(count: number, maxConcurrency = 1) {
  const { snapshot, scheduler } = uniqueFunction("dp", { maxConcurrency });
  const events = [];
  for (let index = 0; index < count; index++) events.push(await acceptedEvent(snapshot, { index }));
  return { snapshot, scheduler, stub: schedulerStub(env, scheduler), events };
}

/** The event's status as GET of the event shows it: the object's local view, then its queued reason. */
async function eventView(requestId: string) {
  return withQueuedReason(env, await localView(requestId));
}

/** Waits until the scheduler counts `busy` busy slots and `pending` waiting events. */
async function settles(stub: ReturnType<typeof schedulerStub>, busy: number, pending: number) {
  await waitFor(async () => {
    const stats = await stub.stats();
    return stats.busy === busy && stats.pending === pending;
  }, `the scheduler to hold ${busy} busy slots and ${pending} waiting events`);
}

/** Waits until the event's status is `status`. */
async function becomes(requestId: string, status: string) {
  await waitFor(async () => (await eventView(requestId)).status === status, `event ${requestId} to be ${status}`);
}

describe("FunctionSchedulerObject paused", () => {
  it("holds events submitted while paused, queued with reason paused, and starts them in order on resume", async () => {
    const { scheduler, stub, events } = await functionWithEvents(2);
    const [first, second] = events;
    if (!first || !second) throw new Error("two events expected");
    const paused = await stub.pauseDispatch(scheduler);
    expect(paused).toMatchObject({ dispatchPaused: true, pendingEvents: 0 });

    await stub.submit([first.message, second.message]);
    await settles(stub, 0, 2);
    for (const event of events) {
      expect(await eventView(event.requestId)).toMatchObject({ phase: "queued", queuedReason: "paused" });
    }
    expect(fakes.of(instanceName(scheduler, 0)).starts).toBe(0);
    // A wake from the namespace's quota starts nothing while paused.
    expect(await stub.wake()).toEqual({ acquiring: false });

    expect(await stub.resumeDispatch()).toMatchObject({ dispatchPaused: false, pausedAt: null });
    // Oldest first, within the function's concurrency (1): the second waits on the first.
    const running = await executionOn(fakes.of(instanceName(scheduler, 0)), first.requestId);
    await becomes(first.requestId, "RUNNING");
    expect(await eventView(second.requestId)).toMatchObject({ phase: "queued", queuedReason: "concurrency" });
    running.end({ kind: "returned", result: "one" });
    await becomes(first.requestId, "FINISHED");
    const next = await executionOn(fakes.of(instanceName(scheduler, 0)), second.requestId);
    next.end({ kind: "returned", result: "two" });
    await becomes(second.requestId, "FINISHED");
    await settles(stub, 0, 0);
  });

  it("leaves a running event alone: it ends normally while the next one is held", async () => {
    const { scheduler, stub, events } = await functionWithEvents(2, 2);
    const [first, second] = events;
    if (!first || !second) throw new Error("two events expected");
    await stub.submit([first.message]);
    const running = await executionOn(fakes.of(instanceName(scheduler, 0)), first.requestId);
    await becomes(first.requestId, "RUNNING");

    await stub.pauseDispatch(scheduler);
    await stub.submit([second.message]);
    running.end({ kind: "returned", result: "done" });
    await becomes(first.requestId, "FINISHED");
    await settles(stub, 0, 1);
    expect(await eventView(second.requestId)).toMatchObject({ phase: "queued", queuedReason: "paused" });
    expect(fakes.of(instanceName(scheduler, 0)).starts).toBe(1);
    expect(fakes.of(instanceName(scheduler, 1)).starts).toBe(0);
    // The running event's status never carries a queue reason.
    expect((await eventView(first.requestId)).queuedReason).toBeNull();
  });

  it("is idempotent: a second pause keeps pausedAt, a second resume changes nothing", async () => {
    const { scheduler, stub } = await functionWithEvents(0);
    const first = await stub.pauseDispatch(scheduler);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const again = await stub.pauseDispatch(scheduler);
    expect(first.pausedAt).not.toBeNull();
    expect(again).toEqual(first);
    expect(await stub.resumeDispatch()).toEqual({ dispatchPaused: false, pausedAt: null, pendingEvents: 0 });
    expect(await stub.resumeDispatch()).toEqual({ dispatchPaused: false, pausedAt: null, pendingEvents: 0 });
  });

  it("stays paused across a restart of the scheduler, then resumes", async () => {
    const { scheduler, stub, events } = await functionWithEvents(1);
    const [only] = events;
    if (!only) throw new Error("one event expected");
    const paused = await stub.pauseDispatch(scheduler);
    await stub.submit([only.message]);
    await evictDurableObject(stub);

    const restarted = schedulerStub(env, scheduler);
    expect(await restarted.dispatchState()).toEqual({ ...paused, pendingEvents: 1 });
    // A redelivered dispatch after the restart is still held.
    await restarted.submit([only.message]);
    expect(fakes.of(instanceName(scheduler, 0)).starts).toBe(0);
    await restarted.resumeDispatch();
    const execution = await executionOn(fakes.of(instanceName(scheduler, 0)), only.requestId);
    execution.end({ kind: "returned", result: "done" });
    await becomes(only.requestId, "FINISHED");
  });

  it("tells a wait on the namespace's cap from a pause, and a paused scheduler takes no room the quota offers", async () => {
    const { snapshot, scheduler, stub, events } = await functionWithEvents(1);
    const [only] = events;
    if (!only) throw new Error("one event expected");
    const cap = parseNamespaceMaxContainers(env.NAMESPACE_MAX_CONTAINERS);
    const quota = namespaceQuotaStub(env, snapshot.namespace);
    // Another function of the namespace holds every container, all busy.
    const hog = `${snapshot.namespace}/hog`;
    await quota.acquire(
      hog,
      Array.from({ length: cap }, (_, slot) => ({ requestId: `hog-${slot}`, slot })),
      cap,
    );
    await stub.submit([only.message]);
    await waitFor(async () => (await stub.stats()).waitingOnNamespace, "the scheduler to wait on the namespace");
    expect(await eventView(only.requestId)).toMatchObject({ phase: "queued", queuedReason: "namespace-quota" });

    await stub.pauseDispatch(scheduler);
    expect(await eventView(only.requestId)).toMatchObject({ phase: "queued", queuedReason: "paused" });
    // A container of the namespace is freed while paused: the room is not taken here.
    await quota.releaseInstance(`${hog}#0`, "hog-0");
    // The quota drops a woken scheduler from its line only once it answers that it takes nothing.
    await waitFor(
      async () => !(await quota.snapshot()).waiters.some((waiter) => waiter.scheduler === scheduler),
      "the quota to wake the paused scheduler",
    );
    expect((await quota.snapshot()).leases.filter((lease) => lease.scheduler === scheduler)).toEqual([]);
    await settles(stub, 0, 1);
    expect(fakes.of(instanceName(scheduler, 0)).starts).toBe(0);

    await stub.resumeDispatch();
    const execution = await executionOn(fakes.of(instanceName(scheduler, 0)), only.requestId);
    execution.end({ kind: "returned", result: "done" });
    await becomes(only.requestId, "FINISHED");
  });

  it("keeps the event object's view a local read: queuedReason is null there, the status adds it", async () => {
    const { scheduler, stub, events } = await functionWithEvents(1);
    const [only] = events;
    if (!only) throw new Error("one event expected");
    await stub.pauseDispatch(scheduler);
    await stub.submit([only.message]);
    // The object does not ask the scheduler (another tenant's GET reaches it before the access check).
    expect(await localView(only.requestId)).toMatchObject({ phase: "queued", queuedReason: null });
    expect(await eventView(only.requestId)).toMatchObject({ phase: "queued", queuedReason: "paused" });
    await stub.resumeDispatch();
    const execution = await executionOn(fakes.of(instanceName(scheduler, 0)), only.requestId);
    execution.end({ kind: "returned", result: "done" });
    await becomes(only.requestId, "FINISHED");
  });

  it("terminates a queued event while paused as ever (it leaves the pending queue); resume runs only the others", async () => {
    const { scheduler, stub, events } = await functionWithEvents(2);
    const [first, second] = events;
    if (!first || !second) throw new Error("two events expected");
    await stub.pauseDispatch(scheduler);
    await stub.submit([first.message, second.message]);
    const terminated = await env.ASYNC_EVENT.get(env.ASYNC_EVENT.idFromName(first.requestId)).terminate(false);
    expect(terminated).toMatchObject({ ok: true, value: { status: "ABORTED" } });

    await stub.resumeDispatch();
    const execution = await executionOn(fakes.of(instanceName(scheduler, 0)), second.requestId);
    execution.end({ kind: "returned", result: "done" });
    await becomes(second.requestId, "FINISHED");
    expect(await eventView(first.requestId)).toMatchObject({ status: "ABORTED", queuedReason: null });
    // The terminated event left the pending queue at once: it was never handed to an instance.
    expect((await stub.stats()).claimsRefused).toBe(0);
  });
});

// REST: the routes with credentials, namespace scoping and bounded bodies.

interface Key {
  secretId: string;
  secretKey: string;
}
type Headers = Record<string, string>;
interface DispatchStateBody {
  namespace: string;
  functionName: string;
  dispatchPaused: boolean;
  pausedAt: string | null;
  pendingEvents: number;
}

let counter = 0;
/** A name unique to this run, valid as a namespace and as a function name. */
function unique(prefix: string): string {
  counter += 1;
  return `${prefix}${Date.now().toString(36)}${counter}`;
}

function bearer(key: Key): Headers {
  return { authorization: `Bearer ${key.secretId}:${key.secretKey}` };
}

function call(path: string, init: RequestInit & { headers?: Headers } = {}): Promise<Response> {
  return SELF.fetch(`${BASE}${path}`, { ...init, headers: { ...ADMIN, ...(init.headers ?? {}) } });
}

/** A namespace with one async function and a key scoped to the namespace. */
async function setUp(): Promise<{ namespace: string; name: string; key: Key }> {
  const namespace = unique("dp");
  const name = unique("fn");
  const created = await call(`/v1/namespaces/${namespace}/functions`, {
    method: "POST",
    body: JSON.stringify({ name, runtime: "Nodejs22", code: { zipFile: ZIP }, qpsLimit: 100_000 }),
  });
  expect(created.status).toBe(201);
  const keyResponse = await call("/v1/admin/credentials", {
    method: "POST",
    body: JSON.stringify({ namespaces: [namespace], description: "dispatch pause suite" }),
  });
  expect(keyResponse.status).toBe(201);
  return { namespace, name, key: (await keyResponse.json()) as Key };
}

function dispatchCall(
  namespace: string,
  name: string,
  action: "pause" | "resume",
  headers: Headers,
  body?: BodyInit,
): Promise<Response> {
  return call(`/v1/namespaces/${namespace}/functions/${name}/dispatch/${action}`, {
    method: "POST",
    headers: { ...headers, "content-type": "application/json" },
    ...(body !== undefined ? { body } : {}),
  });
}

async function getFunction(namespace: string, name: string) {
  const response = await call(`/v1/namespaces/${namespace}/functions/${name}`);
  expect(response.status).toBe(200);
  return (await response.json()) as { dispatchPaused: boolean; pausedAt: string | null };
}

/** The error's code and message (its requestId differs per request). */
async function errorOf(response: Response): Promise<{ code: string; message: string }> {
  const { code, message } = ((await response.json()) as { error: { code: string; message: string } }).error;
  return { code, message };
}

describe("POST /v1/namespaces/{namespace}/functions/{name}/dispatch/pause and /resume", () => {
  it("pauses: invocations are accepted and stay queued with reason paused; GET of the function shows it; resume clears it", async () => {
    const { namespace, name, key } = await setUp();
    expect(await getFunction(namespace, name)).toMatchObject({ dispatchPaused: false, pausedAt: null });

    const paused = await dispatchCall(namespace, name, "pause", bearer(key));
    expect(paused.status).toBe(200);
    const pausedBody = (await paused.json()) as DispatchStateBody;
    expect(pausedBody).toMatchObject({ namespace, functionName: name, dispatchPaused: true });
    expect(Date.parse(pausedBody.pausedAt ?? "")).toBeLessThanOrEqual(Date.now());
    expect(await getFunction(namespace, name)).toEqual(
      expect.objectContaining({ dispatchPaused: true, pausedAt: pausedBody.pausedAt }),
    );
    // Idempotent, `{}` accepted as the body.
    const again = await dispatchCall(namespace, name, "pause", bearer(key), "{}");
    expect(await again.json()).toMatchObject({ dispatchPaused: true, pausedAt: pausedBody.pausedAt });

    const invoked = await call(`/v1/namespaces/${namespace}/functions/${name}/invocations`, {
      method: "POST",
      headers: bearer(key),
      body: "{}",
    });
    expect(invoked.status).toBe(202);
    const { requestId } = (await invoked.json()) as { requestId: string };
    const status = await call(`/v1/events/${requestId}`, { headers: bearer(key) });
    expect(await status.json()).toMatchObject({ status: "RUNNING", phase: "queued", queuedReason: "paused" });
    // A queued event of a paused function is terminated as ever (no container is started here).
    const terminated = await call(`/v1/events/${requestId}/terminate`, { method: "POST", headers: bearer(key) });
    expect(await terminated.json()).toMatchObject({ status: "ABORTED" });

    const resumed = await dispatchCall(namespace, name, "resume", bearer(key));
    expect(resumed.status).toBe(200);
    expect(await resumed.json()).toMatchObject({ dispatchPaused: false, pausedAt: null });
    expect(await getFunction(namespace, name)).toMatchObject({ dispatchPaused: false, pausedAt: null });
    const resumedAgain = await dispatchCall(namespace, name, "resume", bearer(key), "");
    expect(await resumedAgain.json()).toMatchObject({ dispatchPaused: false, pausedAt: null });
  });

  it("answers another namespace's function NOT_FOUND, exactly as an unknown one, and pauses nothing", async () => {
    const own = await setUp();
    const victim = await setUp();
    for (const action of ["pause", "resume"] as const) {
      const foreign = await dispatchCall(victim.namespace, victim.name, action, bearer(own.key));
      const unknown = await dispatchCall(victim.namespace, unique("nofn"), action, bearer(own.key));
      expect(foreign.status).toBe(404);
      expect(unknown.status).toBe(404);
      const foreignError = await errorOf(foreign);
      expect(foreignError).toEqual(await errorOf(unknown));
      expect(foreignError.code).toBe("NOT_FOUND");
    }
    expect(await getFunction(victim.namespace, victim.name)).toMatchObject({ dispatchPaused: false });
  });

  it("answers an unknown function of the caller's namespace FUNCTION_NOT_FOUND", async () => {
    const { namespace, key } = await setUp();
    for (const action of ["pause", "resume"] as const) {
      const response = await dispatchCall(namespace, unique("nofn"), action, bearer(key));
      expect(response.status).toBe(404);
      expect((await errorOf(response)).code).toBe("FUNCTION_NOT_FOUND");
    }
  });

  it("refuses malformed and oversized bodies, a malformed name and missing credentials with a 4xx, pausing nothing", async () => {
    const { namespace, name, key } = await setUp();
    const cases: { response: Response; status: number; code: string }[] = [
      {
        response: await dispatchCall(namespace, name, "pause", bearer(key), "{nope"),
        status: 400,
        code: "INVALID_JSON",
      },
      {
        response: await dispatchCall(namespace, name, "pause", bearer(key), '{"force":true}'),
        status: 400,
        code: "INVALID_PARAMETER",
      },
      {
        response: await dispatchCall(namespace, name, "pause", bearer(key), "[]"),
        status: 400,
        code: "INVALID_PARAMETER",
      },
      {
        response: await dispatchCall(
          namespace,
          name,
          "pause",
          bearer(key),
          `{"a":"${"x".repeat(MAX_DISPATCH_BODY_BYTES)}"}`,
        ),
        status: 413,
        code: "PAYLOAD_TOO_LARGE",
      },
      {
        response: await dispatchCall(namespace, "-bad-", "pause", bearer(key)),
        status: 400,
        code: "INVALID_PARAMETER",
      },
      {
        response: await SELF.fetch(`${BASE}/v1/namespaces/${namespace}/functions/${name}/dispatch/pause`, {
          method: "POST",
        }),
        status: 401,
        code: "UNAUTHORIZED",
      },
      {
        response: await call(`/v1/namespaces/${namespace}/functions/${name}/dispatch/pause`, { headers: bearer(key) }),
        status: 404,
        code: "NOT_FOUND",
      },
    ];
    for (const { response, status, code } of cases) {
      expect(response.status).toBe(status);
      expect((await errorOf(response)).code).toBe(code);
    }
    expect(await getFunction(namespace, name)).toMatchObject({ dispatchPaused: false });
  });

  it("resumes a paused function when it is deleted: re-created under the same name it dispatches", async () => {
    const { namespace, name, key } = await setUp();
    expect((await dispatchCall(namespace, name, "pause", bearer(key))).status).toBe(200);
    expect((await call(`/v1/namespaces/${namespace}/functions/${name}`, { method: "DELETE" })).status).toBe(204);
    const recreated = await call(`/v1/namespaces/${namespace}/functions`, {
      method: "POST",
      body: JSON.stringify({ name, runtime: "Nodejs22", code: { zipFile: ZIP } }),
    });
    expect(recreated.status).toBe(201);
    expect(await getFunction(namespace, name)).toMatchObject({ dispatchPaused: false, pausedAt: null });
  });
});
