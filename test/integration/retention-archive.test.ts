// Retention per namespace (settings routes, the event object's deletion by its namespace's
// retention, the index purge) and the archive to R2 (written before the deletion, read by the
// archive routes, scoped to its namespace).
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject, SELF } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  ARCHIVE_EXPIRY,
  archiveChunkKey,
  archiveKey,
  archivePointerKey,
  deleteFunctionArchives,
} from "../../worker/events/event-archive";
import { type EventIndexEntry, writeIndexEntries } from "../../worker/events/event-index";
import type { EventState, PublicEvent } from "../../worker/events/event-machine";
import {
  clearNamespaceSettingsCache,
  DEFAULT_RETENTION_MS,
  MAX_INDEX_AGE_MS,
  MAX_PURGE_BATCHES_PER_RUN,
  MAX_PURGE_NAMESPACES_PER_RUN,
  MAX_RETENTION_HOURS,
  MAX_RUN_MS,
  MAX_SETTINGS_BODY_BYTES,
  MIN_RETENTION_HOURS,
  purgeExpiredIndexRows,
  updateNamespaceSettings,
} from "../../worker/events/event-retention";
import { unwrap } from "../../worker/shared/errors";
import { functionSnapshot } from "../helpers/function-snapshot";
import { zipBase64 } from "../helpers/zip";

const ROOT = { authorization: "Bearer AKIDintegration:integration-secret-key-0123456789abcdef" };
const HOUR = 60 * 60 * 1000;
const BASE = "https://platform.test";

let counter = 0;
/** A namespace of its own for each test (the settings cache is per isolate). */
function freshNamespace(prefix: string): string {
  counter += 1;
  return `${prefix}-${counter}-${crypto.randomUUID().slice(0, 6)}`;
}

async function call(path: string, init: RequestInit = {}, headers: Record<string, string> = ROOT) {
  return SELF.fetch(`${BASE}${path}`, { ...init, headers: { ...headers, ...(init.headers ?? {}) } });
}

async function putSettings(namespace: string, body: unknown, headers: Record<string, string> = ROOT) {
  return call(
    `/v1/namespaces/${namespace}/settings`,
    { method: "PUT", body: typeof body === "string" ? body : JSON.stringify(body) },
    headers,
  );
}

async function tenantKey(namespaces: string[]): Promise<Record<string, string>> {
  const response = await call("/v1/admin/credentials", {
    method: "POST",
    body: JSON.stringify({ namespaces, description: "retention test" }),
  });
  expect(response.status).toBe(201);
  const key = (await response.json()) as { secretId: string; secretKey: string };
  return { authorization: `Bearer ${key.secretId}:${key.secretKey}` };
}

const INSTANCE_OF = (namespace: string) => `${namespace}/report#0`;

function runningState(requestId: string, namespace: string): EventState {
  const now = Date.now();
  return {
    requestId,
    namespace,
    functionName: "report",
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    function: functionSnapshot(namespace, "report", { codeSha256: "b".repeat(64), codeKey: "code/x/report/b.zip" }),
    phase: "running",
    version: 3,
    invokedAt: now - 5_000,
    instanceId: INSTANCE_OF(namespace),
    claimedAt: now - 2_000,
    startedAt: now - 1_000,
    containerId: "boot-retention",
    cold: true,
  };
}

/** Runs an event of the namespace to its end through its object's own calls, with two log lines. */
async function endedEvent(namespace: string) {
  const requestId = crypto.randomUUID();
  const stub = env.ASYNC_EVENT.get(env.ASYNC_EVENT.idFromName(requestId));
  await runInDurableObject(stub, async (_instance, state) => {
    await state.storage.put("state", runningState(requestId, namespace));
  });
  await evictDurableObject(stub);
  await stub.appendLogs([{ seq: 1, ts: Date.now(), stream: "stdout", line: "working" }], INSTANCE_OF(namespace));
  const completed = await stub.complete(INSTANCE_OF(namespace), { kind: "returned", result: '"done"' }, undefined, [
    { seq: 2, ts: Date.now(), stream: "stdout", line: "done" },
  ]);
  expect(completed).toEqual({ ok: true });
  const { endedAt } = unwrap<PublicEvent>(await stub.view());
  if (endedAt === null) throw new Error("the event did not end");
  return { requestId, stub, endedAt: Date.parse(endedAt) };
}

