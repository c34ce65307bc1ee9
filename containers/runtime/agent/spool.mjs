// One execution's records on disk: the log spool. The agent reads a handler's pipes at full speed
// and appends every record to a file of its own (in the agent-only spool folder, 0700 root, which
// the handler's uid can neither read nor write), so that a relay reading slowly never holds the
// handler back and never loses a record: a stream resumes from any seq, however far behind.
//
// In memory there is only what finding a seq needs: a block index in typed arrays (one entry per
// written block of about SPOOL_BLOCK_CHARS, not one per line: a per-seq index would take 8 bytes a
// line, gigabytes for a gigabyte of empty lines), the text not yet written (at most
// MAX_SPOOL_QUEUED_BYTES, past it the handler's pipes are paused) and the end record (kept by
// Execution, never written here). Nothing is fsynced: the spool only has to outlive the stream
// readers, not the machine.
//
// The file is UTF-8 text, one record a line, in seq order from seq 1, compact so that the disk it
// takes stays close to the log limit: `<ms>` `<tag>` `<line>` `\n`, where <ms> is the record's ts
// minus the previous record's in decimal ("" when 0, "-N" when the clock went back), <tag> one
// letter (s started, o stdout, e stderr, p platform, g progress) and <line> the line as kept (it
// never holds a newline; a progress record's is `<percent> <message>`). Each block's first seq, byte offset and the ts before it are in the index.
import {
  chmodSync,
  closeSync,
  mkdirSync,
  openSync,
  read,
  readdirSync,
  rmSync,
  unlinkSync,
  write,
  writev,
} from "node:fs";
import { join } from "node:path";
import { MAX_SPOOL_QUEUED_BYTES, SPOOL_BLOCK_CHARS } from "./limits.mjs";

/** Tag letter of a record by its type (started, progress) or its stream (log records). */
const TAG_OF = { started: "s", stdout: "o", stderr: "e", platform: "p", progress: "g" };
/** Stream of a log record by its tag letter. */
const STREAM_OF = { o: "stdout", e: "stderr", p: "platform" };
/** Block index entries allocated at first; the arrays double when full. */
const INITIAL_BLOCKS = 256;
/** Most buffers handed to one writev (the kernel's IOV_MAX is 1024). */
const MAX_WRITEV_BUFFERS = 512;

/**
 * Empties the spool folder at agent start (spools of a previous agent process are of no use: its
 * executions are gone) and makes sure it is 0700, owned by the agent's user (root in the image).
 */
export function resetSpoolRoot(root) {
  mkdirSync(root, { recursive: true, mode: 0o700 });
  for (const entry of readdirSync(root)) rmSync(join(root, entry), { recursive: true, force: true });
  // mkdirSync does not change an existing folder's mode; the handler's uid must not get in.
  chmodSync(root, 0o700);
}

let spoolCounter = 0;

/** The records of one execution, spooled to one file. */
export class Spool {
  /**
   * onProgress is called after each completed write and after a failure (readers may go on);
   * onFailure(error) once, when a write fails (the records not yet written are lost).
   */
  constructor(root, requestId, onProgress, onFailure) {
    spoolCounter += 1;
    this.path = join(root, `${requestId}.${process.pid}.${spoolCounter}.log`);
    this.onProgress = onProgress;
    this.onFailure = onFailure;
    /** Block index: first seq, byte offset, ts of the record before it (0 for the first block). */
    this.blockSeq = new Float64Array(INITIAL_BLOCKS);
    this.blockOffset = new Float64Array(INITIAL_BLOCKS);
    this.blockPrevTs = new Float64Array(INITIAL_BLOCKS);
    this.blocks = 0;
    /** Text appended since the last sealed block, its first seq and the ts before it. */
    this.pending = "";
    this.pendingFirstSeq = 0;
    this.pendingPrevTs = 0;
    this.lastTs = 0;
    /** Last seq appended. */
    this.appendedSeq = 0;
    /** Sealed blocks waiting for the writer: { buffer, lastSeq }. */
    this.queue = [];
    this.queuedBytes = 0;
    /** Bytes sealed so far (the offset of the next block). */
    this.size = 0;
    /** Bytes and last seq on disk (readable). */
    this.writtenBytes = 0;
    this.writtenSeq = 0;
    this.writing = false;
    this.flushScheduled = false;
    /** Set when the file could not be made or written: the records of `lost` are gone. */
    this.failed = undefined;
    this.lost = undefined;
    /** Streams reading the file: it is closed once the spool is disposed and the last one is done. */
    this.readers = 0;
    this.disposed = false;
    try {
      this.fd = openSync(this.path, "wx+", 0o600);
    } catch (error) {
      this.fd = undefined;
      this.failed = error;
    }
  }

