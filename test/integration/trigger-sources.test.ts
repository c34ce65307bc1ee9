// The source-driven triggers' runtime paths (issue 12): the function URL (http trigger: API Gateway
// event, auth CAM/NONE, bounds, CORS, Idempotency-Key), the ckafka trigger on a Cloudflare Queue
// (CKafka event, maxMsgNum batching, exactly one event per message however it is redelivered) and
// the cos trigger on R2 event notifications (COS event, event and prefix/suffix filter, one event
// per notification). Trigger rows are stored as the registry stores them, from each type's
// PrepareTrigger; the consumers are called with real message batches.
import { createExecutionContext, createMessageBatch, env, getQueueResult, SELF } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { tc3Signature, utcDate } from "../../worker/auth/tc3";
import { MAX_ASYNC_PAYLOAD_BYTES } from "../../worker/events/invoke";
import worker from "../../worker/index";
import { type RpcResult, unwrap } from "../../worker/shared/errors";
import { eventStub } from "../../worker/shared/objects";
import {
  COS_TRIGGER_EVENTS,
  consumeCosNotifications,
  cosTriggerMatches,
  PLATFORM_BUCKETS,
  parseCosTriggerDesc,
  prepareCosTrigger,
  R2_EVENTS_QUEUE,
  type R2Notification,
} from "../../worker/triggers/cos";
import { httpTriggerUrl, prepareHttpTrigger, REQUEST_ID_HEADER, URL_ID_PATTERN } from "../../worker/triggers/http";
import type { TriggerSetup, TriggerType } from "../../worker/triggers/model";
import {
  batchesOf,
  consumeTriggerQueueBatch,
  MAX_MSG_NUM,
  parseQueueTriggerDesc,
  prepareQueueTrigger,
} from "../../worker/triggers/queue";
import {
  clearTriggerSourceCache,
  MAX_TRIGGERS_PER_SOURCE,
  triggerDeadLetterStats,
} from "../../worker/triggers/source-consumer";
import { zipBase64 } from "../helpers/zip";

const workerEnv = env as Env;
const ORIGIN = "https://platform.test";
const ADMIN = `Bearer ${workerEnv.DEV_SECRET_ID}:${workerEnv.DEV_SECRET_KEY}`;
const ZIP = zipBase64({ "index.js": "exports.main_handler = async (event) => event;" });
/** The trigger queue wrangler.toml declares (TRIGGER_QUEUES). */
const TRIGGER_QUEUE = "afp-trigger-jobs";
/** How long a test waits for the event index to show an event (ms). */
const INDEX_WAIT_MS = 5_000;

function uniqueName(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}

/** A request to the platform, with the administrator's credentials unless `authorization` says otherwise (null: none). */
function call(path: string, init: RequestInit = {}, authorization: string | null = ADMIN): Promise<Response> {
  return SELF.fetch(`${ORIGIN}${path}`, {
    ...init,
    headers: { ...(authorization !== null ? { authorization } : {}), ...(init.headers ?? {}) },
  });
}

async function createFunction(namespace: string, extra: Record<string, unknown> = {}): Promise<string> {
  const name = uniqueName("trg");
  const response = await call(`/v1/namespaces/${namespace}/functions`, {
    method: "POST",
    body: JSON.stringify({ name, runtime: "Nodejs22", code: { zipFile: ZIP }, ...extra }),
  });
  expect(response.status, await response.clone().text()).toBe(201);
  return name;
}

interface StoredTrigger {
  id: string;
  namespace: string;
  functionName: string;
  source: string;
}

/** Stores a trigger row as the registry does: the type's PrepareTrigger decides its desc and source. */
async function storeTrigger(
  namespace: string,
  functionName: string,
  type: TriggerType,
  name: string,
  triggerDesc: string | undefined,
  options: { enabled?: boolean; qualifier?: string; env?: Env } = {},
): Promise<StoredTrigger> {
  const prepare = { http: prepareHttpTrigger, ckafka: prepareQueueTrigger, cos: prepareCosTrigger }[
    type as "http" | "ckafka" | "cos"
  ];
  const setup: TriggerSetup = await prepare(options.env ?? workerEnv, {
    namespace,
    functionName,
    triggerName: name,
    triggerDesc,
  });
  const id = crypto.randomUUID();
  const now = Date.now();
  await workerEnv.DB.prepare(
    `INSERT INTO triggers (id, namespace, function_name, name, type, qualifier, trigger_desc, enabled,
       custom_argument, description, source, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', '', ?, ?, ?)`,
  )
    .bind(
      id,
      namespace,
      functionName,
      name,
      type,
      options.qualifier ?? "$LATEST",
      setup.triggerDesc,
      options.enabled === false ? 0 : 1,
      setup.source,
      now,
      now,
    )
    .run();
  clearTriggerSourceCache();
  return { id, namespace, functionName, source: setup.source ?? "" };
}

async function setEnabled(trigger: StoredTrigger, enabled: boolean): Promise<void> {
  await workerEnv.DB.prepare("UPDATE triggers SET enabled = ? WHERE id = ?")
    .bind(enabled ? 1 : 0, trigger.id)
    .run();
  clearTriggerSourceCache();
}

/** The event's stored payload, parsed. */
async function payloadOf(requestId: string): Promise<Record<string, unknown>> {
  const result = (await eventStub(workerEnv, requestId).payload()) as RpcResult<{ payload: string }>;
  return JSON.parse(unwrap(result).payload) as Record<string, unknown>;
}