function scheduledAlarm(stub: DurableObjectStub): Promise<number | null> {
  return runInDurableObject(stub, (_instance, state) => state.storage.getAlarm());
}

afterEach(() => {
  vi.useRealTimers();
});

describe("namespace settings routes", () => {
  it("answers the defaults until set, then what was set, field by field", async () => {
    const namespace = freshNamespace("settings");
    const initial = await call(`/v1/namespaces/${namespace}/settings`);
    expect(initial.status).toBe(200);
    expect(await initial.json()).toEqual({
      namespace,
      retentionHours: 72,
      archive: false,
      archiveExpiry: ARCHIVE_EXPIRY,
    });

    const set = await putSettings(namespace, { retentionHours: 24 });
    expect(set.status).toBe(200);
    expect(await set.json()).toEqual({ namespace, retentionHours: 24, archive: false, archiveExpiry: ARCHIVE_EXPIRY });
    const archived = await putSettings(namespace, { archive: true });
    expect(await archived.json()).toEqual({
      namespace,
      retentionHours: 24,
      archive: true,
      archiveExpiry: ARCHIVE_EXPIRY,
    });
    expect(await (await call(`/v1/namespaces/${namespace}/settings`)).json()).toEqual({
      namespace,
      retentionHours: 24,
      archive: true,
      archiveExpiry: ARCHIVE_EXPIRY,
    });
  });

  it("lets a tenant key of the namespace set it, and answers NOT_FOUND for another namespace's", async () => {
    const mine = freshNamespace("tenant");
    const theirs = freshNamespace("other");
    const key = await tenantKey([mine]);
    expect((await putSettings(mine, { retentionHours: MAX_RETENTION_HOURS }, key)).status).toBe(200);
    for (const response of [
      await putSettings(theirs, { retentionHours: 1 }, key),
      await call(`/v1/namespaces/${theirs}/settings`, {}, key),
      await call(`/v1/namespaces/${theirs}/archive/events`, {}, key),
      await call(`/v1/namespaces/${theirs}/archive/events/${crypto.randomUUID()}`, {}, key),
      await call(`/v1/namespaces/${theirs}/archive/events/${crypto.randomUUID()}`, { method: "DELETE" }, key),
    ]) {
      expect(response.status).toBe(404);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("NOT_FOUND");
    }
    // Nothing was written for the other namespace.
    expect(await (await call(`/v1/namespaces/${theirs}/settings`)).json()).toMatchObject({ retentionHours: 72 });
  });

  it("refuses out-of-bounds, malformed and oversized bodies with a 4xx and changes nothing", async () => {
    const namespace = freshNamespace("bad");
    const cases: [unknown, number, string][] = [
      [{ retentionHours: MIN_RETENTION_HOURS - 1 }, 400, "retentionHours"],
      [{ retentionHours: MAX_RETENTION_HOURS + 1 }, 400, "retentionHours"],
      [{ retentionHours: 1.5 }, 400, "retentionHours"],
      [{ retentionHours: "24" }, 400, "retentionHours"],
      [{ archive: "yes" }, 400, "archive"],
      [{ retention: 24 }, 400, "retention"],
      [[], 400, ""],
      ["{not json", 400, ""],
      [{ archive: true, pad: "x".repeat(MAX_SETTINGS_BODY_BYTES) }, 413, ""],
    ];
    for (const [body, status, mention] of cases) {
      const response = await putSettings(namespace, body);
      expect(response.status, JSON.stringify(body).slice(0, 60)).toBe(status);
      const error = ((await response.json()) as { error: { message: string } }).error;
      expect(error.message).toContain(mention);
    }
    expect(await (await call(`/v1/namespaces/${namespace}/settings`)).json()).toEqual({
      namespace,
      retentionHours: 72,
      archive: false,
      archiveExpiry: ARCHIVE_EXPIRY,
    });
    expect((await call("/v1/namespaces/not a namespace!/settings")).status).toBe(400);
  });
});

