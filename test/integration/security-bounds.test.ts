import { env, evictDurableObject, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  type AsyncEventObject,
  type EventWithLog,
  FUNCTION_LOG_RESULT_BYTES,
  MAX_LOG_PAGE_CHARS,
} from "../../worker/events/async-event-object";
import { PLATFORM_LOG_MARGIN_CHARS } from "../../worker/events/event-log";
import type { EventPhase, EventState, PublicEvent } from "../../worker/events/event-machine";
import { MAX_ERROR_MESSAGE_BYTES, MAX_ERROR_STACK_BYTES, MAX_RESULT_BYTES } from "../../worker/events/event-machine";
import { MAX_FOLLOWERS_PER_EVENT } from "../../worker/events/log-followers";
import { MAX_ENV_NAME_CHARS, MAX_ENV_TOTAL_BYTES, MAX_ENV_VALUE_BYTES } from "../../worker/functions/model";
import { MAX_FUNCTION_LOG_ANSWER_BYTES } from "../../worker/logs/function-logs";
import { READ_RATE_PER_SECOND } from "../../worker/ratelimit/read-limit";
import { unwrap } from "../../worker/shared/errors";
import { functionSnapshot } from "../helpers/function-snapshot";
import { zipBase64 } from "../helpers/zip";

const ROOT = { authorization: "Bearer AKIDintegration:integration-secret-key-0123456789abcdef" };
const ZIP = zipBase64({ "index.js": "exports.main_handler = async () => 'ok';" });
const encoder = new TextEncoder();
let counter = 0;

function uniqueName(prefix = "fn"): string {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${counter}`;
}

function call(path: string, init: RequestInit = {}, auth: Record<string, string> = ROOT): Promise<Response> {
  return SELF.fetch(`https://platform.test${path}`, { ...init, headers: { ...auth, ...(init.headers ?? {}) } });
}

async function errorOf(response: Response): Promise<{ code: string; message: string }> {
  return ((await response.json()) as { error: { code: string; message: string } }).error;
}

/** A fresh key for one namespace: its own read-rate bucket, untouched by the other tests. */
async function createKey(namespace: string): Promise<Record<string, string>> {
  const response = await call("/v1/admin/credentials", {
    method: "POST",
    body: JSON.stringify({ namespaces: [namespace], description: "security-bounds" }),
  });
  expect(response.status).toBe(201);
  const key = (await response.json()) as { secretId: string; secretKey: string };
  return { authorization: `Bearer ${key.secretId}:${key.secretKey}` };
}

async function createFunction(name: string, extra: Record<string, unknown> = {}): Promise<Response> {
  return call("/v1/namespaces/default/functions", {
    method: "POST",
    body: JSON.stringify({ name, runtime: "Nodejs22", code: { zipFile: ZIP }, ...extra }),
  });
}

async function functionRow(name: string): Promise<Record<string, unknown> | null> {
  return env.DB.prepare("SELECT * FROM functions WHERE namespace = 'default' AND name = ?").bind(name).first();
}

async function codeObjects(name: string): Promise<number> {
  return (await env.CODE_BUCKET.list({ prefix: `code/default/${name}/` })).objects.length;
}

function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let at = 0; at < bytes.length; at += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(at, at + 0x8000));
  }
  return btoa(binary);
}

