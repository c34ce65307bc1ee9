import { describe, expect, it, vi } from "vitest";
import type { LogRecord } from "../../worker/events/event-log-store";
import { LogForwarder } from "../../worker/instances/log-forwarder";

function record(seq: number): LogRecord {
  return { seq, ts: seq, stream: "stdout", line: `line ${seq}` };
}

describe("LogForwarder", () => {
  it("sends a line after a quiet spell at once", async () => {
    const sent: number[][] = [];
    let clock = 1_000;
    const forwarder = new LogForwarder(
      async (batch) => {
        sent.push(batch.map((r) => r.seq));
      },
      () => clock,
    );
    forwarder.add(record(1));
    clock += 500;
    forwarder.add(record(2));
    expect(await forwarder.drain()).toEqual([]);
    expect(sent).toEqual([[1], [2]]);
  });

  it("batches a burst and hands back what was not sent yet, in order", async () => {
    const sent: number[][] = [];
    const forwarder = new LogForwarder(
      async (batch) => {
        sent.push(batch.map((r) => r.seq));
      },
      () => 1_000,
    );
    for (let seq = 1; seq <= 5; seq++) forwarder.add(record(seq));
    const rest = await forwarder.drain();
    expect(sent).toEqual([[1]]);
    expect(rest.map((r) => r.seq)).toEqual([2, 3, 4, 5]);
  });

  it("sends the buffered lines when the 50 ms batch window closes, even when no further line arrives", async () => {
    vi.useFakeTimers();
    try {
      const sent: number[][] = [];
      const forwarder = new LogForwarder(
        async (batch) => {
          sent.push(batch.map((r) => r.seq));
        },
        () => Date.now(),
      );
      forwarder.add(record(1));
      forwarder.add(record(2));
      forwarder.add(record(3));
      await vi.advanceTimersByTimeAsync(49);
      expect(sent).toEqual([[1]]);
      await vi.advanceTimersByTimeAsync(1);
      expect(sent).toEqual([[1], [2, 3]]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("never reorders sends, even when an earlier one is slow", async () => {
    const sent: number[] = [];
    let clock = 0;
    const forwarder = new LogForwarder(
      async (batch) => {
        if (batch[0]?.seq === 1) await new Promise((resolve) => setTimeout(resolve, 30));
        sent.push(...batch.map((r) => r.seq));
      },
      () => clock,
    );
    forwarder.add(record(1));
    clock += 100;
    forwarder.add(record(2));
    await forwarder.drain();
    expect(sent).toEqual([1, 2]);
  });
});
