import type { TestProject } from "vitest/node";
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
  platform = await startPlatform({ vars: { DIAGNOSTICS_ENABLED: "true" } });
  project.provide("baseUrl", platform.baseUrl);
  project.provide("platformLog", platform.logFile);
}

export async function teardown(): Promise<void> {
  await platform?.stop();
}
