// Runs the container's runtime agent (containers/runtime/agent/agent.mjs) as a local Node process
// on a free port, with its code root in a temporary folder, and talks HTTP to it.
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { zipFiles } from "../helpers/zip";

/**
 * The agent's folder: the repository's, or AGENT_DIR_UNDER_TEST (to run this suite against another
 * version of the agent, e.g. to see a test fail without the fix it covers).
 */
export const AGENT_DIR =
  process.env.AGENT_DIR_UNDER_TEST ?? resolve(import.meta.dirname, "..", "..", "containers", "runtime", "agent");
/** How long the agent may take to listen. */
const AGENT_START_TIMEOUT_MS = 10_000;

/** A record of an execution's NDJSON stream. */
export interface AgentRecord {
  type: string;
  seq?: number;
  stream?: string;
  line?: string;
  outcome?: { kind: string; message?: string; stack?: string; result?: unknown };
}

/** One running agent. */
export interface RunningAgent {
  url: string;
  token: string;
  /** A temporary folder: the code root is `<sandbox>/code`, nothing else may appear beside it. */
  sandbox: string;
  codeRoot: string;
  /** The agent's log spool folder (AGENT_SPOOL_ROOT), in a temporary folder of its own (0755). */
  spoolRoot: string;
  process: ChildProcess;
  /** A request with this agent's token (pass `authorization` to override it). */
  request(path: string, init?: RequestInit): Promise<Response>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolvePort(address.port) : reject(new Error("no port")),
      );
    });
  });
}

/**
 * Starts an agent. `token: null` starts it without AFP_AGENT_TOKEN; `env` adds variables (such as
 * AFP_PLATFORM_STOP_GRACE_MS). PATH puts this Node and the system's python3 first (the handler user
 * must be able to run both).
 */
export async function startAgent(
  options: { token?: string | null; env?: Record<string, string> } = {},
): Promise<RunningAgent> {
  const port = await freePort();
  const token = options.token === undefined ? randomBytes(32).toString("hex") : options.token;
  const sandbox = mkdtempSync(join(tmpdir(), "afp-agent-"));
  // The handler user must reach the code root, as in the image (0755 folders owned by root).
  chmodSync(sandbox, 0o755);
  const codeRoot = join(sandbox, "code");
  mkdirSync(codeRoot, { mode: 0o755 });
  // The spool folder is the agent's (it makes it 0700); its parent lets the handler user reach it,
  // as /var/afp does in the image, so that only the folder's own mode keeps the handler out.
  const spoolParent = mkdtempSync(join(tmpdir(), "afp-spool-"));
  chmodSync(spoolParent, 0o755);
  const spoolRoot = join(spoolParent, "spool");
  const env: Record<string, string> = {
    PATH: `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`,
    AGENT_PORT: String(port),
    AGENT_CODE_ROOT: codeRoot,
    AGENT_SPOOL_ROOT: spoolRoot,
    ...options.env,
  };
  if (token !== null) env.AFP_AGENT_TOKEN = token;
  const child = spawn(process.execPath, [join(AGENT_DIR, "agent.mjs")], { env, stdio: ["ignore", "ignore", "pipe"] });
  child.stderr?.resume();
  const url = `http://127.0.0.1:${port}`;
  const request = (path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    if (!headers.has("authorization") && token !== null) headers.set("authorization", `Bearer ${token}`);
    return fetch(`${url}${path}`, { ...init, headers });
  };
  const deadline = Date.now() + AGENT_START_TIMEOUT_MS;
  for (;;) {
    try {
      await fetch(`${url}/health`);
      break;
    } catch (error) {
      if (Date.now() > deadline || child.exitCode !== null) throw error;
      await new Promise((done) => setTimeout(done, 50));
    }
  }
  return {
    url,
    token: token ?? "",
    sandbox,
    codeRoot,
    spoolRoot,
    process: child,
    request,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((done) => child.once("exit", done));
        child.kill("SIGKILL");
        await exited;
      }
      rmSync(sandbox, { recursive: true, force: true });
      rmSync(spoolParent, { recursive: true, force: true });
    },
  };
}

