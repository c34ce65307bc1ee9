// Retention per namespace and the archive to R2 on the running platform with a real container:
// the namespace's retention is set to its minimum (an hour) with the archive on; the diagnostics'
// expire route makes an ended event's retention fire now instead of an hour later. The event is
// then gone (404) and its archive answers its status, timeline and log; with the archive off,
// nothing is archived. One function, one container.
import { beforeAll, describe, expect, inject, it } from "vitest";
import { ADMIN_HEADERS, ApiClient, type EventView } from "../helpers/api-client";

const baseUrl = inject("baseUrl");
const api = new ApiClient(baseUrl);
const NAMESPACE = "archive-e2e";
/** The shortest retention a namespace may set (worker/events/event-retention.ts MIN_RETENTION_HOURS). */
const MIN_RETENTION_HOURS = 1;
/** The longest (MAX_RETENTION_HOURS). */
const MAX_RETENTION_HOURS = 168;

const HANDLER = `
exports.main_handler = async (event) => {
  console.log("archived line one", event.n);
  console.error("archived line two", event.n);
  return { n: event.n };
};
`;

interface Settings {
  namespace: string;
  retentionHours: number;
  archive: boolean;
}

interface ArchivedView {
  archivedAt: string;
  event: EventView & { timeline: { kind: string }[] };
  logLines: number;
  logTruncated: boolean;
}

interface ArchivedLogPage {
  records: { seq: number; stream: string; line: string }[];
  lastSeq: number;
  more: boolean;
}

function putSettings(body: unknown, namespace = NAMESPACE, client = api) {
  return client.json<Settings & { error?: { code: string; message: string } }>(`/v1/namespaces/${namespace}/settings`, {
    method: "PUT",
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** Makes the ended event's retention fire now (diagnostics, administrators only). */
async function expireNow(requestId: string): Promise<boolean> {
  const response = await fetch(`${baseUrl}/_diagnostics/events/${requestId}/expire`, {
    method: "POST",
    headers: ADMIN_HEADERS,
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { expired: boolean }).expired;
}

describe("retention per namespace with the archive", () => {
  let name: string;
  let archivedId: string;
  let unarchivedId: string;
  let before: EventView;

  beforeAll(async () => {
    name = await api.createUniqueFunction(NAMESPACE, "archive", {
      runtime: "Nodejs22",
      handler: "index.main_handler",
      files: { "index.js": HANDLER },
      timeout: 30,
      maxConcurrency: 1,
    });
    archivedId = await api.invoke(NAMESPACE, name, { n: 1 });
    unarchivedId = await api.invoke(NAMESPACE, name, { n: 2 });
    before = await api.waitForEvent(archivedId);
    await api.waitForEvent(unarchivedId);
  });

  it("refuses out-of-bounds and malformed settings, and another namespace's, changing nothing", async () => {
    for (const body of [
      { retentionHours: MIN_RETENTION_HOURS - 1 },
      { retentionHours: MAX_RETENTION_HOURS + 1 },
      { archive: "yes" },
      { keep: 1 },
      "{not json",
    ]) {
      const refused = await putSettings(body);
      expect(refused.status, JSON.stringify(body)).toBe(400);
    }
    expect((await putSettings({ archive: true }, "bad namespace!")).status).toBe(400);
    // A key of another namespace does not see this one.
    const key = await api.json<{ secretId: string; secretKey: string }>("/v1/admin/credentials", {
      method: "POST",
      body: JSON.stringify({ namespaces: ["archive-e2e-other"], description: "archive e2e" }),
    });
    expect(key.status).toBe(201);
    const stranger = new ApiClient(baseUrl, key.body);
    expect((await putSettings({ archive: false }, NAMESPACE, stranger)).status).toBe(404);
    expect((await stranger.json(`/v1/namespaces/${NAMESPACE}/archive/events`)).status).toBe(404);
  });

  it("deletes an ended event at its retention and keeps its status, timeline and log in the archive", async () => {
    const set = await putSettings({ retentionHours: MIN_RETENTION_HOURS, archive: true });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ namespace: NAMESPACE, retentionHours: MIN_RETENTION_HOURS, archive: true });
    const liveLog = await api.logs(archivedId);

    expect(await expireNow(archivedId)).toBe(true);
    expect((await api.json(`/v1/events/${archivedId}`)).status).toBe(404);

    const archived = await api.json<ArchivedView>(`/v1/namespaces/${NAMESPACE}/archive/events/${archivedId}`);
    expect(archived.status).toBe(200);
    expect(archived.body.event).toMatchObject({
      requestId: archivedId,
      namespace: NAMESPACE,
      functionName: name,
      status: "FINISHED",
      result: { n: 1 },
      endedAt: before.endedAt,
    });
    expect(archived.body.event.timeline.map((entry) => entry.kind)).toEqual(
      expect.arrayContaining(["accepted", "running", "ended"]),
    );
    const log = await api.json<ArchivedLogPage>(`/v1/namespaces/${NAMESPACE}/archive/events/${archivedId}/logs`);
    expect(log.status).toBe(200);
    expect(log.body.records.map((record) => record.line)).toEqual(liveLog.map((record) => record.line));
    expect(log.body.records.map((record) => record.line).join("\n")).toContain("archived line two 1");
    expect(archived.body.logLines).toBe(liveLog.length);

    const day = (before.endedAt ?? "").slice(0, 10);
    const listed = await api.json<{ events: { requestId: string }[] }>(
      `/v1/namespaces/${NAMESPACE}/archive/events?functionName=${name}&date=${day}`,
    );
    expect(listed.body.events.map((entry) => entry.requestId)).toEqual([archivedId]);

    // The archive is deleted on request: another namespace's path answers 404 and deletes nothing.
    const path = `/v1/namespaces/${NAMESPACE}/archive/events/${archivedId}`;
    const elsewhere = await api.json(`/v1/namespaces/archive-e2e-other/archive/events/${archivedId}`, {
      method: "DELETE",
    });
    expect(elsewhere.status).toBe(404);
    expect((await api.json(path)).status).toBe(200);
    expect((await api.json(path, { method: "DELETE" })).status).toBe(204);
    expect((await api.json(path)).status).toBe(404);
    expect((await api.json(`${path}/logs`)).status).toBe(404);
  });

  it("archives nothing when the namespace's archive is off", async () => {
    expect((await putSettings({ archive: false })).body.archive).toBe(false);
    expect(await expireNow(unarchivedId)).toBe(true);
    expect((await api.json(`/v1/events/${unarchivedId}`)).status).toBe(404);
    const missing = await api.json<{ error: { code: string } }>(
      `/v1/namespaces/${NAMESPACE}/archive/events/${unarchivedId}`,
    );
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("EVENT_NOT_FOUND");
  });
});
