import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  type ArchivedEvent,
  archiveChunkKey,
  archiveDaySchema,
  archiveKey,
  MAX_ARCHIVE_CHUNK_BYTES,
  MAX_ARCHIVE_LOG_BYTES,
  MAX_ARCHIVE_LOG_LINES,
  readArchive,
  readArchivedLogPage,
  writeArchive,
} from "../../worker/events/event-archive";
import type { LogPage, StoredLogRecord } from "../../worker/events/event-log-store";
import type { EventState, PublicEvent } from "../../worker/events/event-machine";
import {
  ARCHIVE_RETRY_BASE_MS,
  archiveRetryDelay,
  clearNamespaceSettingsCache,
  DEFAULT_RETENTION_MS,
  END_SETTINGS_WAIT_MS,
  MAX_ARCHIVE_ATTEMPTS,
  MAX_ARCHIVE_OVERDUE_MS,
  MAX_ARCHIVE_RETRY_MS,
  MAX_RETENTION_HOURS,
  MIN_RETENTION_HOURS,
  namespaceSettingsUpdateSchema,
  readNamespaceSettings,
  retentionDueAt,
  type StoredRetention,
} from "../../worker/events/event-retention";
import { EventRetentionDuty } from "../../worker/events/event-retention-duty";
import type { EventStorage } from "../../worker/events/event-storage";

const HOUR = 60 * 60 * 1000;

function records(count: number, lineChars: number, firstSeq = 1): StoredLogRecord[] {
  return Array.from({ length: count }, (_, index) => ({
    seq: firstSeq + index,
    ts: 1_000 + index,
    stream: "stdout" as const,
    line: "x".repeat(lineChars),
  }));
}

/** A log of the given records read as the event object pages it (at most `limit` a page). */
function pager(all: StoredLogRecord[]) {
  return async (after: number, limit: number): Promise<LogPage> => {
    const rest = all.filter((record) => record.seq > after);
    const page = rest.slice(0, limit);
    return { records: page, lastSeq: page.at(-1)?.seq ?? after, more: rest.length > page.length };
  };
}

describe("retention deadlines", () => {
  it("deletes the default retention after the end without stored settings", () => {
    expect(retentionDueAt(1_000, undefined)).toBe(1_000 + DEFAULT_RETENTION_MS);
  });

  it("waits for the later of the retention and a pending archive retry; a forced deletion is due when forced", () => {
    const stored: StoredRetention = { retentionMs: HOUR, archive: true };
    expect(retentionDueAt(0, stored)).toBe(HOUR);
    expect(retentionDueAt(0, { ...stored, retryAt: 2 * HOUR })).toBe(2 * HOUR);
    expect(retentionDueAt(0, { ...stored, forcedAt: 5 })).toBe(5);
  });

  it("doubles the archive retry's wait up to its bound", () => {
    expect(archiveRetryDelay(1)).toBe(ARCHIVE_RETRY_BASE_MS);
    expect(archiveRetryDelay(2)).toBe(2 * ARCHIVE_RETRY_BASE_MS);
    expect(archiveRetryDelay(30)).toBe(MAX_ARCHIVE_RETRY_MS);
  });
});

