import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AGENT_DIR } from "./agent-harness";

/** Stands in for the agent: reports forwarded signals, makes orphans on request, exits on SIGTERM. */
const AGENT_STAND_IN = `
const { spawn } = require("child_process");
for (const signal of ["SIGUSR1", "SIGHUP"]) process.on(signal, () => console.log("got " + signal));
process.on("SIGTERM", () => { console.log("got SIGTERM"); process.exit(7); });
// Double fork: the subshell exits at once, its sleep is orphaned and exits 200 ms later.
for (let n = 0; n < 5; n++) spawn("sh", ["-c", "(sleep 0.2 &); exit 0"], { stdio: "ignore" });
console.log("ready");
setInterval(() => {}, 1000);
`;

/** [pid, state] of the processes whose parent is ppid. */
function childrenOf(ppid: number): [number, string][] {
  const found: [number, string][] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields =
        readFileSync(join("/proc", entry, "stat"), "utf8")
          .split(") ")[1]
          ?.split(" ") ?? [];
      if (Number(fields[1]) === ppid) found.push([Number(entry), fields[0] ?? ""]);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function startInit(): { init: ChildProcess; output: () => string } {
  const init = spawn("python3", [join(AGENT_DIR, "init.py"), process.execPath, "-e", AGENT_STAND_IN], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let output = "";
  init.stdout?.setEncoding("utf8");
  init.stdout?.on("data", (chunk: string) => {
    output += chunk;
  });
  return { init, output: () => output };
}

describe("init.py (PID 1 of a function container)", () => {
  it("reaps orphans of a double fork, forwards signals to the agent and exits with its status", async () => {
    const { init, output } = startInit();
    const exited = new Promise<number | null>((resolve) => init.once("exit", (code) => resolve(code)));
    await expect.poll(output).toContain("ready");
    // The orphaned sleeps come to init (a subreaper here; PID 1 in the container) and end: none stays a zombie.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const pid = init.pid ?? 0;
    expect(childrenOf(pid).filter(([, state]) => state === "Z")).toEqual([]);
    init.kill("SIGUSR1");
    await expect.poll(output).toContain("got SIGUSR1");
    init.kill("SIGHUP");
    await expect.poll(output).toContain("got SIGHUP");
    init.kill("SIGTERM");
    expect(await exited).toBe(7);
    expect(output()).toContain("got SIGTERM");
  });
});
