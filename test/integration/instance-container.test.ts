// InstanceContainer in the Workers pool, its container and agent replaced by a fake runner (see
// test/helpers/fake-agent-runner.ts): what an execution's records do to its event, a graceful
// terminate, and a container that dies under a running handler.
import { env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { STATUS_CODE } from "../../worker/events/event-machine";
import { eventStub, instanceName, instanceStub } from "../../worker/shared/objects";
import { executionOn, installFakeRunners, waitFor } from "../helpers/fake-agent-runner";
import { acceptedEvent, eventLogLines, eventView, uniqueFunction } from "../helpers/fake-dispatch";

let fakes: ReturnType<typeof installFakeRunners>;

beforeEach(() => {
  fakes = installFakeRunners();
});

afterEach(() => {
  fakes.uninstall();
});

/** A new event of a function of its own, handed to that function's slot 0 as its scheduler would. */
async function runOnSlotZero(payload: unknown = {}) {
  const { snapshot, scheduler } = uniqueFunction("inst", { timeoutSeconds: 60 });
  const { requestId } = await acceptedEvent(snapshot, payload);
  const name = instanceName(scheduler, 0);
  const answer = await instanceStub(env, name).runEvent({ requestId, schedulerName: scheduler, slot: 0 });
  const runner = fakes.of(name);
  const execution = await executionOn(runner, requestId);
  return { requestId, name, snapshot, runner, execution, answer };
}

/** Waits until the event's public status is `status`, and answers its view. */
async function viewOnce(requestId: string, status: string) {
  await waitFor(async () => (await eventView(requestId)).status === status, `event ${requestId} to be ${status}`);
  return eventView(requestId);
}

describe("InstanceContainer with a fake runner", () => {
  it("relays a running execution's log lines to the event as they come, then ends it with the handler's outcome", async () => {
    const { requestId, snapshot, runner, execution, answer } = await runOnSlotZero({ question: "answer?" });
    expect(answer).toEqual({ started: true });
    // The agent was asked to run the event's function with its payload and timeout.
    expect(execution.spec).toMatchObject({
      requestId,
      runtime: snapshot.runtime,
      handler: snapshot.handler,
      event: { question: "answer?" },
      timeoutMs: 61_000,
      context: { request_id: requestId, function_name: "fn", time_limit_in_ms: 60_000 },
    });
    const running = await viewOnce(requestId, "RUNNING");
    expect(running).toMatchObject({ phase: "running", containerId: "fake-boot-1", coldStart: true });

    execution.log("first line");
    execution.log("a warning", "stderr");
    // Live: the lines reach the event while the handler still runs.
    await waitFor(async () => (await eventLogLines(requestId)).includes("a warning"), "the log lines to be relayed");
    expect((await eventView(requestId)).status).toBe("RUNNING");

    execution.log("last line");
    execution.end({ kind: "returned", result: { answer: 42 } });
    const ended = await viewOnce(requestId, "FINISHED");
    expect(ended).toMatchObject({ statusCode: STATUS_CODE.SUCCESS, result: { answer: 42 } });
    expect(await eventLogLines(requestId)).toEqual(expect.arrayContaining(["first line", "a warning", "last line"]));
    // A normal end keeps the container for the slot's next event.
    expect(runner.running).toBe(true);
    expect(runner.destroys).toBe(0);
  });

  it("forwards a graceful terminate to the handler through the runner's signal, then ends the event ABORTED", async () => {
    const { requestId, runner, execution } = await runOnSlotZero();
    await viewOnce(requestId, "RUNNING");

    const terminated = await eventStub(env, requestId).terminate(true);
    expect(terminated.ok).toBe(true);
    expect(execution.signals).toBe(1);
    // SIGTERM only asks: the event runs on until the handler ends.
    expect((await eventView(requestId)).status).toBe("RUNNING");

    execution.log("stopping on SIGTERM");
    execution.end({ kind: "sigterm" });
    const ended = await viewOnce(requestId, "ABORTED");
    expect(ended.terminateRequestedAt).not.toBeNull();
    expect(await eventLogLines(requestId)).toContain("stopping on SIGTERM");
    // A terminated execution's container is never reused.
    await waitFor(() => runner.destroys === 1, "the container to be destroyed");
    expect(runner.running).toBe(false);
  });

  it("ends the event as a platform error when its container dies mid-execution, keeping the lines relayed before", async () => {
    const { requestId, name, runner, execution } = await runOnSlotZero();
    await viewOnce(requestId, "RUNNING");
    execution.log("working");
    await waitFor(async () => (await eventLogLines(requestId)).includes("working"), "the line to be relayed");

    runner.die();
    const ended = await viewOnce(requestId, "FAILED");
    expect(ended).toMatchObject({
      statusCode: STATUS_CODE.PLATFORM_ERROR,
      errorMessage: expect.stringContaining("the container exited during the execution"),
    });
    expect(await eventLogLines(requestId)).toContain("working");
    // The instance is free again.
    await waitFor(
      async () => (await instanceStub(env, name).currentRequestId()) === undefined,
      "the instance to let the event go",
    );
  });
});
