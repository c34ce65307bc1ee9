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

  it("stores nothing after a failed send: the queued batches are skipped and add() and drain() throw", async () => {
    const stored: number[] = [];
    let clock = 1_000;
    let calls = 0;
    const forwarder = new LogForwarder(
      async (batch) => {
        calls += 1;
        if (calls === 2) throw new Error("the event's object reset");
        stored.push(...batch.map((r) => r.seq));
      },
      () => clock,
    );
    // Each line after a quiet spell is its own send.
    for (let seq = 1; seq <= 4; seq++) {
      forwarder.add(record(seq));
      clock += 100;
    }
    await expect(forwarder.drain()).rejects.toThrow(/reset/);
    // Line 2 was lost: 3 and 4 were not stored after it, so a relay resuming after 1 loses nothing.
    expect(stored).toEqual([1]);
    expect(() => forwarder.add(record(5))).toThrow(/reset/);
  });

  it("makes its caller wait while more than four sends are queued, and lets it go once they drain", async () => {
    const releases: Array<() => void> = [];
    let clock = 1_000;
    const forwarder = new LogForwarder(
      (batch) =>
        new Promise<void>((resolve) => {
          void batch;
          releases.push(resolve);
        }),
      () => clock,
    );
    const waits: Array<Promise<void> | undefined> = [];
    for (let seq = 1; seq <= 6; seq++) {
      waits.push(forwarder.add(record(seq)));
      clock += 100;
    }
    expect(waits.slice(0, 4).every((wait) => wait === undefined)).toBe(true);
    const blocked = waits.at(-1);
    expect(blocked).toBeInstanceOf(Promise);
    let released = false;
    void blocked?.then(() => {
      released = true;
    });
    // Settle the sends one by one (they are serial: the next starts once the one before settled).
    while (!released) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      releases.shift()?.();
    }
    expect(released).toBe(true);
  });
});
