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
  EVENT_TERMINATING: 409,
  /** An idempotency key used again, within its window, with another payload or qualifier. */
  IDEMPOTENCY_KEY_REUSED: 409,
  /** A trigger (function, type, name) that does not exist, or is another namespace's. */
  TRIGGER_NOT_FOUND: 404,
  /** A trigger name already used by a trigger of the same function and type. */
  TRIGGER_EXISTS: 409,
  /** A function already has the most triggers allowed (triggers/registry.ts MAX_TRIGGERS_PER_FUNCTION). */
  TRIGGER_LIMIT_EXCEEDED: 409,
  /** A version or alias (qualifier) the function does not have (functions/qualifiers.ts). */
  QUALIFIER_NOT_FOUND: 404,
  /** A code package's R2 object (code.bucket/code.key, Code.CosObjectName) that does not exist. */
  CODE_OBJECT_NOT_FOUND: 400,
  /** A version still routed to by an alias, targeted by a trigger or running events (functions/versions.ts). */
  VERSION_IN_USE: 409,
  /** A function already has the most published versions allowed (functions/versions.ts MAX_VERSIONS_PER_FUNCTION). */
  VERSION_LIMIT_EXCEEDED: 409,
  /** An alias name already used by another alias of the same function. */
  ALIAS_EXISTS: 409,
  /** An alias still targeted by a trigger (functions/aliases.ts). */
  ALIAS_IN_USE: 409,
  /** A function already has the most aliases allowed (functions/aliases.ts MAX_ALIASES_PER_FUNCTION). */
  ALIAS_LIMIT_EXCEEDED: 409,
  RATE_LIMITED: 429,
  /** An event already has the most live log followers allowed. */
  TOO_MANY_FOLLOWERS: 429,
  UNSUPPORTED_OPERATION: 400,
  METHOD_NOT_ALLOWED: 405,
  INTERNAL_ERROR: 500,
  /**
   * A synchronous invocation whose event did not end within the function's timeout plus the start
   * allowance (events/invoke-sync.ts): the event goes on; its RequestId is in the message.
   */
  INVOCATION_WAIT_TIMEOUT: 504,
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

/**
 * The one result type: a value, or a refusal with its code and message. Durable Objects' RPC
 * methods return it instead of throwing across the boundary, and the event's state machine uses it
 * for its transitions. The code is a platform ErrorCode unless the operation names its own codes
 * (C), as the event's internal refusals do (they never reach an HTTP answer).
 */
export type RpcResult<T, C extends string = ErrorCode> =
  | { ok: true; value: T }
  | { ok: false; code: C; message: string };

/** A successful result carrying `value`. */
export function rpcOk<T, C extends string = ErrorCode>(value: T): RpcResult<T, C> {
  return { ok: true, value };
}

/** A refused result carrying `code` (a platform ErrorCode unless the result names its own codes). */
export function rpcFail<T, C extends string = ErrorCode>(code: C, message: string): RpcResult<T, C> {
  return { ok: false, code, message };
}

/** The value of an RPC result, or the platform error it carries, thrown at the edge. */
export function unwrap<T>(result: RpcResult<T>): T {
  if (result.ok) return result.value;
  throw new PlatformError(result.code, result.message);
}

/** The platform error behind an error, if it is one. */
export function toPlatformError(error: unknown): PlatformError | undefined {
  return error instanceof PlatformError ? error : undefined;
}