/** A zip of one deflated entry of zeros: kilobytes that expand to `size` bytes. */
async function zipBomb(size: number): Promise<string> {
  const zeros = new Uint8Array(size);
  const stream = new Blob([zeros]).stream().pipeThrough(new CompressionStream("deflate-raw"));
  const data = new Uint8Array(await new Response(stream).arrayBuffer());
  const name = encoder.encode("index.js");
  const local = new DataView(new ArrayBuffer(30));
  local.setUint32(0, 0x04034b50, true);
  local.setUint16(8, 8, true);
  local.setUint32(18, data.length, true);
  local.setUint32(22, size, true);
  local.setUint16(26, name.length, true);
  const central = new DataView(new ArrayBuffer(46));
  central.setUint32(0, 0x02014b50, true);
  central.setUint16(10, 8, true);
  central.setUint32(20, data.length, true);
  central.setUint32(24, size, true);
  central.setUint16(28, name.length, true);
  const directoryOffset = 30 + name.length + data.length;
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, 1, true);
  end.setUint16(10, 1, true);
  end.setUint32(12, 46 + name.length, true);
  end.setUint32(16, directoryOffset, true);
  const parts = [
    new Uint8Array(local.buffer),
    name,
    data,
    new Uint8Array(central.buffer),
    name,
    new Uint8Array(end.buffer),
  ];
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return bytesToBase64(out);
}

/** Stores an event in its object as if it had been accepted (and claimed, for later phases). */
async function seedEvent(options: {
  phase: EventPhase;
  namespace?: string;
  functionName?: string;
  instanceId?: string;
  logLimitMb?: number;
}) {
  const requestId = crypto.randomUUID();
  const namespace = options.namespace ?? "default";
  const functionName = options.functionName ?? "report";
  const now = Date.now();
  const state: EventState = {
    requestId,
    namespace,
    functionName,
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    function: functionSnapshot(namespace, functionName, {
      codeSha256: "b".repeat(64),
      codeKey: `code/${namespace}/${functionName}/b.zip`,
      timeoutSeconds: 600,
      ...(options.logLimitMb !== undefined ? { logLimitMb: options.logLimitMb } : {}),
    }),
    phase: options.phase,
    version: 3,
    invokedAt: now - 2_000,
    ...(options.phase !== "queued" ? { claimedAt: now - 1_500, instanceId: options.instanceId } : {}),
    ...(options.phase === "running" ? { startedAt: now - 1_000, cold: true, containerId: "boot-1" } : {}),
  };
  const stub = env.ASYNC_EVENT.get(env.ASYNC_EVENT.idFromName(requestId));
  await runInDurableObject(stub, async (_instance, storage) => {
    await storage.storage.put({ state, payload: "{}" });
    await storage.storage.setAlarm(now + 60 * 60_000);
  });
  await evictDurableObject(stub);
  return { requestId, stub };
}

