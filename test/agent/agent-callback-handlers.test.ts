// Callback-style Node.js handlers `(event, context, callback)` as in SCF (issue 13), and SCF's
// context fields and built-in environment variables in Node.js and Python handlers.
import { describe, expect, it } from "vitest";
import { type AgentRecord, agentWithHandlers, executionSpec, runExecution } from "./agent-harness";

const NODE_HANDLERS = `
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
exports.cb_error = (event, context, callback) => {
  setTimeout(() => callback(new Error("bad input " + event.n)), 20);
};
exports.cb_text_error = (event, context, callback) => callback("plain text failure");
exports.cb_result = (event, context, callback) => {
  setTimeout(() => callback(null, { sum: event.a + event.b }), 50);
};
exports.cb_twice = (event, context, callback) => {
  callback(null, "first");
  callback(null, "second");
  callback(new Error("third"));
};
exports.cb_sync_throw = (event, context, callback) => {
  throw new Error("thrown before calling back");
};
exports.async_ignores_callback = async (event, context, callback) => {
  await sleep(50);
  return "from the promise";
};
exports.async_rejects = async (event, context, callback) => {
  await sleep(20);
  throw new Error("async failure");
};
exports.waits_for_loop = (event, context, callback) => {
  setTimeout(() => console.log("background done"), 600);
  callback(null, "called back early");
};
exports.ends_after_callback = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = false;
  setTimeout(() => console.log("background done"), 3000);
  callback(null, "called back early");
};
exports.never_calls_back = (event, context, callback) => {
  setTimeout(() => console.log("last timer ran"), 300);
};
exports.never_drains = (event, context, callback) => {
  setInterval(() => {}, 1000);
};
exports.two_args = (event, context) => ({ waits: context.callbackWaitsForEmptyEventLoop });
exports.context_fields = (event, context, callback) => {
  const { getRemainingTimeInMillis, ...fields } = context;
  const env = {};
  for (const name of ["SCF_FUNCTIONNAME", "SCF_FUNCTIONVERSION", "SCF_NAMESPACE", "SCF_RUNTIME", "USER_CODE_ROOT", "TENCENTCLOUD_RUNENV", "GREETING", "AFP_AGENT_TOKEN"]) {
    env[name] = process.env[name] ?? null;
  }
  callback(null, {
    fields: Object.fromEntries(Object.entries(fields).filter(([, value]) => typeof value !== "function")),
    remaining: getRemainingTimeInMillis(),
    env,
    cwd: process.cwd(),
  });
};
`;

const PYTHON_HANDLERS = `
import os

def context_fields(event, context):
    names = ["SCF_FUNCTIONNAME", "SCF_FUNCTIONVERSION", "SCF_NAMESPACE", "SCF_RUNTIME", "USER_CODE_ROOT", "TENCENTCLOUD_RUNENV", "GREETING"]
    return {
        "is_dict": isinstance(context, dict),
        "fields": {key: value for key, value in context.items() if not callable(value)},
        "env": {name: os.environ.get(name) for name in names},
    }
`;

/** SCF's documented context keys (scf-reference.md §9.1) every runtime's context carries. */
const SCF_CONTEXT_KEYS = [
  "request_id",
  "function_name",
  "function_version",
  "namespace",
  "memory_limit_in_mb",
  "time_limit_in_ms",
  "environment",
  "environ",
  "tencentcloud_region",
  "tencentcloud_appid",
  "tencentcloud_uin",
];

function durationOf(end: AgentRecord): number {
  return (end as AgentRecord & { durationMs: number }).durationMs;
}

describe("callback-style Node.js handlers", () => {
  const fixture = agentWithHandlers(NODE_HANDLERS, PYTHON_HANDLERS);
  const run = (handler: string, overrides: Record<string, unknown> = {}) =>
    runExecution(fixture.agent, executionSpec(fixture.node, { handler: `index.${handler}`, ...overrides }));

  it("fails the event with the error passed to callback(err), as a throw would", async () => {
    const { end } = await run("cb_error", { event: { n: 7 } });
    expect(end.outcome).toMatchObject({ kind: "threw", message: "Error: bad input 7" });
    expect(end.outcome?.stack).toContain("bad input 7");
    const text = await run("cb_text_error");
    expect(text.end.outcome).toMatchObject({ kind: "threw", message: "plain text failure" });
  });

  it("returns the result passed to callback(null, result)", async () => {
    const { end } = await run("cb_result", { event: { a: 2, b: 3 } });
    expect(end.outcome).toEqual({ kind: "returned", result: { sum: 5 } });
  });

  it("keeps the first call when the callback is called twice or more", async () => {
    const { end } = await run("cb_twice");
    expect(end.outcome).toEqual({ kind: "returned", result: "first" });
  });

  it("fails the event at once when a callback-style handler throws before calling back", async () => {
    const { end } = await run("cb_sync_throw");
    expect(end.outcome).toMatchObject({ kind: "threw", message: "Error: thrown before calling back" });
  });

  it("takes an async handler's promise as its outcome when it never calls the callback", async () => {
    expect((await run("async_ignores_callback")).end.outcome).toEqual({ kind: "returned", result: "from the promise" });
    expect((await run("async_rejects")).end.outcome).toMatchObject({ kind: "threw", message: "Error: async failure" });
  });

  it("waits for the event loop to drain after the callback by default (callbackWaitsForEmptyEventLoop true)", async () => {
    const { end, lines } = await run("waits_for_loop");
    expect(end.outcome).toEqual({ kind: "returned", result: "called back early" });
    expect(lines).toContain("background done");
    expect(durationOf(end)).toBeGreaterThanOrEqual(550);
  });

  it("ends right after the callback when the handler set callbackWaitsForEmptyEventLoop to false", async () => {
    const { end, lines } = await run("ends_after_callback");
    expect(end.outcome).toEqual({ kind: "returned", result: "called back early" });
    expect(lines).not.toContain("background done");
    expect(durationOf(end)).toBeLessThan(2500);
  });

  it("ends a handler that never calls back with result null once the event loop has drained", async () => {
    const { end, lines } = await run("never_calls_back");
    expect(end.outcome).toEqual({ kind: "returned", result: null });
    expect(lines).toContain("last timer ran");
    expect(durationOf(end)).toBeGreaterThanOrEqual(250);
  });

  it("times out a handler that never calls back while its event loop never drains", async () => {
    const { end } = await run("never_drains", { timeoutMs: 1500 });
    expect(end.outcome?.kind).toBe("timeout");
  });

  it("runs a two-parameter handler promise style, its context defaulting callbackWaitsForEmptyEventLoop to true", async () => {
    const { end } = await run("two_args");
    expect(end.outcome).toEqual({ kind: "returned", result: { waits: true } });
  });
});

