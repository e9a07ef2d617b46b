// One driver's run of the benchmark workload; prints { operation: ops/s }.
//   node driver.mjs <logstore-sync|logstore-flush|sqlite|memory|better-sqlite3-full|better-sqlite3-normal> <dir> <docs> <seconds>
// The workload is `logstore bench`'s (workload/src/lib.rs): chat turns of
// about 400 bytes of JSON in one collection indexed on conversation and
// author; writes run a fixed count (docs / 4) so every driver ends with a
// store of the same size, reads run for the time budget.
import { join } from "node:path";

import { logstorePatternStores } from "../dist/index.js";
import { referenceStore } from "../test/reference.mjs";
import { betterSqlitePatternStores } from "./better-sqlite3-driver.mjs";
import { AUTHORS, bodies, COLLECTION, CONVERSATIONS, author, conversation, id, rate, rng } from "./workload.mjs";

const [driver, dir, docsArg, secondsArg, onlyArg] = process.argv.slice(2);
const DOCS = Number(docsArg);
// The groups of rows to run (bench.mjs --only); the load always runs.
const ONLY = onlyArg ? new Set(onlyArg.split(",")) : null;
const runs = (group) => ONLY === null || ONLY.has(group);
const BUDGET_MS = Number(secondsArg) * 1000;
const WRITES = Math.max(10, Math.floor(DOCS / 4));

async function open() {
  if (driver === "logstore-sync") return logstorePatternStores({ dir: join(dir, "log"), durability: "sync" });
  if (driver === "logstore-flush") return logstorePatternStores({ dir: join(dir, "log"), durability: "flush" });
  if (driver === "better-sqlite3-full") return betterSqlitePatternStores(join(dir, "store.db"), { synchronous: "FULL" });
  if (driver === "better-sqlite3-normal") return betterSqlitePatternStores(join(dir, "store.db"), { synchronous: "NORMAL" });
  const { memoryPatternStores, sqlitePatternStores } = await referenceStore();
  if (driver === "sqlite") return sqlitePatternStores(join(dir, "store.db"), join(dir, "blobs"));
  return memoryPatternStores();
}

const out = {};
let s = await open();
const d = () => s.docs;
await d().ensureCollection({ name: COLLECTION, indexes: ["conversation", "author"] });
// Bodies are made before the clock starts: the loops time the driver.
{
  const load = bodies(rng(42), 0, DOCS);
  const start = performance.now();
  for (let i = 0; i < DOCS; i++) await d().put(COLLECTION, id(i), load[i]);
  out[`load ${DOCS} documents (puts)`] = (DOCS * 1000) / (performance.now() - start);
}
const below = rng(9);
const fresh = bodies(below, DOCS + 1e9, WRITES);
const again = bodies(below, 0, WRITES);
const writes = { count: WRITES };
const reads = { budget: BUDGET_MS };
if (runs("docs")) {
  out["put (new)"] = await rate((i) => d().put(COLLECTION, id(DOCS + 1e9 + i), fresh[i]), writes);
  out["upsert"] = await rate((i) => d().put(COLLECTION, id(below(DOCS)), again[i]), writes);
  out["CAS put (get + put)"] = await rate(async () => {
    const target = id(below(DOCS));
    const row = await d().get(COLLECTION, target);
    if (!(await d().put(COLLECTION, target, row.data, row.version))) throw new Error("lost a CAS race with itself");
  }, writes);
  out["patch"] = await rate(async (i) => {
    const target = id(below(DOCS));
    const row = await d().get(COLLECTION, target);
    if (!(await d().patch(COLLECTION, target, { role: i % 2 ? "assistant" : "user" }, row.version))) {
      throw new Error("lost a patch race with itself");
    }
  }, writes);
  out["delete"] = await rate((i) => d().delete(COLLECTION, id(DOCS + 1e9 + i)), writes);
  out["get by id"] = await rate(() => d().get(COLLECTION, id(below(DOCS))), reads);
  out["query, 1 filter, limit 20"] = await rate(
    () => d().query({ collection: COLLECTION, where: { conversation: conversation(below(CONVERSATIONS)) }, limit: 20 }),
    reads,
  );
  out["query, 2 filters, limit 20"] = await rate(
    () =>
      d().query({
        collection: COLLECTION,
        where: { conversation: conversation(below(CONVERSATIONS)), author: author(below(AUTHORS)) },
        limit: 20,
      }),
    reads,
  );
  out["query ordered by index field"] = await rate(
    () =>
      d().query({ collection: COLLECTION, where: { author: author(below(AUTHORS)) }, orderBy: "conversation", limit: 20 }),
    reads,
  );
  out["count, 1 filter"] = await rate(() => d().count(COLLECTION, { conversation: conversation(below(CONVERSATIONS)) }), reads);
}
if (runs("leases")) {
  out["lease acquire + release"] = await rate(async (i) => {
    const key = `lease-${i % 100}`;
    const r = await s.leases.acquire(key, "bench", 60_000);
    if (!r.ok) throw new Error("lease held");
    await s.leases.release(key, "bench");
  }, writes);
}

for (const [size, label] of runs("blobs") ? [[4096, "4 KiB"], [1024 * 1024, "1 MiB"]] : []) {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31) % 251;
  const ids = [];
  out[`blob put, ${label}`] = await rate(async (i) => {
    bytes[0] = i & 255; // distinct content, so each put stores its bytes
    bytes[1] = (i >> 8) & 255;
    ids.push((await s.blobs.put(bytes)).id);
  }, { budget: BUDGET_MS, count: 100_000 });
  out[`blob get, ${label}`] = await rate(async (i) => {
    const got = await s.blobs.get(ids[i % ids.length]);
    const reader = got.stream.getReader();
    for (;;) if ((await reader.read()).done) break;
  }, reads);
}

// Opens are timed before the concurrent writers: those rows run for a time
// budget, so each leaves a store as much larger as its driver is faster
// (logstore `flush` about twice as many documents as `sync`). Here every
// store holds the loaded documents and the blob rows' blobs.
let opens = NaN;
if (runs("open") && driver !== "memory") {
  await s.close();
  opens = await rate(async () => {
    s = await open();
    await s.docs.get(COLLECTION, id(0)); // SQLite opens lazily: make it read
    await s.close();
  }, { budget: BUDGET_MS, count: 1000 });
  s = await open();
}

const pool = bodies(below, 2e9, 4096);
for (const writers of runs("writers") ? [1, 4, 8] : []) {
  const start = performance.now();
  let n = 0;
  let base = 2e9 + writers * 1e7;
  await Promise.all(
    Array.from({ length: writers }, async () => {
      while (performance.now() - start < BUDGET_MS) {
        const k = base++;
        await d().put(COLLECTION, id(k), pool[k % pool.length]);
        n++;
      }
    }),
  );
  out[`put (new), ${writers} concurrent writer${writers === 1 ? "" : "s"}`] = (n * 1000) / (performance.now() - start);
}

await s.close();
if (runs("open")) out["open (opens per second)"] = opens;
process.stdout.write(JSON.stringify(out));
