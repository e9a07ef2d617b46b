// Child process, run with --expose-gc: opens <dir> with `flush`, puts one
// document and drops the handle unclosed; then, after each collection,
// tries to open the directory with `sync`, which rejects while the first
// engine is still open in this process. Prints how many collections that
// took (-1: it never closed) and the document the second open reads.
//   node --expose-gc collected-child.mjs <dir>
import { logstorePatternStores } from "../dist/index.js";

const [dir] = process.argv.slice(2);
async function writeAndForget() {
  const s = await logstorePatternStores({ dir, durability: "flush" });
  await s.docs.put("c", "a", { n: 1 });
}
await writeAndForget();
for (let i = 0; i < 100; i++) {
  globalThis.gc();
  await new Promise((resolve) => setTimeout(resolve, 20));
  try {
    const s = await logstorePatternStores({ dir, durability: "sync" });
    const row = await s.docs.get("c", "a");
    await s.close();
    process.stdout.write(JSON.stringify({ collections: i + 1, data: row?.data ?? null }));
    process.exit(0);
  } catch (e) {
    if (!/already open in this process/.test(e.message)) throw e;
  }
}
process.stdout.write(JSON.stringify({ collections: -1 }));
