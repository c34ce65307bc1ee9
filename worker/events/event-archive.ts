// The archive of ended events in R2 (the ARCHIVE_BUCKET binding, bucket afp-archive): when its
// namespace has the archive on, an event writes its log as gzip NDJSON chunk objects (each built
// from a bounded run of lines, at most MAX_ARCHIVE_CHUNK_BYTES encoded), then a small manifest (its
// status with timeline, tags and progress, and the chunks' seq ranges), then a pointer by RequestId
// so it can be read without its function's name. Neither the writer nor a reader ever holds more
// than one chunk. Read and deleted by the archive routes (api/routes/namespaces.ts); a deleted
// function's archives go in the background (deleteFunctionArchives).
//
// Keys:  events/{namespace}/{functionName}/{YYYY-MM-DD of its end}/{requestId}.json.gz   (manifest)
//        logs/{namespace}/{functionName}/{YYYY-MM-DD}/{requestId}/log-000001.ndjson.gz  (log chunks)
//        by-id/{namespace}/{requestId}                                                 (pointer)
// The chunks are outside events/ so the archive list (a listing of events/) shows manifests only.
import { z } from "zod";
import { PlatformError } from "../shared/errors";
import type { LogPage, StoredLogRecord } from "./event-log-store";
import type { PublicEvent } from "./event-machine";

/** Version of the archive's layout (the manifest's `formatVersion`): 2, a manifest plus log chunks. */
export const ARCHIVE_FORMAT_VERSION = 2;
/**
 * Bytes of log one archive keeps at most, counted as stored (UTF-8 NDJSON, JSON escapes included):
 * 8 MiB. The live log is bounded by the function's log limit (logLimitMb, 1 GiB by default) plus the
 * platform's margin; an archive keeps its first lines up to this bound and says `truncated` past it.
 */
export const MAX_ARCHIVE_LOG_BYTES = 8 * 1024 * 1024;
/** Encoded bytes of one log chunk object at most (before gzip): what a writer or reader holds at once. */
export const MAX_ARCHIVE_CHUNK_BYTES = 1024 * 1024;
/** Lines of log one archive keeps at most (see MAX_ARCHIVE_LOG_BYTES). */
export const MAX_ARCHIVE_LOG_LINES = 100_000;
/** Most lines one page of an archived log answers. */
export const MAX_ARCHIVE_LOG_PAGE = 1_000;
/** Most archived events one list page answers. */
export const MAX_ARCHIVE_LIST_LIMIT = 100;
/** Longest `cursor` of an archive list accepted (characters). */
export const MAX_ARCHIVE_CURSOR_CHARS = 1024;
/** What removes archives, as GET settings shows it (nothing in the platform expires them by age). */
export const ARCHIVE_EXPIRY =
  "kept until DELETE /v1/namespaces/{namespace}/archive/events/{requestId}, the deletion of the function (archives written before it), or the R2 lifecycle rule of bucket afp-archive";
/** Largest manifest object read (compressed bytes): anything larger is not one this code wrote. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** One log chunk object of an archive: its lines' seq range. */
export interface ArchivedLogChunk {
  /** 1-based; its key is archiveChunkKey(..., index). */
  index: number;
  firstSeq: number;
  lastSeq: number;
  lines: number;
  /** Encoded bytes (UTF-8 NDJSON, before gzip). */
  bytes: number;
}

/** The archived log as the manifest describes it (its lines are in the chunk objects). */
export interface ArchivedLogIndex {
  chunks: ArchivedLogChunk[];
  /** Lines kept. */
  lines: number;
  /** True when the log held more than MAX_ARCHIVE_LOG_BYTES or MAX_ARCHIVE_LOG_LINES (its first lines are kept). */
  truncated: boolean;
  /** The seq of the event's last stored line when it was archived (0: none). */
  lastSeq: number;
}

/** The manifest object of an archive, as stored (gzip JSON). */
export interface ArchivedEvent {
  formatVersion: number;
  /** When it was archived (ISO-8601). */
  archivedAt: string;
  /** The event's status as GET /v1/events/{requestId} showed it (timeline, tags, progress included). */
  event: PublicEvent;
  log: ArchivedLogIndex;
}

/** The UTC day (YYYY-MM-DD) of an epoch-ms time. */
export function archiveDay(atMs: number): string {
  return new Date(atMs).toISOString().slice(0, 10);
}

/** The manifest's key: events/{namespace}/{functionName}/{YYYY-MM-DD of its end}/{requestId}.json.gz */
export function archiveKey(namespace: string, functionName: string, endedAt: number, requestId: string): string {
  return `events/${namespace}/${functionName}/${archiveDay(endedAt)}/${requestId}.json.gz`;
}

