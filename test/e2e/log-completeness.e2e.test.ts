// Every line a handler writes right before it returns, throws or exits is kept, in order, in the
// event's log: in Node.js (whose stdout to a pipe is asynchronous) and in Python.
import { describe, expect, inject, it } from "vitest";
import { ApiClient } from "../helpers/api-client";

const api = new ApiClient(inject("baseUrl"));
const NAMESPACE = "default";

/** Sizes of the burst written right before the handler ends. */
const BURSTS = [2_000, 20_000];
/** How long one event (a cold container included) may take to end on a shared, slow machine. */
const EVENT_DEADLINE_MS = 120_000;

/** Prints event.lines numbered lines, then returns, throws or exits (event.end). */
const BURST_NODE = `
exports.main_handler = async (event) => {
  for (let i = 0; i < event.lines; i++) console.log("line " + i);
  if (event.end === "throw") throw new Error("thrown after the burst");
  if (event.end === "exit") process.exit(0);
  return "done";
};
`;

/** The same in Python. */
const BURST_PYTHON = `
import sys


def main_handler(event, context):
    for i in range(event["lines"]):
        print("line " + str(i))
    if event["end"] == "throw":
        raise ValueError("raised after the burst")
    if event["end"] == "exit":
        sys.exit(0)
    return "done"
`;

/** Every stdout line of an event, read page by page through the log API, in seq order. */
async function stdoutLines(requestId: string): Promise<string[]> {
  const lines: string[] = [];
  let after = 0;
  for (;;) {
    const page = await api.logPage(requestId, after);
    if (page.records.length === 0) return lines;
    for (const record of page.records) if (record.stream === "stdout") lines.push(record.line);
    after = page.records.at(-1)?.seq ?? after;
  }
}

const ENDINGS = [
  { end: "return", status: "FINISHED", statusCode: 200 },
  { end: "throw", status: "FAILED", statusCode: 430 },
  { end: "exit", status: "FAILED", statusCode: 439 },
] as const;

for (const runtime of ["Nodejs22", "Python3.11"] as const) {
  describe(`log completeness of a ${runtime} handler`, () => {
    let name: string | undefined;
    const functionName = async (): Promise<string> => {
      name ??= await api.createUniqueFunction(NAMESPACE, runtime === "Nodejs22" ? "burst" : "pyburst", {
        runtime,
        files: runtime === "Nodejs22" ? { "index.js": BURST_NODE } : { "index.py": BURST_PYTHON },
        timeout: 120,
      });
      return name;
    };

    for (const { end, status, statusCode } of ENDINGS) {
      it(
        `keeps every line of bursts written right before it ends by ${end}, in order`,
        async () => {
          for (const lines of BURSTS) {
            const requestId = await api.invoke(NAMESPACE, await functionName(), { lines, end });
            const done = await api.waitForEvent(requestId, undefined, EVENT_DEADLINE_MS);
            expect(done).toMatchObject({ status, statusCode });
            const kept = await stdoutLines(requestId);
            expect(kept.length).toBe(lines);
            expect(kept).toEqual(Array.from({ length: lines }, (_, i) => `line ${i}`));
          }
        },
        2 * BURSTS.length * EVENT_DEADLINE_MS,
      );
    }
  });
}