async function viewOf(requestId: string): Promise<{ invokeType: string; qualifier: string }> {
  const result = (await eventStub(workerEnv, requestId).view()) as RpcResult<{ invokeType: string; qualifier: string }>;
  return unwrap(result);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** RequestIds of a function's events in the index, once it shows at least `expected`, after a settle. */
async function eventsOf(namespace: string, functionName: string, expected: number): Promise<string[]> {
  const read = async () =>
    (
      await workerEnv.DB.prepare("SELECT request_id FROM events WHERE namespace = ? AND function_name = ?")
        .bind(namespace, functionName)
        .all<{ request_id: string }>()
    ).results.map((row) => row.request_id);
  const deadline = Date.now() + INDEX_WAIT_MS;
  let ids = await read();
  while (ids.length < expected && Date.now() < deadline) {
    await sleep(50);
    ids = await read();
  }
  // Anything more would show by now: a duplicate is accepted as fast as the first.
  await sleep(300);
  return (await read()).sort();
}

beforeEach(() => {
  clearTriggerSourceCache();
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe("http trigger TriggerDesc", () => {
  it("generates a random 128-bit URL id at creation and keeps it on every update", async () => {
    const created = await prepareHttpTrigger(workerEnv, {
      namespace: "default",
      functionName: "f",
      triggerName: "web",
      triggerDesc: undefined,
    });
    expect(created.source).toMatch(URL_ID_PATTERN);
    expect(JSON.parse(created.triggerDesc)).toEqual({ AuthType: "CAM" });
    const other = await prepareHttpTrigger(workerEnv, {
      namespace: "default",
      functionName: "f",
      triggerName: "web2",
      triggerDesc: "",
    });
    expect(other.source).not.toBe(created.source);
    const row = { source: created.source } as Parameters<typeof httpTriggerUrl>[1];
    const updated = await prepareHttpTrigger(workerEnv, {
      namespace: "default",
      functionName: "f",
      triggerName: "web",
      triggerDesc: '{"AuthType":"NONE"}',
      existing: { ...row, type: "http" } as never,
    });
    expect(updated.source).toBe(created.source);
    expect(httpTriggerUrl("https://example.test/v1/x?y=1", row)).toBe(`https://example.test/url/${created.source}`);
  });

  it("accepts SCF's full TriggerDesc and refuses an unknown AuthType, unknown keys and oversized CORS lists", async () => {
    const full =
      '{"AuthType":"NONE","NetConfig":{"EnableIntranet":true,"EnableExtranet":false},"CorsConfig":{"Enable":true,"Origins":["https://app.test"],"Headers":["content-type"],"Methods":["POST"],"ExposeHeaders":["*"],"MaxAge":10,"Credentials":true}}';
    const base = { namespace: "default", functionName: "f", triggerName: "web" };
    expect(JSON.parse((await prepareHttpTrigger(workerEnv, { ...base, triggerDesc: full })).triggerDesc)).toMatchObject(
      {
        AuthType: "NONE",
        CorsConfig: { Enable: true, MaxAge: 10 },
      },
    );
    for (const bad of [
      '{"AuthType":"IAM"}',
      '{"AuthType":"NONE","Extra":1}',
      "not json",
      "[]",
      `{"CorsConfig":{"Enable":true,"Origins":${JSON.stringify(Array.from({ length: 21 }, () => "https://a.test"))}}}`,
    ]) {
      await expect(
        Promise.resolve().then(() => prepareHttpTrigger(workerEnv, { ...base, triggerDesc: bad })),
        bad,
      ).rejects.toMatchObject({ code: "INVALID_PARAMETER" });
    }
  });
});

describe("function URL (http trigger)", () => {
  it("answers 202 with the RequestId in header and body, and the event is API Gateway's shape with invoke type APIGW", async () => {
    const functionName = await createFunction("default");
    const trigger = await storeTrigger("default", functionName, "http", "web", '{"AuthType":"NONE"}');
    const response = await call(
      `/url/${trigger.source}/orders/42?x=1&x=2&y=z`,
      {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Custom": "Yes", "cf-connecting-ip": "203.0.113.9" },
        body: '{"order":42}',
      },
      null,
    );
    expect(response.status, await response.clone().text()).toBe(202);
    const body = (await response.json()) as { requestId: string };
    expect(body.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(response.headers.get(REQUEST_ID_HEADER)).toBe(body.requestId);

    const event = await payloadOf(body.requestId);
    expect(event).toMatchObject({
      httpMethod: "POST",
      path: "/orders/42",
      body: '{"order":42}',
      isBase64Encoded: false,
      queryString: { x: ["1", "2"], y: "z" },
      queryStringParameters: { x: ["1", "2"], y: "z" },
      pathParameters: {},
      headerParameters: {},
      stageVariables: { stage: "release" },
      requestContext: {
        serviceId: "web",
        path: "/orders/42",
        httpMethod: "POST",
        identity: {},
        sourceIp: "203.0.113.9",
        stage: "release",
      },
    });
    const headers = event.headers as Record<string, string>;
    expect(headers["content-type"]).toBe("application/json");
    expect(headers["x-custom"]).toBe("Yes");
    expect(Object.keys(headers).every((name) => name === name.toLowerCase())).toBe(true);
    expect(headers["cf-connecting-ip"]).toBeUndefined();
    expect((event.requestContext as { requestId: string }).requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await viewOf(body.requestId)).toMatchObject({ invokeType: "APIGW" });
  });

  it('gives the root path "/" and any method', async () => {
    const functionName = await createFunction("default");
    const trigger = await storeTrigger("default", functionName, "http", "web", '{"AuthType":"NONE"}');
    for (const method of ["GET", "DELETE", "PATCH", "PUT"]) {
      const response = await call(`/url/${trigger.source}`, { method }, null);
      expect(response.status, method).toBe(202);
      const { requestId } = (await response.json()) as { requestId: string };
      expect(await payloadOf(requestId), method).toMatchObject({ httpMethod: method, path: "/", body: "" });
    }
  });

  it("carries a body that is not UTF-8 as base64 with isBase64Encoded", async () => {
    const functionName = await createFunction("default");
    const trigger = await storeTrigger("default", functionName, "http", "web", '{"AuthType":"NONE"}');
    const bytes = new Uint8Array([0xff, 0xfe, 0x00, 0x80, 0x41]);
    const response = await call(`/url/${trigger.source}/upload`, { method: "POST", body: bytes }, null);
    expect(response.status).toBe(202);
    const { requestId } = (await response.json()) as { requestId: string };
    const event = await payloadOf(requestId);
    expect(event.isBase64Encoded).toBe(true);
    expect(event.body).toBe(btoa(String.fromCharCode(...bytes)));
  });

  it("under CAM refuses a request without credentials (401) and a key of another namespace as an unknown URL (404)", async () => {
    const functionName = await createFunction("default");
    const trigger = await storeTrigger("default", functionName, "http", "web", undefined);
    const anonymous = await call(`/url/${trigger.source}`, { method: "POST", body: "{}" }, null);
    expect(anonymous.status, await anonymous.clone().text()).toBe(401);
    expect(((await anonymous.json()) as { error: { code: string } }).error.code).toBe("UNAUTHORIZED");
    const wrongKey = await call(`/url/${trigger.source}`, { method: "POST", body: "{}" }, `${ADMIN}x`);
    expect(wrongKey.status).toBe(401);

    const created = await call("/v1/admin/credentials", {
      method: "POST",
      body: JSON.stringify({ namespaces: ["trigger-other"], description: "trigger-sources" }),
    });
    const other = (await created.json()) as { secretId: string; secretKey: string };
    const foreign = await call(
      `/url/${trigger.source}`,
      { method: "POST", body: "{}" },
      `Bearer ${other.secretId}:${other.secretKey}`,
    );
    const unknown = await call(
      `/url/${"0".repeat(32)}`,
      { method: "POST", body: "{}" },
      `Bearer ${other.secretId}:${other.secretKey}`,
    );
    expect(foreign.status).toBe(404);
    expect(unknown.status).toBe(404);
    const foreignError = ((await foreign.json()) as { error: { code: string; message: string } }).error;
    const unknownError = ((await unknown.json()) as { error: { code: string; message: string } }).error;
    expect(foreignError).toMatchObject({ code: unknownError.code, message: unknownError.message });
    expect(await eventsOf("default", functionName, 0)).toEqual([]);
  });

  it("under CAM accepts the platform's credentials, names the SecretId and never puts Authorization in the event", async () => {
    const functionName = await createFunction("default");
    const trigger = await storeTrigger("default", functionName, "http", "web", '{"AuthType":"CAM"}');
    const response = await call(`/url/${trigger.source}/x`, { method: "POST", body: "{}" });
    expect(response.status).toBe(202);
    const { requestId } = (await response.json()) as { requestId: string };
    const event = await payloadOf(requestId);
    expect((event.headers as Record<string, string>).authorization).toBeUndefined();
    expect(JSON.stringify(event)).not.toContain(workerEnv.DEV_SECRET_KEY as string);
    expect((event.requestContext as { identity: unknown }).identity).toEqual({ secretId: workerEnv.DEV_SECRET_ID });
  });

  it("answers 404 alike for an unknown, malformed, disabled or deleted URL id, and creates no event", async () => {
    const functionName = await createFunction("default");
    const trigger = await storeTrigger("default", functionName, "http", "web", '{"AuthType":"NONE"}');
    const answers: { code: string; message: string }[] = [];
    const probe = async (id: string) => {
      const response = await call(`/url/${id}/a`, { method: "POST", body: "{}" }, null);
      expect(response.status, id).toBe(404);
      const { error } = (await response.json()) as { error: { code: string; message: string } };
      answers.push({ code: error.code, message: error.message });
    };
    await probe("f".repeat(32));
    await probe("not-an-id");
    await setEnabled(trigger, false);
    await probe(trigger.source);
    await workerEnv.DB.prepare("DELETE FROM triggers WHERE id = ?").bind(trigger.id).run();
    clearTriggerSourceCache();
    await probe(trigger.source);
    expect(new Set(answers.map((answer) => JSON.stringify(answer))).size).toBe(1);
    expect(await eventsOf("default", functionName, 0)).toEqual([]);
  });

  it("refuses a body over the Invoke limit with 413, declared or streamed, and an event over it with 413", async () => {
    const functionName = await createFunction("default");
    const trigger = await storeTrigger("default", functionName, "http", "web", '{"AuthType":"NONE"}');
    const declared = await call(
      `/url/${trigger.source}`,
      { method: "POST", body: "x".repeat(MAX_ASYNC_PAYLOAD_BYTES + 1) },
      null,
    );
    expect(declared.status).toBe(413);
    expect(((await declared.json()) as { error: { code: string } }).error.code).toBe("PAYLOAD_TOO_LARGE");

    const chunk = new TextEncoder().encode("y".repeat(16 * 1024));
    const streamed = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 10; i += 1) controller.enqueue(chunk);
        controller.close();
      },
    });
    const chunked = await call(`/url/${trigger.source}`, { method: "POST", body: streamed }, null);
    expect(chunked.status).toBe(413);

    // Within the body limit, but the event (escaped quotes, headers) is over it.
    const quoted = await call(
      `/url/${trigger.source}`,
      { method: "POST", body: '"'.repeat(MAX_ASYNC_PAYLOAD_BYTES - 100) },
      null,
    );
    expect(quoted.status).toBe(413);
    expect(((await quoted.json()) as { error: { message: string } }).error.message).toContain("API Gateway event");
    expect(await eventsOf("default", functionName, 0)).toEqual([]);
  });

  it("passes an Idempotency-Key through: the same request sent twice creates one event", async () => {
    const functionName = await createFunction("default");
    const trigger = await storeTrigger("default", functionName, "http", "web", '{"AuthType":"NONE"}');
    const send = () =>
      call(
        `/url/${trigger.source}/pay`,
        { method: "POST", headers: { "Idempotency-Key": "order-77" }, body: '{"amount":5}' },
        null,
      );
    const first = await send();
    expect(first.status).toBe(202);
    const second = await send();
    expect(second.status).toBe(200);
    expect(second.headers.get("idempotent-replayed")).toBe("true");
    const firstId = ((await first.json()) as { requestId: string }).requestId;
    expect(((await second.json()) as { requestId: string }).requestId).toBe(firstId);
    expect(await eventsOf("default", functionName, 1)).toEqual([firstId]);
    const bad = await call(
      `/url/${trigger.source}/pay`,
      { method: "POST", headers: { "Idempotency-Key": "bad key!" }, body: "{}" },
      null,
    );
    expect(bad.status).toBe(400);
  });

  it("answers a CORS preflight 204 with the configured headers and no event, and adds the origin to the 202", async () => {
    const functionName = await createFunction("default");
    const trigger = await storeTrigger(
      "default",
      functionName,
      "http",
      "web",
      '{"AuthType":"NONE","CorsConfig":{"Enable":true,"Origins":["https://app.test"],"Methods":["POST"],"Headers":["content-type"],"MaxAge":10}}',
    );
    const preflight = await call(
      `/url/${trigger.source}`,
      { method: "OPTIONS", headers: { Origin: "https://app.test", "Access-Control-Request-Method": "POST" } },
      null,
    );
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("https://app.test");
    expect(preflight.headers.get("access-control-allow-methods")).toBe("POST");
    expect(preflight.headers.get("access-control-max-age")).toBe("10");
    const posted = await call(
      `/url/${trigger.source}`,
      { method: "POST", headers: { Origin: "https://app.test" }, body: "{}" },
      null,
    );
    expect(posted.status).toBe(202);
    expect(posted.headers.get("access-control-allow-origin")).toBe("https://app.test");
    expect(posted.headers.get("access-control-expose-headers")).toContain(REQUEST_ID_HEADER);
    const stranger = await call(
      `/url/${trigger.source}`,
      { method: "POST", headers: { Origin: "https://evil.test" }, body: "{}" },
      null,
    );
    expect(stranger.headers.get("access-control-allow-origin")).toBeNull();
    expect((await eventsOf("default", functionName, 2)).length).toBe(2);
  });

  it("answers 202 with the RequestId for a function whose async execution is off, too", async () => {
    const functionName = await createFunction("default", { asyncRunEnable: false });
    const trigger = await storeTrigger("default", functionName, "http", "web", '{"AuthType":"NONE"}');
    const response = await call(`/url/${trigger.source}`, { method: "POST", body: "{}" }, null);
    expect(response.status, await response.clone().text()).toBe(202);
    const { requestId } = (await response.json()) as { requestId: string };
    expect(await viewOf(requestId)).toMatchObject({ invokeType: "APIGW" });
  });

  it("applies the function's QPS limit (429 with Retry-After)", async () => {
    const functionName = await createFunction("default", { qpsLimit: 1 });
    const trigger = await storeTrigger("default", functionName, "http", "web", '{"AuthType":"NONE"}');
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 6; i += 1) {
      const response = await call(`/url/${trigger.source}`, { method: "POST", body: "{}" }, null);
      statuses.push(response.status);
      if (response.status === 429) retryAfter = response.headers.get("retry-after");
    }
    expect(statuses).toContain(429);
    expect(retryAfter).not.toBeNull();
  });
});