/** The key of a log chunk of the archive whose manifest is `manifestKey` (1-based index). */
export function archiveChunkKey(manifestKey: string, index: number): string {
  const base = manifestKey.replace(/^events\//, "logs/").replace(/\.json\.gz$/, "");
  return `${base}/log-${String(index).padStart(6, "0")}.ndjson.gz`;
}

/** The key of the pointer by RequestId: by-id/{namespace}/{requestId} (its body is the manifest's key). */
export function archivePointerKey(namespace: string, requestId: string): string {
  return `by-id/${namespace}/${requestId}`;
}

/** UTF-8 bytes of a string, without encoding it. */
export function utf8Bytes(text: string): number {
  let bytes = 0;
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && index + 1 < text.length) {
      bytes += 4;
      index += 1;
    } else bytes += 3;
  }
  return bytes;
}

/** One NDJSON line of a record, cut (its text halved until it fits) when alone it exceeds a chunk. */
function encodeRecord(record: StoredLogRecord): { text: string; bytes: number; cut: boolean } {
  let line = record.line;
  let cut = false;
  for (;;) {
    const text = `${JSON.stringify({ seq: record.seq, ts: record.ts, stream: record.stream, line })}\n`;
    const bytes = utf8Bytes(text);
    if (bytes <= MAX_ARCHIVE_CHUNK_BYTES) return { text, bytes, cut };
    line = line.slice(0, Math.floor(line.length / 2));
    cut = true;
  }
}

