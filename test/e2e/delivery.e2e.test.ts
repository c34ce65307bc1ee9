// Result delivery on the running platform with real containers (issue 14): a function with an
// onSuccess webhook FINISHES, and a real HTTP receiver on 127.0.0.1 that checks every request's
// signature with the function's secret answers 500 twice and 200 the third time. The receiver sees
// one delivery acknowledged after 3 attempts with the same deliveryId, and the delivery log says so.
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient } from "../helpers/api-client";
import { pollUntil } from "../helpers/wait";

const api = new ApiClient(inject("baseUrl"));
const NAMESPACE = "default";
const SECRET = "e2e-webhook-secret-0123456789";

interface Received {
  deliveryId: string | undefined;
  timestamp: number;
  signatureValid: boolean;
  body: Record<string, unknown>;
  answered: number;
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.on("error", reject);
  });
}

/** The receiver's check: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>, compared in constant time. */
function signatureIsValid(secret: string, timestamp: string, body: string, header: string | undefined): boolean {
  const expected = `v1=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
  const given = Buffer.from(header ?? "");
  return given.length === expected.length && timingSafeEqual(given, Buffer.from(expected));
}

describe("result delivery to a webhook", () => {
  let server: Server;
  let url: string;
  const received: Received[] = [];

  beforeAll(async () => {
    server = createServer(async (request, response) => {
      const body = await readBody(request);
      const timestamp = String(request.headers["afp-timestamp"] ?? "");
      const answered = received.length < 2 ? 500 : 200;
      received.push({
        deliveryId: request.headers["afp-delivery-id"] as string | undefined,
        timestamp: Number(timestamp),
        signatureValid: signatureIsValid(SECRET, timestamp, body, request.headers["afp-signature"] as string),
        body: JSON.parse(body) as Record<string, unknown>,
        answered,
      });
      response.writeHead(answered, { "content-type": "text/plain" }).end(answered === 200 ? "ok" : "try again");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it("delivers a FINISHED event's record once acknowledged: 3 signed attempts, same deliveryId, then delivered", async () => {
    const name = await api.createUniqueFunction(NAMESPACE, "delivery", {
      runtime: "Nodejs22",
      handler: "index.main_handler",
      files: { "index.js": "exports.main_handler = async (event) => ({ doubled: event.n * 2 });" },
      timeout: 30,
      destinations: { onSuccess: { webhook: { url, secret: SECRET } } },
    });
    const fn = await api.json<{ destinations: { onSuccess: { webhook: { url: string; secret: string } } } }>(
      `/v1/namespaces/${NAMESPACE}/functions/${name}`,
    );
    expect(fn.body.destinations.onSuccess.webhook).toMatchObject({ url, secret: "***" });
    expect(JSON.stringify(fn.body)).not.toContain(SECRET);

    const requestId = await api.invoke(NAMESPACE, name, { n: 21 });
    const event = await api.waitForEvent(requestId);
    expect(event.status).toBe("FINISHED");

    await pollUntil(
      async () => received.length,
      (count) => count >= 3,
      60_000,
    );
    // Nothing more comes once the receiver acknowledged.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(received.map((request) => request.answered)).toEqual([500, 500, 200]);
    expect(received.every((request) => request.signatureValid)).toBe(true);
    const ids = new Set(received.map((request) => request.deliveryId));
    expect(ids.size).toBe(1);
    const [deliveryId] = [...ids];
    expect(deliveryId).toMatch(/^[0-9a-f-]{36}$/);
    for (let i = 1; i < received.length; i += 1) {
      expect(received[i]?.timestamp).toBeGreaterThan(received[i - 1]?.timestamp ?? Number.POSITIVE_INFINITY);
    }
    const record = received[2]?.body ?? {};
    expect(record).toMatchObject({
      type: "event.finished",
      deliveryId,
      requestId,
      namespace: NAMESPACE,
      functionName: name,
      status: "FINISHED",
      statusCode: 200,
      result: { doubled: 42 },
      errorMessage: null,
      invokedAt: event.invokedAt,
      endedAt: event.endedAt,
    });

    const deliveries = await api.json<{
      deliveries: {
        destination: string;
        kind: string;
        deliveryId: string;
        state: string;
        attempts: { attempt: number; statusCode: number | null; error: string | null }[];
        nextAttemptAt: string | null;
      }[];
    }>(`/v1/events/${requestId}/deliveries`);
    expect(deliveries.status).toBe(200);
    expect(deliveries.body.deliveries).toHaveLength(1);
    const delivery = deliveries.body.deliveries[0];
    expect(delivery).toMatchObject({ destination: "webhook", kind: "onSuccess", deliveryId, state: "delivered" });
    expect(delivery?.nextAttemptAt).toBeNull();
    expect(delivery?.attempts.map((attempt) => [attempt.attempt, attempt.statusCode])).toEqual([
      [1, 500],
      [2, 500],
      [3, 200],
    ]);
    expect(delivery?.attempts[2]?.error).toBeNull();
  });
});

describe("result delivery to a queue", () => {
  it("sends a FAILED event's record to the DESTINATION_QUEUE_RESULTS binding, logged as delivered", async () => {
    const name = await api.createUniqueFunction(NAMESPACE, "delivery-queue", {
      runtime: "Nodejs22",
      handler: "index.main_handler",
      files: { "index.js": 'exports.main_handler = async () => { throw new Error("transcode failed"); };' },
      timeout: 30,
      destinations: { onFailure: { queue: "RESULTS" } },
    });
    const requestId = await api.invoke(NAMESPACE, name, {});
    const event = await api.waitForEvent(requestId);
    expect(event.status).toBe("FAILED");

    type Deliveries = {
      deliveries: { destination: string; kind: string; state: string; attempts: { error: string | null }[] }[];
    };
    const { body } = await pollUntil(
      () => api.json<Deliveries>(`/v1/events/${requestId}/deliveries`),
      (answer) => answer.body.deliveries.some((delivery) => delivery.state !== "pending"),
      30_000,
    );
    expect(body.deliveries).toHaveLength(1);
    expect(body.deliveries[0]).toMatchObject({ destination: "queue", kind: "onFailure", state: "delivered" });
    expect(body.deliveries[0]?.attempts).toHaveLength(1);
    expect(body.deliveries[0]?.attempts[0]?.error).toBeNull();
  });

  it("refuses a queue destination whose binding does not exist, and changes nothing", async () => {
    const name = await api.createUniqueFunction(NAMESPACE, "delivery-noqueue", {
      runtime: "Nodejs22",
      handler: "index.main_handler",
      files: { "index.js": "exports.main_handler = async () => 1;" },
    });
    const path = `/v1/namespaces/${NAMESPACE}/functions/${name}`;
    const before = await api.json<Record<string, unknown>>(path);
    const response = await api.json<{ error: { code: string; message: string } }>(path, {
      method: "PATCH",
      body: JSON.stringify({ destinations: { onFailure: { queue: "NO_SUCH_QUEUE" } } }),
    });
    expect(response.status).toBe(400);
    expect(response.body.error.message).toContain("DESTINATION_QUEUE_NO_SUCH_QUEUE");
    expect((await api.json<Record<string, unknown>>(path)).body).toEqual(before.body);
  });
});
