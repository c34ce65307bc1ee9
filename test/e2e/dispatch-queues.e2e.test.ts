// The dispatch queues (wrangler.toml afp-dispatch, afp-dispatch-1..39; DISPATCH_QUEUES): a function's
// events go to the queue its name hashes to, and the queues are consumed: an event of a function on
// each of nine queues spread over the forty (the first, the last, every fifth) runs to its end on the
// running platform. Every queue's producer binding is checked in test/unit/dispatch-send.test.ts and
// its consumer by npm run queues:check (one script writes both).

import { readFileSync } from "node:fs";
import { describe, expect, inject, it } from "vitest";
import { stableShard } from "../../worker/shared/stable-shard";
import { ApiClient, uniqueName } from "../helpers/api-client";

const api = new ApiClient(inject("baseUrl"));
const NAMESPACE = "default";
/** The dispatch queues wrangler.toml's consumers name (40: DISPATCH_QUEUE_COUNT, all in use). */
const QUEUES = [
  ...readFileSync(new URL("../../wrangler.toml", import.meta.url), "utf8").matchAll(
    /^\[\[queues\.consumers\]\]\nqueue = "afp-dispatch(-[0-9]+)?"$/gm,
  ),
].length;
/** The queues whose consumers this test runs an event through. */
const SAMPLED = [0, 5, 10, 15, 20, 25, 30, 35, QUEUES - 1];
const HANDLER = { "index.js": "exports.main_handler = async (event) => ({ queue: event.queue });" };

/**
 * A fresh function name whose events go to dispatch queue `queue` (dispatchQueueIndex in
 * worker/events/dispatch-send.ts: the stable shard of `namespace/function`).
 */
function nameOnQueue(queue: number): string {
  for (;;) {
    const name = uniqueName(`dq${queue}`);
    if (stableShard(`${NAMESPACE}/${name}`, QUEUES) === queue) return name;
  }
}

describe("the dispatch queues", () => {
  it("are forty in wrangler.toml", () => {
    expect(QUEUES).toBe(40);
  });

  it("runs an event of a function on each sampled dispatch queue to its end", async () => {
    const names = SAMPLED.map((queue) => nameOnQueue(queue));
    for (const name of names) {
      const created = await api.createFunction(NAMESPACE, { name, runtime: "Nodejs22", files: HANDLER, timeout: 60 });
      expect(created.status, name).toBe(201);
    }
    const requestIds = await Promise.all(
      names.map((name, index) => api.invoke(NAMESPACE, name, { queue: SAMPLED[index] })),
    );
    const ended = await Promise.all(requestIds.map((requestId) => api.waitForEvent(requestId, undefined, 120_000)));
    expect(ended.map((event) => [event.status, event.result])).toEqual(SAMPLED.map((queue) => ["FINISHED", { queue }]));
  }, 180_000);

  it("runs the events of a function pinned to two queues (DISPATCH_QUEUE_PINS in global-setup.ts)", async () => {
    const name = "dq-pinned";
    const created = await api.createFunction(NAMESPACE, { name, runtime: "Nodejs22", files: HANDLER, timeout: 60 });
    // 409: created by an earlier run on the same state folder.
    expect([201, 409]).toContain(created.status);
    const requestIds = await Promise.all([1, 2, 3, 4].map((queue) => api.invoke(NAMESPACE, name, { queue })));
    const ended = await Promise.all(requestIds.map((requestId) => api.waitForEvent(requestId, undefined, 120_000)));
    expect(ended.map((event) => [event.status, event.result])).toEqual(
      [1, 2, 3, 4].map((queue) => ["FINISHED", { queue }]),
    );
  }, 180_000);
});
