// Several handles on one store: read-only handles following a writer (in
// another process, and in this one), and a second open of a directory in
// this process sharing the first one's engine.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";

import { logstorePatternStores, type PatternStores } from "../dist/index.js";
import { bytesOf, run, tempDir } from "./helpers.js";

const READ_ONLY =
  "store: the store is open read-only (readOnly: true); write through a handle opened without readOnly";

/** Opens `dir` in a child process, reads doc m/<id>, bumps it and closes. */
async function childOpen(dir: string, id: string): Promise<{ error?: string; row?: { version: number } | null }> {
  const { stdout } = await run(process.execPath, [join(__dirname, "open-child.mjs"), dir, id]);
  return JSON.parse(stdout);
}

describe("read-only handles", () => {
  it("follow a writer in another process: every acknowledged write is visible to a read called after it", async () => {
    const dir = join(tempDir(), "log");
    const child = spawn(process.execPath, [join(__dirname, "kill-writer.mjs"), dir], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      let buffered = "";
      const lines: string[] = [];
      let wake: (() => void) | null = null;
      let exited = false;
      child.stdout.on("data", (chunk: Buffer) => {
        buffered += chunk.toString();
        const parts = buffered.split("\n");
        buffered = parts.pop()!;
        lines.push(...parts);
        wake?.();
      });
      child.on("exit", () => {
        exited = true;
        wake?.();
      });
      const next = async (): Promise<string> => {
        while (lines.length === 0) {
          if (exited) throw new Error("the writer exited early");
          await new Promise<void>((r) => (wake = r));
        }
        return lines.shift()!;
      };
      expect(await next()).toBe("ready");

      const r = await logstorePatternStores({ dir, readOnly: true });
      // The writer holds the directory: a writable open is refused, naming it.
      await expect(logstorePatternStores({ dir })).rejects.toThrow(dir);
      let docs = 0;
      let blobs = 0;
      let leases = 0;
      while (docs < 300 || blobs < 3 || leases < 3) {
        const [kind, a, b, c] = (await next()).split(" ");
        if (kind === "doc") {
          docs++;
          const row = await r.docs.get("k", a!);
          expect(row, a).not.toBeNull();
          expect(row!.version, a).toBeGreaterThanOrEqual(Number(b));
          const [w] = a!.slice(1).split("-");
          expect((await r.docs.query({ collection: "k", where: { w }, limit: 50 })).map((d) => d.id)).toContain(a);
        } else if (kind === "blob") {
          blobs++;
          const got = await r.blobs.get(a!);
          expect(got, a).not.toBeNull();
          expect(await bytesOf(got!.stream)).toEqual(new Uint8Array(3000).fill(Number(b)));
        } else if (kind === "lease") {
          leases++;
          expect((await r.leases.get(a!))!.version).toBeGreaterThanOrEqual(Number(c));
        }
      }
      await expect(r.docs.put("k", "w0-0", { w: "r" })).rejects.toThrow(new Error(READ_ONLY));
      await r.close();
    } finally {
      child.kill("SIGKILL");
      await new Promise((r) => child.once("close", r));
    }
  });

  it("reject every write with a clear error and change nothing", async () => {
    const dir = join(tempDir(), "log");
    const w = await logstorePatternStores({ dir });
    await w.docs.ensureCollection({ name: "m", indexes: ["o"] });
    const row = await w.docs.put("m", "1", { o: "a" });
    const blob = await w.blobs.put(new Uint8Array([1, 2, 3]));
    const lease = await w.leases.acquire("k", "owner", 60_000);
    const r = await logstorePatternStores({ dir, readOnly: true });
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new Uint8Array(10));
        c.close();
      },
    });
    const writes: Array<() => Promise<unknown>> = [
      () => r.docs.ensureCollection({ name: "m", indexes: ["o", "p"] }),
      () => r.docs.ensureCollection({ name: "new", indexes: [] }),
      () => r.docs.put("m", "1", { o: "b" }),
      () => r.docs.put("m", "2", { o: "b" }),
      () => r.docs.patch("m", "1", { o: "c" }, 1),
      () => r.docs.delete("m", "1"),
      () => r.blobs.put(new Uint8Array([9])),
      () => r.blobs.put(stream),
      () => r.blobs.delete(blob.id),
      () => r.leases.acquire("k2", "x", 60_000),
      () => r.leases.renew("k", "owner", 60_000),
      () => r.leases.release("k", "owner"),
      () => r.leases.releaseAll("owner"),
    ];
    const files = readdirSync(dir).sort();
    for (const write of writes) {
      await expect(write()).rejects.toThrow(new Error(READ_ONLY));
    }
    // The reader still reads, and the writer finds everything as it was.
    expect(await r.docs.get("m", "1")).toEqual(row);
    for (const s of [r, w]) {
      expect(await s.docs.listCollections()).toEqual([{ name: "m", indexes: ["o"], docCount: 1 }]);
      expect(await s.docs.get("m", "1")).toEqual(row);
      expect(await s.blobs.list()).toEqual([blob]);
      expect(await s.leases.get("k")).toEqual(lease.ok && lease.lease);
      expect(await s.leases.get("k2")).toBeNull();
    }
    expect(readdirSync(dir).sort()).toEqual(files);
    // Writes after the reader opened reach it, once they resolved.
    const later = await w.docs.put("m", "3", { o: "a" });
    expect(await r.docs.get("m", "3")).toEqual(later);
    expect(await r.docs.count("m", { o: "a" })).toBe(2);
    await r.close();
    await w.close();
  });

  it("opening a directory that holds no store rejects and creates nothing", async () => {
    const root = tempDir();
    const missing = join(root, "missing");
    await expect(logstorePatternStores({ dir: missing, readOnly: true })).rejects.toThrow(missing);
    expect(existsSync(missing)).toBe(false);
    const empty = join(root, "empty");
    mkdirSync(empty);
    await expect(logstorePatternStores({ dir: empty, readOnly: true })).rejects.toThrow(/not a logstore directory/);
    expect(readdirSync(empty)).toEqual([]);
    const other = join(root, "other");
    mkdirSync(other);
    writeFileSync(join(other, "notes.txt"), "mine");
    await expect(logstorePatternStores({ dir: other, readOnly: true })).rejects.toThrow(/not a logstore directory/);
    expect(readdirSync(other)).toEqual(["notes.txt"]);
    expect(readdirSync(root).sort()).toEqual(["empty", "other"]);
  });
});