/** A queue message as a batch gives it. */
function queueMessage(id: string, body: unknown, attempts = 1) {
  return { id, timestamp: new Date(1_700_000_000_000), attempts, body };
}

async function consumeQueue(queue: string, messages: ReturnType<typeof queueMessage>[], consumerEnv: Env = workerEnv) {
  const batch = createMessageBatch<unknown>(
    queue,
    messages.map((message) => ({ ...message, timestamp: message.timestamp })),
  );
  await consumeTriggerQueueBatch(batch, consumerEnv);
  return getQueueResult(batch, createExecutionContext());
}

/** The msgKeys (message ids) of each event's Records, sorted. */
async function recordsOf(requestIds: string[]): Promise<string[][]> {
  const groups = await Promise.all(
    requestIds.map(async (id) => {
      const event = (await payloadOf(id)) as { Records: { Ckafka: { msgKey: string } }[] };
      return event.Records.map((record) => record.Ckafka.msgKey);
    }),
  );
  return groups.map((keys) => keys.sort()).sort((a, b) => (a[0] ?? "").localeCompare(b[0] ?? ""));
}

describe("ckafka trigger TriggerDesc", () => {
  it("names a queue of TRIGGER_QUEUES and takes maxMsgNum 1-100 as a number or SCF's string", async () => {
    const base = { namespace: "default", functionName: "f", triggerName: TRIGGER_QUEUE };
    expect(await prepareQueueTrigger(workerEnv, { ...base, triggerDesc: undefined })).toEqual({
      triggerDesc: '{"maxMsgNum":1}',
      source: TRIGGER_QUEUE,
    });
    expect(
      (
        await prepareQueueTrigger(workerEnv, {
          ...base,
          triggerDesc: '{"maxMsgNum":"10","offset":"latest","retry":10000}',
        })
      ).triggerDesc,
    ).toBe('{"maxMsgNum":10}');
    for (const bad of ['{"maxMsgNum":0}', `{"maxMsgNum":${MAX_MSG_NUM + 1}}`, '{"maxMsgNum":"ten"}', '{"x":1}', "{"]) {
      await expect(
        Promise.resolve().then(() => prepareQueueTrigger(workerEnv, { ...base, triggerDesc: bad })),
        bad,
      ).rejects.toMatchObject({ code: "INVALID_PARAMETER" });
    }
    await expect(
      Promise.resolve().then(() =>
        prepareQueueTrigger(workerEnv, { ...base, triggerName: "afp-dispatch", triggerDesc: "" }),
      ),
    ).rejects.toMatchObject({ code: "INVALID_PARAMETER" });
  });

  it("splits a batch into runs of maxMsgNum, and a run before the event passes the payload limit", () => {
    const small = Array.from({ length: 7 }, (_, index) => queueMessage(`m${index}`, "x"));
    expect(batchesOf(TRIGGER_QUEUE, small, 3).map((run) => run.length)).toEqual([3, 3, 1]);
    const large = Array.from({ length: 3 }, (_, index) => queueMessage(`l${index}`, "y".repeat(50 * 1024)));
    expect(batchesOf(TRIGGER_QUEUE, large, 10).map((run) => run.length)).toEqual([2, 1]);
    expect(parseQueueTriggerDesc(undefined)).toEqual({ maxMsgNum: 1 });
  });
});

