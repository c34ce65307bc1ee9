// The OpenAPI document (/openapi.json) and the interactive reference (/docs): served without
// credentials and complete: every route the app mounts is in the document. That the document
// validates as OpenAPI 3.1 is checked in Node (test/e2e/api-docs.e2e.test.ts): the validator
// reads its schemas from disk and compiles them to functions, which workerd does not allow.
import { env, SELF } from "cloudflare:test";
import { HTTPException } from "hono/http-exception";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { clientErrorOf, createApp } from "../../worker/api/app";
import { DOCUMENTED_TENCENT_ACTIONS, TENCENT_README_SECTION } from "../../worker/api/tencent-doc";
import { findAction } from "../../worker/tcapi/actions";
import { TENCENT_ACTIONS, UNKNOWN_ACTIONS } from "./fuzz-tencent";

const ORIGIN = "https://platform.test";
/** The development (administrator) pair of vitest.config.ts. */
const ADMIN = { authorization: "Bearer AKIDintegration:integration-secret-key-0123456789abcdef" };

/**
 * Mounted routes the document leaves out, each with its reason:
 * - the documentation itself (the document, the reference page and its script);
 * - the web console's page and files (worker/api/console.ts): a page for people, not an API;
 * - the diagnostics routes: they answer only where DIAGNOSTICS_ENABLED is "true" (local end-to-end
 *   runs, never a deployment: wrangler.toml sets "false"), so a deployment's document lists none;
 * - the administrator routes (credentials management): answered 404 to anyone but an
 *   administrator, so the public document does not reveal them either.
 */
const UNDOCUMENTED = [
  /^get \/openapi\.json$/,
  /^get \/docs$/,
  /^get \/docs\/scalar\.js$/,
  /^get \/console(\/|\/\*)?$/,
  /^[a-z]+ \/_diagnostics\//,
  /^[a-z]+ \/v1\/admin\//,
];

interface Document {
  openapi: string;
  servers: { url: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes: Record<string, { type: string; scheme?: string; name?: string }> };
}
interface Operation {
  summary?: string;
  description?: string;
  security?: unknown[];
  parameters?: { name: string; in: string; schema: { enum?: string[] } }[];
  responses: Record<string, unknown>;
}

async function fetchDocument(): Promise<Document> {
  const response = await SELF.fetch(`${ORIGIN}/openapi.json`);
  expect(response.status).toBe(200);
  return (await response.json()) as Document;
}

/** Every route the app mounts, as "method /path/{param}" (Hono's middleware entries, method ALL, left out). */
function mountedRoutes(): string[] {
  const labels = createApp()
    .routes.filter((route) => route.method !== "ALL" || route.path === "/")
    .map((route) => {
      const method = route.method === "ALL" ? "post" : route.method.toLowerCase();
      return `${method} ${route.path.replace(/:([A-Za-z]+)/g, "{$1}")}`;
    });
  return [...new Set(labels)];
}

