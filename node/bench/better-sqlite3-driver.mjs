// A PatternStores driver on better-sqlite3, written as a careful author
// would: the published SQLite driver's tables and index rows, WAL, every
// statement prepared once and cached (the published driver prepares each
// call), one write a transaction, rows read back with RETURNING (each
// stepped to its end, so SQLite's automatic checkpoint runs), and blob
// bytes kept in a table (one synced write, no file per blob). The benchmark's
// peer at equal durability: synchronous=FULL against logstore `sync`,
// synchronous=NORMAL against `flush`. Not part of the package.
//
// better-sqlite3 12 is a V8 addon built for one Node ABI; bench/peers-build.mjs
// builds it for the Node 24 binary the benchmark runs under. Its wrappers
// (databases, statements, iterators) derive from node::ObjectWrap, whose
// destructor aborts the process under Node 24.19 and later headers when a
// garbage collection runs it outside a JavaScript context (Node issue 65446;
// better-sqlite3 13 avoids it but needs Node 22). So no wrapper here ever
// becomes garbage: pragmas go through exec, backfills read with all() rather
// than an iterator, and every store opened is kept in RETAINED until the
// process exits (a closed one holds no file or SQLite memory).
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";

const require = createRequire(import.meta.url);
const RETAINED = [];

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS store_collections (
    name TEXT PRIMARY KEY, indexes TEXT NOT NULL DEFAULT '[]', created_at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS store_docs (
    collection TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    PRIMARY KEY (collection, id));
  CREATE TABLE IF NOT EXISTS store_index (
    collection TEXT NOT NULL, doc_id TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (collection, doc_id, field));
  CREATE INDEX IF NOT EXISTS idx_store_index_lookup ON store_index(collection, field, value);
  CREATE TABLE IF NOT EXISTS store_blobs (
    id TEXT PRIMARY KEY, mime TEXT NOT NULL DEFAULT 'application/octet-stream', size INTEGER NOT NULL,
    owner_id TEXT, created_at INTEGER NOT NULL, bytes BLOB NOT NULL);
  CREATE INDEX IF NOT EXISTS idx_store_blobs_owner ON store_blobs(owner_id, created_at);
  CREATE INDEX IF NOT EXISTS idx_store_blobs_created ON store_blobs(created_at);
  CREATE TABLE IF NOT EXISTS store_leases (
    key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at INTEGER NOT NULL,
    version INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
  CREATE INDEX IF NOT EXISTS idx_store_leases_owner ON store_leases(owner);
`;

/** The reference drivers' index string of a value (`null`: not indexed). */
function indexValue(v) {
  if (v == null) return null;
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return null;
}

function valueAtPath(data, path) {
  let cur = data;
  for (const seg of path.split(".")) {
    if (cur == null || typeof cur !== "object") return undefined;
    cur = cur[seg];
  }
  return cur;
}

/**
 * The row a write `... RETURNING` statement answers, run outside a
 * transaction. `all` steps it to its end, where SQLite commits the implicit
 * transaction and runs its WAL hook, the automatic checkpoint; `get` would
 * reset it after the first row, which commits without the hook, so the WAL
 * grows with every such write until a write through `db.transaction` (whose
 * COMMIT is stepped) checkpoints all of it at once.
 */
const returning = (stmt, ...args) => stmt.all(...args)[0];

const toDoc = (r) => ({
  id: r.id,
  collection: r.collection,
  data: JSON.parse(r.data),
  version: r.version,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});
const toBlobMeta = (r) => ({ id: r.id, mime: r.mime, size: r.size, ownerId: r.owner_id ?? null, createdAt: r.created_at });
const toLease = (r) => ({
  key: r.key,
  owner: r.owner,
  expiresAt: r.expires_at,
  version: r.version,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

async function bufferStream(stream, maxBytes) {
  const chunks = [];
  let total = 0;
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const chunk = typeof value === "string" ? new TextEncoder().encode(value) : value;
      total += chunk.byteLength;
      if (total > maxBytes) throw new Error(`store: blob exceeds the ${maxBytes}-byte cap`);
      chunks.push(chunk);
    }
  } finally {
    reader.releaseLock();
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

class Docs {
  constructor(db) {
    this.db = db;
    this.indexes = new Map();
    this.shapes = new Map(); // query and count statements, by their shape
    const p = (sql) => db.prepare(sql);
    this.s = {
      indexesOf: p("SELECT indexes FROM store_collections WHERE name = ?"),
      addCollection: p("INSERT OR IGNORE INTO store_collections (name, indexes, created_at) VALUES (?, '[]', ?)"),
      setIndexes: p("UPDATE store_collections SET indexes = ? WHERE name = ?"),
      allDocs: p("SELECT id, data FROM store_docs WHERE collection = ?"),
      list: p(`SELECT c.name, c.indexes, COUNT(d.id) AS n
        FROM store_collections c LEFT JOIN store_docs d ON d.collection = c.name
        GROUP BY c.name ORDER BY c.name ASC`),
      get: p("SELECT * FROM store_docs WHERE collection = ? AND id = ?"),
      upsert: p(`INSERT INTO store_docs (collection, id, data, version, created_at, updated_at) VALUES (?, ?, ?, 1, ?, ?)
        ON CONFLICT(collection, id) DO UPDATE SET
          data = excluded.data, version = store_docs.version + 1, updated_at = excluded.updated_at
        RETURNING *`),
      cas: p(`UPDATE store_docs SET data = ?, version = version + 1, updated_at = ?
        WHERE collection = ? AND id = ? AND version = ? RETURNING *`),
      delete: p("DELETE FROM store_docs WHERE collection = ? AND id = ?"),
      dropIndexRows: p("DELETE FROM store_index WHERE collection = ? AND doc_id = ?"),
      addIndexRow: p("INSERT OR REPLACE INTO store_index (collection, doc_id, field, value) VALUES (?, ?, ?, ?)"),
    };
    this.writeTx = db.transaction((collection, id, data, expectedVersion) => {
      const text = JSON.stringify(data);
      const now = Date.now();
      const row =
        expectedVersion == null
          ? this.s.upsert.get(collection, id, text, now, now)
          : this.s.cas.get(text, now, collection, id, expectedVersion);
      if (!row) return null;
      this.s.dropIndexRows.run(collection, id);
      for (const field of this.indexesOf(collection)) {
        const v = indexValue(valueAtPath(data, field));
        if (v != null) this.s.addIndexRow.run(collection, id, field, v);
      }
      return row;
    });
    this.deleteTx = db.transaction((collection, id) => {
      const changes = this.s.delete.run(collection, id).changes;
      this.s.dropIndexRows.run(collection, id);
      return changes === 1;
    });
    this.ensureTx = db.transaction((name, added, next) => {
      this.s.setIndexes.run(JSON.stringify(next), name);
      for (const raw of this.s.allDocs.all(name)) {
        const data = JSON.parse(raw.data);
        for (const field of added) {
          const v = indexValue(valueAtPath(data, field));
          if (v != null) this.s.addIndexRow.run(name, raw.id, field, v);
        }
      }
    });
  }

  indexesOf(collection) {
    let idx = this.indexes.get(collection);
    if (!idx) {
      const r = this.s.indexesOf.get(collection);
      idx = r ? JSON.parse(r.indexes) : [];
      this.indexes.set(collection, idx);
    }
    return idx;
  }

  async ensureCollection(def) {
    this.s.addCollection.run(def.name, Date.now());
    const existing = this.indexesOf(def.name);
    const added = [...new Set(def.indexes)].filter((f) => !existing.includes(f));
    if (added.length === 0) return;
    const next = [...existing, ...added];
    this.ensureTx(def.name, added, next);
    this.indexes.set(def.name, next);
  }

  async listCollections() {
    return this.s.list.all().map((r) => ({ name: r.name, indexes: JSON.parse(r.indexes), docCount: r.n }));
  }

  async get(collection, id) {
    const r = this.s.get.get(collection, id);
    return r ? toDoc(r) : null;
  }

  async put(collection, id, data, expectedVersion) {
    const row = this.writeTx(collection, id, data, expectedVersion);
    return row ? toDoc(row) : null;
  }

  async patch(collection, id, patch, expectedVersion) {
    const current = this.s.get.get(collection, id);
    if (!current || current.version !== expectedVersion) return null;
    return this.put(collection, id, { ...JSON.parse(current.data), ...patch }, expectedVersion);
  }

  async delete(collection, id) {
    return this.deleteTx(collection, id);
  }

  /** The cached statement for a where (and order) shape, and its parameters. */
  shape(kind, collection, where, orderBy, dir) {
    const fields = Object.keys(where);
    const declared = this.indexesOf(collection);
    for (const f of fields) {
      if (!declared.includes(f)) {
        throw new Error(`store: field "${f}" is not indexed on collection "${collection}" — declare it via ensureCollection`);
      }
    }
    let order = "";
    if (kind === "query") {
      order = `d.created_at ${dir}, d.id ${dir}`;
      if (orderBy === "updatedAt") order = `d.updated_at ${dir}, d.id ${dir}`;
      else if (orderBy === "id") order = `d.id ${dir}`;
      else if (orderBy && orderBy !== "createdAt") {
        if (!declared.includes(orderBy)) {
          throw new Error(`store: orderBy "${orderBy}" is not indexed on collection "${collection}"`);
        }
        order = `o.value ${dir}, d.id ${dir}`;
      }
    }
    const ordered = kind === "query" && order.startsWith("o.");
    const key = `${kind}\0${fields.join("\0")}\0${ordered}\0${order}`;
    let stmt = this.shapes.get(key);
    if (!stmt) {
      const joins = fields
        .map((_f, i) => ` JOIN store_index ix${i} ON ix${i}.collection = d.collection AND ix${i}.doc_id = d.id`)
        .join("");
      // An ordered field a row lacks sorts first, as the published driver's subquery (NULL) does.
      const orderJoin = ordered
        ? " LEFT JOIN store_index o ON o.collection = d.collection AND o.doc_id = d.id AND o.field = ?"
        : "";
      const conds = fields.map((_f, i) => ` AND ix${i}.field = ? AND ix${i}.value = ?`).join("");
      stmt =
        kind === "query"
          ? this.db.prepare(
              `SELECT d.* FROM store_docs d${joins}${orderJoin} WHERE d.collection = ?${conds} ORDER BY ${order} LIMIT ? OFFSET ?`,
            )
          : this.db.prepare(`SELECT COUNT(*) AS n FROM store_docs d${joins} WHERE d.collection = ?${conds}`);
      this.shapes.set(key, stmt);
    }
    const params = [];
    if (ordered) params.push(orderBy);
    params.push(collection);
    for (const f of fields) params.push(f, indexValue(where[f]) ?? "");
    return { stmt, params };
  }

  async query(opts) {
    const dir = opts.orderDir === "desc" ? "DESC" : "ASC";
    const { stmt, params } = this.shape("query", opts.collection, opts.where ?? {}, opts.orderBy, dir);
    return stmt.all(...params, opts.limit ?? 100, opts.offset ?? 0).map(toDoc);
  }

  async count(collection, where = {}) {
    const { stmt, params } = this.shape("count", collection, where);
    return stmt.get(...params).n;
  }
}

class Blobs {
  constructor(db, maxBytes) {
    this.maxBytes = maxBytes;
    const p = (sql) => db.prepare(sql);
    this.s = {
      put: p(`INSERT INTO store_blobs (id, mime, size, owner_id, created_at, bytes) VALUES (?, ?, ?, ?, ?, ?)
        RETURNING id, mime, size, owner_id, created_at`),
      meta: p("SELECT id, mime, size, owner_id, created_at FROM store_blobs WHERE id = ?"),
      get: p("SELECT id, mime, size, owner_id, created_at, bytes FROM store_blobs WHERE id = ?"),
      delete: p("DELETE FROM store_blobs WHERE id = ?"),
      listOwner: p(`SELECT id, mime, size, owner_id, created_at FROM store_blobs WHERE owner_id = ?
        ORDER BY created_at DESC LIMIT ? OFFSET ?`),
      list: p("SELECT id, mime, size, owner_id, created_at FROM store_blobs ORDER BY created_at DESC LIMIT ? OFFSET ?"),
    };
  }

  async put(data, opts = {}) {
    const bytes = data instanceof Uint8Array ? data : await bufferStream(data, this.maxBytes);
    if (bytes.byteLength > this.maxBytes) throw new Error(`store: blob exceeds the ${this.maxBytes}-byte cap`);
    const row = returning(
      this.s.put,
      crypto.randomUUID(),
      opts.mime ?? "application/octet-stream",
      bytes.byteLength,
      opts.ownerId ?? null,
      Date.now(),
      bytes,
    );
    return toBlobMeta(row);
  }

  async getMeta(id) {
    const r = this.s.meta.get(id);
    return r ? toBlobMeta(r) : null;
  }

  async get(id) {
    const r = this.s.get.get(id);
    if (!r) return null;
    const bytes = new Uint8Array(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength);
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(bytes);
        controller.close();
      },
    });
    return { meta: toBlobMeta(r), stream };
  }

  async delete(id) {
    return this.s.delete.run(id).changes === 1;
  }

  async list(opts = {}) {
    const rows =
      opts.ownerId != null
        ? this.s.listOwner.all(opts.ownerId, opts.limit ?? 100, opts.offset ?? 0)
        : this.s.list.all(opts.limit ?? 100, opts.offset ?? 0);
    return rows.map(toBlobMeta);
  }
}

class Leases {
  constructor(db) {
    const p = (sql) => db.prepare(sql);
    this.s = {
      acquire: p(`INSERT INTO store_leases (key, owner, expires_at, version, created_at, updated_at) VALUES (?, ?, ?, 1, ?, ?)
        ON CONFLICT(key) DO UPDATE SET
          owner = excluded.owner, expires_at = excluded.expires_at,
          version = store_leases.version + 1, updated_at = excluded.updated_at
        WHERE store_leases.expires_at < ? OR store_leases.owner = excluded.owner
        RETURNING *`),
      renew: p(`UPDATE store_leases SET expires_at = ?, version = version + 1, updated_at = ?
        WHERE key = ? AND owner = ? AND expires_at >= ? RETURNING *`),
      release: p("DELETE FROM store_leases WHERE key = ? AND owner = ?"),
      releaseAll: p("DELETE FROM store_leases WHERE owner = ?"),
      get: p("SELECT * FROM store_leases WHERE key = ?"),
    };
  }

  // One statement, so no other writer comes between the claim and the
  // answer: SQLite runs it in one implicit transaction.
  async acquire(key, owner, ttlMs) {
    const now = Date.now();
    const row = returning(this.s.acquire, key, owner, now + ttlMs, now, now, now);
    if (row) return { ok: true, lease: toLease(row) };
    const held = this.s.get.get(key);
    return { ok: false, owner: held.owner, expiresAt: held.expires_at };
  }

  async renew(key, owner, ttlMs) {
    const now = Date.now();
    const row = returning(this.s.renew, now + ttlMs, now, key, owner, now);
    if (row) return { ok: true, lease: toLease(row) };
    const held = this.s.get.get(key);
    return { ok: false, owner: held?.owner ?? "", expiresAt: held?.expires_at ?? 0 };
  }

  async release(key, owner) {
    this.s.release.run(key, owner);
  }

  async releaseAll(owner) {
    return this.s.releaseAll.run(owner).changes;
  }

  async get(key) {
    const r = this.s.get.get(key);
    return r ? toLease(r) : null;
  }
}

/**
 * Opens (or creates) the store at `file` in WAL mode with the given
 * `synchronous` ("FULL": a commit returns after its fsync; "NORMAL": the WAL
 * is synced only at checkpoints, so a power loss may lose the last commits).
 */
export function betterSqlitePatternStores(file, { synchronous = "FULL", maxBlobBytes = 25 * 1024 * 1024 } = {}) {
  if (synchronous !== "FULL" && synchronous !== "NORMAL") {
    throw new TypeError(`synchronous must be "FULL" or "NORMAL", not ${JSON.stringify(synchronous)}`);
  }
  const Database = require("better-sqlite3");
  mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  try {
    db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = ${synchronous};`);
    db.exec(SCHEMA);
  } catch (err) {
    db.close();
    throw err;
  }
  let closed = false;
  const stores = {
    docs: new Docs(db),
    blobs: new Blobs(db, maxBlobBytes),
    leases: new Leases(db),
    close: async () => {
      if (!closed) db.close();
      closed = true;
    },
  };
  RETAINED.push(db, stores);
  return stores;
}