describe("ckafka trigger (Cloudflare Queue)", () => {
  it("makes one event per message in the CKafka shape, invoke type CKAFKA_TRIGGER, and none more on redelivery", async () => {
    const functionName = await createFunction("default");
    await storeTrigger("default", functionName, "ckafka", TRIGGER_QUEUE, undefined);
    const ids = [uniqueName("msg"), uniqueName("msg")];
    const first = await consumeQueue(TRIGGER_QUEUE, [
      queueMessage(ids[0] as string, "hello"),
      queueMessage(ids[1] as string, { order: 7 }),
    ]);
    expect(first.explicitAcks.sort()).toEqual([...ids].sort());
    const events = await eventsOf("default", functionName, 2);
    expect(events).toHaveLength(2);

    const payloads = await Promise.all(events.map(payloadOf));
    const records = payloads.map((payload) => (payload as { Records: { Ckafka: Record<string, unknown> }[] }).Records);
    expect(records.every((list) => list.length === 1)).toBe(true);
    const byKey = Object.fromEntries(records.map((list) => [list[0]?.Ckafka.msgKey, list[0]?.Ckafka]));
    expect(byKey[ids[0] as string]).toEqual({
      topic: TRIGGER_QUEUE,
      partition: 0,
      offset: 1_700_000_000_000,
      msgKey: ids[0],
      msgBody: "hello",
    });
    expect(byKey[ids[1] as string]?.msgBody).toBe('{"order":7}');
    expect((await viewOf(events[0] as string)).invokeType).toBe("CKAFKA_TRIGGER");

    // Redelivered (as a queue may, at least once): acknowledged, no second event.
    const again = await consumeQueue(TRIGGER_QUEUE, [
      queueMessage(ids[1] as string, { order: 7 }, 2),
      queueMessage(ids[0] as string, "hello", 2),
    ]);
    expect(again.explicitAcks.sort()).toEqual([...ids].sort());
    expect(again.retryMessages).toEqual([]);
    expect(await eventsOf("default", functionName, 2)).toEqual(events);
  });

  it("with maxMsgNum batches messages, and a redelivered message regrouped with new ones is never carried twice", async () => {
    const functionName = await createFunction("default");
    await storeTrigger("default", functionName, "ckafka", TRIGGER_QUEUE, '{"maxMsgNum":3}');
    const ids = Array.from({ length: 5 }, () => uniqueName("b"));
    const first = await consumeQueue(
      TRIGGER_QUEUE,
      ids.map((id) => queueMessage(id, id)),
    );
    expect(first.explicitAcks.sort()).toEqual([...ids].sort());
    const events = await eventsOf("default", functionName, 2);
    expect(events).toHaveLength(2);
    expect((await recordsOf(events)).flat().sort()).toEqual([...ids].sort());

    // Two of them come again, in a batch with a new message: only the new one makes an event.
    const fresh = uniqueName("b");
    const regrouped = await consumeQueue(TRIGGER_QUEUE, [
      queueMessage(ids[3] as string, ids[3], 2),
      queueMessage(fresh, fresh),
      queueMessage(ids[1] as string, ids[1], 2),
    ]);
    expect(regrouped.explicitAcks.sort()).toEqual([ids[3], fresh, ids[1]].sort());
    const after = await eventsOf("default", functionName, 3);
    expect(after).toHaveLength(3);
    const newEvent = after.filter((id) => !events.includes(id));
    expect(await recordsOf(newEvent)).toEqual([[fresh]]);
  });

  it("makes one event per enabled trigger of the queue, and none for a disabled one", async () => {
    const one = await createFunction("default");
    const two = await createFunction("default");
    const off = await createFunction("default");
    await storeTrigger("default", one, "ckafka", TRIGGER_QUEUE, undefined);
    await storeTrigger("default", two, "ckafka", TRIGGER_QUEUE, '{"maxMsgNum":5}');
    await storeTrigger("default", off, "ckafka", TRIGGER_QUEUE, undefined, { enabled: false });
    const id = uniqueName("fan");
    const result = await consumeQueue(TRIGGER_QUEUE, [queueMessage(id, "fan-out")]);
    expect(result.explicitAcks).toEqual([id]);
    expect(await eventsOf("default", one, 1)).toHaveLength(1);
    expect(await eventsOf("default", two, 1)).toHaveLength(1);
    expect(await eventsOf("default", off, 0)).toEqual([]);
  });

  it("acknowledges a message no enabled trigger is on, and drops (acknowledged, logged) one whose function is gone", async () => {
    const warnings = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    await workerEnv.DB.prepare("UPDATE triggers SET enabled = 0 WHERE type = 'ckafka'").run();
    clearTriggerSourceCache();
    const lonely = uniqueName("none");
    const none = await consumeQueue(TRIGGER_QUEUE, [queueMessage(lonely, "x")]);
    expect(none.explicitAcks).toEqual([lonely]);
    expect(warnings.mock.calls.flat().join(" ")).toContain("no enabled ckafka trigger");

    const trigger = await storeTrigger("default", "fn-that-does-not-exist", "ckafka", TRIGGER_QUEUE, undefined);
    const gone = uniqueName("gone");
    const dropped = await consumeQueue(TRIGGER_QUEUE, [queueMessage(gone, "x")]);
    expect(dropped.explicitAcks).toEqual([gone]);
    expect(dropped.retryMessages).toEqual([]);
    expect(errors.mock.calls.flat().join(" ")).toContain(gone);
    await setEnabled(trigger, false);
  });

  it("retries a message whose event is refused for a while (QPS limit), and the retry makes its one event", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const functionName = await createFunction("default", { qpsLimit: 1 });
    await workerEnv.DB.prepare("UPDATE triggers SET enabled = 0 WHERE type = 'ckafka'").run();
    await storeTrigger("default", functionName, "ckafka", TRIGGER_QUEUE, undefined);
    const ids = Array.from({ length: 4 }, () => uniqueName("qps"));
    const first = await consumeQueue(
      TRIGGER_QUEUE,
      ids.map((id) => queueMessage(id, id)),
    );
    expect(first.retryMessages.length).toBeGreaterThan(0);
    const accepted = first.explicitAcks.length;
    expect(await eventsOf("default", functionName, accepted)).toHaveLength(accepted);
    // Redelivered after the limit's second: every message ends with exactly one event.
    await sleep(1_100);
    const retried = first.retryMessages.map((retry) => queueMessage(retry.msgId, retry.msgId, 2));
    let pending = retried;
    for (let round = 0; round < 5 && pending.length > 0; round += 1) {
      const result = await consumeQueue(TRIGGER_QUEUE, pending);
      pending = pending.filter((message) => !result.explicitAcks.includes(message.id));
      if (pending.length > 0) await sleep(1_100);
    }
    expect(pending).toEqual([]);
    const events = await eventsOf("default", functionName, ids.length);
    expect(events).toHaveLength(ids.length);
    await workerEnv.DB.prepare("UPDATE triggers SET enabled = 0 WHERE type = 'ckafka'").run();
  });

  it("under CHAOS_REDELIVER_TRIGGER_MESSAGES (with diagnostics on) retries each first delivery after handling it", async () => {
    const functionName = await createFunction("default");
    await workerEnv.DB.prepare("UPDATE triggers SET enabled = 0 WHERE type = 'ckafka'").run();
    await storeTrigger("default", functionName, "ckafka", TRIGGER_QUEUE, undefined);
    const id = uniqueName("chaos");
    const chaosEnv = { ...workerEnv, DIAGNOSTICS_ENABLED: "true", CHAOS_REDELIVER_TRIGGER_MESSAGES: "true" };
    const first = await consumeQueue(TRIGGER_QUEUE, [queueMessage(id, "c")], chaosEnv);
    expect(first.retryMessages.map((retry) => retry.msgId)).toEqual([id]);
    const second = await consumeQueue(TRIGGER_QUEUE, [queueMessage(id, "c", 2)], chaosEnv);
    expect(second.explicitAcks).toEqual([id]);
    expect(await eventsOf("default", functionName, 1)).toHaveLength(1);
    // Without diagnostics the switch does nothing.
    const off = await consumeQueue(TRIGGER_QUEUE, [queueMessage(uniqueName("chaos"), "c")], {
      ...workerEnv,
      DIAGNOSTICS_ENABLED: "false",
      CHAOS_REDELIVER_TRIGGER_MESSAGES: "true",
    });
    expect(off.retryMessages).toEqual([]);
    await workerEnv.DB.prepare("UPDATE triggers SET enabled = 0 WHERE type = 'ckafka'").run();
  });
});

