import { Hono } from "hono";
import { devCredentialProblem } from "../auth/credential-store";
import { authenticate, restOperation } from "../auth/credentials";
import { instanceStub } from "../shared/objects";
import { readRequestBody } from "../shared/validation";

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

/**
 * `GET /healthz`: readiness of D1, the dispatch queue binding, container support and the
 * development credentials. No credentials needed; without administrator credentials each check
 * says only ok or not ok (no error text, no timings).
 */
export const healthRoutes = new Hono<{ Bindings: Env }>().get("/healthz", async (c) => {
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
  const status = ok ? 200 : 503;
  const verdict = ok ? "ok" : "degraded";
  if (await isAdministrator(c.env, c.req)) return c.json({ status: verdict, checks }, status);
  const summary = Object.fromEntries(Object.entries(checks).map(([name, check]) => [name, { ok: check.ok }]));
  return c.json({ status: verdict, checks: summary }, status);
});
