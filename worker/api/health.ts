import { Hono } from "hono";

/** Readiness of one dependency. */
interface CheckResult {
  ok: boolean;
  latencyMs: number;
  detail?: string;
}

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

/** `GET /healthz`: readiness of D1, the dispatch queue binding and container support. No credentials. */
export const healthRoutes = new Hono<{ Bindings: Env }>().get("/healthz", async (c) => {
  const [database, queue, containers] = await Promise.all([
    timed(async () => {
      await c.env.DB.prepare("SELECT 1").first();
      return undefined;
    }),
    timed(async () => {
      if (typeof c.env.DISPATCH_QUEUE?.send !== "function") throw new Error("DISPATCH_QUEUE binding missing");
      return undefined;
    }),
    timed(async () => {
      const probe = c.env.INSTANCE.get(c.env.INSTANCE.idFromName(HEALTH_PROBE_INSTANCE));
      if (!(await probe.hasContainerSupport())) throw new Error("InstanceContainer has no container attached");
      return undefined;
    }),
  ]);
  const ok = database.ok && queue.ok && containers.ok;
  return c.json({ status: ok ? "ok" : "degraded", checks: { database, queue, containers } }, ok ? 200 : 503);
});
