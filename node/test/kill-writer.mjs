// Child process: writes until killed, printing each write once it resolved.
//   node kill-writer.mjs <dir>
import { logstorePatternStores } from "../dist/index.js";

const s = await logstorePatternStores({ dir: process.argv[2], durability: "sync" });
await s.docs.ensureCollection({ name: "k", indexes: ["w"] });
process.stdout.write("ready\n");
// Four concurrent writers, so acknowledgements come from group commits.
await Promise.all(
  [0, 1, 2, 3].map(async (w) => {
    for (let i = 0; ; i++) {
      const id = `w${w}-${i % 20}`;
      const row = await s.docs.put("k", id, { w: String(w), i });
      process.stdout.write(`doc ${id} ${row.version} ${i}\n`);
      if (i % 25 === 0) {
        const meta = await s.blobs.put(new Uint8Array(3000).fill(i & 255), { ownerId: `w${w}` });
        process.stdout.write(`blob ${meta.id} ${i & 255}\n`);
      }
      if (i % 10 === 0) {
        const r = await s.leases.acquire(`lease-${w}`, `run-${w}-${i}`, 3_600_000);
        if (r.ok) process.stdout.write(`lease lease-${w} run-${w}-${i} ${r.lease.version}\n`);
      }
    }
  }),
);
