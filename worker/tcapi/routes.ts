import { Hono } from "hono";
import { authenticate, MAX_SIGNED_BODY_BYTES } from "../auth/credentials";
import { isReadOnlyAction } from "../auth/signature-ledger";
import { toPlatformError } from "../shared/errors";
import { MAX_JSON_BODY_BYTES, readRequestBody } from "../shared/validation";
import { findAction, TcApiError } from "./actions";
import { TC_API_VERSION, TENCENT_ERROR_CODE, tcError, tcOk, tcOkText } from "./envelope";

/** Worker secrets whose values may never appear in an answer, whatever an action returned. */
const SECRET_BINDINGS = ["MASTER_KEY", "DEV_SECRET_KEY"] as const;

/** Shortest secret value the leak guard looks for (shorter ones would match ordinary text). */
const MIN_GUARDED_SECRET_CHARS = 16;

/** True when a serialised answer contains the value of a Worker secret (never sent). */
function leaksSecret(env: Env, serialised: string): boolean {
  return SECRET_BINDINGS.some((name) => {
    const value = env[name];
    return typeof value === "string" && value.length >= MIN_GUARDED_SECRET_CHARS && serialised.includes(value);
  });
}

/** Actions that carry a code package: their bodies may reach MAX_JSON_BODY_BYTES. */
const CODE_ACTIONS: ReadonlySet<string> = new Set(["CreateFunction", "UpdateFunctionCode"]);

/**
 * The request body, read once and bounded while reading (before the signature check hashes it):
 * a code action's up to MAX_JSON_BODY_BYTES, any other's up to MAX_SIGNED_BODY_BYTES; over it is
 * Tencent's InvalidParameter.
 */
async function boundedBody(request: Parameters<typeof readRequestBody>[0], action: string): Promise<Uint8Array> {
  const limit = CODE_ACTIONS.has(action) ? MAX_JSON_BODY_BYTES : MAX_SIGNED_BODY_BYTES;
  try {
    return await readRequestBody(request, limit);
  } catch (error) {
    if (toPlatformError(error)?.code === "PAYLOAD_TOO_LARGE") {
      throw new TcApiError("InvalidParameter", `request body over ${limit} bytes`);
    }
    throw error;
  }
}

/** Parses the body's bytes as the action's JSON object of parameters. */
function parseParams(body: Uint8Array): Record<string, unknown> {
  let params: unknown;
  try {
    const text = new TextDecoder().decode(body);
    params = text.trim().length === 0 ? {} : JSON.parse(text);
  } catch {
    throw new TcApiError("InvalidParameter", "the request body is not valid JSON");
  }
  if (typeof params !== "object" || params === null || Array.isArray(params)) {
    throw new TcApiError("InvalidParameter", "the request body must be a JSON object");
  }
  return params as Record<string, unknown>;
}

/**
 * The Tencent Cloud API 3.0 endpoint (`POST /`, SCF 2018-04-16): TC3-HMAC-SHA256 signatures
 * (or the bearer form), `X-TC-Action` dispatch, and Tencent's response and error envelopes.
 * Only the value an implemented action returned is ever serialised into a success answer.
 */
export const tencentCloudRoutes = new Hono<{ Bindings: Env }>().all("/", async (c) => {
  const requestId = crypto.randomUUID();
  try {
    if (c.req.method !== "POST") {
      return tcError(requestId, "UnsupportedOperation", "the API endpoint takes POST requests with a JSON body");
    }
    const actionName = c.req.header("x-tc-action") ?? "";
    const auth = await authenticate(c.env, c.req.raw, () => boundedBody(c.req, actionName), {
      name: actionName,
      mutating: !isReadOnlyAction(actionName),
    });
    if (!auth.ok) return tcError(requestId, auth.failure, auth.message);

    if (!actionName) return tcError(requestId, "MissingParameter", "the X-TC-Action header is required");
    const version = c.req.header("x-tc-version");
    if (version !== TC_API_VERSION) {
      return tcError(requestId, "NoSuchVersion", `X-TC-Version must be ${TC_API_VERSION}`);
    }
    const action = findAction(actionName);
    if (!action) return tcError(requestId, "InvalidAction", "the action is not implemented by this endpoint");

    const params = parseParams(await boundedBody(c.req, actionName));
    const result = await action({ env: c.env, principal: auth.principal, params, requestUrl: c.req.url });
    const answer = tcOkText(requestId, result);
    if (leaksSecret(c.env, answer)) {
      console.error("Tencent Cloud API answer withheld: it contained a secret value", requestId, actionName);
      return tcError(requestId, "InternalError", "internal error");
    }
    return tcOk(answer);
  } catch (error) {
    if (error instanceof TcApiError) return tcError(requestId, error.code, error.message);
    const known = toPlatformError(error);
    if (known) return tcError(requestId, TENCENT_ERROR_CODE[known.code], known.message);
    console.error("Tencent Cloud API action failed", requestId, error);
    return tcError(requestId, "InternalError", "internal error");
  }
});
