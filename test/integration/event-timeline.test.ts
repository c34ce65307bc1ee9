import { env, evictDurableObject, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { EventState, PublicEvent } from "../../worker/events/event-machine";
import { timelineEntry } from "../../worker/events/event-timeline";
import { functionSnapshot } from "../helpers/function-snapshot";
import { zipBase64 } from "../helpers/zip";

const ROOT = { authorization: "Bearer AKIDintegration:integration-secret-key-0123456789abcdef" };
const ZIP = zipBase64({ "index.js": "exports.main_handler = async () => 'ok';" });
let counter = 0;

function uniqueName(prefix: string): string {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${counter}`.slice(0, 30);
}

function call(path: string, init: RequestInit = {}, auth: Record<string, string> = ROOT): Promise<Response> {
  return SELF.fetch(`https://platform.test${path}`, { ...init, headers: { ...auth, ...(init.headers ?? {}) } });
}

/** A fresh key for one namespace (its own read-rate bucket). */
async function createKey(namespace: string): Promise<Record<string, string>> {
  const response = await call("/v1/admin/credentials", {
    method: "POST",
    body: JSON.stringify({ namespaces: [namespace], description: "event-timeline" }),
  });
  expect(response.status).toBe(201);
  const key = (await response.json()) as { secretId: string; secretKey: string };
  return { authorization: `Bearer ${key.secretId}:${key.secretKey}` };
}

/**
 * A queued event of `namespace/report` as its object stores it at acceptance (accepted, queued),
 * with no dispatch message: the test plays the instance.
 */
async function seedQueued(namespace: string) {
  const requestId = crypto.randomUUID();
  const now = Date.now();
  const state: EventState = {
    requestId,
    namespace,
    functionName: "report",
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    function: functionSnapshot(namespace, "report", {
      codeSha256: "b".repeat(64),
      codeKey: `code/${namespace}/report/b.zip`,
      timeoutSeconds: 600,
    }),
    phase: "queued",
    version: 1,
    invokedAt: now - 2_000,
    timeline: [timelineEntry("accepted", now - 2_000), timelineEntry("queued", now - 1_999, "dispatch enqueued")],
  };
  const stub = env.ASYNC_EVENT.get(env.ASYNC_EVENT.idFromName(requestId));
  await runInDurableObject(stub, async (_instance, storage) => {
    await storage.storage.put({ state, payload: "{}" });
    await storage.storage.setAlarm(now + 60 * 60_000);
  });
  await evictDurableObject(stub);
  return { requestId, stub, instanceId: `${namespace}/report#0` };
}

async function viewOf(requestId: string, key: Record<string, string>): Promise<PublicEvent> {
  const response = await call(`/v1/events/${requestId}`, {}, key);
  expect(response.status).toBe(200);
  return (await response.json()) as PublicEvent;
}

/** The stream's events in order: "log:<line>", "timeline:<kind>" or the event type. */
function sequence(text: string): string[] {
  const events: string[] = [];
  for (const block of text.split("\n\n")) {
    const type = /^event: (.*)$/m.exec(block)?.[1];
    const data = /^data: (.*)$/m.exec(block)?.[1];
    if (!type || !data) continue;
    const parsed = JSON.parse(data) as { line?: string; kind?: string };
    events.push(type === "log" ? `log:${parsed.line}` : type === "timeline" ? `timeline:${parsed.kind}` : type);
  }
  return events;
}

describe("event timeline in the status", () => {
  it("starts an invoked event's timeline with accepted then queued", async () => {
    const name = uniqueName("tl");
    const created = await call("/v1/namespaces/default/functions", {
      method: "POST",
      body: JSON.stringify({ name, runtime: "Nodejs22", code: { zipFile: ZIP } }),
    });
    expect(created.status).toBe(201);
    const invoked = await call(`/v1/namespaces/default/functions/${name}/invocations`, {
      method: "POST",
      body: "{}",
    });
    expect(invoked.status).toBe(202);
    const { requestId } = (await invoked.json()) as { requestId: string };
    const view = await viewOf(requestId, ROOT);
    expect(view.timeline.slice(0, 2)).toEqual([
      { at: view.invokedAt, kind: "accepted", detail: null },
      { at: expect.any(String), kind: "queued", detail: "dispatch enqueued" },
    ]);
    expect(Date.parse(view.timeline[1]?.at ?? "")).toBeGreaterThanOrEqual(Date.parse(view.invokedAt));
  });

  it("records each step the instance reports once, in order, however often it is reported", async () => {
    const namespace = uniqueName("ns");
    const key = await createKey(namespace);
    const { requestId, stub, instanceId } = await seedQueued(namespace);
    for (let delivery = 0; delivery < 2; delivery += 1) {
      expect((await stub.claim(instanceId)).ok).toBe(true);
      await stub.markContainer(instanceId, true, Date.now());
    }
    for (let delivery = 0; delivery < 2; delivery += 1) {
      expect(await stub.markStarted(instanceId, true, "boot-1", Date.now())).toEqual({ ok: true });
    }
    await stub.appendLogs([{ seq: 1, ts: Date.now(), stream: "stdout", line: "working" }], instanceId);
    for (let delivery = 0; delivery < 2; delivery += 1) {
      await stub.complete(instanceId, { kind: "returned", result: "done" });
    }
    const view = await viewOf(requestId, key);
    expect(view.timeline.map((entry) => [entry.kind, entry.detail])).toEqual([
      ["accepted", null],
      ["queued", "dispatch enqueued"],
      ["instance-assigned", instanceId],
      ["container-starting", "new container"],
      ["running", "cold start"],
      ["ended", "FINISHED 200"],
    ]);
    const times = view.timeline.map((entry) => Date.parse(entry.at));
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  it("ignores a container report from an instance that did not claim the event", async () => {
    const namespace = uniqueName("ns");
    const key = await createKey(namespace);
    const { requestId, stub, instanceId } = await seedQueued(namespace);
    await stub.markContainer(instanceId, true, Date.now());
    expect((await stub.claim(instanceId)).ok).toBe(true);
    await stub.markContainer(`${namespace}/report#1`, false, Date.now());
    const kinds = (await viewOf(requestId, key)).timeline.map((entry) => entry.kind);
    expect(kinds).toEqual(["accepted", "queued", "instance-assigned"]);
  });

  it("answers NOT_FOUND for another namespace's event, exactly as for an unknown one", async () => {
    const namespace = uniqueName("ns");
    const { requestId } = await seedQueued(namespace);
    const other = await createKey(uniqueName("other"));
    for (const path of [`/v1/events/${requestId}`, `/v1/events/${requestId}/logs/stream`]) {
      const foreign = await call(path, {}, other);
      const unknown = await call(path.replace(requestId, crypto.randomUUID()), {}, other);
      expect(foreign.status).toBe(404);
      expect(unknown.status).toBe(404);
      const [foreignBody, unknownBody] = [await foreign.text(), await unknown.text()];
      expect(foreignBody).not.toContain("timeline");
      expect(JSON.parse(foreignBody)).toMatchObject({ error: { code: JSON.parse(unknownBody).error.code } });
    }
  });
});

describe("event timeline on the live-log stream", () => {
  it("sends a later follower the timeline so far, then entries as they happen among the lines", async () => {
    const namespace = uniqueName("ns");
    const key = await createKey(namespace);
    const { requestId, stub, instanceId } = await seedQueued(namespace);
    expect((await stub.claim(instanceId)).ok).toBe(true);
    const response = await call(`/v1/events/${requestId}/logs/stream`, {}, key);
    expect(response.status).toBe(200);
    const reader = response.body?.getReader();
    if (!reader) throw new Error("no body");
    const decoder = new TextDecoder();
    let text = "";
    while (!text.includes('"kind":"instance-assigned"')) text += decoder.decode((await reader.read()).value);
    await stub.markContainer(instanceId, false, Date.now());
    expect(await stub.markStarted(instanceId, false, "boot-1", Date.now())).toEqual({ ok: true });
    await stub.appendLogs([{ seq: 1, ts: Date.now(), stream: "stdout", line: "working" }], instanceId);
    await stub.complete(instanceId, { kind: "returned", result: "done" });
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      text += decoder.decode(chunk.value);
    }
    const events = sequence(text);
    expect(events.map((event) => event.replace(/^log:\[PLATFORM\] (START|END).*/, "log:$1"))).toEqual([
      "timeline:accepted",
      "timeline:queued",
      "timeline:instance-assigned",
      "timeline:container-warm",
      "timeline:running",
      "log:START",
      "log:working",
      "timeline:ended",
      "log:END",
      "end",
    ]);
  });

  it("opens an ended event's stream with its whole timeline before its log and the end", async () => {
    const namespace = uniqueName("ns");
    const key = await createKey(namespace);
    const { requestId, stub, instanceId } = await seedQueued(namespace);
    await stub.claim(instanceId);
    await stub.markStarted(instanceId, true, "boot-1", Date.now());
    await stub.complete(instanceId, { kind: "returned", result: "done" });
    const response = await call(`/v1/events/${requestId}/logs/stream`, {}, key);
    expect(response.status).toBe(200);
    const events = sequence(await response.text());
    expect(events.slice(0, 6)).toEqual([
      "timeline:accepted",
      "timeline:queued",
      "timeline:instance-assigned",
      "timeline:container-starting",
      "timeline:running",
      "timeline:ended",
    ]);
    expect(events.at(-1)).toBe("end");
  });
});
