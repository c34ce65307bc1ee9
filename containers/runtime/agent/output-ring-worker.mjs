// The thread of output-ring.mjs: takes the ring's records in order and writes each run of records
// of one stream (up to STAGE_BYTES) to its pipe in one write, then frees their room. It sleeps while
// the ring is empty; the writer wakes it.
import { workerData } from "node:worker_threads";
import { OUTPUT_RING_BYTES } from "./limits.mjs";
import {
  BROKEN,
  CONTROL_CELLS,
  FD2_BIT,
  HEAD,
  MAX_RECORD_BYTES,
  TAIL,
  THREAD_SLEEPS,
  writeAllSync,
} from "./output-ring.mjs";

/** Most bytes handed to one write. */
const STAGE_BYTES = MAX_RECORD_BYTES;
const MASK = OUTPUT_RING_BYTES - 1;

const control = new Int32Array(workerData.shared, 0, CONTROL_CELLS);
const bytes = new Uint8Array(workerData.shared, CONTROL_CELLS * 4, OUTPUT_RING_BYTES);
const words = new Int32Array(workerData.shared, CONTROL_CELLS * 4, OUTPUT_RING_BYTES / 4);
const stage = Buffer.allocUnsafe(STAGE_BYTES);

let tail = Atomics.load(control, TAIL);
try {
  for (;;) {
    const head = Atomics.load(control, HEAD);
    if (head === tail) {
      Atomics.store(control, THREAD_SLEEPS, 1);
      // Returns at once if the writer published since the load above.
      Atomics.wait(control, HEAD, tail);
      Atomics.store(control, THREAD_SLEEPS, 0);
      continue;
    }
    let fd = 0;
    let staged = 0;
    while (tail !== head) {
      const position = tail & MASK;
      const header = words[position >> 2];
      const recordFd = header & FD2_BIT ? 2 : 1;
      const length = header & ~FD2_BIT;
      if (staged > 0 && (recordFd !== fd || staged + length > STAGE_BYTES)) break;
      fd = recordFd;
      const start = (position + 4) & MASK;
      const first = Math.min(length, OUTPUT_RING_BYTES - start);
      stage.set(bytes.subarray(start, start + first), staged);
      if (first < length) stage.set(bytes.subarray(0, length - first), staged + first);
      staged += length;
      tail = (tail + 4 + ((length + 3) & ~3)) | 0;
    }
    writeAllSync(fd, stage, staged);
    Atomics.store(control, TAIL, tail);
    Atomics.notify(control, TAIL);
  }
} catch {
  // A pipe that cannot be written (the agent's end is gone): the ring stops; writes are dropped.
  Atomics.store(control, BROKEN, 1);
  Atomics.notify(control, TAIL);
}
