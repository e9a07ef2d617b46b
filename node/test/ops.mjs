// Seeded operation sequences for the differential test, and the runner that
// plays one against any PatternStores and records what it observed.
//
// Plain JavaScript so that the same file runs under vitest (logstore) and in
// the child processes that drive the reference package's drivers (its
// memory driver under Node 20, its SQLite driver under Node 24).
//
// Values JSON cannot carry (NaN, a Date, an object with toJSON) are tagged
// in the sequence and made real by `materialize` as each driver runs it.
// Stores under test are opened with `MAX_BLOB_BYTES`, so the largest puts
// hit the cap. Every operation runs at a clock time the sequence fixes (each driver's
// clock is set to it first), so timestamps and lease expiries are the same
// in every driver and are compared too. What is not compared: blob ids (the
// trace names a blob by the order it was put in) and, where the reference
// drivers themselves disagree, the order of rows that tie on an index
// field's value (see `normalizeRows`).
import { createHash } from "node:crypto";

export const START_MS = 1_700_000_000_000;
export const MAX_BLOB_BYTES = 100_000;

/** mulberry32: a small, fast, seeded generator. */
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n) => Math.floor(next() * n);
  const pick = (xs) => xs[int(xs.length)];
  return { next, int, pick, chance: (p) => next() < p };
}

const COLLECTIONS = ["msgs", "tasks", "loose"]; // "loose" is never ensured
const FIELDS = ["owner", "rank", "meta.kind", "tags.0", "n", "list.length", "tags.length"];
const OWNERS = ["a", "b", "c", ""];
const RANKS = ["r1", "r2", "r3", "r10", 10, 9, 2.5, -0, 1e21, true, false];
const KINDS = ["x", "y", 1, null];
const IDS = ["d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8"];
// Values JSON cannot carry are tagged here (ops travel to the reference
// drivers' processes as JSON) and made real by `materialize`.
const NAN = { $: "NaN" };
const WHERE_VALUES = [
  "a", "b", "", "r1", "r10", 10, "10", 2.5, true, "true", null, { o: 1 }, "x", 1, "1", 0, 2, "2", 3,
  NAN, { $: "Infinity" }, { $: "-Infinity" }, "NaN", "Infinity",
  { $: "Date", iso: "1970-01-01T00:00:00.002Z" }, "1970-01-01T00:00:00.002Z",
  { $: "toJSON", value: "x" }, { $: "toJSON", value: 2 },
];
const ORDER_BY = [undefined, "createdAt", "updatedAt", "id", "owner", "rank", "meta.kind", "n", "nope", "list.length"];
// `list.length` reads an array's length, an object's own `length` key, and
// nothing of a string.
const LENGTHS = [0, 1, 1, 2, "2", 3, "x"];
const LISTS = [[], ["a"], ["b", "c"], [1, 2], ["x", null, 3], "ab", { length: 2 }, { length: "x" }];
const BAD_BLOB_IDS = ["abc.png", "not a uuid", "a".repeat(200), "../x", "a/b", "é", "\uD800"];
const LEASE_KEYS = ["k1", "k2", "k3"];
const LEASE_OWNERS = ["run-a", "run-b", "run-c"];
const TTLS = [-5, 0, 3, 20, 60, 100_000];

function body(r) {
  const data = {};
  if (r.chance(0.85)) data.owner = r.pick(OWNERS);
  if (r.chance(0.7)) data.rank = r.pick(RANKS);
  if (r.chance(0.5)) data.meta = { kind: r.pick(KINDS), deep: { z: [1, "two", null] } };
  if (r.chance(0.4)) data.tags = [r.pick(["t1", "t2", 3]), "u"];
  if (r.chance(0.4)) data.n = r.pick([1, 2, 3, 0.1, -7, 12345678901234567000]);
  if (r.chance(0.3)) data.text = "é ✓ \"quoted\" \\ " + r.int(1000);
  if (r.chance(0.2)) data.empty = {};
  if (r.chance(0.8)) data.list = r.pick(LISTS);
  // Values JSON.stringify changes, where no index reads them: each driver
  // stores what JSON.stringify makes of them. (At an indexed path the
  // reference drivers index the JavaScript value and logstore the stored
  // JSON, see README.md, and the two disagree after a patch or backfill.)
  if (r.chance(0.15)) data.odd = r.pick([NAN, { $: "Infinity" }, { $: "Date", iso: "2001-02-03T04:05:06.007Z" }]);
  return data;
}

