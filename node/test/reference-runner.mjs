// Child process: plays an operation sequence against one of the published
// package's drivers and writes the trace.
//   node reference-runner.mjs <memory|sqlite> <ops.json> <trace.json> <dir>
// The reference drivers read the clock through Date.now, which is pinned
// to each operation's time.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { MAX_BLOB_BYTES, runOps } from "./ops.mjs";
import { referenceStore } from "./reference.mjs";

const [driver, opsFile, traceFile, dir] = process.argv.slice(2);
const ops = JSON.parse(readFileSync(opsFile, "utf8"));
let now = 0;
Date.now = () => now;
const { memoryPatternStores, sqlitePatternStores } = await referenceStore();
const stores =
  driver === "memory"
    ? memoryPatternStores({ maxBlobBytes: MAX_BLOB_BYTES })
    : await sqlitePatternStores(join(dir, "store.db"), join(dir, "blobs"), { maxBlobBytes: MAX_BLOB_BYTES });
const trace = await runOps(stores, ops, (ms) => {
  now = ms;
});
await stores.close();
writeFileSync(traceFile, JSON.stringify(trace));
