// Isolation of function containers on the local engine (issue 9): the iptables rules and dockerd
// flags of scripts/local-engine.sh, the loopback-only tunnel of the network sidecar, and the memory
// and process-count caps of scripts/container-guard.mjs. Every check runs as a handler would attack:
// from inside a real container started by the platform.
import { createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient } from "../helpers/api-client";

const api = new ApiClient(inject("baseUrl"));
const NAMESPACE = "default";
/** The platform's own port on the host, which no container may reach. */
const PLATFORM_PORT = Number(new URL(inject("baseUrl")).port);
/** The runtime agent's port inside every function container. */
const AGENT_PORT = 8080;
/** The network sidecar's ingress port (workerd's --http-ingress-address), in the container's namespace. */
const SIDECAR_INGRESS_PORT = 39001;
/** A cloud metadata service address (link-local). */
const METADATA_ADDRESS = "169.254.169.254";
/** How long the probing handler waits for one connection before calling it a timeout, in ms. */
const CONNECT_TIMEOUT_MS = 3_000;
/** Memory the guard adds to the function's memory size (MEMORY_OVERHEAD_MB of scripts/container-guard.mjs). */
const MEMORY_OVERHEAD_MB = 128;
/** The function memory size of the limits probe, in MB. */
const LIMITS_MEMORY_MB = 256;
/** Bytes in one MiB. */
const MIB = 1024 * 1024;
/** The range of pids caps the guard applies (MIN_/MAX_PIDS_LIMIT of scripts/container-guard.mjs). */
const PIDS_RANGE = { min: 32, max: 4096 };

/** Logs the container's own IPv4 addresses (`addresses [...]`), then stays busy for runMs. */
const NODE_ADDRESS_REPORTER = `
const os = require("os");
exports.main_handler = async (event) => {
  const addresses = Object.values(os.networkInterfaces()).flat()
    .filter((entry) => entry && entry.family === "IPv4" && !entry.internal)
    .map((entry) => entry.address);
  console.log("addresses " + JSON.stringify(addresses));
  await new Promise((resolve) => setTimeout(resolve, event.runMs ?? 30000));
  return { addresses };
};
`;

/**
 * Opens a TCP connection to every target and, when one connects, sends an HTTP GET and reads the
 * status line. Reports per target: "connected" (with the status line) or why not (error code or
 * "timeout"), and how long it took. Also reports the default gateway from /proc/net/route.
 */
const NODE_CONNECT_PROBE = `
const fs = require("fs");
const net = require("net");

function defaultGateway() {
  for (const line of fs.readFileSync("/proc/net/route", "utf8").split("\\n").slice(1)) {
    const [, destination, gateway] = line.trim().split(/\\s+/);
    if (destination === "00000000" && gateway) {
      const bytes = gateway.match(/../g).map((pair) => parseInt(pair, 16)).reverse();
      return bytes.join(".");
    }
  }
  return null;
}

function probe(host, port, timeoutMs) {
  return new Promise((resolve) => {
    const startedAt = Date.now();
    const socket = net.connect({ host, port });
    let connected = false;
    let answer = "";
    const finish = (outcome) => {
      socket.destroy();
      resolve({ host, port, outcome, answer: answer.split("\\r\\n")[0], ms: Date.now() - startedAt });
    };
    socket.setTimeout(timeoutMs, () => finish(connected ? "connected" : "timeout"));
    socket.on("connect", () => {
      connected = true;
      socket.write("GET /health HTTP/1.1\\r\\nHost: " + host + "\\r\\nConnection: close\\r\\n\\r\\n");
    });
    socket.on("data", (chunk) => {
      answer += chunk;
      if (answer.includes("\\r\\n")) finish("connected");
    });
    socket.on("end", () => finish(connected ? "connected" : "closed"));
    socket.on("error", (error) => finish(connected ? "connected" : error.code || String(error)));
  });
}

exports.main_handler = async (event) => {
  const gateway = defaultGateway();
  const targets = event.targets.map((target) => ({ ...target, host: target.host === "gateway" ? gateway : target.host }));
  const results = await Promise.all(targets.map((target) => probe(target.host, target.port, event.timeoutMs)));
  return { gateway, results };
};
`;

