// EventIndexDuty (events/event-index-duty.ts): the end's row sent on the queue is forgotten once the
// queue has it, unless its consumer handed it back meanwhile (takeOver), and then it stays owed.
import { describe, expect, it } from "vitest";
import { EventIndexDuty } from "../../worker/events/event-index-duty";
import type { EventIndexEntry } from "../../worker/events/event-index-entry";
import type { EventStorage } from "../../worker/events/event-storage";
import { queuedEventState } from "../helpers/event-state";

/** Storage that keeps only the owed write (what EventIndexDuty stores). */
function fakeStorage() {
  const held: { pending: unknown } = { pending: undefined };
  const storage = {
    savePendingIndex: async (pending: unknown) => {
      held.pending = pending;
    },
    deletePendingIndex: async () => {
      held.pending = undefined;
    },
  } as unknown as EventStorage;
  return { held, storage };
}

const noDb = () => ({}) as D1Database;
const rearm = async () => undefined;

describe("the end's index row sent on the queue", () => {
  it("is forgotten once the queue has it", async () => {
    const { held, storage } = fakeStorage();
    const sent: EventIndexEntry[] = [];
    const duty = new EventIndexDuty(storage, noDb, rearm, async (entry) => void sent.push(entry));
    const state = queuedEventState({ version: 4, invokedAt: Date.now() });
    duty.owe(4, Date.now());
    await duty.flush(state, true);
    expect(sent.map((entry) => entry.version)).toEqual([4]);
    expect(duty.owed).toBeUndefined();
    expect(held.pending).toBeUndefined();
  });

  it("stays owed when its consumer hands it back before the send has answered", async () => {
    const { held, storage } = fakeStorage();
    const state = queuedEventState({ version: 4, invokedAt: Date.now() });
    let duty: EventIndexDuty | undefined;
    // The consumer met D1 refusing and handed the row back while the send was still answering.
    duty = new EventIndexDuty(storage, noDb, rearm, async () => {
      await duty?.takeOver(state);
    });
    duty.owe(4, Date.now());
    await duty.flush(state, true);
    expect(duty.owed).toMatchObject({ version: 4, attempts: 0 });
    expect(held.pending).toMatchObject({ version: 4 });
  });

  it("stays owed, with one attempt counted, when the send fails", async () => {
    const { storage } = fakeStorage();
    const state = queuedEventState({ version: 4, invokedAt: Date.now() });
    const duty = new EventIndexDuty(storage, noDb, rearm, async () => {
      throw new Error("injected fault: the queue refuses sends");
    });
    duty.owe(4, Date.now());
    const warn = console.warn;
    console.warn = () => undefined;
    try {
      await duty.flush(state, true);
    } finally {
      console.warn = warn;
    }
    expect(duty.owed).toMatchObject({ version: 4, attempts: 1 });
  });
});

describe("a row written to D1 by the event itself", () => {
  it("goes to the index database of the event's namespace", async () => {
    const { storage } = fakeStorage();
    const asked: string[] = [];
    const batches: number[] = [];
    const db = {
      prepare: () => ({ bind: () => ({}) }),
      batch: async (statements: unknown[]) => void batches.push(statements.length),
    } as unknown as D1Database;
    const duty = new EventIndexDuty(
      storage,
      (namespace) => {
        asked.push(namespace);
        return db;
      },
      rearm,
    );
    const state = queuedEventState({ namespace: "split-a", version: 2, invokedAt: Date.now() });
    duty.owe(2, Date.now());
    await duty.flush(state, false);
    expect(asked).toEqual(["split-a"]);
    expect(batches).toEqual([1]);
    expect(duty.owed).toBeUndefined();
  });
});
