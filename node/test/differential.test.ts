// Seeded operation sequences against logstore and the published package's
// memory driver (Node 20) and SQLite driver (Node 24): every result must be
// the same (test/ops.mjs says what is compared). Run on the log engine, and
// again on PostgreSQL (test/backends.ts).
import { writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

import { logstorePatternStoresWithClock } from "../dist/index.js";
import { generateOps, MAX_BLOB_BYTES, runOps, START_MS } from "./ops.mjs";
import { NODE24, ROOT } from "./reference.mjs";
import { BACKEND, freshPlace } from "./backends.js";
import { run, tempDir } from "./helpers.js";

const SEEDS = [1, 2, 3, 4, 5, 6];
const OPS_PER_SEED = 400;

async function referenceTrace(node: string, driver: string, opsFile: string, dir: string) {
  const traceFile = join(dir, `${driver}-trace.json`);
  await run(node, [join(ROOT, "test", "reference-runner.mjs"), driver, opsFile, traceFile, dir], {
    maxBuffer: 1 << 24,
  });
  return JSON.parse(readFileSync(traceFile, "utf8"));
}

describe("differential: logstore against the published drivers", () => {
  for (const seed of SEEDS) {
    // Odd seeds run logstore with `flush`, whose writes run in place on the
    // JavaScript thread; even ones with `sync`, whose writes go to the pool.
    const durability = seed % 2 === 1 ? "flush" : "sync";
    it(`seed ${seed} (${BACKEND}, ${durability}): same results as memoryPatternStores and sqlitePatternStores`, async () => {
      const dir = tempDir();
      const ops = generateOps(seed, OPS_PER_SEED);
      const opsFile = join(dir, "ops.json");
      writeFileSync(opsFile, JSON.stringify(ops));
      const [memory, sqlite] = await Promise.all([
        referenceTrace(process.execPath, "memory", opsFile, dir),
        referenceTrace(NODE24, "sqlite", opsFile, dir),
      ]);
      const stores = await logstorePatternStoresWithClock({
        ...freshPlace(),
        maxBlobBytes: MAX_BLOB_BYTES,
        clockMs: START_MS,
        durability,
      });
      const log = await runOps(stores, ops, stores.setClock);
      await stores.close();
      // The generator stays inside what the two reference drivers agree on.
      expect(sqlite).toEqual(memory);
      for (let i = 0; i < ops.length; i++) {
        expect({ i, op: ops[i], result: log[i] }).toEqual({ i, op: ops[i], result: sqlite[i] });
      }
      // The sequences exercise every kind of outcome.
      const kinds = new Set(log.map((t: { op: string; error?: string }) => t.op + (t.error ? ":error" : "")));
      for (const k of [
        "put", "casPut", "patch", "query", "query:error", "count", "blobPut", "blobPut:error", "blobById", "acquire", "renew",
      ]) {
        expect(kinds).toContain(k);
      }
      // Length paths match rows.
      const lengthHits = ops.filter(
        (o: { op: string; where?: object }, i: number) =>
          o.op === "count" && o.where && "list.length" in o.where && (log[i] as { ok: unknown }).ok !== 0,
      );
      expect(lengthHits.length).toBeGreaterThan(0);
    });
  }
});
