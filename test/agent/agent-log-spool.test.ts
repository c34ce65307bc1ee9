// The log spool (containers/runtime/agent/spool.mjs): a handler printing a million lines as fast as
// it can is read at full speed and every line reaches every reader of its stream, in order, without
// a gap, however slowly or late the reader reads (it resumes with ?after=); the spec's logLimitBytes
// bounds what is kept; the spool is the agent's alone and is deleted when its execution is forgotten.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import {
  type AgentRecord,
  agentWithHandlers,
  executionSpec,
  type RunningAgent,
  readRecords,
  recordsOf,
  runExecution,
  startAgent,
} from "./agent-harness";

/** Lines of the flood (about 14 MB of text, 100 MB of NDJSON on the stream). */
const FLOOD_LINES = 1_000_000;
/** Where the second reader of a flood disconnects (then waits, then resumes with ?after=). */
const DISCONNECT_AFTER_LINES = 300_000;
/** How long that reader stays away while the handler goes on printing. */
const AWAY_MS = 1_500;
/** Longest wait for a flood's records. */
const FLOOD_TIMEOUT_MS = 240_000;

/**
 * Prints event.lines lines `line <i>` as fast as it can, to stdout (console.log) or, with
 * event.devNull, the same console.log loop to /dev/null (a Console on a synchronous /dev/null
 * stream, as process.stdout is synchronous on a blocking pipe); returns the loop's own run time.
 * event.utf8 prints event.lines lines of event.utf8 instead. event.probe tries the spool folder.
 */
const NODE_HANDLER = `
const fs = require("fs");
const path = require("path");
const { Console } = require("console");
const { Writable } = require("stream");
function attempt(action) {
  try { action(); return "allowed"; } catch (error) { return error.code || String(error); }
}
exports.main_handler = async (event) => {
  if (event.probe) {
    return {
      list: attempt(() => fs.readdirSync(event.probe.root)),
      read: attempt(() => fs.readFileSync(event.probe.file)),
      append: attempt(() => fs.appendFileSync(event.probe.file, "forged\\n")),
      create: attempt(() => fs.writeFileSync(path.join(event.probe.root, "forged.log"), "x")),
    };
  }
  let out = console;
  if (event.devNull) {
    const fd = fs.openSync("/dev/null", "w");
    out = new Console({ stdout: new Writable({ write(chunk, encoding, done) { fs.writeSync(fd, chunk); done(); } }) });
  }
  const started = performance.now();
  if (event.utf8) for (let i = 0; i < event.lines; i++) out.log(event.utf8);
  else for (let i = 0; i < event.lines; i++) out.log("line " + i);
  return { ms: performance.now() - started };
};
`;

/** The same in Python: print() to stdout, or to /dev/null opened as -u opens stdout. */
const PYTHON_HANDLER = `
import io
import os
import sys
import time

def main_handler(event, context):
    out = sys.stdout
    if event.get("devNull"):
        out = io.TextIOWrapper(io.FileIO(os.devnull, "w"), encoding="utf-8", write_through=True)
    started = time.perf_counter()
    for i in range(event["lines"]):
        print("line " + str(i), file=out)
    return {"ms": (time.perf_counter() - started) * 1000}
`;

/** Checks that the log records are `line 0` … `line n-1` with seqs 2..n+1 after the started record. */
function expectFlood(records: AgentRecord[], count: number): void {
  expect(records.filter((record) => record.type === "gap")).toEqual([]);
  expect(records[0]).toMatchObject({ type: "started", seq: 1 });
  const logs = records.filter((record) => record.type === "log");
  expect(logs).toHaveLength(count);
  let wrong = 0;
  for (let i = 0; i < count; i++) {
    const record = logs[i] as AgentRecord;
    if (record.seq !== i + 2 || record.line !== `line ${i}` || record.stream !== "stdout") wrong += 1;
  }
  expect(wrong).toBe(0);
  expect(records.at(-1)).toMatchObject({ type: "end", seq: count + 2 });
}

/** Peak resident memory of a process, in KiB (VmHWM). */
function peakRssKb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/^VmHWM:\s+(\d+)/m.exec(status)?.[1] ?? Number.NaN);
}

