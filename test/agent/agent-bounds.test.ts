import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { executionSpec, putFiles, type RunningAgent, runExecution, startAgent } from "./agent-harness";

/** A Node handler driven by its event, for every bound below. */
const HANDLER = `
const { writeSync } = require("fs");
exports.main_handler = async (event) => {
  if (event.emptyLines) {
    const block = "\\n".repeat(10000);
    for (let n = 0; n < event.emptyLines / 10000; n++) writeSync(1, block);
  }
  if (event.throwChars) throw new Error("x".repeat(event.throwChars));
  if (event.stackChars) {
    const error = new Error("deep");
    error.stack = "s".repeat(event.stackChars);
    throw error;
  }
  if (event.resultChars) return { big: "r".repeat(event.resultChars) };
  if (event.rawReportChars) {
    // Bypasses the bootstrap: one huge line straight onto the report channel.
    const chunk = "z".repeat(1024 * 1024);
    for (let n = 0; n < event.rawReportChars / chunk.length; n++) writeSync(3, chunk);
    writeSync(3, "\\n");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { ok: true, env: Object.keys(process.env).length };
};
`;

/** The same error and result bounds for a Python handler. */
const PYTHON_HANDLER = `
def main_handler(event, context):
    if event.get("throwChars"):
        raise ValueError("x" * event["throwChars"])
    if event.get("resultChars"):
        return {"big": "r" * event["resultChars"]}
    if event.get("nan"):
        return {"value": float("nan")}
    return {"ok": True}
`;

describe("bounds of an execution", () => {
  let agent: RunningAgent;
  let node: string;
  let python: string;
  beforeAll(async () => {
    agent = await startAgent();
    node = await putFiles(agent, { "index.js": HANDLER });
    python = await putFiles(agent, { "index.py": PYTHON_HANDLER });
  });
  afterAll(async () => {
    await agent.stop();
  });

  it("caps a flood of empty lines at logLimitBytes (1 byte each) with one marker and the dropped count at the end", async () => {
    const limit = 1024 * 1024;
    const { lines, end } = await runExecution(
      agent,
      executionSpec(node, { logLimitBytes: limit, event: { emptyLines: 1_100_000 } }),
    );
    expect(end.outcome?.kind).toBe("returned");
    const markers = lines.filter((line) => line.startsWith("[PLATFORM] Log output reached the limit"));
    expect(markers).toHaveLength(1);
    expect(lines.filter((line) => line === "")).toHaveLength(limit);
    const dropped = 1_100_000 - limit;
    expect(lines.at(-1)).toBe(`[PLATFORM] ${dropped} lines (${dropped} bytes) over the log limit were dropped`);
  });

  for (const [runtime, sha] of [
    ["Nodejs22", () => node],
    ["Python3.11", () => python],
  ] as const) {
    it(`caps a ${runtime} error message at 4 KB with a visible marker`, async () => {
      const { end } = await runExecution(
        agent,
        executionSpec(sha(), { runtime, handler: "index.main_handler", event: { throwChars: 3_000_000 } }),
      );
      expect(end.outcome?.kind).toBe("threw");
      const message = end.outcome?.message ?? "";
      expect(Buffer.byteLength(message)).toBeLessThanOrEqual(4096);
      expect(message).toMatch(/…\[truncated: \d+ bytes, limit 4096\]$/);
      expect(Buffer.byteLength(end.outcome?.stack ?? "")).toBeLessThanOrEqual(32 * 1024);
    });

    it(`fails a ${runtime} result over 1 MB of JSON with a message naming the limit`, async () => {
      const { end } = await runExecution(agent, executionSpec(sha(), { runtime, event: { resultChars: 1_100_000 } }));
      expect(end.outcome).toMatchObject({ kind: "threw" });
      expect(end.outcome?.message).toMatch(/^Result too large: .* over the limit of 1048576 bytes$/);
    });
  }

  it("caps a Node error stack at 32 KB", async () => {
    const { end } = await runExecution(agent, executionSpec(node, { event: { stackChars: 100_000 } }));
    expect(Buffer.byteLength(end.outcome?.stack ?? "")).toBeLessThanOrEqual(32 * 1024);
    expect(end.outcome?.stack).toMatch(/…\[truncated: 100000 bytes, limit 32768\]$/);
  });

  it("fails a Python result that is not JSON (NaN) instead of losing the report", async () => {
    const { end } = await runExecution(agent, executionSpec(python, { runtime: "Python3.11", event: { nan: true } }));
    expect(end.outcome?.kind).toBe("threw");
    expect(end.outcome?.message).toMatch(/not JSON/);
  });

  it("discards a report line over ~1.1 MB unbuffered and fails the event with a clear message", async () => {
    const { end } = await runExecution(agent, executionSpec(node, { event: { rawReportChars: 3 * 1024 * 1024 } }));
    expect(end.outcome?.kind).toBe("threw");
    expect(end.outcome?.message).toMatch(/outcome report is over \d+ characters and was discarded/);
  });

  it("ends an execution whose environment is too large with a clear error instead of spawning", async () => {
    const environment: Record<string, string> = {};
    for (let n = 0; n < 20; n++) environment[`VARIABLE_${n}`] = "v".repeat(4096);
    const { end } = await runExecution(agent, executionSpec(node, { environment }));
    expect(end.outcome).toMatchObject({ kind: "error" });
    expect(end.outcome?.message).toMatch(/environment .* over the limit of 65536/);
    const tooLong = await runExecution(agent, executionSpec(node, { environment: { ONE: "v".repeat(4097) } }));
    expect(tooLong.end.outcome?.message).toMatch(/ONE is 4097 characters, over the limit of 4096/);
  });

  it("still runs a handler after all of the above", async () => {
    const { end } = await runExecution(agent, executionSpec(node, { environment: { GREETING: "hi" } }));
    expect(end.outcome).toMatchObject({ kind: "returned", result: { ok: true } });
  });
});
