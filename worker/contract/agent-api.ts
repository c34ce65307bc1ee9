// The agent's HTTP answers other than the record stream (see agent-records.ts), and how a refusal
// is worded. The routes themselves are described in containers/runtime/agent/PROTOCOL.md.
import * as z from "zod";
import { agentEndRecordSchema } from "./agent-records";
import { requestIdSchema } from "./execution-spec";

/** The runtime agent's HTTP port inside every function container. */
export const AGENT_PORT = 8080;

/** What the agent's GET /health answers. */
export const agentHealthSchema = z.object({
  ok: z.boolean(),
  /** Identifies one container boot: a repossessed instance comes back with a new one. */
  bootId: z.string().min(1),
  pid: z.int(),
  /** The container's init (PID 1) runs the agent, so this is 1. */
  parentPid: z.int(),
  startedAt: z.number(),
  uptimeMs: z.number(),
  /** Signals the agent has received, oldest first. */
  signalsReceived: z.array(z.object({ signal: z.string(), at: z.number() })),
  /** An execution is in progress (requestId names it). */
  busy: z.boolean(),
  requestId: z.string().nullable(),
  /** The platform sent the container SIGTERM: it is going away and takes no new execution. */
  stopping: z.boolean().optional(),
  /** The uid handler processes run as in this boot; null when the agent cannot drop privileges. */
  handlerUid: z.int().nullable().optional(),
  /**
   * The registered image this container runs (an image container, AFP_IMAGE_MODE=1: image
   * functions only); null in the runtime image (code functions only).
   */
  image: z.string().nullable().optional(),
});
/** What the agent's GET /health answers. */
export type AgentHealth = z.infer<typeof agentHealthSchema>;

/** The signals a caller may forward to a handler's process group: SIGTERM only (graceful terminate). */
export const FORWARDED_SIGNALS = ["SIGTERM"] as const;

/**
 * The body of POST /executions/:id/signal. An empty body is `{}`, which means SIGTERM (what the
 * instance sends today); any other signal is refused with 400.
 */
export const signalRequestSchema = z.object({
  signal: z.enum(FORWARDED_SIGNALS, { error: "only SIGTERM can be forwarded" }).default("SIGTERM"),
});
/** The body a caller sends (signal may be left out). */
export type SignalRequest = z.input<typeof signalRequestSchema>;

/** The answer of POST /executions/:id/signal: whether a live handler process got the signal. */
export const signalAnswerSchema = z.object({ delivered: z.boolean() });
/** The answer of POST /executions/:id/signal. */
export type SignalAnswer = z.infer<typeof signalAnswerSchema>;

/**
 * The body of every refusal (400, 401, 404, 409, 412, 413, 500, 503). A 409 `busy` names the
 * execution in progress in requestId.
 */
export const agentErrorSchema = z.object({ error: z.string(), requestId: z.string().optional() });
/** The body of a refusal. */
export type AgentError = z.infer<typeof agentErrorSchema>;

/**
 * The answer of POST /executions without ?stream=1: 201 with started true for a new execution,
 * 200 with started false when this requestId already runs (or ran) here.
 */
export const executionStartAnswerSchema = z.object({ requestId: requestIdSchema, started: z.boolean() });
/** The answer of POST /executions without ?stream=1. */
export type ExecutionStartAnswer = z.infer<typeof executionStartAnswerSchema>;

/** The answer of GET /executions/:id: whether it ended, its last seq, its end record once written. */
export const executionSummarySchema = z.object({
  requestId: requestIdSchema,
  ended: z.boolean(),
  lastSeq: z.int().nonnegative(),
  end: agentEndRecordSchema.nullable(),
});
/** The answer of GET /executions/:id. */
export type ExecutionSummary = z.infer<typeof executionSummarySchema>;

/** The answer of PUT /code/:sha256 that took the package: 201 extracted now, 200 already cached. */
export const codeStoredAnswerSchema = z.object({ cached: z.boolean() });
/** The answer of PUT /code/:sha256 that took the package. */
export type CodeStoredAnswer = z.infer<typeof codeStoredAnswerSchema>;

/**
 * One sentence saying why a value does not fit its schema: the first issue, after the path of the
 * field it concerns (e.g. `requestId: must be 1-128 letters, digits, - or _`).
 */
export function problemOf(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return "not valid";
  return issue.path.length > 0 ? `${issue.path.map(String).join(".")}: ${issue.message}` : issue.message;
}
