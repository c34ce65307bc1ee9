// Starts and stops the whole platform (scripts/start.mjs → wrangler dev with real containers) for
// end-to-end tests and benchmarks.
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/** A running platform. */
export interface RunningPlatform {
  baseUrl: string;
  stateDir: string;
  logFile: string;
  stop(): Promise<void>;
  /**
   * Kills the whole local runtime at once (SIGKILL to the start script and every process it
   * started: container guard, wrangler, workerd), as a crash would. The Docker engine and the
   * containers workerd started are not part of it and survive, as they would a crash.
   */
  kill(): Promise<void>;
}

/** How long stop() waits for the platform to exit after SIGINT before killing it, in ms. */
const STOP_GRACE_MS = 15_000;

/**
 * The pid and every descendant of it, from /proc (parents before children). The platform is
 * signalled by process tree, not by process group: `scripts/local-engine.sh` may start dockerd
 * from within the platform's group, and the engine (with its docker-proxy children, which serve
 * every platform's containers) must never receive the platform's signals.
 */
export function processTree(rootPid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    // Fields after the command (which is in parentheses and may hold spaces): state, ppid, ...
    const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
  }
  const tree = [rootPid];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i] as number) ?? []));
  return tree;
}

/** True while a process exists and is not a zombie (a zombie holds no port or file any more). */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Sends a signal to every process of a tree; a process that exited meanwhile is skipped. */
function signalTree(rootPid: number, signal: NodeJS.Signals): void {
  for (const pid of processTree(rootPid)) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

const ROOT = resolve(import.meta.dirname, "..", "..");

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolvePort(address.port) : reject(new Error("no port")),
      );
    });
  });
}

async function waitForHealth(baseUrl: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`platform exited (${child.exitCode ?? child.signalCode})`);
    try {
      const response = await fetch(`${baseUrl}/healthz`);
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`platform did not become healthy within ${timeoutMs} ms`);
}

/** Starts the platform on a free port with its own state folder and waits until /healthz is 200. */
export async function startPlatform(
  options: { vars?: Record<string, string>; env?: Record<string, string>; stateDir?: string; port?: number } = {},
): Promise<RunningPlatform> {
  const port = options.port ?? (await freePort());
  const stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), "afp-e2e-"));
  const logFile = join(stateDir, `platform-${Date.now()}.log`);
  const log = createWriteStream(logFile);
  const varArgs = Object.entries(options.vars ?? {}).flatMap(([key, value]) => ["--var", `${key}:${value}`]);
  const child = spawn(process.execPath, [join(ROOT, "scripts", "start.mjs"), "--log-level", "warn", ...varArgs], {
    cwd: ROOT,
    env: { ...process.env, ...options.env, PORT: String(port), AFP_STATE_DIR: stateDir },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const baseUrl = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    const pid = child.pid;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    signalTree(pid, "SIGINT");
    const timer = setTimeout(() => signalTree(pid, "SIGKILL"), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  };
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    const killed = processTree(child.pid);
    signalTree(child.pid, "SIGKILL");
    await exited;
    // Every process is gone (and its ports free) before a restart may take them.
    while (killed.some(isAlive)) await new Promise((r) => setTimeout(r, 50));
  };
  try {
    await waitForHealth(baseUrl, child, 600_000);
  } catch (error) {
    await stop();
    throw new Error(`${String(error)}; see ${logFile}`);
  }
  return { baseUrl, stateDir, logFile, stop, kill };
}
