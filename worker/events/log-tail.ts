// The end of an event's log as one text: what a synchronous invocation answers in SCF's `Log` (with
// `LogType: "Tail"`) and the REST sync route's `logTail`. Read backwards in small chunks, so a long
// log costs a few reads of its last lines only.
import type { LogPage, StoredLogRecord } from "./event-log-store";
import { utf8Length } from "./text-bounds";

/** Bytes (UTF-8) of log a synchronous invocation answers: SCF's `LogType: "Tail"` gives 4 KB. */
export const SYNC_LOG_TAIL_BYTES = 4 * 1024;
/** Lines read per step backwards from the end of the log. */
export const LOG_TAIL_CHUNK_LINES = 32;

/** Reads stored lines with seq > after, oldest first, at most `limit` (the event log's page read). */
export type LogPageReader = (after: number, limit: number) => Promise<LogPage> | LogPage;

/** One line of the tail: its time and the line, as function-log excerpts show them. */
export function tailLine(record: StoredLogRecord): string {
  return `${new Date(record.ts).toISOString()} ${record.line}\n`;
}

/** The lines with after < seq <= end, oldest first (several pages when a page is cut by its size). */
async function linesBetween(read: LogPageReader, after: number, end: number): Promise<string[]> {
  const lines: string[] = [];
  let cursor = after;
  while (cursor < end) {
    const page = await read(cursor, end - cursor);
    for (const record of page.records) if (record.seq <= end) lines.push(tailLine(record));
    // No progress (nothing stored there any more): stop rather than ask again.
    if (page.lastSeq <= cursor) break;
    cursor = page.lastSeq;
  }
  return lines;
}

/**
 * The last `maxBytes` (UTF-8) of the log up to seq `lastSeq`, whole lines where they fit: the text
 * starts at a line's beginning unless the last line alone is longer, whose end is then given. Reads
 * LOG_TAIL_CHUNK_LINES lines at a time backwards and stops once it has `maxBytes`, so at most a few
 * chunks are read (a line takes at least its time and a newline).
 */
export async function logTail(read: LogPageReader, lastSeq: number, maxBytes = SYNC_LOG_TAIL_BYTES): Promise<string> {
  if (maxBytes <= 0) return "";
  const kept: string[] = [];
  let bytes = 0;
  let end = lastSeq;
  while (end > 0 && bytes < maxBytes) {
    const after = Math.max(0, end - LOG_TAIL_CHUNK_LINES);
    const chunk = await linesBetween(read, after, end);
    for (let index = chunk.length - 1; index >= 0 && bytes < maxBytes; index--) {
      const line = chunk[index] ?? "";
      kept.unshift(line);
      bytes += utf8Length(line);
    }
    end = after;
  }
  return tailWithin(kept, maxBytes);
}

/** The longest run of whole last lines within maxBytes, or the end of the last line when it alone is over. */
export function tailWithin(lines: readonly string[], maxBytes: number): string {
  let text = "";
  let bytes = 0;
  for (let index = lines.length - 1; index >= 0; index--) {
    const line = lines[index] ?? "";
    const size = utf8Length(line);
    if (bytes + size > maxBytes) {
      if (text.length === 0) return utf8Suffix(line, maxBytes);
      break;
    }
    text = line + text;
    bytes += size;
  }
  return text;
}

/** The last characters of `text` within maxBytes of UTF-8 (never splitting a character). */
function utf8Suffix(text: string, maxBytes: number): string {
  const chars = Array.from(text);
  let bytes = 0;
  let start = chars.length;
  while (start > 0) {
    const size = utf8Length(chars[start - 1] ?? "");
    if (bytes + size > maxBytes) break;
    bytes += size;
    start -= 1;
  }
  return chars.slice(start).join("");
}
