// The store contract, in this package's words, against logstorePatternStores:
// on the log engine, and again on PostgreSQL (test/backends.ts).
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { logstorePatternStores, type LogstorePatternStores, type PatternStores } from "../dist/index.js";
import { BACKEND, freshPlace, type Place } from "./backends.js";
import { bytesOf, tempDir } from "./helpers.js";

let s: PatternStores;
let place: Place;
/** The store's directory (log engine only). */
let dir: string;

beforeEach(async () => {
  place = freshPlace();
  dir = "dir" in place ? place.dir : "";
  s = await logstorePatternStores({ ...place, maxBlobBytes: 64 * 1024, durability: "flush" });
});
afterEach(async () => {
  await s.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("documents", () => {
  it("put creates at version 1 and upsert bumps the version, keeping createdAt", async () => {
    const a = await s.docs.put("m", "1", { x: 1 });
    expect(a).toMatchObject({ id: "1", collection: "m", data: { x: 1 }, version: 1 });
    expect(a!.createdAt).toBe(a!.updatedAt);
    await sleep(3);
    const b = await s.docs.put("m", "1", { y: 2 });
    expect(b).toMatchObject({ data: { y: 2 }, version: 2, createdAt: a!.createdAt });
    expect(b!.updatedAt).toBeGreaterThan(a!.updatedAt);
    expect(await s.docs.get("m", "1")).toEqual(b);
    expect(await s.docs.get("m", "2")).toBeNull();
  });

  it("a CAS put wins only at the current version; a CAS put on a missing row is null", async () => {
    await s.docs.put("m", "1", { v: 0 });
    expect(await s.docs.put("m", "1", { v: 1 }, 2)).toBeNull();
    expect(await s.docs.put("m", "1", { v: 1 }, 1)).toMatchObject({ version: 2, data: { v: 1 } });
    expect(await s.docs.put("m", "missing", { v: 1 }, 1)).toBeNull();
    expect(await s.docs.get("m", "missing")).toBeNull();
  });

  it("of 8 concurrent CAS puts on one version exactly one wins", async () => {
    await s.docs.put("m", "race", { n: -1 });
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, n) => s.docs.put("m", "race", { n }, 1)),
    );
    const winners = results.filter((r) => r !== null);
    expect(winners).toHaveLength(1);
    expect(await s.docs.get("m", "race")).toMatchObject({ version: 2, data: winners[0]!.data });
  });

  it("patch merges shallowly, stores null, is CAS only", async () => {
    await s.docs.put("m", "1", { a: 1, b: { c: 1 }, d: "keep" });
    expect(await s.docs.patch("m", "1", { a: 2 }, 5)).toBeNull();
    expect(await s.docs.patch("m", "nope", { a: 2 }, 1)).toBeNull();
    const p = await s.docs.patch("m", "1", { b: { z: 1 }, d: null, e: true }, 1);
    expect(p).toMatchObject({ version: 2, data: { a: 1, b: { z: 1 }, d: null, e: true } });
    expect(Object.keys(p!.data)).toEqual(["a", "b", "d", "e"]);
  });

  it("a patch value JSON.stringify drops removes the key, as in the SQLite driver", async () => {
    await s.docs.put("m", "1", { a: 1, b: 2 });
    const p = await s.docs.patch("m", "1", { a: undefined, c: 3 }, 1);
    expect(p!.data).toEqual({ b: 2, c: 3 });
  });

  it("values JSON.stringify rejects throw its TypeError and write nothing", async () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    await expect(s.docs.put("m", "1", cyclic)).rejects.toThrow(TypeError);
    await expect(s.docs.put("m", "1", { n: 10n })).rejects.toThrow(/BigInt/);
    expect(await s.docs.get("m", "1")).toBeNull();
    await s.docs.put("m", "1", { a: 1 });
    // A patch that cannot win returns null without encoding; one that can throws.
    expect(await s.docs.patch("m", "1", { n: 1n }, 9)).toBeNull();
    await expect(s.docs.patch("m", "1", { n: 1n }, 1)).rejects.toThrow(/BigInt/);
    // toJSON and dropped nested values come back as JSON.stringify made them.
    const row = await s.docs.put("m", "2", { when: new Date(0), f: () => 1, arr: [undefined] });
    expect(row!.data).toEqual({ when: "1970-01-01T00:00:00.000Z", arr: [null] });
  });

  it("values round-trip exactly, key order kept", async () => {
    const data = { z: 1, a: [1.5, -2, 1e21, 1e-7, "é✓", null, true], n: { deep: { x: "" } }, big: 2 ** 53 + 2 };
    const row = await s.docs.put("m", "1", data);
    expect(row!.data).toEqual(data);
    expect(JSON.stringify((await s.docs.get("m", "1"))!.data)).toBe(JSON.stringify(data));
  });

  it("every number round-trips exactly through put, patch, get and an index", async () => {
    // Doubles whose shortest spelling has many digits or lies past 2^64,
    // which a parser that is not correctly rounded reads one unit off.
    const nums = [123456789012345680000, 2 ** 70, 2 ** 64, 1e23, 8.98846567431158e307, 5e-324, 0.1 + 0.2];
    await s.docs.ensureCollection({ name: "nums", indexes: ["n"] });
    for (const [i, n] of nums.entries()) {
      const id = `n${i}`;
      expect((await s.docs.put("nums", id, { n }))!.data.n, String(n)).toBe(n);
      expect((await s.docs.patch("nums", id, { m: n }, 1))!.data, String(n)).toEqual({ n, m: n });
      expect((await s.docs.get("nums", id))!.data, String(n)).toEqual({ n, m: n });
      expect((await s.docs.query({ collection: "nums", where: { n } })).map((r) => r.id), String(n)).toEqual([id]);
    }
  });

  it("delete removes the row and its index entries", async () => {
    await s.docs.ensureCollection({ name: "m", indexes: ["o"] });
    await s.docs.put("m", "1", { o: "a" });
    expect(await s.docs.delete("m", "1")).toBe(true);
    expect(await s.docs.delete("m", "1")).toBe(false);
    expect(await s.docs.query({ collection: "m", where: { o: "a" } })).toEqual([]);
    expect(await s.docs.count("m", { o: "a" })).toBe(0);
  });

  it("ensureCollection is idempotent, appends new indexes and backfills", async () => {
    await s.docs.put("m", "1", { o: "a", k: "x" });
    await s.docs.ensureCollection({ name: "m", indexes: ["o"] });
    await s.docs.ensureCollection({ name: "m", indexes: ["k", "o"] });
    await s.docs.ensureCollection({ name: "m", indexes: ["o"] });
    await s.docs.ensureCollection({ name: "b", indexes: [] });
    await s.docs.put("loose", "1", { o: "a" });
    expect(await s.docs.listCollections()).toEqual([
      { name: "b", indexes: [], docCount: 0 },
      { name: "m", indexes: ["o", "k"], docCount: 1 },
    ]);
    expect(await s.docs.count("m", { k: "x" })).toBe(1);
  });

  it("where compares index strings; unindexable where values match only the empty string", async () => {
    await s.docs.ensureCollection({ name: "m", indexes: ["v", "p.q", "arr.1"] });
    await s.docs.put("m", "num", { v: 10, p: { q: true }, arr: ["a", "b"] });
    await s.docs.put("m", "str", { v: "10" });
    await s.docs.put("m", "empty", { v: "" });
    await s.docs.put("m", "obj", { v: { x: 1 } });
    const ids = async (where: Record<string, unknown>) =>
      (await s.docs.query({ collection: "m", where, orderBy: "id" })).map((d) => d.id);
    expect(await ids({ v: 10 })).toEqual(["num", "str"]);
    expect(await ids({ v: "10" })).toEqual(["num", "str"]);
    expect(await ids({ "p.q": "true" })).toEqual(["num"]);
    expect(await ids({ "arr.1": "b" })).toEqual(["num"]);
    expect(await ids({ v: null })).toEqual(["empty"]);
    expect(await ids({ v: { x: 1 } })).toEqual(["empty"]);
    expect(await ids({ v: 10, "p.q": true })).toEqual(["num"]);
    expect(await s.docs.count("m", { v: 10 })).toBe(2);
    expect(await s.docs.count("m")).toBe(4);
  });

  it("unindexed fields and orders fail with the package's messages", async () => {
    await s.docs.ensureCollection({ name: "m", indexes: ["o"] });
    await expect(s.docs.query({ collection: "m", where: { z: 1 } })).rejects.toThrow(
      'store: field "z" is not indexed on collection "m" — declare it via ensureCollection',
    );
    await expect(s.docs.count("m", { z: 1 })).rejects.toThrow(
      'store: field "z" is not indexed on collection "m" — declare it via ensureCollection',
    );
    await expect(s.docs.query({ collection: "m", orderBy: "z" })).rejects.toThrow(
      new Error('store: orderBy "z" is not indexed on collection "m"'),
    );
    await expect(s.docs.query({ collection: "never", where: { o: 1 } })).rejects.toThrow(
      'store: field "o" is not indexed on collection "never"',
    );
  });

  it("orders by createdAt (default), updatedAt, id or an index field, ties on id, with limit and offset", async () => {
    await s.docs.ensureCollection({ name: "m", indexes: ["r"] });
    for (const [id, r] of [["c", "2"], ["a", "1"], ["d", undefined], ["b", "2"]] as const) {
      await s.docs.put("m", id, r === undefined ? {} : { r });
      await sleep(2);
    }
    await s.docs.put("m", "c", { r: "2" }); // c is now the latest update
    const ids = async (q: Record<string, unknown>) =>
      (await s.docs.query({ collection: "m", ...q })).map((d) => d.id);
    expect(await ids({})).toEqual(["c", "a", "d", "b"]);
    expect(await ids({ orderDir: "desc" })).toEqual(["b", "d", "a", "c"]);
    expect(await ids({ orderBy: "updatedAt" })).toEqual(["a", "d", "b", "c"]);
    expect(await ids({ orderBy: "id", orderDir: "desc" })).toEqual(["d", "c", "b", "a"]);
    expect(await ids({ orderBy: "r" })).toEqual(["d", "a", "b", "c"]);
    expect(await ids({ orderBy: "r", orderDir: "desc" })).toEqual(["c", "b", "a", "d"]);
    expect(await ids({ orderBy: "id", limit: 2, offset: 1 })).toEqual(["b", "c"]);
    expect(await ids({ orderBy: "id", limit: 0 })).toEqual([]);
    expect(await ids({ orderBy: "id", offset: 10 })).toEqual([]);
  });

  it("an index path reads an array's length, as the reference drivers' valueAtPath does", async () => {
    await s.docs.put("m", "early", { tags: [1, 2] });
    await s.docs.ensureCollection({ name: "m", indexes: ["tags.length"] });
    await s.docs.put("m", "three", { tags: ["a", "b", "c"] });
    await s.docs.put("m", "own", { tags: { length: 2 } });
    await s.docs.put("m", "text", { tags: "ab" });
    const ids = async (where: Record<string, unknown>) =>
      (await s.docs.query({ collection: "m", where, orderBy: "id" })).map((d) => d.id);
    expect(await ids({ "tags.length": 2 })).toEqual(["early", "own"]);
    expect(await ids({ "tags.length": "3" })).toEqual(["three"]);
    expect(await s.docs.count("m", { "tags.length": 2 })).toBe(2);
    expect((await s.docs.query({ collection: "m", orderBy: "tags.length" })).map((d) => d.id)).toEqual([
      "text",
      "early",
      "own",
      "three",
    ]);
  });

  it("where values are the reference's index strings of the JavaScript value", async () => {
    await s.docs.ensureCollection({ name: "m", indexes: ["v"] });
    for (const v of ["NaN", "Infinity", "-Infinity", "", "x", "1970-01-01T00:00:00.000Z"]) {
      await s.docs.put("m", `s:${v}`, { v });
    }
    const ids = async (v: unknown) =>
      (await s.docs.query({ collection: "m", where: { v }, orderBy: "id" })).map((d) => d.id);
    expect(await ids(NaN)).toEqual(["s:NaN"]);
    expect(await ids(Infinity)).toEqual(["s:Infinity"]);
    expect(await ids(-Infinity)).toEqual(["s:-Infinity"]);
    // Objects (a Date, one with toJSON) are not indexable: the empty string.
    expect(await ids(new Date(0))).toEqual(["s:"]);
    expect(await ids({ toJSON: () => "x" })).toEqual(["s:"]);
  });

  it("a value JSON.stringify changes is indexed as stored (a documented difference)", async () => {
    await s.docs.ensureCollection({ name: "m", indexes: ["v"] });
    await s.docs.put("m", "nan", { v: NaN });
    await s.docs.put("m", "date", { v: new Date(0) });
    await s.docs.put("m", "tj", { v: { toJSON: () => "x" } });
    const ids = async (v: unknown) =>
      (await s.docs.query({ collection: "m", where: { v }, orderBy: "id" })).map((d) => d.id);
    // NaN is stored as null, which is not indexed.
    expect(await ids(NaN)).toEqual([]);
    expect(await ids("1970-01-01T00:00:00.000Z")).toEqual(["date"]);
    expect(await ids("x")).toEqual(["tj"]);
  });

  it("limit defaults to 100", async () => {
    await Promise.all(Array.from({ length: 120 }, (_, i) => s.docs.put("m", `d${i}`, { i })));
    expect(await s.docs.query({ collection: "m" })).toHaveLength(100);
    expect(await s.docs.count("m")).toBe(120);
  });
});