describe("an event's deletion by its namespace's retention", () => {
  it("arms the deletion at the end plus the namespace's retention", async () => {
    const namespace = freshNamespace("short");
    await updateNamespaceSettings(env.DB, namespace, { retentionHours: 2 });
    const { stub, endedAt } = await endedEvent(namespace);
    expect(await scheduledAlarm(stub)).toBe(endedAt + 2 * HOUR);
    vi.useFakeTimers({ toFake: ["Date"], now: endedAt + 2 * HOUR });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.view()).toMatchObject({ ok: false, code: "EVENT_NOT_FOUND" });
  });

  it("re-arms for a longer retention set after the end instead of deleting", async () => {
    const namespace = freshNamespace("longer");
    await updateNamespaceSettings(env.DB, namespace, { retentionHours: 1 });
    const { stub, endedAt } = await endedEvent(namespace);
    expect(await scheduledAlarm(stub)).toBe(endedAt + HOUR);
    await updateNamespaceSettings(env.DB, namespace, { retentionHours: 5 });
    vi.useFakeTimers({ toFake: ["Date"], now: endedAt + HOUR });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.view()).toMatchObject({ ok: true, value: { status: "FINISHED" } });
    expect(await scheduledAlarm(stub)).toBe(endedAt + 5 * HOUR);
  });

  it("uses the default retention without settings", async () => {
    const { stub, endedAt } = await endedEvent(freshNamespace("default"));
    expect(await scheduledAlarm(stub)).toBe(endedAt + DEFAULT_RETENTION_MS);
  });

  it("archives before deleting when the namespace's archive is on, and writes nothing when off", async () => {
    const namespace = freshNamespace("archive");
    await updateNamespaceSettings(env.DB, namespace, { retentionHours: 1, archive: true });
    const { requestId, stub, endedAt } = await endedEvent(namespace);
    const quiet = freshNamespace("noarchive");
    await updateNamespaceSettings(env.DB, quiet, { retentionHours: 1 });
    const unarchived = await endedEvent(quiet);
    const statusBefore = unwrap<PublicEvent>(await stub.view());
    clearNamespaceSettingsCache();
    vi.useFakeTimers({ toFake: ["Date"], now: endedAt + HOUR + 60_000 });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await runDurableObjectAlarm(unarchived.stub)).toBe(true);
    vi.useRealTimers();
    expect(await stub.view()).toMatchObject({ ok: false, code: "EVENT_NOT_FOUND" });
    expect(await unarchived.stub.view()).toMatchObject({ ok: false, code: "EVENT_NOT_FOUND" });

    const key = archiveKey(namespace, "report", endedAt, requestId);
    expect(await (await env.ARCHIVE_BUCKET.get(archivePointerKey(namespace, requestId)))?.text()).toBe(key);
    expect(await env.ARCHIVE_BUCKET.get(archivePointerKey(quiet, unarchived.requestId))).toBeNull();

    const view = await call(`/v1/namespaces/${namespace}/archive/events/${requestId}`);
    expect(view.status).toBe(200);
    const body = (await view.json()) as { event: PublicEvent; logLines: number; logTruncated: boolean };
    // The status exactly as GET of the event showed it before its deletion.
    expect(body.event).toEqual(statusBefore);
    expect(body.event).toMatchObject({ requestId, namespace, status: "FINISHED" });
    expect(body.event.timeline.map((entry) => entry.kind)).toContain("ended");
    expect(body.logLines).toBe(3);
    expect(body.logTruncated).toBe(false);

    const logs = (await (
      await call(`/v1/namespaces/${namespace}/archive/events/${requestId}/logs?limit=2`)
    ).json()) as {
      records: { seq: number; line: string }[];
      lastSeq: number;
      more: boolean;
    };
    expect(logs.records.map((record) => record.line)).toEqual(["working", "done"]);
    expect(logs.more).toBe(true);
    const rest = (await (
      await call(`/v1/namespaces/${namespace}/archive/events/${requestId}/logs?after=${logs.lastSeq}`)
    ).json()) as { records: { line: string }[]; more: boolean };
    expect(rest.records.map((record) => record.line)).toEqual([expect.stringMatching(/^\[PLATFORM\] END /)]);
    expect(rest.more).toBe(false);

    const day = new Date(endedAt).toISOString().slice(0, 10);
    const listed = (await (
      await call(`/v1/namespaces/${namespace}/archive/events?functionName=report&date=${day}`)
    ).json()) as { events: { requestId: string; status: string }[]; nextCursor: string | null };
    expect(listed.events).toEqual([
      expect.objectContaining({ requestId, functionName: "report", date: day, status: "FINISHED" }),
    ]);
    expect(listed.nextCursor).toBeNull();

    // Another namespace's archive of the same RequestId does not exist for it.
    const other = await call(`/v1/namespaces/${quiet}/archive/events/${requestId}`);
    expect(other.status).toBe(404);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe("EVENT_NOT_FOUND");
  });

  it("deletes through the diagnostics' expire at once, keeping nothing but the archive", async () => {
    const namespace = freshNamespace("forced");
    await updateNamespaceSettings(env.DB, namespace, { archive: true });
    const { requestId, stub } = await endedEvent(namespace);
    expect(await stub.expireNow()).toBe(true);
    expect(await stub.view()).toMatchObject({ ok: false, code: "EVENT_NOT_FOUND" });
    expect(await stub.expireNow()).toBe(false);
    expect((await call(`/v1/namespaces/${namespace}/archive/events/${requestId}`)).status).toBe(200);
  });
});

