// Unpacks the published @pattern-js/mod-store@0.4.0 into .reference/ for the
// differential, interop and benchmark runs. `npm install` of the package
// fails (its @pattern-js/core dependency is not on the registry), but its
// dist/store/ drivers import only each other and Node built-ins, so the
// tarball from `npm pack` is all they need. The tarball is checked against
// the registry's published integrity before it is unpacked.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const SPEC = "@pattern-js/mod-store@0.4.0";
const INTEGRITY =
  "sha512-A+t+cRaPRYRtjLdtPrd5APdBavk6twUS9KHEuSWPrdaWRmnSXclvhuRh03Pbas0YzkDAKM5p72dIPXaNelZJHg==";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dest = join(root, ".reference");
const marker = join(dest, "package", "dist", "store", "sqlite.js");

if (!existsSync(marker)) {
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dest, { recursive: true });
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const out = execFileSync(npm, ["pack", SPEC, "--silent", "--pack-destination", dest], {
    encoding: "utf8",
  });
  const tgz = join(dest, out.trim().split("\n").pop());
  const digest = "sha512-" + createHash("sha512").update(readFileSync(tgz)).digest("base64");
  if (digest !== INTEGRITY) {
    throw new Error(`${SPEC}: tarball integrity ${digest} is not the published ${INTEGRITY}`);
  }
  execFileSync("tar", ["xzf", tgz, "-C", dest]);
  if (!existsSync(marker)) throw new Error(`${SPEC}: ${marker} missing after unpacking`);
}
