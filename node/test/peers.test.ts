// The benchmark's peers (bench/better-sqlite3-driver.mjs and
// bench/lmdb-floor.mjs) run a handful of operations and return what the
// contract says, so CI builds and exercises them; their timings are the
// benchmark's business, not this file's.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";

import { ensureBetterSqlite3 } from "../bench/peers-build.mjs";
import { openLmdbFloor } from "../bench/lmdb-floor.mjs";
import { NODE24, ROOT } from "./reference.mjs";
import { run, tempDir } from "./helpers.js";

describe("the better-sqlite3 PatternStores driver", () => {
  // Built for the Node 24 binary when it is not yet (about a minute).
  beforeAll(() => ensureBetterSqlite3(), 600_000);

  for (const synchronous of ["FULL", "NORMAL"]) {
    it(`keeps the contract with synchronous=${synchronous}`, async () => {
      const dir = tempDir();
      const { stdout } = await run(NODE24, [join(ROOT, "test", "peers-child.mjs"), synchronous, dir]);
      const out = JSON.parse(stdout);
      expect(out.a1).toMatchObject({ id: "a", collection: "turns", version: 1, data: { conversation: "c1", n: 1 } });
      expect(out.a1.createdAt).toBe(out.a1.updatedAt);
      expect([out.a2, out.staleCas, out.cas]).toEqual([2, null, 3]);
      expect(out.patch).toMatchObject({ version: 2, data: { conversation: "c1", author: "u2", n: 2, role: "user" } });
      expect(out.stalePatch).toBeNull();
      expect(out.getA).toMatchObject({ version: 3, data: { author: "u3", n: 6 }, createdAt: out.a1.createdAt });
      expect(out.missing).toBeNull();
      expect(out.byConversation).toEqual(["a", "b"]);
      expect(out.limit1).toEqual(["a"]);
      expect(out.twoFilters).toEqual(["b"]);
      // a's index rows follow its upsert from author u1 to u3
      expect(out.movedOut).toEqual(["c"]);
      // and a field the new body lacks leaves no index row behind
      expect(out.fieldDropped).toEqual([]);
      expect(out.orderedAsc).toEqual(["b", "a"]);
      expect(out.orderedDesc).toEqual(["a", "b"]);
      expect(out.count).toBe(2);
      expect(out.unindexed).toMatch(/field "n" is not indexed/);
      expect([out.deleted, out.deletedAgain, out.countAll]).toEqual([true, false, 2]);
      expect(out.collections).toEqual([{ name: "turns", indexes: ["conversation", "author"], docCount: 2 }]);
      expect(out.acquire).toBe(true);
      expect(out.contended).toMatchObject({ ok: false, owner: "o1" });
      expect(out.stillHeld).toBe("o1");
      expect(out.afterRelease).toBe(true);
      expect(out.blobMeta).toEqual({ mime: "text/plain", size: 3, ownerId: "o1" });
      expect(out.blobBytes).toEqual([1, 2, 3]);
      expect(out.streamedSize).toBe(3);
      expect(out.tooBig).toMatch(/exceeds the 2-byte cap/);
      expect(out.tooBigStream).toMatch(/exceeds the 2-byte cap/);
      expect(out.smallList).toEqual([]);
      expect(out.blobList).toEqual([true]);
      expect(out.walBytes).toBeLessThan(8 << 20);
      expect([out.blobDeleted, out.blobGone]).toEqual([true, null]);
      expect(out.reopened).toEqual(out.patch);
      expect(out.reopenedQuery).toEqual(["a"]);
      expect(out.badSynchronous).toMatch(/synchronous must be "FULL" or "NORMAL"/);
    });
  }
});

describe("the lmdb-js key-value floor", () => {
  for (const noSync of [false, true]) {
    it(`stores, reads and keeps its conversation index (noSync ${noSync})`, async () => {
      const path = join(tempDir(), "lmdb");
      let store = openLmdbFloor(path, { noSync });
      const body = (conversation: string, seq: number) => ({ conversation, author: "u1", seq, text: "t" });
      await store.put("a", body("c1", 1));
      await store.put("b", body("c1", 2));
      await store.put("c", body("c2", 3));
      expect(store.get("b")).toEqual(body("c1", 2));
      expect(store.get("zz")).toBeUndefined();
      expect(store.query("c1", 20)).toEqual([body("c1", 1), body("c1", 2)]);
      expect(store.query("c1", 1)).toEqual([body("c1", 1)]);
      // moving a document to another conversation moves its index entry
      await store.put("a", body("c2", 4));
      expect(store.query("c1", 20)).toEqual([body("c1", 2)]);
      expect(store.query("c2", 20)).toEqual([body("c2", 4), body("c2", 3)]);
      await store.close();
      store = openLmdbFloor(path, { noSync });
      expect(store.get("a")).toEqual(body("c2", 4));
      expect(store.query("c2", 20).map((b: { seq: number }) => b.seq)).toEqual([4, 3]);
      await store.close();
    });
  }
});
