// The agent keeps the container contract (worker/contract, bundled into contract.gen.mjs): every
// record of real executions, Node.js and Python, returned / threw / exited, parses with the bundled
// agentRecordSchema, and its other answers with their schemas; it refuses what the contract refuses
// with 400; and its runtime table runs exactly the contract's runtimes, those of the function model.
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import * as source from "../../worker/contract/agent-contract";
import { RUNTIMES as MODEL_RUNTIMES } from "../../worker/functions/model";
import {
  AGENT_DIR,
  agentWithHandlers,
  executionSpec,
  type RunningAgent,
  readRecords,
  runExecution,
} from "./agent-harness";

/** The bundle the agent imports, typed as the sources it is built from. */
const bundled = (await import(join(AGENT_DIR, "contract.gen.mjs"))) as typeof source;

interface RuntimeTableModule {
  RUNTIMES: Record<string, unknown>;
  runtimeOf(name: unknown): unknown;
  bootstrapCommand(spec: { runtime: unknown; handler: string }, codeDir: string): [string, string[]];
}
const runtimeTable = (await import(join(AGENT_DIR, "runtimes.mjs"))) as RuntimeTableModule;

const NODE_HANDLER = `
exports.main_handler = async (event) => {
  console.log("out");
  console.error("err");
  if (event.how === "threw") throw new Error("no");
  if (event.how === "exited") process.exit(3);
  return { how: event.how };
};
`;

const PYTHON_HANDLER = `
import os, sys
def main_handler(event, context):
    print("out")
    print("err", file=sys.stderr)
    if event["how"] == "threw":
        raise ValueError("no")
    if event["how"] == "exited":
        sys.stdout.flush()
        os._exit(3)
    return {"how": event["how"]}
`;

