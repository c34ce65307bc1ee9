// The external run counter of `npm run chaos`: an HTTP server outside the platform and outside
// every container, to which each chaos handler reports its own run (POST /run/<RequestId>) before
// it does anything else. "Ran twice" is then read from outside, not from the platform's belief.
//
// Containers cannot reach the host (scripts/local-engine.sh rejects container → host traffic in
// AFP-CONTAINERS-TO-HOST), and no firewall rule is weakened for this: the counter runs in a
// network namespace of its own, joined to the host by a veth pair, so that to a container it is
// one more address beyond the host, reached the way the internet is (forwarded out of docker0 and
// masqueraded, as Docker does for all outbound traffic). It is torn down by stop().
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createInterface } from "node:readline";

/** Port the counter listens on inside its namespace. */
const COUNTER_PORT = 8099;
/** How long the counter may take to listen, in ms. */
const COUNTER_READY_TIMEOUT_MS = 10_000;

/** The counting server, written to the namespace's node process on its standard input. */
const COUNTER_SERVER = `
const http = require("http");
const runs = new Map();
http.createServer((request, response) => {
  const match = /^\\/run\\/([0-9a-f-]{36})$/.exec(request.url || "");
  if (request.method === "POST" && match) {
    runs.set(match[1], (runs.get(match[1]) || 0) + 1);
    response.end("counted");
  } else if (request.method === "GET" && request.url === "/runs") {
    response.setHeader("content-type", "application/json");
    response.end(JSON.stringify(Object.fromEntries(runs)));
  } else {
    response.statusCode = 404;
    response.end();
  }
}).listen(${COUNTER_PORT}, "0.0.0.0", () => console.log("listening"));
`;

/** A running external counter. */
export interface RunCounter {
  /** The URL handlers report to (from inside their containers), e.g. http://10.253.7.2:8099. */
  url: string;
  /** Runs per RequestId reported so far. */
  runs(): Promise<Map<string, number>>;
  stop(): void;
}

function ip(...args: string[]): void {
  execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}

/**
 * Starts the counter in a fresh network namespace (needs root and iproute2). The /30 subnet is
 * picked from 10.253.0.0/16 by this process's pid, so two chaos runs do not collide.
 */
export async function startRunCounter(): Promise<RunCounter> {
  const tag = process.pid % 16_000;
  const namespace = `afp-chaos-${process.pid}`;
  const hostLink = `afpch${tag}h`;
  const namespaceLink = `afpch${tag}n`;
  const base = (tag % 64) * 4;
  const subnetPrefix = `10.253.${Math.floor(tag / 64)}`;
  const hostAddress = `${subnetPrefix}.${base + 1}`;
  const counterAddress = `${subnetPrefix}.${base + 2}`;
  ip("netns", "add", namespace);
  let server: ChildProcess | undefined;
  const stop = () => {
    server?.kill("SIGKILL");
    try {
      ip("link", "del", hostLink);
    } catch {
      // gone with the namespace
    }
    try {
      ip("netns", "del", namespace);
    } catch {
      // already gone
    }
  };
  try {
    ip("link", "add", hostLink, "type", "veth", "peer", "name", namespaceLink);
    ip("link", "set", namespaceLink, "netns", namespace);
    ip("addr", "add", `${hostAddress}/30`, "dev", hostLink);
    ip("link", "set", hostLink, "up");
    ip("netns", "exec", namespace, "ip", "addr", "add", `${counterAddress}/30`, "dev", namespaceLink);
    ip("netns", "exec", namespace, "ip", "link", "set", namespaceLink, "up");
    ip("netns", "exec", namespace, "ip", "link", "set", "lo", "up");
    server = spawn("ip", ["netns", "exec", namespace, process.execPath, "-"], { stdio: ["pipe", "pipe", "inherit"] });
    server.stdin?.end(COUNTER_SERVER);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the run counter did not listen")), COUNTER_READY_TIMEOUT_MS);
      if (!server?.stdout) return reject(new Error("the run counter has no output"));
      createInterface({ input: server.stdout }).once("line", () => {
        clearTimeout(timer);
        resolve();
      });
      server.once("exit", (code) => reject(new Error(`the run counter exited (${code})`)));
    });
  } catch (error) {
    stop();
    throw error;
  }
  const url = `http://${counterAddress}:${COUNTER_PORT}`;
  return {
    url,
    async runs() {
      const response = await fetch(`${url}/runs`);
      return new Map(Object.entries((await response.json()) as Record<string, number>));
    },
    stop,
  };
}
