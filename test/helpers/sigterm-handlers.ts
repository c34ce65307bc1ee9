// Handlers that end in every way a handler can after SIGTERM (event.onSigterm: "return", "throw",
// "exit0", "exit3", "die" without a listener, anything else to ignore it), shared by the agent's
// and the platform's terminate-ending tests. Each prints "ready" once its behaviour is set up.

/** A Node.js handler that prints "ready" once its SIGTERM behaviour (event.onSigterm) is set up. */
export const SIGTERM_NODE_HANDLER = `
exports.main_handler = async (event) => {
  const mode = event.onSigterm;
  let stop;
  let fail;
  const stopped = new Promise((resolve, reject) => { stop = resolve; fail = reject; });
  const listener = () => {
    console.log("got SIGTERM");
    if (mode === "return") stop({ stopped: true });
    if (mode === "throw") fail(new Error("stopped on SIGTERM"));
    if (mode === "exit0") process.exit(0);
    if (mode === "exit3") process.exit(3);
  };
  if (mode !== "die") process.on("SIGTERM", listener);
  try {
    console.log("ready");
    const until = Date.now() + (event.runMs ?? 120000);
    while (Date.now() < until) {
      const ended = await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, 200))]);
      if (ended) return ended;
      console.log("tick");
    }
    return { stopped: false };
  } finally {
    process.removeListener("SIGTERM", listener);
  }
};
`;

/** The same handler in Python. */
export const SIGTERM_PYTHON_HANDLER = `
import signal
import sys
import time


def main_handler(event, context):
    mode = event.get("onSigterm")
    state = {"stopped": False}

    def on_sigterm(signum, frame):
        print("got SIGTERM", flush=True)
        if mode == "return":
            state["stopped"] = True
        if mode == "throw":
            raise RuntimeError("stopped on SIGTERM")
        if mode == "exit0":
            sys.exit(0)
        if mode == "exit3":
            sys.exit(3)

    if mode != "die":
        signal.signal(signal.SIGTERM, on_sigterm)
    try:
        print("ready", flush=True)
        until = time.time() + event.get("runMs", 120000) / 1000
        while not state["stopped"] and time.time() < until:
            time.sleep(0.2)
            print("tick", flush=True)
        return {"stopped": state["stopped"]}
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
`;