describe("GET /openapi.json", () => {
  it("answers without credentials with an OpenAPI 3.1 document naming this platform as its server", async () => {
    const document = await fetchDocument();
    expect(document.openapi).toBe("3.1.0");
    expect(document.servers[0]?.url).toBe(ORIGIN);
  });

  it("describes both ways to authenticate: the bearer pair and the TC3-HMAC-SHA256 signature", async () => {
    const { components } = await fetchDocument();
    expect(components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
    expect(components.securitySchemes.tc3).toMatchObject({ type: "apiKey", name: "Authorization" });
  });

  it("documents every route the app mounts, but the documentation, diagnostics and administrator routes", async () => {
    const { paths } = await fetchDocument();
    const documented = Object.entries(paths).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method} ${path}`),
    );
    const mounted = mountedRoutes();
    expect(mounted.length).toBeGreaterThan(15);
    const missing = mounted.filter((route) => !documented.includes(route) && !UNDOCUMENTED.some((r) => r.test(route)));
    expect(missing).toEqual([]);
    // Nothing is documented that the app does not serve, and the allow-list names only mounted routes.
    expect(documented.filter((route) => !mounted.includes(route))).toEqual([]);
    for (const pattern of UNDOCUMENTED)
      expect(
        mounted.some((route) => pattern.test(route)),
        String(pattern),
      ).toBe(true);
  });

  it("describes the error responses with the platform's error body", async () => {
    const { paths } = await fetchDocument();
    const operation = paths["/v1/namespaces/{namespace}/functions"]?.get;
    expect(Object.keys(operation?.responses ?? {})).toEqual(expect.arrayContaining(["200", "400", "401", "404"]));
    expect(JSON.stringify(operation?.responses["400"])).toContain("#/components/schemas/Error");
    expect(paths["/healthz"]?.get?.security).toEqual([]);
  });

  it("documents the Tencent Cloud API endpoint as one operation with every implemented action", async () => {
    const { paths } = await fetchDocument();
    const operation = paths["/"]?.post;
    const action = operation?.parameters?.find((parameter) => parameter.name === "x-tc-action");
    expect(action?.in).toBe("header");
    expect([...(action?.schema.enum ?? [])].sort()).toEqual([...TENCENT_ACTIONS].sort());
    expect(operation?.description).toContain(TENCENT_README_SECTION);
    for (const name of DOCUMENTED_TENCENT_ACTIONS) expect(findAction(name), name).toBeDefined();
    for (const name of UNKNOWN_ACTIONS) expect(findAction(name), name).toBeUndefined();
  });
});

describe("GET /docs", () => {
  it("answers without credentials with Scalar's reference of /openapi.json, its script from this platform", async () => {
    const response = await SELF.fetch(`${ORIGIN}/docs`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/html");
    const html = await response.text();
    expect(html).toContain('<script src="/docs/scalar.js"');
    expect(html).toContain('"url": "/openapi.json"');
    expect(html).not.toMatch(/https?:\/\//);
  });

  it("forbids the page to load or send anything outside this origin, and to be framed", async () => {
    const response = await SELF.fetch(`${ORIGIN}/docs`);
    expect(response.status).toBe(200);
    const policy = response.headers.get("content-security-policy") ?? "";
    expect(policy).toContain("default-src 'self'");
    expect(policy).toContain("connect-src 'self'");
    expect(policy).toContain("frame-ancestors 'none'");
    expect(policy).not.toMatch(/https?:|\*/);
    expect(response.headers.get("x-frame-options")).toBe("DENY");
  });

  it.skipIf(!("ASSETS" in env))("serves Scalar's browser bundle from the static assets", async () => {
    const response = await SELF.fetch(`${ORIGIN}/docs/scalar.js`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("javascript");
    expect(await response.text()).toContain("createApiReference");
  });
});

describe("validation by the routes' schemas", () => {
  it("refuses a malformed query with INVALID_PARAMETER naming the field", async () => {
    const response = await SELF.fetch(`${ORIGIN}/v1/namespaces/default/functions?limit=1000`, { headers: ADMIN });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("INVALID_PARAMETER");
    expect(body.error.message).toMatch(/^limit: /);
  });

  it("reads the first value of a query parameter given twice", async () => {
    const response = await SELF.fetch(`${ORIGIN}/v1/namespaces/default/functions?limit=2&limit=1000`, {
      headers: ADMIN,
    });
    expect(response.status).toBe(200);
  });

  it("names a malformed path parameter by its rule, as one value", async () => {
    const response = await SELF.fetch(`${ORIGIN}/v1/namespaces/default/functions/-bad-`, { headers: ADMIN });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error).toMatchObject({ code: "INVALID_PARAMETER" });
    expect(body.error.message).toMatch(/^function name: /);
  });

  it("checks the path before the query: a malformed namespace wins over a malformed query", async () => {
    const response = await SELF.fetch(`${ORIGIN}/v1/namespaces/bad!ns/functions?limit=1000`, { headers: ADMIN });
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.message).toMatch(/^namespace: /);
  });
});

describe("request bodies and client errors", () => {
  it("declares no request body as a zod schema, so no route parses a body before its bounded reader", () => {
    // A zod body schema makes @hono/zod-openapi read the whole body with c.req.json() (no size
    // limit) before the route's own streaming reader: every body is documented as a component.
    // (Hidden routes, the administrator's, are not in the registry; they read their bodies with
    // readJson all the same.)
    const zodBodies: string[] = [];
    for (const definition of createApp().openAPIRegistry.definitions) {
      if (definition.type !== "route") continue;
      const content = definition.route.request?.body?.content ?? {};
      for (const [mediaType, media] of Object.entries(content)) {
        const schema = media && "schema" in media ? media.schema : undefined;
        if (schema instanceof z.ZodType)
          zodBodies.push(`${definition.route.method} ${definition.route.path} ${mediaType}`);
      }
    }
    expect(zodBodies).toEqual([]);
  });

  it("answers a client error raised as an HTTPException with the platform's 4xx, and leaves server errors alone", () => {
    expect(clientErrorOf(new HTTPException(415, { message: "unsupported content type" }))).toMatchObject({
      code: "INVALID_PARAMETER",
      status: 400,
      message: "unsupported content type",
    });
    expect(clientErrorOf(new HTTPException(400))).toMatchObject({ code: "INVALID_PARAMETER", status: 400 });
    expect(clientErrorOf(new HTTPException(413))).toMatchObject({ code: "PAYLOAD_TOO_LARGE", status: 413 });
    expect(clientErrorOf(new HTTPException(500))).toBeUndefined();
    expect(clientErrorOf(new Error("boom"))).toBeUndefined();
  });

  it("keeps the administrator routes out of the public document", async () => {
    const { paths } = await fetchDocument();
    expect(Object.keys(paths).filter((path) => path.startsWith("/v1/admin"))).toEqual([]);
  });
});