/** Reads a whole stream without parsing it; returns its last line (the end record). */
async function tailOf(response: Response): Promise<string> {
  let tail = "";
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    tail = (tail + Buffer.from(chunk).toString("utf8")).slice(-4096);
  }
  const lines = tail.trimEnd().split("\n");
  return lines.at(-1) ?? "";
}

/** Reads a stream until `count` log records arrived, then drops the connection. */
async function readSomeThenDisconnect(agent: RunningAgent, requestId: string, count: number): Promise<AgentRecord[]> {
  const controller = new AbortController();
  const response = await agent.request(`/executions/${requestId}/stream?after=0`, { signal: controller.signal });
  const records: AgentRecord[] = [];
  let logs = 0;
  for await (const record of recordsOf(response)) {
    records.push(record);
    if (record.type === "log" && ++logs >= count) break;
  }
  controller.abort();
  return records;
}

describe("the log spool", () => {
  const handlers = agentWithHandlers(NODE_HANDLER, PYTHON_HANDLER);
  let agent: RunningAgent;
  let node: string;
  let python: string;
  beforeAll(() => ({ agent, node, python } = handlers));

  for (const runtime of ["Nodejs22", "Python3.11"] as const) {
    it(`serves all ${FLOOD_LINES} lines of a ${runtime} flood to every reader, a disconnected one included, in order, without a gap`, {
      timeout: FLOOD_TIMEOUT_MS,
    }, async () => {
      const sha = runtime === "Nodejs22" ? node : python;
      const timeoutMs = FLOOD_TIMEOUT_MS;
      // The handler's own run time: its loop to /dev/null, then to stdout with one reader that only
      // counts the bytes (as the relay, which parses nothing here). Printed, not asserted.
      const quiet = await runExecution(
        agent,
        executionSpec(sha, { runtime, timeoutMs, event: { lines: FLOOD_LINES, devNull: true } }),
      );
      expect(quiet.end.outcome?.kind).toBe("returned");
      const timed = executionSpec(sha, { runtime, timeoutMs, event: { lines: FLOOD_LINES } });
      const timedStarted = Date.now();
      const timedTail = await tailOf(
        await agent.request("/executions?stream=1", { method: "POST", body: JSON.stringify(timed) }),
      );
      const streamMs = Date.now() - timedStarted;
      const loud = (JSON.parse(timedTail) as AgentRecord & { outcome: { result?: { ms: number } } }).outcome.result?.ms;
      const silent = (quiet.end.outcome as { result?: { ms: number } }).result?.ms ?? Number.NaN;
      console.log(
        `${runtime}: ${FLOOD_LINES} lines, handler loop ${Math.round(loud ?? Number.NaN)} ms with its output captured vs ${Math.round(silent)} ms to /dev/null (${(((loud ?? Number.NaN) / silent - 1) * 100).toFixed(1)}%); ` +
          `whole stream read in ${streamMs} ms; agent peak RSS ${Math.round(peakRssKb(agent.process.pid as number) / 1024)} MiB`,
      );

      // Every line to every reader: one reading it all as it comes, one that leaves midway, stays
      // away while the handler prints on, then resumes with ?after=, and one reading after the end.
      const spec = executionSpec(sha, { runtime, timeoutMs, event: { lines: FLOOD_LINES } });
      const whole = runExecution(agent, spec);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const first = await readSomeThenDisconnect(agent, String(spec.requestId), DISCONNECT_AFTER_LINES);
      await new Promise((resolve) => setTimeout(resolve, AWAY_MS));
      const lastSeq = first.at(-1)?.seq ?? 0;
      const rest = await readRecords(await agent.request(`/executions/${spec.requestId}/stream?after=${lastSeq}`));
      const { records, end } = await whole;
      expect(end.outcome?.kind).toBe("returned");
      expectFlood(records, FLOOD_LINES);
      expectFlood([...first, ...rest], FLOOD_LINES);
      expectFlood(await readRecords(await agent.request(`/executions/${spec.requestId}/stream?after=0`)), FLOOD_LINES);
    });
  }

  it("keeps at most logLimitBytes (UTF-8 bytes + 1 a line), then one marker and the dropped count", async () => {
    const limit = 1024 * 1024;
    const line = "é".repeat(10); // 20 bytes of UTF-8, 21 counted
    const count = 100_000;
    const { lines, end } = await runExecution(
      agent,
      executionSpec(node, { logLimitBytes: limit, event: { lines: count, utf8: line } }),
    );
    expect(end.outcome?.kind).toBe("returned");
    const kept = Math.floor(limit / 21);
    expect(lines.filter((text) => text === line)).toHaveLength(kept);
    const platform = lines.filter((text) => text.startsWith("[PLATFORM]"));
    expect(platform).toEqual([
      `[PLATFORM] Log output reached the limit of ${limit} bytes for this execution (logLimitBytes): further lines are not kept`,
      `[PLATFORM] ${count - kept} lines (${(count - kept) * 21} bytes) over the log limit were dropped`,
    ]);
    expect(lines.at(-1)).toBe(platform[1]);
    expect(lines[kept]).toBe(platform[0]);
  });

  it("refuses a logLimitBytes outside 1 MiB..3 GiB", async () => {
    for (const logLimitBytes of [0, 1024, 1024 * 1024 - 1, 3 * 1024 ** 3 + 1, 1024 * 1024 + 0.5, "1GiB"]) {
      const response = await agent.request("/executions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(executionSpec(node, { logLimitBytes })),
      });
      expect(response.status, String(logLimitBytes)).toBe(400);
      expect(((await response.json()) as { error: string }).error).toBe(
        "logLimitBytes: must be an integer from 1048576 to 3221225472",
      );
    }
  });

  it.skipIf(process.getuid?.() !== 0)("keeps the handler out of the spool folder", async () => {
    const spec = executionSpec(node, { event: { lines: 10 } });
    const { end: printed } = await runExecution(agent, spec);
    expect(printed.outcome?.kind).toBe("returned");
    expect(statSync(agent.spoolRoot).mode & 0o777).toBe(0o700);
    const name = readdirSync(agent.spoolRoot).find((entry) => entry.startsWith(`${String(spec.requestId)}.`));
    const file = join(agent.spoolRoot, name ?? "missing");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const { end } = await runExecution(
      agent,
      executionSpec(node, { event: { probe: { root: agent.spoolRoot, file } } }),
    );
    expect(end.outcome).toEqual({
      kind: "returned",
      result: { list: "EACCES", read: "EACCES", append: "EACCES", create: "EACCES" },
    });
  });

  it("deletes an ended execution's spool when the next starts, keeping its end record for late readers", async () => {
    const first = executionSpec(node, { event: { lines: 100 } });
    await runExecution(agent, first);
    const spoolOf = (requestId: unknown) =>
      readdirSync(agent.spoolRoot).filter((name) => name.startsWith(`${String(requestId)}.`));
    expect(spoolOf(first.requestId)).toHaveLength(1);
    await runExecution(agent, executionSpec(node, { event: { lines: 10 } }));
    expect(spoolOf(first.requestId)).toEqual([]);
    // A late reader of the first execution: its lines are gone (a gap), its end is still served.
    const late = await readRecords(await agent.request(`/executions/${first.requestId}/stream?after=0`));
    expect(late[0]).toMatchObject({ type: "gap", from: 1 });
    expect(late.at(-1)).toMatchObject({ type: "end", outcome: { kind: "returned" } });
    for (let n = 0; n < 8; n++) await runExecution(agent, executionSpec(node, { event: { lines: 10 } }));
    expect((await agent.request(`/executions/${first.requestId}`)).status).toBe(404);
    // One spool at a time: the last execution's.
    expect(readdirSync(agent.spoolRoot).length).toBe(1);
  });
});

describe("the spool folder at agent start", () => {
  it("is emptied and made 0700", async () => {
    const parent = mkdtempSync(join(tmpdir(), "afp-spool-start-"));
    const root = join(parent, "spool");
    mkdirSync(root, { mode: 0o755 });
    writeFileSync(join(root, "stale.1.1.log"), "ostale\n");
    const agent = await startAgent({ env: { AGENT_SPOOL_ROOT: root } });
    try {
      expect(readdirSync(root)).toEqual([]);
      expect(statSync(root).mode & 0o777).toBe(0o700);
    } finally {
      await agent.stop();
      rmSync(parent, { recursive: true, force: true });
    }
  });
});
