// A handler's progress (`context.progress(percent, message)`) leaves the agent as `progress` records:
// in order before the end record, bounded (percent clamped, message cut with a marker), coalesced
// (at most one every MIN_PROGRESS_INTERVAL_MS, the latest winning, the last one before the end never
// lost), and never after the event's end.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { agentRecordSchema } from "../../worker/contract/agent-contract";
import {
  MAX_PROGRESS_MESSAGE_CHARS,
  MIN_PROGRESS_INTERVAL_MS,
  PROGRESS_TRUNCATED_MARKER,
} from "../../worker/contract/agent-records";
import {
  AGENT_DIR,
  type AgentRecord,
  agentWithHandlers,
  executionSpec,
  type RunningAgent,
  runExecution,
} from "./agent-harness";

const NODE_HANDLER = `
const { writeSync } = require("node:fs");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
exports.main_handler = async (event, context) => {
  switch (event.mode) {
    case "steps":
      context.progress(10, "downloading");
      await sleep(400);
      context.progress(50, "transcoding");
      await sleep(400);
      context.progress(100);
      return "done";
    case "burst":
      for (let i = 1; i <= 1000; i++) context.progress(i / 10, "step " + i);
      return "done";
    case "bounds":
      context.progress(150, "x".repeat(1000) + "\\nsecond line");
      await sleep(400);
      context.progress(-5, null);
      for (const bad of [["50"], [Number.NaN], [Number.POSITIVE_INFINITY], [10, 42]]) {
        try {
          context.progress(...bad);
          console.log("accepted " + JSON.stringify(bad));
        } catch (error) {
          console.log(error.name + ": " + error.message);
        }
      }
      await sleep(400);
      // The agent bounds what reaches fd 3 again: a handler may write there itself.
      writeSync(3, JSON.stringify({ requestId: context.request_id, kind: "progress", percent: 1e9, message: "y".repeat(5000) }) + "\\n");
      await sleep(400);
      writeSync(3, JSON.stringify({ requestId: context.request_id, kind: "progress", percent: "lots", message: "ignored" }) + "\\n");
      return "done";
    case "late":
      setTimeout(() => context.progress(77, "after the end"), 100);
      return "returned";
    default:
      await sleep(event.waitMs ?? 0);
      return "quiet";
  }
};
`;

const PYTHON_HANDLER = `
import time

def main_handler(event, context):
    if event.get("mode") == "steps":
        context.progress(10, "downloading")
        time.sleep(0.4)
        context.progress(50.5, "transcoding")
        time.sleep(0.4)
        context.progress(100)
        return "done"
    context.progress(250, "y" * 1000)
    try:
        context.progress("50", "text")
    except TypeError as error:
        print("TypeError: " + str(error))
    try:
        context.progress(float("nan"))
    except TypeError as error:
        print("TypeError: " + str(error))
    return context["request_id"]
`;

function progressOf(records: AgentRecord[]): { percent: number; message: string; seq: number }[] {
  return records
    .filter((record) => record.type === "progress")
    .map((record) => record as unknown as { percent: number; message: string; seq: number });
}

