// An event's older log lines, rolled out of its Durable Object into gzip-compressed NDJSON
// segments in R2 (the LOG_BUCKET binding), one object per contiguous seq range.
import type { StoredLogRecord } from "./event-log-store";

/** Most lines one segment holds. */
export const SEGMENT_MAX_LINES = 20_000;
/** Most characters one segment holds (each line counting its length + 1), besides its first line. */
export const SEGMENT_MAX_CHARS = 4 * 1024 * 1024;
/**
 * The recent lines an event keeps in its Durable Object: once its SQLite tail holds more than
 * this many lines or characters, the oldest are rolled into a segment.
 */
export const TAIL_MAX_LINES = 2 * SEGMENT_MAX_LINES;
export const TAIL_MAX_CHARS = 2 * SEGMENT_MAX_CHARS;
/** Decoded segments an event object keeps in memory for the readers paging through them. */
export const SEGMENT_CACHE_ENTRIES = 2;

/** A segment as the event object lists it. */
export interface SegmentRow {
  firstSeq: number;
  lastSeq: number;
  key: string;
  lines: number;
  /** Characters of its lines (each + 1), as counted against the bounds. */
  chars: number;
  /** Bytes of the compressed object. */
  storedBytes: number;
}

/** The R2 prefix under which every segment of one event lies. */
export function segmentPrefix(namespace: string, requestId: string): string {
  return `logs/${namespace}/${requestId}/`;
}

/**
 * The key of a segment: its seq range, zero-padded, so that the keys of one event list in order and
 * a roll retried after a crash writes the same object again.
 */
export function segmentKey(namespace: string, requestId: string, firstSeq: number, lastSeq: number): string {
  const pad = (seq: number) => String(seq).padStart(12, "0");
  return `${segmentPrefix(namespace, requestId)}${pad(firstSeq)}-${pad(lastSeq)}.ndjson.gz`;
}

/** Gzip of the records as NDJSON (one record's JSON a line). */
export async function encodeSegment(records: readonly StoredLogRecord[]): Promise<Uint8Array> {
  const text = records.map((record) => JSON.stringify(record)).join("\n");
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** The records of a segment object's body (see encodeSegment). */
export async function decodeSegment(body: ReadableStream<Uint8Array>): Promise<StoredLogRecord[]> {
  const text = await new Response(body.pipeThrough(new DecompressionStream("gzip"))).text();
  if (text === "") return [];
  return text.split("\n").map((line) => JSON.parse(line) as StoredLogRecord);
}

/**
 * Reads segments from R2, keeping the last few decoded in memory: a reader paging through a
 * segment a thousand lines at a time decodes it once.
 */
export class SegmentReader {
  private readonly cache = new Map<string, Promise<StoredLogRecord[]>>();

  constructor(private readonly bucket: R2Bucket) {}

  /** The records of a segment; throws when its object is missing (a defect, or a deleted event). */
  records(segment: SegmentRow): Promise<StoredLogRecord[]> {
    const cached = this.cache.get(segment.key);
    if (cached) {
      // Most recently used last.
      this.cache.delete(segment.key);
      this.cache.set(segment.key, cached);
      return cached;
    }
    const loading = this.load(segment.key);
    this.cache.set(segment.key, loading);
    loading.catch(() => this.cache.delete(segment.key));
    while (this.cache.size > SEGMENT_CACHE_ENTRIES) {
      const oldest = this.cache.keys().next().value as string;
      this.cache.delete(oldest);
    }
    return loading;
  }

  private async load(key: string): Promise<StoredLogRecord[]> {
    const object = await this.bucket.get(key);
    if (!object) throw new Error(`log segment ${key} is missing`);
    return decodeSegment(object.body);
  }
}

/** Deletes every object under an event's segment prefix (listed, so an unrecorded one goes too). */
export async function deleteSegments(bucket: R2Bucket, prefix: string): Promise<void> {
  let cursor: string | undefined;
  do {
    const listed = await bucket.list({ prefix, ...(cursor !== undefined ? { cursor } : {}) });
    const keys = listed.objects.map((object) => object.key);
    if (keys.length > 0) await bucket.delete(keys);
    cursor = listed.truncated ? listed.cursor : undefined;
  } while (cursor !== undefined);
}