describe("an archived event's deletion", () => {
  it("deletes its log chunks, manifest and pointer on DELETE, and answers 404 for another namespace's or a missing one", async () => {
    const namespace = freshNamespace("delete");
    await updateNamespaceSettings(env.DB, namespace, { archive: true });
    const { requestId, stub, endedAt } = await endedEvent(namespace);
    expect(await stub.expireNow()).toBe(true);
    const key = archiveKey(namespace, "report", endedAt, requestId);
    expect(await env.ARCHIVE_BUCKET.head(archiveChunkKey(key, 1))).not.toBeNull();
    const other = freshNamespace("delete-other");
    const otherKey = await tenantKey([other]);
    // Another namespace (with its own credential, or the root's path) has no such archive: 404, nothing deleted.
    for (const headers of [otherKey, ROOT]) {
      const refused = await call(`/v1/namespaces/${other}/archive/events/${requestId}`, { method: "DELETE" }, headers);
      expect(refused.status).toBe(404);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("EVENT_NOT_FOUND");
    }
    // A credential of another namespace cannot name this one.
    expect(
      (await call(`/v1/namespaces/${namespace}/archive/events/${requestId}`, { method: "DELETE" }, otherKey)).status,
    ).toBe(404);
    expect((await call(`/v1/namespaces/${namespace}/archive/events/${requestId}`)).status).toBe(200);
    const deleted = await call(`/v1/namespaces/${namespace}/archive/events/${requestId}`, { method: "DELETE" });
    expect(deleted.status).toBe(204);
    expect((await call(`/v1/namespaces/${namespace}/archive/events/${requestId}`)).status).toBe(404);
    expect(await env.ARCHIVE_BUCKET.head(key)).toBeNull();
    expect(await env.ARCHIVE_BUCKET.head(archiveChunkKey(key, 1))).toBeNull();
    expect(await env.ARCHIVE_BUCKET.head(archivePointerKey(namespace, requestId))).toBeNull();
    expect((await call(`/v1/namespaces/${namespace}/archive/events/${requestId}`, { method: "DELETE" })).status).toBe(
      404,
    );
  });

  it("deletes a deleted function's archives written before its deletion, and keeps later ones and other functions'", async () => {
    const namespace = freshNamespace("fn-delete");
    const put = (functionName: string, requestId: string) =>
      Promise.all([
        env.ARCHIVE_BUCKET.put(archiveKey(namespace, functionName, Date.now(), requestId), "m"),
        env.ARCHIVE_BUCKET.put(archiveChunkKey(archiveKey(namespace, functionName, Date.now(), requestId), 1), "c"),
        env.ARCHIVE_BUCKET.put(
          archivePointerKey(namespace, requestId),
          archiveKey(namespace, functionName, Date.now(), requestId),
        ),
      ]);
    const old = crypto.randomUUID();
    const sibling = crypto.randomUUID();
    await put("report", old);
    await put("report2", sibling);
    const cutoff = Date.now() + 1;
    await new Promise((resolve) => setTimeout(resolve, 20));
    const later = crypto.randomUUID();
    await put("report", later);
    expect(await deleteFunctionArchives(env.ARCHIVE_BUCKET, namespace, "report", cutoff)).toBe(3);
    const left = (await env.ARCHIVE_BUCKET.list({ prefix: "" })).objects
      .map((object) => object.key)
      .filter((key) => key.includes(namespace));
    expect(left.some((key) => key.includes(old))).toBe(false);
    expect(left.filter((key) => key.includes(sibling))).toHaveLength(3);
    expect(left.filter((key) => key.includes(later))).toHaveLength(3);
  });

  it("deletes the function's archives in the background when the function is deleted", async () => {
    const namespace = freshNamespace("fn-route");
    const created = await call(`/v1/namespaces/${namespace}/functions`, {
      method: "POST",
      body: JSON.stringify({
        name: "report",
        runtime: "Nodejs22",
        code: { zipFile: zipBase64({ "index.js": "exports.main_handler = async () => 'ok';" }) },
      }),
    });
    expect(created.status).toBe(201);
    const requestId = crypto.randomUUID();
    const key = archiveKey(namespace, "report", Date.now(), requestId);
    await env.ARCHIVE_BUCKET.put(key, "m");
    await env.ARCHIVE_BUCKET.put(archivePointerKey(namespace, requestId), key);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect((await call(`/v1/namespaces/${namespace}/functions/report`, { method: "DELETE" })).status).toBe(204);
    await vi.waitFor(async () => {
      expect(await env.ARCHIVE_BUCKET.head(key)).toBeNull();
      expect(await env.ARCHIVE_BUCKET.head(archivePointerKey(namespace, requestId))).toBeNull();
    });
  });

  it("shows in the settings what removes archives", async () => {
    const body = (await (await call(`/v1/namespaces/${freshNamespace("expiry")}/settings`)).json()) as {
      archiveExpiry: string;
    };
    expect(body.archiveExpiry).toContain("lifecycle rule");
  });
});

