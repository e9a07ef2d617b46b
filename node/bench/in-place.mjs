// What the reads the driver runs on the JavaScript thread cost at the edge
// of the addon's in-place budget (`IN_PLACE` in src/lib.rs): each shape of
// plan just under it, timed through PatternStores (the addon call and the
// JSON.parse of its rows), the fastest of many runs. A read over the budget
// goes to the pool; one under it must stay well under 1 ms.
//
//   npm run build && node bench/in-place.mjs
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { createRequire } from "node:module";
import { join } from "node:path";

import { logstorePatternStores } from "../dist/index.js";

// Counts the pooled reads, so a shape the budget sends to the pool says so.
const { NativeStore } = createRequire(import.meta.url)("../native/binding.cjs");
let pooled = 0;
for (const name of ["query", "count"]) {
  const pool = NativeStore.prototype[name];
  NativeStore.prototype[name] = function (...args) {
    pooled++;
    return pool.apply(this, args);
  };
}

/** The budget's entries (index entries walked, plus a sort's comparisons). */
const ENTRIES = 4_000;
const RUNS = 200;

const dir = mkdtempSync(join(tmpdir(), "logstore-in-place-"));
const stores = await logstorePatternStores({ dir, durability: "flush" });
const { docs } = stores;
try {
  await docs.ensureCollection({ name: "c", indexes: ["group", "half", "rank"] });
  // Group "g" is just under the budget when sorted (k log k for a 10-row
  // page is 40 more); no document is both "g" and "x", and "x" holds more
  // documents than "g", so that filter pair walks all of "g".
  const sortable = ENTRIES - 100;
  const n = 3 * sortable;
  const writes = [];
  for (let i = 0; i < n; i++) {
    const data = {
      group: i < sortable ? "g" : "other",
      half: i < sortable ? "y" : "x",
      rank: String((i * 7919) % n).padStart(8, "0"),
      text: "t".repeat(i % 2 ? 40 : 200),
    };
    writes.push(docs.put("c", `d${String(i).padStart(6, "0")}`, data));
  }
  await Promise.all(writes);
  await docs.ensureCollection({ name: "big", indexes: ["k"] });
  for (let i = 0; i < 100; i++) await docs.put("big", `b${i}`, { k: "v", text: "t".repeat(2_000) });

  const shapes = {
    [`sort ${sortable} by an indexed field, 10 rows`]: () =>
      docs.query({ collection: "c", where: { group: "g" }, orderBy: "rank", limit: 10 }),
    [`sort ${sortable} by updatedAt, 10 rows`]: () =>
      docs.query({ collection: "c", where: { group: "g" }, orderBy: "updatedAt", limit: 10 }),
    [`walk ${sortable} checking two filters, no row`]: () =>
      docs.query({ collection: "c", where: { group: "g", half: "x" }, limit: 10 }),
    [`count walking ${sortable}`]: () => docs.count("c", { group: "g", half: "x" }),
    "index page of 200 rows of ~150 and ~300 bytes": () =>
      docs.query({ collection: "c", where: { group: "g" }, limit: 200 }),
    "index page of 30 rows of ~2 KiB (~62 KiB)": () => docs.query({ collection: "big", limit: 30 }),
  };
  for (const [name, read] of Object.entries(shapes)) {
    pooled = 0;
    let best = Infinity;
    for (let i = 0; i < RUNS; i++) {
      const start = process.hrtime.bigint();
      await read();
      best = Math.min(best, Number(process.hrtime.bigint() - start) / 1_000);
    }
    console.log(`${name}: ${best.toFixed(0)} µs${pooled ? " (pooled: over the budget)" : ""}`);
  }
} finally {
  await stores.close();
  rmSync(dir, { recursive: true, force: true });
}
