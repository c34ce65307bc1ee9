// Progress reporting against the running platform and real containers: `context.progress(percent,
// message)` in a Node.js and a Python handler shows in the event's status while it runs, in its list
// row (after the index throttle), on its live-log stream, and the final status keeps the last one.
// And the deadline warning is an entry of the event's timeline.
import { beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient, type EventView, followLogs, type LogStreamEvent } from "../helpers/api-client";
import { SIGTERM_NODE_HANDLER } from "../helpers/sigterm-handlers";

const api = new ApiClient(inject("baseUrl"));
const NAMESPACE = "default";
/** Longest wait for an event to reach a state (generous: the machine is shared). */
const WAIT_MS = 60_000;

interface Progress {
  percent: number;
  message: string;
  at: string;
}
type ProgressView = EventView & { progress: Progress | null; timeline: { kind: string; detail: string | null }[] };
interface ListedRow {
  requestId: string;
  status: string;
  progress: Progress | null;
}

/** Three steps with pauses (the last long enough for the list's throttled index write), then 100. */
const NODE_PROGRESS_HANDLER = `
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
exports.main_handler = async (event, context) => {
  context.progress(25, "step 1 of 3");
  await sleep(2500);
  context.progress(50, "step 2 of 3");
  await sleep(2500);
  context.progress(75, "step 3 of 3");
  console.log("working on step 3");
  await sleep(event.lastStepMs ?? 8000);
  context.progress(100, "done");
  return "ok";
};
`;

const PYTHON_PROGRESS_HANDLER = `
import time

def main_handler(event, context):
    context.progress(40, "half way there")
    time.sleep(0.5)
    return "ok"
`;

let nodeFunction = "";
let pythonFunction = "";
let warnedFunction = "";

beforeAll(async () => {
  [nodeFunction, pythonFunction, warnedFunction] = await Promise.all([
    api.createUniqueFunction(NAMESPACE, "progress", {
      runtime: "Nodejs22",
      files: { "index.js": NODE_PROGRESS_HANDLER },
      timeout: 60,
    }),
    api.createUniqueFunction(NAMESPACE, "progresspy", {
      runtime: "Python3.11",
      files: { "index.py": PYTHON_PROGRESS_HANDLER },
      timeout: 30,
    }),
    api.createUniqueFunction(NAMESPACE, "deadlinetl", {
      runtime: "Nodejs22",
      files: { "index.js": SIGTERM_NODE_HANDLER },
      timeout: 6,
      deadlineWarningSeconds: 3,
    }),
  ]);
}, WAIT_MS);

async function statusOf(requestId: string): Promise<ProgressView> {
  return (await api.event(requestId)) as ProgressView;
}

async function listRow(functionName: string, requestId: string): Promise<ListedRow | undefined> {
  const page = await api.json<{ events: ListedRow[] }>(
    `/v1/namespaces/${NAMESPACE}/functions/${functionName}/events?limit=100`,
  );
  return page.body.events.find((row) => row.requestId === requestId);
}

describe.concurrent("progress reporting (real containers)", () => {
  it("shows a Node.js handler's steps in its status, list row and live stream; the end keeps the last", async () => {
    const requestId = await api.invoke(NAMESPACE, nodeFunction, {});
    const streamed: LogStreamEvent[] = [];
    const following = followLogs(api, requestId, { onEvent: (event) => streamed.push(event) });

    // While it runs, the status shows an intermediate step.
    await expect
      .poll(
        async () => {
          const event = await statusOf(requestId);
          return event.status === "RUNNING" && (event.progress?.percent ?? 0) >= 25 ? event.progress : undefined;
        },
        { timeout: WAIT_MS, interval: 200 },
      )
      .toMatchObject({ message: expect.stringMatching(/^step [123] of 3$/) });
    const during = await statusOf(requestId);
    expect(Number.isFinite(Date.parse(during.progress?.at ?? ""))).toBe(true);

    // The list row gets it from the throttled index write, still while the event runs.
    await expect
      .poll(
        async () => {
          const row = await listRow(nodeFunction, requestId);
          return row?.status === "RUNNING" ? row.progress?.percent : undefined;
        },
        { timeout: 20_000, interval: 500 },
      )
      .toBeOneOf([25, 50, 75]);

    const followed = await following;
    expect(followed.end?.data).toMatchObject({ status: "FINISHED" });
    const done = await statusOf(requestId);
    expect(done.status).toBe("FINISHED");
    expect(done.progress).toMatchObject({ percent: 100, message: "done" });
    // The end's index write carries the final progress.
    expect((await listRow(nodeFunction, requestId))?.progress).toMatchObject({ percent: 100, message: "done" });

    // The live stream carried each step as a progress event, in order, before the end.
    const progress = streamed.filter((event) => event.event === "progress").map((event) => event.data as Progress);
    expect(progress.map((entry) => entry.percent)).toEqual([25, 50, 75, 100]);
    expect(streamed.at(-1)?.event).toBe("end");
  });

  it("shows a Python handler's progress in its final status", async () => {
    const requestId = await api.invoke(NAMESPACE, pythonFunction, {});
    const done = (await api.waitForEvent(requestId, undefined, WAIT_MS)) as ProgressView;
    expect(done).toMatchObject({ status: "FINISHED", result: "ok" });
    expect(done.progress).toMatchObject({ percent: 40, message: "half way there" });
  });

  it("is null for an event whose handler reports none, and the deadline warning is a timeline entry", async () => {
    const requestId = await api.invoke(NAMESPACE, warnedFunction, { onSigterm: "return" });
    const done = (await api.waitForEvent(requestId, undefined, WAIT_MS)) as ProgressView;
    expect(done.status).toBe("FINISHED");
    expect(done.progress).toBeNull();
    const kinds = done.timeline.map((entry) => entry.kind);
    const warning = done.timeline.find((entry) => entry.kind === "deadline-warning");
    expect(warning?.detail).toBe("deadline warning sent: SIGTERM 3 s before the timeout");
    // Between the start and the end.
    expect(kinds.indexOf("deadline-warning")).toBeGreaterThan(kinds.indexOf("running"));
    expect(kinds.indexOf("deadline-warning")).toBeLessThan(kinds.indexOf("ended"));
  });
});