describe("an event's deletion and its index row", () => {
  it("deletes the event's index row and tag rows with the event, even one left RUNNING", async () => {
    const namespace = freshNamespace("index-row");
    const { requestId, stub, endedAt } = await endedEvent(namespace);
    await env.DB.batch([
      env.DB.prepare("DELETE FROM events WHERE request_id = ?").bind(requestId),
      env.DB.prepare(
        `INSERT INTO events (request_id, namespace, function_name, qualifier, invoke_type, status, phase, start_time, version)
         VALUES (?, ?, 'report', '$LATEST', 'OTHERS', 'RUNNING', 'running', ?, 3)`,
      ).bind(requestId, namespace, endedAt - 1_000),
      env.DB.prepare(
        "INSERT INTO event_tags (request_id, namespace, function_name, key, value, start_time) VALUES (?, ?, 'report', 'k', 'v', ?)",
      ).bind(requestId, namespace, endedAt - 1_000),
    ]);
    expect(await stub.expireNow()).toBe(true);
    expect(await env.DB.prepare("SELECT 1 FROM events WHERE request_id = ?").bind(requestId).first()).toBeNull();
    expect(await env.DB.prepare("SELECT 1 FROM event_tags WHERE request_id = ?").bind(requestId).first()).toBeNull();
  });
});