/** Index rows of the namespace in D1 (of one event when requestId is given). */
async function indexedRows(namespace: string, requestId?: string): Promise<number> {
  const row = await env.DB.prepare(
    "SELECT COUNT(*) AS n FROM events WHERE namespace = ? AND (?2 IS NULL OR request_id = ?2)",
  )
    .bind(namespace, requestId ?? null)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

async function viewOf(stub: DurableObjectStub<AsyncEventObject>): Promise<PublicEvent> {
  const view = await stub.view();
  if (view.ok === false) throw new Error(view.message);
  return unwrap<PublicEvent>(view);
}

describe("environment variable bounds", () => {
  it("refuses a value over the per-value cap at creation and stores nothing", async () => {
    const name = uniqueName();
    const response = await createFunction(name, { environment: { BIG: "é".repeat(MAX_ENV_VALUE_BYTES / 2 + 1) } });
    expect(response.status).toBe(400);
    expect((await errorOf(response)).message).toContain(`at most ${MAX_ENV_VALUE_BYTES} bytes`);
    expect(await functionRow(name)).toBeNull();
    expect(await codeObjects(name)).toBe(0);
  });

  it("refuses a name over the length cap", async () => {
    const response = await createFunction(uniqueName(), {
      environment: { [`A${"B".repeat(MAX_ENV_NAME_CHARS)}`]: "1" },
    });
    expect(response.status).toBe(400);
    expect((await errorOf(response)).message).toContain(`at most ${MAX_ENV_NAME_CHARS} characters`);
  });

  it("refuses an update whose names and values together pass the total cap, leaving the function unchanged", async () => {
    const name = uniqueName();
    expect((await createFunction(name, { environment: { KEEP: "me" } })).status).toBe(201);
    const before = await functionRow(name);
    const environment = Object.fromEntries(
      Array.from({ length: 9 }, (_, i) => [`VAR_${i}`, "x".repeat(MAX_ENV_VALUE_BYTES - 10)]),
    );
    const response = await call(`/v1/namespaces/default/functions/${name}`, {
      method: "PATCH",
      body: JSON.stringify({ environment }),
    });
    expect(response.status).toBe(400);
    expect((await errorOf(response)).message).toContain(`at most ${MAX_ENV_TOTAL_BYTES} bytes (UTF-8) in total`);
    expect(await functionRow(name)).toEqual(before);
  });

  it("accepts variables right at the caps", async () => {
    const environment = Object.fromEntries(
      Array.from({ length: 7 }, (_, i) => [`V${i}`, "x".repeat(MAX_ENV_VALUE_BYTES)]),
    );
    expect((await createFunction(uniqueName(), { environment })).status).toBe(201);
  });
});

describe("code package bounds", () => {
  it("refuses a zip bomb at creation: 400, no row, no R2 object", async () => {
    const name = uniqueName();
    const response = await createFunction(name, { code: { zipFile: await zipBomb(64 * 1024 * 1024) } });
    expect(response.status).toBe(400);
    expect((await errorOf(response)).message).toContain("compression ratio limit");
    expect(await functionRow(name)).toBeNull();
    expect(await codeObjects(name)).toBe(0);
  });

  it("refuses a zip bomb as new code and keeps the old code", async () => {
    const name = uniqueName();
    expect((await createFunction(name)).status).toBe(201);
    const before = await functionRow(name);
    const response = await call(`/v1/namespaces/default/functions/${name}/code`, {
      method: "PUT",
      body: JSON.stringify({ zipFile: await zipBomb(16 * 1024 * 1024) }),
    });
    expect(response.status).toBe(400);
    expect(await functionRow(name)).toEqual(before);
    expect(await codeObjects(name)).toBe(1);
  });

  it("refuses an entry that climbs out of the code folder", async () => {
    const name = uniqueName();
    const response = await createFunction(name, { code: { zipFile: zipBase64({ "../../etc/cron.d/x": "boom" }) } });
    expect(response.status).toBe(400);
    expect((await errorOf(response)).message).toContain("'..' path segments");
    expect(await functionRow(name)).toBeNull();
  });
});

describe("handler value", () => {
  it("refuses a handler with an empty, '.' or '..' segment or a leading '/', at creation and on update", async () => {
    // An empty or '.' segment is refused too: the agent refuses such a handler (the container
    // contract's rule), so the API must not accept a function that could never run.
    for (const handler of ["a/../../x.main", "../index.main", "a/..", "/etc/index.main", "a//b.main", "a/./b.main"]) {
      const response = await createFunction(uniqueName(), { handler });
      expect(response.status, handler).toBe(400);
    }
    const name = uniqueName();
    expect((await createFunction(name, { handler: "src/app.main" })).status).toBe(201);
    const response = await call(`/v1/namespaces/default/functions/${name}`, {
      method: "PATCH",
      body: JSON.stringify({ handler: "src/../../root.main" }),
    });
    expect(response.status).toBe(400);
    expect((await errorOf(response)).message).toContain("'..'");
    expect((await functionRow(name))?.handler).toBe("src/app.main");
  });
});

describe("event ownership", () => {
  it("refuses a claim by an instance of another function and changes nothing", async () => {
    const { stub } = await seedEvent({ phase: "queued", functionName: "report" });
    const before = await viewOf(stub);
    for (const foreign of [
      "default/other#0",
      "other-ns/report#0",
      "default/report",
      "default/report#x",
      "default/reports#0",
    ]) {
      expect(await stub.claim(foreign), foreign).toMatchObject({ ok: false });
    }
    expect(await viewOf(stub)).toEqual(before);
    expect(await stub.claim("default/report#3")).toMatchObject({ ok: true });
    expect(await viewOf(stub)).toMatchObject({ phase: "starting", instanceId: "default/report#3" });
  });

  it("ignores markStarted, complete and log lines from an instance that is not the claimant", async () => {
    const { stub } = await seedEvent({ phase: "starting", instanceId: "default/report#0" });
    const intruder = "default/report#1";
    expect(await stub.markStarted(intruder, true, "boot-x", Date.now())).toMatchObject({ ok: false });
    await stub.appendLogs([{ seq: 1, ts: Date.now(), stream: "stdout", line: "forged" }], intruder);
    const completed = await stub.complete(intruder, { kind: "returned", result: "forged" }, undefined, [
      { seq: 2, ts: Date.now(), stream: "stdout", line: "forged too" },
    ]);
    expect(completed).toMatchObject({ ok: false });
    expect(await viewOf(stub)).toMatchObject({ phase: "starting", result: null, instanceId: "default/report#0" });
    const logs = await stub.logs(0, 100);
    expect(logs).toEqual({ ok: true, value: { records: [], lastSeq: 0, more: false } });
  });

  it("ignores a completion of an event nobody has claimed", async () => {
    const { stub } = await seedEvent({ phase: "queued" });
    expect(await stub.complete("default/report#0", { kind: "returned", result: 1 })).toMatchObject({ ok: false });
    expect(await viewOf(stub)).toMatchObject({ phase: "queued", status: "RUNNING" });
  });
});

describe("bounded outcomes", () => {
  it("ends an event whose error is oversized, with the message and stack cut and marked", async () => {
    const instanceId = "default/report#0";
    const { stub } = await seedEvent({ phase: "running", instanceId });
    const message = "m".repeat(200 * 1024);
    const stack = "s".repeat(2 * 1024 * 1024);
    expect(await stub.complete(instanceId, { kind: "threw", message, stack })).toEqual({ ok: true });
    await evictDurableObject(stub);
    const view = await viewOf(stub);
    expect(view).toMatchObject({ status: "FAILED", statusCode: 430 });
    expect(encoder.encode(view.errorMessage ?? "").byteLength).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_BYTES);
    expect(encoder.encode(view.errorStack ?? "").byteLength).toBeLessThanOrEqual(MAX_ERROR_STACK_BYTES);
    expect(view.errorMessage).toMatch(/^m+…\[truncated \d+ characters\]$/);
    expect(view.errorStack).toMatch(/…\[truncated \d+ characters\]$/);
    const removed = Number(/truncated (\d+)/.exec(view.errorMessage ?? "")?.[1]);
    expect(removed + (view.errorMessage?.indexOf("…") ?? 0)).toBe(message.length);
  });

  it("keeps a large result out of the state value and reads it back after a restart", async () => {
    const instanceId = "default/report#0";
    const { stub } = await seedEvent({ phase: "running", instanceId });
    // Mostly ASCII with one non-Latin-1 character: stored at 2 bytes a character inside a value.
    const result = { frames: `${"f".repeat(900 * 1024)}中` };
    expect(await stub.complete(instanceId, { kind: "returned", result })).toEqual({ ok: true });
    await runInDurableObject(stub, async (_instance, storage) => {
      const stored = await storage.storage.get<Record<string, unknown>>("state");
      expect(stored?.result).toBeUndefined();
      expect(JSON.stringify(stored).length).toBeLessThan(16 * 1024);
    });
    await evictDurableObject(stub);
    const view = await viewOf(stub);
    expect(view).toMatchObject({ status: "FINISHED", statusCode: 200 });
    expect(view.result).toEqual(result);
  });

  it("fails an event whose result is over the limit, naming it", async () => {
    const instanceId = "default/report#0";
    const { stub } = await seedEvent({ phase: "running", instanceId });
    const result = "r".repeat(MAX_RESULT_BYTES + 1);
    expect(await stub.complete(instanceId, { kind: "returned", result })).toEqual({ ok: true });
    await evictDurableObject(stub);
    const view = await viewOf(stub);
    expect(view).toMatchObject({ status: "FAILED", result: null });
    expect(view.errorMessage).toContain(`over ${MAX_RESULT_BYTES} bytes`);
  });
});

