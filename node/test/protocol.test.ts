// The addon's typed write protocol: `writeBatch` takes a union tagged by
// `op`, and the `*Now` methods answer null (not a string) when a write
// would wait.
import { createRequire } from "node:module";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

import { logstorePatternStores } from "../dist/index.js";
import { tempDir } from "./helpers.js";

const require = createRequire(import.meta.url);
const native = require("../native/binding.cjs") as typeof import("../native/binding.js");
type NativeStore = import("../native/binding.js").NativeStore;
type Write = import("../native/binding.js").Write;

let n: NativeStore | undefined;
afterEach(async () => {
  await n?.close();
  n = undefined;
});

async function open(durability: "sync" | "flush"): Promise<NativeStore> {
  n = await native.NativeStore.open(join(tempDir(), "log"), { durability });
  return n;
}

describe("writeBatch", () => {
  it("runs every kind of write and answers each in order", async () => {
    const s = await open("sync");
    const writes: Write[] = [
      { op: "put", collection: "c", id: "1", body: '{"x":1}' },
      { op: "patch", collection: "c", id: "1", body: '{"y":2}', expectedVersion: 1 },
      { op: "put", collection: "c", id: "1", body: '{"z":3}', expectedVersion: 1 },
      { op: "delete", collection: "c", id: "1" },
      { op: "acquire", key: "k", owner: "o", ttlMs: 60_000 },
      { op: "renew", key: "k", owner: "o", ttlMs: 60_000 },
      { op: "release", key: "k", owner: "o" },
      { op: "acquire", key: "k2", owner: "o", ttlMs: 60_000 },
      { op: "releaseAll", owner: "o" },
    ];
    const out = await s.writeBatch(writes);
    expect(out.map((o) => o.error ?? null)).toEqual(writes.map(() => null));
    const texts = out.map((o) => JSON.parse(o.text!));
    expect(texts[0]).toMatchObject({ id: "1", data: { x: 1 }, version: 1 });
    expect(texts[1]).toMatchObject({ data: { x: 1, y: 2 }, version: 2 });
    expect(texts[2]).toBeNull(); // the CAS expected version 1, the row is at 2
    expect(texts[3]).toBe(true);
    expect(texts[4]).toMatchObject({ ok: true, lease: { key: "k", owner: "o", version: 1 } });
    expect(texts[5]).toMatchObject({ ok: true, lease: { version: 2 } });
    expect(texts[6]).toBeNull();
    expect(texts[8]).toBe(1);
    expect(s.getSync("c", "1", new Float64Array(3))).toBeNull();
  });

  it("rejects a write whose op it does not know, and writes nothing of the batch", async () => {
    const s = await open("sync");
    const bad = [
      { op: "put", collection: "c", id: "1", body: "{}" },
      { op: "truncate", collection: "c" },
    ] as unknown as Write[];
    expect(() => s.writeBatch(bad)).toThrow(/Unknown variant `truncate`/);
    expect(s.getSync("c", "1", new Float64Array(3))).toBeNull();
  });

  it("rejects a write missing a field its op needs", async () => {
    const s = await open("sync");
    const bad = [{ op: "put", collection: "c", id: "1" }] as unknown as Write[];
    expect(() => s.writeBatch(bad)).toThrow(/Missing field `body`/);
    expect(s.getSync("c", "1", new Float64Array(3))).toBeNull();
  });
});

describe("in-place writes", () => {
  it("answer null, having written nothing, when the write would wait", async () => {
    const s = await open("sync"); // every sync write waits for its sync
    expect(s.putNow("c", "1", '{"x":1}')).toBeNull();
    expect(s.acquireNow("k", "o", 1000)).toBeNull();
    expect(s.getSync("c", "1", new Float64Array(3))).toBeNull();
  });

  it("answer the write's JSON text when it needs no wait", async () => {
    const s = await open("flush");
    // The first write after open writes the zeros ahead of the tail: pooled.
    await s.writeBatch([{ op: "put", collection: "c", id: "0", body: "{}" }]);
    expect(JSON.parse(s.putNow("c", "1", '{"x":1}')!)).toMatchObject({ version: 1, data: { x: 1 } });
    expect(s.putNow("c", "1", '{"x":2}', 5)).toBe("null"); // a lost CAS is an answer, not a wait
    expect(JSON.parse(s.patchNow("c", "1", '{"y":1}', 1)!)).toMatchObject({ version: 2 });
    expect(s.deleteNow("c", "1")).toBe("true");
    expect(JSON.parse(s.acquireNow("k", "o", 1000)!)).toMatchObject({ ok: true });
    expect(JSON.parse(s.renewNow("k", "o", 1000)!)).toMatchObject({ ok: true });
    expect(s.releaseNow("k", "o")).toBe("null");
    expect(s.releaseAllNow("o")).toBe("0");
  });
});

describe("getSync", () => {
  it("answers the body and writes the row's numbers to the array", async () => {
    const s = await open("sync");
    const [w] = await s.writeBatch([{ op: "put", collection: "c", id: "1", body: '{"x":1}' }]);
    const row = JSON.parse(w.text!);
    const meta = new Float64Array(3);
    expect(s.getSync("c", "1", meta)).toBe('{"x":1}');
    expect([...meta]).toEqual([row.version, row.createdAt, row.updatedAt]);
    expect(s.getSync("c", "2", meta)).toBeNull();
    expect(() => s.getSync("c", "1", new Float64Array(2))).toThrow(/Float64Array of 3/);
  });

  it("leaves a record over 64 KiB unread, answering false", async () => {
    const s = await open("sync");
    const body = JSON.stringify({ text: "x".repeat(64 * 1024) });
    await s.writeBatch([{ op: "put", collection: "c", id: "big", body }]);
    const meta = new Float64Array([7, 7, 7]);
    const got = s.getSync("c", "big", meta);
    expect(got).toBe(false);
    expect([...meta]).toEqual([7, 7, 7]);
    expect(JSON.parse((await s.get("c", "big"))!).data).toEqual(JSON.parse(body));
  });
});

describe("docs.get", () => {
  it("reads a row in place and a large one on the pool", async () => {
    const stores = await logstorePatternStores({ dir: join(tempDir(), "log") });
    try {
      const small = await stores.docs.put("c", "1", { x: 1 });
      expect(await stores.docs.get("c", "1")).toEqual(small);
      const big = await stores.docs.put("c", "big", { text: "y".repeat(200 * 1024) });
      expect(await stores.docs.get("c", "big")).toEqual(big);
      expect(await stores.docs.get("c", "2")).toBeNull();
    } finally {
      await stores.close();
    }
  });
});
