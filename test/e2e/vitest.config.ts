import { defineConfig } from "vitest/config";

// End-to-end suite: runs in Node against the whole platform started once by global-setup.ts
// (`wrangler dev` with real Docker containers), over HTTP.
export default defineConfig({
  test: {
    include: ["test/e2e/**/*.e2e.test.ts"],
    globalSetup: ["test/e2e/global-setup.ts"],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // One platform, shared: files run one after another so container counts stay meaningful.
    fileParallelism: false,
  },
});