describe("a second open in this process", () => {
  it("shares the engine, whatever path names the directory: each handle reads the other's writes", async () => {
    const root = tempDir();
    const dir = join(root, "log");
    const a = await logstorePatternStores({ dir });
    symlinkSync(dir, join(root, "link"));
    const b = await logstorePatternStores({ dir: join(root, "link", ".") });
    await a.docs.ensureCollection({ name: "m", indexes: ["o"] });
    const fromA = await a.docs.put("m", "1", { o: "x" });
    expect(await b.docs.get("m", "1")).toEqual(fromA);
    const fromB = await b.docs.put("m", "1", { o: "y" }, 1);
    expect(fromB).toMatchObject({ version: 2 });
    expect(await a.docs.query({ collection: "m", where: { o: "y" } })).toEqual([fromB]);
    // One CAS winner across both handles.
    const race = await Promise.all([a.docs.put("m", "1", { o: "a" }, 2), b.docs.put("m", "1", { o: "b" }, 2)]);
    expect(race.filter((x) => x !== null)).toHaveLength(1);
    const blob = await b.blobs.put(new Uint8Array([4, 5]));
    expect(await bytesOf((await a.blobs.get(blob.id))!.stream)).toEqual(new Uint8Array([4, 5]));
    expect(await a.leases.acquire("k", "A", 60_000)).toMatchObject({ ok: true });
    expect(await b.leases.acquire("k", "B", 60_000)).toMatchObject({ ok: false, owner: "A" });
    await a.close();
    await b.close();
  });

  it("follows the directory, not its path: renamed while open, and a new one made at the old path", async () => {
    const root = tempDir();
    const [before, after] = [join(root, "before"), join(root, "after")];
    const a = await logstorePatternStores({ dir: before });
    await a.docs.put("m", "1", { in: "moved" });
    renameSync(before, after);
    // The renamed directory is the one `a` writes: a second open shares it.
    const b = await logstorePatternStores({ dir: after });
    expect(await b.docs.get("m", "1")).toMatchObject({ data: { in: "moved" } });
    await b.docs.put("m", "2", { by: "b" });
    expect(await a.docs.get("m", "2")).toMatchObject({ data: { by: "b" } });
    // A new directory at the old path is another store: a new, empty engine.
    mkdirSync(before);
    const c = await logstorePatternStores({ dir: before });
    expect(await c.docs.get("m", "1")).toBeNull();
    await c.docs.put("m", "3", { in: "new" });
    expect(await a.docs.get("m", "3")).toBeNull();
    await c.close();
    await b.close();
    await a.close();
    const again = await logstorePatternStores({ dir: before });
    expect(await again.docs.count("m")).toBe(1);
    await again.close();
  });

  it("closing one handle leaves the other working; the last close releases the directory", async () => {
    const dir = join(tempDir(), "log");
    const a = await logstorePatternStores({ dir });
    const b = await logstorePatternStores({ dir });
    await a.docs.put("m", "1", { n: 1 });
    await a.close();
    await a.close(); // a second close does nothing
    await expect(a.docs.get("m", "1")).rejects.toThrow(/closed/);
    await expect(a.docs.put("m", "2", {})).rejects.toThrow(/closed/);
    await expect(a.blobs.list()).rejects.toThrow(/closed/);
    await expect(a.leases.get("k")).rejects.toThrow(/closed/);
    // The engine is still open: b works, and another process is refused.
    expect(await b.docs.put("m", "1", { n: 2 })).toMatchObject({ version: 2 });
    expect((await childOpen(dir, "1")).error).toContain(dir);
    await b.close();
    await expect(b.docs.get("m", "1")).rejects.toThrow(/closed/);
    // Both closed: the directory is free for another process, and then
    // for a new open here.
    expect(await childOpen(dir, "1")).toEqual({ row: expect.objectContaining({ version: 2, data: { n: 2 } }) });
    const c = await logstorePatternStores({ dir });
    expect(await c.docs.get("m", "1")).toMatchObject({ version: 3, data: { by: "child" } });
    await c.close();
  });

  for (const durability of ["flush", "sync"] as const) {
    it(`applies writes in call order across its handles (${durability})`, async () => {
      const dir = join(tempDir(), "log");
      const a = await logstorePatternStores({ dir, durability });
      const b = await logstorePatternStores({ dir, durability });
      await a.docs.put("c", "warm", {});
      // a's first write is over 64 KiB, so it queues for the pool; b's
      // later one must not overtake it, in place or in its own job.
      const writes = [
        a.docs.put("c", "1", { n: 0, pad: "x".repeat(70_000) }),
        ...Array.from({ length: 9 }, (_, i) => (i % 2 ? a : b).docs.put("c", "1", { n: i + 1 })),
      ];
      expect((await Promise.all(writes)).map((row) => row?.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(await b.docs.get("c", "1")).toMatchObject({ version: 10, data: { n: 9 } });
      // A write on a closed handle rejects alone: the other's, queued in
      // the same turn, is applied; a second close changes nothing.
      await a.close();
      await a.close();
      const [onClosed, onOpen] = await Promise.allSettled([
        a.docs.put("c", "2", { pad: "x".repeat(70_000) }),
        b.docs.put("c", "2", { by: "b" }),
      ]);
      expect(onClosed).toMatchObject({ status: "rejected", reason: { message: expect.stringMatching(/closed/) } });
      expect(onOpen).toMatchObject({ status: "fulfilled", value: { version: 1 } });
      const c = await logstorePatternStores({ dir, durability });
      expect(await Promise.all([b.docs.put("c", "3", {}), c.docs.put("c", "3", {})])).toMatchObject([
        { version: 1 },
        { version: 2 },
      ]);
      await Promise.all([b.close(), c.close()]);
    });
  }

  it("each handle's close waits for its own writes before the engine's last close", async () => {
    const dir = join(tempDir(), "log");
    const a = await logstorePatternStores({ dir });
    const b = await logstorePatternStores({ dir });
    const puts = [
      ...Array.from({ length: 20 }, (_, i) => a.docs.put("m", `a${i}`, { i })),
      ...Array.from({ length: 20 }, (_, i) => b.docs.put("m", `b${i}`, { i })),
    ];
    // Both closes called with the writes still queued, b's first.
    await Promise.all([b.close(), a.close()]);
    expect((await Promise.all(puts)).every((row) => row?.version === 1)).toBe(true);
    const c = await logstorePatternStores({ dir });
    expect(await c.docs.count("m")).toBe(40);
    await c.close();
  });

  it("with other options rejects, naming the open ones; the first handle keeps working", async () => {
    const dir = join(tempDir(), "log");
    const a = await logstorePatternStores({ dir, durability: "flush", maxBlobBytes: 1000 });
    await expect(logstorePatternStores({ dir, durability: "sync", maxBlobBytes: 1000 })).rejects.toThrow(
      /already open in this process with other options \(durability "flush", maxBlobBytes 1000\)/,
    );
    await expect(logstorePatternStores({ dir, durability: "flush" })).rejects.toThrow(/already open/);
    const b = await logstorePatternStores({ dir, durability: "flush", maxBlobBytes: 1000 });
    await b.docs.put("m", "1", {});
    expect(await a.docs.get("m", "1")).toMatchObject({ version: 1 });
    await b.close();
    await a.close();
  });

  it("a handle collected unclosed gives up the engine, which closes keeping its writes", async () => {
    const dir = tempDir();
    const { stdout } = await run(process.execPath, ["--expose-gc", join(__dirname, "collected-child.mjs"), dir]);
    const out = JSON.parse(stdout);
    expect(out.collections).toBeGreaterThan(0);
    expect(out.data).toEqual({ n: 1 });
  });

  it("from a reloaded copy of the module finds the engine the first copy opened", async () => {
    const dir = join(tempDir(), "log");
    const a = await logstorePatternStores({ dir });
    await a.docs.put("m", "1", { from: "first" });
    const url = pathToFileURL(join(__dirname, "..", "dist", "index.js")).href;
    const copy = (await import(`${url}?reloaded`)) as { logstorePatternStores: typeof logstorePatternStores };
    expect(copy.logstorePatternStores).not.toBe(logstorePatternStores);
    const b: PatternStores = await copy.logstorePatternStores({ dir });
    expect(await b.docs.get("m", "1")).toMatchObject({ data: { from: "first" } });
    await b.close();
    expect(await a.docs.get("m", "1")).toMatchObject({ data: { from: "first" } });
    await a.close();
  });
});

describe("backup", () => {
  it("copies a store while it is written, from the writer and from a reader", async () => {
    const root = tempDir();
    const dir = join(root, "log");
    const w = await logstorePatternStores({ dir, durability: "flush" });
    await w.docs.ensureCollection({ name: "m", indexes: ["o"] });
    for (let i = 0; i < 50; i++) await w.docs.put("m", `d${i}`, { o: "a", i });
    const blob = await w.blobs.put(new Uint8Array(5000).fill(7), { ownerId: "u" });
    await w.leases.acquire("k", "me", 60_000);
    // Writes go on while the backup runs.
    const more = Array.from({ length: 200 }, (_, i) => w.docs.put("m", `late${i}`, { o: "b" }));
    const report = await w.backup(join(root, "copy"));
    await Promise.all(more);
    expect(report.documents).toBeGreaterThanOrEqual(50);
    expect(report).toMatchObject({ blobs: 1, leases: 1, blobFiles: 1, blobBytes: 5000 });
    const r = await logstorePatternStores({ dir, readOnly: true });
    const fromReader = await r.backup(join(root, "copy2"));
    expect(fromReader).toMatchObject({ documents: 250, blobs: 1, leases: 1 });

    const copy = await logstorePatternStores({ dir: join(root, "copy") });
    expect(await copy.docs.count("m")).toBe(report.documents);
    expect(await copy.docs.count("m", { o: "a" })).toBe(50);
    expect(await copy.docs.get("m", "d49")).toEqual(await w.docs.get("m", "d49"));
    expect(await bytesOf((await copy.blobs.get(blob.id))!.stream)).toEqual(new Uint8Array(5000).fill(7));
    expect(await copy.leases.get("k")).toEqual(await w.leases.get("k"));
    await copy.close();
    const copy2 = await logstorePatternStores({ dir: join(root, "copy2"), readOnly: true });
    expect(await copy2.docs.count("m")).toBe(250);
    await copy2.close();

    // A target that holds anything is refused and left as it was.
    const busy = join(root, "busy");
    mkdirSync(busy);
    writeFileSync(join(busy, "keep"), "x");
    await expect(w.backup(busy)).rejects.toThrow(/not an empty directory/);
    expect(readdirSync(busy)).toEqual(["keep"]);
    await expect(w.backup("")).rejects.toThrow(TypeError);
    await r.close();
    await w.close();
    await expect(w.backup(join(root, "after"))).rejects.toThrow(/closed/);
  });
});
