// The Node.js bootstrap's output ring (containers/runtime/agent/output-ring.mjs): in a burst, the
// handler's writes go through a ring that a thread of its process hands to the pipes many at a
// time. Nothing is lost or reordered on either stream, nothing is held back while the handler runs
// on, and process.stdout.write keeps its API.
import { describe, expect, it } from "vitest";
import {
  type AgentRecord,
  agentWithHandlers,
  executionSpec,
  recordsOf,
  runExecution,
  userLines,
} from "./agent-harness";

/**
 * Modes of one handler (event.mode). Each answers `ring`: whether its process's output ring has
 * started (the bootstrap's own module instance, found beside the bootstrap, process.argv[1]).
 */
const HANDLER = `
const { dirname, join } = require("path");
const { pathToFileURL } = require("url");
const ringModule = () => import(pathToFileURL(join(dirname(process.argv[1]), "output-ring.mjs")).href);
const ringStarted = async () => (await ringModule()).outputRingStarted();
exports.main_handler = async (event) => {
  if (event.mode === "noThread") {
    // The ring's thread fails as it starts (as it would with no thread left under the process limit).
    (await ringModule()).setRingThreadScript(new URL("data:text/javascript,throw new Error('no thread')"));
    for (let i = 0; i < event.lines; i++) console.log("line " + i);
    if (event.pauseMs) {
      await new Promise((resolve) => setTimeout(resolve, event.pauseMs));
      for (let i = event.lines; i < 2 * event.lines; i++) console.log("line " + i);
    }
  }
  if (event.mode === "streams") {
    for (let i = 0; i < event.lines; i++) (i % 10 === 9 ? console.error : console.log)("line " + i);
  }
  if (event.mode === "text") {
    for (let i = 0; i < event.lines; i++) console.log(i + " " + event.text);
  }
  if (event.mode === "uncaught") {
    setTimeout(() => {
      for (let i = 0; i < event.lines; i++) console.error("line " + i);
      throw new Error("thrown after the burst");
    }, 0);
    await new Promise(() => {});
  }
  if (event.mode === "exitListener") {
    process.on("exit", () => {
      for (let i = 0; i < event.exitLines; i++) console.log("exit " + i);
    });
    for (let i = 0; i < event.lines; i++) console.log("line " + i);
    process.exit(0);
  }
  if (event.mode === "busy") {
    for (let i = 0; i < event.lines; i++) console.log("line " + i);
    console.log("before the busy loop");
    const busyUntil = Date.now() + event.busyMs;
    while (Date.now() < busyUntil);
    return { ring: await ringStarted(), busyEndedAt: Date.now() };
  }
  if (event.mode === "api") {
    for (let i = 0; i < event.lines; i++) console.log("line " + i);
    let called = 0;
    const counted = () => { called++; };
    const answers = [
      process.stdout.write(Buffer.from("from a buffer\\n")),
      process.stdout.write("6865780a", "hex"),
      process.stdout.write(new Uint8Array([117, 56, 10])),
      process.stdout.write("with a callback\\n", counted),
      process.stdout.write("with the same callback\\n", counted),
      process.stderr.write("utf8 named\\n", "utf8", counted),
      process.stdout.write(""),
    ];
    const calledAtOnce = called;
    await new Promise((resolve) => setImmediate(resolve));
    let typeError = "";
    try { process.stdout.write(42); } catch (error) { typeError = error.name; }
    return { ring: await ringStarted(), answers, calledAtOnce, called, typeError };
  }
  if (event.mode === "slow") {
    for (let i = 0; i < event.lines; i++) {
      console.log("line " + i);
      await new Promise((resolve) => setTimeout(resolve, event.pauseMs));
    }
  }
  return { ring: await ringStarted() };
};
`;

/** One agent; the handler as two packages (a comment apart), so that "slow" has a process of its own. */
const fixture = agentWithHandlers(HANDLER, "def main_handler(event, context):\n    return None\n");
const quiet = agentWithHandlers(`${HANDLER}\n// the package of the handler that writes slowly\n`, "");

const numbered = (from: number, to: number, keep: (i: number) => boolean) =>
  Array.from({ length: to - from }, (_, k) => from + k)
    .filter(keep)
    .map((i) => `line ${i}`);

function linesOf(records: AgentRecord[], stream: string): string[] {
  return userLines(
    records.filter((record) => record.type === "log" && record.stream === stream).map((r) => r.line ?? ""),
  );
}

