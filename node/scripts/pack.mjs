// Packs the package and its platform packages into one folder, as they are
// published: each built addon (native/logstore.<platform>.node) is copied
// into its platform package (npm/<platform>/, laid out by
// `napi create-npm-dirs`), and the main package's tarball lists every
// platform package in `optionalDependencies` at its own version (what
// `napi pre-publish` adds) and carries no `.node` file. Run after
// `npm run build` (`npm run tarballs` does both).
//
//   node scripts/pack.mjs [DEST]   (default: pack/)
//
// Prints the tarballs' paths, main package first.
import { execFileSync } from "node:child_process";
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const dest = resolve(process.argv[2] ?? join(ROOT, "pack"));
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

function fail(message) {
  console.error(`pack: ${message}`);
  process.exit(1);
}

const readJson = (path) => JSON.parse(readFileSync(path, "utf8"));
const main = readJson(join(ROOT, "package.json"));
const binary = main.napi.binaryName;

/** `npm pack` of `dir` into `dest`; returns the tarball's path. */
function pack(dir) {
  const out = execFileSync(npm, ["pack", "--json", "--pack-destination", dest], { cwd: dir, encoding: "utf8" });
  return join(dest, JSON.parse(out)[0].filename);
}

mkdirSync(dest, { recursive: true });
const platforms = readdirSync(join(ROOT, "npm"));
const optional = {};
const tarballs = [];
for (const platform of platforms) {
  const dir = join(ROOT, "npm", platform);
  const pkg = readJson(join(dir, "package.json"));
  if (pkg.version !== main.version) {
    fail(`npm/${platform} is at version ${pkg.version}, the package at ${main.version}`);
  }
  const file = `${binary}.${platform}.node`;
  const built = join(ROOT, "native", file);
  if (!existsSync(built)) {
    fail(`native/${file} is missing: build it on ${platform} (npm run build) first`);
  }
  copyFileSync(built, join(dir, file));
  optional[pkg.name] = pkg.version;
  tarballs.push(pack(dir));
}

// The main package is packed from a copy of its files with the platform
// packages added to its package.json, so the checkout's package.json (which
// `npm ci` installs from) never names packages the registry may not have.
const stage = mkdtempSync(join(tmpdir(), "logstore-pack-"));
try {
  for (const entry of main.files) {
    if (entry.includes("*")) fail(`files entry ${entry}: list files by name`);
    const from = join(ROOT, entry);
    if (!existsSync(from)) fail(`${entry} is missing: run npm run build first`);
    mkdirSync(dirname(join(stage, entry)), { recursive: true });
    cpSync(from, join(stage, entry), { recursive: true });
  }
  writeFileSync(
    join(stage, "package.json"),
    JSON.stringify({ ...main, optionalDependencies: { ...main.optionalDependencies, ...optional } }, null, 2) + "\n",
  );
  tarballs.unshift(pack(stage));
} finally {
  rmSync(stage, { recursive: true, force: true });
}
for (const t of tarballs) console.log(t);
