// Every way a handler can end after a graceful terminate's SIGTERM, in both runtimes, against the
// running platform: one status, StatusCode and message per row (the README's table in "Terminate").
import { beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient, type EventView } from "../helpers/api-client";
import {
  SIGTERM_NODE_HANDLER as NODE_HANDLER,
  SIGTERM_PYTHON_HANDLER as PYTHON_HANDLER,
} from "../helpers/sigterm-handlers";

const api = new ApiClient(inject("baseUrl"));
const NAMESPACE = "default";

/** The grace period after SIGTERM (GRACEFUL_TERMINATE_TIMEOUT_MS of the event's Durable Object). */
const GRACE_PERIOD_MS = 30_000;
/** Longest wait for an event to reach a state (generous: the machine is shared). */
const WAIT_MS = 60_000;
/** Longest wait for the grace-period row: the grace itself plus WAIT_MS. */
const GRACE_ROW_WAIT_MS = GRACE_PERIOD_MS + WAIT_MS;

const VERDICT_OK = "[PLATFORM] Signal received successfully";
const VERDICT_FAILED = "[PLATFORM] Signal reception failed";

type Runtime = "Nodejs22" | "Python3.11";

/** One row of the table: how the handler ends, and what the event must show. */
interface Row {
  mode: "return" | "throw" | "exit0" | "exit3" | "die" | "ignore";
  how: string;
  statusCode: number;
  /** The whole errorMessage, or a pattern; null: no error. */
  message: string | RegExp | null;
  verdict: string;
}

const ROWS: Row[] = [
  { mode: "return", how: "returns", statusCode: 200, message: null, verdict: VERDICT_OK },
  { mode: "throw", how: "throws", statusCode: 430, message: /stopped on SIGTERM/, verdict: VERDICT_OK },
  {
    mode: "exit0",
    how: "exits with code 0",
    statusCode: 439,
    message: "User process exit when running (exit code 0)",
    verdict: VERDICT_OK,
  },
  {
    mode: "exit3",
    how: "exits with code 3",
    statusCode: 439,
    message: "User process exit when running (exit code 3)",
    verdict: VERDICT_OK,
  },
  {
    mode: "die",
    how: "dies of the signal (no SIGTERM handler)",
    statusCode: 439,
    message: "User process exit when running (SIGTERM not handled)",
    verdict: VERDICT_FAILED,
  },
];

const GRACE_ROW: Row = {
  mode: "ignore",
  how: "ignores SIGTERM past the grace period",
  statusCode: 499,
  message: "Terminated by request: the handler was still running after SIGTERM and was stopped by force",
  verdict: VERDICT_OK,
};

const functions = new Map<Runtime, string>();

beforeAll(async () => {
  for (const runtime of ["Nodejs22", "Python3.11"] as const) {
    const files: Record<string, string> =
      runtime === "Nodejs22" ? { "index.js": NODE_HANDLER } : { "index.py": PYTHON_HANDLER };
    functions.set(runtime, await api.createUniqueFunction(NAMESPACE, "endings", { runtime, files, timeout: 300 }));
  }
});

/** Invokes, waits until the handler is running with its SIGTERM behaviour set up, terminates gracefully. */
async function terminateWhenReady(runtime: Runtime, mode: Row["mode"]): Promise<string> {
  const requestId = await api.invoke(NAMESPACE, functions.get(runtime) ?? "", { onSigterm: mode });
  await api.waitForEvent(requestId, (event) => event.phase === "running", WAIT_MS);
  await api.waitForLogLine(requestId, "ready", WAIT_MS);
  const response = await api.json<EventView>(`/v1/events/${requestId}/terminate`, {
    method: "POST",
    body: JSON.stringify({ graceful: true }),
  });
  expect(response.status).toBe(200);
  expect(response.body).toMatchObject({ status: "RUNNING" });
  return requestId;
}

/** Checks the ended event and its log against a row. */
async function expectRow(done: EventView, row: Row): Promise<void> {
  expect(done.status).toBe("ABORTED");
  expect(done.statusCode).toBe(row.statusCode);
  if (row.message === null) expect(done.errorMessage).toBeNull();
  else if (typeof row.message === "string") expect(done.errorMessage).toBe(row.message);
  else expect(done.errorMessage).toMatch(row.message);
  const lines = (await api.logs(done.requestId)).map((record) => record.line);
  expect(lines).toContain(row.verdict);
  expect(lines).not.toContain(row.verdict === VERDICT_OK ? VERDICT_FAILED : VERDICT_OK);
  // The platform's END line says the same status and StatusCode.
  const endLine = lines.find((line) => line.startsWith("[PLATFORM] END"));
  expect(endLine).toContain(`Status: ABORTED StatusCode: ${row.statusCode}`);
}

describe.each(["Nodejs22", "Python3.11"] as const)("graceful terminate of a %s handler", (runtime) => {
  it.each(ROWS)("that $how ends ABORTED / $statusCode with a message that agrees", async (row) => {
    const requestId = await terminateWhenReady(runtime, row.mode);
    const done = await api.waitForEvent(requestId, undefined, WAIT_MS);
    await expectRow(done, row);
    if (row.mode === "return") expect(done.result).toEqual({ stopped: true });
    if (row.mode !== "die") {
      expect((await api.logs(requestId)).map((record) => record.line)).toContain("got SIGTERM");
    }
  });
});

describe.concurrent("graceful terminate past the grace period", () => {
  it.each(["Nodejs22", "Python3.11"] as const)(
    "stops a %s handler that ignores SIGTERM by force once the grace period is over: ABORTED / 499",
    async (runtime) => {
      const requestId = await terminateWhenReady(runtime, GRACE_ROW.mode);
      const done = await api.waitForEvent(requestId, undefined, GRACE_ROW_WAIT_MS);
      await expectRow(done, GRACE_ROW);
      // Not before the grace period: the handler kept running (and ticking) meanwhile.
      const graceMs = Date.parse(done.endedAt ?? "") - Date.parse(done.terminateRequestedAt ?? "");
      expect(graceMs).toBeGreaterThanOrEqual(GRACE_PERIOD_MS);
      const lines = (await api.logs(requestId)).map((record) => record.line);
      expect(lines.slice(lines.indexOf("got SIGTERM")).filter((line) => line === "tick").length).toBeGreaterThan(1);
    },
    GRACE_ROW_WAIT_MS + WAIT_MS,
  );
});