function where(r) {
  const w = {};
  const n = r.pick([0, 1, 1, 2]);
  for (let i = 0; i < n; i++) {
    const field = r.chance(0.3) ? "list.length" : r.pick([...FIELDS, "owner", "rank"]);
    w[field] = r.pick(field.endsWith(".length") && r.chance(0.8) ? LENGTHS : WHERE_VALUES);
  }
  if (r.chance(0.05)) w.undeclared = "a";
  return w;
}

/** A sequence of `n` operations, each with the clock time it runs at. */
export function generateOps(seed, n) {
  const r = rng(seed);
  const ops = [];
  let now = START_MS;
  let blobs = 0;
  // Collections start ensured with a few indexes; later ensures add more.
  ops.push({ at: now, op: "ensure", name: "msgs", indexes: ["owner", "rank", "list.length"] });
  ops.push({ at: now, op: "ensure", name: "tasks", indexes: ["owner", "list.length"] });
  for (let i = 0; i < n; i++) {
    now += 1 + r.int(12);
    const collection = r.pick(COLLECTIONS);
    const id = r.pick(IDS);
    const kind = r.next();
    let op;
    if (kind < 0.16) op = { op: "put", collection, id, data: body(r) };
    else if (kind < 0.24) op = { op: "casPut", collection, id, data: body(r), version: r.pick([0, 1, 2, 3, 4]) };
    else if (kind < 0.32) {
      const patch = body(r);
      if (r.chance(0.3)) patch.owner = null;
      op = { op: "patch", collection, id, patch, version: r.pick([1, 2, 3, 4]) };
    } else if (kind < 0.37) op = { op: "delete", collection, id };
    else if (kind < 0.42) op = { op: "get", collection, id };
    else if (kind < 0.55) {
      const q = { collection };
      if (r.chance(0.7)) q.where = where(r);
      if (r.chance(0.7)) q.orderBy = r.pick(ORDER_BY);
      if (r.chance(0.5)) q.orderDir = r.pick(["asc", "desc"]);
      if (r.chance(0.5)) q.limit = r.pick([0, 1, 2, 3, 5, 100]);
      if (r.chance(0.4)) q.offset = r.pick([0, 1, 2, 4]);
      op = { op: "query", q };
    } else if (kind < 0.6) op = { op: "count", collection, where: r.chance(0.8) ? where(r) : undefined };
    else if (kind < 0.61) {
      // On the collections that declare it from the start.
      const where = { "list.length": r.pick(LENGTHS) };
      op = { op: "count", collection: r.pick(["msgs", "tasks"]), where };
    } else if (kind < 0.62) {
      const name = r.pick(["msgs", "tasks", "extra"]);
      const indexes = [...new Set([r.pick(FIELDS), r.pick(FIELDS)])];
      op = { op: "ensure", name, indexes };
    } else if (kind < 0.63) op = { op: "listCollections" };
    else if (kind < 0.68) {
      op = {
        op: "blobPut",
        size: r.pick([0, 1, 100, 5000, 70_000]),
        fill: r.int(256),
        stream: r.chance(0.5),
        mime: r.chance(0.5) ? r.pick(["image/png", "text/plain"]) : undefined,
        ownerId: r.chance(0.6) ? r.pick(["u1", "u2"]) : undefined,
      };
      blobs++;
    } else if (kind < 0.7) op = { op: "blobPut", size: 150_000, fill: 7, stream: r.chance(0.5) };
    else if (kind < 0.73) op = { op: "blobGet", blob: r.int(blobs + 1) };
    else if (kind < 0.75) op = { op: "blobGetMeta", blob: r.int(blobs + 1) };
    else if (kind < 0.765) op = { op: "blobDelete", blob: r.int(blobs + 1) };
    else if (kind < 0.77) {
      // Ids no blob can have: every driver answers null or false. (The
      // SQLite driver's delete of "", "." or ".." throws EISDIR, from
      // removing its blob folder: not generated.)
      const method = r.pick(["get", "getMeta", "delete"]);
      const ids = [...BAD_BLOB_IDS, ...(method === "delete" ? [] : ["", ".", ".."])];
      op = { op: "blobById", method, id: r.pick(ids) };
    } else if (kind < 0.8) {
      const opts = {};
      if (r.chance(0.5)) opts.ownerId = r.pick(["u1", "u2", "u3"]);
      if (r.chance(0.4)) opts.limit = r.pick([0, 1, 2, 10]);
      if (r.chance(0.3)) opts.offset = r.pick([0, 1, 3]);
      op = { op: "blobList", opts };
    } else if (kind < 0.88) op = { op: "acquire", key: r.pick(LEASE_KEYS), owner: r.pick(LEASE_OWNERS), ttl: r.pick(TTLS) };
    else if (kind < 0.92) op = { op: "renew", key: r.pick(LEASE_KEYS), owner: r.pick(LEASE_OWNERS), ttl: r.pick(TTLS) };
    else if (kind < 0.95) op = { op: "release", key: r.pick(LEASE_KEYS), owner: r.pick(LEASE_OWNERS) };
    else if (kind < 0.96) op = { op: "releaseAll", owner: r.pick(LEASE_OWNERS) };
    else if (kind < 0.98) op = { op: "leaseGet", key: r.pick(LEASE_KEYS) };
    else op = { op: "dump" };
    ops.push({ at: now, ...op });
  }
  ops.push({ at: now + 1, op: "dump" });
  ops.push({ at: now + 1, op: "listCollections" });
  return ops;
}

