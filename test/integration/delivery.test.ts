// Result delivery (issue 14): the destinations of a function's configuration (validated, the
// secret never shown), the end record's signature, the retry schedule and the bounded attempt log,
// the handoff from an ended event to its DeliveryObject surviving a failed first attempt, and the
// deliveries route (namespace-scoped, read-limited).

import {
  createExecutionContext,
  env,
  evictDurableObject,
  runDurableObjectAlarm,
  runInDurableObject,
  SELF,
  waitOnExecutionContext,
} from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { createApp } from "../../worker/api/app";
import { decryptSecret, encryptSecret } from "../../worker/auth/credential-store";
import {
  DEFAULT_DELIVERY_RETRY_BASE_MS,
  DELIVERY_RETRY_WINDOW_MS,
  type DeliveryHandoff,
  deliveryBody,
  deliverySignature,
  logAttempt,
  MAX_DELIVERY_RETRY_DELAY_MS,
  MAX_LOGGED_ATTEMPTS,
  MAX_QUEUE_MESSAGE_BYTES,
  nextAttemptAt,
  retryBaseOf,
  retryDelayMs,
} from "../../worker/events/delivery";
import {
  type DeliveryObject,
  installDeliveryFetchForTests,
  type PublicDelivery,
} from "../../worker/events/delivery-object";
import type { EventState } from "../../worker/events/event-machine";
import { nextDestinations, webhookSecretContext } from "../../worker/functions/destinations";
import type { StoredDestinations } from "../../worker/functions/model";
import { functionSnapshot } from "../helpers/function-snapshot";
import { zipBase64 } from "../helpers/zip";

const BASE = "https://platform.test";
const workerEnv: Env = env;
const ADMIN = { authorization: `Bearer ${workerEnv.DEV_SECRET_ID ?? ""}:${workerEnv.DEV_SECRET_KEY ?? ""}` };
const ZIP = zipBase64({ "index.js": "exports.main_handler = async (event) => event;" });
const SECRET = "a-webhook-secret-of-32-characters";

let counter = 0;
function unique(prefix: string): string {
  counter += 1;
  return `${prefix}${Date.now().toString(36)}${counter}`;
}

function call(path: string, init: RequestInit & { headers?: Record<string, string> } = {}): Promise<Response> {
  return SELF.fetch(`${BASE}${path}`, { ...init, headers: { ...ADMIN, ...(init.headers ?? {}) } });
}

async function errorCode(response: Response): Promise<string> {
  return ((await response.json()) as { error: { code: string } }).error.code;
}

function createWith(namespace: string, name: string, destinations: unknown): Promise<Response> {
  return call(`/v1/namespaces/${namespace}/functions`, {
    method: "POST",
    body: JSON.stringify({ name, runtime: "Nodejs22", code: { zipFile: ZIP }, destinations }),
  });
}