describe("SCF's context fields and built-in environment variables", () => {
  const fixture = agentWithHandlers(NODE_HANDLERS, PYTHON_HANDLERS);
  const environment = { GREETING: "hi", TENCENTCLOUD_REGION: "ap-guangzhou" };

  it("gives a Node.js handler SCF's context fields, getRemainingTimeInMillis and the SCF_* variables", async () => {
    const spec = executionSpec(fixture.node, {
      runtime: "Nodejs18.15",
      handler: "index.context_fields",
      environment,
      timeoutMs: 20_000,
    });
    const context = spec.context as Record<string, unknown>;
    context.time_limit_in_ms = 19_000;
    const { end } = await runExecution(fixture.agent, spec);
    expect(end.outcome?.kind).toBe("returned");
    const result = end.outcome?.result as {
      fields: Record<string, unknown>;
      remaining: number;
      env: Record<string, string | null>;
      cwd: string;
    };
    for (const key of SCF_CONTEXT_KEYS) expect(result.fields, key).toHaveProperty(key);
    expect(result.fields).toMatchObject({
      request_id: spec.requestId,
      function_name: "agent-test",
      function_version: "$LATEST",
      namespace: "default",
      memory_limit_in_mb: 256,
      time_limit_in_ms: 19_000,
      tencentcloud_region: "ap-guangzhou",
      tencentcloud_appid: "",
      tencentcloud_uin: "",
      callbackWaitsForEmptyEventLoop: true,
    });
    expect(JSON.parse(String(result.fields.environment))).toEqual({ ...environment, SCF_NAMESPACE: "default" });
    expect(String(result.fields.environ).split(";").sort()).toEqual(
      ["GREETING=hi", "TENCENTCLOUD_REGION=ap-guangzhou", "SCF_NAMESPACE=default"].sort(),
    );
    expect(result.remaining).toBeGreaterThan(10_000);
    expect(result.remaining).toBeLessThanOrEqual(19_000);
    expect(result.env).toEqual({
      SCF_FUNCTIONNAME: "agent-test",
      SCF_FUNCTIONVERSION: "$LATEST",
      SCF_NAMESPACE: "default",
      SCF_RUNTIME: "Nodejs18.15",
      USER_CODE_ROOT: result.cwd,
      TENCENTCLOUD_RUNENV: "SCF",
      GREETING: "hi",
      AFP_AGENT_TOKEN: null,
    });
  });

  it("gives a Python handler the same keys in a dict, and the SCF_* variables", async () => {
    const spec = executionSpec(fixture.python, { runtime: "Python3.9", handler: "index.context_fields", environment });
    const { end } = await runExecution(fixture.agent, spec);
    expect(end.outcome?.kind, JSON.stringify(end.outcome)).toBe("returned");
    const result = end.outcome?.result as {
      is_dict: boolean;
      fields: Record<string, unknown>;
      env: Record<string, unknown>;
    };
    expect(result.is_dict).toBe(true);
    expect(Object.keys(result.fields).sort()).toEqual([...SCF_CONTEXT_KEYS].sort());
    expect(result.fields).toMatchObject({
      request_id: spec.requestId,
      function_name: "agent-test",
      tencentcloud_region: "ap-guangzhou",
      tencentcloud_uin: "",
    });
    expect(JSON.parse(String(result.fields.environment))).toEqual({ ...environment, SCF_NAMESPACE: "default" });
    expect(result.env).toMatchObject({
      SCF_RUNTIME: "Python3.9",
      SCF_FUNCTIONNAME: "agent-test",
      TENCENTCLOUD_RUNENV: "SCF",
    });
  });

  it("starts a new handler process for another version of the same code, so its variables name it", async () => {
    const spec = executionSpec(fixture.node, { handler: "index.context_fields" });
    (spec.context as Record<string, unknown>).function_version = "3";
    const { end } = await runExecution(fixture.agent, spec);
    const result = end.outcome?.result as { fields: Record<string, unknown>; env: Record<string, unknown> };
    expect(result.fields.function_version).toBe("3");
    expect(result.env.SCF_FUNCTIONVERSION).toBe("3");
  });
});
