// Every way a handler can end after a graceful terminate's SIGTERM (POST /executions/:id/signal), in
// both runtimes: the outcome the agent reports and its verdict line. The worker's mapping of these
// outcomes to a status, StatusCode and message is tested in test/unit/event-machine.test.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  SIGTERM_NODE_HANDLER as NODE_HANDLER,
  SIGTERM_PYTHON_HANDLER as PYTHON_HANDLER,
} from "../helpers/sigterm-handlers";
import { executionSpec, putFiles, type RunningAgent, runUntilEnd, startAgent } from "./agent-harness";

/** What the handler does on SIGTERM (event.onSigterm). */
type SigtermMode = "return" | "throw" | "exit0" | "exit3" | "die" | "ignore";

/** How long an ignoring handler keeps running after SIGTERM before it returns by itself. */
const IGNORING_HANDLER_RUN_MS = 3_000;

/** Sends the graceful terminate's SIGTERM to an execution, as the instance does. */
async function signal(agent: RunningAgent, requestId: string): Promise<void> {
  const response = await agent.request(`/executions/${requestId}/signal`, { method: "POST" });
  expect(await response.json()).toEqual({ delivered: true });
}

const VERDICT_OK = "[PLATFORM] Signal received successfully";
const VERDICT_FAILED = "[PLATFORM] Signal reception failed";

describe.each<{ runtime: string; files: Record<string, string> }>([
  { runtime: "Nodejs22", files: { "index.js": NODE_HANDLER } },
  { runtime: "Python3.11", files: { "index.py": PYTHON_HANDLER } },
])("after a graceful terminate's SIGTERM, a $runtime handler", ({ runtime, files }) => {
  let agent: RunningAgent;
  let sha: string;
  beforeAll(async () => {
    agent = await startAgent();
    sha = await putFiles(agent, files);
  });
  afterAll(async () => {
    await agent.stop();
  });

  /** Runs one event whose handler behaves as mode on SIGTERM, signalled once ready. */
  function terminated(mode: SigtermMode, event: Record<string, unknown> = {}) {
    const spec = executionSpec(sha, { runtime, event: { onSigterm: mode, ...event } });
    return runUntilEnd(agent, spec, () => signal(agent, String(spec.requestId)));
  }

  it("that returns reports its result, with the successful-reception verdict", async () => {
    const { end, lines } = await terminated("return");
    expect(end.outcome).toEqual({ kind: "returned", result: { stopped: true } });
    expect(lines).toContain("got SIGTERM");
    expect(lines).toContain(VERDICT_OK);
    expect(lines).not.toContain(VERDICT_FAILED);
  });

  it("that throws reports the error, with the successful-reception verdict", async () => {
    const { end, lines } = await terminated("throw");
    expect(end.outcome?.kind).toBe("threw");
    expect(end.outcome?.message).toContain("stopped on SIGTERM");
    expect(lines).toContain(VERDICT_OK);
  });

  it.each([
    { mode: "exit0", code: 0 },
    { mode: "exit3", code: 3 },
  ] as const)(
    "that exits with code $code reports an exit with that code, not a signal death",
    async ({ mode, code }) => {
      const { end, lines } = await terminated(mode);
      expect(end.outcome).toEqual({ kind: "exited", code, signal: null });
      expect(lines).toContain("got SIGTERM");
      expect(lines).toContain(VERDICT_OK);
      expect(lines).not.toContain(VERDICT_FAILED);
    },
  );

  it("without a SIGTERM handler dies of it: reported as an unhandled SIGTERM, with the failed-reception verdict", async () => {
    const { end, lines } = await terminated("die");
    expect(end.outcome).toEqual({ kind: "sigterm" });
    expect(lines).toContain(VERDICT_FAILED);
    expect(lines).not.toContain(VERDICT_OK);
  });

  it("that ignores SIGTERM keeps running: the agent does not end it (the event's grace period does)", async () => {
    const { end, lines } = await terminated("ignore", { runMs: IGNORING_HANDLER_RUN_MS });
    // It ran on to its own end: the ticks after the signal and its own return value.
    expect(end.outcome).toEqual({ kind: "returned", result: { stopped: false } });
    const afterSignal = lines.slice(lines.indexOf("got SIGTERM"));
    expect(afterSignal.filter((line) => line === "tick").length).toBeGreaterThan(1);
    expect(lines).toContain(VERDICT_OK);
  });
});
