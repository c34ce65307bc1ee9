import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../worker/api/app";
import { referenceSignedHeaders } from "../helpers/tc3-reference";
import { zipBase64 } from "../helpers/zip";

const ROOT = { authorization: "Bearer AKIDintegration:integration-secret-key-0123456789abcdef" };

async function createKey(namespaces: string[]): Promise<{ secretId: string; secretKey: string }> {
  const response = await SELF.fetch("https://platform.test/v1/admin/credentials", {
    method: "POST",
    headers: ROOT,
    body: JSON.stringify({ namespaces, description: "test" }),
  });
  expect(response.status).toBe(201);
  return (await response.json()) as { secretId: string; secretKey: string };
}

/**
 * Sends a Tencent Cloud API request signed with TC3-HMAC-SHA256 by the reference signer (written
 * from Tencent's specification, independent of the platform's verifier), then tampered as asked.
 */
async function tcCall(
  action: string,
  payload: Record<string, unknown>,
  key: { secretId: string; secretKey: string },
  tamper: { timestamp?: number; body?: string; secretKey?: string } = {},
): Promise<{ Response: Record<string, unknown> & { Error?: { Code: string; Message: string } } }> {
  const body = JSON.stringify(payload);
  const timestamp = tamper.timestamp ?? Math.floor(Date.now() / 1000);
  const headers = await referenceSignedHeaders({
    secretId: key.secretId,
    secretKey: tamper.secretKey ?? key.secretKey,
    timestamp,
    host: "platform.test",
    action,
    body,
  });
  const response = await SELF.fetch("https://platform.test/", { method: "POST", headers, body: tamper.body ?? body });
  expect(response.status).toBe(200);
  return (await response.json()) as {
    Response: Record<string, unknown> & { Error?: { Code: string; Message: string } };
  };
}

async function functionExists(namespace: string, name: string): Promise<boolean> {
  return (
    (await env.DB.prepare("SELECT 1 FROM functions WHERE namespace = ? AND name = ?").bind(namespace, name).first()) !==
    null
  );
}

describe("credentials", () => {
  it("creates a namespace-scoped pair, shows its key once, stores it encrypted, and revokes it", async () => {
    const created = await createKey(["team-a"]);
    expect(created.secretId).toMatch(/^AKID/);
    const row = await env.DB.prepare("SELECT secret_key_encrypted FROM credentials WHERE secret_id = ?")
      .bind(created.secretId)
      .first<{ secret_key_encrypted: string }>();
    expect(row?.secret_key_encrypted).toBeTruthy();
    expect(row?.secret_key_encrypted).not.toContain(created.secretKey);
    const listed = await SELF.fetch("https://platform.test/v1/admin/credentials", { headers: ROOT });
    const text = await listed.text();
    expect(text).toContain(created.secretId);
    expect(text).not.toContain(created.secretKey);
    const auth = { authorization: `Bearer ${created.secretId}:${created.secretKey}` };
    expect((await SELF.fetch("https://platform.test/v1/namespaces/team-a/functions", { headers: auth })).status).toBe(
      200,
    );
    const revoked = await SELF.fetch(`https://platform.test/v1/admin/credentials/${created.secretId}`, {
      method: "DELETE",
      headers: ROOT,
    });
    expect(revoked.status).toBe(200);
    // The isolate that revoked the key drops it from its cache at once (others within the 2 s TTL).
    expect((await SELF.fetch("https://platform.test/v1/namespaces/team-a/functions", { headers: auth })).status).toBe(
      401,
    );
  });

  it("keeps a scoped key out of other namespaces with not-found, and out of the admin API", async () => {
    const key = await createKey(["team-b"]);
    const auth = { authorization: `Bearer ${key.secretId}:${key.secretKey}` };
    const other = await SELF.fetch("https://platform.test/v1/namespaces/default/functions", { headers: auth });
    expect(other.status).toBe(404);
    const admin = await SELF.fetch("https://platform.test/v1/admin/credentials", { headers: auth });
    expect(admin.status).toBe(404);
  });
});