describe("log bounds", () => {
  it("bounds one page of an event's log by characters, and the next page goes on from there", async () => {
    const instanceId = "default/report#0";
    const { stub } = await seedEvent({ phase: "running", instanceId });
    const line = "p".repeat(60 * 1024);
    const records = Array.from({ length: 40 }, (_, i) => ({ seq: i + 1, ts: i, stream: "stdout" as const, line }));
    await stub.appendLogs(records, instanceId);
    const first = await stub.logs(0, 1000);
    if (first.ok === false) throw new Error(first.message);
    const chars = first.value.records.reduce((sum, record) => sum + record.line.length + 1, 0);
    expect(chars).toBeLessThanOrEqual(MAX_LOG_PAGE_CHARS);
    expect(first.value.records.length).toBeGreaterThan(0);
    expect(first.value.records.length).toBeLessThan(40);
    expect(first.value).toMatchObject({ lastSeq: first.value.records.at(-1)?.seq, more: true });
    const next = await stub.logs(first.value.lastSeq, 1000);
    if (next.ok === false) throw new Error(next.message);
    expect(next.value.records[0]?.seq).toBe(first.value.lastSeq + 1);
  });

  it("carries a function-log entry's result as a bounded preview, without the stack", async () => {
    const instanceId = "default/report#0";
    const { stub } = await seedEvent({ phase: "running", instanceId });
    await stub.complete(instanceId, { kind: "returned", result: { big: "b".repeat(500 * 1024) } });
    const detail = unwrap<EventWithLog>(await stub.viewWithLog(64 * 1024));
    expect(detail.result).toBeNull();
    expect(encoder.encode(detail.resultPreview ?? "").byteLength).toBeLessThanOrEqual(FUNCTION_LOG_RESULT_BYTES);
    expect(detail.resultPreview).toMatch(/^\{"big":"b+…\[truncated/);
  });

  it("caps an event's stored output at its function's log limit (plus room for platform lines), counting empty lines, with one marker line", async () => {
    const instanceId = "default/report#0";
    const { stub } = await seedEvent({ phase: "running", instanceId, logLimitMb: 1 });
    const limit = 1024 * 1024 + PLATFORM_LOG_MARGIN_CHARS;
    // Lines of 1023 characters weigh 1 KiB each: `limit / 1024` of them fill the event.
    const fits = limit / 1024;
    const line = "x".repeat(1023);
    await runInDurableObject(stub, async (instance) => {
      const batch = 1_000;
      for (let start = 0; start < fits + 500; start += batch) {
        const records = Array.from({ length: batch }, (_, i) => ({
          seq: start + i + 1,
          ts: 1,
          stream: "stdout" as const,
          line: start + i === fits - 1 ? "" : line,
        }));
        await instance.appendLogs(records, instanceId);
      }
    });
    const tail = await stub.logs(fits - 2, 10);
    if (!tail.ok) throw new Error(tail.message);
    expect(tail.value.records.map((record) => record.line.length)).toEqual([1023, 0, 1023, expect.any(Number)]);
    expect(tail.value.records.at(-1)?.line).toBe(
      `[PLATFORM] Log reached ${limit} characters: later lines are not stored`,
    );
    await runInDurableObject(stub, async (_instance, storage) => {
      const meta = Object.fromEntries(
        storage.storage.sql
          .exec<{ key: string; value: number }>("SELECT key, value FROM log_meta ORDER BY key")
          .toArray()
          .map((row) => [row.key, row.value]),
      );
      // The empty line counted one character (its line break), so one more line fitted after it.
      expect(meta.dropped).toBe(Math.ceil((fits + 500) / 1000) * 1000 - fits - 1);
      expect(meta.stored_chars).toBe(limit + 1);
    });
  });

  it("bounds a function-log answer by bytes, flagging the cut events", async () => {
    const namespace = uniqueName("ns").slice(0, 30);
    const functionName = "chatty";
    const key = await createKey(namespace);
    const perEvent = 60 * 1024;
    const events = Math.ceil(MAX_FUNCTION_LOG_ANSWER_BYTES / perEvent) + 3;
    const instanceId = `${namespace}/${functionName}#0`;
    for (let i = 0; i < events; i += 1) {
      const { stub } = await seedEvent({ phase: "running", namespace, functionName, instanceId });
      await stub.appendLogs([{ seq: 1, ts: Date.now(), stream: "stdout", line: "l".repeat(perEvent) }], instanceId);
      await stub.complete(instanceId, { kind: "returned", result: i });
    }
    // The ends' index rows reach D1 through the dispatch queue's consumer.
    await expect.poll(() => indexedRows(namespace), { timeout: 10_000 }).toBe(events);
    const response = await call(`/v1/namespaces/${namespace}/functions/${functionName}/logs?limit=100`, {}, key);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { logs: { log: string; logTruncated: boolean }[] };
    expect(body.logs).toHaveLength(events);
    const total = body.logs.reduce((sum, entry) => sum + encoder.encode(entry.log).byteLength, 0);
    expect(total).toBeLessThanOrEqual(MAX_FUNCTION_LOG_ANSWER_BYTES);
    expect(body.logs.at(-1)).toEqual(expect.objectContaining({ log: "", logTruncated: true }));
    expect(body.logs[0]?.logTruncated).toBe(false);
  });
});

describe("function-log ownership", () => {
  it("leaves out an event whose index row names another namespace's function", async () => {
    const namespace = uniqueName("ns").slice(0, 30);
    const key = await createKey(namespace);
    const instanceId = "victim-ns/secret-fn#0";
    const { requestId, stub } = await seedEvent({
      phase: "running",
      namespace: "victim-ns",
      functionName: "secret-fn",
      instanceId,
    });
    await stub.appendLogs([{ seq: 1, ts: Date.now(), stream: "stdout", line: "victim's secret" }], instanceId);
    await stub.complete(instanceId, { kind: "returned", result: 1 });
    await expect.poll(() => indexedRows("victim-ns", requestId), { timeout: 10_000 }).toBe(1);
    // A forged index row that files the victim's event under the caller's function.
    await env.DB.prepare("UPDATE events SET namespace = ?, function_name = 'report' WHERE request_id = ?")
      .bind(namespace, requestId)
      .run();
    const response = await call(`/v1/namespaces/${namespace}/functions/report/logs`, {}, key);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).not.toContain("victim's secret");
    expect((JSON.parse(text) as { logs: unknown[] }).logs).toEqual([]);
  });
});

describe("live log followers", () => {
  it(`refuses a follower past ${MAX_FOLLOWERS_PER_EVENT} per event with 429, and admits one again once a follower leaves`, async () => {
    const namespace = uniqueName("ns").slice(0, 30);
    const key = await createKey(namespace);
    const { requestId } = await seedEvent({ phase: "running", namespace, instanceId: `${namespace}/report#0` });
    const open: Response[] = [];
    for (let i = 0; i < MAX_FOLLOWERS_PER_EVENT; i += 1) {
      const response = await call(`/v1/events/${requestId}/logs/stream`, {}, key);
      expect(response.status).toBe(200);
      open.push(response);
    }
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const refused = await call(`/v1/events/${requestId}/logs/stream`, {}, key);
    expect(refused.status).toBe(429);
    expect(await errorOf(refused)).toMatchObject({ code: "TOO_MANY_FOLLOWERS" });
    await open.pop()?.body?.cancel();
    let admitted = 0;
    for (let attempt = 0; attempt < 20 && admitted !== 200; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const again = await call(`/v1/events/${requestId}/logs/stream`, {}, key);
      admitted = again.status;
      if (admitted === 200) open.push(again);
      else await again.body?.cancel();
    }
    expect(admitted).toBe(200);
    await Promise.all(open.map((response) => response.body?.cancel()));
  });

  it("follows new lines live after the backlog, then the end", async () => {
    const namespace = uniqueName("ns").slice(0, 30);
    const key = await createKey(namespace);
    const instanceId = `${namespace}/report#0`;
    const { requestId, stub } = await seedEvent({ phase: "running", namespace, instanceId });
    await stub.appendLogs([{ seq: 1, ts: 1, stream: "stdout", line: "before" }], instanceId);
    const response = await call(`/v1/events/${requestId}/logs/stream`, {}, key);
    expect(response.status).toBe(200);
    const reader = response.body?.getReader();
    if (!reader) throw new Error("no body");
    const decoder = new TextDecoder();
    let text = "";
    while (!text.includes("before")) text += decoder.decode((await reader.read()).value);
    await stub.appendLogs([{ seq: 2, ts: 2, stream: "stdout", line: "live" }], instanceId);
    await stub.complete(instanceId, { kind: "returned", result: "done" });
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      text += decoder.decode(chunk.value);
    }
    expect([...text.matchAll(/"line":"([^"]*)"/g)].map((match) => match[1])).toEqual([
      "before",
      "live",
      expect.stringContaining("[PLATFORM] END"),
    ]);
    expect(text).toContain("event: end");
  });

  it("streams a long backlog by pages and then the end", async () => {
    const namespace = uniqueName("ns").slice(0, 30);
    const key = await createKey(namespace);
    const instanceId = `${namespace}/report#0`;
    const { requestId, stub } = await seedEvent({ phase: "running", namespace, instanceId });
    for (let start = 0; start < 3_000; start += 1_000) {
      const records = Array.from({ length: 1_000 }, (_, i) => ({
        seq: start + i + 1,
        ts: 1,
        stream: "stdout" as const,
        line: `line ${start + i + 1}`,
      }));
      await stub.appendLogs(records, instanceId);
    }
    await stub.complete(instanceId, { kind: "returned", result: "done" });
    const response = await call(`/v1/events/${requestId}/logs/stream`, {}, key);
    expect(response.status).toBe(200);
    const text = await response.text();
    const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]));
    // The 3,000 captured lines, then the platform's END line, in order; then the end event.
    expect(ids).toEqual(Array.from({ length: 3_001 }, (_, i) => i + 1));
    expect(text).toMatch(/event: end\ndata: .*"status":"FINISHED"/);
  });
});

describe("read rate limit", () => {
  it("answers 429 with Retry-After once a caller reads logs more than the limit per second", async () => {
    const namespace = uniqueName("ns").slice(0, 30);
    const key = await createKey(namespace);
    const { requestId } = await seedEvent({ phase: "running", namespace, instanceId: `${namespace}/report#0` });
    const responses = await Promise.all(
      Array.from({ length: READ_RATE_PER_SECOND + 10 }, () => call(`/v1/events/${requestId}/logs`, {}, key)),
    );
    const limited = responses.filter((response) => response.status === 429);
    expect(limited.length).toBeGreaterThanOrEqual(5);
    const first = limited[0];
    expect(first?.headers.get("retry-after")).toBe("1");
    expect(await errorOf(first as Response)).toMatchObject({ code: "RATE_LIMITED" });
    const functionLogs = await call(`/v1/namespaces/${namespace}/functions/report/logs`, {}, key);
    expect(functionLogs.status).toBe(429);
    const list = await call(`/v1/namespaces/${namespace}/functions/report/events`, {}, key);
    expect(list.status).toBe(429);
    await Promise.all(responses.filter((response) => !response.bodyUsed).map((response) => response.text()));
  });
});
