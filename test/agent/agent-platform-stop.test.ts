// The platform stopping the container (SIGTERM to the agent, as init.py forwards it from a rollout,
// a host drain or `docker kill -s TERM`) is told apart from a user's graceful terminate: a platform
// line is logged, the handler gets SIGTERM, and the end record carries the platform's outcome.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type AgentRecord, executionSpec, putFiles, type RunningAgent, runUntilEnd, startAgent } from "./agent-harness";

/** A Node.js handler that prints "ready" once its SIGTERM behaviour (event.onSigterm) is set up. */
const NODE_HANDLER = `
exports.main_handler = async (event) => {
  let stop;
  const stopped = new Promise((resolve) => { stop = resolve; });
  const listener = () => {
    console.log("checkpoint saved");
    if (event.onSigterm === "return") stop({ checkpointed: true });
  };
  if (event.onSigterm) process.on("SIGTERM", listener);
  try {
    console.log("ready");
    for (;;) {
      const ended = await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, 200))]);
      if (ended) return ended;
      console.log("tick");
    }
  } finally {
    process.removeListener("SIGTERM", listener);
  }
};
`;

/** The same handler in Python. */
const PYTHON_HANDLER = `
import signal
import time


def main_handler(event, context):
    state = {"stopped": False}

    def on_sigterm(signum, frame):
        print("checkpoint saved", flush=True)
        if event.get("onSigterm") == "return":
            state["stopped"] = True

    if event.get("onSigterm"):
        signal.signal(signal.SIGTERM, on_sigterm)
    try:
        print("ready", flush=True)
        while not state["stopped"]:
            time.sleep(0.2)
            print("tick", flush=True)
        return {"checkpointed": True}
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
`;

/** Longest wait for one execution's records (generous: the machine is shared). */
const EXECUTION_WAIT_MS = 30_000;
/** The platform-stop grace the short-grace agent runs with (AFP_PLATFORM_STOP_GRACE_MS). */
const SHORT_GRACE_MS = 2_000;
/** The [PLATFORM] line the agent logs when the platform stops the container. */
const PLATFORM_STOP_LINE = /^\[PLATFORM\] The container is being stopped by the platform \(SIGTERM\)/;

/**
 * Runs one execution, sends SIGTERM to the agent process once the handler printed "ready", and
 * returns the end record with the log lines.
 */
async function stoppedByPlatform(
  agent: RunningAgent,
  spec: Record<string, unknown>,
): Promise<{ end: AgentRecord; lines: string[] }> {
  return runUntilEnd(agent, spec, async () => {
    agent.process.kill("SIGTERM");
  });
}

/** Expects the platform's outcome and line, and none of a user's terminate's wording. */
function expectPlatformEnding(end: AgentRecord, lines: string[], handlerEnding: RegExp): void {
  expect(end.outcome?.kind).toBe("platform_stop");
  expect(end.outcome?.message).toMatch(handlerEnding);
  expect(lines.filter((line) => PLATFORM_STOP_LINE.test(line))).toHaveLength(1);
  expect(lines).not.toContain("[PLATFORM] Signal reception failed");
  expect(lines).not.toContain("[PLATFORM] Signal received successfully");
}

describe.each<{ runtime: string; files: Record<string, string> }>([
  { runtime: "Nodejs22", files: { "index.js": NODE_HANDLER } },
  { runtime: "Python3.11", files: { "index.py": PYTHON_HANDLER } },
])("SIGTERM to the agent while a $runtime handler runs", ({ runtime, files }) => {
  // A fresh agent for each test: once stopped by the platform, an agent takes no new execution.
  let agent: RunningAgent;
  let sha: string;
  beforeEach(async () => {
    agent = await startAgent();
    sha = await putFiles(agent, files);
  });
  afterEach(async () => {
    await agent.stop();
  });

  it("ends a handler without a SIGTERM handler with the platform's outcome and logs a platform line", async () => {
    const { end, lines } = await stoppedByPlatform(agent, executionSpec(sha, { runtime }));
    expectPlatformEnding(end, lines, /ended by SIGTERM/);
  });

  it("forwards SIGTERM so a handler can checkpoint; its return still ends with the platform's outcome", async () => {
    const { end, lines } = await stoppedByPlatform(
      agent,
      executionSpec(sha, { runtime, event: { onSigterm: "return" } }),
    );
    expectPlatformEnding(end, lines, /returned after SIGTERM/);
    // The platform line comes before the handler's checkpoint line.
    const platformAt = lines.findIndex((line) => PLATFORM_STOP_LINE.test(line));
    expect(platformAt).toBeGreaterThanOrEqual(0);
    expect(lines.indexOf("checkpoint saved")).toBeGreaterThan(platformAt);
  });

  it("records the signal, says it is stopping, and refuses a new execution with 503", async () => {
    await stoppedByPlatform(agent, executionSpec(sha, { runtime }));
    const health = (await (await agent.request("/health")).json()) as {
      signalsReceived: { signal: string }[];
      stopping: boolean;
    };
    expect(health.signalsReceived.map((entry) => entry.signal)).toContain("SIGTERM");
    expect(health.stopping).toBe(true);
    const spec = executionSpec(sha, { runtime });
    const response = await agent.request("/executions?stream=1", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(spec),
      signal: AbortSignal.timeout(EXECUTION_WAIT_MS),
    });
    expect(response.status).toBe(503);
    expect(((await response.json()) as { error: string }).error).toMatch(/being stopped by the platform/);
    const summary = await agent.request(`/executions/${String(spec.requestId)}`);
    expect(summary.status).toBe(404);
  });
});

describe("a handler that ignores the platform's SIGTERM", () => {
  let agent: RunningAgent;
  let sha: string;
  beforeAll(async () => {
    agent = await startAgent({ env: { AFP_PLATFORM_STOP_GRACE_MS: String(SHORT_GRACE_MS) } });
    sha = await putFiles(agent, { "index.js": NODE_HANDLER });
  });
  afterAll(async () => {
    await agent.stop();
  });

  it("is killed at the end of the grace period, and the end record still carries the platform's outcome", async () => {
    const startedAt = Date.now();
    const { end, lines } = await stoppedByPlatform(agent, executionSpec(sha, { event: { onSigterm: "ignore" } }));
    expectPlatformEnding(end, lines, /still running 2 s after SIGTERM and was killed/);
    expect(lines).toContain("checkpoint saved");
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(SHORT_GRACE_MS);
  });
});
