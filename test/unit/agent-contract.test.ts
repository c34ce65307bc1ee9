// The container contract (worker/contract) as the worker uses it: the execution spec an instance
// sends is refused when it breaks a bound the agent enforces, every record kind of the agent's
// stream parses, and a malformed record is refused (and skipped by the stream reader, never cast).
import { describe, expect, it } from "vitest";
import {
  AGENT_PORT,
  agentErrorSchema,
  agentHealthSchema,
  agentRecordSchema,
  CODE_RUNTIME_NAMES,
  type ExecutionSpec,
  executionSpecSchema,
  MAX_ENV_TOTAL_CHARS,
  MAX_ENV_VALUE_CHARS,
  MAX_ENV_VARIABLES,
  MAX_IMAGE_COMMAND_ITEM_CHARS,
  MAX_IMAGE_COMMAND_ITEMS,
  problemOf,
  RUNTIME_NAMES,
  signalAnswerSchema,
  signalRequestSchema,
} from "../../worker/contract/agent-contract";
import { readAgentRecords, readStartedRecord } from "../../worker/instances/agent-stream";

const SHA256 = "a".repeat(64);

/** A spec as instance-container sends it. */
function spec(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const valid: ExecutionSpec = {
    requestId: "0f5b3a52-6b1e-4c59-9b55-3f1d1f2f1c11",
    runtime: "Nodejs22",
    handler: "index.main_handler",
    codeSha256: SHA256,
    event: { hello: "world" },
    environment: { GREETING: "hi" },
    memoryLimitMb: 128,
    timeoutMs: 4_000,
    context: {
      request_id: "0f5b3a52-6b1e-4c59-9b55-3f1d1f2f1c11",
      function_name: "fn",
      namespace: "default",
      function_version: "$LATEST",
      memory_limit_in_mb: 128,
      time_limit_in_ms: 3_000,
    },
  };
  return { ...valid, ...overrides };
}

/** Why the contract refuses a spec ("" when it takes it). */
function refusal(value: unknown): string {
  const parsed = executionSpecSchema.safeParse(value);
  return parsed.success ? "" : problemOf(parsed.error);
}

/** A byte stream of the given text, cut into chunks of `size` characters. */
function streamOf(text: string, size = 7): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  return new ReadableStream({
    start(controller) {
      for (let at = 0; at < bytes.length; at += size) controller.enqueue(bytes.slice(at, at + size));
      controller.close();
    },
  });
}

const STARTED = { type: "started", seq: 1, ts: 1_700_000_000_000 };
const LOG = { type: "log", seq: 2, ts: 1_700_000_000_001, stream: "stdout", line: "hello" };
const END = {
  type: "end",
  seq: 3,
  ts: 1_700_000_000_002,
  outcome: { kind: "returned", result: { ok: true } },
  durationMs: 2,
  maxRssKb: 40_000,
};