describe("blobs", () => {
  it("an id no blob can have (malformed, or with a lone surrogate) is null or false, as in the reference drivers", async () => {
    const meta = await s.blobs.put(new Uint8Array([1]));
    for (const id of ["", "abc.png", "not a uuid", "../x", ".", "a/b", "é", "\uD800", "a".repeat(129)]) {
      expect(await s.blobs.get(id), id).toBeNull();
      expect(await s.blobs.getMeta(id), id).toBeNull();
      expect(await s.blobs.delete(id), id).toBe(false);
    }
    expect(await s.blobs.getMeta(meta.id)).toEqual(meta);
  });

  it("put, get, getMeta, delete with defaults", async () => {
    const bytes = new Uint8Array([1, 2, 3, 250]);
    const meta = await s.blobs.put(bytes);
    expect(meta).toMatchObject({ mime: "application/octet-stream", size: 4, ownerId: null });
    expect(meta.id).toMatch(/^[0-9a-f-]{36}$/);
    const got = await s.blobs.get(meta.id);
    expect(got!.meta).toEqual(meta);
    expect(await bytesOf(got!.stream)).toEqual(bytes);
    expect(await s.blobs.getMeta(meta.id)).toEqual(meta);
    expect(await s.blobs.delete(meta.id)).toBe(true);
    expect(await s.blobs.delete(meta.id)).toBe(false);
    expect(await s.blobs.get(meta.id)).toBeNull();
    expect(await s.blobs.getMeta(meta.id)).toBeNull();
  });

  it("streams in and out in chunks, string chunks encoded as UTF-8", async () => {
    const total = 60_000;
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent >= total) return c.close();
        c.enqueue(new Uint8Array(1000).fill(sent / 1000));
        sent += 1000;
      },
    });
    const meta = await s.blobs.put(stream, { mime: "image/png", ownerId: "u1" });
    expect(meta).toMatchObject({ size: total, mime: "image/png", ownerId: "u1" });
    const back = await bytesOf((await s.blobs.get(meta.id))!.stream);
    expect(back.length).toBe(total);
    expect(back[59_999]).toBe(59);
    const text = new ReadableStream({ start(c) { c.enqueue("héllo"); c.close(); } });
    const m2 = await s.blobs.put(text as unknown as ReadableStream<Uint8Array>);
    expect(new TextDecoder().decode(await bytesOf((await s.blobs.get(m2.id))!.stream))).toBe("héllo");
  });

  it("the cap rejects with the package's message and leaves nothing behind", async () => {
    const cap = 64 * 1024;
    await expect(s.blobs.put(new Uint8Array(cap + 1))).rejects.toThrow(
      new Error(`store: blob exceeds the ${cap}-byte cap`),
    );
    const stream = new ReadableStream<Uint8Array>({
      pull(c) { c.enqueue(new Uint8Array(10_000)); },
    });
    await expect(s.blobs.put(stream)).rejects.toThrow(`store: blob exceeds the ${cap}-byte cap`);
    expect(await s.blobs.list()).toEqual([]);
    expect((await s.blobs.put(new Uint8Array(cap))).size).toBe(cap);
  });

  it("list is newest first, by owner, with limit and offset", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await s.blobs.put(new Uint8Array([i]), { ownerId: i % 2 ? "odd" : "even" })).id);
      await sleep(2);
    }
    expect((await s.blobs.list()).map((m) => m.id)).toEqual([...ids].reverse());
    expect((await s.blobs.list({ ownerId: "odd" })).map((m) => m.id)).toEqual([ids[3], ids[1]]);
    expect((await s.blobs.list({ limit: 2, offset: 1 })).map((m) => m.id)).toEqual([ids[3], ids[2]]);
  });
});