describe("Tencent Cloud API 3.0 signatures", () => {
  const zip = zipBase64({ "index.js": "exports.main_handler = async () => 1;" });

  it("accepts a correctly signed CreateFunction and answers in the Response envelope", async () => {
    const key = await createKey(["tc-ns"]);
    const answer = await tcCall(
      "CreateFunction",
      {
        FunctionName: "signed-fn",
        Runtime: "Nodejs22",
        Code: { ZipFile: zip },
        Namespace: "tc-ns",
        AsyncRunEnable: "TRUE",
      },
      key,
    );
    expect(answer.Response.Error).toBeUndefined();
    expect(answer.Response.RequestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await functionExists("tc-ns", "signed-fn")).toBe(true);
  });

  const refusals: [string, (key: { secretId: string; secretKey: string }) => Parameters<typeof tcCall>[3], string][] = [
    ["a wrong SecretKey", () => ({ secretKey: "not-the-key" }), "AuthFailure.SignatureFailure"],
    [
      "a timestamp 10 minutes old",
      () => ({ timestamp: Math.floor(Date.now() / 1000) - 600 }),
      "AuthFailure.SignatureExpire",
    ],
    [
      "a timestamp 10 minutes ahead",
      () => ({ timestamp: Math.floor(Date.now() / 1000) + 600 }),
      "AuthFailure.SignatureExpire",
    ],
    [
      "a body changed after signing",
      () => ({
        body: JSON.stringify({
          FunctionName: "evil-fn",
          Runtime: "Nodejs22",
          Code: { ZipFile: zip },
          Namespace: "tc-ns2",
        }),
      }),
      "AuthFailure.SignatureFailure",
    ],
  ];
  for (const [label, tamper, code] of refusals) {
    it(`refuses ${label} with ${code} and changes nothing`, async () => {
      const key = await createKey(["tc-ns2"]);
      const name = `refused-${label.length}`;
      const answer = await tcCall(
        "CreateFunction",
        { FunctionName: name, Runtime: "Nodejs22", Code: { ZipFile: zip }, Namespace: "tc-ns2" },
        key,
        tamper(key),
      );
      expect(answer.Response.Error?.Code).toBe(code);
      expect(await functionExists("tc-ns2", name)).toBe(false);
      expect(await functionExists("tc-ns2", "evil-fn")).toBe(false);
    });
  }

  it("refuses an unknown SecretId with AuthFailure.SecretIdNotFound", async () => {
    const answer = await tcCall("ListFunctions", {}, { secretId: "AKIDnosuchkey", secretKey: "whatever" });
    expect(answer.Response.Error?.Code).toBe("AuthFailure.SecretIdNotFound");
  });

  it("refuses a cross-namespace request with ResourceNotFound and changes nothing", async () => {
    const key = await createKey(["tc-ns3"]);
    const answer = await tcCall(
      "CreateFunction",
      { FunctionName: "foreign-fn", Runtime: "Nodejs22", Code: { ZipFile: zip }, Namespace: "default" },
      key,
    );
    expect(answer.Response.Error?.Code).toBe("ResourceNotFound.Namespace");
    expect(await functionExists("default", "foreign-fn")).toBe(false);
  });

  it("answers an action it does not implement with InvalidAction, not a 5xx", async () => {
    const key = await createKey(["tc-ns4"]);
    const answer = await tcCall("PutProvisionedConcurrencyConfig", { FunctionName: "x" }, key);
    expect(answer.Response.Error?.Code).toBe("InvalidAction");
  });

  it("refuses a malformed Authorization header with AuthFailure.InvalidAuthorization", async () => {
    const response = await SELF.fetch("https://platform.test/", {
      method: "POST",
      headers: {
        authorization: "TC3-HMAC-SHA256 nonsense",
        "x-tc-action": "ListFunctions",
        "x-tc-version": "2018-04-16",
      },
      body: "{}",
    });
    const body = (await response.json()) as { Response: { Error: { Code: string } } };
    expect(body.Response.Error.Code).toBe("AuthFailure.InvalidAuthorization");
  });
});

/** Routes of the API documentation (worker/api/docs.ts), served without credentials. */
const DOCUMENTATION_ROUTES = new Set(["/openapi.json", "/docs", "/docs/scalar.js"]);

describe("route table", () => {
  it("answers no route but /healthz, the API documentation and the console without credentials", async () => {
    const app = createApp();
    const routes = app.routes.filter((route) => route.method !== "ALL" || route.path === "/");
    expect(routes.length).toBeGreaterThan(15);
    for (const route of routes) {
      const path = route.path.replace(/:requestId/g, crypto.randomUUID()).replace(/:[A-Za-z]+/g, "abc-1");
      const method = route.method === "ALL" ? "POST" : route.method;
      const response = await SELF.fetch(`https://platform.test${path}`, {
        method,
        body: method === "GET" || method === "HEAD" ? null : "{}",
      });
      const label = `${method} ${route.path}`;
      if (route.path === "/healthz") {
        // It answers without asking for credentials: 200 when every check passes, 503 otherwise
        // (this pool has no containers), never 401.
        const health = (await response.json()) as { checks: Record<string, { ok: boolean }> };
        const ready = Object.values(health.checks).every((check) => check.ok);
        expect(response.status, label).toBe(ready ? 200 : 503);
      } else if (DOCUMENTATION_ROUTES.has(route.path)) {
        // The OpenAPI document and the reference page answer anyone (the page's script: 200 where the
        // static assets hold it, 503 UNAVAILABLE where they do not), never 401.
        expect(route.path === "/docs/scalar.js" ? [200, 503] : [200], label).toContain(response.status);
      } else if (route.path.startsWith("/console")) {
        // The console's page answers anyone (it asks for credentials itself), /console/ too (redirected
        // to it, the redirect followed), and its file route answers only console files (this path's
        // "*" is none): never 401.
        const expected: Record<string, number> = { "/console": 200, "/console/": 200, "/console/*": 404 };
        expect(response.status, label).toBe(expected[route.path]);
      } else if (route.path === "/") {
        const body = (await response.json()) as { Response: { Error?: { Code: string } } };
        expect(body.Response.Error?.Code, label).toMatch(/^AuthFailure/);
      } else if (route.path.startsWith("/_diagnostics")) {
        expect(response.status, label).toBe(404);
      } else if (route.path.startsWith("/url/")) {
        // Function URLs are public routes: an unknown URL id is 404 to anyone (a known one's trigger
        // asks for credentials itself under AuthType CAM, test/integration/trigger-sources.test.ts).
        expect(response.status, label).toBe(404);
      } else {
        expect(response.status, label).toBe(401);
      }
    }
  });
});
