// What accepting an event writes in its new Durable Object (issue 17: the accept path does one
// storage write and one queue send): no table is created until the event's log or a large result
// needs one, and the log still works once it does.
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { EventPayload } from "../../worker/events/async-event-object";
import type { LogPage } from "../../worker/events/event-log-store";
import type { PublicEvent } from "../../worker/events/event-machine";
import { unwrap } from "../../worker/shared/errors";
import { eventStub } from "../../worker/shared/objects";
import { acceptedEvent, uniqueFunction } from "../helpers/fake-dispatch";

/** The tables of an object's SQLite database (its own, not SQLite's or the runtime's). */
async function tablesOf(requestId: string): Promise<string[]> {
  return runInDurableObject(eventStub(env, requestId), async (_object, state) =>
    state.storage.sql
      .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .toArray()
      .map((row) => row.name)
      .filter((name) => !name.startsWith("sqlite_") && !name.startsWith("_cf_")),
  );
}

describe("accepting an event", () => {
  it("creates no table in the event's new object: the log's tables come with its first line", async () => {
    const { snapshot } = uniqueFunction("acc");
    const { requestId } = await acceptedEvent(snapshot, { n: 1 });
    expect(await tablesOf(requestId)).toEqual([]);
    // The event is stored and readable all the same.
    const stub = eventStub(env, requestId);
    expect(unwrap<PublicEvent>(await stub.view()).status).toBe("RUNNING");
    expect(unwrap<EventPayload>(await stub.payload()).payload).toBe('{"n":1}');
    // The log, never written, reads as empty; its first line is stored and read back.
    expect(unwrap<LogPage>(await stub.logs(0, 10)).records).toEqual([]);
    const instanceId = `${snapshot.namespace}/${snapshot.name}#0`;
    expect((await stub.claim(instanceId)).ok).toBe(true);
    await stub.appendLogs([{ seq: 1, ts: Date.now(), stream: "stdout", line: "first" }], instanceId);
    expect(unwrap<LogPage>(await stub.logs(0, 10)).records.map((record) => record.line)).toContain("first");
    expect(await tablesOf(requestId)).toEqual(expect.arrayContaining(["logs", "log_meta", "log_segments"]));
    expect(await tablesOf(requestId)).not.toContain("event_result");
  });
});
