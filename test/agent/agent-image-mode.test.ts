// Image functions in the agent (issue 13): an agent in image mode (AFP_IMAGE_MODE=1, the image's
// description in AFP_IMAGE_CONFIG) runs the image's entry through bootstrap-image.mjs and POSTs each
// event to its server, here a small Node.js HTTP server on a free port standing in for an image's
// Flask server on 9000 (AFP_IMAGE_PORT). Also the kernel's OOM kill (434) of a Custom Runtime and of
// an image's entry, with a fake cgroup folder (AGENT_CGROUP_ROOT) whose oom_kill count the program
// raises before it kills itself with SIGKILL, as the kernel would.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { executionSpec, putCode, type RunningAgent, runExecution, runUntilEnd, startAgent } from "./agent-harness";
import { craftZip } from "./zip-craft";

/**
 * The image's server: answers POST /event-invoke as its event's mode says. (none) returns the
 * event, SCF's headers and who it is; "status" answers 500; "big" answers 1.1 MiB; "exit" exits 3
 * mid-event; "sigterm" prints "ready" and answers "END" once SIGTERM set its flag (SCF's own Flask
 * sample); "sleep" never answers; "oom" raises the fake cgroup's oom_kill and dies of SIGKILL.
 */
const SERVER = `
const http = require("node:http");
const fs = require("node:fs");
let terminated = false;
process.on("SIGTERM", () => { console.log("got SIGTERM"); terminated = true; });
console.log("server starting pid=" + process.pid);
const server = http.createServer((request, response) => {
  let body = "";
  request.on("data", (chunk) => { body += chunk; });
  request.on("end", () => {
    const event = JSON.parse(body || "{}");
    console.log("event " + request.headers["x-scf-request-id"] + " " + body);
    if (request.method !== "POST" || request.url !== "/event-invoke") { response.writeHead(404); return response.end("no"); }
    if (event.mode === "status") { response.writeHead(500); return response.end("boom: " + event.why); }
    if (event.mode === "big") return response.end(JSON.stringify("x".repeat(1100 * 1024)));
    if (event.mode === "exit") { console.error("exiting mid-event"); process.exit(3); }
    if (event.mode === "sleep") return;
    if (event.mode === "oom") {
      fs.writeFileSync(process.env.OOM_FILE, "low 0\\nhigh 0\\nmax 3\\noom 1\\noom_kill 1\\n");
      process.kill(process.pid, "SIGKILL");
    }
    if (event.mode === "sigterm") {
      console.log("ready");
      const wait = () => (terminated ? response.end("END") : setTimeout(wait, 20));
      return wait();
    }
    const headers = {};
    for (const [name, value] of Object.entries(request.headers)) if (name.startsWith("x-scf-")) headers[name] = value;
    response.setHeader("content-type", "application/json");
    response.end(JSON.stringify({
      echo: event, headers, pid: process.pid, uid: process.getuid(), cwd: process.cwd(),
      env: { IMAGE_VAR: process.env.IMAGE_VAR, SHARED: process.env.SHARED, SCF_RUNTIME: process.env.SCF_RUNTIME,
        USER_CODE_ROOT: process.env.USER_CODE_ROOT, AFP_IMAGE_PORT: process.env.AFP_IMAGE_PORT ?? null,
        AFP_AGENT_TOKEN: process.env.AFP_AGENT_TOKEN ?? null },
    }));
  });
});
setTimeout(() => server.listen(Number(process.env.PORT), "0.0.0.0", () => console.log("listening")), 200);
`;

/** What the fake server answers by default. */
interface ServerAnswer {
  echo: unknown;
  headers: Record<string, string>;
  pid: number;
  uid: number;
  cwd: string;
  env: Record<string, string | null>;
}

/** A port nothing listens on (for the fake server), found by binding 0. */
async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** A folder the handler user can read (and, for the cgroup file, write). */
function openFolder(prefix: string): string {
  const folder = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(folder, 0o755);
  return folder;
}

