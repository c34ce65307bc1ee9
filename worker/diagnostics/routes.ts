import { Hono } from "hono";
import { z } from "zod";
import { MAX_JSON_BODY_BYTES, readJson } from "../api/validation";
import { dispatchMessageSchema } from "../events/dispatch-message";
import { type EventIndexEntry, writeIndexEntries } from "../events/event-index";
import { schedulerName } from "../scheduling/function-scheduler-object";

/** Largest body of a redelivered dispatch message. */
const MAX_REDELIVER_BODY_BYTES = 4096;

/** Synthetic index rows to seed (benchmarks); the rows are written as given. */
const seedIndexSchema = z.object({ rows: z.array(z.custom<EventIndexEntry>((row) => typeof row === "object")) });

/**
 * Diagnostics for local end-to-end runs, mounted only when DIAGNOSTICS_ENABLED is "true"
 * (never in a deployment: wrangler.toml sets it to "false"), and then only for administrator
 * credentials (the app's gate checks both before these routes).
 */
export const diagnosticsRoutes = new Hono<{ Bindings: Env }>()
  .post("/_diagnostics/container-self-check", async (c) => {
    const name = `self-check-${crypto.randomUUID()}`;
    const instance = c.env.INSTANCE.get(c.env.INSTANCE.idFromName(name));
    return c.json(await instance.selfCheck());
  })
  .get("/_diagnostics/instances/:name", async (c) => {
    const instance = c.env.INSTANCE.get(c.env.INSTANCE.idFromName(c.req.param("name")));
    return c.json(await instance.status());
  })
  .post("/_diagnostics/instances/:name/interrupt-relay", async (c) => {
    const instance = c.env.INSTANCE.get(c.env.INSTANCE.idFromName(c.req.param("name")));
    return c.json(await instance.interruptRelay());
  })
  .get("/_diagnostics/schedulers/:namespace/:function", async (c) => {
    const name = schedulerName(c.req.param("namespace"), c.req.param("function"));
    return c.json(await c.env.SCHEDULER.get(c.env.SCHEDULER.idFromName(name)).stats());
  })
  .post("/_diagnostics/seed-index", async (c) => {
    // Writes synthetic index rows (benchmarks of list queries over a large index).
    const body = await readJson(c, seedIndexSchema, MAX_JSON_BODY_BYTES);
    await writeIndexEntries(c.env.DB, body.rows);
    return c.json({ written: body.rows.length });
  })
  .post("/_diagnostics/redeliver", async (c) => {
    // Sends a dispatch message again, as at-least-once delivery may.
    const message = await readJson(c, dispatchMessageSchema, MAX_REDELIVER_BODY_BYTES);
    await c.env.DISPATCH_QUEUE.send(message);
    return c.json({ sent: true });
  });
