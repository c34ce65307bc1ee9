import type { ExecutionOutcome } from "../events/event-machine";

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
