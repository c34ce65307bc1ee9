// An execution's stream opens with a started record the moment the handler process is handed the
// event, whatever the handler prints: the instance marks the event running on it.
import { beforeAll, describe, expect, it } from "vitest";
import {
  type AgentRecord,
  agentWithHandlers,
  executionSpec,
  putFiles,
  type RunningAgent,
  readRecords,
  runExecution,
} from "./agent-harness";

/** A Node.js handler that prints nothing and waits for SIGTERM (or prints event.lines lines). */
const NODE_HANDLER = `
let onTerm;
process.on("SIGTERM", () => onTerm?.());
exports.main_handler = async (event) => {
  for (let i = 0; i < (event.lines ?? 0); i++) console.log("line " + i);
  if (event.lines) return "printed";
  await new Promise((resolve) => { onTerm = resolve; });
  return "stopped by SIGTERM";
};
`;

/** The same in Python. */
const PYTHON_HANDLER = `
import signal
import threading

stop = threading.Event()
signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())

def main_handler(event, context):
    stop.wait()
    return "stopped by SIGTERM"
`;

/** Reads an NDJSON stream until its first whole record, returns it and closes the stream. */
async function firstRecord(response: Response): Promise<AgentRecord> {
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = "";
  try {
    while (!text.includes("\n")) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    await reader.cancel();
  }
  return JSON.parse(text.slice(0, text.indexOf("\n"))) as AgentRecord;
}

describe("the started record", () => {
  const handlers = agentWithHandlers(NODE_HANDLER, PYTHON_HANDLER);
  let agent: RunningAgent;
  let node: string;
  let python: string;
  beforeAll(() => ({ agent, node, python } = handlers));

  for (const [runtime, code] of [
    ["Nodejs22", () => node],
    ["Python3.11", () => python],
  ] as const) {
    it(`opens the stream of a silent ${runtime} handler while it still runs, then its end follows a SIGTERM`, async () => {
      const spec = executionSpec(code(), { runtime });
      const requestId = spec.requestId as string;
      const response = await agent.request("/executions?stream=1", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(spec),
      });
      expect(response.status).toBe(201);
      // The handler never prints and never ends by itself: only the started record can come now.
      const first = await firstRecord(response);
      expect(first).toMatchObject({ type: "started", seq: 1 });
      const summary = (await (await agent.request(`/executions/${requestId}`)).json()) as { ended: boolean };
      expect(summary.ended).toBe(false);

      const signal = await agent.request(`/executions/${requestId}/signal`, { method: "POST" });
      expect(await signal.json()).toEqual({ delivered: true });
      const records = await readRecords(await agent.request(`/executions/${requestId}/stream?after=0`));
      expect(records[0]).toMatchObject({ type: "started", seq: 1 });
      expect(records.at(-1)?.outcome).toMatchObject({ kind: "returned", result: "stopped by SIGTERM" });
    });
  }

  it("numbers the log lines after the started record, and a resume after it starts with the first line", async () => {
    const spec = executionSpec(node, { event: { lines: 3 } });
    const { records } = await runExecution(agent, spec);
    expect(records.map((record) => [record.type, record.seq])).toEqual([
      ["started", 1],
      ["log", 2],
      ["log", 3],
      ["log", 4],
      ["end", 5],
    ]);
    const resumed = await readRecords(await agent.request(`/executions/${spec.requestId}/stream?after=1`));
    expect(resumed.map((record) => record.seq)).toEqual([2, 3, 4, 5]);
    expect(resumed[0]).toMatchObject({ type: "log", line: "line 0" });
  });

  it("never starts code whose loading does not end, and stops it after the timeout", async () => {
    const hung = await putFiles(agent, {
      "index.js":
        "Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);\nexports.main_handler = async () => 1;",
    });
    const { records, end } = await runExecution(agent, executionSpec(hung, { timeoutMs: 1_500 }));
    expect(records.map((record) => record.type)).toEqual(["end"]);
    expect(end.outcome?.kind).toBe("timeout");
  });
});
