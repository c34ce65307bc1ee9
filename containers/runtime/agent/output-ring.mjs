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
// process exits (process.exit, an uncaught exception) it is drained and closed (closeOutput). A
// process that dies without its `exit` listeners (an unhandled signal, an abort) loses what the
// ring held at that moment (only ever during a flood that the agent is behind on). PROTOCOL.md,
// "Writing the pipes (Node.js)", has the whole contract.
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
/** 1 once the thread could not write a pipe (its agent end is gone): writes are dropped from then on. */
export const BROKEN = 3;
/** Who writes the ring to the pipes: UNCLAIMED until the thread starts (OWNER_THREAD) or the writer gives up on it (OWNER_WRITER). */
export const OWNER = 4;
export const UNCLAIMED = 0;
export const OWNER_THREAD = 1;
export const OWNER_WRITER = 2;
/** A record's header: the bit for stderr; the rest is the byte count. */
export const FD2_BIT = 1 << 30;
/** Most bytes of one record: a larger write is split into several. */
export const MAX_RECORD_BYTES = OUTPUT_RING_BYTES / 4;
/** How long a wait for room or for the drain looks again at BROKEN and OWNER. */
const WAIT_SLICE_MS = 100;
/**
 * How long the thread may take to claim the ring (it takes milliseconds). A thread that fails as it
 * starts says so in an event, which the writer sees only once its event loop turns; past this
 * timeout the writer does not wait for that: it writes the ring's records itself and goes on
 * without a ring (OutputRing.takeOver). (A thread that cannot be created at all throws at once.)
 */
export const RING_START_TIMEOUT_MS = 5_000;

const MASK = OUTPUT_RING_BYTES - 1;
const pad4 = (bytes) => (bytes + 3) & ~3;

/** A cell to sleep on (Atomics.wait) where no other cell is at hand. */
const nap = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes all of `data` (bytes, or text as UTF-8) to `fd`, or its first `length` bytes: a partial
 * write goes on with the rest; a pipe that something made non-blocking (EAGAIN) is tried again
 * after a millisecond. Any other error is thrown.
 */
export function writeAllSync(fd, data, length) {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  const total = length ?? bytes.length;
  let done = 0;
  while (done < total) {
    try {
      done += writeSync(fd, bytes, done, total - done);
    } catch (error) {
      if (error?.code !== "EAGAIN") throw error;
      Atomics.wait(nap, 0, 0, 1);
    }
  }
}

/** The ring's views over its shared memory. */
export function ringViews(shared) {
  return {
    control: new Int32Array(shared, 0, CONTROL_CELLS),
    bytes: new Uint8Array(shared, CONTROL_CELLS * 4, OUTPUT_RING_BYTES),
    words: new Int32Array(shared, CONTROL_CELLS * 4, OUTPUT_RING_BYTES / 4),
  };
}

/**
 * Writes the first run of records from `tail` (before `head`): consecutive records of one stream,
 * up to `stage.length` bytes, gathered in `stage` and written in one go. Answers the tail after
 * them. Throws what the write throws (EAGAIN aside).
 */
export function writeRun({ bytes, words }, tail, head, stage) {
  let fd = 0;
  let staged = 0;
  while (tail !== head) {
    const position = tail & MASK;
    const header = words[position >> 2];
    const recordFd = header & FD2_BIT ? 2 : 1;
    const length = header & ~FD2_BIT;
    if (staged > 0 && (recordFd !== fd || staged + length > stage.length)) break;
    fd = recordFd;
    const start = (position + 4) & MASK;
    const first = Math.min(length, OUTPUT_RING_BYTES - start);
    stage.set(bytes.subarray(start, start + first), staged);
    if (first < length) stage.set(bytes.subarray(0, length - first), staged + first);
    staged += length;
    tail = (tail + 4 + pad4(length)) | 0;
  }
  writeAllSync(fd, stage, staged);
  return tail;
}

/** The ring, created with its thread on the first burst. */
class OutputRing {
  constructor() {
    const shared = new SharedArrayBuffer(CONTROL_CELLS * 4 + OUTPUT_RING_BYTES);
    this.views = ringViews(shared);
    this.control = this.views.control;
    this.bytes = this.views.bytes;
    this.words = this.views.words;
    this.head = 0;
    this.encoder = new TextEncoder();
    this.createdAt = performance.now();
    /** True once the writer took the ring over (takeOver): writes go straight to the pipes. */
    this.direct = false;
    /** True once this writer saw the thread claim the ring (no more looks at OWNER needed). */
    this.claimed = false;
    /** True once the thread has failed or ended: the writer takes the ring over at its next write. */
    this.threadGone = false;
    this.thread = new Worker(ringThreadScript, {
      workerData: { shared },
      // No environment: a NODE_OPTIONS preload of the handler's does not run in the thread.
      env: {},
      stdin: false,
      stdout: false,
      stderr: false,
    });
    // The thread never keeps the process alive. If it fails as it starts (or ever ends), the writer
    // writes what the ring holds itself and goes on without it (takeOver).
    this.thread.unref();
    const gone = () => {
      this.threadGone = true;
    };
    this.thread.on("error", gone);
    this.thread.on("exit", gone);
  }

