// The thread of output-ring.mjs: claims the ring, then takes its records in order and writes each
// run of records of one stream (up to STAGE_BYTES) to its pipe in one write, then frees their
// room. It sleeps while the ring is empty; the writer wakes it. If the writer has taken the ring
// over already (this thread started too late), it ends at once.
import { workerData } from "node:worker_threads";
import {
  BROKEN,
  HEAD,
  MAX_RECORD_BYTES,
  OWNER,
  OWNER_THREAD,
  ringViews,
  TAIL,
  THREAD_SLEEPS,
  UNCLAIMED,
  writeRun,
} from "./output-ring.mjs";

/** Most bytes handed to one write. */
const STAGE_BYTES = MAX_RECORD_BYTES;

const views = ringViews(workerData.shared);
const { control } = views;
const stage = Buffer.allocUnsafe(STAGE_BYTES);

if (Atomics.compareExchange(control, OWNER, UNCLAIMED, OWNER_THREAD) === UNCLAIMED) {
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
      tail = writeRun(views, tail, head, stage);
      Atomics.store(control, TAIL, tail);
      Atomics.notify(control, TAIL);
    }
  } catch {
    // A pipe that cannot be written (the agent's end is gone): the ring stops; writes are dropped.
    Atomics.store(control, BROKEN, 1);
    Atomics.notify(control, TAIL);
  }
}
