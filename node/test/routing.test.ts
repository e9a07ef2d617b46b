// Which thread a read runs on is decided by the work its plan does (the
// index entries it walks or sorts, the bytes of its rows), not by the rows
// it asks for: the calls the driver makes to the addon are counted.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";

import { logstorePatternStores, type PatternStores } from "../dist/index.js";
import { bytesOf, tempDir } from "./helpers.js";

const require = createRequire(import.meta.url);
const { BlobBytes, NativeStore } = require("../native/binding.cjs") as typeof import("../native/binding.js");

/** Documents in "c": large enough that sorting all of them is over the budget. */
const N = 20_000;
const rank = (i: number) => String((i * 7919) % N).padStart(8, "0");

describe("reads run in place by their work", () => {
  let stores: PatternStores;
  const querySync = vi.spyOn(NativeStore.prototype, "querySync");
  const query = vi.spyOn(NativeStore.prototype, "query");
  const countSync = vi.spyOn(NativeStore.prototype, "countSync");
  const count = vi.spyOn(NativeStore.prototype, "count");

  beforeAll(async () => {
    stores = await logstorePatternStores({ dir: tempDir(), durability: "flush" });
    await stores.docs.ensureCollection({ name: "c", indexes: ["owner", "rank", "half"] });
    const puts = [];
    for (let i = 0; i < N; i++) {
      // Every 1000th document is owned by "rare", every other 10th by "b";
      // the ranks of those are the multiples of 10.
      const owner = i % 1000 === 0 ? "rare" : i % 10 === 0 ? "b" : "a";
      const data = { owner, rank: rank(i), half: i % 2 ? "x" : "y", text: "t".repeat(40) };
      puts.push(stores.docs.put("c", `d${String(i).padStart(6, "0")}`, data));
    }
    await Promise.all(puts);
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    await stores.close();
  });
  beforeEach(() => vi.clearAllMocks());

  /** How the last read went: in place (the sync call answered) or pooled. */
  const routed = (sync: typeof querySync | typeof countSync, pooled: typeof query | typeof count) => {
    expect(sync).toHaveBeenCalledTimes(1);
    return pooled.mock.calls.length === 0 ? "in place" : "pool";
  };

  it("sends a 10-row page that sorts the whole collection to the pool", async () => {
    const rows = await stores.docs.query({ collection: "c", where: { owner: "a" }, orderBy: "rank", limit: 10 });
    expect(routed(querySync, query)).toBe("pool");
    expect(querySync.mock.results[0].value).toBeNull();
    expect(rows.map((r) => r.data.rank)).toEqual(["00000001", "00000002", "00000003", "00000004", "00000005", "00000006", "00000007", "00000008", "00000009", "00000011"]);
    vi.clearAllMocks();
    const all = await stores.docs.query({ collection: "c", orderBy: "updatedAt", orderDir: "desc", limit: 1 });
    expect(routed(querySync, query)).toBe("pool");
    expect(all).toHaveLength(1);
  });

  it("runs a page walked from an index in place, at any offset", async () => {
    const page = await stores.docs.query({ collection: "c", where: { owner: "b" }, limit: 10 });
    expect(routed(querySync, query)).toBe("in place");
    expect(page.map((r) => r.id)).toEqual(
      [10, 20, 30, 40, 50, 60, 70, 80, 90, 100].map((i) => `d${String(i).padStart(6, "0")}`),
    );
    vi.clearAllMocks();
    const deep = await stores.docs.query({ collection: "c", limit: 5, offset: N - 3 });
    expect(routed(querySync, query)).toBe("in place");
    expect(deep.map((r) => r.id)).toEqual(["d019997", "d019998", "d019999"]);
  });

  it("runs a large-limit query in place when few rows match, and a large page in the pool", async () => {
    const rare = await stores.docs.query({ collection: "c", where: { owner: "rare" }, orderBy: "rank", limit: 100_000 });
    expect(routed(querySync, query)).toBe("in place");
    expect(rare).toHaveLength(N / 1000);
    vi.clearAllMocks();
    // 1,000 rows walked from an index, but their bytes are over the budget.
    const big = await stores.docs.query({ collection: "c", where: { owner: "a" }, limit: 1000 });
    expect(routed(querySync, query)).toBe("pool");
    expect(big).toHaveLength(1000);
  });

  it("counts in place unless two filters walk many documents", async () => {
    expect(await stores.docs.count("c", { owner: "a" })).toBe(N - N / 10);
    expect(routed(countSync, count)).toBe("in place");
    vi.clearAllMocks();
    expect(await stores.docs.count("c", { owner: "a", half: "x" })).toBe(N / 2);
    expect(routed(countSync, count)).toBe("pool");
    vi.clearAllMocks();
    expect(await stores.docs.count("c", { owner: "rare", half: "y" })).toBe(N / 1000);
    expect(routed(countSync, count)).toBe("in place");
  });

  it("rejects a query on a field that is not indexed from the thread, as before", async () => {
    await expect(stores.docs.query({ collection: "c", where: { nope: 1 } })).rejects.toThrow(
      'store: field "nope" is not indexed on collection "c" — declare it via ensureCollection',
    );
    expect(query).not.toHaveBeenCalled();
  });
});

