import { defineConfig } from "vitest/config";

// The contract and differential files run once against the log engine and
// once against PostgreSQL (test/backends.ts), on the server at
// LOGSTORE_PG_URL. Without one the PostgreSQL run is skipped, except under
// CI (CI set), where that is an error, as in the Rust PostgreSQL tests.
const pgUrl = process.env.LOGSTORE_PG_URL;
if (!pgUrl) {
  if (process.env.CI) {
    throw new Error("CI is set but LOGSTORE_PG_URL is not: run the tests under scripts/with-postgres.sh");
  }
  console.warn('skipped: the PostgreSQL run (LOGSTORE_PG_URL is not set; see README, "Tests")');
}

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // Files share the two cores with the native pool; one at a time keeps
    // the timing-free tests from starving each other.
    fileParallelism: false,
    projects: [
      { extends: true, test: { name: "log", include: ["test/**/*.test.ts"] } },
      ...(pgUrl
        ? [
            {
              extends: true,
              test: {
                name: "postgres",
                include: ["test/contract.test.ts", "test/differential.test.ts"],
                env: { LOGSTORE_NODE_BACKEND: "postgres" },
              },
            },
          ]
        : []),
    ],
  },
});