describe("archive routes' input", () => {
  it("refuses malformed RequestIds, dates, cursors and limits with 400", async () => {
    const namespace = freshNamespace("input");
    for (const path of [
      `/v1/namespaces/${namespace}/archive/events/not-a-uuid`,
      `/v1/namespaces/${namespace}/archive/events/${crypto.randomUUID()}/logs?after=-1`,
      `/v1/namespaces/${namespace}/archive/events/${crypto.randomUUID()}/logs?limit=100000`,
      `/v1/namespaces/${namespace}/archive/events?date=2026-01-01`,
      `/v1/namespaces/${namespace}/archive/events?functionName=report&date=2026-13-01`,
      `/v1/namespaces/${namespace}/archive/events?functionName=report&date=yesterday`,
      `/v1/namespaces/${namespace}/archive/events?functionName=-bad`,
      `/v1/namespaces/${namespace}/archive/events?limit=0`,
      `/v1/namespaces/${namespace}/archive/events?cursor=${"c".repeat(2000)}`,
      `/v1/namespaces/${namespace}/archive/events?unknown=1`,
    ]) {
      const response = await call(path);
      expect(response.status, path).toBe(400);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("INVALID_PARAMETER");
    }
  });

  it("answers EVENT_NOT_FOUND for an event never archived, and an empty list for an empty archive", async () => {
    const namespace = freshNamespace("empty");
    const missing = await call(`/v1/namespaces/${namespace}/archive/events/${crypto.randomUUID()}/logs`);
    expect(missing.status).toBe(404);
    expect(await (await call(`/v1/namespaces/${namespace}/archive/events`)).json()).toEqual({
      events: [],
      nextCursor: null,
    });
  });
});