describe("a flush write runs in place by its body's size", () => {
  it("parses a small body on the JavaScript thread and a large one on the pool", async () => {
    const putNow = vi.spyOn(NativeStore.prototype, "putNow");
    const writeBatch = vi.spyOn(NativeStore.prototype, "writeBatch");
    const stores = await logstorePatternStores({ dir: tempDir(), durability: "flush" });
    try {
      // The first write of a new store waits (for its first window of
      // zeros), so it goes to the pool; the next small one need not.
      await stores.docs.put("c", "first", { text: "f" });
      vi.clearAllMocks();
      await stores.docs.put("c", "small", { text: "s".repeat(1000) });
      expect(putNow).toHaveBeenCalledTimes(1);
      expect(writeBatch).not.toHaveBeenCalled();
      const big = await stores.docs.put("c", "big", { text: "b".repeat(70 * 1024) });
      expect(putNow).toHaveBeenCalledTimes(1);
      expect(writeBatch).toHaveBeenCalledTimes(1);
      expect(await stores.docs.get("c", "big")).toEqual(big);
      // The limit is in UTF-8 bytes, what the addon parses: 30,000 "✓" are
      // 90,000 of them.
      vi.clearAllMocks();
      const wide = await stores.docs.put("c", "wide", { text: "✓".repeat(30_000) });
      expect(putNow).not.toHaveBeenCalled();
      expect(writeBatch).toHaveBeenCalledTimes(1);
      expect(await stores.docs.get("c", "wide")).toEqual(wide);
    } finally {
      vi.restoreAllMocks();
      await stores.close();
    }
  });

  it("patches a small stored document in place and a large one on the pool, whatever the patch's size", async () => {
    const patchNow = vi.spyOn(NativeStore.prototype, "patchNow");
    const writeBatch = vi.spyOn(NativeStore.prototype, "writeBatch");
    const stores = await logstorePatternStores({ dir: tempDir(), durability: "flush" });
    try {
      await stores.docs.put("c", "first", { text: "f" });
      await stores.docs.put("c", "small", { items: [1, 2, 3] });
      // Over 64 KiB stored: a tiny patch still reads, merges and writes it all.
      const items = Array.from({ length: 8000 }, (_, i) => ({ i, s: "x" }));
      await stores.docs.put("c", "large", { items });
      vi.clearAllMocks();
      expect(await stores.docs.patch("c", "small", { seen: true }, 1)).toMatchObject({ version: 2 });
      expect(patchNow).toHaveBeenCalledTimes(1);
      expect(patchNow.mock.results[0].value).not.toBeNull();
      expect(writeBatch).not.toHaveBeenCalled();
      vi.clearAllMocks();
      const patched = await stores.docs.patch("c", "large", { seen: true }, 1);
      expect(patched).toMatchObject({ version: 2, data: { items, seen: true } });
      expect(writeBatch).toHaveBeenCalledTimes(1);
      expect(patchNow.mock.results.every((r) => r.value === null)).toBe(true);
      expect(await stores.docs.get("c", "large")).toEqual(patched);
      // A missing document or a stale version answers null in place.
      vi.clearAllMocks();
      expect(await stores.docs.patch("c", "missing", { a: 1 }, 1)).toBeNull();
      expect(await stores.docs.patch("c", "small", { a: 1 }, 1)).toBeNull();
      expect(writeBatch).not.toHaveBeenCalled();
    } finally {
      vi.restoreAllMocks();
      await stores.close();
    }
  });
});

