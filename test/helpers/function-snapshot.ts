// The function snapshot an event carries, for tests that seed events without the registry.
import type { FunctionSnapshot } from "../../worker/functions/model";

/** A Node.js function's snapshot with ordinary settings; `overrides` replaces any of them. */
export function functionSnapshot(
  namespace: string,
  name: string,
  overrides: Partial<FunctionSnapshot> = {},
): FunctionSnapshot {
  const codeSha256 = overrides.codeSha256 ?? "a".repeat(64);
  return {
    namespace,
    name,
    runtime: "Nodejs22",
    handler: "index.main_handler",
    codeSha256,
    codeKey: `code/${namespace}/${name}/${codeSha256}.zip`,
    timeoutSeconds: 60,
    memoryMb: 128,
    environment: {},
    maxConcurrency: 1,
    qpsLimit: 1000,
    asyncRunEnable: true,
    ...overrides,
  };
}