describe("progress records", () => {
  const handlers = agentWithHandlers(NODE_HANDLER, PYTHON_HANDLER);
  let agent: RunningAgent;
  let node: string;
  let python: string;
  beforeAll(() => ({ agent, node, python } = handlers));

  it("writes a Node.js handler's three progress steps in order, before the end record", async () => {
    const { records, end } = await runExecution(agent, executionSpec(node, { event: { mode: "steps" } }));
    expect(end.outcome).toEqual({ kind: "returned", result: "done" });
    const progress = progressOf(records);
    expect(progress.map(({ percent, message }) => ({ percent, message }))).toEqual([
      { percent: 10, message: "downloading" },
      { percent: 50, message: "transcoding" },
      { percent: 100, message: "" },
    ]);
    for (const record of records) expect(agentRecordSchema.safeParse(record).success).toBe(true);
    // Seqs continue the log's, and the end comes after the last progress.
    expect(progress.every((record, i) => i === 0 || record.seq > (progress[i - 1]?.seq ?? 0))).toBe(true);
    expect(end.seq).toBeGreaterThan(progress.at(-1)?.seq ?? Number.POSITIVE_INFINITY);
  });

  it("coalesces a burst of reports, keeping the latest one made before the end", async () => {
    const started = Date.now();
    const { records } = await runExecution(agent, executionSpec(node, { event: { mode: "burst" } }));
    const progress = progressOf(records);
    // 1000 reports: the first at once, the rest at most one per interval while the handler ran.
    const allowed = 2 + Math.ceil((Date.now() - started) / MIN_PROGRESS_INTERVAL_MS);
    expect(progress.length).toBeGreaterThanOrEqual(1);
    expect(progress.length).toBeLessThanOrEqual(Math.min(allowed, 10));
    expect(progress.at(-1)).toMatchObject({ percent: 100, message: "step 1000" });
  });

  it("bounds percent and message, refuses non-numbers with a TypeError and ignores a raw non-number", async () => {
    const { records, lines, end } = await runExecution(agent, executionSpec(node, { event: { mode: "bounds" } }));
    expect(end.outcome).toEqual({ kind: "returned", result: "done" });
    const progress = progressOf(records);
    expect(progress).toHaveLength(3);
    const [clamped, low, raw] = progress;
    expect(clamped?.percent).toBe(100);
    expect(clamped?.message).toHaveLength(MAX_PROGRESS_MESSAGE_CHARS);
    expect(clamped?.message.endsWith(PROGRESS_TRUNCATED_MARKER)).toBe(true);
    expect(clamped?.message).not.toContain("\n");
    expect(low).toMatchObject({ percent: 0, message: "" });
    expect(raw?.percent).toBe(100);
    expect(raw?.message).toHaveLength(MAX_PROGRESS_MESSAGE_CHARS);
    const refusals = lines.filter((line) => line.startsWith("TypeError: context.progress"));
    expect(refusals).toHaveLength(4);
    expect(lines.some((line) => line.startsWith("accepted"))).toBe(false);
  });

  it("ignores a report made after the handler returned, in that event and the next", async () => {
    const first = await runExecution(agent, executionSpec(node, { event: { mode: "late" } }));
    expect(progressOf(first.records)).toEqual([]);
    const next = await runExecution(agent, executionSpec(node, { event: { waitMs: 400 } }));
    expect(next.end.outcome).toEqual({ kind: "returned", result: "quiet" });
    expect(progressOf(next.records)).toEqual([]);
  });

  it("writes a Python handler's progress steps, bounded, with a TypeError for non-numbers", async () => {
    const steps = await runExecution(agent, executionSpec(python, { runtime: "Python3.11", event: { mode: "steps" } }));
    expect(steps.end.outcome).toEqual({ kind: "returned", result: "done" });
    expect(progressOf(steps.records).map(({ percent, message }) => ({ percent, message }))).toEqual([
      { percent: 10, message: "downloading" },
      { percent: 50.5, message: "transcoding" },
      { percent: 100, message: "" },
    ]);
    const spec = executionSpec(python, { runtime: "Python3.11", event: {} });
    const bounds = await runExecution(agent, spec);
    // The context is still SCF's dict.
    expect(bounds.end.outcome).toEqual({ kind: "returned", result: spec.requestId });
    const [only, ...rest] = progressOf(bounds.records);
    expect(rest).toEqual([]);
    expect(only?.percent).toBe(100);
    expect(only?.message).toHaveLength(MAX_PROGRESS_MESSAGE_CHARS);
    expect(only?.message.endsWith(PROGRESS_TRUNCATED_MARKER)).toBe(true);
    expect(bounds.lines.filter((line) => line.startsWith("TypeError: context.progress"))).toHaveLength(2);
  });

  it("keeps the bootstraps' bounds equal to the container contract's", async () => {
    const limitsModule: string = join(AGENT_DIR, "limits.mjs");
    const limits = (await import(limitsModule)) as Record<string, unknown>;
    expect(limits.MAX_PROGRESS_MESSAGE_CHARS).toBe(MAX_PROGRESS_MESSAGE_CHARS);
    expect(limits.PROGRESS_TRUNCATED_MARKER).toBe(PROGRESS_TRUNCATED_MARKER);
  });
});

/** What the spool-failure test reads of the agent's Execution (containers/runtime/agent/execution.mjs). */
interface ExecutionUnderTest {
  memoryRecords: { type: string; line?: string }[];
  reportProgress(percent: number, message: string): void;
  end(outcome: unknown, maxRssKb?: number, exitCode?: number | null, signal?: string | null): void;
}

describe("progress after the spool failed", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("keeps only the latest report in memory, written once before the end record", async () => {
    vi.useFakeTimers();
    const executionModule: string = join(AGENT_DIR, "execution.mjs");
    const { Execution } = (await import(executionModule)) as {
      Execution: new (spec: Record<string, unknown>, spoolRoot: string) => ExecutionUnderTest;
    };
    // A spool root that is a file: the spool cannot be made, records are kept in memory.
    const notADirectory = join(mkdtempSync(join(tmpdir(), "afp-progress-spool-")), "file");
    writeFileSync(notADirectory, "");
    const execution = new Execution({ requestId: "progress-spool-failed", logLimitBytes: 1024 * 1024 }, notADirectory);
    const progressKept = () => execution.memoryRecords.filter((record) => record.type === "progress");
    for (let i = 1; i <= 200; i += 1) {
      execution.reportProgress(i / 2, `step ${i}`);
      await vi.advanceTimersByTimeAsync(MIN_PROGRESS_INTERVAL_MS + 10);
    }
    expect(progressKept()).toEqual([]);
    execution.end({ kind: "returned", result: "done" });
    expect(progressKept()).toHaveLength(1);
    expect(progressKept()[0]?.line).toBe("100 step 200");
  });
});
