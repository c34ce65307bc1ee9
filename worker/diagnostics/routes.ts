import { Hono } from "hono";

/**
 * Diagnostics for local end-to-end runs, mounted only when DIAGNOSTICS_ENABLED is "true"
 * (never in a deployment: wrangler.toml sets it to "false").
 */
export const diagnosticsRoutes = new Hono<{ Bindings: Env }>().post("/_diagnostics/container-self-check", async (c) => {
  const name = `self-check-${crypto.randomUUID()}`;
  const instance = c.env.INSTANCE.get(c.env.INSTANCE.idFromName(name));
  return c.json(await instance.selfCheck());
});
