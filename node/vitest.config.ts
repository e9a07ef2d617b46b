import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // Files share the two cores with the native pool; one at a time keeps
    // the timing-free tests from starving each other.
    fileParallelism: false,
  },
});