describe("the execution spec of the container contract", () => {
  it("takes the spec an instance sends", () => {
    expect(refusal(spec())).toBe("");
  });

  it("refuses an unknown runtime, quoting it, and takes every name of the runtime table", () => {
    expect(RUNTIME_NAMES).toContain("Nodejs22");
    expect(RUNTIME_NAMES).toContain("Python3.11");
    for (const runtime of CODE_RUNTIME_NAMES) expect(refusal(spec({ runtime })), runtime).toBe("");
    expect(RUNTIME_NAMES).toEqual([...CODE_RUNTIME_NAMES, "CustomImage"]);
    for (const runtime of ["Ruby3", "Python2.7", "Php7", "__proto__", "toString", undefined]) {
      expect(refusal(spec({ runtime })), String(runtime)).toMatch(/^runtime: unknown runtime /);
    }
    expect(refusal(spec({ runtime: "Ruby3" }))).toBe('runtime: unknown runtime "Ruby3"');
  });

  it("refuses a path-like requestId, in the spec and in its context", () => {
    for (const requestId of ["../x", "a/b", "..", "", "x".repeat(129), 7]) {
      expect(refusal(spec({ requestId })), String(requestId)).toMatch(/^requestId: /);
    }
    const context = { ...(spec().context as object), request_id: "../../etc" };
    expect(refusal(spec({ context }))).toMatch(/^context\.request_id: /);
  });

  it("refuses a handler that leaves the code folder, and a code hash that is not a hash", () => {
    for (const handler of [
      "a/../../x.main",
      "../index.main_handler",
      "/etc/passwd.main",
      "index\u0000.main",
      "./i.m",
    ]) {
      expect(refusal(spec({ handler })), handler).toMatch(/^handler: /);
    }
    expect(refusal(spec({ codeSha256: `${SHA256}/..` }))).toMatch(/^codeSha256: /);
  });

  it("refuses an oversized environment, naming the bound it breaks", () => {
    const tooLong = { ONE: "v".repeat(MAX_ENV_VALUE_CHARS + 1) };
    expect(refusal(spec({ environment: tooLong }))).toBe(
      `environment: environment variable ONE is ${MAX_ENV_VALUE_CHARS + 1} characters, over the limit of ${MAX_ENV_VALUE_CHARS}`,
    );
    const large: Record<string, string> = {};
    for (let n = 0; n < 20; n++) large[`VARIABLE_${n}`] = "v".repeat(MAX_ENV_VALUE_CHARS);
    expect(refusal(spec({ environment: large }))).toMatch(
      new RegExp(`in total, over the limit of ${MAX_ENV_TOTAL_CHARS}$`),
    );
    const many = Object.fromEntries(Array.from({ length: MAX_ENV_VARIABLES + 1 }, (_, n) => [`V${n}`, "1"]));
    expect(refusal(spec({ environment: many }))).toMatch(/more than 256 environment variables/);
    expect(refusal(spec({ environment: { "1BAD": "x" } }))).toMatch(/name "1BAD" is not valid/);
  });

  it("refuses a memory size or timeout out of bounds, and a body that is not an object", () => {
    expect(refusal(spec({ memoryLimitMb: 1.5 }))).toMatch(/^memoryLimitMb: must be an integer from 0 to 65536$/);
    expect(refusal(spec({ memoryLimitMb: 65_537 }))).toMatch(/^memoryLimitMb: /);
    expect(refusal(spec({ timeoutMs: -1 }))).toBe("timeoutMs: must be a non-negative number");
    expect(refusal([])).toBe("the execution spec must be a JSON object");
  });
});

describe("the image spec of the container contract", () => {
  /** An image spec: no handler, no code hash, the image's name and optional command or args. */
  function imageSpec(image: unknown, overrides: Record<string, unknown> = {}): Record<string, unknown> {
    const { handler: _handler, codeSha256: _codeSha256, ...common } = spec();
    return { ...common, runtime: "CustomImage", image, ...overrides };
  }

  it("takes an image spec with a registered image name and, optionally, a command or args", () => {
    expect(refusal(imageSpec({ name: "flask-sample" }))).toBe("");
    expect(refusal(imageSpec({ name: "flask-sample", command: ["python3", "-u", "app.py"] }))).toBe("");
    expect(refusal(imageSpec({ name: "flask-sample", args: ["-u", "app.py"] }))).toBe("");
  });

  it("refuses an image spec without an image, with a path-like name, or with a bad command", () => {
    expect(refusal(imageSpec(undefined))).toMatch(/^image: /);
    for (const name of ["../x", "Flask", "a/b", "", "x".repeat(64), 7]) {
      expect(refusal(imageSpec({ name })), String(name)).toMatch(/^image\.name: /);
    }
    expect(refusal(imageSpec({ name: "f", command: [] }))).toMatch(/^image\.command: /);
    expect(refusal(imageSpec({ name: "f", command: [""] }))).toMatch(/^image\.command: /);
    expect(refusal(imageSpec({ name: "f", command: ["a\u0000"] }))).toMatch(/^image\.command\.0: contains NUL/);
    const many = Array.from({ length: MAX_IMAGE_COMMAND_ITEMS + 1 }, () => "x");
    expect(refusal(imageSpec({ name: "f", command: many }))).toMatch(/^image\.command: has more than/);
    expect(refusal(imageSpec({ name: "f", args: many }))).toMatch(/^image\.args: has more than/);
    const long = ["x".repeat(MAX_IMAGE_COMMAND_ITEM_CHARS + 1)];
    expect(refusal(imageSpec({ name: "f", command: long }))).toMatch(/^image\.command\.0: is longer/);
  });

  it("never takes a code spec as CustomImage, nor an image spec under a code runtime", () => {
    expect(refusal(spec({ runtime: "CustomImage" }))).toMatch(/^image: /);
    expect(refusal(imageSpec({ name: "f" }, { runtime: "Nodejs22" }))).toMatch(/^(handler|codeSha256): /);
  });
});

