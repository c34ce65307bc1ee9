// Output read in bursts: the agent logs the whole lines of one read of a pipe at once (one spool
// append, see Execution.logLines), and line by line when a line of the burst needs care (a NUL, an
// over-long line, the log limit reached within it). Either way every line is its own record, in order.
import { describe, expect, it } from "vitest";
import { agentWithHandlers, executionSpec, runExecution, userLines } from "./agent-harness";

/** The agent's longest kept line (containers/runtime/agent/limits.mjs MAX_LINE_CHARS). */
const MAX_LINE_CHARS = 64 * 1024;

/** Writes event.blocks to stdout, each in one write(2), so that each arrives as one burst. */
const HANDLER = `
const { writeSync } = require("fs");
exports.main_handler = async (event) => {
  for (const block of event.blocks) writeSync(1, block);
  return "done";
};
`;

/** Answers the sizes of its stdout and stderr pipes once both are 1 MiB, or after 5 s. */
const PIPE_SIZE_HANDLER = `
import fcntl
import time

F_GETPIPE_SZ = 1032

def main_handler(event, context):
    deadline = time.time() + 5
    sizes = []
    while time.time() < deadline:
        sizes = [fcntl.fcntl(fd, F_GETPIPE_SZ) for fd in (1, 2)]
        if sizes == [1048576, 1048576]:
            break
        time.sleep(0.02)
    return sizes
`;

/** One agent for the file: HANDLER as its Node.js package, PIPE_SIZE_HANDLER as its Python one. */
const fixture = agentWithHandlers(HANDLER, PIPE_SIZE_HANDLER);

describe("output written in bursts", () => {
  it("keeps every line of a burst as its own record and in order: digits, dashes and empty lines included", async () => {
    const lines = [
      "first",
      "42 starts with digits",
      "-7 starts with a dash",
      "",
      "",
      "after two empty lines",
      "é ü 中文",
    ];
    const burst = `${lines.join("\n")}\n`;
    const {
      lines: kept,
      records,
      end,
    } = await runExecution(fixture.agent, executionSpec(fixture.node, { event: { blocks: [burst, burst] } }));
    expect(end.outcome?.kind).toBe("returned");
    expect(userLines(kept)).toEqual([...lines, ...lines]);
    const seqs = records.filter((record) => record.type === "log").map((record) => record.seq ?? 0);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
  });

  it("replaces a NUL and cuts an over-long line inside a burst, keeping the lines around them", async () => {
    const long = "y".repeat(MAX_LINE_CHARS + 5_000);
    const burst = `before\nnul\u0000inside\n${long}\nafter\n`;
    const { lines: kept } = await runExecution(
      fixture.agent,
      executionSpec(fixture.node, { event: { blocks: [burst] } }),
    );
    const user = userLines(kept);
    expect(user[0]).toBe("before");
    expect(user[1]).toBe("nul\uFFFDinside");
    expect(user[2]?.startsWith("y".repeat(1000))).toBe(true);
    expect(user[2]?.length).toBeLessThanOrEqual(MAX_LINE_CHARS + 32);
    expect(user.slice(3)).toEqual(["after"]);
  });

  it("keeps exactly the lines under the log limit when the limit is crossed within a burst, and counts the rest", async () => {
    // 12,000 lines of 100 bytes (99 characters and the newline), 500 to a write: the 1 MiB limit
    // falls inside the 21st write, after 10,485 lines.
    const line = (i: number) => `line ${String(i).padStart(6, "0")} ${"x".repeat(87)}`;
    const blocks: string[] = [];
    for (let first = 0; first < 12_000; first += 500) {
      blocks.push(`${Array.from({ length: 500 }, (_, k) => line(first + k)).join("\n")}\n`);
    }
    const limit = 1024 * 1024;
    const keptCount = Math.floor(limit / 100);
    const { lines: kept, end } = await runExecution(
      fixture.agent,
      executionSpec(fixture.node, { logLimitBytes: limit, event: { blocks } }),
    );
    expect(end.outcome?.kind).toBe("returned");
    expect(userLines(kept)).toEqual(Array.from({ length: keptCount }, (_, i) => line(i)));
    const dropped = 12_000 - keptCount;
    expect(kept.filter((text) => text.includes("reached the limit"))).toHaveLength(1);
    expect(kept.at(-1)).toBe(`[PLATFORM] ${dropped} lines (${dropped * 100} bytes) over the log limit were dropped`);
  });
});

describe("the handler's output pipes", () => {
  it("are enlarged to 1 MiB, so that a burst rarely waits for the agent", async () => {
    const { end } = await runExecution(
      fixture.agent,
      executionSpec(fixture.python, { runtime: "Python3.11", handler: "index.main_handler" }),
    );
    expect(end.outcome).toMatchObject({ kind: "returned", result: [1048576, 1048576] });
  });
});
