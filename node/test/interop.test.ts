// A store written by the published SQLite driver (Node 24), migrated with
// the package's `logstore-migrate`, reads back through logstorePatternStores
// with every row, index and blob equal; and migrated back, the SQLite driver
// reads it.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

import { logstorePatternStores } from "../dist/index.js";
import { dump } from "./dump.mjs";
import { INTEROP } from "./interop-data.mjs";
import { NODE24, ROOT } from "./reference.mjs";
import { run, tempDir } from "./helpers.js";

/** The package's `logstore-migrate` command, as built into dist/. */
const MIGRATE = join(ROOT, "dist", "migrate-cli.js");

async function sqliteChild(mode: string, dir: string) {
  const out = join(dir, `${mode}.json`);
  await run(NODE24, [join(ROOT, "test", "sqlite-child.mjs"), mode, dir, out]);
  return JSON.parse(readFileSync(out, "utf8"));
}

describe("interop with the published SQLite driver through logstore-migrate", () => {
  it("sqlite -> logstore -> sqlite keeps every row, index, blob and lease", async () => {
    const root = tempDir();
    const src = join(root, "src");
    const written = await sqliteChild("write", src);
    expect(written.docs.msgs).toHaveLength(49);
    expect(written.blobs).toHaveLength(6);

    await run(process.execPath, [MIGRATE, join(src, "store.db"), join(root, "log")]);
    const s = await logstorePatternStores({ dir: join(root, "log") });
    expect(await dump(s, INTEROP)).toEqual(written);
    // The indexes came across: queries on them answer as SQLite's did.
    expect(await s.docs.count("msgs", { owner: "u1" })).toBe(12);
    expect(await s.docs.count("msgs", { "meta.kind": "image" })).toBe(16);
    expect((await s.docs.query({ collection: "msgs", where: { owner: "u9" } })).map((d) => d.id)).toEqual(["m001"]);
    expect(await s.docs.count("tasks", { status: "done" })).toBe(5);
    expect(await s.leases.acquire("conv:1", "run-X", 1000)).toMatchObject({ ok: false, owner: "run-A" });
    await s.close();

    const back = join(root, "back");
    await run(process.execPath, [MIGRATE, join(root, "log"), join(back, "store.db")]);
    expect(await sqliteChild("dump", back)).toEqual(written);
  });
});