  get broken() {
    return Atomics.load(this.control, BROKEN) === 1;
  }

  /** Free bytes in the ring. */
  room() {
    return OUTPUT_RING_BYTES - ((this.head - Atomics.load(this.control, TAIL)) | 0);
  }

  /**
   * Waits until the ring has `bytes` free; false when it will not (the thread failed: see broken,
   * or never started and the writer took the ring over: see direct).
   */
  waitForRoom(bytes) {
    for (;;) {
      const tail = Atomics.load(this.control, TAIL);
      if (OUTPUT_RING_BYTES - ((this.head - tail) | 0) >= bytes) return true;
      if (this.broken || this.takeOverIfUnclaimed()) return false;
      Atomics.wait(this.control, TAIL, tail, WAIT_SLICE_MS);
    }
  }

  /**
   * Takes the ring over when its thread is gone, or has not started within RING_START_TIMEOUT_MS:
   * claims it for this writer, writes its records to the pipes and makes the ring direct. Answers
   * whether the ring is direct now.
   */
  takeOverIfUnclaimed() {
    if (this.direct) return true;
    if (this.threadGone) {
      // A thread that ended after claiming the ring writes no more: its claim is void.
      Atomics.store(this.control, OWNER, OWNER_WRITER);
      return this.takeOver();
    }
    if (this.claimed) return false;
    if (Atomics.load(this.control, OWNER) === OWNER_THREAD) {
      this.claimed = true;
      return false;
    }
    if (performance.now() - this.createdAt < RING_START_TIMEOUT_MS) return false;
    if (Atomics.compareExchange(this.control, OWNER, UNCLAIMED, OWNER_WRITER) !== UNCLAIMED) return false;
    return this.takeOver();
  }

  /** Writes what the ring holds to the pipes, from this writer's thread, and makes the ring direct. */
  takeOver() {
    let tail = Atomics.load(this.control, TAIL);
    const stage = Buffer.allocUnsafe(MAX_RECORD_BYTES);
    try {
      while (tail !== this.head) tail = writeRun(this.views, tail, this.head, stage);
    } catch {
      // The agent's end of the pipe is gone: the rest has nowhere to go.
    }
    Atomics.store(this.control, TAIL, this.head);
    this.direct = true;
    return true;
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
    // Until the thread has claimed the ring (normally within milliseconds), and once it is gone,
    // each write looks whether to take the ring over, so that no line waits in a ring that nothing
    // writes.
    if ((!this.claimed || this.threadGone) && this.takeOverIfUnclaimed()) return writeDirect(fd, chunk);
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
      if (!this.waitForRoom(4 + pad4(part.length))) {
        if (this.direct) writeDirect(fd, chunk.subarray(offset));
        return;
      }
      const position = this.head & MASK;
      const start = (position + 4) & MASK;
      const first = Math.min(part.length, OUTPUT_RING_BYTES - start);
      this.bytes.set(part.subarray(0, first), start);
      if (first < part.length) this.bytes.set(part.subarray(first), 0);
      this.publish(position, fd, part.length);
    }
  }

  /** Waits until everything published is written (or the thread has failed). */
  drain() {
    for (;;) {
      const tail = Atomics.load(this.control, TAIL);
      if (tail === this.head || this.broken || this.takeOverIfUnclaimed()) return;
      Atomics.wait(this.control, TAIL, tail, WAIT_SLICE_MS);
    }
  }
}

/** The thread's module (tests replace it with one that never starts, see setRingThreadScript). */
let ringThreadScript = new URL("./output-ring-worker.mjs", import.meta.url);

/** For tests: the module the next ring's thread runs (one that fails shows the writer's take-over). */
export function setRingThreadScript(url) {
  ringThreadScript = url;
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
  if (ring?.direct) {
    ring = undefined;
    ringFailed = true;
  }
  if (ring !== undefined) return ring.put(fd, chunk);
  writeDirect(fd, chunk);
}

/** Writes one chunk straight to its pipe. */
function writeDirect(fd, chunk) {
  try {
    writeAllSync(fd, chunk);
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
