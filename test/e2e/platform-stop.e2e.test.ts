// The platform stopping a running handler's container (Cloudflare's SIGTERM on a rollout or host
// drain; here `docker kill -s TERM` from outside) is not a user's terminate: the event ends FAILED
// with the platform's StatusCode and message, with a [PLATFORM] line saying the container is stopped.
import { execFileSync } from "node:child_process";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient } from "../helpers/api-client";

const api = new ApiClient(inject("baseUrl"));
const NAMESPACE = "default";

/**
 * A Node.js handler that prints its hostname (the container's, shared with its network sidecar),
 * then "ready", then ticks; with event.checkpoint it saves a checkpoint on SIGTERM and returns.
 */
const NODE_HANDLER = `
const os = require("os");
exports.main_handler = async (event) => {
  let stop;
  const stopped = new Promise((resolve) => { stop = resolve; });
  const listener = () => {
    console.log("checkpoint saved");
    stop({ checkpointed: true });
  };
  if (event.checkpoint) process.on("SIGTERM", listener);
  console.log("hostname " + os.hostname());
  console.log("ready");
  for (;;) {
    const ended = await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, 200))]);
    if (ended) return ended;
    console.log("tick");
  }
};
`;

/** The same handler in Python. */
const PYTHON_HANDLER = `
import signal
import socket
import time


def main_handler(event, context):
    state = {"stopped": False}

    def on_sigterm(signum, frame):
        print("checkpoint saved", flush=True)
        state["stopped"] = True

    if event.get("checkpoint"):
        signal.signal(signal.SIGTERM, on_sigterm)
    print("hostname " + socket.gethostname(), flush=True)
    print("ready", flush=True)
    while not state["stopped"]:
        time.sleep(0.2)
        print("tick", flush=True)
    return {"checkpointed": True}
`;

/** Longest wait for an event to reach a state, or for Docker to show a change (the machine is shared). */
const WAIT_MS = 60_000;
/** StatusCode of an execution whose container the platform stopped (STATUS_CODE.PLATFORM_STOPPED). */
const PLATFORM_STOPPED = 503;
/** Start of its errorMessage (PLATFORM_STOPPED_MESSAGE). */
const PLATFORM_STOPPED_MESSAGE = "Container stopped by the platform while the handler ran";
/** The agent's [PLATFORM] line when the platform stops the container. */
const PLATFORM_STOP_LINE = /^\[PLATFORM\] The container is being stopped by the platform \(SIGTERM\)/;

type Runtime = "Nodejs22" | "Python3.11";

/**
 * The Docker id of the function container whose hostname is given. Locally a function container
 * shares the network namespace (and so the hostname) of its network sidecar, named `...-proxy`;
 * the function container is the other one.
 */
function functionContainerOf(hostname: string): string {
  const ids = execFileSync("docker", ["ps", "-q", "--no-trunc"], { encoding: "utf8" }).split("\n").filter(Boolean);
  const rows = inspectExisting(ids)
    .split("\n")
    .filter(Boolean)
    .map((row) => row.split(" "));
  const matches = rows.filter(([, name, host]) => host === hostname && !name?.endsWith("-proxy"));
  if (matches.length !== 1)
    throw new Error(`expected one container with hostname ${hostname}: ${JSON.stringify(rows)}`);
  return matches[0]?.[0] ?? "";
}

/**
 * `docker inspect` of the containers that still exist among `ids`: one listed by `docker ps` may be
 * removed before it is inspected (other tests' containers come and go; CI failed on that once),
 * and inspect then exits non-zero after printing the others.
 */
function inspectExisting(ids: string[]): string {
  try {
    return execFileSync("docker", ["inspect", "--format", "{{.Id}} {{.Name}} {{.Config.Hostname}}", ...ids], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (error) {
    const stdout = (error as { stdout?: unknown }).stdout;
    if (typeof stdout === "string") return stdout;
    throw error;
  }
}

/** True while Docker shows the container running. */
function containerRunning(id: string): boolean {
  return execFileSync("docker", ["ps", "-q", "--no-trunc", "--filter", `id=${id}`], { encoding: "utf8" }).trim() !== "";
}

const functions = new Map<Runtime, string>();

beforeAll(async () => {
  for (const runtime of ["Nodejs22", "Python3.11"] as const) {
    const files: Record<string, string> =
      runtime === "Nodejs22" ? { "index.js": NODE_HANDLER } : { "index.py": PYTHON_HANDLER };
    functions.set(runtime, await api.createUniqueFunction(NAMESPACE, "pstop", { runtime, files, timeout: 300 }));
  }
});

describe.each(["Nodejs22", "Python3.11"] as const)(
  "docker kill -s TERM of a running %s handler's container",
  (runtime) => {
    it.each([
      { checkpoint: false, handler: "has no SIGTERM handler", ending: /the handler was ended by SIGTERM/ },
      { checkpoint: true, handler: "checkpoints on SIGTERM and returns", ending: /the handler returned after SIGTERM/ },
    ])(
      "when the handler $handler, ends the event FAILED / 503 as the platform's stop, not a terminate",
      async ({ checkpoint, ending }) => {
        const requestId = await api.invoke(NAMESPACE, functions.get(runtime) ?? "", { checkpoint });
        await api.waitForEvent(requestId, (event) => event.phase === "running", WAIT_MS);
        let hostname = "";
        await expect
          .poll(
            async () => {
              const lines = (await api.logs(requestId)).map((record) => record.line);
              hostname = lines.find((line) => line.startsWith("hostname "))?.slice("hostname ".length) ?? "";
              return lines;
            },
            { timeout: WAIT_MS, interval: 200 },
          )
          .toContain("ready");
        const container = functionContainerOf(hostname);

        execFileSync("docker", ["kill", "-s", "TERM", container]);

        const done = await api.waitForEvent(requestId, undefined, WAIT_MS);
        expect(done.status).toBe("FAILED");
        expect(done.statusCode).toBe(PLATFORM_STOPPED);
        expect(done.errorMessage).toMatch(new RegExp(`^${PLATFORM_STOPPED_MESSAGE} \\(`));
        expect(done.errorMessage).toMatch(ending);
        expect(done.terminateRequestedAt).toBeNull();
        const lines = (await api.logs(requestId)).map((record) => record.line);
        expect(lines.filter((line) => PLATFORM_STOP_LINE.test(line))).toHaveLength(1);
        expect(lines).not.toContain("[PLATFORM] Signal reception failed");
        expect(lines).not.toContain("[PLATFORM] Signal received successfully");
        expect(lines.find((line) => line.startsWith("[PLATFORM] END"))).toContain(
          `Status: FAILED StatusCode: ${PLATFORM_STOPPED}`,
        );
        if (checkpoint)
          expect(lines.indexOf("checkpoint saved")).toBeGreaterThan(
            lines.findIndex((line) => PLATFORM_STOP_LINE.test(line)),
          );
        // The stopped container is not reused: Docker no longer runs it.
        await expect.poll(() => containerRunning(container), { timeout: WAIT_MS, interval: 500 }).toBe(false);
      },
    );
  },
);
