// Reads the agent's NDJSON record stream (containers/runtime/agent/PROTOCOL.md): every line is
// checked against the container contract's agentRecordSchema, and a line that does not fit it (torn,
// corrupt, or of another shape) is skipped, never cast.
import { type AgentRecord, type AgentStartedRecord, agentRecordSchema } from "../contract/agent-contract";

export type {
  AgentEndRecord,
  AgentGapRecord,
  AgentHeartbeatRecord,
  AgentLogRecord,
  AgentProgressRecord,
  AgentRecord,
  AgentStartedRecord,
} from "../contract/agent-contract";

/** One NDJSON line as an agent record, or undefined when it is not JSON or not a valid record. */
function recordOf(line: string): AgentRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  const parsed = agentRecordSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

/**
 * Splits an NDJSON byte stream into agent records; a line that is not JSON or not a valid record
 * (a torn or corrupt line) is skipped rather than stopping the relay. An abort of `signal` cancels
 * the stream and throws its reason; so does a consumer that stops early cancel the stream.
 */
export async function* readAgentRecords(
  body: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
): AsyncGenerator<AgentRecord> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let pending = "";
  const onAbort = () => {
    reader.cancel(signal?.reason).catch(() => undefined);
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for (;;) {
      if (signal?.aborted) throw signal.reason;
      const { done, value } = await reader.read();
      if (signal?.aborted) throw signal.reason;
      if (done) break;
      pending += decoder.decode(value, { stream: true });
      let newline = pending.indexOf("\n");
      while (newline >= 0) {
        const line = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        newline = pending.indexOf("\n");
        if (line.length === 0) continue;
        const record = recordOf(line);
        if (record) yield record;
      }
    }
    const rest = (pending + decoder.decode()).trim();
    if (rest.length > 0) {
      const record = recordOf(rest);
      if (record) yield record;
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    // Ended, aborted, or left early by its consumer: the stream is not read any further.
    reader.cancel().catch(() => undefined);
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
      if (first?.type === "started") {
        started = first;
        head = head.subarray(newline + 1);
      }
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