describe("the settings update", () => {
  it("accepts the bounds and either field alone, and refuses anything else", () => {
    expect(namespaceSettingsUpdateSchema.parse({ retentionHours: MIN_RETENTION_HOURS })).toEqual({
      retentionHours: MIN_RETENTION_HOURS,
    });
    expect(namespaceSettingsUpdateSchema.parse({ retentionHours: MAX_RETENTION_HOURS, archive: true })).toEqual({
      retentionHours: MAX_RETENTION_HOURS,
      archive: true,
    });
    for (const bad of [
      { retentionHours: 0 },
      { retentionHours: MAX_RETENTION_HOURS + 1 },
      { retentionHours: 2.5 },
      { archive: 1 },
      { other: true },
      null,
    ]) {
      expect(namespaceSettingsUpdateSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });
});

/** The public view of an ended event archived under a fresh RequestId. */
function archivedView(namespace = "ns"): PublicEvent {
  return {
    requestId: crypto.randomUUID(),
    namespace,
    functionName: "fn",
    status: "FINISHED",
    endedAt: "2026-03-04T10:00:00.000Z",
  } as unknown as PublicEvent;
}

/** Writes an archive of the records to the test bucket and answers its manifest as read back. */
async function archived(all: StoredLogRecord[]) {
  const view = archivedView();
  await writeArchive(env.ARCHIVE_BUCKET, view, pager(all), all.at(-1)?.seq ?? 0, Date.now());
  return readArchive(env.ARCHIVE_BUCKET, view.namespace, view.requestId);
}

/** Every line of an archived log, read page by page through the archive reader. */
async function readAll(manifest: ArchivedEvent & { key: string }): Promise<StoredLogRecord[]> {
  const lines: StoredLogRecord[] = [];
  let after = 0;
  for (;;) {
    const page = await readArchivedLogPage(env.ARCHIVE_BUCKET, manifest, after, 1_000);
    lines.push(...page.records);
    if (!page.more) return lines;
    after = page.lastSeq;
  }
}

describe("the archive's log", () => {
  it("keeps every line of a log within its bounds, read back page by page", async () => {
    const all = records(2_500, 10);
    const manifest = await archived(all);
    expect(manifest.log).toMatchObject({ lines: 2_500, truncated: false, lastSeq: 2_500 });
    expect(await readAll(manifest)).toEqual(all);
  });

  it("keeps the first lines up to its line bound and says truncated", async () => {
    const manifest = await archived(records(MAX_ARCHIVE_LOG_LINES + 5, 0));
    expect(manifest.log.lines).toBe(MAX_ARCHIVE_LOG_LINES);
    expect(manifest.log.chunks[0]?.firstSeq).toBe(1);
    expect(manifest.log.truncated).toBe(true);
  });

  it("bounds the archive by encoded bytes: control characters JSON escapes six-fold count as stored", async () => {
    // A handler printing "\x01" lines: 64 KiB characters each, about 384 KiB each once JSON-encoded.
    const lines = records(200, 64 * 1024).map((record) => ({ ...record, line: "\x01".repeat(64 * 1024) }));
    const manifest = await archived(lines);
    expect(manifest.log.truncated).toBe(true);
    const bytes = manifest.log.chunks.reduce((sum, chunk) => sum + chunk.bytes, 0);
    expect(bytes).toBeLessThanOrEqual(MAX_ARCHIVE_LOG_BYTES);
    expect(manifest.log.lines).toBeLessThan(MAX_ARCHIVE_LOG_BYTES / (6 * 64 * 1024) + 1);
    for (const chunk of manifest.log.chunks) {
      expect(chunk.bytes).toBeLessThanOrEqual(MAX_ARCHIVE_CHUNK_BYTES);
      const object = await env.ARCHIVE_BUCKET.head(archiveChunkKey(manifest.key, chunk.index));
      expect(object?.size).toBeGreaterThan(0);
    }
    // The manifest holds no log line.
    const stored = await env.ARCHIVE_BUCKET.head(manifest.key);
    expect(stored?.size ?? Number.POSITIVE_INFINITY).toBeLessThan(4_096);
  });

  it("cuts a line alone larger than a chunk to fit and says truncated", async () => {
    const manifest = await archived(records(1, 2 * MAX_ARCHIVE_CHUNK_BYTES));
    expect(manifest.log).toMatchObject({ lines: 1, truncated: true });
    const [line] = await readAll(manifest);
    expect(line?.line.length).toBeLessThan(MAX_ARCHIVE_CHUNK_BYTES);
  });

  it("reads one page from the one chunk holding it, ending the page at the chunk's end", async () => {
    // 3 chunks: lines of about 300 KiB encoded, three to a chunk.
    const all = records(8, 300 * 1024);
    const manifest = await archived(all);
    expect(manifest.log.chunks.map((chunk) => [chunk.firstSeq, chunk.lastSeq])).toEqual([
      [1, 3],
      [4, 6],
      [7, 8],
    ]);
    const get = vi.spyOn(env.ARCHIVE_BUCKET, "get");
    const first = await readArchivedLogPage(env.ARCHIVE_BUCKET, manifest, 0, 2);
    expect(first).toMatchObject({ lastSeq: 2, more: true });
    const chunkEnd = await readArchivedLogPage(env.ARCHIVE_BUCKET, manifest, 2, 1_000);
    expect(chunkEnd.records.map((record) => record.seq)).toEqual([3]);
    expect(chunkEnd.more).toBe(true);
    const last = await readArchivedLogPage(env.ARCHIVE_BUCKET, manifest, 6, 1_000);
    expect(last.records.map((record) => record.seq)).toEqual([7, 8]);
    expect(last.more).toBe(false);
    expect(await readArchivedLogPage(env.ARCHIVE_BUCKET, manifest, 9, 2)).toMatchObject({
      records: [],
      lastSeq: 9,
      more: false,
    });
    expect(get.mock.calls.map(([key]) => key)).toEqual([
      archiveChunkKey(manifest.key, 1),
      archiveChunkKey(manifest.key, 1),
      archiveChunkKey(manifest.key, 3),
    ]);
    get.mockRestore();
  });

  it("names an archive by namespace, function, UTC day of the end and RequestId, its log chunks outside events/", () => {
    const key = archiveKey("ns", "fn", Date.parse("2026-03-04T23:59:59Z"), "id");
    expect(key).toBe("events/ns/fn/2026-03-04/id.json.gz");
    expect(archiveChunkKey(key, 12)).toBe("logs/ns/fn/2026-03-04/id/log-000012.ndjson.gz");
    expect(archiveDaySchema.safeParse("2026-02-30").success).toBe(false);
    expect(archiveDaySchema.safeParse("2026-02-28").success).toBe(true);
  });
});

describe("the deletion's archive", () => {
  afterEach(() => {
    vi.restoreAllMocks();
    clearNamespaceSettingsCache();
  });

  const ENDED_AT = 1_000_000;
  const state = { requestId: "r1", namespace: "ns", functionName: "fn", endedAt: ENDED_AT } as EventState;
  function sourceOf(view: PublicEvent, page = pager(records(2, 4))) {
    return { view: () => view, page, lastSeq: () => 2 };
  }

  type Row = { retention_hours: number; archive_enabled: number } | "fail" | "hang";

  /** A D1 stand-in answering the namespace's settings row (or failing, or never answering), and the test bucket whose puts fail while asked. */
  function harness(row: Row, failPuts: number) {
    let failures = failPuts;
    const puts: string[] = [];
    const saved: StoredRetention[] = [];
    const reads = { count: 0 };
    const env2 = {
      DB: {
        prepare: () => ({
          bind: () => ({
            first: async () => {
              reads.count += 1;
              if (row === "fail") throw new Error("D1 down");
              if (row === "hang") return new Promise(() => undefined);
              return row;
            },
          }),
        }),
      } as unknown as D1Database,
      ARCHIVE_BUCKET: {
        put: async (key: string, value: never, options: never) => {
          if (failures > 0) {
            failures -= 1;
            throw new Error("R2 down");
          }
          puts.push(key);
          return env.ARCHIVE_BUCKET.put(key, value, options);
        },
      } as unknown as R2Bucket,
    };
    const alarms: number[] = [];
    const storage = {
      saveRetention: async (value: StoredRetention) => void saved.push(value),
      setAlarm: async (at: number) => void alarms.push(at),
    } as unknown as EventStorage;
    return { duty: new EventRetentionDuty(storage, env2), env: env2, puts, saved, reads, alarms };
  }

  it("is not ready before the retention read now, and re-arms for it", async () => {
    const { duty } = harness({ retention_hours: 5, archive_enabled: 0 }, 0);
    duty.restore({ retentionMs: HOUR, archive: false });
    expect(await duty.readyToDelete(state, ENDED_AT + HOUR, sourceOf(archivedView()))).toBe(false);
    expect(duty.dueAt(ENDED_AT)).toBe(ENDED_AT + 5 * HOUR);
  });

  it("keeps the stored retention when D1 cannot answer, and deletes when it is due", async () => {
    const { duty, puts } = harness("fail", 0);
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    duty.restore({ retentionMs: HOUR, archive: false });
    expect(await duty.readyToDelete(state, ENDED_AT + HOUR, sourceOf(archivedView()))).toBe(true);
    expect(puts).toEqual([]);
  });

  it("writes the archive's log chunks, then its manifest, then its pointer before the deletion", async () => {
    const { duty, puts } = harness({ retention_hours: 1, archive_enabled: 1 }, 0);
    const view = archivedView();
    expect(await duty.readyToDelete(state, ENDED_AT + HOUR, sourceOf(view))).toBe(true);
    const id = view.requestId;
    expect(puts).toEqual([
      `logs/ns/fn/2026-03-04/${id}/log-000001.ndjson.gz`,
      `events/ns/fn/2026-03-04/${id}.json.gz`,
      `by-id/ns/${id}`,
    ]);
  });

  it("counts an archive try before building it, so a try that never comes back (the object dies) counts", async () => {
    const { duty, saved, alarms } = harness({ retention_hours: 1, archive_enabled: 1 }, 0);
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const error = vi.spyOn(console, "error").mockImplementation(() => undefined);
    let started = false;
    const never = async (): Promise<LogPage> => {
      started = true;
      return new Promise(() => undefined);
    };
    void duty.readyToDelete(state, ENDED_AT + HOUR, sourceOf(archivedView(), never));
    await vi.waitFor(() => expect(started).toBe(true));
    expect(saved.at(-1)).toMatchObject({ archiveAttempts: 1, retryAt: ENDED_AT + HOUR + archiveRetryDelay(1) });
    // Its alarm is set for the retry before the archive is built.
    expect(alarms).toEqual([ENDED_AT + HOUR + archiveRetryDelay(1)]);
    // A new object (the old one died) restored from the stored tries gives up at the bound.
    const next = harness({ retention_hours: 1, archive_enabled: 1 }, 0);
    next.duty.restore({ ...(saved.at(-1) as StoredRetention), archiveAttempts: MAX_ARCHIVE_ATTEMPTS });
    expect(await next.duty.readyToDelete(state, ENDED_AT + 3 * HOUR, sourceOf(archivedView(), never))).toBe(true);
    expect(error).toHaveBeenCalledTimes(1);
    expect(next.puts).toEqual([]);
  });

  it("deletes without the archive once the deletion is overdue by MAX_ARCHIVE_OVERDUE_MS, whatever the tries", async () => {
    const { duty, puts } = harness({ retention_hours: 1, archive_enabled: 1 }, 0);
    const error = vi.spyOn(console, "error").mockImplementation(() => undefined);
    duty.restore({ retentionMs: HOUR, archive: true, archiveAttempts: 1 });
    const now = ENDED_AT + HOUR + MAX_ARCHIVE_OVERDUE_MS + 1;
    expect(await duty.readyToDelete(state, now, sourceOf(archivedView()))).toBe(true);
    expect(error).toHaveBeenCalledTimes(1);
    expect(puts).toEqual([]);
  });

  it("waits and retries a failed archive write, then deletes without it after the last try with an error logged", async () => {
    const { duty, puts, saved } = harness({ retention_hours: 1, archive_enabled: 1 }, 100);
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const error = vi.spyOn(console, "error").mockImplementation(() => undefined);
    let now = ENDED_AT + HOUR;
    for (let attempt = 1; attempt <= MAX_ARCHIVE_ATTEMPTS; attempt += 1) {
      expect(await duty.readyToDelete(state, now, sourceOf(archivedView()))).toBe(false);
      expect(saved.at(-1)).toMatchObject({ archiveAttempts: attempt, retryAt: now + archiveRetryDelay(attempt) });
      // Not due before its retry.
      expect(await duty.readyToDelete(state, now + 1, sourceOf(archivedView()))).toBe(false);
      now = duty.dueAt(ENDED_AT);
    }
    expect(error).not.toHaveBeenCalled();
    expect(await duty.readyToDelete(state, now, sourceOf(archivedView()))).toBe(true);
    expect(error).toHaveBeenCalledTimes(1);
    expect(puts).toEqual([]);
  });
});

describe("the retention armed at the end", () => {
  afterEach(() => {
    vi.restoreAllMocks();
    clearNamespaceSettingsCache();
  });

  const ENDED_AT = 1_000_000;
  function harness(first: () => Promise<unknown>) {
    const saved: StoredRetention[] = [];
    const reads = { count: 0 };
    const db = {
      prepare: () => ({
        bind: () => ({
          first: () => {
            reads.count += 1;
            return first();
          },
        }),
      }),
    } as unknown as D1Database;
    const storage = {
      saveRetention: async (value: StoredRetention) => void saved.push(value),
    } as unknown as EventStorage;
    return { duty: new EventRetentionDuty(storage, { DB: db, ARCHIVE_BUCKET: env.ARCHIVE_BUCKET }), saved, reads, db };
  }
  const ended = (namespace: string) =>
    ({ requestId: "r1", namespace, functionName: "fn", endedAt: ENDED_AT }) as EventState;

  it("waits at most END_SETTINGS_WAIT_MS on D1, then arms a provisional shortest retention", async () => {
    const { duty, saved } = harness(() => new Promise(() => undefined));
    const started = Date.now();
    await duty.onEnd(ended(`slow-${crypto.randomUUID()}`));
    expect(Date.now() - started).toBeLessThan(END_SETTINGS_WAIT_MS + 500);
    expect(saved.at(-1)).toMatchObject({ retentionMs: MIN_RETENTION_HOURS * HOUR, provisional: true });
    expect(duty.dueAt(ENDED_AT)).toBe(ENDED_AT + MIN_RETENTION_HOURS * HOUR);
  });

  it("uses this isolate's cached settings at the end without reading D1", async () => {
    const namespace = `cached-${crypto.randomUUID()}`;
    const warm = harness(async () => ({ retention_hours: 5, archive_enabled: 1 }));
    await readNamespaceSettings(warm.db, namespace);
    const { duty, saved, reads } = harness(() => new Promise(() => undefined));
    await duty.onEnd(ended(namespace));
    expect(reads.count).toBe(0);
    expect(saved.at(-1)).toEqual({ retentionMs: 5 * HOUR, archive: true });
  });

  it("re-reads a provisional retention when it comes due: a longer one re-arms, D1 down applies the default", async () => {
    const longer = harness(async () => ({ retention_hours: 5, archive_enabled: 0 }));
    longer.duty.restore({ retentionMs: MIN_RETENTION_HOURS * HOUR, archive: false, provisional: true });
    const source = { view: () => archivedView(), page: pager([]), lastSeq: () => 0 };
    expect(await longer.duty.readyToDelete(ended("a"), ENDED_AT + HOUR, source)).toBe(false);
    expect(longer.duty.dueAt(ENDED_AT)).toBe(ENDED_AT + 5 * HOUR);
    expect(longer.saved.at(-1)?.provisional).toBeUndefined();
    const down = harness(async () => {
      throw new Error("D1 down");
    });
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    down.duty.restore({ retentionMs: MIN_RETENTION_HOURS * HOUR, archive: false, provisional: true });
    expect(await down.duty.readyToDelete(ended("b"), ENDED_AT + HOUR, source)).toBe(false);
    expect(down.duty.dueAt(ENDED_AT)).toBe(ENDED_AT + DEFAULT_RETENTION_MS);
  });
});