/** Hex SHA-256 of bytes. */
export function sha256Of(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Uploads a zip to the agent; returns its hash and the agent's answer. */
export async function putCode(
  agent: RunningAgent,
  zip: Uint8Array,
): Promise<{ sha256: string; status: number; body: { error?: string } }> {
  const sha256 = sha256Of(zip);
  const response = await agent.request(`/code/${sha256}`, { method: "PUT", body: new Uint8Array(zip) });
  return { sha256, status: response.status, body: (await response.json()) as { error?: string } };
}

/** Uploads a package of the given files and fails when the agent does not take it. */
export async function putFiles(agent: RunningAgent, files: Record<string, string>): Promise<string> {
  const { sha256, status, body } = await putCode(agent, zipFiles(files));
  if (status !== 201 && status !== 200) throw new Error(`PUT /code answered ${status}: ${JSON.stringify(body)}`);
  return sha256;
}

let executionCounter = 0;

/** A fresh RequestId. */
export function newRequestId(): string {
  executionCounter += 1;
  return `test-${process.pid}-${executionCounter}-${randomBytes(4).toString("hex")}`;
}

/**
 * A valid execution spec (the contract's ExecutionSpec, as an instance sends it), with fields
 * overridden.
 */
export function executionSpec(codeSha256: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const requestId = newRequestId();
  return {
    requestId,
    runtime: "Nodejs22",
    handler: "index.main_handler",
    codeSha256,
    event: {},
    environment: {},
    memoryLimitMb: 256,
    timeoutMs: 30_000,
    context: {
      request_id: requestId,
      function_name: "agent-test",
      namespace: "default",
      function_version: "$LATEST",
      memory_limit_in_mb: 256,
      time_limit_in_ms: 30_000,
    },
    ...overrides,
  };
}

/** The handler's own lines of an execution (without the platform's), in record order. */
export function userLines(lines: string[]): string[] {
  return lines.filter((line) => !line.startsWith("[PLATFORM]"));
}

/** Reads an NDJSON record stream to its end record. */
export async function readRecords(response: Response): Promise<AgentRecord[]> {
  const text = await response.text();
  return text
    .split("\n")
    .filter((line) => line.trim().length > 0)
    .map((line) => JSON.parse(line) as AgentRecord);
}

/** Starts an execution with ?stream=1 and returns all its records (the last is the end record). */
export async function runExecution(
  agent: RunningAgent,
  spec: Record<string, unknown>,
): Promise<{ records: AgentRecord[]; end: AgentRecord; lines: string[] }> {
  const response = await agent.request("/executions?stream=1", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(spec),
  });
  if (response.status !== 201)
    throw new Error(`POST /executions answered ${response.status}: ${await response.text()}`);
  const records = await readRecords(response);
  const end = records.at(-1);
  if (end?.type !== "end") throw new Error(`stream ended without an end record: ${JSON.stringify(end)}`);
  const lines = records.filter((record) => record.type === "log").map((record) => record.line ?? "");
  return { records, end, lines };
}

/** Parses NDJSON records from a response as they arrive. */
export async function* recordsOf(response: Response): AsyncGenerator<AgentRecord> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    pending += decoder.decode(chunk, { stream: true });
    let newline = pending.indexOf("\n");
    while (newline >= 0) {
      const text = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      newline = pending.indexOf("\n");
      if (text) yield JSON.parse(text) as AgentRecord;
    }
  }
}

/** Longest wait for one execution's records in runUntilEnd (generous: the machine is shared). */
const RUN_UNTIL_END_WAIT_MS = 30_000;

/**
 * Runs one execution, calls onReady once the handler printed "ready", and returns every record up
 * to the end record.
 */
export async function runUntilEnd(
  agent: RunningAgent,
  spec: Record<string, unknown>,
  onReady: () => Promise<void>,
): Promise<{ records: AgentRecord[]; end: AgentRecord; lines: string[] }> {
  const response = await agent.request("/executions?stream=1", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(spec),
    signal: AbortSignal.timeout(RUN_UNTIL_END_WAIT_MS),
  });
  if (response.status !== 201) throw new Error(`the agent answered ${response.status}: ${await response.text()}`);
  const records: AgentRecord[] = [];
  let ready = false;
  for await (const record of recordsOf(response)) {
    records.push(record);
    if (!ready && record.type === "log" && record.line === "ready") {
      ready = true;
      await onReady();
    }
    if (record.type === "end") break;
  }
  const end = records.at(-1);
  if (end?.type !== "end") throw new Error(`no end record: ${JSON.stringify(records.slice(-3))}`);
  const lines = records.filter((record) => record.type === "log").map((record) => record.line ?? "");
  return { records, end, lines };
}

/** An agent shared by one describe block, with a Node.js and a Python code package stored in it. */
export interface AgentWithHandlers {
  agent: RunningAgent;
  /** The SHA-256 of the Node.js package (index.js). */
  node: string;
  /** The SHA-256 of the Python package (index.py). */
  python: string;
}

/**
 * Starts an agent before the enclosing describe block's tests and stops it after, with `index.js`
 * and `index.py` stored as two code packages. Read the fields inside tests (they are set by then).
 */
export function agentWithHandlers(nodeHandler: string, pythonHandler: string): AgentWithHandlers {
  const fixture = {} as AgentWithHandlers;
  beforeAll(async () => {
    fixture.agent = await startAgent();
    fixture.node = await putFiles(fixture.agent, { "index.js": nodeHandler });
    fixture.python = await putFiles(fixture.agent, { "index.py": pythonHandler });
  });
  afterAll(async () => {
    await fixture.agent?.stop();
  });
  return fixture;
}
