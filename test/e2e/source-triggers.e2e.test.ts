// Source-driven triggers end to end (issue 12), created through the official Tencent Cloud SDK's
// CreateTrigger on the running platform with real containers: a function URL answers 202 with the
// RequestId before its handler ends and the handler gets API Gateway's event; a queue message and
// an R2 upload each create exactly one event although the run delivers every trigger queue message
// twice (CHAOS_REDELIVER_TRIGGER_MESSAGES in global-setup.ts).
import { beforeAll, describe, expect, inject, it } from "vitest";
import { ADMIN_HEADERS, ApiClient, TEST_CREDENTIALS, uniqueName } from "../helpers/api-client";
import { type ScfSdkClient, scfClient, sdkError } from "../helpers/scf-client";
import { pollUntil } from "../helpers/wait";
import { zipBase64 } from "../helpers/zip";

const baseUrl = inject("baseUrl");
const api = new ApiClient(baseUrl);

/** How long the http trigger's handler sleeps before it answers (ms). */
const HANDLER_SLEEP_MS = 3_000;
/** A handler that sleeps, then returns its event. */
const SLEEPING_HANDLER = `exports.main_handler = async (event) => {
  await new Promise((resolve) => setTimeout(resolve, ${HANDLER_SLEEP_MS}));
  return event;
};`;
/** A handler that returns its event at once. */
const ECHO_HANDLER = "exports.main_handler = async (event) => event;";
/** How long a test waits for a message's second delivery (ms). */
const REDELIVERY_WAIT_MS = 30_000;

interface ListedEvent {
  requestId: string;
  invokeType: string;
}

async function createFunction(client: ScfSdkClient, namespace: string, handler: string): Promise<string> {
  const name = uniqueName("src");
  await client.CreateFunction({
    FunctionName: name,
    Namespace: namespace,
    Runtime: "Nodejs22",
    Handler: "index.main_handler",
    Code: { ZipFile: zipBase64({ "index.js": handler }) },
    Timeout: 30,
    MemorySize: 128,
    AsyncRunEnable: "TRUE",
  });
  return name;
}

async function eventsOf(namespace: string, functionName: string): Promise<ListedEvent[]> {
  const { status, body } = await api.json<{ events: ListedEvent[] }>(
    `/v1/namespaces/${namespace}/functions/${functionName}/events`,
  );
  expect(status).toBe(200);
  return body.events;
}

async function payloadOf(requestId: string): Promise<Record<string, unknown>> {
  const { status, body } = await api.json<Record<string, unknown>>(`/v1/events/${requestId}/payload`);
  expect(status).toBe(200);
  return body;
}

/** Waits until the platform noted a redelivery of `label` (`<queue>/<message id>`, `<bucket>/<key>`). */
async function redeliveryNoted(label: string): Promise<boolean> {
  return pollUntil(
    async () => {
      const response = await fetch(`${baseUrl}/_diagnostics/trigger-consumers`, { headers: ADMIN_HEADERS });
      const body = (await response.json()) as { recentRedeliveries?: string[] };
      return body.recentRedeliveries?.includes(label) ?? false;
    },
    (found) => found,
    REDELIVERY_WAIT_MS,
  );
}

