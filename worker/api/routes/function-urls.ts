import { OpenAPIHono, type RouteConfig, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { MAX_ASYNC_PAYLOAD_BYTES } from "../../events/invoke";
import {
  acceptFunctionUrlRequest,
  FUNCTION_URL_PREFIX,
  functionUrlPreflight,
  REQUEST_ID_HEADER,
} from "../../triggers/http";
import { documentedBody, errorResponses, jsonResponse } from "../openapi";

/** The methods a function URL accepts (Hono answers HEAD with the GET route, without the body). */
export const FUNCTION_URL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;
/** The two paths of a function URL: its root, and any subpath under it. */
const PATHS = [`${FUNCTION_URL_PREFIX}/:urlId`, `${FUNCTION_URL_PREFIX}/:urlId/*`] as const;

const TAG = "Function URLs";

const urlIdParam = z.string().openapi({
  description: "The function URL's id (32 hex characters), as CreateTrigger / ListTriggers show it",
});

const DESCRIPTION = `A function URL (an http trigger): any method, any subpath and query. The request becomes an event in SCF's API Gateway shape (requestContext, headers in lower case, body as text or base64 with isBase64Encoded, path, queryString, httpMethod) with invoke type APIGW, and is answered 202 at once with the RequestId in the ${REQUEST_ID_HEADER} header and the JSON body {"requestId"}, before the handler runs (also for a function whose async execution is off, where SCF would answer synchronously). The trigger's TriggerDesc AuthType CAM (the default) needs the platform's credentials (Authorization: Bearer <SecretId>:<SecretKey>, or a TC3 signature, never accepted twice whatever the method) reaching the trigger's namespace, and neither the Authorization header nor the X-TC-* signature headers appear in the event; NONE is public (an Authorization in the platform's own schemes is still left out of the event; other schemes reach the handler), and its refusals carry generic messages. The body may be at most ${MAX_ASYNC_PAYLOAD_BYTES} bytes and the event's JSON at most ${MAX_ASYNC_PAYLOAD_BYTES} bytes (413 otherwise). An unknown, deleted or disabled URL id is 404. An Idempotency-Key header makes the same request create one event (the URL's keys are its own: they never meet the keys the function is invoked with elsewhere; a public URL's duplicate-key answers count against the read limit per URL, 429 past it). With CorsConfig.Enable, an OPTIONS preflight is answered 204 with the CORS headers and creates no event.`;

/** The document's entry of one method and path (the handler is mounted with `on` below). */
function documented(method: (typeof FUNCTION_URL_METHODS)[number], path: string): RouteConfig {
  const openApiPath = path.replace(/:([A-Za-z]+)/g, "{$1}");
  const hasBody = method !== "GET";
  return {
    method: method.toLowerCase() as RouteConfig["method"],
    path: openApiPath,
    tags: [TAG],
    summary: `Call a function URL (${method}${path.endsWith("*") ? ", any subpath" : ""})`,
    description: DESCRIPTION,
    security: [],
    request: {
      params: z.object({ urlId: urlIdParam }),
      ...(hasBody
        ? {
            body: documentedBody(
              "Any body: it becomes the event's body",
              { description: `Any content, at most ${MAX_ASYNC_PAYLOAD_BYTES} bytes` },
              false,
            ),
          }
        : {}),
    },
    responses: {
      202: {
        ...jsonResponse("Accepted: the event's RequestId", z.object({ requestId: z.string() })),
        headers: z.object({ [REQUEST_ID_HEADER]: z.string() }),
      },
      200: jsonResponse(
        "A duplicate Idempotency-Key: the key's event",
        z.object({ requestId: z.string(), status: z.string(), idempotentReplay: z.literal(true) }),
      ),
      204: { description: "A CORS preflight (CorsConfig.Enable): no event" },
      ...errorResponses(400, 401, 404, 409, 413, 429, 500, 503),
    },
  };
}

/** The subpath after `/url/<urlId>`: "/" at least. */
function subpathOf(path: string, urlId: string): string {
  const rest = path.slice(`${FUNCTION_URL_PREFIX}/${urlId}`.length);
  return rest.startsWith("/") ? rest : `/${rest}`;
}

async function handle(c: Context<{ Bindings: Env }>) {
  const urlId = c.req.param("urlId") ?? "";
  const preflight = await functionUrlPreflight(c.env, urlId, c.req.raw);
  if (preflight) return c.body(null, 204, preflight);
  const { answer, corsHeaders } = await acceptFunctionUrlRequest(c.env, {
    urlId,
    subpath: subpathOf(c.req.path, urlId),
    request: c.req.raw,
    body: c.req,
  });
  try {
    return answerOf(c, answer, corsHeaders);
  } catch (error) {
    // The event exists: its answer is sent whatever the CORS headers hold (safeHeaders already
    // leaves out what a Response refuses; this is the last guard, never a 500 after acceptance).
    console.error("function URL answer without its CORS headers", String(error));
    return answerOf(c, answer, {});
  }
}

/** The answer to an accepted request: 202 with the RequestId, or 200 for a duplicate Idempotency-Key. */
function answerOf(
  c: Context<{ Bindings: Env }>,
  answer: Awaited<ReturnType<typeof acceptFunctionUrlRequest>>["answer"],
  corsHeaders: Record<string, string>,
) {
  const headers = { ...corsHeaders, [REQUEST_ID_HEADER]: answer.requestId };
  if (answer.idempotentReplay) {
    return c.json({ requestId: answer.requestId, status: answer.status, idempotentReplay: true }, 200, {
      ...headers,
      "Idempotent-Replayed": "true",
    });
  }
  return c.json({ requestId: answer.requestId }, 202, headers);
}

/**
 * Function URLs (worker/triggers/http.ts): public routes (mounted before the credentials
 * middleware; a CAM trigger checks credentials itself), any method and subpath.
 */
export function functionUrlRoutes(): OpenAPIHono<{ Bindings: Env }> {
  const routes = new OpenAPIHono<{ Bindings: Env }>();
  for (const path of PATHS) {
    for (const method of FUNCTION_URL_METHODS) routes.openAPIRegistry.registerPath(documented(method, path));
  }
  routes.on([...FUNCTION_URL_METHODS], [...PATHS], handle);
  return routes;
}