/** A fake cgroup folder: memory.events with no OOM kill yet, writable by the handler user. */
function fakeCgroup(): { root: string; file: string } {
  const root = openFolder("afp-cgroup-");
  const file = join(root, "memory.events");
  writeFileSync(file, "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
  chmodSync(file, 0o666);
  return { root, file };
}

const folders: string[] = [];
let imageDir: string;
let cgroup: { root: string; file: string };
let port: number;
let agent: RunningAgent;

beforeAll(async () => {
  imageDir = openFolder("afp-image-");
  folders.push(imageDir);
  writeFileSync(join(imageDir, "server.js"), SERVER);
  chmodSync(join(imageDir, "server.js"), 0o644);
  writeFileSync(
    join(imageDir, "image.json"),
    JSON.stringify({
      name: "fake-image",
      entrypoint: [process.execPath],
      cmd: ["server.js"],
      workingDir: imageDir,
      env: ["IMAGE_VAR=from-image", "SHARED=image"],
    }),
  );
  cgroup = fakeCgroup();
  folders.push(cgroup.root);
  port = await freePort();
  agent = await startAgent({
    env: {
      AFP_IMAGE_MODE: "1",
      AFP_IMAGE_CONFIG: join(imageDir, "image.json"),
      AFP_IMAGE_PORT: String(port),
      AFP_IMAGE_PORT_WAIT_MS: "3000",
      AGENT_CGROUP_ROOT: cgroup.root,
    },
  });
});

afterAll(async () => {
  await agent?.stop();
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

/** An image spec of the fake image (its server on `port`), with fields overridden. */
function imageSpec(event: unknown, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const {
    codeSha256: _code,
    handler: _handler,
    ...spec
  } = executionSpec("0".repeat(64), {
    runtime: "CustomImage",
    event,
    environment: { PORT: String(port), SHARED: "function", OOM_FILE: cgroup.file, TENCENTCLOUD_REGION: "ap-guangzhou" },
    ...overrides,
  });
  return { image: { name: "fake-image" }, ...spec };
}

async function post(target: RunningAgent, spec: Record<string, unknown>): Promise<{ status: number; error?: string }> {
  const response = await target.request("/executions", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(spec),
  });
  return { status: response.status, error: ((await response.json()) as { error?: string }).error };
}

describe("an image container's agent", () => {
  it("returns the server's answer, with SCF's headers, the image's environment and the server's output live", async () => {
    const spec = imageSpec({ n: 1 });
    const { end, lines, records } = await runExecution(agent, spec);
    expect(records[0]?.type).toBe("started");
    expect(end.outcome?.kind).toBe("returned");
    const result = end.outcome?.result as ServerAnswer;
    expect(result.echo).toEqual({ n: 1 });
    expect(result.headers).toMatchObject({
      "x-scf-request-id": spec.requestId,
      "x-scf-memory": "256",
      "x-scf-timeout": "30000",
      "x-scf-version": "$LATEST",
      "x-scf-name": "agent-test",
      "x-scf-namespace": "default",
      "x-scf-region": "ap-guangzhou",
      "x-scf-appid": "",
      "x-scf-uin": "",
    });
    expect(result.headers["x-scf-trigger-src"]).toBeUndefined();
    // The image's ENV under the function's variables under SCF's built-ins; no platform knob or secret.
    expect(result.env).toEqual({
      IMAGE_VAR: "from-image",
      SHARED: "function",
      SCF_RUNTIME: "CustomImage",
      USER_CODE_ROOT: imageDir,
      AFP_IMAGE_PORT: null,
      AFP_AGENT_TOKEN: null,
    });
    expect(result.cwd).toBe(imageDir);
    expect(result.uid).not.toBe(0);
    // The server's start-up output belongs to the first event, after its started record.
    expect(lines).toContain("listening");
    expect(lines).toContain(`event ${spec.requestId} {"n":1}`);
  });

  it("keeps the server warm: the second event reaches the same process without a start", async () => {
    const first = await runExecution(agent, imageSpec({ n: 2 }));
    const second = await runExecution(agent, imageSpec({ n: 3 }));
    const firstResult = first.end.outcome?.result as ServerAnswer;
    const secondResult = second.end.outcome?.result as ServerAnswer;
    expect(secondResult.echo).toEqual({ n: 3 });
    expect(secondResult.pid).toBe(firstResult.pid);
    expect(second.lines.some((line) => line.startsWith("server starting"))).toBe(false);
  });

  it("fails the event with the status and body of a non-2xx answer (430)", async () => {
    const { end } = await runExecution(agent, imageSpec({ mode: "status", why: "bad input" }));
    expect(end.outcome).toMatchObject({
      kind: "threw",
      message: "the image's server answered HTTP 500: boom: bad input",
    });
  });

  it("fails an answer over 1 MiB naming the limit", async () => {
    const { end } = await runExecution(agent, imageSpec({ mode: "big" }));
    expect(end.outcome?.kind).toBe("threw");
    expect(String(end.outcome?.message)).toContain("over the limit of 1048576 bytes");
  });

  it("kills the server at the timeout (433)", async () => {
    const { end } = await runExecution(agent, imageSpec({ mode: "sleep" }, { timeoutMs: 1500 }));
    expect(end.outcome?.kind).toBe("timeout");
  });

  it("gives a graceful terminate's SIGTERM to the server, which answers: signal received, its result", async () => {
    const spec = imageSpec({ mode: "sigterm" });
    const { end, lines } = await runUntilEnd(agent, spec, async () => {
      const response = await agent.request(`/executions/${spec.requestId}/signal`, { method: "POST" });
      expect(((await response.json()) as { delivered: boolean }).delivered).toBe(true);
    });
    expect(lines).toContain("got SIGTERM");
    expect(lines).toContain("[PLATFORM] Signal received successfully");
    expect(end.outcome).toMatchObject({ kind: "returned", result: "END" });
  });

  it("ends the event exited (439) when the server exits mid-event, and starts it again for the next", async () => {
    const { end, lines } = await runExecution(agent, imageSpec({ mode: "exit" }));
    expect(end.outcome).toMatchObject({ kind: "exited", code: 3 });
    expect(lines).toContain("exiting mid-event");
    const next = await runExecution(agent, imageSpec({ n: 4 }));
    expect(next.end.outcome).toMatchObject({ kind: "returned", result: { echo: { n: 4 } } });
  });

  it("ends the event oom (434) when the kernel's OOM killer ends the server", async () => {
    const { end } = await runExecution(agent, imageSpec({ mode: "oom" }));
    expect(end.outcome?.kind).toBe("oom");
    expect(String(end.outcome?.message)).toContain("ran out of memory");
  });

  it("fails with SCF's words when the entry never listens on the port", async () => {
    const { end } = await runExecution(
      agent,
      imageSpec(
        {},
        { image: { name: "fake-image", command: [process.execPath, "-e", "setInterval(() => {}, 1000)"] } },
      ),
    );
    expect(end.outcome).toMatchObject({
      kind: "threw",
      message: `The request timed out in 3000ms.Please confirm your http server have enabled listening on port ${port}.`,
    });
  });

  it("ends the event exited when the entry exits before it listens", async () => {
    const { end } = await runExecution(
      agent,
      imageSpec(
        {},
        { image: { name: "fake-image", command: [process.execPath, "-e", "console.log('bye'); process.exit(7)"] } },
      ),
    );
    expect(end.outcome).toMatchObject({ kind: "exited", code: 7 });
  });

  it("runs the image's ENTRYPOINT with the function's Args instead of its CMD", async () => {
    const { end, lines } = await runExecution(
      agent,
      imageSpec({}, { image: { name: "fake-image", args: ["-e", "console.log('args, not cmd'); process.exit(5)"] } }),
    );
    expect(lines).toContain("args, not cmd");
    expect(end.outcome).toMatchObject({ kind: "exited", code: 5 });
  });

  it("fails every event clearly when the entry cannot be started", async () => {
    const { end } = await runExecution(
      agent,
      imageSpec({}, { image: { name: "fake-image", command: ["/no/such/server"] } }),
    );
    expect(end.outcome?.kind).toBe("threw");
    expect(String(end.outcome?.message)).toContain(
      'the image\'s entry "/no/such/server" could not be started (ENOENT)',
    );
  });

  it("shows its image in /health and refuses code, a code spec and another image's spec", async () => {
    const health = (await (await agent.request("/health")).json()) as { image?: string };
    expect(health.image).toBe("fake-image");
    const put = await agent.request(`/code/${"a".repeat(64)}`, { method: "PUT", body: "zip" });
    expect(put.status).toBe(400);
    expect(await post(agent, executionSpec("a".repeat(64)))).toEqual({
      status: 400,
      error: "this container runs image functions only",
    });
    expect(await post(agent, imageSpec({}, { image: { name: "other-image" } }))).toEqual({
      status: 400,
      error: 'this container runs image "fake-image", not "other-image"',
    });
  });
});

describe("the runtime image's agent", () => {
  let runtimeAgent: RunningAgent;
  let oomCgroup: { root: string; file: string };
  beforeAll(async () => {
    oomCgroup = fakeCgroup();
    folders.push(oomCgroup.root);
    runtimeAgent = await startAgent({ env: { AGENT_CGROUP_ROOT: oomCgroup.root } });
  });
  afterAll(async () => {
    await runtimeAgent?.stop();
  });

  it("refuses an image spec", async () => {
    expect(await post(runtimeAgent, imageSpec({}))).toEqual({
      status: 400,
      error: "this container runs code functions only: an image function runs in its image's container",
    });
    const health = (await (await runtimeAgent.request("/health")).json()) as { image?: string | null };
    expect(health.image).toBeNull();
  });

  it("ends a Custom Runtime's event oom (434) when the kernel's OOM killer ends its program", async () => {
    const bootstrap = `#!/bin/bash\necho "allocating"\nprintf 'oom 1\\noom_kill 1\\n' > "$OOM_FILE"\nkill -KILL $$\n`;
    const stored = await putCode(
      runtimeAgent,
      craftZip([{ name: "scf_bootstrap", data: new TextEncoder().encode(bootstrap), unixMode: 0o100755 }]),
    );
    expect(stored.status).toBe(201);
    const spec = executionSpec(stored.sha256, {
      runtime: "CustomRuntime",
      environment: { OOM_FILE: oomCgroup.file },
    });
    const { end, lines } = await runExecution(runtimeAgent, spec);
    expect(lines).toContain("allocating");
    expect(end.outcome?.kind).toBe("oom");
  });

  it("keeps a SIGKILL without an OOM kill an exit (439)", async () => {
    const bootstrap = `#!/bin/bash\nkill -KILL $$\n`;
    const stored = await putCode(
      runtimeAgent,
      craftZip([{ name: "scf_bootstrap", data: new TextEncoder().encode(bootstrap), unixMode: 0o100755 }]),
    );
    const { end } = await runExecution(runtimeAgent, executionSpec(stored.sha256, { runtime: "CustomRuntime" }));
    expect(end.outcome).toMatchObject({ kind: "exited", signal: "SIGKILL" });
  });
});