async function gzip(parts: string[]): Promise<Uint8Array> {
  const stream = new Blob(parts).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function gunzipText(body: ReadableStream): Promise<string> {
  return new Response(body.pipeThrough(new DecompressionStream("gzip"))).text();
}

/**
 * Writes the archive of an ended event: its log read page by page (`page` as the event object's log
 * reads it, up to the archive's bounds) into chunk objects, then the manifest, then the pointer by
 * RequestId (the pointer exists only once the whole archive does). Idempotent: a retry writes the
 * same keys again. Throws when R2 refuses (the caller retries). Answers the manifest's key.
 */
export async function writeArchive(
  bucket: R2Bucket,
  event: PublicEvent,
  page: (after: number, limit: number) => Promise<LogPage>,
  lastSeq: number,
  nowMs: number,
): Promise<string> {
  const endedAt = event.endedAt !== null ? Date.parse(event.endedAt) : nowMs;
  const key = archiveKey(event.namespace, event.functionName, endedAt, event.requestId);
  const chunks: ArchivedLogChunk[] = [];
  let parts: string[] = [];
  let current: ArchivedLogChunk | undefined;
  let lines = 0;
  let bytes = 0;
  let truncated = false;
  const flush = async () => {
    if (!current) return;
    await bucket.put(archiveChunkKey(key, current.index), await gzip(parts), {
      httpMetadata: { contentType: "application/x-ndjson", contentEncoding: "gzip" },
    });
    chunks.push(current);
    current = undefined;
    parts = [];
  };
  let after = 0;
  reading: for (;;) {
    const read = await page(after, MAX_ARCHIVE_LOG_PAGE);
    for (const record of read.records) {
      const encoded = encodeRecord(record);
      if (lines >= MAX_ARCHIVE_LOG_LINES || bytes + encoded.bytes > MAX_ARCHIVE_LOG_BYTES) {
        truncated = true;
        break reading;
      }
      if (encoded.cut) truncated = true;
      if (current && current.bytes + encoded.bytes > MAX_ARCHIVE_CHUNK_BYTES) await flush();
      if (!current) {
        current = { index: chunks.length + 1, firstSeq: record.seq, lastSeq: record.seq, lines: 0, bytes: 0 };
      }
      parts.push(encoded.text);
      current.lastSeq = record.seq;
      current.lines += 1;
      current.bytes += encoded.bytes;
      lines += 1;
      bytes += encoded.bytes;
    }
    if (!read.more || read.lastSeq <= after) break;
    after = read.lastSeq;
  }
  await flush();
  const manifest: ArchivedEvent = {
    formatVersion: ARCHIVE_FORMAT_VERSION,
    archivedAt: new Date(nowMs).toISOString(),
    event,
    log: { chunks, lines, truncated, lastSeq },
  };
  await bucket.put(key, await gzip([JSON.stringify(manifest)]), {
    httpMetadata: { contentType: "application/json", contentEncoding: "gzip" },
    customMetadata: { status: event.status, endedAt: event.endedAt ?? "" },
  });
  await bucket.put(archivePointerKey(event.namespace, event.requestId), key);
  return key;
}

/** The manifest key of one event of the namespace, or EVENT_NOT_FOUND (none, or another namespace's). */
async function manifestKeyOf(bucket: R2Bucket, namespace: string, requestId: string): Promise<string> {
  const pointer = await bucket.get(archivePointerKey(namespace, requestId));
  if (!pointer) throw notArchived(namespace, requestId);
  const key = await pointer.text();
  // The pointer names a key of its own namespace only: anything else is not this namespace's event.
  if (!key.startsWith(`events/${namespace}/`) || !key.endsWith(`/${requestId}.json.gz`)) {
    throw notArchived(namespace, requestId);
  }
  return key;
}

function notArchived(namespace: string, requestId: string): PlatformError {
  return new PlatformError("EVENT_NOT_FOUND", `no archived event ${requestId} in namespace ${namespace}`);
}

/** An archive's manifest read and parsed (never its log), with its key. */
export async function readArchive(
  bucket: R2Bucket,
  namespace: string,
  requestId: string,
): Promise<ArchivedEvent & { key: string }> {
  const key = await manifestKeyOf(bucket, namespace, requestId);
  const object = await bucket.get(key);
  if (!object) throw notArchived(namespace, requestId);
  if (object.size > MAX_MANIFEST_BYTES) {
    await object.body.cancel();
    throw new PlatformError(
      "INTERNAL_ERROR",
      `the archive of ${requestId} is not readable (its manifest is too large)`,
    );
  }
  const manifest = JSON.parse(await gunzipText(object.body)) as ArchivedEvent;
  if (manifest.formatVersion !== ARCHIVE_FORMAT_VERSION || !Array.isArray(manifest.log?.chunks)) {
    throw new PlatformError("INTERNAL_ERROR", `the archive of ${requestId} has an unknown layout`);
  }
  return { ...manifest, key };
}

/**
 * A page of an archived log: the lines with seq > after, at most `limit`, read from the one chunk
 * holding the first of them (a page ends at its chunk's end; `more` says whether lines follow).
 */
export async function readArchivedLogPage(
  bucket: R2Bucket,
  archived: ArchivedEvent & { key: string },
  after: number,
  limit: number,
): Promise<LogPage & { truncated: boolean }> {
  const bound = Math.min(limit, MAX_ARCHIVE_LOG_PAGE);
  const position = archived.log.chunks.findIndex((chunk) => chunk.lastSeq > after);
  const chunk = archived.log.chunks[position];
  if (!chunk) return { records: [], lastSeq: after, more: false, truncated: archived.log.truncated };
  const object = await bucket.get(archiveChunkKey(archived.key, chunk.index));
  if (!object)
    throw new PlatformError("INTERNAL_ERROR", `a log chunk of the archive of ${archived.event.requestId} is missing`);
  const text = await gunzipText(object.body);
  const records: StoredLogRecord[] = [];
  let rest = 0;
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const record = JSON.parse(line) as StoredLogRecord;
    if (record.seq <= after) continue;
    if (records.length < bound) records.push(record);
    else rest += 1;
  }
  const last = records[records.length - 1];
  return {
    records,
    lastSeq: last !== undefined ? last.seq : after,
    more: rest > 0 || position < archived.log.chunks.length - 1,
    truncated: archived.log.truncated,
  };
}

/** Deletes one archived event of the namespace (its chunks, manifest and pointer); EVENT_NOT_FOUND as a read. */
export async function deleteArchive(bucket: R2Bucket, namespace: string, requestId: string): Promise<void> {
  const key = await manifestKeyOf(bucket, namespace, requestId);
  const object = await bucket.head(key);
  // The chunks are found by listing (the manifest may be missing or unreadable; a listing is bounded by its keys).
  const chunkPrefix = archiveChunkKey(key, 1).replace(/log-\d+\.ndjson\.gz$/, "");
  const listed = await bucket.list({ prefix: chunkPrefix, limit: 1000 });
  const keys = listed.objects.map((entry) => entry.key);
  if (object) keys.push(key);
  if (keys.length > 0) await bucket.delete(keys);
  await bucket.delete(archivePointerKey(namespace, requestId));
}

/** Objects one function deletion's background sweep goes through at most (the lifecycle rule removes the rest). */
export const MAX_FUNCTION_ARCHIVE_SWEEP = 20_000;

