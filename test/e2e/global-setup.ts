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
    vars: { DIAGNOSTICS_ENABLED: "true" },
    env: { DEV_SECRET_ID: TEST_CREDENTIALS.secretId, DEV_SECRET_KEY: TEST_CREDENTIALS.secretKey },
  });
  project.provide("baseUrl", platform.baseUrl);
  project.provide("platformLog", platform.logFile);
}

export async function teardown(): Promise<void> {
  await platform?.stop();
}