  /** True while more than MAX_SPOOL_QUEUED_BYTES wait for the disk (the handler's pipes pause). */
  get congested() {
    return this.queuedBytes + this.pending.length > MAX_SPOOL_QUEUED_BYTES;
  }

  /**
   * Appends one record (started, progress or log): type "started" or "progress", or a stream name. Returns false when the
   * spool has failed (the caller keeps the record elsewhere).
   */
  append(seq, ts, kind, line) {
    return this.appendLines(seq, 1, ts, kind, `${line}\n`);
  }

  /**
   * Appends `count` records of one kind and ts, from seq `firstSeq` on: `text` holds their lines,
   * each ending with its newline (a handler's burst read at once costs one append, see
   * Execution.logLines). Returns false when the spool has failed.
   */
  appendLines(firstSeq, count, ts, kind, text) {
    if (this.failed) return false;
    if (this.pending.length === 0) {
      this.pendingFirstSeq = firstSeq;
      this.pendingPrevTs = this.lastTs;
    }
    const delta = ts - this.lastTs;
    this.lastTs = ts;
    const tag = TAG_OF[kind];
    // Every line gets its tag; the ts delta (0 after the first) only the first.
    const records = count === 1 ? `${tag}${text}` : `${tag}${text.slice(0, -1).replaceAll("\n", `\n${tag}`)}\n`;
    this.pending += delta === 0 ? records : `${delta}${records}`;
    this.appendedSeq = firstSeq + count - 1;
    if (this.pending.length >= SPOOL_BLOCK_CHARS) this.seal();
    if (!this.writing && !this.flushScheduled) {
      // The rest of the chunk being read joins this write (one write per pipe chunk at most).
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
    return true;
  }

  /** Makes the pending text a block: indexed, queued for the writer. */
  seal() {
    if (this.pending.length === 0) return;
    if (this.blocks === this.blockSeq.length) this.growIndex();
    const buffer = Buffer.from(this.pending, "utf8");
    this.blockSeq[this.blocks] = this.pendingFirstSeq;
    this.blockOffset[this.blocks] = this.size;
    this.blockPrevTs[this.blocks] = this.pendingPrevTs;
    this.blocks += 1;
    this.size += buffer.length;
    this.queue.push({ buffer, lastSeq: this.appendedSeq });
    this.queuedBytes += buffer.length;
    this.pending = "";
  }

  growIndex() {
    const grow = (array) => {
      const bigger = new Float64Array(array.length * 2);
      bigger.set(array);
      return bigger;
    };
    this.blockSeq = grow(this.blockSeq);
    this.blockOffset = grow(this.blockOffset);
    this.blockPrevTs = grow(this.blockPrevTs);
  }

  /** Writes everything sealed or pending, one writev at a time (appends are batched meanwhile). */
  flush() {
    if (this.writing || this.failed) return;
    this.seal();
    if (this.queue.length === 0) return;
    const batch = this.queue.splice(0, MAX_WRITEV_BUFFERS);
    const buffers = batch.map((block) => block.buffer);
    const bytes = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
    const position = this.writtenBytes;
    this.writing = true;
    const done = (error, written) => {
      this.writing = false;
      if (this.disposed) return this.closeIfUnused();
      if (!error && written !== bytes) {
        // A short write (a full disk on the way): write the rest at its place.
        const rest = Buffer.concat(buffers).subarray(written);
        this.writtenBytes += written;
        this.queue.unshift({ buffer: rest, lastSeq: batch.at(-1).lastSeq });
        this.queuedBytes -= written;
        this.flush();
        return;
      }
      if (error) return this.fail(error);
      this.writtenBytes += bytes;
      this.writtenSeq = batch.at(-1).lastSeq;
      this.queuedBytes -= bytes;
      this.flush();
      this.onProgress();
    };
    if (buffers.length === 1) write(this.fd, buffers[0], 0, bytes, position, done);
    else writev(this.fd, buffers, position, done);
  }

  /**
   * A write failed (ENOSPC, EIO...): the records not on disk are lost (a reader gets a `gap` for
   * them); the spool takes no more records.
   */
  fail(error) {
    if (this.failed) return;
    this.failed = error;
    if (this.appendedSeq > this.writtenSeq) this.lost = { from: this.writtenSeq + 1, to: this.appendedSeq };
    this.queue = [];
    this.queuedBytes = 0;
    this.pending = "";
    this.onFailure(error);
    this.onProgress();
  }

  /**
   * Reads the records from seq `from` on, as far as they are on disk, in whole blocks of at most
   * about maxBytes (one block at least), as NDJSON: `{ text, lastSeq }`, or undefined when `from`
   * is not on disk yet.
   */
  async read(from, maxBytes) {
    if (this.fd === undefined || this.disposed || from > this.writtenSeq) return undefined;
    // The last block whose first seq is <= from.
    let low = 0;
    let high = this.blocks - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (this.blockSeq[middle] <= from) low = middle;
      else high = middle - 1;
    }
    const first = low;
    const start = this.blockOffset[first];
    let end = first + 1 < this.blocks ? this.blockOffset[first + 1] : this.size;
    for (let next = first + 1; next < this.blocks; next++) {
      const nextEnd = next + 1 < this.blocks ? this.blockOffset[next + 1] : this.size;
      if (nextEnd > this.writtenBytes || nextEnd - start > maxBytes) break;
      end = nextEnd;
    }
    end = Math.min(end, this.writtenBytes);
    const buffer = Buffer.allocUnsafe(end - start);
    let offset = 0;
    while (offset < buffer.length) {
      const count = await new Promise((resolve, reject) =>
        read(this.fd, buffer, offset, buffer.length - offset, start + offset, (error, bytes) =>
          error ? reject(error) : resolve(bytes),
        ),
      );
      if (count === 0) break;
      offset += count;
    }
    return parseRecords(buffer.toString("utf8", 0, offset), this.blockSeq[first], this.blockPrevTs[first], from);
  }

