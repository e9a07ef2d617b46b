// What the interop test writes with the published SQLite driver.
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const INTEROP = {
  collections: ["msgs", "tasks", "empty", "loose"],
  leaseKeys: ["conv:1", "conv:2", "gone"],
  async fill(s) {
    await s.docs.ensureCollection({ name: "msgs", indexes: ["owner", "meta.kind"] });
    await s.docs.ensureCollection({ name: "tasks", indexes: ["status"] });
    await s.docs.ensureCollection({ name: "empty", indexes: ["x"] });
    for (let i = 0; i < 50; i++) {
      await s.docs.put("msgs", `m${String(i).padStart(3, "0")}`, {
        owner: `u${i % 4}`,
        meta: { kind: i % 3 ? "text" : "image", n: i },
        text: `message ${i} é✓ "q"`,
        nums: [i, i / 3, 1e21, -0.5],
      });
    }
    await s.docs.put("msgs", "m001", { owner: "u9", meta: { kind: "edited" } }, 1);
    await s.docs.patch("msgs", "m002", { extra: null }, 1);
    await s.docs.delete("msgs", "m003");
    for (let i = 0; i < 10; i++) await s.docs.put("tasks", `t${i}`, { status: i % 2 ? "done" : "open", i });
    await s.docs.put("loose", "l1", { never: "ensured" });
    for (let i = 0; i < 6; i++) {
      const bytes = new Uint8Array(1000 + i * 70_000);
      for (let j = 0; j < bytes.length; j++) bytes[j] = (j * 7 + i) & 255;
      await s.blobs.put(bytes, i % 2 ? { mime: "image/png", ownerId: "u1" } : {});
      await sleep(2);
    }
    await s.leases.acquire("conv:1", "run-A", 3_600_000);
    await s.leases.acquire("conv:2", "run-B", -1000);
    await s.leases.acquire("gone", "run-A", 1000);
    await s.leases.release("gone", "run-A");
  },
};
