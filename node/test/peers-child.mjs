// Child process under Node 24 (better-sqlite3 is built for its ABI): a few
// operations of every kind through the benchmark's better-sqlite3 driver,
// printed as JSON for test/peers.test.ts to check.
//   node peers-child.mjs <FULL|NORMAL> <dir>
import { statSync } from "node:fs";
import { join } from "node:path";

import { betterSqlitePatternStores } from "../bench/better-sqlite3-driver.mjs";

const [synchronous, dir] = process.argv.slice(2);
const file = join(dir, "store.db");
const out = {};
const ids = (rows) => rows.map((r) => r.id);
const attempt = async (fn) => {
  try {
    await fn();
    return "no error";
  } catch (err) {
    return String(err.message);
  }
};

let s = betterSqlitePatternStores(file, { synchronous });
const d = s.docs;
await d.ensureCollection({ name: "turns", indexes: ["conversation", "author"] });
out.a1 = await d.put("turns", "a", { conversation: "c1", author: "u1", n: 1 });
await d.put("turns", "b", { conversation: "c1", author: "u2", n: 2 });
await d.put("turns", "c", { conversation: "c2", author: "u1", n: 3 });
out.a2 = (await d.put("turns", "a", { conversation: "c1", author: "u3", n: 4 })).version;
out.staleCas = await d.put("turns", "a", { conversation: "c1", author: "u3", n: 5 }, 1);
out.cas = (await d.put("turns", "a", { conversation: "c1", author: "u3", n: 6 }, 2))?.version ?? null;
out.patch = await d.patch("turns", "b", { role: "user" }, 1);
out.stalePatch = await d.patch("turns", "b", { role: "assistant" }, 1);
out.getA = await d.get("turns", "a");
out.missing = await d.get("turns", "zz");
out.byConversation = ids(await d.query({ collection: "turns", where: { conversation: "c1" } }));
out.limit1 = ids(await d.query({ collection: "turns", where: { conversation: "c1" }, limit: 1 }));
out.twoFilters = ids(await d.query({ collection: "turns", where: { conversation: "c1", author: "u2" } }));
out.movedOut = ids(await d.query({ collection: "turns", where: { author: "u1" } }));
await d.put("turns", "c", { conversation: "c2", n: 3 });
out.fieldDropped = ids(await d.query({ collection: "turns", where: { author: "u1" } }));
out.orderedAsc = ids(await d.query({ collection: "turns", where: { conversation: "c1" }, orderBy: "author" }));
out.orderedDesc = ids(
  await d.query({ collection: "turns", where: { conversation: "c1" }, orderBy: "author", orderDir: "desc" }),
);
out.count = await d.count("turns", { conversation: "c1" });
out.unindexed = await attempt(() => d.query({ collection: "turns", where: { n: 1 } }));
out.deleted = await d.delete("turns", "c");
out.deletedAgain = await d.delete("turns", "c");
out.countAll = await d.count("turns");
out.collections = await d.listCollections();

out.acquire = (await s.leases.acquire("k", "o1", 60_000)).ok;
out.contended = await s.leases.acquire("k", "o2", 60_000);
await s.leases.release("k", "o2");
out.stillHeld = (await s.leases.get("k"))?.owner ?? null;
await s.leases.release("k", "o1");
out.afterRelease = (await s.leases.acquire("k", "o2", 60_000)).ok;

const meta = await s.blobs.put(new Uint8Array([1, 2, 3]), { mime: "text/plain", ownerId: "o1" });
out.blobMeta = { mime: meta.mime, size: meta.size, ownerId: meta.ownerId };
const got = await s.blobs.get(meta.id);
out.blobBytes = [...new Uint8Array(await new Response(got.stream).arrayBuffer())];
const streamed = await s.blobs.put(new Blob([new Uint8Array([9, 8]), new Uint8Array([7])]).stream());
out.streamedSize = streamed.size;
const small = betterSqlitePatternStores(join(dir, "small.db"), { synchronous, maxBlobBytes: 2 });
out.tooBig = await attempt(() => small.blobs.put(new Uint8Array(3)));
out.tooBigStream = await attempt(() => small.blobs.put(new Blob([new Uint8Array(3)]).stream()));
out.smallList = await small.blobs.list();
await small.close();
out.blobList = (await s.blobs.list({ ownerId: "o1" })).map((m) => m.id === meta.id);
// SQLite's automatic checkpoint keeps the WAL near its 1,000 pages (4 MiB)
// across writes that are not in a transaction of their own: blob puts and
// lease acquires and renewals.
const mib = new Uint8Array(1 << 20);
for (let i = 0; i < 12; i++) {
  mib[0] = i;
  await s.blobs.put(mib);
}
for (let i = 0; i < 1200; i++) await s.leases.acquire("k", "o2", 60_000);
out.walBytes = statSync(`${file}-wal`).size;
out.blobDeleted = await s.blobs.delete(meta.id);
out.blobGone = await s.blobs.get(meta.id);
await s.close();

s = betterSqlitePatternStores(file, { synchronous });
out.reopened = await s.docs.get("turns", "b");
out.reopenedQuery = ids(await s.docs.query({ collection: "turns", where: { author: "u3" } }));
await s.close();
out.badSynchronous = await attempt(() => betterSqlitePatternStores(join(dir, "other.db"), { synchronous: "OFF" }));
process.stdout.write(JSON.stringify(out));
