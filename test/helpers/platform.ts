// Starts and stops the whole platform (scripts/start.mjs → wrangler dev with real containers) for
// end-to-end tests and benchmarks.
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/** A running platform. */
export interface RunningPlatform {
  baseUrl: string;
  stateDir: string;
  logFile: string;
  stop(): Promise<void>;
  /** Kills the whole platform at once (SIGKILL to every process), as a crash would. */
  kill(): Promise<void>;
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
    if (child.exitCode !== null) throw new Error(`platform exited with code ${child.exitCode}`);
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
    if (child.exitCode !== null || child.pid === undefined) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    process.kill(-child.pid, "SIGINT");
    const timer = setTimeout(() => child.pid && process.kill(-child.pid, "SIGKILL"), 15_000);
    await exited;
    clearTimeout(timer);
  };
  const kill = async () => {
    if (child.exitCode !== null || child.pid === undefined) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    process.kill(-child.pid, "SIGKILL");
    await exited;
  };
  try {
    await waitForHealth(baseUrl, child, 600_000);
  } catch (error) {
    await stop();
    throw new Error(`${String(error)}; see ${logFile}`);
  }
  return { baseUrl, stateDir, logFile, stop, kill };
}
