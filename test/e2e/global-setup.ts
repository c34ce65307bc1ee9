import type { TestProject } from "vitest/node";
import { TEST_CREDENTIALS } from "../helpers/api-client";
import { type RunningPlatform, startPlatform } from "../helpers/platform";

declare module "vitest" {
  export interface ProvidedContext {
    baseUrl: string;
    platformLog: string;
    /** The platform's state folder ($AFP_STATE_DIR): local D1, R2 and Durable Objects live under it. */
    stateDir: string;
  }
}

let platform: RunningPlatform | undefined;

/** Period of the platform's cron driver in the end-to-end run (AFP_SCHEDULED_INTERVAL_MS). */
const E2E_SCHEDULED_INTERVAL_MS = 5_000;

/** Starts the platform once for the whole end-to-end suite. */
export async function setup(project: TestProject): Promise<void> {
  platform = await startPlatform({
    // A namespace cap of 2 containers: fair-share.e2e.test.ts fills it; no other test runs more
    // than 2 events of one namespace at once.
    // Result delivery (delivery.e2e.test.ts): webhooks to a local receiver on http://127.0.0.1, and
    // a retry base of 1 s (1 s, then 2 s: each retry's afp-timestamp is a later second).
    vars: {
      DIAGNOSTICS_ENABLED: "true",
      NAMESPACE_MAX_CONTAINERS: "2",
      ALLOW_HTTP_WEBHOOKS: "true",
      DELIVERY_RETRY_BASE_MS: "1000",
      // Every trigger queue message (ckafka and cos triggers) is delivered twice: its first delivery
      // is retried after it is handled (source-triggers.e2e.test.ts: still exactly one event).
      CHAOS_REDELIVER_TRIGGER_MESSAGES: "true",
      // The event index split by namespace: most tests' namespace (default), the shorter retention's
      // (retention.e2e.test.ts) and the bulk operations' keep their index in INDEX_DB_1, the others
      // in DB, so the suite reads and writes both.
      INDEX_DATABASES: "INDEX_DB_1=default|retention-short|bulk-e2e",
      // A function pinned to two dispatch queues (dispatch-queues.e2e.test.ts).
      DISPATCH_QUEUE_PINS: "default/dq-pinned=38|39",
    },
    env: {
      DEV_SECRET_ID: TEST_CREDENTIALS.secretId,
      DEV_SECRET_KEY: TEST_CREDENTIALS.secretKey,
      // The cron driver fires the scheduled handler every 5 s rather than every minute, so that
      // retention.e2e.test.ts sees the index purge run without waiting minutes.
      AFP_SCHEDULED_INTERVAL_MS: String(E2E_SCHEDULED_INTERVAL_MS),
    },
  });
  project.provide("baseUrl", platform.baseUrl);
  project.provide("platformLog", platform.logFile);
  project.provide("stateDir", platform.stateDir);
}

export async function teardown(): Promise<void> {
  await platform?.stop();
}
