// What the agent answers about an execution: its outcome and the records of its NDJSON stream
// (POST /executions?stream=1, GET /executions/:id/stream). The agent builds them, the instance
// parses every line with agentRecordSchema (a line that does not parse is skipped).
import * as z from "zod";

/**
 * How one execution ended. The agent reports every kind but `crashed`, which the instance uses when
 * it loses the container or its stream; `platform_stop` is the container being stopped by the
 * platform (its SIGTERM, not a terminate request) while the handler ran, `message` saying how the
 * handler ended after it.
 */
export const executionOutcomeSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("returned"), result: z.unknown() }),
  z.object({ kind: z.literal("threw"), message: z.string(), stack: z.string().optional() }),
  z.object({ kind: z.literal("timeout") }),
  z.object({ kind: z.literal("oom"), message: z.string().optional() }),
  z.object({ kind: z.literal("exited"), code: z.int().nullable(), signal: z.string().nullable() }),
  z.object({ kind: z.literal("sigterm") }),
  z.object({ kind: z.literal("platform_stop"), message: z.string() }),
  z.object({ kind: z.literal("crashed"), message: z.string() }),
  z.object({ kind: z.literal("error"), message: z.string() }),
]);
/** How one execution ended, as the instance observed it. */
export type ExecutionOutcome = z.infer<typeof executionOutcomeSchema>;

/** A record's place in its execution's stream: 1, 2, 3... without holes. */
const seqSchema = z.int().positive();
/** When the agent wrote a record (epoch ms, the container's clock). */
const tsSchema = z.number().nonnegative();

/** The streams a log line comes from: the handler's stdout and stderr, or the agent's own lines. */
export const LOG_STREAMS = ["stdout", "stderr", "platform"] as const;

/**
 * The agent's first record of an execution, written the moment the handler process was handed the
 * event (after the container's caps are applied and the process is spawned), whatever the handler
 * prints: the execution's start. Its seq is 1 (the log lines follow it).
 */
export const agentStartedRecordSchema = z.object({ type: z.literal("started"), seq: seqSchema, ts: tsSchema });
/** The started record. */
export type AgentStartedRecord = z.infer<typeof agentStartedRecordSchema>;

/** A log line captured by the agent (a [PLATFORM] line on the `platform` stream is the agent's). */
export const agentLogRecordSchema = z.object({
  type: z.literal("log"),
  seq: seqSchema,
  ts: tsSchema,
  stream: z.enum(LOG_STREAMS),
  line: z.string(),
});
/** A log record. */
export type AgentLogRecord = z.infer<typeof agentLogRecordSchema>;

/**
 * The agent's last record of an execution: its outcome, how long the handler ran from the hand-over,
 * the handler process's peak memory when it reported one, and its exit code or signal when the
 * process exited (both null or absent otherwise).
 */
export const agentEndRecordSchema = z.object({
  type: z.literal("end"),
  seq: seqSchema,
  ts: tsSchema,
  outcome: executionOutcomeSchema,
  durationMs: z.number().nonnegative().optional(),
  maxRssKb: z.number().nonnegative().optional(),
  exitCode: z.int().nullable().optional(),
  signal: z.string().nullable().optional(),
});
/** The end record. */
export type AgentEndRecord = z.infer<typeof agentEndRecordSchema>;

/** Highest progress percent a handler may report (the lowest is 0); outside it, clamped. */
export const MAX_PROGRESS_PERCENT = 100;
/**
 * Longest progress message, in characters (UTF-16 units, marker included): a longer one is cut and
 * ends with PROGRESS_TRUNCATED_MARKER. Newlines become spaces, NUL becomes U+FFFD.
 */
export const MAX_PROGRESS_MESSAGE_CHARS = 256;
/** Ends a progress message that was cut to MAX_PROGRESS_MESSAGE_CHARS. */
export const PROGRESS_TRUNCATED_MARKER = "…[truncated]";
/**
 * Shortest interval between two progress records of one execution (250 ms: at most 4 a second). The
 * agent coalesces the reports made faster: the latest wins, and the latest one made before the
 * end is always written before the end record.
 */
export const MIN_PROGRESS_INTERVAL_MS = 250;

/**
 * The handler's progress (`context.progress(percent, message)`), bounded and coalesced by the agent
 * (see MIN_PROGRESS_INTERVAL_MS): only while the handler runs, never after the end record.
 */
export const agentProgressRecordSchema = z.object({
  type: z.literal("progress"),
  seq: seqSchema,
  ts: tsSchema,
  percent: z.number().min(0).max(MAX_PROGRESS_PERCENT),
  message: z.string().max(MAX_PROGRESS_MESSAGE_CHARS),
});
/** A progress record. */
export type AgentProgressRecord = z.infer<typeof agentProgressRecordSchema>;

/** Written on an idle stream every 15 s so that proxies keep it open; it carries nothing else. */
export const agentHeartbeatRecordSchema = z.object({ type: z.literal("heartbeat"), ts: tsSchema });
/** A heartbeat record. */
export type AgentHeartbeatRecord = z.infer<typeof agentHeartbeatRecordSchema>;

/** Records from..to (seqs) are no longer buffered by the agent: a resumed reader cannot have them. */
export const agentGapRecordSchema = z.object({ type: z.literal("gap"), from: seqSchema, to: seqSchema });
/** A gap record. */
export type AgentGapRecord = z.infer<typeof agentGapRecordSchema>;

/** Any record of an execution's NDJSON stream, told apart by `type`. */
export const agentRecordSchema = z.discriminatedUnion("type", [
  agentStartedRecordSchema,
  agentLogRecordSchema,
  agentProgressRecordSchema,
  agentEndRecordSchema,
  agentHeartbeatRecordSchema,
  agentGapRecordSchema,
]);
/** Any record of an execution's stream. */
export type AgentRecord = z.infer<typeof agentRecordSchema>;