/**
 * Reads the container's cgroup (v1) limits; with event.forkBomb, then spawns processes until the
 * system refuses one (or attempts run out), reports how far it got, and kills them all.
 */
const NODE_LIMITS_PROBE = `
const fs = require("fs");
const { spawn } = require("child_process");

function read(path) {
  try { return fs.readFileSync(path, "utf8").trim(); } catch (error) { return "unreadable: " + error.code; }
}

function limits() {
  return {
    memoryLimit: read("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
    memorySwapLimit: read("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"),
    pidsMax: read("/sys/fs/cgroup/pids/pids.max"),
  };
}

async function forkBomb(pidsMax) {
  const attempts = /^\\d+$/.test(pidsMax) ? Number(pidsMax) + 64 : 1000;
  const children = [];
  let refusal = null;
  for (let n = 0; n < attempts && refusal === null; n++) {
    const child = spawn("sleep", ["60"], { stdio: "ignore" });
    child.on("error", () => undefined);
    if (child.pid === undefined) {
      refusal = await new Promise((resolve) => child.once("error", (error) => resolve(error.code || String(error))));
    } else {
      children.push(child);
    }
  }
  const peakPids = read("/sys/fs/cgroup/pids/pids.current");
  const exited = children.map((child) => new Promise((resolve) => child.once("exit", resolve)));
  for (const child of children) child.kill("SIGKILL");
  await Promise.all(exited);
  return { attempts, spawned: children.length, refusal, peakPids };
}

exports.main_handler = async (event) => {
  const seen = limits();
  return { ...seen, bomb: event.forkBomb ? await forkBomb(seen.pidsMax) : null };
};
`;

interface ProbeResult {
  host: string;
  port: number;
  outcome: string;
  answer: string;
  ms: number;
}

interface LimitsResult {
  memoryLimit: string;
  memorySwapLimit: string;
  pidsMax: string;
  bomb: { attempts: number; spawned: number; refusal: string | null; peakPids: string } | null;
}

/** Invokes a function and waits for its end; fails the test unless it FINISHED. */
async function runToEnd<T>(name: string, event: unknown, timeoutMs = 90_000): Promise<T> {
  const requestId = await api.invoke(NAMESPACE, name, event);
  const done = await api.waitForEvent(requestId, undefined, timeoutMs);
  if (done.status !== "FINISHED") throw new Error(`event ended ${done.status}: ${JSON.stringify(done)}`);
  return done.result as T;
}

/** Waits until a running event has logged `addresses [...]` and returns those addresses. */
async function reportedAddresses(requestId: string, timeoutMs = 60_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const line = (await api.logs(requestId)).find((record) => record.line.startsWith("addresses "))?.line;
    if (line) return JSON.parse(line.slice("addresses ".length)) as string[];
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`event ${requestId} did not log its addresses`);
}

/** A TCP service on every host address, answering one HTTP line: what a container must not reach. */
async function startHostService(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    socket.on("error", () => undefined);
    socket.end("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
  });
  await new Promise<void>((resolve) => server.listen(0, "0.0.0.0", resolve));
  const address = server.address();
  if (typeof address !== "object" || address === null) throw new Error("no host service port");
  return { server, port: address.port };
}