describe("leases", () => {
  it("acquire is exclusive, re-entrant, stealable once expired", async () => {
    const a = await s.leases.acquire("k", "A", 60_000);
    expect(a).toMatchObject({ ok: true, lease: { key: "k", owner: "A", version: 1 } });
    if (!a.ok) throw new Error("unreachable");
    expect(a.lease.expiresAt - a.lease.createdAt).toBe(60_000);
    expect(await s.leases.acquire("k", "B", 60_000)).toEqual({
      ok: false,
      owner: "A",
      expiresAt: a.lease.expiresAt,
    });
    expect(await s.leases.acquire("k", "A", 60_000)).toMatchObject({ ok: true, lease: { version: 2 } });
    const born = await s.leases.acquire("x", "A", -1);
    expect(born.ok).toBe(true);
    await sleep(2);
    const stolen = await s.leases.acquire("x", "B", 1000);
    expect(stolen).toMatchObject({ ok: true, lease: { owner: "B", version: 2 } });
  });

  it("renew extends only a live lease of its owner", async () => {
    expect(await s.leases.renew("k", "A", 1000)).toEqual({ ok: false, owner: "", expiresAt: 0 });
    const a = await s.leases.acquire("k", "A", 1000);
    expect(await s.leases.renew("k", "B", 1000)).toMatchObject({ ok: false, owner: "A" });
    expect(await s.leases.renew("k", "A", 5000)).toMatchObject({ ok: true, lease: { version: 2 } });
    await s.leases.acquire("e", "A", -1);
    await sleep(2);
    expect(await s.leases.renew("e", "A", 1000)).toMatchObject({ ok: false, owner: "A" });
    expect(a.ok).toBe(true);
  });

  it("release, releaseAll and get", async () => {
    await s.leases.acquire("k1", "A", 60_000);
    await s.leases.acquire("k2", "A", 60_000);
    await s.leases.acquire("k3", "B", 60_000);
    await s.leases.release("k3", "A");
    expect(await s.leases.get("k3")).toMatchObject({ owner: "B" });
    await s.leases.release("k3", "B");
    expect(await s.leases.get("k3")).toBeNull();
    expect(await s.leases.releaseAll("A")).toBe(2);
    expect(await s.leases.releaseAll("A")).toBe(0);
    expect(await s.leases.get("k1")).toBeNull();
    await s.leases.acquire("old", "C", -10);
    expect(await s.leases.get("old")).toMatchObject({ owner: "C" });
  });

  it("of 8 concurrent acquires of a free key exactly one wins", async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => s.leases.acquire("hot", `run-${i}`, 60_000)),
    );
    const winners = results.filter((r) => r.ok);
    expect(winners).toHaveLength(1);
    const owner = winners[0]!.ok ? winners[0]!.lease.owner : "";
    for (const r of results.filter((r) => !r.ok)) expect(r).toMatchObject({ ok: false, owner });
  });
});

