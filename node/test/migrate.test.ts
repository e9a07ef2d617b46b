// `logstore-migrate` refuses what it cannot copy: bad arguments, a source
// that is not a store, a target that is not new. Each refusal exits
// nonzero with a message naming the path, and changes nothing on disk.
// (The copies themselves: interop.test.ts and package.test.ts.)
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";

import { logstorePatternStores } from "../dist/index.js";
import { NODE24, ROOT } from "./reference.mjs";
import { run, tempDir } from "./helpers.js";

const CLI = join(ROOT, "dist", "migrate-cli.js");

async function migrate(cwd: string, ...args: string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { cwd });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** Every entry under `dir` with its bytes, to compare before and after. */
function contents(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const p = join(e.parentPath, e.name);
    out[p] = e.isDirectory() ? "dir" : createHash("sha256").update(readFileSync(p)).digest("hex");
  }
  return out;
}

describe("logstore-migrate", () => {
  let dir: string;
  beforeAll(async () => {
    dir = tempDir();
    const s = await logstorePatternStores({ dir: join(dir, "log") });
    await s.docs.put("c", "1", { k: "v" });
    await s.close();
  });

  it("takes exactly two paths, and prints its usage on --help", async () => {
    for (const args of [[], ["log"], ["log", "a.db", "b"], ["--to", "log"], ["", "x"]]) {
      const r = await migrate(dir, ...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(/^logstore-migrate: expected two paths, FROM and TO\n\nusage: logstore-migrate FROM TO/);
    }
    const help = await migrate(dir, "--help");
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: logstore-migrate FROM TO/);
  });

  it("refuses a source that is not a store", async () => {
    mkdirSync(join(dir, "emptydir"));
    mkdirSync(join(dir, "otherdir"));
    writeFileSync(join(dir, "otherdir", "notes.txt"), "mine");
    writeFileSync(join(dir, "notes.db"), "not a database, but my notes");
    await run(NODE24, [
      "-e",
      `const { DatabaseSync } = require("node:sqlite");
       const db = new DatabaseSync(process.argv[1]);
       db.exec("CREATE TABLE mine (x)"); db.exec("INSERT INTO mine VALUES (1)"); db.close();`,
      join(dir, "other.db"),
    ]);
    await run(NODE24, ["-e", `new (require("node:sqlite").DatabaseSync)(process.argv[1]).close()`, join(dir, "blank.db")]);
    const before = contents(dir);
    const cases: [string, RegExp][] = [
      ["missing.db", /missing\.db does not exist/],
      ["missing", /missing does not exist/],
      ["emptydir", /emptydir is an empty directory, not a store/],
      ["otherdir", /otherdir is not a logstore directory/],
      ["notes.db", /notes\.db is not an SQLite database/],
      ["other.db", /other\.db is an SQLite database but not a store/],
      ["blank.db", /blank\.db holds no store/],
      ["otherdir/notes.txt", /otherdir\/notes\.txt is a file, not a logstore directory/],
    ];
    for (const [from, message] of cases) {
      const r = await migrate(dir, from, "target");
      expect(r.code, from).toBe(1);
      expect(r.stderr, from).toMatch(new RegExp(`^logstore-migrate: ${message.source}`));
      expect(r.stdout).toBe("");
    }
    expect(contents(dir)).toEqual(before);
  });

  it("refuses a target that is not new, and the source as its own target", async () => {
    mkdirSync(join(dir, "full", "blobs"), { recursive: true });
    writeFileSync(join(dir, "full", "keep.txt"), "keep");
    writeFileSync(join(dir, "full", "blobs", "old"), "an old blob");
    const first = await migrate(dir, "log", "copy.db");
    expect(first.code).toBe(0);
    const before = contents(dir);
    const cases: [string, string, RegExp][] = [
      ["log", "full", /full is not empty; the target must be a new store/],
      ["copy.db", "log", /log is not empty; the target must be a new store/],
      ["log", "copy.db", /copy\.db is not empty; the target must be a new store/],
      ["log", "full/keep.txt", /full\/keep\.txt already exists as a file/],
      ["log", "full/new.db", /full\/blobs \(where full\/new\.db keeps its blobs\) is not empty/],
      ["log", "log", /the source and the target are the same path/],
    ];
    for (const [from, to, message] of cases) {
      const r = await migrate(dir, from, to);
      expect(r.code, `${from} ${to}`).toBe(1);
      expect(r.stderr, `${from} ${to}`).toMatch(new RegExp(`^logstore-migrate: ${message.source}`));
    }
    expect(contents(dir)).toEqual(before);
    expect(existsSync(join(dir, "full", "MANIFEST"))).toBe(false);
  });

  it("refuses a target inside the source, or sharing its files", async () => {
    mkdirSync(join(dir, "side"));
    const db = await migrate(dir, "log", "side/app.db");
    expect(db.code).toBe(0);
    mkdirSync(join(dir, "side", "blobs"), { recursive: true });
    const before = contents(dir);
    const cases: [string, string, RegExp][] = [
      ["log", "log/inner", /log\/inner lies inside the source's log;/],
      ["log", "./log/../log/inner.db", /\.\/log\/\.\.\/log\/blobs lies inside the source's log;/],
      ["side/app.db", "side/blobs/copy", /side\/blobs\/copy lies inside the source's side\/blobs;/],
      ["side/app.db", "side/other.db", /side\/blobs lies inside the source's side\/blobs;/],
      ["log", "./log", /the source and the target are the same path \(\.\/log\)/],
    ];
    for (const [from, to, message] of cases) {
      const r = await migrate(dir, from, to);
      expect(r.code, `${from} ${to}`).toBe(1);
      expect(r.stderr, `${from} ${to}`).toMatch(new RegExp(`^logstore-migrate: ${message.source}`));
    }
    expect(contents(dir)).toEqual(before);
  });

  it("refuses a staging folder it did not make, and removes one it left", async () => {
    mkdirSync(join(dir, "fresh.partial"));
    writeFileSync(join(dir, "fresh.partial", "notes.txt"), "mine");
    const before = contents(dir);
    const inside = await migrate(dir, "log", "log/inner");
    expect(inside.code).toBe(1);
    expect(inside.stderr).toMatch(/^logstore-migrate: log\/inner lies inside the source's log/);
    const foreign = await migrate(dir, "log", "fresh");
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toMatch(/fresh\.partial exists, and logstore did not make it/);
    expect(foreign.stderr).toMatch(/nothing was made at fresh/);
    expect(contents(dir)).toEqual(before);

    // Emptied, as a run killed before its marker leaves it: removed, and said.
    rmSync(join(dir, "fresh.partial", "notes.txt"));
    const retried = await migrate(dir, "log", "fresh");
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.stderr).toMatch(/^logstore-migrate: removed fresh\.partial, left by an interrupted run\n$/);
    expect(existsSync(join(dir, "fresh.partial"))).toBe(false);
    expect(readdirSync(join(dir, "fresh")).some((name) => name.endsWith(".seg"))).toBe(true);
  });
});