export const blobBytes = (size, fill) => {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + fill) & 255;
  return b;
};

function streamOf(bytes) {
  let off = 0;
  return new ReadableStream({
    pull(c) {
      if (off >= bytes.length) return c.close();
      const n = Math.min(4096, bytes.length - off);
      c.enqueue(bytes.slice(off, off + n));
      off += n;
    },
  });
}

const valueAtPath = (data, path) => {
  let cur = data;
  for (const seg of path.split(".")) {
    if (cur == null || typeof cur !== "object") return undefined;
    cur = cur[seg];
  }
  return cur;
};
const indexValue = (v) =>
  v == null ? null : typeof v === "string" ? v : typeof v === "number" || typeof v === "boolean" ? String(v) : null;

/** A value `generateOps` tagged, made real (in bodies and where values). */
class ToJSON {
  constructor(value) {
    this.value = value;
  }
  toJSON() {
    return this.value;
  }
}
export function materialize(v) {
  if (Array.isArray(v)) return v.map(materialize);
  if (v === null || typeof v !== "object") return v;
  switch (v.$) {
    case "NaN":
      return NaN;
    case "Infinity":
      return Infinity;
    case "-Infinity":
      return -Infinity;
    case "Date":
      return new Date(v.iso);
    case "toJSON":
      return new ToJSON(v.value);
    default:
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, materialize(x)]));
  }
}

/**
 * Rows of a query as the trace records them. Ordered by an index field, the
 * reference drivers break ties differently (the memory driver by insertion,
 * SQLite by its plan), so rows are grouped by the field's value and sorted
 * by id within a group; on a page (limit or offset) the first and last
 * groups may be cut at different rows, so those record only their value
 * and size.
 */
function normalizeRows(rows, q) {
  const field = q.orderBy;
  if (!field || ["createdAt", "updatedAt", "id"].includes(field)) return rows;
  const groups = [];
  for (const row of rows) {
    const key = indexValue(valueAtPath(row.data, field)) ?? "";
    const last = groups[groups.length - 1];
    if (last && last.key === key) last.rows.push(row);
    else groups.push({ key, rows: [row] });
  }
  for (const g of groups) g.rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const paged = q.limit != null || q.offset != null;
  return groups.map((g, i) =>
    paged && (i === 0 || i === groups.length - 1) ? { key: g.key, size: g.rows.length } : g,
  );
}