/** POSTs a body to /executions and returns the status and the parsed JSON answer. */
async function post(agent: RunningAgent, body: unknown): Promise<{ status: number; body: unknown }> {
  const response = await agent.request("/executions", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

describe("the agent and the container contract", () => {
  const handlers = agentWithHandlers(NODE_HANDLER, PYTHON_HANDLER);
  let agent: RunningAgent;
  let node: string;
  let python: string;
  beforeAll(() => ({ agent, node, python } = handlers));

  for (const runtime of ["Nodejs22", "Python3.11"] as const) {
    for (const how of ["returned", "threw", "exited"] as const) {
      it(`writes only records of the contract for a ${runtime} handler that ${how}`, async () => {
        const code = runtime === "Nodejs22" ? node : python;
        const spec = executionSpec(code, { runtime, event: { how } });
        expect(bundled.executionSpecSchema.safeParse(spec).success).toBe(true);
        const { records, end } = await runExecution(agent, spec);
        for (const record of records) {
          const parsed = bundled.agentRecordSchema.safeParse(record);
          expect(parsed.success, JSON.stringify(record)).toBe(true);
          // Nothing outside the contract: parsing drops no field of the agent's records.
          expect(parsed.data).toEqual(record);
        }
        expect(records.map((record) => record.type)).toEqual(["started", "log", "log", "end"]);
        expect(end.outcome?.kind).toBe(how);

        const summary = await agent.request(`/executions/${String(spec.requestId)}`);
        expect(bundled.executionSummarySchema.safeParse(await summary.json()).success).toBe(true);
        const resumed = await readRecords(await agent.request(`/executions/${String(spec.requestId)}/stream?after=1`));
        expect(resumed.every((record) => bundled.agentRecordSchema.safeParse(record).success)).toBe(true);
      });
    }
  }

  it("answers health, a signal and a start without stream within the contract", async () => {
    const health = await (await agent.request("/health")).json();
    expect(bundled.agentHealthSchema.parse(health)).toEqual(health);

    const spec = executionSpec(node, { event: { how: "returned" } });
    const started = await post(agent, spec);
    expect(started.status).toBe(201);
    expect(bundled.executionStartAnswerSchema.parse(started.body)).toEqual({
      requestId: spec.requestId,
      started: true,
    });
    const again = await post(agent, spec);
    expect(again).toEqual({ status: 200, body: { requestId: spec.requestId, started: false } });

    const signal = await agent.request(`/executions/${String(spec.requestId)}/signal`, {
      method: "POST",
      body: JSON.stringify({ signal: "SIGTERM" }),
    });
    expect(signal.status).toBe(200);
    expect(bundled.signalAnswerSchema.safeParse(await signal.json()).success).toBe(true);
    await readRecords(await agent.request(`/executions/${String(spec.requestId)}/stream?after=0`));
  });

  it("refuses an unknown runtime with 400 and a refusal body that names it", async () => {
    const answer = await post(agent, executionSpec(node, { runtime: "Ruby3" }));
    expect(answer.status).toBe(400);
    expect(bundled.agentErrorSchema.parse(answer.body)).toEqual({ error: 'runtime: unknown runtime "Ruby3"' });
  });

  it("refuses a spec the contract refuses with 400, its reason being the contract's", async () => {
    for (const overrides of [
      { memoryLimitMb: -1 },
      { timeoutMs: "soon" },
      { context: { request_id: "x" } },
      { requestId: "../x" },
    ]) {
      const spec = executionSpec(node, overrides);
      const answer = await post(agent, spec);
      const contract = bundled.executionSpecSchema.safeParse(spec);
      expect(contract.success).toBe(false);
      expect(answer, JSON.stringify(overrides)).toEqual({
        status: 400,
        body: { error: contract.error ? bundled.problemOf(contract.error) : "" },
      });
    }
  });

  it("refuses to forward any signal but SIGTERM with 400", async () => {
    const spec = executionSpec(node, { event: { how: "returned" } });
    await runExecution(agent, spec);
    const response = await agent.request(`/executions/${String(spec.requestId)}/signal`, {
      method: "POST",
      body: JSON.stringify({ signal: "SIGKILL" }),
    });
    expect(response.status).toBe(400);
    expect(bundled.agentErrorSchema.parse(await response.json()).error).toMatch(/^signal: /);
  });
});

describe("the runtime table", () => {
  it("runs the contract's engines (source and bundle), and every runtime name of the model on one", () => {
    const engines = [...source.RUNTIME_ENGINES].sort();
    expect(Object.keys(runtimeTable.RUNTIMES).sort()).toEqual(engines);
    expect([...bundled.RUNTIME_ENGINES].sort()).toEqual(engines);
    expect([...bundled.RUNTIME_NAMES].sort()).toEqual([...source.RUNTIME_NAMES].sort());
    expect([...MODEL_RUNTIMES].sort()).toEqual([...source.RUNTIME_NAMES].sort());
    for (const name of MODEL_RUNTIMES) expect(runtimeTable.runtimeOf(name), name).toBeDefined();
  });

  it("starts no bootstrap for an unknown runtime instead of falling through to another one", () => {
    for (const runtime of ["Ruby3", "Python2.7", "constructor", "__proto__", undefined]) {
      expect(() => runtimeTable.bootstrapCommand({ runtime, handler: "index.main" }, "/code"), String(runtime)).toThrow(
        /unknown runtime/,
      );
    }
    const [, nodeArgs] = runtimeTable.bootstrapCommand({ runtime: "Nodejs22", handler: "index.main" }, "/code");
    expect(nodeArgs.slice(-3)).toEqual([join(AGENT_DIR, "bootstrap-node.mjs"), "/code", "index.main"]);
    const [python, pythonArgs] = runtimeTable.bootstrapCommand({ runtime: "Python3.11", handler: "i.h" }, "/code");
    expect([python, ...pythonArgs]).toEqual(["python3", "-u", join(AGENT_DIR, "bootstrap.py"), "/code", "i.h"]);
    // An SCF name runs on its engine's bootstrap.
    const [, scfNodeArgs] = runtimeTable.bootstrapCommand({ runtime: "Nodejs16.13", handler: "index.main" }, "/code");
    expect(scfNodeArgs.slice(-3)).toEqual([join(AGENT_DIR, "bootstrap-node.mjs"), "/code", "index.main"]);
    const [scfPython] = runtimeTable.bootstrapCommand({ runtime: "Python3.9", handler: "i.h" }, "/code");
    expect(scfPython).toBe("python3");
  });
});
