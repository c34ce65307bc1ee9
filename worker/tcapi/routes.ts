import { Hono } from "hono";
import { MAX_JSON_BODY_BYTES } from "../api/validation";
import { authenticate } from "../auth/credentials";
import { toPlatformError } from "../shared/errors";
import { ACTIONS, TcApiError } from "./actions";
import { TC_API_VERSION, TENCENT_ERROR_CODE, tcError, tcOk } from "./envelope";

/**
 * The Tencent Cloud API 3.0 endpoint (`POST /`, SCF 2018-04-16): TC3-HMAC-SHA256 signatures
 * (or the bearer form), `X-TC-Action` dispatch, and Tencent's response and error envelopes.
 */
export const tencentCloudRoutes = new Hono<{ Bindings: Env }>().all("/", async (c) => {
  const requestId = crypto.randomUUID();
  try {
    if (c.req.method !== "POST") {
      return tcError(requestId, "UnsupportedOperation", "the API endpoint takes POST requests with a JSON body");
    }
    const declared = Number(c.req.header("content-length") ?? "0");
    if (declared > MAX_JSON_BODY_BYTES) {
      return tcError(requestId, "InvalidParameter", `the request body is over ${MAX_JSON_BODY_BYTES} bytes`);
    }
    const auth = await authenticate(c.env, c.req.raw, () => c.req.arrayBuffer());
    if (!auth.ok) return tcError(requestId, auth.failure, auth.message);

    const action = c.req.header("x-tc-action");
    if (!action) return tcError(requestId, "MissingParameter", "the X-TC-Action header is required");
    const version = c.req.header("x-tc-version");
    if (version !== TC_API_VERSION) {
      return tcError(requestId, "NoSuchVersion", `X-TC-Version must be ${TC_API_VERSION}`);
    }
    const handler = ACTIONS[action];
    if (!handler) return tcError(requestId, "UnsupportedOperation", `the action ${action} is not supported`);

    let params: unknown;
    try {
      const text = new TextDecoder().decode(await c.req.arrayBuffer());
      params = text.trim().length === 0 ? {} : JSON.parse(text);
    } catch {
      return tcError(requestId, "InvalidParameter", "the request body is not valid JSON");
    }
    if (typeof params !== "object" || params === null || Array.isArray(params)) {
      return tcError(requestId, "InvalidParameter", "the request body must be a JSON object");
    }
    const body = await handler({ env: c.env, principal: auth.principal, params: params as Record<string, unknown> });
    return tcOk(requestId, body);
  } catch (error) {
    if (error instanceof TcApiError) return tcError(requestId, error.code, error.message);
    const known = toPlatformError(error);
    if (known) return tcError(requestId, TENCENT_ERROR_CODE[known.code], known.message);
    console.error("Tencent Cloud API action failed", requestId, error);
    return tcError(requestId, "InternalError", "internal error");
  }
});