describe("the index purge by namespace retention", () => {
  function row(namespace: string, startTime: number, endTime: number | null): EventIndexEntry {
    return {
      requestId: crypto.randomUUID(),
      namespace,
      functionName: "report",
      qualifier: "$LATEST",
      invokeType: "OTHERS",
      status: endTime === null ? "RUNNING" : "FINISHED",
      statusCode: endTime === null ? null : 200,
      phase: endTime === null ? "running" : "finished",
      startTime,
      endTime,
      durationMs: endTime === null ? null : endTime - startTime,
      version: 4,
    } as EventIndexEntry;
  }

  async function present(ids: string[]): Promise<string[]> {
    const found: string[] = [];
    for (const id of ids) {
      const hit = await env.DB.prepare("SELECT 1 AS one FROM events WHERE request_id = ?").bind(id).first();
      if (hit) found.push(id);
    }
    return found;
  }

  it("deletes ended rows past their namespace's retention and keeps the rest", async () => {
    const now = Date.now();
    const short = freshNamespace("purge-short");
    const long = freshNamespace("purge-long");
    const plain = freshNamespace("purge-default");
    await updateNamespaceSettings(env.DB, short, { retentionHours: 1 });
    await updateNamespaceSettings(env.DB, long, { retentionHours: MAX_RETENTION_HOURS });
    const shortGone = row(short, now - 3 * HOUR, now - 2 * HOUR);
    const shortKept = row(short, now - 3 * HOUR, now - 30 * 60_000);
    const shortRunning = row(short, now - 3 * HOUR, null);
    const longKept = row(long, now - 100 * HOUR, now - 99 * HOUR);
    const longGone = row(long, now - 170 * HOUR, now - 169 * HOUR);
    const plainKept = row(plain, now - 73 * HOUR, now - 71 * HOUR);
    const plainGone = row(plain, now - 74 * HOUR, now - 73 * HOUR);
    const plainStale = row(plain, now - MAX_INDEX_AGE_MS - HOUR, null);
    const all = [shortGone, shortKept, shortRunning, longKept, longGone, plainKept, plainGone, plainStale];
    await writeIndexEntries(env.DB, all);
    await purgeExpiredIndexRows(env.DB, now);
    expect(await present(all.map((entry) => entry.requestId))).toEqual(
      [shortKept, shortRunning, longKept, plainKept].map((entry) => entry.requestId),
    );
  });

  it("purges rows that never ended by their namespace's retention plus the longest run", async () => {
    const now = Date.now();
    const short = freshNamespace("unended-short");
    const plain = freshNamespace("unended-default");
    await updateNamespaceSettings(env.DB, short, { retentionHours: 1 });
    const shortGone = row(short, now - HOUR - MAX_RUN_MS - 60_000, null);
    const shortKept = row(short, now - HOUR - MAX_RUN_MS + 60_000, null);
    const plainGone = row(plain, now - DEFAULT_RETENTION_MS - MAX_RUN_MS - 60_000, null);
    const plainKept = row(plain, now - DEFAULT_RETENTION_MS - MAX_RUN_MS + 60_000, null);
    const all = [shortGone, shortKept, plainGone, plainKept];
    await writeIndexEntries(env.DB, all);
    await purgeExpiredIndexRows(env.DB, now);
    expect(await present(all.map((entry) => entry.requestId))).toEqual(
      [shortKept, plainKept].map((entry) => entry.requestId),
    );
  });

  it("covers the namespaces of their own retention beyond one run's window over the next minutes' runs", async () => {
    const now = Date.now();
    const rows: EventIndexEntry[] = [];
    for (let index = 0; index < MAX_PURGE_NAMESPACES_PER_RUN + 10; index += 1) {
      const namespace = freshNamespace("window");
      await updateNamespaceSettings(env.DB, namespace, { retentionHours: 1 });
      rows.push(row(namespace, now - 3 * HOUR, now - 2 * HOUR));
    }
    await writeIndexEntries(env.DB, rows);
    const ids = rows.map((entry) => entry.requestId);
    await purgeExpiredIndexRows(env.DB, now);
    // One run goes through a window of them only.
    expect((await present(ids)).length).toBeGreaterThan(0);
    const total =
      (
        await env.DB.prepare("SELECT COUNT(*) AS n FROM namespace_settings WHERE retention_hours != 72").first<{
          n: number;
        }>()
      )?.n ?? 0;
    for (let run = 1; run <= Math.ceil(total / MAX_PURGE_NAMESPACES_PER_RUN); run += 1) {
      await purgeExpiredIndexRows(env.DB, now + run * 60_000);
    }
    expect(await present(ids)).toEqual([]);
  });

  it("purges the default namespaces' rows even with more namespaces of their own retention than the run's batches", async () => {
    const now = Date.now();
    for (let index = 0; index < MAX_PURGE_BATCHES_PER_RUN + 10; index += 1) {
      await updateNamespaceSettings(env.DB, freshNamespace("custom-idle"), { retentionHours: 2 });
    }
    const plain = freshNamespace("starved-default");
    const gone = row(plain, now - 80 * HOUR, now - 79 * HOUR);
    const kept = row(plain, now - 10 * HOUR, now - 9 * HOUR);
    await writeIndexEntries(env.DB, [gone, kept]);
    await purgeExpiredIndexRows(env.DB, now);
    expect(await present([gone.requestId, kept.requestId])).toEqual([kept.requestId]);
  });
});