describe("strings that are not well-formed UTF-16", () => {
  // napi-rs would turn each lone surrogate into U+FFFD, so "\uD800" and
  // "\uDC00" would name one row: every key argument is refused instead.
  const lone = "\uD800";
  const calls: Array<[string, RegExp, () => Promise<unknown>]> = [
    ["ensureCollection name", /collection name/, () => s.docs.ensureCollection({ name: lone, indexes: [] })],
    ["ensureCollection index", /index field/, () => s.docs.ensureCollection({ name: "m", indexes: ["ok", lone] })],
    ["get collection", /collection/, () => s.docs.get(lone, "1")],
    ["get id", /\bid\b/, () => s.docs.get("m", lone)],
    ["put collection", /collection/, () => s.docs.put(lone, "1", { a: 1 })],
    ["put id", /\bid\b/, () => s.docs.put("m", lone, { a: 1 })],
    ["patch id", /\bid\b/, () => s.docs.patch("m", lone, { a: 1 }, 1)],
    ["patch id, no version", /\bid\b/, () => s.docs.patch("m", lone, { a: 1 }, undefined as unknown as number)],
    ["delete id", /\bid\b/, () => s.docs.delete("m", lone)],
    ["query collection", /collection/, () => s.docs.query({ collection: lone })],
    ["query where field", /where field/, () => s.docs.query({ collection: "m", where: { [lone]: 1 } })],
    ["query where value", /where value of "o"/, () => s.docs.query({ collection: "m", where: { o: lone } })],
    ["query orderBy", /orderBy/, () => s.docs.query({ collection: "m", orderBy: lone })],
    ["count collection", /collection/, () => s.docs.count(lone)],
    ["count where field", /where field/, () => s.docs.count("m", { [`x${lone}`]: 1 })],
    ["count where value", /where value of "o"/, () => s.docs.count("m", { o: `a${lone}` })],
    ["blob put ownerId", /ownerId/, () => s.blobs.put(new Uint8Array([1]), { ownerId: lone })],
    ["blob put mime", /mime/, () => s.blobs.put(new Uint8Array([1]), { mime: lone })],
    ["blob stream put ownerId", /ownerId/, () => s.blobs.put(new Blob([new Uint8Array([1])]).stream(), { ownerId: lone })],
    ["blob list ownerId", /ownerId/, () => s.blobs.list({ ownerId: lone })],
    ["acquire key", /lease key/, () => s.leases.acquire(lone, "A", 1000)],
    ["acquire owner", /owner/, () => s.leases.acquire("k", lone, 1000)],
    ["renew key", /lease key/, () => s.leases.renew(lone, "A", 1000)],
    ["renew owner", /owner/, () => s.leases.renew("k", lone, 1000)],
    ["release key", /lease key/, () => s.leases.release(lone, "A")],
    ["release owner", /owner/, () => s.leases.release("k", lone)],
    ["releaseAll owner", /owner/, () => s.leases.releaseAll(lone)],
    ["lease get key", /lease key/, () => s.leases.get(lone)],
  ];
  for (const [what, name, f] of calls) {
    it(`${what}: a TypeError naming the argument`, async () => {
      const err = await f().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TypeError);
      expect((err as Error).message).toMatch(name);
      expect((err as Error).message).toMatch(/lone surrogate/);
    });
  }

  it("nothing is written, and distinct ids and owners never collide", async () => {
    await s.docs.ensureCollection({ name: "m", indexes: ["o"] });
    await s.docs.put("m", "\uFFFD", { o: "replacement" });
    await expect(s.docs.put("m", "\uDC00", { o: "lone" })).rejects.toThrow(TypeError);
    await expect(s.docs.put("\uD800x", "1", { o: "lone" })).rejects.toThrow(TypeError);
    expect((await s.docs.get("m", "\uFFFD"))!.data).toEqual({ o: "replacement" });
    expect(await s.docs.count("m")).toBe(1);
    expect(await s.docs.listCollections()).toEqual([{ name: "m", indexes: ["o"], docCount: 1 }]);
    await expect(s.docs.delete("m", "\uD800")).rejects.toThrow(TypeError);
    expect(await s.docs.get("m", "\uFFFD")).not.toBeNull();
    // One owner cannot release another's lease by a look-alike name.
    await s.leases.acquire("k", "\uFFFD", 60_000);
    await expect(s.leases.release("k", "\uDFFF")).rejects.toThrow(TypeError);
    await expect(s.leases.releaseAll("\uDFFF")).rejects.toThrow(TypeError);
    await expect(s.leases.acquire("k", "\uDFFF", 60_000)).rejects.toThrow(TypeError);
    expect(await s.leases.get("k")).toMatchObject({ owner: "\uFFFD", version: 1 });
    await expect(s.blobs.put(new Uint8Array([1]), { ownerId: "\uD800" })).rejects.toThrow(TypeError);
    expect(await s.blobs.list()).toEqual([]);
  });
});

