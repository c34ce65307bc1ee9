/** Every error the platform reports, with its HTTP status. A code without a status does not compile. */
export const ERROR_STATUS = {
  INVALID_PARAMETER: 400,
  INVALID_JSON: 400,
  PAYLOAD_TOO_LARGE: 413,
  UNAUTHORIZED: 401,
  FUNCTION_NOT_FOUND: 404,
  EVENT_NOT_FOUND: 404,
  NOT_FOUND: 404,
  FUNCTION_EXISTS: 409,
  FUNCTION_IN_USE: 409,
  FUNCTION_NOT_ASYNC: 400,
  IMMUTABLE_PARAMETER: 400,
  EVENT_ALREADY_ENDED: 409,
  RATE_LIMITED: 429,
  UNSUPPORTED_OPERATION: 400,
  METHOD_NOT_ALLOWED: 405,
  INTERNAL_ERROR: 500,
  UNAVAILABLE: 503,
} as const satisfies Record<string, number>;

/** A platform error code. */
export type ErrorCode = keyof typeof ERROR_STATUS;

/** An error the API renders as `{error: {code, message, requestId}}`. */
export class PlatformError extends Error {
  override readonly name = "PlatformError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }

  get status(): (typeof ERROR_STATUS)[ErrorCode] {
    return ERROR_STATUS[this.code];
  }
}

/** True when an RPC error crossing a Durable Object boundary carries a platform error. */
export function toPlatformError(error: unknown): PlatformError | undefined {
  if (error instanceof PlatformError) return error;
  if (error instanceof Error) {
    // Errors thrown in a Durable Object arrive as plain Errors; the code travels in the message.
    const match = /^\[(?<code>[A-Z_]+)\] (?<message>[\s\S]*)$/.exec(error.message);
    const code = match?.groups?.code;
    if (code && code in ERROR_STATUS) return new PlatformError(code as ErrorCode, match?.groups?.message ?? "");
  }
  return undefined;
}

/** Encodes a platform error so that it survives an RPC boundary (see toPlatformError). */
export function rpcError(code: ErrorCode, message: string): Error {
  return new Error(`[${code}] ${message}`);
}
