import type { TestProject } from "vitest/node";
import { TEST_CREDENTIALS } from "../helpers/api-client";
import { type RunningPlatform, startPlatform } from "../helpers/platform";

declare module "vitest" {
  export interface ProvidedContext {
    baseUrl: string;
    platformLog: string;
  }
}

let platform: RunningPlatform | undefined;

/** Starts the platform once for the whole end-to-end suite. */
export async function setup(project: TestProject): Promise<void> {
  platform = await startPlatform({
    // A namespace cap of 2 containers: fair-share.e2e.test.ts fills it; no other test runs more
    // than 2 events of one namespace at once.
    vars: { DIAGNOSTICS_ENABLED: "true", NAMESPACE_MAX_CONTAINERS: "2" },
    env: { DEV_SECRET_ID: TEST_CREDENTIALS.secretId, DEV_SECRET_KEY: TEST_CREDENTIALS.secretKey },
  });
  project.provide("baseUrl", platform.baseUrl);
  project.provide("platformLog", platform.logFile);
}

export async function teardown(): Promise<void> {
  await platform?.stop();
}
