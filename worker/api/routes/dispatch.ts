import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../auth/credentials";
import { QUEUED_REASONS } from "../../events/queued-reason";
import { pauseDispatch, resumeDispatch } from "../../scheduling/dispatch-pause";
import { PlatformError } from "../../shared/errors";
import { functionNameSchema, namespaceSchema } from "../../shared/names";
import { parseWith, readBodyText } from "../../shared/validation";
import {
  COMMON_ERROR_STATUSES,
  documentedJsonBody,
  errorResponses,
  jsonResponse,
  pathFirst,
  refuseInvalid,
} from "../openapi";

/** Largest body of a pause or resume request (the body is empty or `{}`). */
export const MAX_DISPATCH_BODY_BYTES = 4096;

/** The pause and resume body: no options; empty or `{}`. */
const dispatchBodySchema = z.strictObject({});

/** Path of one function. */
const functionParams = z.object({ namespace: namespaceSchema, name: functionNameSchema });

/** The function's dispatch (scheduling/dispatch-pause.ts PublicDispatchState). */
const dispatchStateSchema = z
  .object({
    namespace: z.string(),
    functionName: z.string(),
    dispatchPaused: z.boolean().openapi({ description: "True while dispatch is paused" }),
    pausedAt: z
      .string()
      .nullable()
      .openapi({ format: "date-time", description: "When dispatch was paused; null while it runs" }),
    pendingEvents: z.number().int().openapi({
      description:
        "Events waiting in the function's scheduler for an instance (events still on the dispatch queue are not counted)",
    }),
  })
  .openapi("DispatchState");

const TAG = "Functions";

const pause = createRoute({
  method: "post",
  path: "/v1/namespaces/{namespace}/functions/{name}/dispatch/pause",
  tags: [TAG],
  summary: "Pause a function's dispatch",
  description: `Invocations are still accepted (the RequestId at once), but their events stay \`queued\`, their status showing \`queuedReason: "${QUEUED_REASONS[0]}"\`, until dispatch is resumed; events already running are not affected, and a queued event can be terminated as ever. Idempotent: pausing a paused function keeps its \`pausedAt\`. The state is durable and shown by GET of the function (\`dispatchPaused\`, \`pausedAt\`); deleting the function resumes it. The body is empty or \`{}\` (at most ${MAX_DISPATCH_BODY_BYTES} bytes).`,
  middleware: [pathFirst(functionParams)],
  request: { params: functionParams, body: documentedJsonBody("DispatchRequest", "No options: empty or {}", false) },
  responses: {
    200: jsonResponse("The function's dispatch, paused", dispatchStateSchema),
    ...errorResponses(...COMMON_ERROR_STATUSES, 413),
  },
});

const resume = createRoute({
  method: "post",
  path: "/v1/namespaces/{namespace}/functions/{name}/dispatch/resume",
  tags: [TAG],
  summary: "Resume a function's dispatch",
  description: `The events held while paused start, oldest first, within the function's concurrency. Idempotent: resuming a function whose dispatch runs changes nothing. The body is empty or \`{}\` (at most ${MAX_DISPATCH_BODY_BYTES} bytes).`,
  middleware: [pathFirst(functionParams)],
  request: { params: functionParams, body: documentedJsonBody("DispatchRequest", "No options: empty or {}", false) },
  responses: {
    200: jsonResponse("The function's dispatch, running", dispatchStateSchema),
    ...errorResponses(...COMMON_ERROR_STATUSES, 413),
  },
});

/** Reads the optional body of pause and resume: empty or `{}` (bounded while streaming). */
async function readNoOptions(c: Parameters<typeof readBodyText>[0]): Promise<void> {
  const text = await readBodyText(c, MAX_DISPATCH_BODY_BYTES);
  if (text.trim().length === 0) return;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new PlatformError("INVALID_JSON", "request body is not valid JSON");
  }
  parseWith(dispatchBodySchema, body);
}

/** REST routes: pause and resume a function's dispatch (scheduling/dispatch-pause.ts). */
export const dispatchRoutes = new OpenAPIHono<AppEnv>({ defaultHook: refuseInvalid })
  .openapi(pause, async (c) => {
    const { namespace, name } = c.req.valid("param");
    await readNoOptions(c);
    return c.json(await pauseDispatch(c.env, namespace, name), 200);
  })
  .openapi(resume, async (c) => {
    const { namespace, name } = c.req.valid("param");
    await readNoOptions(c);
    return c.json(await resumeDispatch(c.env, namespace, name), 200);
  });

dispatchRoutes.openAPIRegistry.register("DispatchRequest", dispatchBodySchema);
