// Capabilities that had only integration tests, checked against the running platform: a code
// update runs the new code, the 128 KB payload bound at its exact edge, and 433/434 in Python.
import { describe, expect, inject, it } from "vitest";
import { ApiClient, TEST_CREDENTIALS } from "../helpers/api-client";
import { scfClient, sdkError } from "../helpers/scf-client";
import { pollUntil } from "../helpers/wait";
import { zipBase64 } from "../helpers/zip";

const baseUrl = inject("baseUrl");
const api = new ApiClient(baseUrl);
const NAMESPACE = "capabilities";

/** Largest async payload, as the README states it (128 KB = 131,072 bytes of JSON). */
const PAYLOAD_LIMIT_BYTES = 128 * 1024;

/** A Node.js handler that answers its code's version and the size of the event it received. */
function versionedHandler(version: string): string {
  return `exports.main_handler = async (event) => ({ version: ${JSON.stringify(version)}, size: JSON.stringify(event).length });`;
}

/** A JSON object of exactly `bytes` bytes: {"blob":"xxx…"}. */
function payloadOf(bytes: number): string {
  const text = JSON.stringify({ blob: "x".repeat(bytes - '{"blob":""}'.length) });
  expect(Buffer.byteLength(text)).toBe(bytes);
  return text;
}

/** The official SDK client of the suite's administrator key, pointed at the platform. */
function sdk() {
  return scfClient(baseUrl, TEST_CREDENTIALS.secretId, TEST_CREDENTIALS.secretKey);
}

describe("a code update", () => {
  it("runs the new code on the next invocation, through REST and through UpdateFunctionCode", async () => {
    const name = await api.createUniqueFunction(NAMESPACE, "update", {
      runtime: "Nodejs22",
      files: { "index.js": versionedHandler("v1") },
    });
    const first = await api.waitForEvent(await api.invoke(NAMESPACE, name, {}));
    expect(first.result).toMatchObject({ version: "v1" });

    const replaced = await api.json(`/v1/namespaces/${NAMESPACE}/functions/${name}/code`, {
      method: "PUT",
      body: JSON.stringify({ zipFile: zipBase64({ "index.js": versionedHandler("v2") }) }),
    });
    expect(replaced.status).toBe(200);
    const second = await api.waitForEvent(await api.invoke(NAMESPACE, name, {}));
    expect(second.status).toBe("FINISHED");
    expect(second.result).toMatchObject({ version: "v2" });

    await sdk().UpdateFunctionCode({
      FunctionName: name,
      Namespace: NAMESPACE,
      Handler: "index.main_handler",
      ZipFile: zipBase64({ "index.js": versionedHandler("v3") }),
    });
    const third = await api.waitForEvent(await api.invoke(NAMESPACE, name, {}));
    expect(third.status).toBe("FINISHED");
    expect(third.result).toMatchObject({ version: "v3" });
  });
});

