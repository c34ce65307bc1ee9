// The dispatch queues (wrangler.toml afp-dispatch, afp-dispatch-1..3; DISPATCH_QUEUES): a function's
// events go to the queue its name hashes to, and each of the four is consumed: an event of a
// function on each queue runs to its end on the running platform.
import { describe, expect, inject, it } from "vitest";
import { stableShard } from "../../worker/shared/stable-shard";
import { ApiClient, uniqueName } from "../helpers/api-client";

const api = new ApiClient(inject("baseUrl"));
const NAMESPACE = "default";
const QUEUES = 4;
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
  it("runs an event of a function on each of the four dispatch queues to its end", async () => {
    const names = Array.from({ length: QUEUES }, (_, queue) => nameOnQueue(queue));
    for (const name of names) {
      const created = await api.createFunction(NAMESPACE, { name, runtime: "Nodejs22", files: HANDLER, timeout: 60 });
      expect(created.status, name).toBe(201);
    }
    const requestIds = await Promise.all(names.map((name, queue) => api.invoke(NAMESPACE, name, { queue })));
    const ended = await Promise.all(requestIds.map((requestId) => api.waitForEvent(requestId, undefined, 120_000)));
    expect(ended.map((event) => [event.status, event.result])).toEqual(
      names.map((_, queue) => ["FINISHED", { queue }]),
    );
  }, 180_000);
});
