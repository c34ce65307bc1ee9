// Graceful terminate options and the deadline warning (issue 15) against the running platform and
// real containers: a grace period per request, the terminate's outcome in the event, and SIGTERM a
// configured number of seconds before the function's timeout.
import { beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient, type EventView } from "../helpers/api-client";
import { SIGTERM_NODE_HANDLER } from "../helpers/sigterm-handlers";

const api = new ApiClient(inject("baseUrl"));
const NAMESPACE = "default";
/** Longest wait for an event to reach a state (generous: the machine is shared). */
const WAIT_MS = 60_000;
/** The grace period the terminate requests name. */
const GRACE_SECONDS = 2;
/** The deadline-warning function: its timeout and warning. */
const TIMEOUT_SECONDS = 6;
const WARNING_SECONDS = 3;

/** The event with the terminate outcome's fields. */
type GraceView = EventView & {
  terminationMode: "forced" | "graceful" | null;
  signalDeliveredAt: string | null;
  endedWithinGrace: boolean | null;
};

let terminated = "";
let warned = "";

beforeAll(async () => {
  const files = { "index.js": SIGTERM_NODE_HANDLER };
  terminated = await api.createUniqueFunction(NAMESPACE, "grace", { runtime: "Nodejs22", files, timeout: 120 });
  warned = await api.createUniqueFunction(NAMESPACE, "deadline", {
    runtime: "Nodejs22",
    files,
    timeout: TIMEOUT_SECONDS,
    deadlineWarningSeconds: WARNING_SECONDS,
  });
}, WAIT_MS);

async function lines(requestId: string): Promise<string[]> {
  return (await api.logs(requestId)).map((record) => record.line);
}

/** Invokes the handler with its SIGTERM behaviour and waits until it printed "ready". */
async function runningHandler(functionName: string, onSigterm: string): Promise<string> {
  const requestId = await api.invoke(NAMESPACE, functionName, { onSigterm });
  await api.waitForEvent(requestId, (event) => event.phase === "running", WAIT_MS);
  await api.waitForLogLine(requestId, "ready", WAIT_MS);
  return requestId;
}

async function terminateGracefully(requestId: string, graceSeconds: number): Promise<GraceView> {
  const response = await api.json<GraceView>(`/v1/events/${requestId}/terminate`, {
    method: "POST",
    body: JSON.stringify({ graceful: true, graceSeconds }),
  });
  expect(response.status).toBe(200);
  expect(response.body).toMatchObject({ status: "RUNNING", terminationMode: "graceful" });
  return response.body;
}

describe.concurrent("graceful terminate with a grace period of its own", () => {
  it(
    "stops a handler that ignores SIGTERM once its 2 s grace period is over: 499, not within grace",
    async () => {
      const requestId = await runningHandler(terminated, "ignore");
      await terminateGracefully(requestId, GRACE_SECONDS);
      const done = (await api.waitForEvent(requestId, undefined, WAIT_MS)) as GraceView;
      expect(done).toMatchObject({
        status: "ABORTED",
        statusCode: 499,
        terminationMode: "graceful",
        endedWithinGrace: false,
      });
      expect(done.signalDeliveredAt).not.toBeNull();
      const graceMs = Date.parse(done.endedAt ?? "") - Date.parse(done.terminateRequestedAt ?? "");
      // The requested 2 s, not the default 30 s.
      expect(graceMs).toBeGreaterThanOrEqual(GRACE_SECONDS * 1000);
      expect(graceMs).toBeLessThan(15_000);
      expect(await lines(requestId)).toContain("got SIGTERM");
    },
    WAIT_MS * 3,
  );

  it(
    "reports a handler that returns on SIGTERM as ended within grace, with when the signal was delivered",
    async () => {
      const requestId = await runningHandler(terminated, "return");
      const answered = await terminateGracefully(requestId, 10);
      const done = (await api.waitForEvent(requestId, undefined, WAIT_MS)) as GraceView;
      expect(done).toMatchObject({
        status: "ABORTED",
        statusCode: 200,
        result: { stopped: true },
        terminationMode: "graceful",
        endedWithinGrace: true,
      });
      const deliveredAt = Date.parse(done.signalDeliveredAt ?? "");
      expect(deliveredAt).toBeGreaterThanOrEqual(Date.parse(answered.terminateRequestedAt ?? ""));
      expect(deliveredAt).toBeLessThanOrEqual(Date.parse(done.endedAt ?? ""));
    },
    WAIT_MS * 3,
  );
});

describe("the deadline warning", () => {
  it(
    "sends SIGTERM 3 s before a 6 s timeout; the handler logs it, returns and the event is FINISHED",
    async () => {
      const requestId = await api.invoke(NAMESPACE, warned, { onSigterm: "return" });
      const done = (await api.waitForEvent(requestId, undefined, WAIT_MS)) as GraceView;
      expect(done).toMatchObject({
        status: "FINISHED",
        statusCode: 200,
        result: { stopped: true },
        terminationMode: null,
        endedWithinGrace: null,
      });
      // Warned about 3 s after the start, well before the 6 s timeout.
      expect(done.durationMs ?? 0).toBeGreaterThanOrEqual((TIMEOUT_SECONDS - WARNING_SECONDS) * 1000 - 500);
      expect(done.durationMs ?? 0).toBeLessThan(TIMEOUT_SECONDS * 1000);
      const log = await lines(requestId);
      const warning = log.findIndex((line) =>
        line.startsWith(`[PLATFORM] Deadline warning: SIGTERM sent, ${WARNING_SECONDS} s before the timeout`),
      );
      expect(warning).toBeGreaterThanOrEqual(0);
      // The line comes before what the handler printed on the signal.
      expect(log.indexOf("got SIGTERM")).toBeGreaterThan(warning);
    },
    WAIT_MS * 2,
  );
});