/** An R2 notification of the bucket. */
function notification(bucket: string, key: string, action: R2Notification["action"] = "PutObject"): R2Notification {
  return {
    account: "acct123",
    action,
    bucket,
    object: { key, size: 11, eTag: "etag-1" },
    eventTime: "2026-11-26T07:00:00.123Z",
  };
}

/** The Worker's environment with COS_TRIGGER_BUCKETS giving `buckets` to namespace default. */
function bucketsEnv(...buckets: string[]): Env {
  return { ...workerEnv, COS_TRIGGER_BUCKETS: buckets.map((bucket) => `${bucket}=default`).join(",") };
}

async function consumeNotifications(bodies: unknown[], attempts = 1, consumerEnv: Env = workerEnv) {
  const batch = createMessageBatch<unknown>(
    R2_EVENTS_QUEUE,
    bodies.map((body, index) => ({ id: `n${index}-${crypto.randomUUID()}`, timestamp: new Date(), attempts, body })),
  );
  await consumeCosNotifications(batch, consumerEnv);
  return getQueueResult(batch, createExecutionContext());
}

describe("cos trigger (R2 event notifications)", () => {
  it("validates TriggerName as a bucket and TriggerDesc's event and filter", async () => {
    const base = { namespace: "default", functionName: "f", triggerName: "my-bucket" };
    const bucketEnv = bucketsEnv("my-bucket");
    expect(await prepareCosTrigger(bucketEnv, { ...base, triggerDesc: '{"event":"cos:ObjectCreated:*"}' })).toEqual({
      triggerDesc: '{"event":"cos:ObjectCreated:*","filter":{"Prefix":"","Suffix":""}}',
      source: "my-bucket",
    });
    for (const bad of [
      undefined,
      '{"event":"cos:ObjectCreated:Origin"}',
      '{"event":"cos:ObjectCreated:*","filter":{"Prefix":1}}',
      `{"event":"cos:ObjectCreated:*","filter":{"Suffix":"${"s".repeat(1025)}"}}`,
      '{"event":"cos:ObjectCreated:*","x":1}',
    ]) {
      await expect(
        Promise.resolve().then(() => prepareCosTrigger(bucketEnv, { ...base, triggerDesc: bad })),
        String(bad),
      ).rejects.toMatchObject({ code: "INVALID_PARAMETER" });
    }
    await expect(
      Promise.resolve().then(() =>
        prepareCosTrigger(bucketEnv, {
          ...base,
          triggerName: "Bad_Bucket",
          triggerDesc: '{"event":"cos:ObjectCreated:*"}',
        }),
      ),
    ).rejects.toMatchObject({ code: "INVALID_PARAMETER" });
  });

  it("matches R2 actions to SCF event names, and the prefix and suffix filter", () => {
    const desc = (event: string, Prefix = "", Suffix = "") =>
      parseCosTriggerDesc(JSON.stringify({ event, filter: { Prefix, Suffix } }));
    const put = notification("b", "photos/cat.jpg");
    expect(cosTriggerMatches(desc("cos:ObjectCreated:*"), put)).toBe(true);
    expect(cosTriggerMatches(desc("cos:ObjectCreated:Put"), put)).toBe(true);
    expect(cosTriggerMatches(desc("cos:ObjectCreated:Copy"), put)).toBe(false);
    expect(cosTriggerMatches(desc("cos:ObjectRemove:*"), put)).toBe(false);
    expect(cosTriggerMatches(desc("cos:ObjectRemove:*"), notification("b", "k", "LifecycleDeletion"))).toBe(true);
    expect(cosTriggerMatches(desc("cos:ObjectCreated:*"), notification("b", "k", "CompleteMultipartUpload"))).toBe(
      true,
    );
    expect(cosTriggerMatches(desc("cos:ObjectCreated:*", "photos/", ".jpg"), put)).toBe(true);
    expect(cosTriggerMatches(desc("cos:ObjectCreated:*", "videos/"), put)).toBe(false);
    expect(cosTriggerMatches(desc("cos:ObjectCreated:*", "", ".png"), put)).toBe(false);
    expect(COS_TRIGGER_EVENTS.length).toBeGreaterThan(0);
  });

  it("makes one event in the COS shape, invoke type COS, for a matching upload, and none for a redelivery", async () => {
    const functionName = await createFunction("default");
    const bucket = `bkt-${crypto.randomUUID().slice(0, 8)}`;
    const trigger = await storeTrigger(
      "default",
      functionName,
      "cos",
      bucket,
      '{"event":"cos:ObjectCreated:*","filter":{"Prefix":"in/","Suffix":".txt"}}',
      { env: bucketsEnv(bucket) },
    );
    const body = notification(bucket, "in/report.txt");
    const first = await consumeNotifications(
      [body, notification(bucket, "out/other.txt"), notification(bucket, "in/x.png")],
      1,
      bucketsEnv(bucket),
    );
    expect(first.explicitAcks).toHaveLength(3);
    const events = await eventsOf("default", functionName, 1);
    expect(events).toHaveLength(1);
    const event = await payloadOf(events[0] as string);
    expect(event).toMatchObject({
      Records: [
        {
          cos: {
            cosSchemaVersion: "1.0",
            cosObject: {
              url: `https://acct123.r2.cloudflarestorage.com/${bucket}/in/report.txt`,
              vid: "",
              key: `/acct123/${bucket}/in/report.txt`,
              size: 11,
            },
            cosBucket: { region: "auto", name: bucket, appid: "acct123" },
            cosNotificationId: trigger.id,
          },
          event: {
            eventName: "cos:ObjectCreated:Put",
            eventVersion: "1.0",
            eventTime: Math.floor(Date.parse("2026-11-26T07:00:00.123Z") / 1000),
            eventSource: "qcs::cos",
            eventQueue: `qcs:0:scf:auto:appid/acct123:default.${functionName}.$LATEST`,
            reservedInfo: "",
          },
        },
      ],
    });
    expect(typeof (event as { Records: { event: { reqid: unknown } }[] }).Records[0]?.event.reqid).toBe("number");
    expect((await viewOf(events[0] as string)).invokeType).toBe("COS");

    // The same notification again (another message id, as a redelivery may have): no second event.
    const again = await consumeNotifications([body], 2, bucketsEnv(bucket));
    expect(again.explicitAcks).toHaveLength(1);
    expect(await eventsOf("default", functionName, 1)).toEqual(events);
    // A new upload of the same key (another eTag and time) is a new event.
    await consumeNotifications(
      [{ ...body, object: { ...body.object, eTag: "etag-2" }, eventTime: new Date().toISOString() }],
      1,
      bucketsEnv(bucket),
    );
    expect(await eventsOf("default", functionName, 2)).toHaveLength(2);
  });

  it("acknowledges a malformed notification with an error, and one of a bucket without triggers", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const result = await consumeNotifications([{ action: "PutObject" }, "text", notification("no-such-bucket-x", "k")]);
    expect(result.explicitAcks).toHaveLength(3);
    expect(result.retryMessages).toEqual([]);
    expect(errors.mock.calls.flat().join(" ")).toContain("malformed");
  });
});