/** The receiver's side of the signature, written here with WebCrypto (not the worker's helper). */
async function hmacHex(secret: string, message: string): Promise<string> {
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(message));
  return [...new Uint8Array(mac)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

const webhook = (url: string, secret = SECRET) => ({ onSuccess: { webhook: { url, secret } } });

describe("destinations in a function's configuration", () => {
  it("accepts an https webhook and never shows its secret (create, GET, list)", async () => {
    const namespace = unique("dl");
    const name = unique("fn");
    const created = await createWith(namespace, name, {
      ...webhook("https://receiver.example/hook"),
      onFailure: { queue: "RESULTS" },
    });
    const createdText = await created.text();
    expect(created.status).toBe(201);
    expect(createdText).not.toContain(SECRET);
    const got = await call(`/v1/namespaces/${namespace}/functions/${name}`);
    const gotText = await got.text();
    expect(gotText).not.toContain(SECRET);
    expect((JSON.parse(gotText) as { destinations: unknown }).destinations).toEqual({
      onSuccess: { webhook: { url: "https://receiver.example/hook", secret: "***", hasSecret: true } },
      onFailure: { queue: "RESULTS" },
    });
    const listed = await (await call(`/v1/namespaces/${namespace}/functions`)).text();
    expect(listed).not.toContain(SECRET);
    // Stored encrypted: the D1 row does not hold the secret either.
    const row = await workerEnv.DB.prepare("SELECT destinations FROM functions WHERE namespace = ? AND name = ?")
      .bind(namespace, name)
      .first<{ destinations: string }>();
    expect(row?.destinations).toBeTruthy();
    expect(row?.destinations).not.toContain(SECRET);
  });

  it.each([
    ["http to another host", webhook("http://receiver.example/hook")],
    ["http loopback while ALLOW_HTTP_WEBHOOKS is false", webhook("http://127.0.0.1:8080/hook")],
    ["http localhost while ALLOW_HTTP_WEBHOOKS is false", webhook("http://localhost:8080/hook")],
    ["credentials in the URL", webhook("https://user:pass@receiver.example/hook")],
    ["a URL over 2048 characters", webhook(`https://receiver.example/${"a".repeat(2048)}`)],
    ["not a URL", webhook("receiver")],
    ["a secret of 15 characters", webhook("https://receiver.example/hook", "s".repeat(15))],
    ["a secret of 257 characters", webhook("https://receiver.example/hook", "s".repeat(257))],
    ["a secret with a control character", webhook("https://receiver.example/hook", `${"s".repeat(20)}\n`)],
    ["a webhook without a secret", { onSuccess: { webhook: { url: "https://receiver.example/hook" } } }],
    ["an unknown queue binding", { onFailure: { queue: "NOPE" } }],
    ["a malformed queue name", { onFailure: { queue: "results-lower" } }],
    ["an unknown kind", { onFinish: { queue: "RESULTS" } }],
    ["a kind without webhook or queue", { onSuccess: {} }],
  ])("refuses %s with 400 INVALID_PARAMETER", async (_case, destinations) => {
    const response = await createWith(unique("dl"), unique("fn"), destinations);
    expect(response.status).toBe(400);
    expect(await errorCode(response)).toBe("INVALID_PARAMETER");
  });

  it.each([
    ["https://127.0.0.1/", "loopback"],
    ["https://127.1:8443/", "loopback"],
    ["https://2130706433/", "loopback"],
    ["https://0x7f000001/", "loopback"],
    ["https://[::1]/", "loopback"],
    ["https://[::ffff:127.0.0.1]/", "loopback"],
    ["https://localhost:8787/", "local or internal name"],
    ["https://foo.localhost/", "local or internal name"],
    ["https://169.254.169.254/latest/meta-data/", "link-local"],
    ["https://metadata.google.internal/", "local or internal name"],
    ["https://10.0.0.1:22/", "private"],
    ["https://192.168.1.1/", "private"],
    ["https://0.0.0.0/", "this-network"],
    ["https://172.16.0.1/", "private"],
    ["https://100.64.0.1/", "carrier-grade NAT"],
    ["https://224.0.0.1/", "multicast"],
    ["https://255.255.255.255/", "broadcast"],
    ["https://[::]/", "unspecified"],
    ["https://[fd00::1]/", "unique local"],
    ["https://[fe80::1]/", "link-local"],
    ["https://[64:ff9b::10.0.0.1]/", "NAT64"],
    ["https://printer.local/", "local or internal name"],
    ["https://intranet/", "single-label"],
  ])("refuses the webhook host of %s with 400 naming the rule (%s)", async (url, rule) => {
    const response = await createWith(unique("dl"), unique("fn"), webhook(url));
    expect(response.status).toBe(400);
    const { error } = (await response.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe("INVALID_PARAMETER");
    expect(error.message).toContain(rule);
  });

  it("accepts a public https host: a name, a public IPv4 and IPv6 literal", async () => {
    for (const url of ["https://hooks.example.com/afp", "https://8.8.8.8/hook", "https://[2001:4860:4860::8888]/h"]) {
      const response = await createWith(unique("dl"), unique("fn"), webhook(url));
      expect(response.status, url).toBe(201);
    }
  });

  it("accepts http to 127.0.0.1 and localhost only when ALLOW_HTTP_WEBHOOKS is true", async () => {
    const allowing = { ...workerEnv, ALLOW_HTTP_WEBHOOKS: "true" } as Env;
    for (const url of ["http://127.0.0.1:9/hook", "http://localhost:9/hook"]) {
      const stored = await nextDestinations(allowing, "default", "fn", webhook(url), {});
      expect(stored.onSuccess?.webhook?.url).toBe(url);
      await expect(nextDestinations(workerEnv, "default", "fn", webhook(url), {})).rejects.toThrow("https only");
    }
    await expect(nextDestinations(allowing, "default", "fn", webhook("http://10.0.0.1/hook"), {})).rejects.toThrow(
      "https only",
    );
    // https to exactly 127.0.0.1 or localhost too (the local receivers); no other private host.
    const local = await nextDestinations(allowing, "default", "fn", webhook("https://127.0.0.1:8443/h"), {});
    expect(local.onSuccess?.webhook?.url).toBe("https://127.0.0.1:8443/h");
    for (const url of ["https://127.0.0.2/h", "https://10.0.0.1/h", "https://foo.localhost/h"]) {
      await expect(nextDestinations(allowing, "default", "fn", webhook(url), {})).rejects.toThrow("the host");
    }
  });

  it("PATCH replaces a kind, null removes it, destinations: null removes all", async () => {
    const namespace = unique("dl");
    const name = unique("fn");
    expect((await createWith(namespace, name, webhook("https://one.example/hook"))).status).toBe(201);
    const path = `/v1/namespaces/${namespace}/functions/${name}`;
    const patched = await call(path, {
      method: "PATCH",
      body: JSON.stringify({ destinations: { onTerminate: { queue: "RESULTS" } } }),
    });
    expect(patched.status).toBe(200);
    expect(((await patched.json()) as { destinations: Record<string, unknown> }).destinations).toEqual({
      onSuccess: { webhook: { url: "https://one.example/hook", secret: "***", hasSecret: true } },
      onTerminate: { queue: "RESULTS" },
    });
    const removed = await call(path, { method: "PATCH", body: JSON.stringify({ destinations: { onSuccess: null } }) });
    expect(((await removed.json()) as { destinations: unknown }).destinations).toEqual({
      onTerminate: { queue: "RESULTS" },
    });
    const cleared = await call(path, { method: "PATCH", body: JSON.stringify({ destinations: null }) });
    expect(((await cleared.json()) as { destinations: unknown }).destinations).toEqual({});
    const refused = await call(path, {
      method: "PATCH",
      body: JSON.stringify({ destinations: { onSuccess: { queue: "UNKNOWN" } } }),
    });
    expect(refused.status).toBe(400);
  });

  it("refuses to configure destinations of another namespace's function", async () => {
    const namespace = unique("dl");
    const name = unique("fn");
    expect((await createWith(namespace, name, null)).status).toBe(201);
    const keyResponse = await call("/v1/admin/credentials", {
      method: "POST",
      body: JSON.stringify({ namespaces: [unique("other")], description: "delivery suite" }),
    });
    const key = (await keyResponse.json()) as { secretId: string; secretKey: string };
    const response = await SELF.fetch(`${BASE}/v1/namespaces/${namespace}/functions/${name}`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${key.secretId}:${key.secretKey}` },
      body: JSON.stringify({ destinations: webhook("https://attacker.example/hook") }),
    });
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    const read = (await (await call(`/v1/namespaces/${namespace}/functions/${name}`)).json()) as {
      destinations: unknown;
    };
    expect(read.destinations).toEqual({});
  });
});

describe("the end record, its signature, the retry schedule and the log", () => {
  it("signs timestamp + '.' + body with HMAC-SHA256 in lower-case hex", async () => {
    // RFC 4231 test case 2: the helper is HMAC-SHA256 itself.
    expect(await hmacHex("Jefe", "what do ya want for nothing?")).toBe(
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    );
    const body = deliveryBody("event.finished", "d-1", '{"requestId":"r","result":{"a":1}}');
    expect(body).toBe('{"type":"event.finished","deliveryId":"d-1","requestId":"r","result":{"a":1}}');
    const signature = await deliverySignature(SECRET, 1_700_000_000, body);
    expect(signature).toBe(await hmacHex(SECRET, `1700000000.${body}`));
    expect(signature).toMatch(/^[0-9a-f]{64}$/);
    expect(await deliverySignature(SECRET, 1_700_000_001, body)).not.toBe(signature);
  });

  it("backs off exponentially from the base, capped at 1 h, and gives up 24 h after the end", () => {
    expect([1, 2, 3, 4].map((failures) => retryDelayMs(failures, 1_000))).toEqual([1_000, 2_000, 4_000, 8_000]);
    expect(retryDelayMs(13, 1_000)).toBe(MAX_DELIVERY_RETRY_DELAY_MS);
    expect(retryDelayMs(1_000, 1_000)).toBe(MAX_DELIVERY_RETRY_DELAY_MS);
    const endedAt = 1_000_000;
    expect(nextAttemptAt(endedAt, endedAt + 5_000, 3, 200)).toBe(endedAt + 5_000 + 800);
    expect(nextAttemptAt(endedAt, endedAt + DELIVERY_RETRY_WINDOW_MS - 1, 30, 1_000)).toBe(
      endedAt + DELIVERY_RETRY_WINDOW_MS - 1 + MAX_DELIVERY_RETRY_DELAY_MS,
    );
    expect(nextAttemptAt(endedAt, endedAt + DELIVERY_RETRY_WINDOW_MS, 30, 1_000)).toBeUndefined();
    expect(retryBaseOf("200")).toBe(200);
    expect(retryBaseOf(undefined)).toBe(DEFAULT_DELIVERY_RETRY_BASE_MS);
    expect(retryBaseOf("0")).toBe(DEFAULT_DELIVERY_RETRY_BASE_MS);
    expect(retryBaseOf("-5")).toBe(DEFAULT_DELIVERY_RETRY_BASE_MS);
  });

  it(`keeps the first ${MAX_LOGGED_ATTEMPTS} attempts and counts them all`, () => {
    let log = { attempts: [] as ReturnType<typeof logAttempt>["attempts"], attemptCount: 0 };
    for (let attempt = 1; attempt <= MAX_LOGGED_ATTEMPTS + 50; attempt += 1) {
      log = logAttempt(log, {
        attempt,
        at: new Date(0).toISOString(),
        latencyMs: 1,
        statusCode: 500,
        error: "HTTP 500",
      });
    }
    expect(log.attempts).toHaveLength(MAX_LOGGED_ATTEMPTS);
    expect(log.attemptCount).toBe(MAX_LOGGED_ATTEMPTS + 50);
    expect(log.attempts[0]?.attempt).toBe(1);
    expect(log.attempts.at(-1)?.attempt).toBe(MAX_LOGGED_ATTEMPTS);
  });
});

/** A running event whose snapshot has an onSuccess webhook, as its object stores it. */
async function runningEventWithWebhook(namespace: string, url: string, queueOnFailure?: string) {
  const requestId = crypto.randomUUID();
  const functionName = "deliverer";
  const now = Date.now();
  const secretEncrypted = await encryptSecret(
    workerEnv,
    webhookSecretContext(namespace, functionName, "onSuccess"),
    SECRET,
  );
  const state: EventState = {
    requestId,
    namespace,
    functionName,
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    function: functionSnapshot(namespace, functionName, {
      destinations: {
        onSuccess: { webhook: { url, secretEncrypted } },
        ...(queueOnFailure !== undefined ? { onFailure: { queue: queueOnFailure } } : {}),
      },
    }),
    phase: "running",
    version: 3,
    invokedAt: now - 3_000,
    claimedAt: now - 2_000,
    startedAt: now - 1_000,
    instanceId: `${namespace}/${functionName}#0`,
    containerId: "boot-delivery",
    cold: false,
  };
  const stub = workerEnv.ASYNC_EVENT.get(workerEnv.ASYNC_EVENT.idFromName(requestId));
  await runInDurableObject(stub, async (_instance, storage) => {
    await storage.storage.put("state", state);
  });
  await evictDurableObject(stub);
  return { requestId, stub, instanceId: state.instanceId as string };
}

/**
 * Runs the DeliveryObject's alarm (the runtime may also have run it by itself) until `count()`
 * attempts were made; an alarm that runs early sends nothing and re-arms.
 */
async function attemptsMade(delivery: DurableObjectStub<DeliveryObject>, wanted: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  const logged = async () => (await delivery.view())[0]?.attemptCount ?? 0;
  while ((await logged()) < wanted && Date.now() < deadline) {
    await runDurableObjectAlarm(delivery);
    if ((await logged()) < wanted) await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function deliveriesOf(requestId: string, headers: Record<string, string> = ADMIN) {
  const response = await SELF.fetch(`${BASE}/v1/events/${requestId}/deliveries`, { headers });
  return response;
}

describe("delivery of an ended event", () => {
  afterEach(() => installDeliveryFetchForTests(undefined));

  it("hands the end over, survives a failed first attempt, and logs both attempts with one deliveryId", async () => {
    const seen: { id: string | null; timestamp: string | null; signature: string | null; body: string }[] = [];
    installDeliveryFetchForTests(async (request) => {
      seen.push({
        id: request.headers.get("afp-delivery-id"),
        timestamp: request.headers.get("afp-timestamp"),
        signature: request.headers.get("afp-signature"),
        body: await request.text(),
      });
      return new Response("x".repeat(10_000), { status: seen.length === 1 ? 503 : 202 });
    });
    const namespace = unique("dl");
    const { requestId, stub, instanceId } = await runningEventWithWebhook(namespace, "https://receiver.example/h");
    const before = await deliveriesOf(requestId);
    expect(await before.json()).toEqual({ deliveries: [] });

    expect(await stub.complete(instanceId, { kind: "returned", result: { ok: 1 } })).toEqual({ ok: true });
    // The handoff was made at once: the event owes nothing.
    const owed = await runInDurableObject(stub, (_instance, state) => state.storage.get("deliveryPending"));
    expect(owed).toBeUndefined();

    // The first attempt (the DeliveryObject's alarm was armed for now by the handoff) fails.
    const delivery = workerEnv.DELIVERY.get(workerEnv.DELIVERY.idFromName(requestId));
    await attemptsMade(delivery, 1);
    expect(seen).toHaveLength(1);
    const pending = (await (await deliveriesOf(requestId)).json()) as { deliveries: PublicDelivery[] };
    expect(pending.deliveries[0]?.state).toBe("pending");
    const retryAt = Date.parse(pending.deliveries[0]?.nextAttemptAt ?? "");
    const firstAt = Date.parse(pending.deliveries[0]?.attempts[0]?.at ?? "");
    expect(retryAt - firstAt).toBeGreaterThanOrEqual(DEFAULT_DELIVERY_RETRY_BASE_MS);
    // The retry, once due, succeeds.
    await attemptsMade(delivery, 2);
    expect(Date.now()).toBeGreaterThanOrEqual(retryAt);
    const { deliveries } = (await (await deliveriesOf(requestId)).json()) as { deliveries: PublicDelivery[] };
    expect(deliveries).toHaveLength(1);
    const [delivered] = deliveries as [PublicDelivery];
    expect(delivered).toMatchObject({
      destination: "webhook",
      kind: "onSuccess",
      state: "delivered",
      nextAttemptAt: null,
    });
    expect(delivered.attempts.map((attempt) => [attempt.attempt, attempt.statusCode, attempt.error])).toEqual([
      [1, 503, "HTTP 503"],
      [2, 202, null],
    ]);
    expect(seen).toHaveLength(2);
    expect(seen.map((request) => request.id)).toEqual([delivered.deliveryId, delivered.deliveryId]);
    expect(seen[0]?.body).toBe(seen[1]?.body);
    for (const request of seen) {
      const expected = await hmacHex(SECRET, `${request.timestamp}.${request.body}`);
      expect(request.signature).toBe(`v1=${expected}`);
    }
    const record = JSON.parse(seen[0]?.body ?? "{}") as Record<string, unknown>;
    expect(Object.keys(record)).toEqual([
      "type",
      "deliveryId",
      "requestId",
      "namespace",
      "functionName",
      "qualifier",
      "invokeType",
      "status",
      "statusCode",
      "errorMessage",
      "result",
      "durationMs",
      "memoryUsageKb",
      "invokedAt",
      "startedAt",
      "endedAt",
      "replayOf",
    ]);
    expect(record).toMatchObject({ type: "event.finished", requestId, status: "FINISHED", result: { ok: 1 } });
  }, 20_000);

  it("sends a FAILED event's record to its queue destination (DESTINATION_QUEUE_RESULTS) and logs it", async () => {
    const sent: unknown[] = [];
    installDeliveryFetchForTests(async () => {
      throw new Error("an onSuccess webhook must not be called for a FAILED event");
    });
    const queue = workerEnv.DESTINATION_QUEUE_RESULTS;
    const originalSend = queue.send.bind(queue);
    queue.send = async (message: unknown, options?: QueueSendOptions) => {
      sent.push(message);
      return originalSend(message, options);
    };
    try {
      const { requestId, stub, instanceId } = await runningEventWithWebhook(
        unique("dl"),
        "https://receiver.example/h",
        "RESULTS",
      );
      const outcome = { kind: "threw", message: "boom" } as const;
      expect(await stub.complete(instanceId, outcome)).toEqual({ ok: true });
      const delivery = workerEnv.DELIVERY.get(workerEnv.DELIVERY.idFromName(requestId));
      await attemptsMade(delivery, 1);
      const [logged] = await delivery.view();
      expect(logged).toMatchObject({ destination: "queue", kind: "onFailure", state: "delivered" });
      expect(logged?.attempts.map((attempt) => [attempt.statusCode, attempt.error])).toEqual([[null, null]]);
      expect(sent).toHaveLength(1);
      expect(sent[0]).toMatchObject({
        type: "event.failed",
        deliveryId: logged?.deliveryId,
        requestId,
        status: "FAILED",
        statusCode: 430,
        errorMessage: "boom",
        result: null,
      });
    } finally {
      queue.send = originalSend;
    }
  });

  it("answers EVENT_NOT_FOUND to another namespace's key, an unknown and a malformed id", async () => {
    installDeliveryFetchForTests(async () => new Response(null, { status: 200 }));
    const namespace = unique("dl");
    const { requestId } = await runningEventWithWebhook(namespace, "https://receiver.example/h");
    const keyResponse = await call("/v1/admin/credentials", {
      method: "POST",
      body: JSON.stringify({ namespaces: [unique("other")], description: "delivery suite" }),
    });
    const key = (await keyResponse.json()) as { secretId: string; secretKey: string };
    const foreign = await deliveriesOf(requestId, { authorization: `Bearer ${key.secretId}:${key.secretKey}` });
    expect(foreign.status).toBe(404);
    expect(await errorCode(foreign)).toBe("EVENT_NOT_FOUND");
    for (const id of [crypto.randomUUID(), "not-a-uuid", "x".repeat(5000)]) {
      const response = await deliveriesOf(id);
      expect(response.status).toBe(404);
      expect(await errorCode(response)).toBe("EVENT_NOT_FOUND");
    }
    const anonymous = await SELF.fetch(`${BASE}/v1/events/${requestId}/deliveries`);
    expect(anonymous.status).toBe(401);
  });
});

/** A handoff straight to a DeliveryObject of a new RequestId. */
async function handedOver(destination: DeliveryHandoff["destination"], recordJson = '{"requestId":"r"}') {
  const requestId = crypto.randomUUID();
  const delivery = workerEnv.DELIVERY.get(workerEnv.DELIVERY.idFromName(requestId));
  const handoff: DeliveryHandoff = {
    requestId,
    namespace: "default",
    functionName: "deliverer",
    kind: "onSuccess",
    type: "event.finished",
    recordJson,
    endedAt: Date.now(),
    destination,
  };
  expect(await delivery.handOver(handoff)).toEqual({ deliveries: 1 });
  return delivery;
}

describe("the DeliveryObject's guards", () => {
  afterEach(() => installDeliveryFetchForTests(undefined));

  it("refuses at send time a webhook host stored before the host rule, logged as a failed attempt", async () => {
    const sent: string[] = [];
    installDeliveryFetchForTests(async (request) => {
      sent.push(request.url);
      return new Response(null, { status: 200 });
    });
    const { requestId, stub, instanceId } = await runningEventWithWebhook(
      unique("dl"),
      "https://169.254.169.254/latest/meta-data/",
    );
    expect(await stub.complete(instanceId, { kind: "returned", result: { ok: 1 } })).toEqual({ ok: true });
    const delivery = workerEnv.DELIVERY.get(workerEnv.DELIVERY.idFromName(requestId));
    await attemptsMade(delivery, 1);
    const [logged] = await delivery.view();
    expect(logged).toMatchObject({ state: "failed", attemptCount: 1, nextAttemptAt: null });
    expect(logged?.attempts[0]?.error).toContain("link-local");
    expect(sent).toEqual([]);
  });

  it("writes nothing when the deliveries of an event without delivery are read", async () => {
    const requestId = crypto.randomUUID();
    const delivery = workerEnv.DELIVERY.get(workerEnv.DELIVERY.idFromName(requestId));
    expect(await delivery.view()).toEqual([]);
    const left = await runInDurableObject(delivery, async (_instance, state) => ({
      keys: [...(await state.storage.list()).keys()],
      tables: state.storage.sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'delivery_record'")
        .toArray(),
      alarm: await state.storage.getAlarm(),
    }));
    expect(left).toEqual({ keys: [], tables: [], alarm: null });
    // The record's table is made by the handoff.
    const handed = await handedOver({ queue: "RESULTS" });
    const tables = await runInDurableObject(handed, (_instance, state) =>
      state.storage.sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'delivery_record'")
        .toArray(),
    );
    expect(tables).toEqual([{ name: "delivery_record" }]);
  });

  it("logs an attempt whose record row is missing as failed and re-arms the alarm", async () => {
    installDeliveryFetchForTests(async () => new Response(null, { status: 200 }));
    const secretEncrypted = await encryptSecret(
      workerEnv,
      webhookSecretContext("default", "deliverer", "onSuccess"),
      SECRET,
    );
    const delivery = await handedOver({ webhook: { url: "https://receiver.example/h", secretEncrypted } });
    await runInDurableObject(delivery, (_instance, state) => {
      state.storage.sql.exec("DELETE FROM delivery_record");
    });
    await attemptsMade(delivery, 1);
    const [logged] = await delivery.view();
    expect(logged?.state).toBe("pending");
    expect(logged?.attempts[0]?.error).toContain("end record is missing");
    const alarm = await runInDurableObject(delivery, (_instance, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
  });

  it(`fails a queue delivery at once when its record is over ${MAX_QUEUE_MESSAGE_BYTES} bytes, sending nothing`, async () => {
    const queue = workerEnv.DESTINATION_QUEUE_RESULTS;
    const originalSend = queue.send.bind(queue);
    let sends = 0;
    queue.send = async (message: unknown, options?: QueueSendOptions) => {
      sends += 1;
      return originalSend(message, options);
    };
    try {
      const big = JSON.stringify({ requestId: "r", result: "x".repeat(MAX_QUEUE_MESSAGE_BYTES) });
      const delivery = await handedOver({ queue: "RESULTS" }, big);
      await attemptsMade(delivery, 1);
      const [logged] = await delivery.view();
      expect(logged).toMatchObject({ destination: "queue", state: "failed", attemptCount: 1, nextAttemptAt: null });
      expect(logged?.attempts[0]?.error).toContain(`over the queue message limit of ${MAX_QUEUE_MESSAGE_BYTES} bytes`);
      expect(sends).toBe(0);
      // Just under the limit is sent.
      const fits = JSON.stringify({ requestId: "r", result: "x".repeat(MAX_QUEUE_MESSAGE_BYTES - 200) });
      const small = await handedOver({ queue: "RESULTS" }, fits);
      await attemptsMade(small, 1);
      expect((await small.view())[0]?.state).toBe("delivered");
      expect(sends).toBe(1);
    } finally {
      queue.send = originalSend;
    }
  });
});

describe("MASTER_KEY rotation of webhook secrets", () => {
  const NEW_MASTER_KEY = btoa(String.fromCharCode(...Array.from({ length: 32 }, (_, i) => 150 - i)));

  async function callApp(overrides: Partial<Env>, path: string, init: RequestInit = {}): Promise<Response> {
    const context = createExecutionContext();
    const response = await createApp().fetch(new Request(`${BASE}${path}`, init), { ...env, ...overrides }, context);
    await waitOnExecutionContext(context);
    return response;
  }

  async function storedWebhook(namespace: string, name: string) {
    const row = await workerEnv.DB.prepare("SELECT destinations FROM functions WHERE namespace = ? AND name = ?")
      .bind(namespace, name)
      .first<{ destinations: string }>();
    return (JSON.parse(row?.destinations ?? "{}") as StoredDestinations).onSuccess?.webhook;
  }

  it("re-encrypts the destinations' webhook secrets under the new MASTER_KEY and counts them", async () => {
    const namespace = unique("dlrot");
    const name = unique("fn");
    expect((await createWith(namespace, name, webhook("https://receiver.example/hook"))).status).toBe(201);
    const before = await storedWebhook(namespace, name);
    const context = webhookSecretContext(namespace, name, "onSuccess");
    const rotating = { MASTER_KEY: NEW_MASTER_KEY, MASTER_KEY_PREVIOUS: workerEnv.MASTER_KEY ?? "" };
    const response = await callApp(rotating, "/v1/admin/credentials/reencrypt", { method: "POST", headers: ADMIN });
    expect(response.status).toBe(200);
    const outcome = (await response.json()) as {
      rewritten: number;
      webhookSecrets: { rewritten: number; current: number; undecryptable: string[] };
    };
    try {
      expect(outcome.webhookSecrets.rewritten).toBeGreaterThan(0);
      expect(outcome.webhookSecrets.undecryptable).not.toContain(`${namespace}/${name}/onSuccess`);
      const after = await storedWebhook(namespace, name);
      expect(after?.url).toBe("https://receiver.example/hook");
      expect(after?.secretEncrypted).not.toBe(before?.secretEncrypted);
      // With the new key alone (no previous key) the secret decrypts; the old key no longer does.
      const newOnly = { ...workerEnv, MASTER_KEY: NEW_MASTER_KEY, MASTER_KEY_PREVIOUS: undefined } as Env;
      expect(await decryptSecret(newOnly, context, after?.secretEncrypted ?? "")).toBe(SECRET);
      await expect(decryptSecret(workerEnv, context, after?.secretEncrypted ?? "")).rejects.toThrow();
      // A second run finds it current.
      const again = (await (
        await callApp(rotating, "/v1/admin/credentials/reencrypt", { method: "POST", headers: ADMIN })
      ).json()) as { webhookSecrets: { rewritten: number; current: number } };
      expect(again.webhookSecrets.rewritten).toBe(0);
      expect(again.webhookSecrets.current).toBeGreaterThan(0);
    } finally {
      // Rotate back so that the rest of this file's secrets decrypt under the configured key.
      const back = { MASTER_KEY: workerEnv.MASTER_KEY ?? "", MASTER_KEY_PREVIOUS: NEW_MASTER_KEY };
      await callApp(back, "/v1/admin/credentials/reencrypt", { method: "POST", headers: ADMIN });
    }
    expect(await decryptSecret(workerEnv, context, (await storedWebhook(namespace, name))?.secretEncrypted ?? "")).toBe(
      SECRET,
    );
  });
});