describe("a blob get runs in place by the blob's size", () => {
  /** `size` bytes, different at every offset mod 251. */
  const pattern = (size: number, seed: number) => Uint8Array.from({ length: size }, (_, i) => (i * 31 + seed) % 251);

  it("reads a blob of at most 64 KiB whole on the JavaScript thread, and a larger one on the pool in 256 KiB chunks", async () => {
    const getSync = vi.spyOn(NativeStore.prototype, "blobGetSync");
    const get = vi.spyOn(NativeStore.prototype, "blobGet");
    const read = vi.spyOn(BlobBytes.prototype, "readInto");
    const stores = await logstorePatternStores({ dir: tempDir() });
    try {
      for (const size of [0, 1, 4096, 64 * 1024]) {
        const bytes = pattern(size, size);
        const meta = await stores.blobs.put(bytes, { mime: "image/png", ownerId: "u" });
        vi.clearAllMocks();
        const got = await stores.blobs.get(meta.id);
        expect(got!.meta).toEqual(meta);
        expect(await bytesOf(got!.stream)).toEqual(bytes);
        expect(getSync).toHaveBeenCalledTimes(1);
        expect(get, `${size} bytes`).not.toHaveBeenCalled();
      }
      // Over 64 KiB: the pool reads the first chunk with the lookup, and the
      // stream ends with the blob's last byte, with no read for the end.
      for (const [size, reads] of [[64 * 1024 + 1, 0], [256 * 1024, 0], [600 * 1024, 2]] as const) {
        const bytes = pattern(size, 7);
        const meta = await stores.blobs.put(bytes);
        vi.clearAllMocks();
        const got = await stores.blobs.get(meta.id);
        expect(got!.meta).toEqual(meta);
        const chunks: number[] = [];
        const reader = got!.stream.getReader();
        const back = new Uint8Array(size);
        for (let at = 0; ; ) {
          const { done, value } = await reader.read();
          if (done) break;
          back.set(value, at);
          at += value.byteLength;
          chunks.push(value.byteLength);
        }
        expect(Buffer.from(back).equals(Buffer.from(bytes))).toBe(true);
        expect(chunks.every((n) => n <= 256 * 1024)).toBe(true);
        expect(getSync.mock.results[0].value).toBe(false);
        expect(get).toHaveBeenCalledTimes(1);
        expect(read, `${size} bytes`).toHaveBeenCalledTimes(reads);
      }
      vi.clearAllMocks();
      expect(await stores.blobs.get("00000000-0000-0000-0000-000000000000")).toBeNull();
      expect(await stores.blobs.get("abc.png")).toBeNull();
      expect(get).not.toHaveBeenCalled();
    } finally {
      vi.restoreAllMocks();
      await stores.close();
    }
  });

  it("still checks a blob's bytes against its hash, in place and on the pool", async () => {
    const dir = tempDir();
    let stores = await logstorePatternStores({ dir });
    const small = await stores.blobs.put(pattern(4096, 1));
    const large = await stores.blobs.put(pattern(300 * 1024, 2));
    await stores.close();
    // Flip one byte of each content file (blobs/HH/<hash>).
    const blobs = join(dir, "blobs");
    for (const folder of readdirSync(blobs).filter((f) => /^[0-9a-f]{2}$/.test(f))) {
      for (const name of readdirSync(join(blobs, folder))) {
        const path = join(blobs, folder, name);
        const bytes = readFileSync(path);
        bytes[bytes.length - 1] ^= 0xff;
        writeFileSync(path, bytes);
      }
    }
    stores = await logstorePatternStores({ dir });
    try {
      await expect(stores.blobs.get(small.id)).rejects.toThrow(/no longer match their hash/);
      const got = await stores.blobs.get(large.id);
      await expect(bytesOf(got!.stream)).rejects.toThrow(/no longer match their hash/);
    } finally {
      await stores.close();
    }
  });
});
