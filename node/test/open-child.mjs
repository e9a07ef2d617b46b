// Child process: opens <dir> for writing, prints the row of doc m/<id> (or
// the open's error), puts doc m/<id> at the next version, and closes.
//   node open-child.mjs <dir> <id>
import { logstorePatternStores } from "../dist/index.js";

const [dir, id] = process.argv.slice(2);
let s;
try {
  s = await logstorePatternStores({ dir });
} catch (e) {
  process.stdout.write(JSON.stringify({ error: e.message }));
  process.exit(0);
}
const row = await s.docs.get("m", id);
await s.docs.put("m", id, { by: "child" });
await s.close();
process.stdout.write(JSON.stringify({ row }));
