import { OpenAPIHono } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import { type AuthVariables, requireAdmin, requireCredentials } from "../auth/credentials";
import { ERROR_STATUS, PlatformError, toPlatformError } from "../shared/errors";
import { tencentCloudRoutes } from "../tcapi/routes";
import { consoleRoutes } from "./console";
import { docsRoutes, registerSecuritySchemes } from "./docs";
import { healthRoutes } from "./health";
import { refuseInvalid } from "./openapi";
import { adminRoutes } from "./routes/admin";
import { bulkRoutes } from "./routes/bulk";
import { diagnosticsRoutes } from "./routes/diagnostics";
import { dispatchRoutes } from "./routes/dispatch";
import { eventRoutes } from "./routes/events";
import { functionUrlRoutes } from "./routes/function-urls";
import { functionRoutes } from "./routes/functions";
import { logRoutes } from "./routes/logs";
import { namespaceRoutes } from "./routes/namespaces";
import { statisticsRoutes } from "./routes/statistics";
import { triggerRoutes } from "./routes/triggers";
import { versionRoutes } from "./routes/versions";
import { registerTencentEndpoint } from "./tencent-doc";

/**
 * The platform's HTTP API. The REST routes are defined once with @hono/zod-openapi: their schemas
 * validate requests and generate the OpenAPI document served at /openapi.json (with /docs).
 */
export function createApp(): OpenAPIHono<{ Bindings: Env; Variables: AuthVariables }> {
  const app = new OpenAPIHono<{ Bindings: Env; Variables: AuthVariables }>({ defaultHook: refuseInvalid });

  app.route("/", healthRoutes);
  app.route("/", docsRoutes(app));
  app.route("/", consoleRoutes);
  // Function URLs (http triggers) are public: a CAM trigger checks credentials itself.
  app.route("/", functionUrlRoutes());

  // Diagnostics exist only when enabled, and then only for administrators.
  app.use("/_diagnostics/*", async function diagnosticsGate(c, next) {
    if (c.env.DIAGNOSTICS_ENABLED !== "true")
      throw new PlatformError("NOT_FOUND", `no route ${c.req.method} ${c.req.path}`);
    await next();
  });
  app.use("/_diagnostics/*", requireCredentials(), requireAdmin());
  app.route("/", diagnosticsRoutes);

  app.route("/", tencentCloudRoutes);
  registerTencentEndpoint(app.openAPIRegistry);
  registerSecuritySchemes(app.openAPIRegistry);

  app.use("/v1/*", requireCredentials());
  app.route("/", adminRoutes);
  app.route("/", functionRoutes);
  app.route("/", dispatchRoutes);
  app.route("/", eventRoutes);
  app.route("/", bulkRoutes);
  app.route("/", logRoutes);
  app.route("/", namespaceRoutes);
  app.route("/", statisticsRoutes);
  app.route("/", triggerRoutes);
  app.route("/", versionRoutes);

  app.notFound((c) => {
    throw new PlatformError("NOT_FOUND", `no route ${c.req.method} ${c.req.path}`);
  });

  app.onError((error, c) => {
    const requestId = c.req.header("cf-ray") ?? crypto.randomUUID();
    const known = toPlatformError(error) ?? clientErrorOf(error);
    if (known) {
      const retryAfter = known.details?.retryAfterSeconds;
      if (typeof retryAfter === "number" && Number.isFinite(retryAfter) && retryAfter >= 0) {
        c.header("Retry-After", String(Math.ceil(retryAfter)));
      }
      return c.json({ error: { code: known.code, message: known.message, requestId } }, known.status);
    }
    console.error("unhandled error", requestId, error);
    return c.json(
      { error: { code: "INTERNAL_ERROR", message: "internal error", requestId } },
      ERROR_STATUS.INTERNAL_ERROR,
    );
  });

  return app;
}

/**
 * A client error Hono or a middleware raised as an HTTPException (a body that is not JSON, a
 * content type a validator refuses, ...), as the platform's error of the same meaning: bad input
 * is a 4xx with a clear message, never a 500. Server-side statuses stay unhandled (a 500).
 */
export function clientErrorOf(error: unknown): PlatformError | undefined {
  if (!(error instanceof HTTPException) || error.status >= 500) return undefined;
  const message = error.message || `request refused (${error.status})`;
  if (error.status === 413) return new PlatformError("PAYLOAD_TOO_LARGE", message);
  if (error.status === 404) return new PlatformError("NOT_FOUND", message);
  if (error.status === 405) return new PlatformError("METHOD_NOT_ALLOWED", message);
  if (error.status === 401) return new PlatformError("UNAUTHORIZED", message);
  return new PlatformError("INVALID_PARAMETER", message);
}
