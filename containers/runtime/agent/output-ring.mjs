// The Node.js bootstrap's stdout and stderr (PROTOCOL.md, "Writing the pipes"). A handler's
// `console.log` becomes one write(2) of its own to a blocking pipe: in order, never lost, never
// queued in the process, but a flood of a million lines pays a million system calls. So a write
// goes straight to its pipe while the handler writes little, and once it writes in bursts
// (OUTPUT_RING_BURST_WRITES writes within OUTPUT_RING_BURST_MS) every write is copied into a ring
// shared with a thread of this process (output-ring-worker.mjs), which hands the pipes whole runs of
// writes at a time. The order of writes is kept across both streams; the ring is bounded (a
// handler that writes faster than the agent reads waits for room, as it would on a full pipe); and
// nothing written is held back: the thread writes whatever the ring holds as soon as it is there,
// while the handler runs on. Before an event's end mark the ring is drained (drainOutput); when the
// process exits (process.exit, an uncaught exception) it is drained and closed (closeOutput). A process killed with SIGKILL loses
// what the ring held at that moment (only ever during a flood that the agent is behind on).
import { writeSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { OUTPUT_RING_BURST_MS, OUTPUT_RING_BURST_WRITES, OUTPUT_RING_BYTES } from "./limits.mjs";

// The ring's layout: a control block of Int32 cells, then OUTPUT_RING_BYTES of records. A record is
// a 4-byte header (its byte count, with FD2_BIT for stderr) at a 4-aligned position, then its bytes
// (wrapping at the end of the ring), padded to 4. HEAD and TAIL count bytes modulo 2^32.
export const CONTROL_CELLS = 8;
/** Bytes the writer has published. */
export const HEAD = 0;
/** Bytes the thread has written to the pipes (a record is counted once its write completed). */
export const TAIL = 1;
/** 1 while the thread sleeps waiting for HEAD to move (the writer then wakes it). */
export const THREAD_SLEEPS = 2;
/** 1 once the thread has failed (a pipe closed): writes are dropped from then on. */
export const BROKEN = 3;
/** A record's header: the bit for stderr; the rest is the byte count. */
export const FD2_BIT = 1 << 30;
/** Most bytes of one record: a larger write is split into several. */
export const MAX_RECORD_BYTES = OUTPUT_RING_BYTES / 4;
/** How long a wait for room or for the drain looks again at BROKEN. */
const WAIT_SLICE_MS = 100;

const MASK = OUTPUT_RING_BYTES - 1;
const pad4 = (bytes) => (bytes + 3) & ~3;

/** A cell to sleep on (Atomics.wait) where no other cell is at hand. */
const nap = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes all of `bytes` to `fd`: a partial write goes on with the rest; a pipe that something made
 * non-blocking (EAGAIN) is tried again after a millisecond. Any other error is thrown.
 */
export function writeAllSync(fd, bytes, length = bytes.length) {
  let done = 0;
  while (done < length) {
    try {
      done += writeSync(fd, bytes, done, length - done);
    } catch (error) {
      if (error?.code !== "EAGAIN") throw error;
      Atomics.wait(nap, 0, 0, 1);
    }
  }
}

/** The ring, created with its thread on the first burst. */
class OutputRing {
  constructor() {
    const shared = new SharedArrayBuffer(CONTROL_CELLS * 4 + OUTPUT_RING_BYTES);
    this.control = new Int32Array(shared, 0, CONTROL_CELLS);
    this.bytes = new Uint8Array(shared, CONTROL_CELLS * 4, OUTPUT_RING_BYTES);
    this.words = new Int32Array(shared, CONTROL_CELLS * 4, OUTPUT_RING_BYTES / 4);
    this.head = 0;
    this.encoder = new TextEncoder();
    this.thread = new Worker(new URL("./output-ring-worker.mjs", import.meta.url), {
      workerData: { shared },
      stdin: false,
      stdout: false,
      stderr: false,
    });
    // The thread never keeps the process alive, and its failure only stops the ring (see BROKEN).
    this.thread.unref();
    this.thread.on("error", () => Atomics.store(this.control, BROKEN, 1));
  }

  get broken() {
    return Atomics.load(this.control, BROKEN) === 1;
  }

  /** Free bytes in the ring. */
  room() {
    return OUTPUT_RING_BYTES - ((this.head - Atomics.load(this.control, TAIL)) | 0);
  }

  /** Waits until the ring has `bytes` free; false when the thread has failed. */
  waitForRoom(bytes) {
    for (;;) {
      const tail = Atomics.load(this.control, TAIL);
      if (OUTPUT_RING_BYTES - ((this.head - tail) | 0) >= bytes) return true;
      if (this.broken) return false;
      Atomics.wait(this.control, TAIL, tail, WAIT_SLICE_MS);
    }
  }

  /** Makes the record at `position` of `length` bytes visible to the thread, and wakes it if it sleeps. */
  publish(position, fd, length) {
    this.words[position >> 2] = fd === 2 ? length | FD2_BIT : length;
    this.head = (this.head + 4 + pad4(length)) | 0;
    Atomics.store(this.control, HEAD, this.head);
    if (Atomics.load(this.control, THREAD_SLEEPS) === 1) Atomics.notify(this.control, HEAD);
  }

  /** Queues a write of text (UTF-8) or bytes to fd 1 or 2. */
  put(fd, chunk) {
    if (this.broken) return;
    if (typeof chunk === "string") {
      // The common case: the text is encoded straight into the ring, when its longest encoding
      // fits before the ring's end and in the free room.
      const position = this.head & MASK;
      const longest = chunk.length * 3;
      if (
        longest <= MAX_RECORD_BYTES &&
        position + 4 + longest <= OUTPUT_RING_BYTES &&
        this.room() >= 4 + pad4(longest)
      ) {
        const { written } = this.encoder.encodeInto(chunk, this.bytes.subarray(position + 4, position + 4 + longest));
        if (written > 0) this.publish(position, fd, written);
        return;
      }
      chunk = Buffer.from(chunk, "utf8");
    }
    for (let offset = 0; offset < chunk.length; offset += MAX_RECORD_BYTES) {
      const part = chunk.subarray(offset, Math.min(chunk.length, offset + MAX_RECORD_BYTES));
      if (!this.waitForRoom(4 + pad4(part.length))) return;
      const position = this.head & MASK;
      const start = (position + 4) & MASK;
      const first = Math.min(part.length, OUTPUT_RING_BYTES - start);
      this.bytes.set(part.subarray(0, first), start);
      if (first < part.length) this.bytes.set(part.subarray(first), 0);
      this.publish(position, fd, part.length);
    }
  }

  /** Waits until the thread has written everything published (or has failed). */
  drain() {
    for (;;) {
      const tail = Atomics.load(this.control, TAIL);
      if (tail === this.head || this.broken) return;
      Atomics.wait(this.control, TAIL, tail, WAIT_SLICE_MS);
    }
  }
}

/** The ring once a burst has started it; undefined before (and for good if it could not start, or after closeOutput). */
let ring;
let ringFailed = false;
/** Writes counted towards the next look at the burst window, and when that window began. */
let windowWrites = 0;
let windowStart = performance.now();

/** Writes one chunk of output to fd 1 or 2: straight to the pipe, or through the ring in a burst. */
export function writeOutput(fd, chunk) {
  if (ring === undefined && !ringFailed && ++windowWrites >= OUTPUT_RING_BURST_WRITES) {
    const now = performance.now();
    if (now - windowStart < OUTPUT_RING_BURST_MS) {
      try {
        ring = new OutputRing();
      } catch {
        ringFailed = true;
      }
    }
    windowWrites = 0;
    windowStart = now;
  }
  if (ring !== undefined) return ring.put(fd, chunk);
  try {
    writeAllSync(fd, typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk);
  } catch {
    // The agent's end of the pipe is gone (the container is stopping): the output has nowhere to go.
  }
}

/** Returns once every write so far has reached its pipe. */
export function drainOutput() {
  ring?.drain();
}

/**
 * At the process's exit: drains the ring and sends any later write (another `exit` listener's)
 * straight to its pipe, since nothing would drain the ring again.
 */
export function closeOutput() {
  ring?.drain();
  ring = undefined;
  ringFailed = true;
}

/** Whether the ring has started (for tests and the bench: bursts have been seen). */
export function outputRingStarted() {
  return ring !== undefined;
}

/**
 * Routes `stream.write` (process.stdout's or process.stderr's) through writeOutput: text in any
 * Buffer encoding or bytes; the callback, if any, is called on the next tick (consecutive writes
 * with the same callback share one tick, as Node's own streams do); always answers true.
 */
export function routeStream(stream, fd) {
  // The pipe blocks (a write waits for room, never fails with EAGAIN): the bootstrap's own direct
  // writes (the end mark) and the ring's thread rely on it.
  stream._handle?.setBlocking?.(true);
  // Callbacks waiting for the next tick, as [callback, count] runs of the same callback.
  const pending = [];
  const runCallbacks = () => {
    for (const [callback, count] of pending.splice(0)) for (let i = 0; i < count; i++) callback(null);
  };
  stream.write = function write(chunk, encoding, callback) {
    if (typeof encoding === "function") {
      callback = encoding;
      encoding = undefined;
    }
    if (typeof chunk === "string") {
      if (encoding && encoding !== "utf8" && encoding !== "utf-8") chunk = Buffer.from(chunk, encoding);
    } else if (!(chunk instanceof Uint8Array)) {
      throw new TypeError(`The "chunk" argument must be of type string or an instance of Buffer or Uint8Array`);
    }
    if (chunk.length > 0) writeOutput(fd, chunk);
    if (typeof callback === "function") {
      const last = pending.at(-1);
      if (last?.[0] === callback) last[1]++;
      else if (pending.push([callback, 1]) === 1) process.nextTick(runCallbacks);
    }
    return true;
  };
}
