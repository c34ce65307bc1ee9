// The per-caller read limit on the running platform: list calls past 20 a second by one SecretId
// are answered 429 with Retry-After, and another SecretId is not affected.
import { beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient } from "../helpers/api-client";
import { NODE_HANDLER } from "./fixtures";

const admin = new ApiClient(inject("baseUrl"));
const NAMESPACE = "default";

/** List reads per second per SecretId (README, "Events": READ_RATE_PER_SECOND). */
const READ_RATE_PER_SECOND = 20;
/**
 * List calls sent at once by one key: well past the limit. A fresh key's first 20 reads are always
 * admitted, and local requests sent together arrive well within a second, so some are refused.
 */
const BURST = 40;

/** A new SecretId of the namespace: its read window starts empty. */
async function newCaller(): Promise<ApiClient> {
  const { status, body } = await admin.json<{ secretId: string; secretKey: string }>("/v1/admin/credentials", {
    method: "POST",
    body: JSON.stringify({ namespaces: [NAMESPACE], description: "read limits e2e" }),
  });
  expect(status).toBe(201);
  return new ApiClient(inject("baseUrl"), body);
}

describe("the list rate limit on the running platform", () => {
  let functionName: string;
  beforeAll(async () => {
    functionName = await admin.createUniqueFunction(NAMESPACE, "reads", {
      runtime: "Nodejs22",
      files: { "index.js": NODE_HANDLER },
    });
  });

  /** One list call of the function's events, as status, Retry-After and body. */
  async function list(caller: ApiClient): Promise<{ status: number; retryAfter: string | null; body: string }> {
    const response = await caller.request(`/v1/namespaces/${NAMESPACE}/functions/${functionName}/events?limit=1`);
    return { status: response.status, retryAfter: response.headers.get("retry-after"), body: await response.text() };
  }

  it("answers 429 with Retry-After past 20 list calls in a second by one key, and another key lists at once", async () => {
    const caller = await newCaller();
    const other = await newCaller();

    const answers = await Promise.all(Array.from({ length: BURST }, () => list(caller)));
    const admitted = answers.filter((answer) => answer.status === 200);
    const refused = answers.filter((answer) => answer.status === 429);
    expect(admitted.length + refused.length).toBe(BURST);
    expect(admitted.length).toBeGreaterThanOrEqual(READ_RATE_PER_SECOND);
    expect(refused.length).toBeGreaterThan(0);
    for (const answer of refused) {
      expect(answer.retryAfter).toBe("1");
      expect(JSON.parse(answer.body)).toMatchObject({ error: { code: "RATE_LIMITED" } });
    }

    // The limit is per SecretId: another key of the same namespace is not refused.
    const others = await Promise.all(Array.from({ length: 5 }, () => list(other)));
    expect(others.map((answer) => answer.status)).toEqual(Array(5).fill(200));
  });
});
