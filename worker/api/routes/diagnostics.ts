import { Hono } from "hono";
import { z } from "zod";
import { type EventIndexEntry, writeIndexEntriesByDatabase } from "../../events/event-index";
import type { HoldPhase } from "../../instances/instance-container";
import { dispatchConsumerStats } from "../../scheduling/dispatch-consumer";
import { costCounts, installCostCounters, resetCostCounts } from "../../shared/cost-counters";
import { PlatformError, unwrap } from "../../shared/errors";
import { eventStub, instanceStub, schedulerName, schedulerStub } from "../../shared/objects";
import { MAX_JSON_BODY_BYTES, parseWith, readJson } from "../../shared/validation";
import type { R2Notification } from "../../triggers/cos";
import { isTriggerQueue } from "../../triggers/queue";
import { recentTriggerRedeliveries } from "../../triggers/source-consumer";

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

/** Largest body of a trigger-queue message request (a queue message is at most 128 KB). */
const MAX_TRIGGER_MESSAGE_BODY_BYTES = 128 * 1024;
/** A message to send to a trigger queue: any JSON body (a string is sent as text). */
const triggerMessageSchema = z.strictObject({ body: z.unknown() });
/** Largest body of an R2 object request (the object's text content and its key). */
const MAX_R2_OBJECT_BODY_BYTES = 1024 * 1024;
/** The bucket of the UPLOADS binding (wrangler.toml), as its notifications name it. */
const UPLOADS_BUCKET_NAME = "afp-uploads";
/** The account local notifications name (R2 sends the Cloudflare account id). */
const LOCAL_ACCOUNT = "local";
/** An object to put into (or delete from) UPLOADS, then notify as R2 would. */
const r2ObjectSchema = z.strictObject({
  key: z.string().min(1).max(1024),
  content: z.string().default(""),
  action: z.enum(["PutObject", "DeleteObject"]).default("PutObject"),
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
  .post("/_diagnostics/events/:requestId/expire", async (c) => {
    // An ended event's retention is due now (its archive, then its deletion), whatever its
    // namespace's retention: the e2e test of retention and archive without waiting an hour.
    const requestId = parseWith(holdRequestIdSchema, c.req.param("requestId"));
    return c.json({ expired: await eventStub(c.env, requestId).expireNow() });
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
    const { refused } = await writeIndexEntriesByDatabase(c.env, body.rows);
    if (refused[0] !== undefined) throw refused[0].error;
    return c.json({ written: body.rows.length });
  })
  .get("/_diagnostics/costs", (c) => {
    // Billable operations counted since the last reset (the bench's per-event costs: see cost-counters).
    installCostCounters(c.env);
    return c.json(costCounts());
  })
  .post("/_diagnostics/costs/reset", (c) => {
    installCostCounters(c.env);
    resetCostCounts();
    return c.json(costCounts());
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
  .post("/_diagnostics/trigger-queues/:queue/messages", async (c) => {
    // Sends a message to a trigger queue (its producer binding TRIGGER_QUEUE_<NAME>), as a producer would.
    const queue = c.req.param("queue");
    const binding = `TRIGGER_QUEUE_${queue.toUpperCase().replaceAll("-", "_")}`;
    const producer = (c.env as unknown as Record<string, unknown>)[binding] as Queue | undefined;
    if (!isTriggerQueue(c.env, queue) || !producer) throw new PlatformError("NOT_FOUND", `no trigger queue ${queue}`);
    const { body } = await readJson(c, triggerMessageSchema, MAX_TRIGGER_MESSAGE_BODY_BYTES);
    await producer.send(body ?? null, { contentType: typeof body === "string" ? "text" : "json" });
    return c.json({ sent: true, queue });
  })
  .post("/_diagnostics/r2/objects", async (c) => {
    // Puts (or deletes) an object of UPLOADS, then sends the notification R2 would to afp-r2-events
    // (wrangler dev sends none).
    const input = await readJson(c, r2ObjectSchema, MAX_R2_OBJECT_BODY_BYTES);
    const stored = input.action === "PutObject" ? await c.env.UPLOADS.put(input.key, input.content) : undefined;
    if (input.action === "DeleteObject") await c.env.UPLOADS.delete(input.key);
    const notification: R2Notification = {
      account: LOCAL_ACCOUNT,
      action: input.action,
      bucket: UPLOADS_BUCKET_NAME,
      object: { key: input.key, ...(stored ? { size: stored.size, eTag: stored.etag } : {}) },
      eventTime: new Date().toISOString(),
    };
    await c.env.R2_EVENTS_QUEUE.send(notification, { contentType: "json" });
    return c.json({ sent: true, notification });
  })
  .get("/_diagnostics/trigger-consumers", (c) => {
    // This isolate's most recent trigger deliveries that found their event already there.
    return c.json({ recentRedeliveries: recentTriggerRedeliveries() });
  })
  .post("/_diagnostics/dispatch-queue/malformed", async (c) => {
    // Puts a message that fails the dispatch schema on the dispatch queue (its consumer dead-letters it).
    await c.env.DISPATCH_QUEUE.send(MALFORMED_DISPATCH_MESSAGE);
    return c.json({ sent: true, message: MALFORMED_DISPATCH_MESSAGE });
  });