/** The Worker's environment with TRIGGER_QUEUES set to `value`. */
function queuesEnv(value: string): Env {
  return { ...workerEnv, TRIGGER_QUEUES: value };
}

/** The error a prepare call refused with. */
async function refusal(run: () => unknown): Promise<{ code: string; message: string }> {
  try {
    await run();
  } catch (error) {
    return error as { code: string; message: string };
  }
  throw new Error("not refused");
}

describe("trigger sources are owned by namespaces (TRIGGER_QUEUES, COS_TRIGGER_BUCKETS)", () => {
  it("refuses a ckafka trigger on a queue its namespace does not own exactly as on an unknown queue", async () => {
    const queues = queuesEnv("afp-trigger-jobs=default,team-queue=team-b|team-c,open-queue=*,bare-queue");
    const input = (namespace: string, triggerName: string) => ({
      namespace,
      functionName: "f",
      triggerName,
      triggerDesc: undefined,
    });
    const foreign = await refusal(() => prepareQueueTrigger(queues, input("team-a", "afp-trigger-jobs")));
    const unknown = await refusal(() => prepareQueueTrigger(queues, input("team-a", "no-such-queue")));
    expect(foreign.code).toBe("INVALID_PARAMETER");
    expect(foreign).toMatchObject({ code: unknown.code, message: unknown.message });
    expect(foreign.message).not.toContain("team-queue");
    expect(foreign.message).not.toContain("afp-trigger-jobs");
    // A bare `<queue>` belongs to nobody; `*` is the explicit opt-in of every namespace.
    expect((await refusal(() => prepareQueueTrigger(queues, input("default", "bare-queue")))).code).toBe(
      "INVALID_PARAMETER",
    );
    expect((await prepareQueueTrigger(queues, input("team-c", "team-queue"))).source).toBe("team-queue");
    expect((await prepareQueueTrigger(queues, input("team-a", "open-queue"))).source).toBe("open-queue");
    expect((await prepareQueueTrigger(workerEnv, input("default", TRIGGER_QUEUE))).source).toBe(TRIGGER_QUEUE);
  });

  it("delivers a queue's messages only to triggers of its owning namespaces, even one created before the queue changed hands", async () => {
    const owned = await createFunction("default");
    const stranger = await createFunction("trg-stranger");
    await storeTrigger("default", owned, "ckafka", TRIGGER_QUEUE, undefined);
    // Created while TRIGGER_QUEUES still gave the queue to trg-stranger too.
    await storeTrigger("trg-stranger", stranger, "ckafka", TRIGGER_QUEUE, undefined, {
      env: queuesEnv(`${TRIGGER_QUEUE}=default|trg-stranger`),
    });
    const result = await consumeQueue(TRIGGER_QUEUE, [queueMessage(uniqueName("own"), "secret")]);
    expect(result.explicitAcks).toHaveLength(1);
    expect(await eventsOf("default", owned, 1)).toHaveLength(1);
    expect(await eventsOf("trg-stranger", stranger, 0)).toEqual([]);
  });

  it("refuses a cos trigger on the platform's buckets always, and on a bucket its namespace does not own as on an unlisted one", async () => {
    const everything = {
      ...workerEnv,
      COS_TRIGGER_BUCKETS: `${PLATFORM_BUCKETS.map((b) => `${b}=*`).join(",")},mine=default`,
    };
    const input = (namespace: string, triggerName: string) => ({
      namespace,
      functionName: "f",
      triggerName,
      triggerDesc: '{"event":"cos:ObjectCreated:*"}',
    });
    expect(PLATFORM_BUCKETS).toEqual(expect.arrayContaining(["afp-code", "afp-logs"]));
    for (const bucket of PLATFORM_BUCKETS) {
      expect((await refusal(() => prepareCosTrigger(everything, input("default", bucket)))).code, bucket).toBe(
        "INVALID_PARAMETER",
      );
    }
    const foreign = await refusal(() => prepareCosTrigger(everything, input("team-a", "mine")));
    const unlisted = await refusal(() => prepareCosTrigger(everything, input("team-a", "not-listed")));
    expect(foreign).toMatchObject({ code: "INVALID_PARAMETER", message: unlisted.message });
    expect((await prepareCosTrigger(everything, input("default", "mine"))).source).toBe("mine");
    expect((await prepareCosTrigger(workerEnv, input("default", "afp-uploads"))).source).toBe("afp-uploads");
  });

  it("delivers a bucket's notifications only to triggers of its owning namespaces, and a platform bucket's to none", async () => {
    const bucket = `own-${crypto.randomUUID().slice(0, 8)}`;
    const owned = await createFunction("default");
    const stranger = await createFunction("trg-stranger");
    const desc = '{"event":"cos:ObjectCreated:*"}';
    await storeTrigger("default", owned, "cos", bucket, desc, { env: bucketsEnv(bucket) });
    await storeTrigger("trg-stranger", stranger, "cos", bucket, desc, {
      env: { ...workerEnv, COS_TRIGGER_BUCKETS: `${bucket}=trg-stranger` },
    });
    // A row on a platform bucket (e.g. written before the refusal existed) never fires.
    await workerEnv.DB.prepare(
      `INSERT INTO triggers (id, namespace, function_name, name, type, qualifier, trigger_desc, enabled,
         custom_argument, description, source, created_at, updated_at)
       VALUES (?, 'default', ?, 'afp-code', 'cos', '$LATEST', ?, 1, '', '', 'afp-code', 1, 1)`,
    )
      .bind(
        crypto.randomUUID(),
        owned,
        JSON.stringify({ event: "cos:ObjectCreated:*", filter: { Prefix: "", Suffix: "" } }),
      )
      .run();
    const allOpen = { ...workerEnv, COS_TRIGGER_BUCKETS: `${bucket}=default,afp-code=*` };
    const result = await consumeNotifications(
      [notification(bucket, "a.txt"), notification("afp-code", "packages/x.zip")],
      1,
      allOpen,
    );
    expect(result.explicitAcks).toHaveLength(2);
    expect(await eventsOf("default", owned, 1)).toHaveLength(1);
    expect(await eventsOf("trg-stranger", stranger, 0)).toEqual([]);
  });

  it("refuses the trigger past MAX_TRIGGERS_PER_SOURCE on one source with TRIGGER_LIMIT_EXCEEDED naming the bound", async () => {
    const queue = `cap-${crypto.randomUUID().slice(0, 8)}`;
    const capEnv = queuesEnv(`${queue}=default|trg-cap`);
    const statements = Array.from({ length: MAX_TRIGGERS_PER_SOURCE }, (_, index) =>
      workerEnv.DB.prepare(
        `INSERT INTO triggers (id, namespace, function_name, name, type, qualifier, trigger_desc, enabled,
           custom_argument, description, source, created_at, updated_at)
         VALUES (?, ?, ?, ?, 'ckafka', '$LATEST', '{"maxMsgNum":1}', ?, '', '', ?, 1, 1)`,
      ).bind(crypto.randomUUID(), index % 2 ? "default" : "trg-cap", `f${index}`, queue, index % 3 ? 1 : 0, queue),
    );
    await workerEnv.DB.batch(statements);
    const input = { namespace: "default", functionName: "g", triggerName: queue, triggerDesc: undefined };
    const refused = await refusal(() => prepareQueueTrigger(capEnv, input));
    expect(refused.code).toBe("TRIGGER_LIMIT_EXCEEDED");
    expect(refused.message).toContain(String(MAX_TRIGGERS_PER_SOURCE));
    expect(refused.message).toContain(queue);
    // Updating one of the hundred is no new trigger on the source.
    const existing = await workerEnv.DB.prepare("SELECT * FROM triggers WHERE source = ? LIMIT 1").bind(queue).first();
    const updated = await prepareQueueTrigger(capEnv, {
      ...input,
      triggerDesc: '{"maxMsgNum":2}',
      existing: { id: (existing as { id: string }).id } as never,
    });
    expect(updated.triggerDesc).toBe('{"maxMsgNum":2}');
  });

  it("answers CreateTrigger past the bound 409 TRIGGER_LIMIT_EXCEEDED, disabled triggers counting", async () => {
    const marker = `cap-${crypto.randomUUID().slice(0, 8)}`;
    // Disabled rows on the shared queue: they count, and never fire for the other tests.
    await workerEnv.DB.batch(
      Array.from({ length: MAX_TRIGGERS_PER_SOURCE }, (_, index) =>
        workerEnv.DB.prepare(
          `INSERT INTO triggers (id, namespace, function_name, name, type, qualifier, trigger_desc, enabled,
             custom_argument, description, source, created_at, updated_at)
           VALUES (?, 'default', ?, ?, 'ckafka', '$LATEST', '{"maxMsgNum":1}', 0, '', ?, ?, 1, 1)`,
        ).bind(crypto.randomUUID(), `${marker}-${index}`, TRIGGER_QUEUE, marker, TRIGGER_QUEUE),
      ),
    );
    try {
      const functionName = await createFunction("default");
      const response = await call(`/v1/namespaces/default/functions/${functionName}/triggers`, {
        method: "POST",
        body: JSON.stringify({ name: TRIGGER_QUEUE, type: "ckafka" }),
      });
      expect(response.status, await response.clone().text()).toBe(409);
      const { error } = (await response.json()) as { error: { code: string; message: string } };
      expect(error.code).toBe("TRIGGER_LIMIT_EXCEEDED");
      expect(error.message).toContain(`queue ${TRIGGER_QUEUE}`);
    } finally {
      await workerEnv.DB.prepare("DELETE FROM triggers WHERE description = ?").bind(marker).run();
      clearTriggerSourceCache();
    }
  });
});

