import { Hono } from "hono";
import { z } from "zod";
import { type AppEnv, visibleNamespace } from "../../auth/credentials";
import { visibleEvent } from "../../events/event-access";
import { orderSchema, timeSchema } from "../../events/event-list";
import { functionLogs } from "../../logs/function-logs";
import { admitRead } from "../../ratelimit/read-limit";
import { unwrap } from "../../shared/errors";
import { functionNameSchema } from "../../shared/names";
import { parseWith } from "../../shared/validation";

const eventLogQuerySchema = z.strictObject({
  after: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(1000),
});

const followQuerySchema = z.strictObject({ after: z.coerce.number().int().min(0).optional() });

const functionLogQuerySchema = z.strictObject({
  requestId: z.string().min(1).max(64).optional(),
  startTime: timeSchema.optional(),
  endTime: timeSchema.optional(),
  /** success: FINISHED events; error: FAILED and ABORTED ones. */
  status: z.enum(["success", "error"]).optional(),
  order: orderSchema,
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
  limit: z.coerce.number().int().min(1).max(100).default(10),
});

/** Log routes: one event's log (paged and live) and a function's logs across events. */
export const logRoutes = new Hono<AppEnv>()
  .get("/v1/events/:requestId/logs", async (c) => {
    admitRead(c.var.principal.secretId);
    const event = await visibleEvent(c.env, c.var.principal, c.req.param("requestId"));
    const query = parseWith(eventLogQuerySchema, c.req.query());
    const records = unwrap(await event.logs(query.after, query.limit));
    return c.json({ records, lastSeq: records.at(-1)?.seq ?? query.after });
  })
  .get("/v1/events/:requestId/logs/stream", async (c) => {
    admitRead(c.var.principal.secretId);
    const event = await visibleEvent(c.env, c.var.principal, c.req.param("requestId"));
    const query = parseWith(followQuerySchema, c.req.query());
    // EventSource sends the last id it saw when it reconnects.
    const lastEventId = parseWith(
      z.coerce.number().int().min(0).optional(),
      c.req.header("last-event-id") || undefined,
    );
    const stream = unwrap(await event.followLogs(lastEventId ?? query.after ?? 0));
    return new Response(stream, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-transform",
        "x-accel-buffering": "no",
      },
    });
  })
  .get("/v1/namespaces/:namespace/functions/:name/logs", async (c) => {
    const namespace = visibleNamespace(c.var.principal, c.req.param("namespace"));
    const functionName = parseWith(functionNameSchema, c.req.param("name"));
    const query = parseWith(functionLogQuerySchema, c.req.query());
    admitRead(c.var.principal.secretId);
    const page = await functionLogs(c.env, namespace, functionName, {
      order: query.order,
      offset: query.offset,
      limit: query.limit,
      ...(query.status !== undefined ? { outcome: query.status } : {}),
      ...(query.requestId !== undefined ? { requestId: query.requestId } : {}),
      ...(query.startTime !== undefined ? { startTimeFrom: query.startTime } : {}),
      ...(query.endTime !== undefined ? { startTimeTo: query.endTime } : {}),
    });
    return c.json({
      total: page.total,
      logs: page.events.map((event) => ({
        requestId: event.requestId,
        functionName: event.functionName,
        qualifier: event.qualifier,
        startTime: event.invokedAt,
        endTime: event.endedAt,
        status: event.status,
        statusCode: event.statusCode,
        durationMs: event.durationMs,
        memoryUsageKb: event.memoryUsageKb,
        errorMessage: event.errorMessage,
        log: event.log,
        logTruncated: event.logTruncated,
      })),
    });
  });
