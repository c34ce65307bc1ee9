import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { devCredentialProblem } from "../auth/credential-store";
import { authenticate, restOperation } from "../auth/credentials";
import { instanceStub } from "../shared/objects";
import { readRequestBody } from "../shared/validation";
import { jsonResponse } from "./openapi";

/** Readiness of one dependency, with details (administrators only). */
interface CheckResult {
  ok: boolean;
  latencyMs: number;
  detail?: string;
}

/** Largest body /healthz reads (only to check a signature over it; a GET has none). */
const MAX_HEALTH_BODY_BYTES = 1024;

async function timed(check: () => Promise<string | undefined>): Promise<CheckResult> {
  const startedAt = Date.now();
  try {
    const detail = await check();
    return { ok: true, latencyMs: Date.now() - startedAt, ...(detail ? { detail } : {}) };
  } catch (error) {
    return {
      ok: false,
      latencyMs: Date.now() - startedAt,
      detail: error instanceof Error ? error.message : String(error),
    };
  }
}

/** Object name of the instance used only to ask whether containers are available. */
const HEALTH_PROBE_INSTANCE = "health-probe";

/** True when the request carries valid administrator credentials (never an error: health answers anyone). */
async function isAdministrator(env: Env, request: Parameters<typeof readRequestBody>[0]): Promise<boolean> {
  if (!request.raw.headers.has("authorization")) return false;
  try {
    const result = await authenticate(
      env,
      request.raw,
      () => readRequestBody(request, MAX_HEALTH_BODY_BYTES),
      restOperation(request.raw),
    );
    return result.ok && result.principal.admin;
  } catch {
    return false;
  }
}

/** One check in the answer: with administrator credentials, its latency and detail too. */
const checkSchema = z.object({
  ok: z.boolean(),
  latencyMs: z.number().optional().openapi({ description: "Administrators only" }),
  detail: z.string().optional().openapi({ description: "Administrators only" }),
});

/** The readiness answer. */
const healthSchema = z
  .object({
    status: z.enum(["ok", "degraded"]),
    checks: z.object({ database: checkSchema, queue: checkSchema, containers: checkSchema, credentials: checkSchema }),
  })
  .openapi("Health");

const health = createRoute({
  method: "get",
  path: "/healthz",
  tags: ["Health"],
  summary: "Readiness of the platform's dependencies",
  description:
    "No credentials needed; without administrator credentials each check says only ok or not ok (no error text, no timings).",
  security: [],
  responses: {
    200: jsonResponse("Every check passed", healthSchema),
    503: jsonResponse("Some check failed", healthSchema),
  },
});

/**
 * `GET /healthz`: readiness of D1, the dispatch queue binding, container support and the
 * development credentials. No credentials needed; without administrator credentials each check
 * says only ok or not ok (no error text, no timings).
 */
export const healthRoutes = new OpenAPIHono<{ Bindings: Env }>().openapi(health, async (c) => {
  const [database, queue, containers, credentials] = await Promise.all([
    timed(async () => {
      await c.env.DB.prepare("SELECT 1").first();
      return undefined;
    }),
    timed(async () => {
      if (typeof c.env.DISPATCH_QUEUE?.send !== "function") throw new Error("DISPATCH_QUEUE binding missing");
      return undefined;
    }),
    timed(async () => {
      const probe = instanceStub(c.env, HEALTH_PROBE_INSTANCE);
      if (!(await probe.hasContainerSupport())) throw new Error("InstanceContainer has no container attached");
      return undefined;
    }),
    timed(async () => {
      const problem = devCredentialProblem(c.env);
      if (problem) throw new Error(problem);
      return undefined;
    }),
  ]);
  const checks = { database, queue, containers, credentials };
  const ok = Object.values(checks).every((check) => check.ok);
  const shown = (await isAdministrator(c.env, c.req))
    ? checks
    : {
        database: { ok: database.ok },
        queue: { ok: queue.ok },
        containers: { ok: containers.ok },
        credentials: { ok: credentials.ok },
      };
  if (ok) return c.json({ status: "ok" as const, checks: shown }, 200);
  return c.json({ status: "degraded" as const, checks: shown }, 503);
});
