// SCF's Custom Runtime in the agent (issue 13): a package's own executable scf_bootstrap (here bash,
// speaking SCF's runtime API over /dev/tcp) runs its events through bootstrap-custom.mjs, with the
// same outcomes, logs, signals and bounds as a code handler.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { customRuntimeZip } from "../helpers/custom-runtime";
import {
  AGENT_DIR,
  executionSpec,
  putCode,
  type RunningAgent,
  runExecution,
  runUntilEnd,
  startAgent,
} from "./agent-harness";
import { craftZip } from "./zip-craft";

let agent: RunningAgent;
let code: string;

/** A bash function `http METHOD PATH [BODY]` for SCF's runtime API (sets STATUS, BODY, REQUEST_ID). */
const HTTP_FUNCTION = `http() {
  local body="\${3-}" line
  exec 5<>"/dev/tcp/$SCF_RUNTIME_API/$SCF_RUNTIME_API_PORT" || return 1
  printf '%s %s HTTP/1.0\\r\\nContent-Length: %d\\r\\n\\r\\n%s' "$1" "$2" "\${#body}" "$body" >&5
  read -r line <&5; STATUS=$(echo "$line" | cut -d' ' -f2)
  while IFS= read -r line <&5; do line="\${line%$'\\r'}"; [ -z "$line" ] && break
    case "\${line,,}" in request_id:*) REQUEST_ID="\${line#*: }" ;; esac; done
  BODY=$(cat <&5); exec 5<&-
}`;
/** Takes one event, answers it with the event and exits 0. */
const ONE_SHOT = `#!/bin/bash
${HTTP_FUNCTION}
http GET /runtime/invocation/next
echo "took $REQUEST_ID"
http POST /runtime/invocation/response "$BODY"
exit 0
`;
/** Answers each event, prints a line 300 ms later and asks for the next event 1.5 s after that. */
const STRAY_OUTPUT = `#!/bin/bash
${HTTP_FUNCTION}
while true; do
  http GET /runtime/invocation/next
  http POST /runtime/invocation/response "$BODY"
  sleep 0.3; echo "stray after the answer"; sleep 1.5
done
`;

beforeAll(async () => {
  agent = await startAgent();
  const stored = await putCode(agent, customRuntimeZip());
  expect(stored.status).toBe(201);
  code = stored.sha256;
});

afterAll(async () => {
  await agent?.stop();
});

function customSpec(sha256: string, event: unknown, overrides: Record<string, unknown> = {}) {
  return executionSpec(sha256, { runtime: "CustomRuntime", handler: "index.main_handler", event, ...overrides });
}

