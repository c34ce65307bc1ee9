import { describe, expect, inject, it } from "vitest";
import { ApiClient } from "../helpers/api-client";
import { NODE_HANDLER } from "./fixtures";

const api = new ApiClient(inject("baseUrl"));

/** The function's qpsLimit: small, so that a burst is well over it. */
const QPS_LIMIT = 5;
/** Invocations sent at once. */
const BURST = 20;

describe("a function's qpsLimit through the platform", () => {
  it("admits at most the limit per second of a burst (one isolate locally: exact) and answers the rest 429 with Retry-After", async () => {
    const name = await api.createUniqueFunction("default", "qps", {
      runtime: "Nodejs22",
      files: { "index.js": NODE_HANDLER },
      qpsLimit: QPS_LIMIT,
      maxConcurrency: 1,
    });
    const startedAt = Date.now();
    const answers = await Promise.all(
      Array.from({ length: BURST }, async () => {
        const response = await api.request(`/v1/namespaces/default/functions/${name}/invocations`, {
          method: "POST",
          body: "{}",
        });
        return {
          status: response.status,
          retryAfter: response.headers.get("retry-after"),
          body: await response.text(),
        };
      }),
    );
    const elapsedMs = Date.now() - startedAt;
    const admitted = answers.filter((answer) => answer.status === 202);
    const refused = answers.filter((answer) => answer.status === 429);
    console.log(`burst of ${BURST} over ${elapsedMs} ms: ${admitted.length} admitted, ${refused.length} refused`);
    expect(admitted.length + refused.length).toBe(BURST);
    // Documented accuracy: at most the limit in any 1-second window, plus one batch per isolate
    // (a batch is 1 token at this limit). The burst may spread over more than one window.
    const windows = Math.ceil(elapsedMs / 1000) + 1;
    expect(admitted.length).toBeGreaterThanOrEqual(QPS_LIMIT);
    expect(admitted.length).toBeLessThanOrEqual(QPS_LIMIT * windows + 1);
    for (const answer of refused) {
      expect(Number(answer.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(JSON.parse(answer.body)).toMatchObject({ error: { code: "RATE_LIMITED" } });
    }

    // After waiting as told, the function is admitted again.
    await new Promise((resolve) => setTimeout(resolve, 1000 * Number(refused[0]?.retryAfter ?? 1)));
    const again = await api.request(`/v1/namespaces/default/functions/${name}/invocations`, {
      method: "POST",
      body: "{}",
    });
    expect(again.status).toBe(202);
  });
});
