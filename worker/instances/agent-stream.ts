import type { ExecutionOutcome } from "../events/event-machine";

/**
 * The agent's first record of an execution, written the moment the handler process was handed the
 * event (after the container's caps are applied and the process is spawned), whatever the handler
 * prints: the execution's start. Its seq is 1 (the log lines follow it).
 */
export interface AgentStartedRecord {
  type: "started";
  seq: number;
  ts: number;
}

/** A log line captured by the agent. */
export interface AgentLogRecord {
  type: "log";
  seq: number;
  ts: number;
  stream: "stdout" | "stderr" | "platform";
  line: string;
}

/** The agent's last record of an execution. */
export interface AgentEndRecord {
  type: "end";
  seq: number;
  ts: number;
  outcome: ExecutionOutcome;
  durationMs?: number;
  maxRssKb?: number;
}

/** Any record on the agent's execution stream. */
export type AgentRecord =
  | AgentStartedRecord
  | AgentLogRecord
  | AgentEndRecord
  | { type: "heartbeat"; ts: number }
  | { type: "gap"; from: number; to: number };

/** Splits an NDJSON byte stream into parsed agent records; malformed lines are skipped. */
export async function* readAgentRecords(
  body: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
): AsyncGenerator<AgentRecord> {
  const decoder = new TextDecoder();
  let pending = "";
  const onAbort = () => {
    body.cancel(signal?.reason).catch(() => undefined);
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  for await (const chunk of body) {
    if (signal?.aborted) throw signal.reason;
    pending += decoder.decode(chunk, { stream: true });
    let newline = pending.indexOf("\n");
    while (newline >= 0) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      newline = pending.indexOf("\n");
      if (line.length === 0) continue;
      try {
        yield JSON.parse(line) as AgentRecord;
      } catch {
        // A torn or corrupt line: skip it rather than stop relaying.
      }
    }
  }
  const rest = (pending + decoder.decode()).trim();
  if (rest.length > 0) {
    try {
      yield JSON.parse(rest) as AgentRecord;
    } catch {
      // ignored, as above
    }
  }
}

/** Most bytes read while looking for the end of a stream's first record (a started record is tiny). */
const MAX_FIRST_RECORD_BYTES = 1024 * 1024;
/** The byte that ends an NDJSON record. */
const NEWLINE = 0x0a;

/**
 * Reads an execution stream up to the end of its first record (heartbeats before it, which carry
 * nothing, are dropped: a handler's code may take a while to load) and, when that record is the
 * started record, takes it off the stream: the instance marks the event started on it, then relays
 * the rest. `rest` holds every byte after the started record, or every byte read when the first
 * record is another one (an execution that ended before its handler was handed the event) or when
 * the stream ends or passes MAX_FIRST_RECORD_BYTES first: nothing is lost to the relay.
 */
export async function readStartedRecord(
  body: ReadableStream<Uint8Array>,
): Promise<{ started: AgentStartedRecord | undefined; rest: ReadableStream<Uint8Array> }> {
  const reader = body.getReader();
  let head = new Uint8Array(0);
  let started: AgentStartedRecord | undefined;
  for (;;) {
    const newline = head.indexOf(NEWLINE);
    if (newline >= 0) {
      const first = recordOf(new TextDecoder().decode(head.subarray(0, newline)));
      if (first?.type === "heartbeat") {
        head = head.subarray(newline + 1);
        continue;
      }
      started = startedRecordOf(first);
      if (started !== undefined) head = head.subarray(newline + 1);
      break;
    }
    if (head.length > MAX_FIRST_RECORD_BYTES) break;
    const { done, value } = await reader.read();
    if (done) break;
    const joined = new Uint8Array(head.length + value.length);
    joined.set(head);
    joined.set(value, head.length);
    head = joined;
  }
  const leftover = head;
  const rest = new ReadableStream<Uint8Array>({
    start(controller) {
      if (leftover.length > 0) controller.enqueue(leftover);
    },
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return { started, rest };
}

/** One NDJSON line as an object, or undefined when it is not JSON or not an object. */
function recordOf(line: string): { type?: unknown; seq?: unknown; ts?: unknown } | undefined {
  try {
    const record = JSON.parse(line) as unknown;
    return typeof record === "object" && record !== null ? record : undefined;
  } catch {
    return undefined; // not a record: left for the relay, which skips it
  }
}

/** The record as a started record, or undefined when it is anything else. */
function startedRecordOf(
  record: { type?: unknown; seq?: unknown; ts?: unknown } | undefined,
): AgentStartedRecord | undefined {
  if (record?.type !== "started" || typeof record.seq !== "number" || typeof record.ts !== "number") return undefined;
  if (!Number.isSafeInteger(record.seq) || !Number.isFinite(record.ts)) return undefined;
  return { type: "started", seq: record.seq, ts: record.ts };
}