describe("lifecycle", () => {
  it("calls after close reject; a reopen finds what was written", async () => {
    await s.docs.put("m", "1", { a: 1 });
    await s.close();
    await expect(s.docs.get("m", "1")).rejects.toThrow(/closed/);
    await expect(s.docs.query({ collection: "m" })).rejects.toThrow(/closed/);
    await expect(s.docs.count("m")).rejects.toThrow(/closed/);
    await expect(s.docs.put("m", "2", {})).rejects.toThrow(/closed/);
    await expect(s.blobs.list()).rejects.toThrow(/closed/);
    await expect(s.leases.get("k")).rejects.toThrow(/closed/);
    s = await logstorePatternStores({ ...place, durability: "flush" });
    expect(await s.docs.get("m", "1")).toMatchObject({ data: { a: 1 } });
    expect(await s.docs.get("m", "2")).toBeNull();
  });

  it.skipIf(BACKEND !== "log")("flush writes that would roll the log to a new segment go to the pool, and every write is kept", async () => {
    // 80 documents of 1 MiB pass the 64 MiB segment size: the in-place
    // write that would roll answers "would wait", and the pooled one rolls.
    const big = "x".repeat(1024 * 1024);
    // After this put, zeros are reserved ahead of the tail: small writes fit in place.
    await s.docs.put("warm", "w", {});
    const puts: Array<Promise<unknown>> = [];
    for (let i = 0; i < 80; i++) {
      puts.push(s.docs.put("big", `d${i}`, { i, big }));
      // Two writes to one id, called in order: a big one that may have to
      // go to the pool, then a small one that could run in place. The
      // small one must not overtake it.
      puts.push(s.docs.put("big", "x", { i, big }));
      puts.push(s.docs.put("big", "x", { i }));
    }
    const rows = (await Promise.all(puts)) as Array<{ id: string; version: number; data: { i: number } }>;
    const ds = rows.filter((r) => r.id !== "x");
    expect(ds.every((r, i) => r.version === 1 && r.data.i === i)).toBe(true);
    const xs = rows.filter((r) => r.id === "x");
    expect(xs.map((x) => x.version)).toEqual(xs.map((_, n) => n + 1));
    expect(await s.docs.get("big", "x")).toMatchObject({ version: 160, data: { i: 79 } });
    expect((await s.docs.get("big", "x"))?.data.big).toBeUndefined();
    const segments = readdirSync(dir).filter((f) => f.endsWith(".seg"));
    expect(segments.length).toBeGreaterThan(1);
    expect(await s.docs.patch("big", "d0", { i: -1 }, 1)).toMatchObject({ version: 2 });
    expect(await s.docs.delete("big", "d1")).toBe(true);
    expect(await s.leases.acquire("k", "me", 60_000)).toMatchObject({ ok: true });
    await s.close();
    s = await logstorePatternStores({ dir, durability: "flush" });
    expect(await s.docs.count("big")).toBe(80);
    expect(await s.docs.get("big", "d0")).toMatchObject({ version: 2, data: { i: -1 } });
    expect((await s.docs.get("big", "d79"))?.data.big).toBe(big);
    expect(await s.leases.get("k")).toMatchObject({ owner: "me" });
  });

  it("sync writes called together are applied in call order, each with its own answer or error", async () => {
    const sync = await logstorePatternStores({ ...freshPlace(), durability: "sync" });
    try {
      const results = await Promise.allSettled([
        sync.docs.put("m", "a", { n: 1 }),
        sync.docs.put("m", "a", { n: 2 }, 1), // CAS on the put just before it
        sync.docs.put("", "bad", { n: 0 }), // an invalid collection name
        sync.docs.patch("m", "a", { p: true }, 2),
        sync.leases.acquire("k", "me", 60_000),
        sync.docs.delete("m", "a"),
        sync.leases.releaseAll("me"),
      ]);
      const [put, cas, bad, patch, lease, del, released] = results;
      expect(put).toMatchObject({ status: "fulfilled", value: { version: 1, data: { n: 1 } } });
      expect(cas).toMatchObject({ status: "fulfilled", value: { version: 2, data: { n: 2 } } });
      expect(bad.status).toBe("rejected");
      expect((bad as PromiseRejectedResult).reason).toBeInstanceOf(Error);
      expect(patch).toMatchObject({ status: "fulfilled", value: { version: 3, data: { n: 2, p: true } } });
      expect(lease).toMatchObject({ status: "fulfilled", value: { ok: true } });
      expect(del).toEqual({ status: "fulfilled", value: true });
      expect(released).toEqual({ status: "fulfilled", value: 1 });
      expect(await sync.docs.get("m", "a")).toBeNull();
    } finally {
      await sync.close();
    }
  });

  it("close waits for the writes called before it", async () => {
    const syncPlace = freshPlace();
    const sync = await logstorePatternStores({ ...syncPlace, durability: "sync" });
    const put = sync.docs.put("m", "last", { n: 1 });
    await sync.close();
    expect(await put).toMatchObject({ version: 1 });
    const again = await logstorePatternStores({ ...syncPlace, durability: "sync" });
    try {
      expect(await again.docs.get("m", "last")).toMatchObject({ data: { n: 1 } });
    } finally {
      await again.close();
    }
  });

  it("close waits for the blob writes and ensureCollection called before it", async () => {
    const place = freshPlace();
    // Large enough that the blob writes are still running when close is.
    const first = await logstorePatternStores({ ...place, durability: "sync", maxBlobBytes: 32 << 20 });
    const old = await first.blobs.put(new Uint8Array([1]));
    const bytes = new Uint8Array(16 << 20).fill(7);
    const chunks = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 16; i++) c.enqueue(new Uint8Array(1 << 20).fill(i));
        c.close();
      },
    });
    const writes = [
      first.blobs.put(bytes),
      first.blobs.put(chunks),
      first.blobs.delete(old.id),
      first.docs.ensureCollection({ name: "late", indexes: ["a"] }),
    ];
    await first.close();
    const [put, streamed, deleted] = await Promise.all(writes);
    expect(put).toMatchObject({ size: 16 << 20 });
    expect(streamed).toMatchObject({ size: 16 << 20 });
    expect(deleted).toBe(true);
    const again = await logstorePatternStores({ ...place, maxBlobBytes: 32 << 20 });
    try {
      expect((await again.blobs.list()).map((b) => b.size)).toEqual([16 << 20, 16 << 20]);
      expect((await again.docs.listCollections()).map((c) => c.name)).toContain("late");
    } finally {
      await again.close();
    }
  });

  it("backup copies a log store; a PostgreSQL store rejects it", async () => {
    await s.docs.put("m", "1", { a: 1 });
    const dest = join(tempDir(), "copy");
    if (BACKEND === "postgres") {
      await expect((s as LogstorePatternStores).backup(dest)).rejects.toThrow(/pg_dump/);
      return;
    }
    expect(await (s as LogstorePatternStores).backup(dest)).toMatchObject({ documents: 1, blobs: 0, leases: 0 });
    const copy = await logstorePatternStores({ dir: dest });
    expect(await copy.docs.get("m", "1")).toEqual(await s.docs.get("m", "1"));
    await copy.close();
  });

  it("bad options are errors", async () => {
    await expect(logstorePatternStores({ dir: "" })).rejects.toThrow(/dir/);
    const both = { dir: join(tempDir(), "y"), url: "postgres://localhost/x" };
    await expect(logstorePatternStores(both)).rejects.toThrow(new TypeError(
      "logstorePatternStores: give exactly one of `dir` (the store directory) and `url` (a PostgreSQL URL)",
    ));
    await expect(logstorePatternStores({})).rejects.toThrow(/exactly one of `dir`/);
    await expect(logstorePatternStores({ url: "postgres://localhost/x", readOnly: true })).rejects.toThrow(
      TypeError,
    );
    await expect(logstorePatternStores({ dir: join(tempDir(), "z"), schema: "s" })).rejects.toThrow(
      /`schema`.*goes with `url`/,
    );
    await expect(logstorePatternStores({ url: "not a url at all" })).rejects.toThrow(/PostgreSQL/);
    await expect(
      logstorePatternStores({ dir: join(tempDir(), "x"), durability: "fast" as "sync" }),
    ).rejects.toThrow(/durability/);
    // A path with a lone surrogate would name another (U+FFFD) directory.
    const root = tempDir();
    await expect(logstorePatternStores({ dir: join(root, "a\uD800") })).rejects.toThrow(
      new TypeError("store: `dir` is not well-formed UTF-16 (it holds a lone surrogate)"),
    );
    await expect(logstorePatternStores({ url: "postgres://localhost/\uDC00" })).rejects.toThrow(TypeError);
    await expect(logstorePatternStores({ url: "postgres://localhost/x", schema: "s\uD800" })).rejects.toThrow(
      TypeError,
    );
    if ("dir" in place) {
      const open = s as LogstorePatternStores;
      await expect(open.backup(join(root, "b\uDBFF"))).rejects.toThrow(TypeError);
    }
    expect(readdirSync(root)).toEqual([]);
  });
});
