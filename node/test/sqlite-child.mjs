// Child process under Node 24: the published SQLite driver on <dir>/store.db
// with blobs in <dir>/blobs.
//   node sqlite-child.mjs write <dir> <dump.json>   fill a new store, dump it
//   node sqlite-child.mjs dump <dir> <dump.json>    dump an existing store
import { writeFileSync } from "node:fs";
import { join } from "node:path";

import { dump } from "./dump.mjs";
import { INTEROP } from "./interop-data.mjs";
import { referenceStore } from "./reference.mjs";

const [mode, dir, out] = process.argv.slice(2);
const { sqlitePatternStores } = await referenceStore();
const s = await sqlitePatternStores(join(dir, "store.db"), join(dir, "blobs"));
if (mode === "write") await INTEROP.fill(s);
writeFileSync(out, JSON.stringify(await dump(s, INTEROP)));
await s.close();
