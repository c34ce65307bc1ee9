import { defineConfig } from "vitest/config";

// Runtime-agent suite: runs the container's agent (containers/runtime/agent) as a plain Node
// process on this machine and talks HTTP to it, without Docker or the platform.
export default defineConfig({
  test: {
    include: ["test/agent/**/*.test.ts"],
    testTimeout: 60_000,
  },
});
