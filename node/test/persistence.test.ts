// What a store holds survives a close and reopen, and a SIGKILL of the Node
// process in the middle of writes keeps every write it acknowledged.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

import { logstorePatternStores } from "../dist/index.js";
import { bytesOf, tempDir } from "./helpers.js";

describe("persistence", () => {
  it("documents, indexes, blobs and leases survive a reopen", async () => {
    const dir = join(tempDir(), "log");
    let s = await logstorePatternStores({ dir });
    await s.docs.ensureCollection({ name: "m", indexes: ["o"] });
    const row = await s.docs.put("m", "1", { o: "a", n: 1.5 });
    await s.docs.put("m", "2", { o: "b" });
    await s.docs.delete("m", "2");
    const blob = await s.blobs.put(new Uint8Array([9, 8, 7]), { mime: "text/plain", ownerId: "u" });
    const lease = await s.leases.acquire("k", "run", 3_600_000);
    await s.close();

    s = await logstorePatternStores({ dir });
    expect(await s.docs.get("m", "1")).toEqual(row);
    expect(await s.docs.get("m", "2")).toBeNull();
    expect(await s.docs.query({ collection: "m", where: { o: "a" } })).toEqual([row]);
    expect(await s.docs.listCollections()).toEqual([{ name: "m", indexes: ["o"], docCount: 1 }]);
    const got = await s.blobs.get(blob.id);
    expect(got!.meta).toEqual(blob);
    expect(await bytesOf(got!.stream)).toEqual(new Uint8Array([9, 8, 7]));
    expect(lease.ok && (await s.leases.get("k"))).toEqual(lease.ok && lease.lease);
    await s.close();
  });

  it("a SIGKILL mid-writes keeps every acknowledged write", async () => {
    const dir = join(tempDir(), "log");
    const child = spawn(process.execPath, [join(__dirname, "kill-writer.mjs"), dir], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    const acked = new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        // Kill once enough writes were acknowledged, while more are in flight.
        if ((out.match(/^doc /gm) ?? []).length >= 400) resolve();
      });
      child.on("exit", (code) => reject(new Error(`writer exited early (${code}): ${out.slice(-500)}`)));
    });
    await acked;
    child.kill("SIGKILL");
    await new Promise((r) => child.once("close", r));

    const docs = new Map<string, number>();
    const blobs: Array<[string, number]> = [];
    const leases = new Map<string, [string, number]>();
    for (const line of out.split("\n")) {
      const [kind, a, b, c] = line.split(" ");
      if (kind === "doc") docs.set(a!, Math.max(docs.get(a!) ?? 0, Number(b)));
      if (kind === "blob") blobs.push([a!, Number(b)]);
      if (kind === "lease") leases.set(a!, [b!, Number(c)]);
    }
    expect(docs.size).toBeGreaterThan(10);

    const s = await logstorePatternStores({ dir });
    for (const [id, version] of docs) {
      const row = await s.docs.get("k", id);
      expect(row, id).not.toBeNull();
      expect(row!.version, id).toBeGreaterThanOrEqual(version);
    }
    for (const [id, fill] of blobs) {
      const got = await s.blobs.get(id);
      expect(got, id).not.toBeNull();
      expect(await bytesOf(got!.stream)).toEqual(new Uint8Array(3000).fill(fill));
    }
    for (const [key, [, version]] of leases) {
      expect((await s.leases.get(key))!.version).toBeGreaterThanOrEqual(version);
    }
    // The index agrees with the rows after recovery.
    const byWriter = await s.docs.count("k", { w: "0" });
    expect(byWriter).toBe((await s.docs.query({ collection: "k", limit: 1000 })).filter((d) => d.data.w === "0").length);
    await s.close();
  });
});
