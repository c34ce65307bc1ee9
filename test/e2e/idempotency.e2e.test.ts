// Idempotency keys through the running platform (issue 14): the REST Idempotency-Key header under
// concurrent duplicates, with a real container running the one event, and the Tencent endpoint's
// IdempotencyKey / IdempotencyWindow extensions through the official SDK.
import { beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient, type EventView } from "../helpers/api-client";
import { type ScfSdkClient as Client, scfClient, sdkError } from "../helpers/scf-client";
import { zipBase64 } from "../helpers/zip";
import { NODE_HANDLER } from "./fixtures";

const baseUrl = inject("baseUrl");
const api = new ApiClient(baseUrl);

/** Concurrent duplicates of one key (the issue asks for at least 50). */
const CONCURRENT_DUPLICATES = 60;
/** A function's idempotency window here: short, so that the test sees it end. */
const WINDOW_SECONDS = 2;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface InvokeAnswer {
  status: number;
  replayed: string | null;
  body: { requestId?: string; status?: string; idempotentReplay?: boolean; error?: { code: string } };
}

/** Callers the concurrent duplicates are spread over: a duplicate's answer counts as one read of its caller. */
const CONCURRENT_CALLERS = 6;

/** A fresh credential for the default namespace (its own read limit). */
async function freshClient(): Promise<ApiClient> {
  const { status, body } = await api.json<{ secretId: string; secretKey: string }>("/v1/admin/credentials", {
    method: "POST",
    body: JSON.stringify({ namespaces: ["default"], description: "idempotency e2e duplicates" }),
  });
  expect(status).toBe(201);
  return new ApiClient(baseUrl, body);
}

async function invoke(name: string, payload: unknown, key: string, client = api): Promise<InvokeAnswer> {
  const response = await client.request(`/v1/namespaces/default/functions/${name}/invocations`, {
    method: "POST",
    headers: { "Idempotency-Key": key },
    body: JSON.stringify(payload),
  });
  return {
    status: response.status,
    replayed: response.headers.get("idempotent-replayed"),
    body: (await response.json()) as InvokeAnswer["body"],
  };
}

/** Every RequestId the event index lists for a function (waiting out the read limit). */
async function listedEvents(namespace: string, name: string): Promise<string[]> {
  for (let attempt = 0; ; attempt++) {
    const response = await api.request(`/v1/namespaces/${namespace}/functions/${name}/events?limit=100`);
    if (response.status === 429 && attempt < 10) {
      await response.body?.cancel();
      await sleep(1_000);
      continue;
    }
    expect(response.status).toBe(200);
    const body = (await response.json()) as { events: { requestId: string }[] };
    return body.events.map((event) => event.requestId);
  }
}

describe("REST Idempotency-Key through the platform", () => {
  it(`runs one event for ${CONCURRENT_DUPLICATES} concurrent duplicates, then answers its status and refuses another payload`, async () => {
    const name = await api.createUniqueFunction("default", "idem", {
      runtime: "Nodejs22",
      files: { "index.js": NODE_HANDLER },
      timeout: 60,
    });
    const key = `upload:${crypto.randomUUID()}`;
    const payload = { file: "a.mp4", sleepMs: 300 };
    const callers = await Promise.all(Array.from({ length: CONCURRENT_CALLERS }, () => freshClient()));
    const answers = await Promise.all(
      Array.from({ length: CONCURRENT_DUPLICATES }, (_, index) =>
        invoke(name, payload, key, callers[index % CONCURRENT_CALLERS]),
      ),
    );
    const requestIds = new Set(answers.map((answer) => answer.body.requestId));
    expect(requestIds.size, JSON.stringify(answers.slice(0, 3))).toBe(1);
    const requestId = answers[0]?.body.requestId as string;
    expect(answers.filter((answer) => answer.status === 202)).toHaveLength(1);
    const replays = answers.filter((answer) => answer.status === 200);
    expect(replays).toHaveLength(CONCURRENT_DUPLICATES - 1);
    for (const replay of replays) {
      expect(replay.replayed).toBe("true");
      expect(replay.body.idempotentReplay).toBe(true);
      expect(replay.body.status).toBe("RUNNING");
    }

    // The one event runs in a real container with the payload, once.
    const ended: EventView = await api.waitForEvent(requestId);
    expect(ended.status).toBe("FINISHED");
    expect((ended.result as { echo: unknown }).echo).toEqual(payload);
    expect(await listedEvents("default", name)).toEqual([requestId]);

    // Within the window (24 h by default): the same payload answers the event as it is now.
    const finished = await invoke(name, payload, key);
    expect(finished).toMatchObject({ status: 200, replayed: "true", body: { requestId, status: "FINISHED" } });
    const reused = await invoke(name, { file: "b.mp4" }, key);
    expect(reused.status).toBe(409);
    expect(reused.body.error?.code).toBe("IDEMPOTENCY_KEY_REUSED");
    expect(await listedEvents("default", name)).toEqual([requestId]);
  });

  it("starts a new event with the key once the function's window has passed", async () => {
    const name = await api.createUniqueFunction("default", "idemwin", {
      runtime: "Nodejs22",
      files: { "index.js": NODE_HANDLER },
      idempotencyWindowSeconds: WINDOW_SECONDS,
    });
    const key = `upload:${crypto.randomUUID()}`;
    const firstAt = Date.now();
    const first = await invoke(name, { n: 1 }, key);
    expect(first.status).toBe(202);
    const duplicate = await invoke(name, { n: 1 }, key);
    expect(duplicate.status).toBe(200);
    expect(duplicate.body.requestId).toBe(first.body.requestId);
    await sleep(Math.max(0, firstAt + WINDOW_SECONDS * 1000 + 200 - Date.now()));
    const later = await invoke(name, { n: 2 }, key);
    expect(later.status).toBe(202);
    expect(later.body.requestId).not.toBe(first.body.requestId);
    for (const requestId of [first.body.requestId, later.body.requestId]) {
      expect((await api.waitForEvent(requestId as string)).status).toBe("FINISHED");
    }
  });

  it("refuses a malformed key with 400 before any event exists", async () => {
    const name = await api.createUniqueFunction("default", "idembad", {
      runtime: "Nodejs22",
      files: { "index.js": NODE_HANDLER },
    });
    for (const key of ["has space", "k".repeat(129), "a/b"]) {
      const answer = await invoke(name, {}, key);
      expect(answer.status, key).toBe(400);
      expect(answer.body.error?.code).toBe("INVALID_PARAMETER");
    }
    expect(await listedEvents("default", name)).toEqual([]);
  });
});