describe("the output ring", () => {
  it("keeps every line of a burst on stdout and on stderr, each stream in order", async () => {
    const lines = 100_000;
    const { records, end } = await runExecution(
      fixture.agent,
      executionSpec(fixture.node, { event: { mode: "streams", lines } }),
    );
    expect(end.outcome).toMatchObject({ kind: "returned", result: { ring: true } });
    expect(linesOf(records, "stdout")).toEqual(numbered(0, lines, (i) => i % 10 !== 9));
    expect(linesOf(records, "stderr")).toEqual(numbered(0, lines, (i) => i % 10 === 9));
  });

  it("keeps multi-byte characters whole where a write wraps around the ring's end", async () => {
    // About 60 bytes a line, 40,000 lines: 2.4 MB, so the 1 MiB ring wraps twice.
    const text = "é ü 中文 😀 ".repeat(4);
    const { lines, end } = await runExecution(
      fixture.agent,
      executionSpec(fixture.node, { event: { mode: "text", lines: 40_000, text } }),
    );
    expect(end.outcome).toMatchObject({ kind: "returned", result: { ring: true } });
    expect(userLines(lines)).toEqual(Array.from({ length: 40_000 }, (_, i) => `${i} ${text}`));
  });

  it("puts every line of a burst before the stack of an uncaught exception that follows it", async () => {
    const lines = 20_000;
    const { records, end } = await runExecution(
      fixture.agent,
      executionSpec(fixture.node, { event: { mode: "uncaught", lines } }),
    );
    expect(end.outcome?.kind).not.toBe("returned");
    const stderr = linesOf(records, "stderr");
    expect(stderr.slice(0, lines)).toEqual(numbered(0, lines, () => true));
    expect(stderr.slice(lines).join("\n")).toContain("thrown after the burst");
  });

  it("keeps the lines that an exit listener writes after a burst and process.exit()", async () => {
    const [lines, exitLines] = [20_000, 200_000];
    const { lines: kept } = await runExecution(
      fixture.agent,
      executionSpec(fixture.node, { event: { mode: "exitListener", lines, exitLines } }),
    );
    const fromListener = Array.from({ length: exitLines }, (_, i) => `exit ${i}`);
    expect(userLines(kept)).toEqual([...numbered(0, lines, () => true), ...fromListener]);
  });

  it("hands a line written in a burst to the agent while the handler runs on without yielding", async () => {
    const response = await fixture.agent.request("/executions?stream=1", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(executionSpec(fixture.node, { event: { mode: "busy", lines: 5_000, busyMs: 3_000 } })),
    });
    expect(response.status).toBe(201);
    let markerAt: number | undefined;
    let end: AgentRecord | undefined;
    for await (const record of recordsOf(response)) {
      if (record.type === "log" && record.line === "before the busy loop") markerAt = Date.now();
      if (record.type === "end") {
        end = record;
        break;
      }
    }
    const result = end?.outcome?.result as { ring: boolean; busyEndedAt: number };
    expect(result.ring).toBe(true);
    expect(markerAt).toBeDefined();
    // The line arrived while the handler was still in its busy loop, not when it let go.
    expect(markerAt).toBeLessThan(result.busyEndedAt);
  });

  it("keeps process.stdout.write's API: buffers, encodings, callbacks on the next tick, true, a TypeError", async () => {
    const { records, end } = await runExecution(
      fixture.agent,
      executionSpec(fixture.node, { event: { mode: "api", lines: 1_000 } }),
    );
    expect(end.outcome).toMatchObject({
      kind: "returned",
      result: { ring: true, answers: Array(7).fill(true), calledAtOnce: 0, called: 3, typeError: "TypeError" },
    });
    expect(linesOf(records, "stdout").slice(1_000)).toEqual([
      "from a buffer",
      "hex",
      "u8",
      "with a callback",
      "with the same callback",
    ]);
    expect(linesOf(records, "stderr")).toEqual(["utf8 named"]);
  });
});

describe("a ring whose thread cannot start", () => {
  // The handler writes `lines` lines, or with pauseMs that many, a pause, and as many again.
  const cases = [
    // The lines wait in the ring until the end mark, which writes them (the ring still stands when
    // the handler returns).
    { lines: 1_000, pauseMs: 0, ringAtReturn: true },
    // The thread's failure is seen in the pause: the next write writes the ring, then goes direct.
    { lines: 1_000, pauseMs: 300, ringAtReturn: false },
    // 2.3 MB fill the ring while the handler never yields: past the start timeout it writes the
    // ring itself and goes on without it.
    { lines: 200_000, pauseMs: 0, ringAtReturn: false },
  ];
  for (const { lines, pauseMs, ringAtReturn } of cases) {
    it(`loses no line: ${lines} lines${pauseMs ? `, a pause, ${lines} more` : ""}`, async () => {
      const { lines: kept, end } = await runExecution(
        fixture.agent,
        executionSpec(fixture.node, {
          event: { mode: "noThread", lines, pauseMs },
          // A process of its own (another configuration), whose ring has not started yet.
          environment: { CASE: `no-thread-${lines}-${pauseMs}` },
        }),
      );
      expect(end.outcome).toMatchObject({ kind: "returned", result: { ring: ringAtReturn } });
      expect(userLines(kept)).toEqual(numbered(0, pauseMs ? 2 * lines : lines, () => true));
    });
  }
});

describe("output written slowly", () => {
  it("goes straight to the pipes: the ring never starts", async () => {
    const { lines, end } = await runExecution(
      quiet.agent,
      executionSpec(quiet.node, { event: { mode: "slow", lines: 300, pauseMs: 1 } }),
    );
    expect(end.outcome).toMatchObject({ kind: "returned", result: { ring: false } });
    expect(userLines(lines)).toEqual(numbered(0, 300, () => true));
  });
});