  /** The execution is forgotten: its file is removed now, and closed once no stream reads it. */
  dispose() {
    if (this.disposed) return;
    this.disposed = true;
    this.queue = [];
    this.pending = "";
    try {
      unlinkSync(this.path);
    } catch {
      // never made, or already gone
    }
    this.closeIfUnused();
  }

  closeIfUnused() {
    if (!this.disposed || this.readers > 0 || this.writing || this.fd === undefined) return;
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
    this.fd = undefined;
  }
}

/**
 * The NDJSON line of a started, progress or log record (as JSON.stringify writes it, built faster).
 * A progress record's line is `<percent> <message>` (see Execution.reportProgress).
 */
export function recordJson(seq, ts, type, stream, line) {
  if (type === "started") return `{"seq":${seq},"ts":${ts},"type":"started"}\n`;
  if (type === "progress") {
    const space = line.indexOf(" ");
    const percent = JSON.stringify(Number(line.slice(0, space)));
    return `{"seq":${seq},"ts":${ts},"type":"progress","percent":${percent},"message":${JSON.stringify(line.slice(space + 1))}}\n`;
  }
  return `{"seq":${seq},"ts":${ts},"type":"log","stream":"${stream}","line":${JSON.stringify(line)}}\n`;
}

/**
 * The NDJSON of a block's records (its first seq and the ts before it known) from seq `from` on:
 * `{ text, lastSeq }`, or undefined when none is there.
 */
function parseRecords(text, firstSeq, prevTs, from) {
  let json = "";
  let lastSeq;
  let seq = firstSeq;
  let ts = prevTs;
  let start = 0;
  for (let newline = text.indexOf("\n"); newline >= 0; newline = text.indexOf("\n", start)) {
    let index = start;
    let code = text.charCodeAt(index);
    while ((code >= 48 && code <= 57) || code === 45) code = text.charCodeAt(++index);
    if (index > start) ts += Number(text.slice(start, index));
    if (seq >= from) {
      const tag = text[index];
      json +=
        tag === "s"
          ? recordJson(seq, ts, "started")
          : tag === "g"
            ? recordJson(seq, ts, "progress", undefined, text.slice(index + 1, newline))
            : recordJson(seq, ts, "log", STREAM_OF[tag], text.slice(index + 1, newline));
      lastSeq = seq;
    }
    seq += 1;
    start = newline + 1;
  }
  return lastSeq === undefined ? undefined : { text: json, lastSeq };
}