/**
 * Deletes the archives of a deleted function (manifests under events/{namespace}/{functionName}/,
 * their chunks under logs/... and their pointers by RequestId), only objects written before
 * `beforeMs` (the deletion): an archive written later (an event of the old function still within
 * its retention, or one of a function re-created under the same name) is kept. Bounded
 * (MAX_FUNCTION_ARCHIVE_SWEEP objects); run in the background. Answers the objects deleted.
 */
export async function deleteFunctionArchives(
  bucket: R2Bucket,
  namespace: string,
  functionName: string,
  beforeMs: number,
): Promise<number> {
  let seen = 0;
  let deleted = 0;
  for (const root of ["events", "logs"]) {
    const prefix = `${root}/${namespace}/${functionName}/`;
    let cursor: string | undefined;
    do {
      if (seen >= MAX_FUNCTION_ARCHIVE_SWEEP) {
        console.warn("a deleted function's archives exceed one sweep; the lifecycle rule removes the rest", prefix);
        return deleted;
      }
      const listed = await bucket.list({ prefix, limit: 1000, ...(cursor !== undefined ? { cursor } : {}) });
      seen += listed.objects.length;
      const keys: string[] = [];
      for (const object of listed.objects) {
        if (object.uploaded.getTime() >= beforeMs) continue;
        keys.push(object.key);
        const manifest = /\/([^/]+)\.json\.gz$/.exec(object.key);
        if (root === "events" && manifest?.[1] !== undefined) keys.push(archivePointerKey(namespace, manifest[1]));
      }
      for (let index = 0; index < keys.length; index += 1000) await bucket.delete(keys.slice(index, index + 1000));
      deleted += keys.length;
      cursor = listed.truncated ? listed.cursor : undefined;
    } while (cursor !== undefined);
  }
  return deleted;
}

/** A date filter of the archive list. */
export const archiveDaySchema = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, "date: YYYY-MM-DD (the UTC day of the events' end)")
  .refine(
    (day) => !Number.isNaN(Date.parse(`${day}T00:00:00Z`)) && archiveDay(Date.parse(`${day}T00:00:00Z`)) === day,
    {
      message: "date: a real day, YYYY-MM-DD",
    },
  );

/** One archived event as the list shows it. */
export interface ArchiveListEntry {
  requestId: string;
  functionName: string;
  /** The UTC day of its end. */
  date: string;
  status: string | null;
  endedAt: string | null;
  /** Bytes of the compressed manifest (the log's chunks are separate objects). */
  size: number;
  archivedAt: string;
}

/** A page of the namespace's archive. */
export interface ArchiveList {
  events: ArchiveListEntry[];
  /** Pass as `cursor` for the next page; null on the last. */
  nextCursor: string | null;
}

/**
 * The namespace's archived events, in key order (by function, then day, then RequestId), from R2's
 * listing under events/{namespace}/[{functionName}/[{date}/]]. A date needs a function name.
 */
export async function listArchive(
  bucket: R2Bucket,
  namespace: string,
  filter: { functionName?: string | undefined; date?: string | undefined; cursor?: string | undefined; limit: number },
): Promise<ArchiveList> {
  if (filter.date !== undefined && filter.functionName === undefined) {
    throw new PlatformError(
      "INVALID_PARAMETER",
      "date: give functionName too (the archive is listed by function, then day)",
    );
  }
  let prefix = `events/${namespace}/`;
  if (filter.functionName !== undefined) prefix += `${filter.functionName}/`;
  if (filter.date !== undefined) prefix += `${filter.date}/`;
  let listed: R2Objects;
  try {
    listed = await bucket.list({
      prefix,
      limit: Math.min(filter.limit, MAX_ARCHIVE_LIST_LIMIT),
      include: ["customMetadata"],
      ...(filter.cursor !== undefined ? { cursor: filter.cursor } : {}),
    });
  } catch (error) {
    if (filter.cursor !== undefined) throw new PlatformError("INVALID_PARAMETER", "cursor: not a cursor of this list");
    throw error;
  }
  const events: ArchiveListEntry[] = [];
  for (const object of listed.objects) {
    const [, , functionName, date, file] = object.key.split("/");
    if (functionName === undefined || date === undefined || file === undefined) continue;
    events.push({
      requestId: file.replace(/\.json\.gz$/, ""),
      functionName,
      date,
      status: object.customMetadata?.status ?? null,
      endedAt: object.customMetadata?.endedAt || null,
      size: object.size,
      archivedAt: object.uploaded.toISOString(),
    });
  }
  return { events, nextCursor: listed.truncated ? listed.cursor : null };
}