describe("Tencent IdempotencyKey through the official SDK", () => {
  const namespace = `idem${Math.random().toString(36).slice(2, 8)}`;
  let client: Client;
  beforeAll(async () => {
    const { status, body } = await api.json<{ secretId: string; secretKey: string }>("/v1/admin/credentials", {
      method: "POST",
      body: JSON.stringify({ namespaces: [namespace], description: "idempotency e2e" }),
    });
    expect(status).toBe(201);
    client = scfClient(baseUrl, body.secretId, body.secretKey);
  });

  it("answers a duplicate Invoke with the first FunctionRequestId, refuses another ClientContext, and runs one event", async () => {
    const name = `sdkidem-${Math.random().toString(36).slice(2, 8)}`;
    // IdempotencyWindow and IdempotencyKey are this platform's extensions: the SDK sends them as given.
    await client.CreateFunction({
      FunctionName: name,
      Namespace: namespace,
      Runtime: "Nodejs22",
      Handler: "index.main_handler",
      Code: { ZipFile: zipBase64({ "index.js": NODE_HANDLER }) },
      IdempotencyWindow: 600,
    } as Parameters<Client["CreateFunction"]>[0]);
    const read = (await client.GetFunction({ FunctionName: name, Namespace: namespace })) as {
      IdempotencyWindow?: number;
    };
    expect(read.IdempotencyWindow).toBe(600);

    const invoke = (clientContext: string, key: string) =>
      client.Invoke({
        FunctionName: name,
        Namespace: namespace,
        InvocationType: "Event",
        ClientContext: clientContext,
        IdempotencyKey: key,
      } as Parameters<Client["Invoke"]>[0]);
    const key = `job:${crypto.randomUUID()}`;
    const first = await invoke(JSON.stringify({ job: 1 }), key);
    const requestId = first.Result?.FunctionRequestId as string;
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    // The same request again in the next second (the SDK signs whole seconds: see the README).
    await sleep(1_100);
    const duplicate = await invoke(JSON.stringify({ job: 1 }), key);
    expect(duplicate.Result).toEqual(first.Result);
    expect(await sdkError(invoke(JSON.stringify({ job: 2 }), key))).toBe("FailedOperation.IdempotencyKeyReused");
    expect(await sdkError(invoke("{}", "not a key"))).toBe("InvalidParameterValue.IdempotencyKey");

    const deadline = Date.now() + 60_000;
    let status = "RUNNING";
    while (status === "RUNNING" && Date.now() < deadline) {
      status = (await client.GetAsyncEventStatus({ InvokeRequestId: requestId })).Result?.Status ?? "";
      if (status === "RUNNING") await sleep(200);
    }
    expect(status).toBe("FINISHED");
    const listed = await client.ListAsyncEvents({ FunctionName: name, Namespace: namespace });
    expect(listed.TotalCount).toBe(1);
    expect(listed.EventList?.[0]?.InvokeRequestId).toBe(requestId);
  });
});
