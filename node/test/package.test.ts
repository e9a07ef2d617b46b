// The package as an app gets it: packed, installed into another folder and
// imported by name; and its types line up with the published package's.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

import { ROOT } from "./reference.mjs";
import { run, tempDir } from "./helpers.js";

describe("the package", () => {
  it("installs from its tarball and imports by name", async () => {
    const dir = tempDir();
    const { stdout } = await run("npm", ["pack", "--silent", "--pack-destination", dir], { cwd: ROOT });
    const tarball = join(dir, stdout.trim().split("\n").pop()!);
    const app = join(dir, "app");
    mkdirSync(app);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
    await run("npm", ["install", "--no-audit", "--no-fund", "--offline", tarball], { cwd: app });
    writeFileSync(
      join(app, "main.js"),
      `import { logstorePatternStores } from "@logstore/pattern-stores";
const s = await logstorePatternStores({ dir: "./data" });
await s.docs.ensureCollection({ name: "c", indexes: ["k"] });
await s.docs.put("c", "1", { k: "v" });
console.log(JSON.stringify(await s.docs.query({ collection: "c", where: { k: "v" } })));
await s.close();`,
    );
    const out = await run(process.execPath, ["main.js"], { cwd: app });
    expect(JSON.parse(out.stdout)).toMatchObject([{ id: "1", data: { k: "v" }, version: 1 }]);
  });

  it("is type-compatible with the published PatternStores", async () => {
    await run(process.execPath, [
      join(ROOT, "node_modules", "typescript", "bin", "tsc"),
      "-p",
      join(ROOT, "test", "typecheck", "tsconfig.json"),
    ]);
  });
});
