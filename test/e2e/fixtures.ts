// Handlers used by the end-to-end suite.

/** A Node.js handler driven by its event: sleep, throw, exit, or return what it saw. */
export const NODE_HANDLER = `
exports.main_handler = async (event, context) => {
  console.log("start " + context.request_id);
  if (event.sleepMs) await new Promise((resolve) => setTimeout(resolve, event.sleepMs));
  if (event.throw) throw new Error(event.throw);
  if (event.exit !== undefined) process.exit(event.exit);
  console.error("done " + context.request_id);
  return {
    echo: event,
    requestId: context.request_id,
    functionName: context.function_name,
    namespace: context.namespace,
    memoryLimitInMb: context.memory_limit_in_mb,
    remainingMs: context.getRemainingTimeInMillis(),
    greeting: process.env.GREETING ?? null,
  };
};
`;

/** The same behaviours in Python. */
export const PYTHON_HANDLER = `
import os
import sys
import time


def main_handler(event, context):
    print("start " + context["request_id"])
    if event.get("sleepMs"):
        time.sleep(event["sleepMs"] / 1000)
    if event.get("throw"):
        raise ValueError(event["throw"])
    if "exit" in event:
        sys.exit(event["exit"])
    return {
        "echo": event,
        "requestId": context["request_id"],
        "functionName": context["function_name"],
        "python": "%d.%d" % sys.version_info[:2],
        "greeting": os.environ.get("GREETING"),
    }
`;

/** A Node.js handler that keeps allocating until the heap limit (the function's memory size) is hit. */
export const NODE_MEMORY_HOG = `
exports.main_handler = async () => {
  const hoard = [];
  for (;;) hoard.push(new Array(1e6).fill(Math.random()));
};
`;

/**
 * A long job that checkpoints on SIGTERM when the event asks it to listen, and otherwise just runs.
 * Prints "tick" while it works so that a follower sees it alive.
 */
export const NODE_LONG_JOB = `
exports.main_handler = async (event) => {
  let stopping = false;
  if (event.listen) {
    process.once("SIGTERM", () => {
      console.log("cleanup: checkpoint saved");
      stopping = true;
    });
  }
  if (event.ignoreSigterm) process.once("SIGTERM", () => console.log("ignoring SIGTERM"));
  const until = Date.now() + (event.runMs ?? 60000);
  while (!stopping && Date.now() < until) {
    console.log("tick");
    await new Promise((resolve) => setTimeout(resolve, event.tickMs ?? 200));
  }
  return { stopped: stopping };
};
`;

/** The same job in Python. */
export const PYTHON_LONG_JOB = `
import signal
import time

stopping = False


def on_sigterm(signum, frame):
    global stopping
    print("cleanup: checkpoint saved", flush=True)
    stopping = True


def main_handler(event, context):
    global stopping
    stopping = False
    if event.get("listen"):
        signal.signal(signal.SIGTERM, on_sigterm)
    until = time.time() + event.get("runMs", 60000) / 1000
    while not stopping and time.time() < until:
        print("tick", flush=True)
        time.sleep(event.get("tickMs", 200) / 1000)
    return {"stopped": stopping}
`;

/** Prints `line N t=<ms>` every intervalMs, count times, then returns. */
export const NODE_TICKER = `
exports.main_handler = async (event) => {
  for (let n = 0; n < (event.count ?? 100); n++) {
    console.log("line " + n + " t=" + Date.now());
    await new Promise((resolve) => setTimeout(resolve, event.intervalMs ?? 100));
  }
  return { printed: event.count ?? 100 };
};
`;

/** Writes awkward output: ANSI colours, invalid UTF-8, NUL bytes, a 10 MB line, or a 50 MB flood. */
export const PYTHON_AWKWARD_OUTPUT = `
import sys


def main_handler(event, context):
    out = sys.stdout.buffer
    if event.get("kind") == "awkward":
        out.write(b"\\x1b[31mred alert\\x1b[0m\\n")
        out.write(b"bad bytes \\xff\\xfe here\\n")
        out.write(b"nul\\x00inside\\n")
        out.write(b"x" * (10 * 1024 * 1024) + b"\\n")
        out.write(b"after the long line\\n")
    if event.get("kind") == "flood":
        row = b"y" * 99 + b"\\n"
        block = row * 10000
        for _ in range(50):
            out.write(block)
    out.flush()
    return {"done": True}
`;
