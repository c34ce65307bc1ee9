import { Hono } from "hono";
import { z } from "zod";
import { type EventIndexEntry, writeIndexEntries } from "../../events/event-index";
import type { HoldPhase } from "../../instances/instance-container";
import { dispatchConsumerStats } from "../../scheduling/dispatch-consumer";
import { unwrap } from "../../shared/errors";
import { eventStub, instanceStub, schedulerName, schedulerStub } from "../../shared/objects";
import { MAX_JSON_BODY_BYTES, parseWith, readJson } from "../../shared/validation";

/** Largest body of a redeliver request (a RequestId). */
const MAX_REDELIVER_BODY_BYTES = 1024;
/** A redeliver request: the event whose own dispatch message is sent again. */
const redeliverSchema = z.strictObject({ requestId: z.uuid("requestId must be a UUID") });
/** What the malformed-message route enqueues: a dispatch message whose RequestId is no UUID. */
const MALFORMED_DISPATCH_MESSAGE = { requestId: "not-a-uuid", injectedBy: "/_diagnostics/dispatch-queue/malformed" };

/** Largest body of a hold request (a RequestId and a phase). */
const MAX_HOLD_BODY_BYTES = 1024;
/** The RequestId a hold names (the platform's RequestIds are UUIDs). */
const holdRequestIdSchema = z.uuid("requestId must be a UUID");
/** A diagnostics hold to set: which execution, and where it pauses (see HoldPhase). */
const holdSchema = z.strictObject({
  requestId: holdRequestIdSchema,
  phase: z.enum(["starting", "ending"] satisfies HoldPhase[]),
});

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
    const id = c.env.INSTANCE.idFromName(name);
    // The Durable Object id names the check's container in Docker: a test confirms it there.
    return c.json({ ...(await c.env.INSTANCE.get(id).selfCheck()), durableObjectId: id.toString() });
  })
  .get("/_diagnostics/events/:requestId/log-stats", async (c) => {
    // Where an event's log is stored: its R2 segments and its recent lines (the bench's R2 figure).
    const requestId = parseWith(holdRequestIdSchema, c.req.param("requestId"));
    return c.json(unwrap(await eventStub(c.env, requestId).logStats()));
  })
  .get("/_diagnostics/instances/:name", async (c) => {
    const instance = instanceStub(c.env, c.req.param("name"));
    return c.json(await instance.status());
  })
  .post("/_diagnostics/instances/:name/interrupt-relay", async (c) => {
    const instance = instanceStub(c.env, c.req.param("name"));
    return c.json(await instance.interruptRelay());
  })
  .post("/_diagnostics/instances/:name/holds", async (c) => {
    // Pauses the named event's execution on this instance at a phase until released (terminate races).
    const hold = await readJson(c, holdSchema, MAX_HOLD_BODY_BYTES);
    const instance = instanceStub(c.env, c.req.param("name"));
    return c.json(await instance.setHold(hold.requestId, hold.phase));
  })
  .get("/_diagnostics/instances/:name/holds/:requestId", async (c) => {
    const requestId = parseWith(holdRequestIdSchema, c.req.param("requestId"));
    const instance = instanceStub(c.env, c.req.param("name"));
    return c.json(await instance.holdStatus(requestId));
  })
  .delete("/_diagnostics/instances/:name/holds/:requestId", async (c) => {
    const requestId = parseWith(holdRequestIdSchema, c.req.param("requestId"));
    const instance = instanceStub(c.env, c.req.param("name"));
    return c.json(await instance.releaseHold(requestId));
  })
  .get("/_diagnostics/schedulers/:namespace/:function", async (c) => {
    const name = schedulerName(c.req.param("namespace"), c.req.param("function"));
    return c.json(await schedulerStub(c.env, name).stats());
  })
  .post("/_diagnostics/seed-index", async (c) => {
    // Writes synthetic index rows (benchmarks of list queries over a large index).
    const body = await readJson(c, seedIndexSchema, MAX_JSON_BODY_BYTES);
    await writeIndexEntries(c.env.DB, body.rows);
    return c.json({ written: body.rows.length });
  })
  .post("/_diagnostics/redeliver", async (c) => {
    // The event sends its own dispatch message again, as at-least-once delivery may.
    const { requestId } = await readJson(c, redeliverSchema, MAX_REDELIVER_BODY_BYTES);
    const message = unwrap(await eventStub(c.env, requestId).redispatch());
    return c.json({ sent: true, message });
  })
  .get("/_diagnostics/dispatch-consumer", (c) => {
    // This isolate's counts of malformed dispatch messages and of dead letters.
    return c.json(dispatchConsumerStats());
  })
  .post("/_diagnostics/dispatch-queue/malformed", async (c) => {
    // Puts a message that fails the dispatch schema on the dispatch queue (its consumer dead-letters it).
    await c.env.DISPATCH_QUEUE.send(MALFORMED_DISPATCH_MESSAGE);
    return c.json({ sent: true, message: MALFORMED_DISPATCH_MESSAGE });
  });
