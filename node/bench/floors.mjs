// The floors under the Node.js benchmark's operations: what the same work
// costs with no store at all, timed the way driver.mjs times a driver (an
// awaited call per operation), on the same file system. Prints { floor: ops/s }.
//   node floors.mjs <dir> <docs> <seconds>
//
// - parse: what a get or a query hands back must be parsed from its stored
//   text; these floors parse the workload's bodies and build the rows. A
//   write's body is stringified, and a `flush` write is a write(2) each.
// - sync: one small write made durable per operation, as both drivers do at
//   equal durability, over blocks written and synced before (as logstore
//   writes over the zeros it fills its segment with ahead, and SQLite over
//   its WAL once it wraps), so no fdatasync commits a new file size. Once
//   on the JavaScript thread, blocking it as the published driver does, and
//   once through libuv's pool (a write, then an fdatasync), as a durable
//   write that leaves the event loop free must go.
// - blob: what storing a 4 KiB blob durably costs as a file of its own
//   (write, fdatasync, rename, directory fsync, then a small record synced)
//   against the same bytes appended to one file with one fdatasync.
import { closeSync, fdatasyncSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";

import { bodies, CONVERSATIONS, rate, rng } from "./workload.mjs";

const [dir, docsArg, secondsArg] = process.argv.slice(2);
const DOCS = Number(docsArg);
const BUDGET_MS = Number(secondsArg) * 1000;
const WRITES = Math.max(10, Math.floor(DOCS / 4));
const reads = { budget: BUDGET_MS };
const writes = { count: WRITES };
mkdirSync(dir, { recursive: true });

const out = {};
const texts = bodies(rng(42), 0, DOCS).map((b) => JSON.stringify(b));
const below = rng(9);
const fresh = bodies(below, DOCS + 1e9, WRITES);
const row = (text) => ({ id: "turn-00000000", data: JSON.parse(text), version: 1, createdAt: 0, updatedAt: 0 });
out["JSON.parse of one body"] = await rate(() => row(texts[below(DOCS)]), reads);
// A one-filter query on a conversation returns its turns: docs / 1000 on
// average, at most its limit of 20.
const perQuery = Math.max(1, Math.min(20, Math.round(DOCS / CONVERSATIONS)));
out[`JSON.parse of ${perQuery} bodies`] = await rate(() => {
  const rows = [];
  for (let i = 0; i < perQuery; i++) rows.push(row(texts[below(DOCS)]));
  return rows;
}, reads);

out["JSON.stringify of one body"] = await rate(() => JSON.stringify(fresh[below(fresh.length)]), reads);

const record = Buffer.alloc(400, 0x61);
{
  const fd = openSync(join(dir, "written"), "w");
  out["append 400 B, no sync"] = await rate(() => writeSync(fd, record), { count: WRITES * 10 });
  closeSync(fd);
}
/** A file of `bytes` zeros, written and synced before any clock starts. */
function zeroed(name, bytes) {
  const fd = openSync(join(dir, name), "w");
  writeSync(fd, Buffer.alloc(bytes), 0, bytes, 0);
  fdatasyncSync(fd);
  return fd;
}
{
  const fd = zeroed("overwrite", WRITES * record.length);
  out["overwrite 400 B + fdatasync"] = await rate((i) => {
    writeSync(fd, record, 0, record.length, i * record.length);
    fdatasyncSync(fd);
  }, writes);
  closeSync(fd);
}
{
  closeSync(zeroed("pooled", WRITES * record.length));
  const file = await open(join(dir, "pooled"), "r+");
  out["overwrite 400 B + fdatasync, through libuv's pool"] = await rate(async (i) => {
    await file.write(record, 0, record.length, i * record.length);
    await file.datasync();
  }, writes);
  await file.close();
}

{
  const blob = Buffer.alloc(4096, 0x62);
  const files = join(dir, "files");
  mkdirSync(files);
  const dirFd = openSync(files, "r");
  const log = zeroed("records", 100_000 * record.length);
  out["blob 4 KiB as a file: write, fdatasync, rename, fsync dir, record + fdatasync"] = await rate((i) => {
    const tmp = join(files, `${i}.tmp`);
    const fd = openSync(tmp, "w");
    writeSync(fd, blob);
    fdatasyncSync(fd);
    closeSync(fd);
    renameSync(tmp, join(files, String(i)));
    fsyncSync(dirFd);
    writeSync(log, record, 0, record.length, i * record.length);
    fdatasyncSync(log);
  }, { budget: BUDGET_MS, count: 100_000 });
  closeSync(log);
  closeSync(dirFd);
  const inline = openSync(join(dir, "inline"), "w");
  out["blob 4 KiB appended to one file + fdatasync"] = await rate(() => {
    writeSync(inline, blob);
    fdatasyncSync(inline);
  }, reads);
  closeSync(inline);
}
process.stdout.write(JSON.stringify(out));