describe("the records and answers of the container contract", () => {
  it("parses each record kind of the agent's stream", () => {
    const records = [
      STARTED,
      LOG,
      { ...LOG, seq: 3, stream: "stderr", line: "" },
      { ...LOG, seq: 4, stream: "platform", line: "[PLATFORM] Signal received successfully" },
      END,
      { ...END, outcome: { kind: "exited", code: 3, signal: null }, exitCode: 3, signal: null },
      { ...END, outcome: { kind: "threw", message: "Error: no", stack: "at x" } },
      { ...END, outcome: { kind: "platform_stop", message: "the handler was ended by SIGTERM" } },
      { type: "heartbeat", ts: 1_700_000_015_000 },
      { type: "gap", from: 1, to: 40 },
    ];
    for (const record of records) {
      expect(agentRecordSchema.safeParse(record).success, JSON.stringify(record)).toBe(true);
    }
    expect(agentRecordSchema.parse(END)).toEqual(END);
  });

  it("rejects a malformed record", () => {
    const malformed: unknown[] = [
      { type: "log", seq: 2, ts: 1, stream: "stdin", line: "x" },
      { type: "log", seq: 2, ts: 1, stream: "stdout" },
      { type: "started", seq: 0, ts: 1 },
      { type: "started", seq: 1.5, ts: 1 },
      { type: "end", seq: 3, ts: 1, outcome: { kind: "vanished" } },
      { type: "end", seq: 3, ts: 1, outcome: { kind: "threw" } },
      { type: "gap", from: "1", to: 2 },
      { type: "unknown", seq: 1, ts: 1 },
      null,
      "started",
    ];
    for (const record of malformed) {
      expect(agentRecordSchema.safeParse(record).success, JSON.stringify(record)).toBe(false);
    }
  });

  it("checks the health answer, the signal body and answer, and a refusal's body", () => {
    const health = {
      ok: true,
      bootId: "3c1d",
      pid: 7,
      parentPid: 1,
      startedAt: 1,
      uptimeMs: 2,
      signalsReceived: [{ signal: "SIGTERM", at: 3 }],
      busy: false,
      stopping: false,
      requestId: null,
      handlerUid: null,
    };
    expect(agentHealthSchema.parse(health)).toEqual(health);
    expect(agentHealthSchema.safeParse({ ...health, pid: "7" }).success).toBe(false);
    expect(agentHealthSchema.safeParse({ ...health, bootId: undefined }).success).toBe(false);
    expect(signalRequestSchema.parse({})).toEqual({ signal: "SIGTERM" });
    expect(signalRequestSchema.safeParse({ signal: "SIGKILL" }).success).toBe(false);
    expect(signalAnswerSchema.parse({ delivered: true })).toEqual({ delivered: true });
    expect(agentErrorSchema.parse({ error: "busy", requestId: "r1" })).toEqual({ error: "busy", requestId: "r1" });
    expect(agentErrorSchema.safeParse({ message: "no" }).success).toBe(false);
    expect(AGENT_PORT).toBe(8080);
  });
});

describe("the worker's reader of the agent's stream", () => {
  it("yields the records that fit the contract and skips torn, corrupt or malformed lines", async () => {
    const text = [
      JSON.stringify(STARTED),
      '{"type":"log","seq":2,"ts":1,"str',
      JSON.stringify(LOG),
      JSON.stringify({ ...LOG, seq: 3, stream: "stdin" }),
      "not json",
      JSON.stringify(END),
    ].join("\n");
    const records = [];
    for await (const record of readAgentRecords(streamOf(text))) records.push(record);
    expect(records).toEqual([STARTED, LOG, END]);
  });

  it("stops reading a silent stream at once when its signal aborts, with the abort's reason", async () => {
    let cancelled: unknown;
    const silent = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(`${JSON.stringify(STARTED)}\n`));
      },
      cancel(reason) {
        cancelled = reason;
      },
    });
    const controller = new AbortController();
    const reason = new Error("relay interrupted");
    const records = readAgentRecords(silent, controller.signal);
    expect((await records.next()).value).toEqual(STARTED);
    const next = records.next();
    controller.abort(reason);
    await expect(next).rejects.toBe(reason);
    expect(cancelled).toBe(reason);
  });

  it("takes a valid started record off the stream, after heartbeats, and leaves a malformed one to the relay", async () => {
    const heartbeat = JSON.stringify({ type: "heartbeat", ts: 5 });
    const opened = await readStartedRecord(
      streamOf(`${heartbeat}\n${JSON.stringify(STARTED)}\n${JSON.stringify(LOG)}\n`),
    );
    expect(opened.started).toEqual(STARTED);
    expect(await new Response(opened.rest).text()).toBe(`${JSON.stringify(LOG)}\n`);

    const malformed = `${JSON.stringify({ type: "started", seq: "1", ts: 2 })}\n${JSON.stringify(END)}\n`;
    const refused = await readStartedRecord(streamOf(malformed));
    expect(refused.started).toBeUndefined();
    expect(await new Response(refused.rest).text()).toBe(malformed);
  });
});
