import { Hono } from "hono";
import { z } from "zod";
import { type AppEnv, visibleNamespace } from "../../auth/credentials";
import { visibleEvent, visibleEventView } from "../../events/event-access";
import { listEvents, listEventsQuerySchema, listedEvent } from "../../events/event-list";
import { invokeAsync, MAX_ASYNC_PAYLOAD_BYTES } from "../../events/invoke";
import { admitRead } from "../../ratelimit/read-limit";
import { PlatformError, unwrap } from "../../shared/errors";
import { functionNameSchema } from "../../shared/names";
import { parseWith, readBodyText } from "../../shared/validation";

const terminateBodySchema = z.strictObject({ graceful: z.boolean().default(false) });

/** REST routes: async invocation and reading events. */
export const eventRoutes = new Hono<AppEnv>()
  .post("/v1/namespaces/:namespace/functions/:name/invocations", async (c) => {
    const namespace = visibleNamespace(c.var.principal, c.req.param("namespace"));
    const functionName = parseWith(functionNameSchema, c.req.param("name"));
    const payloadText = await readBodyText(c, MAX_ASYNC_PAYLOAD_BYTES);
    const qualifier = c.req.query("qualifier");
    const accepted = await invokeAsync(c.env, {
      namespace,
      functionName,
      payloadText: payloadText.length === 0 ? "{}" : payloadText,
      ...(qualifier !== undefined ? { qualifier } : {}),
    });
    return c.json(accepted, 202);
  })
  .get("/v1/namespaces/:namespace/functions/:name/events", async (c) => {
    const namespace = visibleNamespace(c.var.principal, c.req.param("namespace"));
    const functionName = parseWith(functionNameSchema, c.req.param("name"));
    const query = parseWith(listEventsQuerySchema, c.req.query());
    admitRead(c.var.principal.secretId);
    const page = await listEvents(c.env.DB, namespace, functionName, query);
    return c.json({ total: page.total, events: page.events.map(listedEvent) });
  })
  .post("/v1/events/:requestId/terminate", async (c) => {
    const event = await visibleEvent(c.env, c.var.principal, c.req.param("requestId"));
    const text = await readBodyText(c, 4096);
    let body: unknown = {};
    if (text.trim().length > 0) {
      try {
        body = JSON.parse(text);
      } catch {
        throw new PlatformError("INVALID_JSON", "request body is not valid JSON");
      }
    }
    const { graceful } = parseWith(terminateBodySchema, body);
    return c.json(unwrap(await event.terminate(graceful)));
  })
  .get("/v1/events/:requestId", async (c) => {
    const { event } = await visibleEventView(c.env, c.var.principal, c.req.param("requestId"));
    return c.json(event);
  });
