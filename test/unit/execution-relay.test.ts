import { describe, expect, it } from "vitest";
import type { LogRecord } from "../../worker/events/event-log-store";
import { relayRecords } from "../../worker/instances/execution-relay";

/** An agent record stream of the given records, as NDJSON. */
function streamOf(records: readonly Record<string, unknown>[]): ReadableStream<Uint8Array> {
  const text = records.map((record) => `${JSON.stringify(record)}\n`).join("");
  return new Blob([text]).stream();
}

const END = {
  type: "end",
  seq: 7,
  ts: 7,
  outcome: { kind: "returned", result: null },
  durationMs: 1,
};

describe("relayRecords", () => {
  it("stores a platform line for records the agent lost, at the seq of the last one, between its neighbours", async () => {
    const sent: LogRecord[] = [];
    const relayed = await relayRecords(
      streamOf([
        { type: "started", seq: 1, ts: 1 },
        { type: "log", seq: 2, ts: 2, stream: "stdout", line: "before" },
        { type: "gap", from: 3, to: 5 },
        { type: "log", seq: 6, ts: 6, stream: "stdout", line: "after" },
        END,
      ]),
      new AbortController().signal,
      { stillCurrent: () => true, sendLogs: async (batch) => void sent.push(...batch) },
    );
    const lines = [...sent, ...(relayed?.finalLogs ?? [])];
    expect(lines.map((record) => [record.seq, record.stream])).toEqual([
      [2, "stdout"],
      [5, "platform"],
      [6, "stdout"],
    ]);
    expect(lines[1]?.line).toBe(
      "[PLATFORM] 3 log records (seq 3-5 of the execution) were lost in the container and cannot be sent",
    );
    expect(relayed?.end.seq).toBe(7);
  });

  it("sends nothing more once a send failed, and fails the relay so that it resumes from the last stored seq", async () => {
    const stored: number[] = [];
    let calls = 0;
    const records = [{ type: "started", seq: 1, ts: 1 }];
    // Lines far apart in time: each is its own send.
    for (let seq = 2; seq <= 6; seq++)
      records.push({ type: "log", seq, ts: seq, stream: "stdout", line: `l${seq}` } as never);
    const slowStream = new ReadableStream<Uint8Array>({
      async start(controller) {
        for (const record of [...records, END]) {
          controller.enqueue(new TextEncoder().encode(`${JSON.stringify(record)}\n`));
          await new Promise((resolve) => setTimeout(resolve, 60));
        }
        controller.close();
      },
    });
    await expect(
      relayRecords(slowStream, new AbortController().signal, {
        stillCurrent: () => true,
        sendLogs: async (batch) => {
          calls += 1;
          if (calls === 2) throw new Error("the event's object reset");
          stored.push(...batch.map((record) => record.seq));
        },
      }),
    ).rejects.toThrow(/reset/);
    expect(stored).toEqual([2]);
  });
});
