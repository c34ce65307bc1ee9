import type { ErrorCode } from "../shared/errors";

/** The Tencent Cloud API version this endpoint speaks (SCF). */
export const TC_API_VERSION = "2018-04-16";

/** Tencent's error code for each platform error. A platform code without one does not compile. */
export const TENCENT_ERROR_CODE: Record<ErrorCode, string> = {
  INVALID_PARAMETER: "InvalidParameterValue",
  INVALID_JSON: "InvalidParameter.Payload",
  PAYLOAD_TOO_LARGE: "InvalidParameter.Payload",
  UNAUTHORIZED: "AuthFailure",
  FUNCTION_NOT_FOUND: "ResourceNotFound.Function",
  EVENT_NOT_FOUND: "ResourceNotFound.AsyncEvent",
  NOT_FOUND: "ResourceNotFound.Namespace",
  FUNCTION_EXISTS: "ResourceInUse.Function",
  FUNCTION_IN_USE: "ResourceInUse.Function",
  FUNCTION_NOT_ASYNC: "UnsupportedOperation.AsyncRunEnable",
  IMMUTABLE_PARAMETER: "InvalidParameterValue.AsyncRunEnable",
  EVENT_ALREADY_ENDED: "FailedOperation.AsyncEvent",
  EVENT_TERMINATING: "FailedOperation.AsyncEvent",
  IDEMPOTENCY_KEY_REUSED: "FailedOperation.IdempotencyKeyReused",
  TRIGGER_NOT_FOUND: "ResourceNotFound.Trigger",
  TRIGGER_EXISTS: "ResourceInUse.Trigger",
  TRIGGER_LIMIT_EXCEEDED: "LimitExceeded.Trigger",
  QUALIFIER_NOT_FOUND: "ResourceNotFound.Qualifier",
  CODE_OBJECT_NOT_FOUND: "InvalidParameterValue.CosObjectName",
  VERSION_IN_USE: "FailedOperation.DeleteFunctionVersion",
  VERSION_LIMIT_EXCEEDED: "LimitExceeded.Version",
  ALIAS_EXISTS: "ResourceInUse.Alias",
  ALIAS_IN_USE: "FailedOperation.DeleteAlias",
  ALIAS_LIMIT_EXCEEDED: "LimitExceeded.Alias",
  RATE_LIMITED: "RequestLimitExceeded",
  TOO_MANY_FOLLOWERS: "LimitExceeded",
  UNSUPPORTED_OPERATION: "UnsupportedOperation",
  METHOD_NOT_ALLOWED: "UnsupportedOperation",
  INTERNAL_ERROR: "InternalError",
  INVOCATION_WAIT_TIMEOUT: "FailedOperation.InvokeFunction",
  UNAVAILABLE: "InternalError",
};

/** The text of a successful Tencent Cloud API answer (serialised once, then checked and sent). */
export function tcOkText(requestId: string, body: Record<string, unknown>): string {
  return JSON.stringify({ Response: { ...body, RequestId: requestId } });
}

/** A successful Tencent Cloud API answer from its text (see tcOkText). */
export function tcOk(text: string): Response {
  return new Response(text, { headers: { "content-type": "application/json" } });
}

/**
 * A Tencent Cloud API error. Like Tencent's own endpoint (and as the official SDKs expect), it is
 * sent with HTTP 200; the error is in the envelope.
 */
export function tcError(requestId: string, code: string, message: string): Response {
  return Response.json({ Response: { Error: { Code: code, Message: message }, RequestId: requestId } });
}

/** `%Y-%m-%d %H:%M:%S` in UTC, the time format of the SCF models. */
export function tcTime(epochMs: number | null | undefined): string {
  if (epochMs === null || epochMs === undefined) return "";
  return new Date(epochMs).toISOString().slice(0, 19).replace("T", " ");
}

/** Parses `%Y-%m-%d %H:%M:%S` (UTC) into epoch ms; undefined when malformed. */
export function parseTcTime(value: string): number | undefined {
  const match = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(value.trim());
  if (!match) return undefined;
  const ms = Date.parse(`${match[1]}-${match[2]}-${match[3]}T${match[4]}:${match[5]}:${match[6]}Z`);
  return Number.isNaN(ms) ? undefined : ms;
}