describe("network isolation of function containers", () => {
  let hostService: { server: Server; port: number };
  let victimRequestId: string;
  let victimAddress: string;
  let attacker: string;

  beforeAll(async () => {
    hostService = await startHostService();
    const victim = await api.createUniqueFunction(NAMESPACE, "victim", {
      runtime: "Nodejs22",
      files: { "index.js": NODE_ADDRESS_REPORTER },
      timeout: 120,
    });
    attacker = await api.createUniqueFunction(NAMESPACE, "attacker", {
      runtime: "Nodejs22",
      files: { "index.js": NODE_CONNECT_PROBE },
      timeout: 60,
    });
    victimRequestId = await api.invoke(NAMESPACE, victim, { runMs: 90_000 });
    const addresses = await reportedAddresses(victimRequestId);
    expect(addresses.length).toBeGreaterThan(0);
    victimAddress = addresses[0] as string;
  });

  afterAll(async () => {
    if (victimRequestId) await api.request(`/v1/events/${victimRequestId}/terminate`, { method: "POST" });
    await new Promise((resolve) => hostService?.server.close(resolve));
  });

  it("keeps a handler from reaching another container, link-local addresses and the host's services", async () => {
    const targets = [
      { name: "own agent (control)", host: "127.0.0.1", port: AGENT_PORT },
      { name: "other container's agent", host: victimAddress, port: AGENT_PORT },
      { name: "other container's sidecar ingress", host: victimAddress, port: SIDECAR_INGRESS_PORT },
      { name: "metadata service", host: METADATA_ADDRESS, port: 80 },
      { name: "platform port on the bridge gateway", host: "gateway", port: PLATFORM_PORT },
      { name: "host service on the bridge gateway", host: "gateway", port: hostService.port },
    ];
    const { gateway, results } = await runToEnd<{ gateway: string | null; results: ProbeResult[] }>(attacker, {
      targets,
      timeoutMs: CONNECT_TIMEOUT_MS,
    });
    expect(gateway).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    const outcomes = Object.fromEntries(targets.map((target, index) => [target.name, results[index]]));
    // The probe itself works: the handler reaches its own container's agent over loopback.
    expect(outcomes["own agent (control)"]?.outcome).toBe("connected");
    expect(outcomes["own agent (control)"]?.answer).toMatch(/^HTTP\/1\.1 /);
    for (const target of targets.slice(1)) {
      const result = outcomes[target.name];
      // Refused (or at worst silently dropped) within the probe's bound: never an answer.
      expect({ target: target.name, outcome: result?.outcome, answer: result?.answer }).toEqual({
        target: target.name,
        outcome: expect.not.stringMatching(/^connected$/),
        answer: "",
      });
      expect(result?.ms).toBeLessThanOrEqual(CONNECT_TIMEOUT_MS + 1_000);
    }
  });
});

describe("resource caps of function containers", () => {
  let name: string;

  beforeAll(async () => {
    name = await api.createUniqueFunction(NAMESPACE, "limits", {
      runtime: "Nodejs22",
      files: { "index.js": NODE_LIMITS_PROBE },
      memorySize: LIMITS_MEMORY_MB,
      timeout: 60,
    });
  });

  it("gives a cold container the function's memory plus the agent overhead, no swap, and a pids cap", async () => {
    const seen = await runToEnd<LimitsResult>(name, {});
    const expectedBytes = String((LIMITS_MEMORY_MB + MEMORY_OVERHEAD_MB) * MIB);
    expect(seen.memoryLimit).toBe(expectedBytes);
    expect(seen.memorySwapLimit).toBe(expectedBytes);
    expect(seen.pidsMax).toMatch(/^\d+$/);
    expect(Number(seen.pidsMax)).toBeGreaterThanOrEqual(PIDS_RANGE.min);
    expect(Number(seen.pidsMax)).toBeLessThanOrEqual(PIDS_RANGE.max);
  });

  it("stops a fork bomb at the pids cap inside the container, and the platform keeps serving", async () => {
    const seen = await runToEnd<LimitsResult>(name, { forkBomb: true });
    expect(seen.pidsMax).toMatch(/^\d+$/);
    const bomb = seen.bomb;
    expect(bomb).not.toBeNull();
    // The system refused a process before the attempts (the cap + 64) ran out...
    expect(bomb?.refusal).toMatch(/^E[A-Z]+$/);
    expect(bomb?.spawned).toBeLessThan(Number(seen.pidsMax));
    // ...and the container never held more than its cap.
    expect(Number(bomb?.peakPids)).toBeLessThanOrEqual(Number(seen.pidsMax));
    // The same container (its children killed) and the platform still work.
    const after = await runToEnd<LimitsResult>(name, {});
    expect(after.pidsMax).toBe(seen.pidsMax);
    expect((await fetch(`${inject("baseUrl")}/healthz`)).status).toBe(200);
  });
});