/**
 * Plays `ops` against `stores`; `setClock(ms)` sets the driver's clock
 * before each operation. Returns one trace entry per operation.
 */
export async function runOps(stores, ops, setClock) {
  const blobIds = []; // the k-th blob put -> its id in this driver
  const name = (id) => {
    const k = blobIds.indexOf(id);
    return k < 0 ? `unknown:${id}` : `blob#${k}`;
  };
  const meta = (m) => (m ? { ...m, id: name(m.id) } : m);
  const idOf = (k) => blobIds[k] ?? "00000000-0000-4000-8000-000000000000";
  const trace = [];
  for (const o of ops) {
    setClock(o.at);
    let out;
    try {
      switch (o.op) {
        case "ensure":
          out = await stores.docs.ensureCollection({ name: o.name, indexes: o.indexes });
          break;
        case "listCollections":
          out = await stores.docs.listCollections();
          break;
        case "put":
          out = await stores.docs.put(o.collection, o.id, materialize(o.data));
          break;
        case "casPut":
          out = await stores.docs.put(o.collection, o.id, materialize(o.data), o.version);
          break;
        case "patch":
          out = await stores.docs.patch(o.collection, o.id, materialize(o.patch), o.version);
          break;
        case "delete":
          out = await stores.docs.delete(o.collection, o.id);
          break;
        case "get":
          out = await stores.docs.get(o.collection, o.id);
          break;
        case "query":
          out = normalizeRows(await stores.docs.query({ ...o.q, where: materialize(o.q.where) }), o.q);
          break;
        case "count":
          out = await stores.docs.count(o.collection, materialize(o.where));
          break;
        case "dump": {
          out = {};
          for (const c of COLLECTIONS) {
            out[c] = await stores.docs.query({ collection: c, orderBy: "id", limit: 1000 });
          }
          break;
        }
        case "blobPut": {
          const bytes = blobBytes(o.size, o.fill);
          const opts = {};
          if (o.mime !== undefined) opts.mime = o.mime;
          if (o.ownerId !== undefined) opts.ownerId = o.ownerId;
          const m = await stores.blobs.put(o.stream ? streamOf(bytes) : bytes, opts);
          blobIds.push(m.id);
          out = meta(m);
          break;
        }
        case "blobGet": {
          const got = await stores.blobs.get(idOf(o.blob));
          if (!got) out = null;
          else {
            const buf = new Uint8Array(await new Response(got.stream).arrayBuffer());
            out = {
              meta: meta(got.meta),
              size: buf.length,
              sha256: createHash("sha256").update(buf).digest("hex"),
            };
          }
          break;
        }
        case "blobGetMeta":
          out = meta(await stores.blobs.getMeta(idOf(o.blob)));
          break;
        case "blobDelete":
          out = await stores.blobs.delete(idOf(o.blob));
          break;
        case "blobById": {
          const got = await stores.blobs[o.method](o.id);
          out = o.method === "get" && got ? { meta: meta(got.meta) } : got;
          break;
        }
        case "blobList":
          out = (await stores.blobs.list(o.opts)).map(meta);
          break;
        case "acquire":
          out = await stores.leases.acquire(o.key, o.owner, o.ttl);
          break;
        case "renew":
          out = await stores.leases.renew(o.key, o.owner, o.ttl);
          break;
        case "release":
          out = await stores.leases.release(o.key, o.owner);
          break;
        case "releaseAll":
          out = await stores.leases.releaseAll(o.owner);
          break;
        case "leaseGet":
          out = await stores.leases.get(o.key);
          break;
        default:
          throw new Error(`unknown op ${o.op}`);
      }
      trace.push({ op: o.op, ok: out === undefined ? "void" : out });
    } catch (e) {
      trace.push({ op: o.op, error: e instanceof Error ? e.message : String(e) });
    }
  }
  return trace;
}
