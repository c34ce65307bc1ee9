import type { OpenAPIHono } from "@hono/zod-openapi";
import { Scalar } from "@scalar/hono-api-reference";
import { Hono } from "hono";
import { PlatformError } from "../shared/errors";

/** Path of the OpenAPI 3.1 document. */
export const OPENAPI_PATH = "/openapi.json";
/** Path of the interactive API reference. */
export const DOCS_PATH = "/docs";
/** Path the reference page loads Scalar's browser bundle from (served here, never from a CDN). */
export const DOCS_SCRIPT_PATH = "/docs/scalar.js";
/**
 * The bundle's file in the ASSETS static assets (wrangler.toml's [assets] directory, public/):
 * @scalar/api-reference's dist/browser/standalone.js, which defines `window.Scalar`, copied there
 * by scripts/vendor-assets.mjs.
 */
const BUNDLE_ASSET = "/vendor/scalar/standalone.js";

/**
 * The reference page's policy: its script, styles, images and requests from this origin only
 * (Scalar's bundle injects inline styles and a bootstrap script), and no framing.
 */
export const DOCS_CONTENT_SECURITY_POLICY =
  "default-src 'self'; connect-src 'self'; script-src 'self' 'unsafe-inline'; " +
  "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; frame-ancestors 'none'";
/** Most origins whose document an isolate keeps (a Worker answers on a few hostnames). */
const MAX_CACHED_DOCUMENTS = 8;
const documents = new Map<string, ReturnType<OpenAPIHono["getOpenAPI31Document"]>>();

/** The bindings the documentation routes read: the static assets holding Scalar's bundle, when bound. */
type DocsEnv = { Bindings: Env & { ASSETS?: Fetcher } };

/** The document's fixed parts: what the API is, how it authenticates, and its tags. */
function documentConfig(origin: string): Parameters<OpenAPIHono["getOpenAPI31Document"]>[0] {
  return {
    openapi: "3.1.0",
    info: {
      title: "Async Functions Platform API",
      version: "1",
      description:
        "Asynchronous, long-running function execution: functions, async invocations, events and their logs " +
        "(REST), plus the Tencent Cloud API 3.0 (SCF) endpoint. Every route but /healthz, /openapi.json and " +
        "/docs needs credentials: `Authorization: Bearer SecretId:SecretKey`, or a TC3-HMAC-SHA256 signature.",
    },
    servers: [{ url: origin, description: "This platform" }],
    security: [{ bearer: [] }, { tc3: [] }],
  };
}

/** Registers the two ways a request authenticates, as the document's security schemes. */
export function registerSecuritySchemes(registry: OpenAPIHono["openAPIRegistry"]): void {
  registry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "SecretId:SecretKey",
    description: "`Authorization: Bearer <SecretId>:<SecretKey>` (over HTTPS only).",
  });
  registry.registerComponent("securitySchemes", "tc3", {
    type: "apiKey",
    in: "header",
    name: "Authorization",
    description:
      "Tencent Cloud API 3.0 signature: `Authorization: TC3-HMAC-SHA256 Credential=<SecretId>/<date>/scf/tc3_request, " +
      "SignedHeaders=..., Signature=...` with `X-TC-Timestamp`. A signature that changes something is accepted once.",
  });
}

/**
 * The documentation routes, without credentials: the OpenAPI 3.1 document generated from `api`'s
 * route definitions, Scalar's interactive reference of it, and Scalar's browser bundle, served
 * from the Worker's static assets so the page works with no access to the Internet.
 */
export function docsRoutes(api: Pick<OpenAPIHono, "getOpenAPI31Document">): Hono<DocsEnv> {
  return new Hono<DocsEnv>()
    .get(OPENAPI_PATH, (c) => {
      // Built once per origin and isolate: the routes do not change while the Worker runs.
      const origin = new URL(c.req.url).origin;
      let document = documents.get(origin);
      if (!document) {
        document = api.getOpenAPI31Document(documentConfig(origin));
        if (documents.size < MAX_CACHED_DOCUMENTS) documents.set(origin, document);
      }
      return c.json(document);
    })
    .get(
      DOCS_PATH,
      // The page may load and send nothing outside this origin (credentials typed into its console
      // stay here), and no other site may frame it.
      async (c, next) => {
        await next();
        c.header("content-security-policy", DOCS_CONTENT_SECURITY_POLICY);
        c.header("x-frame-options", "DENY");
      },
      // Nothing from outside the platform: the bundle is ours, the default web fonts and telemetry are off.
      Scalar({
        url: OPENAPI_PATH,
        cdn: DOCS_SCRIPT_PATH,
        pageTitle: "Async Functions Platform API reference",
        withDefaultFonts: false,
        telemetry: false,
      }),
    )
    .get(DOCS_SCRIPT_PATH, async (c) => {
      if (!c.env.ASSETS) {
        throw new PlatformError(
          "UNAVAILABLE",
          "the API reference's script is not deployed (no ASSETS static assets: run `npm install` or scripts/vendor-assets.mjs)",
        );
      }
      const asset = await c.env.ASSETS.fetch(new URL(BUNDLE_ASSET, c.req.url));
      if (!asset.ok) throw new PlatformError("UNAVAILABLE", `the API reference's script answered ${asset.status}`);
      return new Response(asset.body, {
        headers: {
          "content-type": "text/javascript; charset=utf-8",
          "cache-control": "public, max-age=3600",
        },
      });
    });
}