describe("a bash scf_bootstrap", () => {
  it("returns the posted response as the result, with the event, SCF's headers and its output live", async () => {
    const spec = customSpec(code, { n: 1 });
    const { end, lines, records } = await runExecution(agent, spec);
    expect(records[0]?.type).toBe("started");
    expect(end.outcome?.kind).toBe("returned");
    const result = (end.outcome?.result ?? {}) as Record<string, unknown>;
    expect(result.echo).toEqual({ n: 1 });
    expect(result.requestId).toBe(spec.requestId);
    expect(result.memory).toBe(256);
    expect(result.handler).toBe("index.main_handler");
    // It runs as the unprivileged handler user, not as the agent's root.
    expect(result.user).not.toBe("0");
    expect(lines).toContain("init handler=index.main_handler runtime=CustomRuntime api=127.0.0.1");
    expect(lines).toContain(`event ${spec.requestId} {"n":1}`);
  });

  it("stays warm: the next event of the same function runs in the same program", async () => {
    const { end, lines } = await runExecution(agent, customSpec(code, { n: 2 }));
    expect((end.outcome?.result as { echo?: unknown } | undefined)?.echo).toEqual({ n: 2 });
    expect(lines.some((line) => line.startsWith("init "))).toBe(false);
  });

  it("fails the event with the posted error as its message", async () => {
    const { end } = await runExecution(agent, customSpec(code, { mode: "error" }));
    expect(end.outcome).toMatchObject({ kind: "threw", message: 'bad input: {"mode":"error"}' });
  });

  it("keeps 4 KiB of an over-long error, marked as cut", async () => {
    const { end } = await runExecution(agent, customSpec(code, { mode: "bigerror" }));
    expect(end.outcome?.kind).toBe("threw");
    const message = String(end.outcome?.message);
    expect(Buffer.byteLength(message)).toBeLessThanOrEqual(4096);
    expect(message).toMatch(/^e+…\[truncated: /);
  });

  it("fails a response over 1 MiB naming the limit", async () => {
    const { end } = await runExecution(agent, customSpec(code, { mode: "big" }));
    expect(end.outcome?.kind).toBe("threw");
    expect(String(end.outcome?.message)).toContain("over the limit of 1048576 bytes");
  });

  it("relays progress posted to the extension route", async () => {
    const { end, records } = await runExecution(agent, customSpec(code, { mode: "progress" }));
    expect(end.outcome).toMatchObject({ kind: "returned", result: { progressStatus: 200 } });
    const progress = records.find((record) => record.type === "progress") as unknown as {
      percent: number;
      message: string;
    };
    expect(progress).toMatchObject({ percent: 40, message: "two of five" });
  });

  it("answers 404, 400 and 409 to a wrong route, bad progress, early and second results", async () => {
    const probe = await runExecution(agent, customSpec(code, { mode: "probe" }));
    expect(probe.end.outcome).toMatchObject({
      kind: "returned",
      result: { notFound: 404, badProgress: 400, early: 400 },
    });
    // The probe posts twice more after its result; the next command must not come first.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const late = await runExecution(agent, customSpec(code, { mode: "late" }));
    expect(late.end.outcome).toMatchObject({ kind: "returned", result: "409 409" });
  });

  it("cannot forge its outcome on the report channel", async () => {
    const { end } = await runExecution(agent, customSpec(code, { mode: "forge" }));
    expect(end.outcome).toMatchObject({ kind: "returned", result: "honest" });
  });

  it("ends an event whose program exits mid-event as exited with its code", async () => {
    const { end, lines } = await runExecution(agent, customSpec(code, { mode: "exit" }));
    expect(end.outcome).toEqual({ kind: "exited", code: 3, signal: null });
    expect(lines).toContain("exiting 3");
  });

  it("times out a program that does not answer in time", async () => {
    const spec = customSpec(code, { mode: "sleep" }, { timeoutMs: 1_000 });
    const { end } = await runExecution(agent, spec);
    expect(end.outcome?.kind).toBe("timeout");
  });

  it("gives a graceful terminate's SIGTERM to the program, whose trap finishes the event", async () => {
    const spec = customSpec(code, { mode: "sleep" });
    const { end, lines } = await runUntilEnd(agent, spec, async () => {
      const response = await agent.request(`/executions/${String(spec.requestId)}/signal`, { method: "POST" });
      expect(response.status).toBe(200);
    });
    expect(lines).toContain("got TERM, finishing");
    expect(lines).toContain("[PLATFORM] Signal received successfully");
    expect(end.outcome).toMatchObject({ kind: "returned", result: { terminated: 1 } });
  });

  it("ends with sigterm when the program does not handle SIGTERM", async () => {
    const script = `#!/bin/bash
exec 5<>"/dev/tcp/$SCF_RUNTIME_API/$SCF_RUNTIME_API_PORT"
printf 'GET /runtime/invocation/next HTTP/1.0\\r\\n\\r\\n' >&5
cat <&5 >/dev/null
echo ready
sleep 60
`;
    const stored = await putCode(agent, customRuntimeZip({ script }));
    const spec = customSpec(stored.sha256, {});
    const { end, lines } = await runUntilEnd(agent, spec, async () => {
      await agent.request(`/executions/${String(spec.requestId)}/signal`, { method: "POST" });
    });
    expect(end.outcome?.kind).toBe("sigterm");
    expect(lines).toContain("[PLATFORM] Signal reception failed");
  });

  it("starts a program that exits between events again: back-to-back events after a one-shot program all succeed", async () => {
    // Takes one event, answers it and exits 0: the next command may reach the shim before it has
    // seen the exit, and must still be run (by the program started again), never fail 439.
    const stored = await putCode(agent, customRuntimeZip({ script: ONE_SHOT }));
    for (let n = 0; n < 4; n++) {
      const spec = customSpec(stored.sha256, { n });
      const { end, records, lines } = await runExecution(agent, spec);
      expect(end.outcome, JSON.stringify(records)).toEqual({ kind: "returned", result: { n } });
      expect(records[0]?.type).toBe("started");
      expect(lines).toContain(`took ${String(spec.requestId)}`);
    }
  });

  it("fails an event whose program exits before taking it, started again once, with its exit code", async () => {
    const stored = await putCode(agent, customRuntimeZip({ script: "#!/bin/bash\necho starting\nexit 7\n" }));
    const { end, lines } = await runExecution(agent, customSpec(stored.sha256, {}));
    expect(end.outcome).toEqual({ kind: "exited", code: 7, signal: null });
    expect(lines.filter((line) => line === "starting")).toHaveLength(2);
  });

  it("counts only the program's take of an event as its hand-over, not output printed before it", async () => {
    // The program prints after its answer and takes the next event 1.5 s later, answering at once:
    // that event starts when the program asks for it (its duration is short), not at the stray
    // line, which is logged after the started record (still the stream's first).
    const stored = await putCode(agent, customRuntimeZip({ script: STRAY_OUTPUT }));
    await runExecution(agent, customSpec(stored.sha256, { n: 1 }));
    const { end, records, lines } = await runExecution(agent, customSpec(stored.sha256, { n: 2 }));
    expect(end.outcome).toEqual({ kind: "returned", result: { n: 2 } });
    expect(records[0]?.type).toBe("started");
    expect(lines).toContain("stray after the answer");
    expect((end as { durationMs?: number }).durationMs).toBeLessThan(700);
  });

  it("gives the program PYTHONUNBUFFERED=1 unless the function sets it", async () => {
    const script = `#!/bin/bash
${HTTP_FUNCTION}
http GET /runtime/invocation/next
http POST /runtime/invocation/response "\\"<\${PYTHONUNBUFFERED-unset}>\\""
sleep 60
`;
    const stored = await putCode(agent, customRuntimeZip({ script }));
    const plain = await runExecution(agent, customSpec(stored.sha256, {}));
    expect(plain.end.outcome).toEqual({ kind: "returned", result: "<1>" });
    const own = await runExecution(agent, customSpec(stored.sha256, {}, { environment: { PYTHONUNBUFFERED: "" } }));
    expect(own.end.outcome).toEqual({ kind: "returned", result: "<>" });
  });

  it("ends a program killed by a signal other than SIGTERM, SIGKILL or SIGINT with exit 128+n, the shim not raising it", async () => {
    const script = `#!/bin/bash
${HTTP_FUNCTION}
http GET /runtime/invocation/next
echo "killing myself"
kill -USR1 $$
sleep 5
`;
    const stored = await putCode(agent, customRuntimeZip({ script }));
    const { end, lines } = await runExecution(agent, customSpec(stored.sha256, {}));
    expect(end.outcome).toEqual({ kind: "exited", code: 138, signal: null });
    expect(lines).toContain("killing myself");
    // SIGUSR1 raised on the (Node.js) shim would start its inspector.
    expect(lines.filter((line) => /debugger/i.test(line))).toEqual([]);
  });

  it("accepts `bootstrap` as the file's name", async () => {
    const stored = await putCode(agent, customRuntimeZip({ name: "bootstrap" }));
    const { end } = await runExecution(agent, customSpec(stored.sha256, { n: 3 }));
    expect((end.outcome?.result as { echo?: unknown } | undefined)?.echo).toEqual({ n: 3 });
  });
});

describe("a package without a runnable bootstrap", () => {
  it("fails every event saying scf_bootstrap is missing or not executable", async () => {
    for (const zip of [customRuntimeZip({ executable: false }), customRuntimeZip({ name: "main.sh" })]) {
      const stored = await putCode(agent, zip);
      for (let n = 0; n < 2; n++) {
        const { end } = await runExecution(agent, customSpec(stored.sha256, {}));
        expect(end.outcome?.kind).toBe("threw");
        expect(String(end.outcome?.message)).toContain(
          "scf_bootstrap is missing or not executable (chmod 755 before zipping)",
        );
      }
    }
  });

  it("fails with the start error when the file cannot be executed", async () => {
    const stored = await putCode(agent, customRuntimeZip({ script: "#!/no/such/interpreter\necho hi\n" }));
    const { end } = await runExecution(agent, customSpec(stored.sha256, {}));
    expect(end.outcome?.kind).toBe("threw");
    expect(String(end.outcome?.message)).toContain("scf_bootstrap could not be started (ENOENT)");
  });
});

describe("the shim on its own", () => {
  it("writes its end marks even when the program made the shared stdout non-blocking and the pipe is full", async () => {
    // The program makes the stdout it shares with the shim non-blocking (as a Node.js program does),
    // fills it while nothing reads it, then posts its result: the shim's end mark meets EAGAIN and
    // must wait for room, not fail the post (which would leave the event without an outcome).
    const codeDir = mkdtempSync(join(tmpdir(), "afp-custom-"));
    const program = `#!/usr/bin/env python3
import fcntl, os, sys, urllib.error, urllib.request
api = "http://%s:%s" % (os.environ["SCF_RUNTIME_API"], os.environ["SCF_RUNTIME_API_PORT"])
fcntl.fcntl(1, fcntl.F_SETFL, fcntl.fcntl(1, fcntl.F_GETFL) | os.O_NONBLOCK)
urllib.request.urlopen(api + "/runtime/invocation/next").read()
try:
    while True:
        os.write(1, b"x" * 65536)
except BlockingIOError:
    pass
try:
    status = urllib.request.urlopen(urllib.request.Request(api + "/runtime/invocation/response", data=b'"done"', method="POST")).status
except urllib.error.HTTPError as error:
    status = error.code
os.write(2, b"posted %d\\n" % status)
`;
    writeFileSync(join(codeDir, "scf_bootstrap"), program, { mode: 0o755 });
    const shim = spawn(process.execPath, [join(AGENT_DIR, "bootstrap-custom.mjs"), codeDir, "index.main_handler"], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      stdio: ["pipe", "pipe", "pipe", "pipe"],
      detached: true,
    });
    try {
      const reports: Array<{ kind: string; result?: unknown }> = [];
      let reportText = "";
      shim.stdio[3]?.on("data", (chunk: Buffer) => {
        reportText += chunk.toString();
        const lines = reportText.split("\n");
        reportText = lines.pop() ?? "";
        for (const line of lines) if (line.trim()) reports.push(JSON.parse(line));
      });
      let errText = "";
      shim.stderr?.on("data", (chunk: Buffer) => {
        errText += chunk.toString();
      });
      shim.stdin?.write(`${JSON.stringify({ requestId: "r-eagain", event: {}, context: {} })}\n`);
      // stdout is not read yet: wait until the program took the event and filled the pipe.
      const deadline = Date.now() + 10_000;
      while (!reports.some((report) => report.kind === "received") && Date.now() < deadline) await sleep(50);
      await sleep(1_000);
      let out = "";
      shim.stdout?.on("data", (chunk: Buffer) => {
        out += chunk.toString("latin1");
      });
      while (!reports.some((report) => report.kind === "returned") && Date.now() < deadline + 5_000) await sleep(50);
      expect(
        reports.map((report) => report.kind),
        errText,
      ).toEqual(["received", "returned"]);
      expect(reports[1]?.result).toBe("done");
      while (!out.includes("\u0000AFP_END:r-eagain\n") && Date.now() < deadline + 10_000) await sleep(50);
      expect(out.endsWith("\u0000AFP_END:r-eagain\n")).toBe(true);
    } finally {
      if (shim.pid !== undefined) process.kill(-shim.pid, "SIGKILL");
      rmSync(codeDir, { recursive: true, force: true });
    }
  });
});

describe("extracting a package", () => {
  it("keeps an execute bit as 0755 and never keeps setuid or write bits for others", async () => {
    const data = new TextEncoder().encode("x");
    const stored = await putCode(
      agent,
      craftZip([
        { name: "tool", data, unixMode: 0o104777 },
        { name: "bin/run", data, unixMode: 0o100700 },
        { name: "data.txt", data, unixMode: 0o100666 },
        { name: "plain", data },
      ]),
    );
    expect(stored.status).toBe(201);
    const modeOf = (path: string) => statSync(join(agent.codeRoot, stored.sha256, path)).mode & 0o7777;
    expect(modeOf("tool")).toBe(0o755);
    expect(modeOf("bin/run")).toBe(0o755);
    expect(modeOf("data.txt")).toBe(0o644);
    expect(modeOf("plain")).toBe(0o644);
  });
});
