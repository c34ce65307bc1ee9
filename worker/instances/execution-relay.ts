import { type CodeExecutionSpec, IMAGE_RUNTIME, type ImageExecutionSpec } from "../contract/execution-spec";
import type { ClaimedEvent } from "../events/async-event-object";
import type { LogRecord } from "../events/event-log-store";
import { specImageOf } from "../functions/images";
import { logLimitBytesOf } from "../functions/model";
import type { ExecutionSpec } from "./agent-client";
import { type AgentEndRecord, type AgentProgressRecord, readAgentRecords } from "./agent-stream";
import { LogForwarder } from "./log-forwarder";

/** The function version an execution reports to its handler when its claim names none. */
const FUNCTION_VERSION = "$LATEST";
/** The agent's own limit runs this much past the function's timeout: the instance's deadline ends it first. */
const AGENT_TIMEOUT_MARGIN_MS = 1_000;

/** What the agent is asked to run for a claimed event: its function's snapshot, payload and context. */
export function executionSpecOf(claim: ClaimedEvent): ExecutionSpec {
  const snapshot = claim.function;
  const timeoutMs = snapshot.timeoutSeconds * 1000;
  // An image function: the image and its command instead of a runtime's handler and code package.
  const kind:
    | Pick<ImageExecutionSpec, "runtime" | "image">
    | Pick<CodeExecutionSpec, "runtime" | "handler" | "codeSha256"> = snapshot.image
    ? { runtime: IMAGE_RUNTIME, image: specImageOf(snapshot.image) }
    : {
        // A code function's runtime is never CustomImage (the registry pairs it with an image).
        runtime: snapshot.runtime as CodeExecutionSpec["runtime"],
        handler: snapshot.handler,
        codeSha256: snapshot.codeSha256,
      };
  return {
    requestId: claim.requestId,
    ...kind,
    event: JSON.parse(claim.payload) as unknown,
    environment: snapshot.environment,
    memoryLimitMb: snapshot.memoryMb,
    timeoutMs: timeoutMs + AGENT_TIMEOUT_MARGIN_MS,
    logLimitBytes: logLimitBytesOf(snapshot),
    context: {
      request_id: claim.requestId,
      function_name: snapshot.name,
      namespace: snapshot.namespace,
      function_version: claim.qualifier ?? FUNCTION_VERSION,
      memory_limit_in_mb: snapshot.memoryMb,
      time_limit_in_ms: timeoutMs,
    },
  };
}

/** The end of a relayed execution: the agent's end record and the log lines not forwarded yet. */
export interface RelayedEnd {
  end: AgentEndRecord;
  finalLogs: LogRecord[];
}

/** Where relayRecords sends what it reads, and how it knows the execution is still the instance's. */
export interface RelayTarget {
  /** False once the instance runs another execution (or none): the relay stops without an end. */
  stillCurrent(): boolean;
  /** Forwards a batch of log lines to the event (batches never overlap; see LogForwarder). */
  sendLogs(batch: LogRecord[]): Promise<void>;
  /**
   * Forwards the handler's progress to the event (the agent sends at most a few a second; see
   * MIN_PROGRESS_INTERVAL_MS). A failure is the target's to absorb: progress is never worth a relay.
   * Without it, progress records are skipped.
   */
  sendProgress?(record: AgentProgressRecord): Promise<void>;
}

/**
 * Reads an agent record stream, forwarding log lines to the target in batches, until the end
 * record: answers it with the lines not yet forwarded (they go with the outcome). Answers
 * undefined when the execution stopped being the instance's; throws when the stream ends first.
 */
export async function relayRecords(
  records: ReadableStream<Uint8Array>,
  signal: AbortSignal,
  target: RelayTarget,
): Promise<RelayedEnd | undefined> {
  const forwarder = new LogForwarder((batch) => target.sendLogs(batch));
  try {
    for await (const record of readAgentRecords(records, signal)) {
      if (!target.stillCurrent()) return undefined;
      if (record.type === "log") {
        const full = forwarder.add({ seq: record.seq, ts: record.ts, stream: record.stream, line: record.line });
        if (full) await full;
      } else if (record.type === "gap") {
        // Records the agent could not keep (its disk failed, or its spool was released): the log
        // says so, at the seq of the last one lost (no captured line has it).
        const full = forwarder.add({
          seq: record.to,
          ts: Date.now(),
          stream: "platform",
          line: `[PLATFORM] ${record.to - record.from + 1} log records (seq ${record.from}-${record.to} of the execution) were lost in the container and cannot be sent`,
        });
        if (full) await full;
      } else if (record.type === "progress") {
        await target.sendProgress?.(record);
      } else if (record.type === "end") {
        return { end: record, finalLogs: await forwarder.drain() };
      }
    }
    forwarder.flush();
    await forwarder.drain();
  } catch (error) {
    // The stream broke (or a send failed): no queued batch may be stored after this point, since
    // the relay resumes from the last acknowledged seq.
    await forwarder.abandon();
    throw error;
  }
  throw new Error("the agent's stream ended before the execution did");
}