describe("the 128 KB payload bound", () => {
  it("accepts exactly 128 KB on REST and runs it, and refuses one byte more with 413 and no event", async () => {
    const name = await api.createUniqueFunction(NAMESPACE, "payload", {
      runtime: "Nodejs22",
      files: { "index.js": versionedHandler("edge") },
    });
    const path = `/v1/namespaces/${NAMESPACE}/functions/${name}/invocations`;
    const accepted = await api.json<{ requestId: string }>(path, {
      method: "POST",
      body: payloadOf(PAYLOAD_LIMIT_BYTES),
    });
    expect(accepted.status).toBe(202);
    const ran = await api.waitForEvent(accepted.body.requestId);
    expect(ran.status).toBe("FINISHED");
    expect(ran.result).toMatchObject({ size: PAYLOAD_LIMIT_BYTES });

    const refused = await api.json<{ error: { code: string } }>(path, {
      method: "POST",
      body: payloadOf(PAYLOAD_LIMIT_BYTES + 1),
    });
    expect(refused.status).toBe(413);
    expect(refused.body.error.code).toBe("PAYLOAD_TOO_LARGE");
    const listed = await api.json<{ total: number }>(`/v1/namespaces/${NAMESPACE}/functions/${name}/events`);
    expect(listed.status).toBe(200);
    expect(listed.body.total).toBe(1);
  });

  it("accepts exactly 128 KB of ClientContext through the SDK and refuses one byte more", async () => {
    const name = await api.createUniqueFunction(NAMESPACE, "sdkpayload", {
      runtime: "Nodejs22",
      files: { "index.js": versionedHandler("edge") },
    });
    const client = sdk();
    const invoked = await client.Invoke({
      FunctionName: name,
      Namespace: NAMESPACE,
      InvocationType: "Event",
      ClientContext: payloadOf(PAYLOAD_LIMIT_BYTES),
    });
    const requestId = invoked.Result?.FunctionRequestId ?? "";
    const ran = await api.waitForEvent(requestId);
    expect(ran.status).toBe("FINISHED");
    expect(ran.result).toMatchObject({ size: PAYLOAD_LIMIT_BYTES });

    const code = await sdkError(
      client.Invoke({
        FunctionName: name,
        Namespace: NAMESPACE,
        InvocationType: "Event",
        ClientContext: payloadOf(PAYLOAD_LIMIT_BYTES + 1),
      }),
    );
    expect(code).toBe("InvalidParameter.Payload");
    const listed = await api.json<{ total: number }>(`/v1/namespaces/${NAMESPACE}/functions/${name}/events`);
    expect(listed.body.total).toBe(1);
  });
});

/** A Python handler that sleeps past any timeout, or allocates until its memory size is hit. */
const PYTHON_FAULTS = `
import time


def main_handler(event, context):
    if event.get("hog"):
        hoard = []
        while True:
            hoard.append(bytearray(8 * 1024 * 1024))
    time.sleep(event.get("sleepS", 0))
    return "woke"
`;

describe("Python handlers over their bounds", () => {
  it("fail with 433 past the timeout and 434 past the memory size", async () => {
    const name = await api.createUniqueFunction(NAMESPACE, "pyfaults", {
      runtime: "Python3.11",
      files: { "index.py": PYTHON_FAULTS },
      timeout: 2,
      memorySize: 64,
    });
    const timedOut = await api.waitForEvent(await api.invoke(NAMESPACE, name, { sleepS: 30 }), undefined, 60_000);
    expect(timedOut.status).toBe("FAILED");
    expect(timedOut.statusCode).toBe(433);
    const hog = await api.waitForEvent(await api.invoke(NAMESPACE, name, { hog: true }), undefined, 60_000);
    expect(hog.status).toBe("FAILED");
    expect(hog.statusCode).toBe(434);
    expect(hog.errorMessage).toMatch(/Memory limit exceeded/);
  });
});

/** The README's bound on a revocation reaching every isolate (the credential cache's TTL), with slack. */
const REVOCATION_BOUND_MS = 2_000 + 8_000;

describe("key revocation", () => {
  it("refuses a revoked key on the running platform once its cache entry expires, and for good", async () => {
    const created = await api.json<{ secretId: string; secretKey: string }>("/v1/admin/credentials", {
      method: "POST",
      body: JSON.stringify({ namespaces: [NAMESPACE], description: "revocation e2e" }),
    });
    expect(created.status).toBe(201);
    const tenant = new ApiClient(baseUrl, created.body);
    const list = () => tenant.request(`/v1/namespaces/${NAMESPACE}/functions`).then((response) => response.status);
    expect(await list()).toBe(200);
    const revoked = await api.request(`/v1/admin/credentials/${created.body.secretId}`, { method: "DELETE" });
    expect(revoked.status).toBe(200);
    const revokedAt = Date.now();
    expect(await pollUntil(list, (status) => status === 401, REVOCATION_BOUND_MS)).toBe(401);
    expect(Date.now() - revokedAt).toBeLessThanOrEqual(REVOCATION_BOUND_MS);
    for (let i = 0; i < 5; i++) expect(await list()).toBe(401);
  });
});
