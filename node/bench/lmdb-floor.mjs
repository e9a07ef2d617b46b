// lmdb-js as the key-value floor under the Node.js benchmark: the
// operations a key-value store can do, on the same workload, timed as
// driver.mjs times a driver. Bodies are stored in lmdb-js's default encoding
// (msgpack, through msgpackr), so a get is a read and a msgpack decode. The
// one-filter query reads a second database kept by hand in the same
// transaction as each put: conversation -> ids (dupSort), as many rows as
// the query's limit, each then read and decoded.
// `sync` commits durably (lmdb-js's default: each awaited write resolves
// after its commit is synced); `nosync` is lmdb-js's `noSync`, against
// logstore `flush`. Prints { operation: ops/s }.
//   node lmdb-floor.mjs <sync|nosync> <dir> <docs> <seconds>
import { fileURLToPath } from "node:url";

import { open } from "lmdb";

import { bodies, COLLECTION, CONVERSATIONS, conversation, id, rate, rng } from "./workload.mjs";

/** The store: documents by id, and one field's index kept by hand. */
export function openLmdbFloor(path, { noSync = false } = {}) {
  const root = open({ path, noSync });
  const docs = root.openDB({ name: COLLECTION });
  const byConversation = root.openDB({ name: `${COLLECTION}.conversation`, dupSort: true, encoding: "ordered-binary" });
  return {
    /** Stores `body` under `key` and moves its index entry; resolves once committed. */
    put: (key, body) =>
      root.transaction(() => {
        const old = docs.get(key);
        if (old && old.conversation !== body.conversation) byConversation.remove(old.conversation, key);
        docs.put(key, body);
        byConversation.put(body.conversation, key);
      }),
    get: (key) => docs.get(key),
    /** Up to `limit` documents whose conversation is `value`, in id order. */
    query: (value, limit) => {
      const out = [];
      for (const key of byConversation.getValues(value, { limit })) out.push(docs.get(key));
      return out;
    },
    close: () => root.close(),
  };
}

const main = async () => {
  const [mode, dir, docsArg, secondsArg] = process.argv.slice(2);
  if (mode !== "sync" && mode !== "nosync") throw new Error(`mode must be sync or nosync, not ${mode}`);
  const DOCS = Number(docsArg);
  const BUDGET_MS = Number(secondsArg) * 1000;
  const WRITES = Math.max(10, Math.floor(DOCS / 4));
  const store = openLmdbFloor(dir, { noSync: mode === "nosync" });
  const out = {};
  const load = bodies(rng(42), 0, DOCS);
  const start = performance.now();
  for (let i = 0; i < DOCS; i++) await store.put(id(i), load[i]);
  out[`load ${DOCS} documents (puts)`] = (DOCS * 1000) / (performance.now() - start);
  // driver.mjs's generator, so its put (new) writes the same keys and bodies.
  const below = rng(9);
  const fresh = bodies(below, DOCS + 1e9, WRITES);
  out["put (new)"] = await rate((i) => store.put(id(DOCS + 1e9 + i), fresh[i]), { count: WRITES });
  const reads = { budget: BUDGET_MS };
  out["get by id"] = await rate(() => {
    if (store.get(id(below(DOCS))) === undefined) throw new Error("a loaded document is missing");
  }, reads);
  out["query, 1 filter, limit 20"] = await rate(() => store.query(conversation(below(CONVERSATIONS)), 20), reads);
  await store.close();
  process.stdout.write(JSON.stringify(out));
};

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