describe("source triggers through the official SDK's CreateTrigger", () => {
  const namespace = `src${Math.random().toString(36).slice(2, 8)}`;
  /**
   * The namespace wrangler.toml's TRIGGER_QUEUES and COS_TRIGGER_BUCKETS give afp-trigger-jobs and
   * afp-uploads to: only its triggers may be on them.
   */
  const owner = "default";
  let client: ScfSdkClient;
  beforeAll(() => {
    client = scfClient(baseUrl, TEST_CREDENTIALS.secretId, TEST_CREDENTIALS.secretKey);
  });

  it("an http trigger answers 202 with the RequestId well before its handler ends, with an APIGW event", async () => {
    const functionName = await createFunction(client, namespace, SLEEPING_HANDLER);
    const created = await client.CreateTrigger({
      FunctionName: functionName,
      Namespace: namespace,
      TriggerName: "web",
      Type: "http",
      TriggerDesc: JSON.stringify({ AuthType: "NONE" }),
    });
    const url = (created.TriggerInfo as { Url?: string } | undefined)?.Url ?? "";
    expect(url).toMatch(new RegExp(`^${baseUrl}/url/[0-9a-f]{32}$`));

    const sent = Date.now();
    const response = await fetch(`${url}/orders/42?x=1`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-trace": "t-1" },
      body: JSON.stringify({ order: 42 }),
    });
    const answeredAt = Date.now();
    expect(response.status).toBe(202);
    const { requestId } = (await response.json()) as { requestId: string };
    expect(response.headers.get("x-scf-request-id")).toBe(requestId);
    expect(answeredAt - sent).toBeLessThan(HANDLER_SLEEP_MS);

    const ended = await api.waitForEvent(requestId);
    expect(ended).toMatchObject({ status: "FINISHED", invokeType: "APIGW" });
    // The answer came before the handler had even slept its 3 s.
    expect(Date.parse(ended.endedAt ?? "") - answeredAt).toBeGreaterThan(HANDLER_SLEEP_MS - 1_000);
    expect(ended.result).toMatchObject({
      httpMethod: "POST",
      path: "/orders/42",
      queryString: { x: "1" },
      body: '{"order":42}',
      isBase64Encoded: false,
      headers: { "content-type": "application/json", "x-trace": "t-1" },
      requestContext: { serviceId: "web", httpMethod: "POST", path: "/orders/42", stage: "release", identity: {} },
    });
  });

  it("a queue message creates exactly one CKafka event although it is delivered twice", async () => {
    // A namespace the queue does not belong to is refused as for an unknown queue.
    const outsider = await createFunction(client, namespace, ECHO_HANDLER);
    const refused = await sdkError(
      client.CreateTrigger({
        FunctionName: outsider,
        Namespace: namespace,
        TriggerName: "afp-trigger-jobs",
        Type: "ckafka",
        TriggerDesc: JSON.stringify({ maxMsgNum: 1 }),
      }),
    );
    expect(refused).toMatch(/^InvalidParameter/);
    const functionName = await createFunction(client, owner, ECHO_HANDLER);
    await client.CreateTrigger({
      FunctionName: functionName,
      Namespace: owner,
      TriggerName: "afp-trigger-jobs",
      Type: "ckafka",
      TriggerDesc: JSON.stringify({ maxMsgNum: 1 }),
    });
    const marker = `job-${crypto.randomUUID()}`;
    const sent = await fetch(`${baseUrl}/_diagnostics/trigger-queues/afp-trigger-jobs/messages`, {
      method: "POST",
      headers: { ...ADMIN_HEADERS, "content-type": "application/json" },
      body: JSON.stringify({ body: { marker } }),
    });
    expect(sent.status).toBe(200);

    const events = await pollUntil(
      () => eventsOf(owner, functionName),
      (list) => list.length > 0,
    );
    expect(events).toHaveLength(1);
    const [event] = events as [ListedEvent];
    expect(event.invokeType).toBe("CKAFKA_TRIGGER");
    const payload = (await payloadOf(event.requestId)) as { Records: { Ckafka: Record<string, unknown> }[] };
    expect(payload.Records).toHaveLength(1);
    const record = payload.Records[0]?.Ckafka ?? {};
    expect(record).toMatchObject({ topic: "afp-trigger-jobs", partition: 0, msgBody: JSON.stringify({ marker }) });
    // The second delivery came and found the event: still exactly one.
    expect(await redeliveryNoted(`afp-trigger-jobs/${String(record.msgKey)}`)).toBe(true);
    expect(await eventsOf(owner, functionName)).toHaveLength(1);
    expect((await api.waitForEvent(event.requestId)).status).toBe("FINISHED");
  });

  it("an R2 upload creates exactly one COS event although its notification is delivered twice", async () => {
    const functionName = await createFunction(client, owner, ECHO_HANDLER);
    await client.CreateTrigger({
      FunctionName: functionName,
      Namespace: owner,
      TriggerName: "afp-uploads",
      Type: "cos",
      TriggerDesc: JSON.stringify({
        event: "cos:ObjectCreated:*",
        filter: { Prefix: `${namespace}/`, Suffix: ".txt" },
      }),
    });
    const key = `${namespace}/report-${crypto.randomUUID().slice(0, 8)}.txt`;
    const ignored = `${namespace}/image.png`;
    for (const objectKey of [key, ignored]) {
      const uploaded = await fetch(`${baseUrl}/_diagnostics/r2/objects`, {
        method: "POST",
        headers: { ...ADMIN_HEADERS, "content-type": "application/json" },
        body: JSON.stringify({ key: objectKey, content: "hello world" }),
      });
      expect(uploaded.status).toBe(200);
    }

    const events = await pollUntil(
      () => eventsOf(owner, functionName),
      (list) => list.length > 0,
    );
    expect(events).toHaveLength(1);
    const [event] = events as [ListedEvent];
    expect(event.invokeType).toBe("COS");
    const payload = (await payloadOf(event.requestId)) as {
      Records: { cos: { cosObject: { key: string; size: number } }; event: { eventName: string } }[];
    };
    expect(payload.Records[0]).toMatchObject({
      cos: { cosObject: { key: `/local/afp-uploads/${key}`, size: 11 } },
      event: { eventName: "cos:ObjectCreated:Put", eventSource: "qcs::cos" },
    });
    expect(await redeliveryNoted(`afp-uploads/${key}`)).toBe(true);
    expect(await eventsOf(owner, functionName)).toHaveLength(1);
    expect((await api.waitForEvent(event.requestId)).status).toBe("FINISHED");
  });
});