/** TC3 headers of a request to a function URL, signed with the administrator's pair (GET: no body). */
async function signedUrlHeaders(method: string, path: string, timestamp: number): Promise<Record<string, string>> {
  const secretId = workerEnv.DEV_SECRET_ID as string;
  const signature = await tc3Signature({
    secretKey: workerEnv.DEV_SECRET_KEY as string,
    method,
    path,
    query: "",
    canonicalHeaders: "content-type:application/json\nhost:platform.test\n",
    signedHeaders: "content-type;host",
    body: new Uint8Array(),
    timestamp,
    service: "scf",
  });
  return {
    "content-type": "application/json",
    authorization: `TC3-HMAC-SHA256 Credential=${secretId}/${utcDate(timestamp)}/scf/tc3_request, SignedHeaders=content-type;host, Signature=${signature}`,
    "x-tc-timestamp": String(timestamp),
    "x-tc-version": "2018-04-16",
  };
}

describe("function URL hardening", () => {
  it("under CAM refuses a replayed TC3 signature even on a GET", async () => {
    const functionName = await createFunction("default");
    const trigger = await storeTrigger("default", functionName, "http", "web", '{"AuthType":"CAM"}');
    const path = `/url/${trigger.source}`;
    const headers = await signedUrlHeaders("GET", path, Math.floor(Date.now() / 1000));
    const first = await call(path, { method: "GET", headers }, null);
    expect(first.status, await first.clone().text()).toBe(202);
    const replay = await call(path, { method: "GET", headers }, null);
    expect(replay.status).toBe(401);
    expect(await eventsOf("default", functionName, 1)).toHaveLength(1);
  });

  it("under CAM leaves the X-TC-* headers out of the event, so a retry signed afresh with the same Idempotency-Key finds its event", async () => {
    const functionName = await createFunction("default");
    const trigger = await storeTrigger("default", functionName, "http", "web", '{"AuthType":"CAM"}');
    const path = `/url/${trigger.source}`;
    const now = Math.floor(Date.now() / 1000);
    const send = async (timestamp: number) =>
      call(
        path,
        { method: "GET", headers: { ...(await signedUrlHeaders("GET", path, timestamp)), "Idempotency-Key": "k-1" } },
        null,
      );
    const first = await send(now);
    expect(first.status, await first.clone().text()).toBe(202);
    const { requestId } = (await first.json()) as { requestId: string };
    const event = await payloadOf(requestId);
    expect(Object.keys(event.headers as Record<string, string>).filter((name) => name.startsWith("x-tc-"))).toEqual([]);
    const retry = await send(now - 1);
    expect(retry.status, await retry.clone().text()).toBe(200);
    expect(((await retry.json()) as { requestId: string }).requestId).toBe(requestId);
  });

  it("keeps a function URL's Idempotency-Keys apart from the keys the function is invoked with", async () => {
    const functionName = await createFunction("default");
    const trigger = await storeTrigger("default", functionName, "http", "web", '{"AuthType":"NONE"}');
    const owner = await call(`/v1/namespaces/default/functions/${functionName}/invocations`, {
      method: "POST",
      headers: { "Idempotency-Key": "order-1" },
      body: '{"owner":true}',
    });
    expect(owner.status, await owner.clone().text()).toBe(202);
    const ownerId = ((await owner.json()) as { requestId: string }).requestId;
    const anonymous = await call(
      `/url/${trigger.source}`,
      { method: "POST", headers: { "Idempotency-Key": "order-1" }, body: "{}" },
      null,
    );
    expect(anonymous.status, await anonymous.clone().text()).toBe(202);
    expect(((await anonymous.json()) as { requestId: string }).requestId).not.toBe(ownerId);
    // The owner's key still answers the owner's event.
    const ownerAgain = await call(`/v1/namespaces/default/functions/${functionName}/invocations`, {
      method: "POST",
      headers: { "Idempotency-Key": "order-1" },
      body: '{"owner":true}',
    });
    expect(ownerAgain.status).toBe(200);
    expect(((await ownerAgain.json()) as { requestId: string }).requestId).toBe(ownerId);
  });

  it("answers a public caller's refusals with generic messages and rate-limits its duplicate-key answers", async () => {
    const functionName = await createFunction("default", { qpsLimit: 1 });
    const trigger = await storeTrigger("default", functionName, "http", "web", '{"AuthType":"NONE"}');
    const send = (body: string, key = "dup-1") =>
      call(`/url/${trigger.source}`, { method: "POST", headers: { "Idempotency-Key": key }, body }, null);
    expect((await send("{}")).status).toBe(202);
    const conflict = await send('{"other":1}');
    expect(conflict.status).toBe(409);
    const conflictText = await conflict.text();
    expect(conflictText).not.toContain(functionName);
    const replays = await Promise.all(Array.from({ length: 40 }, () => send("{}")));
    const limited = replays.filter((response) => response.status === 429);
    expect(replays.filter((response) => response.status === 200).length).toBeGreaterThan(0);
    expect(limited.length).toBeGreaterThan(0);
    const limitedText = await (limited[0] as Response).text();
    expect(limitedText).not.toContain(functionName);
    expect(limitedText).not.toMatch(/\d+ (list|reads|per second)/);
    expect((limited[0] as Response).headers.get("retry-after")).not.toBeNull();
    // The function's QPS limit, told generically.
    const statuses: Response[] = [];
    for (let i = 0; i < 6; i += 1) statuses.push(await send("{}", `q-${i}`));
    const qps = statuses.find((response) => response.status === 429);
    expect(qps).toBeDefined();
    const qpsText = await (qps as Response).text();
    expect(qpsText).not.toContain(functionName);
    expect(qpsText).not.toMatch(/qps|QPS/);
  });

  it("under NONE drops an Authorization in the platform's own schemes from the event and keeps any other", async () => {
    const functionName = await createFunction("default");
    const trigger = await storeTrigger("default", functionName, "http", "web", '{"AuthType":"NONE"}');
    const eventAuthorization = async (authorization: string) => {
      const response = await call(`/url/${trigger.source}`, { method: "POST", body: "{}" }, authorization);
      expect(response.status, authorization).toBe(202);
      const { requestId } = (await response.json()) as { requestId: string };
      return ((await payloadOf(requestId)).headers as Record<string, string>).authorization;
    };
    expect(await eventAuthorization(ADMIN)).toBeUndefined();
    expect(
      await eventAuthorization(
        "TC3-HMAC-SHA256 Credential=AKIDx/2026-11-26/scf/tc3_request, SignedHeaders=host, Signature=ab",
      ),
    ).toBeUndefined();
    expect(await eventAuthorization("Bearer some-oauth-token")).toBe("Bearer some-oauth-token");
    expect(await eventAuthorization("Basic dXNlcjpwYXNz")).toBe("Basic dXNlcjpwYXNz");
  });

  it("refuses CORS entries that are no origin or token, and Origins * with Credentials", async () => {
    const base = { namespace: "default", functionName: "f", triggerName: "web" };
    const cors = (config: Record<string, unknown>) =>
      JSON.stringify({ AuthType: "NONE", CorsConfig: { Enable: true, ...config } });
    for (const bad of [
      cors({ Origins: ["https://a.test\r\nSet-Cookie: x=1"] }),
      cors({ Origins: ["https://a.test/path"] }),
      cors({ Origins: ["https://\u00e9\u4e2d.test"] }),
      cors({ Origins: ["https://a.test\u0000"] }),
      cors({ Methods: ["PO ST"] }),
      cors({ Headers: ["x-\u4e2d"] }),
      cors({ ExposeHeaders: ["a\nb"] }),
      cors({ Origins: ["*"], Credentials: true }),
      cors({ Credentials: true }),
    ]) {
      expect((await refusal(() => prepareHttpTrigger(workerEnv, { ...base, triggerDesc: bad }))).code, bad).toBe(
        "INVALID_PARAMETER",
      );
    }
    const good = cors({
      Origins: ["https://app.test", "http://localhost:8080", "*"],
      Methods: ["GET", "POST"],
      Headers: ["content-type", "*"],
    });
    expect((await prepareHttpTrigger(workerEnv, { ...base, triggerDesc: good })).triggerDesc).toContain("localhost");
  });

  it("answers 202 without crashing for a stored row whose CORS entries a Response refuses, never with credentials for *", async () => {
    const functionName = await createFunction("default");
    const trigger = await storeTrigger("default", functionName, "http", "web", '{"AuthType":"NONE"}');
    const stored = {
      AuthType: "NONE",
      CorsConfig: {
        Enable: true,
        Origins: ["*"],
        Credentials: true,
        ExposeHeaders: ["x-a\r\nx-b", "\u4e2d"],
        Methods: ["GE\nT"],
      },
    };
    await workerEnv.DB.prepare("UPDATE triggers SET trigger_desc = ? WHERE id = ?")
      .bind(JSON.stringify(stored), trigger.id)
      .run();
    const response = await call(
      `/url/${trigger.source}`,
      { method: "POST", headers: { Origin: "https://app.test" }, body: "{}" },
      null,
    );
    expect(response.status, await response.clone().text()).toBe(202);
    expect(response.headers.get("access-control-expose-headers")).toBe(REQUEST_ID_HEADER);
    // A stored `*` with Credentials (from before the check) never echoes the origin with credentials.
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
    expect(response.headers.get("access-control-allow-credentials")).toBeNull();
    const preflight = await call(
      `/url/${trigger.source}`,
      { method: "OPTIONS", headers: { Origin: "https://app.test", "Access-Control-Request-Method": "GET" } },
      null,
    );
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-methods")).toBe("");
  });

  it("applies a URL switched from NONE to CAM or disabled on the very next request (no cached trigger)", async () => {
    const functionName = await createFunction("default");
    const trigger = await storeTrigger("default", functionName, "http", "web", '{"AuthType":"NONE"}');
    const send = () => call(`/url/${trigger.source}`, { method: "POST", body: "{}" }, null);
    expect((await send()).status).toBe(202);
    await workerEnv.DB.prepare("UPDATE triggers SET trigger_desc = ? WHERE id = ?")
      .bind('{"AuthType":"CAM"}', trigger.id)
      .run();
    expect((await send()).status).toBe(401);
    await workerEnv.DB.prepare("UPDATE triggers SET enabled = 0 WHERE id = ?").bind(trigger.id).run();
    expect((await call(`/url/${trigger.source}`, { method: "POST", body: "{}" })).status).toBe(404);
  });
});

describe("trigger dead-letter queue", () => {
  it("logs, counts and acknowledges the trigger queues' dead letters routed to afp-trigger-dead", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const before = triggerDeadLetterStats().deadLetters;
    const batch = createMessageBatch<unknown>("afp-trigger-dead", [
      { id: "dead-1", timestamp: new Date(), attempts: 1, body: { marker: "lost-job" } },
      { id: "dead-2", timestamp: new Date(), attempts: 1, body: "text" },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch as MessageBatch, workerEnv);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks.sort()).toEqual(["dead-1", "dead-2"]);
    expect(triggerDeadLetterStats().deadLetters - before).toBe(2);
    expect(errors.mock.calls.flat().join(" ")).toContain("lost-job");
  });
});
