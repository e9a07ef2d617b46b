#!/usr/bin/env node
// `logstore-migrate FROM TO`: copies a store of the reference SQLite driver
// (`.pattern-data/store.db`, blobs in `blobs/` beside it) into a new logstore
// directory, or a logstore directory into a new SQLite store. Exit status 0
// on success, 1 when the copy is refused or fails, 2 on bad arguments.
import { migrateStore } from "./index.js";

const USAGE = `usage: logstore-migrate FROM TO

Copies every collection, document, blob and lease of the store FROM into a
new store TO, keeping ids, versions and timestamps. A path ending in .db is a
store of @pattern-js/mod-store's SQLite driver (its blobs in blobs/ beside
it); any other path is a logstore directory. TO must not exist or be empty.
TO is built beside itself (TO.partial) and moved into place once complete, so
an interrupted copy leaves nothing at TO; running again removes what it left.
Stop the app first.

  npx logstore-migrate .pattern-data/store.db .pattern-data/log   # to logstore
  npx logstore-migrate .pattern-data/log back/store.db            # and back
`;

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === "--help" || args[0] === "-h")) {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (args.length !== 2 || args.some((a) => a === "" || a.startsWith("-"))) {
  process.stderr.write(`logstore-migrate: expected two paths, FROM and TO\n\n${USAGE}`);
  process.exit(2);
}
const [from, to] = args as [string, string];
try {
  const m = migrateStore(from, to);
  for (const removed of m.removed) process.stderr.write(`logstore-migrate: ${removed}\n`);
  const n = (count: number, what: string) => `${count} ${what}${count === 1 ? "" : "s"}`;
  process.stdout.write(
    `copied ${n(m.collections, "collection")}, ${n(m.documents, "document")}, ` +
      `${n(m.blobs, "blob")} (${n(m.blobBytes, "byte")}) and ${n(m.leases, "lease")} ` +
      `from ${from} to ${to}${m.verified ? "; the target verifies" : ""}\n`,
  );
} catch (e) {
  process.stderr.write(`logstore-migrate: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
