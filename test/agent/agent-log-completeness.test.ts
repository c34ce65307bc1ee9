// Every line a handler writes before it returns, throws or exits reaches its execution, in order,
// before the end record: in Node.js (whose stdout to a pipe is asynchronous) and in Python.
import { beforeAll, describe, expect, it } from "vitest";
import {
  agentWithHandlers,
  executionSpec,
  type RunningAgent,
  readRecords,
  runExecution,
  userLines,
} from "./agent-harness";

/** Sizes of the burst written right before the handler ends. */
const BURSTS = [2_000, 20_000];
/** Runs of each case: the loss was a race, seen in about three runs of five. */
const REPEATS = 3;

/**
 * A Node.js handler that prints `event.lines` numbered lines (console.log, or console.error when
 * event.stderr) then ends the way event.end says: return, throw, process.exit or an unawaited
 * rejection.
 */
const NODE_HANDLER = `
exports.main_handler = async (event) => {
  const print = event.stderr ? console.error : console.log;
  for (let i = 0; i < event.lines; i++) print("line " + i);
  if (event.end === "throw") throw new Error("thrown after the burst");
  if (event.end === "exit") process.exit(event.code ?? 0);
  if (event.end === "leaveChild") {
    // A process outside the handler's group, writing to the same pipes after the handler is gone.
    require("child_process").spawn("sh", ["-c", "sleep 0.3; seq 1 " + event.childLines], {
      stdio: ["ignore", "inherit", "inherit"],
      detached: true,
    });
    process.exit(0);
  }
  if (event.end === "later") setTimeout(() => process.exit(0), event.exitAfterMs);
  if (event.end === "later") await new Promise(() => {});
  return "done";
};
`;

/** The same in Python: print, then return, raise, sys.exit or os._exit. */
const PYTHON_HANDLER = `
import os
import sys

def main_handler(event, context):
    out = sys.stderr if event.get("stderr") else sys.stdout
    for i in range(event["lines"]):
        print("line " + str(i), file=out)
    if event["end"] == "throw":
        raise ValueError("raised after the burst")
    if event["end"] == "exit":
        sys.exit(event.get("code", 0))
    if event["end"] == "os_exit":
        os._exit(event.get("code", 0))
    return "done"
`;

/** The lines `line 0` … `line n-1`, in order. */
function expectedLines(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `line ${i}`);
}

describe("log completeness at the end of a handler", () => {
  const handlers = agentWithHandlers(NODE_HANDLER, PYTHON_HANDLER);
  let agent: RunningAgent;
  let node: string;
  let python: string;
  beforeAll(() => ({ agent, node, python } = handlers));

  const cases: { runtime: string; end: string; kind: string; stderr?: boolean }[] = [
    { runtime: "Nodejs22", end: "return", kind: "returned" },
    { runtime: "Nodejs22", end: "throw", kind: "threw" },
    { runtime: "Nodejs22", end: "exit", kind: "exited" },
    { runtime: "Nodejs22", end: "return", kind: "returned", stderr: true },
    { runtime: "Python3.11", end: "return", kind: "returned" },
    { runtime: "Python3.11", end: "throw", kind: "threw" },
    { runtime: "Python3.11", end: "exit", kind: "exited" },
    { runtime: "Python3.11", end: "os_exit", kind: "exited" },
    { runtime: "Python3.11", end: "return", kind: "returned", stderr: true },
  ];

  for (const { runtime, end, kind, stderr } of cases) {
    for (const count of BURSTS) {
      it(`keeps all ${count} lines ${stderr ? "on stderr " : ""}written right before a ${runtime} handler ends by ${end}, in order`, async () => {
        for (let run = 0; run < REPEATS; run++) {
          const spec = executionSpec(runtime.startsWith("Node") ? node : python, {
            runtime,
            event: { lines: count, end, stderr: stderr ?? false },
          });
          const { records, end: endRecord, lines } = await runExecution(agent, spec);
          expect(endRecord.outcome?.kind).toBe(kind);
          expect(records.filter((record) => record.type === "gap")).toEqual([]);
          const kept = userLines(lines);
          // Python's traceback follows the burst on stderr; the burst itself must be whole and first.
          expect(kept.slice(0, count)).toEqual(expectedLines(count));
          if (!stderr) expect(kept.length).toBe(count);
        }
      });
    }
  }

  it("keeps the lines still in the pipes when the handler exits while the agent is not reading", async () => {
    // The handler writes a burst that fits in the pipe, then exits while the agent is stopped:
    // when the agent resumes, the exit and the unread output are both waiting for it.
    const count = 4_000;
    const spec = executionSpec(node, { event: { lines: count, end: "later", exitAfterMs: 600 } });
    const started = await agent.request("/executions", { method: "POST", body: JSON.stringify(spec) });
    expect(started.status).toBe(201);
    const pid = agent.process.pid as number;
    process.kill(pid, "SIGSTOP");
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_500));
    } finally {
      process.kill(pid, "SIGCONT");
    }
    const records = await readRecords(await agent.request(`/executions/${spec.requestId}/stream?after=0`));
    const endRecord = records.at(-1);
    expect(endRecord?.type).toBe("end");
    expect(endRecord?.outcome?.kind).toBe("exited");
    const lines = records.filter((record) => record.type === "log").map((record) => record.line ?? "");
    expect(userLines(lines)).toEqual(expectedLines(count));
  });

  it("keeps the lines that reach the handler's pipes after it exits, until the pipes close", async () => {
    const childLines = 3_000;
    const spec = executionSpec(node, { event: { lines: 10, end: "leaveChild", childLines } });
    const { end, lines } = await runExecution(agent, spec);
    expect(end.outcome?.kind).toBe("exited");
    const numbers = Array.from({ length: childLines }, (_, i) => String(i + 1));
    expect(userLines(lines)).toEqual([...expectedLines(10), ...numbers]);
  });
});
