// The package as an app gets it: the main tarball and the platform package
// holding the prebuilt addon, installed into a fresh folder by npm with no
// Rust toolchain on PATH, imported by name, and its `logstore-migrate`
// command run there; and its types line up with the published package's.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { describe, expect, it } from "vitest";

import { NODE24, ROOT } from "./reference.mjs";
import { run, tempDir } from "./helpers.js";

const PLATFORM = "@logstore/pattern-stores-linux-x64-gnu";

/** PATH with only the directory of this node (and npm beside it) and the system's. */
const PATH = [dirname(process.execPath), "/usr/bin", "/bin"].join(":");
const ENV = { ...process.env, PATH };

/** Runs `cmd` in `cwd` with the Rust-free PATH; rejects on a nonzero exit. */
const inApp = (cwd: string, cmd: string, args: string[]) => run(cmd, args, { cwd, env: ENV });

/** Exit status, stdout and stderr of a command expected to fail. */
async function failing(cwd: string, cmd: string, args: string[]) {
  try {
    await inApp(cwd, cmd, args);
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
  throw new Error(`${cmd} ${args.join(" ")} succeeded`);
}

/** Every file under `dir` with a hash of its bytes. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = createHash("sha256").update(readFileSync(p)).digest("hex");
    }
  };
  walk(dir);
  return out;
}

/** The packages in an app's node_modules, scoped ones as `@scope/name`. */
function installed(app: string): string[] {
  const top = join(app, "node_modules");
  return readdirSync(top)
    .filter((n) => !n.startsWith("."))
    .flatMap((n) => (n.startsWith("@") ? readdirSync(join(top, n)).map((m) => `${n}/${m}`) : [n]))
    .sort();
}

describe("the package", () => {
  it("installs its two tarballs without Rust, and imports, runs and migrates", async () => {
    const dir = tempDir();
    const { stdout } = await run(process.execPath, [join(ROOT, "scripts", "pack.mjs"), join(dir, "tarballs")]);
    const [main, platform] = stdout.trim().split("\n");
    expect(main).toMatch(/logstore-pattern-stores-0\.1\.0\.tgz$/);
    expect(platform).toMatch(/logstore-pattern-stores-linux-x64-gnu-0\.1\.0\.tgz$/);

    // The addon is in the platform package only, which the main package
    // names at its own version.
    const list = (t: string) => execFileSync("tar", ["tzf", t], { encoding: "utf8" }).split("\n");
    expect(list(main!).filter((f) => f.endsWith(".node"))).toEqual([]);
    expect(list(platform!)).toContain("package/logstore.linux-x64-gnu.node");
    const manifest = (t: string) => JSON.parse(execFileSync("tar", ["xzOf", t, "package/package.json"], { encoding: "utf8" }));
    const mainPkg = manifest(main!);
    const platformPkg = manifest(platform!);
    expect(mainPkg.optionalDependencies).toEqual({ [PLATFORM]: mainPkg.version });
    expect(platformPkg).toMatchObject({ name: PLATFORM, version: mainPkg.version, os: ["linux"], cpu: ["x64"], libc: ["glibc"] });

    // No Rust toolchain on the PATH the app sees; node and npm are there.
    const app = join(dir, "app");
    mkdirSync(app);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
    for (const tool of ["cargo", "rustc"]) {
      expect((await failing(app, "sh", ["-c", `command -v ${tool}`])).code).not.toBe(0);
    }
    await inApp(app, "sh", ["-c", "command -v node && command -v npm && command -v npx"]);

    // Both tarballs in one offline install: npm takes the platform package
    // from its tarball and never asks the registry (which lacks it).
    await inApp(app, "npm", ["install", "--no-audit", "--no-fund", "--offline", main!, platform!]);
    expect(installed(app)).toEqual(["@logstore/pattern-stores", PLATFORM]);

    writeFileSync(
      join(app, "main.js"),
      `import { logstorePatternStores } from "@logstore/pattern-stores";
const s = await logstorePatternStores({ dir: "./data" });
await s.docs.ensureCollection({ name: "c", indexes: ["k"] });
await s.docs.put("c", "1", { k: "v" });
console.log(JSON.stringify(await s.docs.query({ collection: "c", where: { k: "v" } })));
await s.close();`,
    );
    const out = await inApp(app, process.execPath, ["main.js"]);
    expect(JSON.parse(out.stdout)).toMatchObject([{ id: "1", data: { k: "v" }, version: 1 }]);

    // A store of the published SQLite driver (written under Node 24, which
    // it needs) in the app's .pattern-data, migrated with the command.
    const data = join(app, ".pattern-data");
    await run(NODE24, [join(ROOT, "test", "sqlite-child.mjs"), "write", data, join(dir, "written.json")]);
    const before = snapshot(data);
    const migrated = await inApp(app, "npx", ["--offline", "logstore-migrate", ".pattern-data/store.db", ".pattern-data/log"]);
    expect(migrated.stdout).toBe(
      "copied 3 collections, 60 documents, 6 blobs (1056000 bytes) and 2 leases " +
        "from .pattern-data/store.db to .pattern-data/log; the target verifies\n",
    );
    const after = snapshot(data);
    for (const f of Object.keys(after).filter((f) => f.startsWith("log/"))) delete after[f];
    expect(after).toEqual(before);

    writeFileSync(
      join(app, "read.js"),
      `import { logstorePatternStores } from "@logstore/pattern-stores";
const s = await logstorePatternStores({ dir: ".pattern-data/log" });
console.log(JSON.stringify([await s.docs.count("msgs", { owner: "u1" }), (await s.blobs.list({})).length]));
await s.close();`,
    );
    expect(JSON.parse((await inApp(app, process.execPath, ["read.js"])).stdout)).toEqual([12, 6]);
  });

  it("is type-compatible with the published PatternStores", async () => {
    await run(process.execPath, [
      join(ROOT, "node_modules", "typescript", "bin", "tsc"),
      "-p",
      join(ROOT, "test", "typecheck", "tsconfig.json"),
    ]);
  });
});
