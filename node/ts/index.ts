/**
 * `@logstore/pattern-stores`: logstore as a `PatternStores` driver for
 * `@pattern-js/mod-store`, with the reference drivers' argument handling,
 * nulls, lease results and error messages.
 *
 * The native addon does the work; this layer turns arguments into what it
 * takes (JSON text for bodies, index strings for `where` values) and parses
 * what it returns.
 */
import { createRequire } from "node:module";

import {
  indexValue,
  type AcquireResult,
  type BlobMeta,
  type BlobStore,
  type CollectionDef,
  type DocumentRow,
  type DocumentStore,
  type LeaseRow,
  type LeaseStore,
  type PatternStores,
  type QueryOptions,
} from "./types.js";

export * from "./types.js";

// The loader napi-rs generates is CommonJS.
const require = createRequire(import.meta.url);
const native = require("../native/binding.cjs") as typeof import("../native/binding.js");
type NativeStore = import("../native/binding.js").NativeStore;

export interface LogstoreOptions {
  /**
   * The store directory (created if missing; one process writes it). Give
   * exactly one of `dir` and `url`.
   */
  dir?: string;
  /**
   * A PostgreSQL connection URL (`postgres://user:pass@host/db`): the
   * project's PostgreSQL driver serves the same stores, so several
   * processes and machines can share them. Give exactly one of `dir` and
   * `url`.
   */
  url?: string;
  /**
   * With `url`: the schema the store's tables live in (ASCII letters,
   * digits and `_`). Default: the URL's `options=-csearch_path=...`, or
   * `logstore`.
   */
  schema?: string;
  /**
   * With `dir`: follow the store read-only, beside the process that writes
   * it. Reads catch up with the writer's acknowledged writes; every write
   * rejects. Opening a directory that holds no store rejects and creates
   * nothing.
   */
  readOnly?: boolean;
  /** The blob cap in bytes (default 25 MiB, as the reference drivers). */
  maxBlobBytes?: number;
  /**
   * `"sync"` (default): a write resolves once it is on stable storage, as
   * the reference SQLite driver's WAL with synchronous=FULL. `"flush"`: once
   * the OS has it (survives a process crash, not a power loss). With `url`
   * it is the server's commit: `"sync"` waits for its WAL flush
   * (synchronous_commit=on), `"flush"` does not (a server crash may lose the
   * last commits).
   */
  durability?: "sync" | "flush";
}

/** What `backup` copied. */
export interface BackupReport {
  /** Segment files copied, and their bytes. */
  segments: number;
  segmentBytes: number;
  /** Blob content files copied, and their bytes. */
  blobFiles: number;
  blobBytes: number;
  /** What the copy holds. */
  documents: number;
  blobs: number;
  leases: number;
}

/** The stores, and what only this driver does. */
export interface LogstorePatternStores extends PatternStores {
  /**
   * Copies a log store as it stands at one moment into `dest` (missing, or
   * an empty directory) while writes go on, makes the copy durable, and
   * opens and verifies it before resolving. Works on a read-only handle
   * too. A PostgreSQL store rejects: back it up with the server's tools.
   */
  backup(dest: string): Promise<BackupReport>;
}

const DEFAULT_MAX_BLOB_BYTES = 25 * 1024 * 1024;
/** Bytes a blob read hands to JavaScript at a time. */
const READ_CHUNK = 256 * 1024;

/**
 * Where `blobGetSync` writes a blob's bytes, copied out at once: one for
 * the module, as only the JavaScript thread uses it.
 */
const scratch = Buffer.allocUnsafeSlow(64 * 1024);

/** A stream of bytes already read: one chunk, or none for an empty blob. */
function wholeStream(buf: Buffer): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (buf.byteLength > 0) controller.enqueue(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
      controller.close();
    },
  });
}

const capError = (max: number) => new Error(`store: blob exceeds the ${max}-byte cap`);

/**
 * napi-rs rejects with an Error that also carries `code`; the reference
 * drivers throw plain Errors, so the message moves to one of those.
 */
function plain(e: unknown): never {
  if (e instanceof Error && (e as { code?: unknown }).code === "GenericFailure") {
    throw new Error(e.message);
  }
  throw e;
}
const call = <T>(p: Promise<T>): Promise<T> => p.catch(plain);
function callSync<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    return plain(e);
  }
}

type Write = import("../native/binding.js").Write;

/**
 * A `flush` store's document and lease writes first run on the JavaScript
 * thread through the addon's `*Now` methods, which never block: a write
 * that would wait for the disk or another writer (a roll to a new segment,
 * a writer lock a pooled call holds) answers `null` having written
 * nothing, and only then goes to the worker pool (through the `Batcher`).
 * A `sync` write always waits for its sync, so it goes straight to the
 * pool.
 */
function runNow(n: NativeStore, w: Write): string | null {
  switch (w.op) {
    case "put":
      return n.putNow(w.collection, w.id, w.body, w.expectedVersion);
    case "patch":
      return n.patchNow(w.collection, w.id, w.body, w.expectedVersion);
    case "delete":
      return n.deleteNow(w.collection, w.id);
    case "acquire":
      return n.acquireNow(w.key, w.owner, w.ttlMs);
    case "renew":
      return n.renewNow(w.key, w.owner, w.ttlMs);
    case "release":
      return n.releaseNow(w.key, w.owner);
    case "releaseAll":
      return n.releaseAllNow(w.owner);
    default: {
      const unhandled: never = w;
      throw new Error(`store: no write called ${JSON.stringify(unhandled)}`);
    }
  }
}

/** The engine's message for a call on a closed handle. */
const CLOSED = "store: the store is closed; open it again to use it";

const READ_ONLY =
  "store: the store is open read-only (readOnly: true); write through a handle opened without readOnly";

/**
 * What a handle's engine allows and where its reads run. A log store's
 * gets, counts and small queries run on the JavaScript thread; a
 * PostgreSQL store's reads are server round trips, so every one goes to
 * the pool, and its writes never run in place.
 *
 * A read-only handle follows a writer: before a read it catches up with
 * the writer's appends (`refresh`, on the pool), at most once for the reads
 * called in one synchronous run of JavaScript, which share it. A read
 * called later starts its own, so it sees every write acknowledged before
 * it was called. A refresh that finds nothing new reads the manifest twice,
 * lists the directory and reads the newest segment's tail, on the pool.
 */
class Access {
  private refreshing: Promise<void> | null = null;

  constructor(
    private readonly n: NativeStore,
    readonly postgres: boolean,
    readonly readOnly: boolean,
  ) {}

  /** Reads may run on the JavaScript thread. */
  get inThread(): boolean {
    return !this.postgres;
  }

  /**
   * Settles once a read-only handle's view holds every write acknowledged
   * before this call. Reads call it only on a read-only handle, so the
   * others' in-thread reads still answer without a turn of the event loop.
   */
  ready(): Promise<void> {
    if (this.refreshing === null) {
      const p = call(this.n.refresh());
      this.refreshing = p;
      queueMicrotask(() => {
        if (this.refreshing === p) this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  /** Throws on a read-only handle, before a write touches anything. */
  writable(): void {
    if (this.readOnly) throw new Error(READ_ONLY);
  }
}

/**
 * UTF-8 bytes of a body the addon parses on the JavaScript thread in a
 * write in place: the byte limit of its in-place reads (64 KiB). A
 * larger body goes to the pool, which parses it there.
 */
const IN_PLACE_BODY_BYTES = 64 * 1024;

/**
 * A UTF-16 unit is 1 to 3 bytes of UTF-8, so the bytes are counted only
 * for a body whose length leaves the answer open.
 */
const tooLargeInPlace = (w: Write): boolean =>
  "body" in w &&
  (w.body.length > IN_PLACE_BODY_BYTES ||
    (w.body.length * 3 > IN_PLACE_BODY_BYTES && Buffer.byteLength(w.body, "utf8") > IN_PLACE_BODY_BYTES));

/**
 * Writes that go to the pool (every `sync` write, and a `flush` write that
 * would wait) run in the order they were called, in batches: one
 * `writeBatch` job at a time, each taking every write queued while the one
 * before ran, applied in call order under one sync (`LogStore::batch`). A
 * write queued while no job runs is sent once the code running now and the
 * promise reactions queued behind it are done (`queueMicrotask`), so
 * concurrent writers whose writes just settled queue their next ones into
 * one batch. While a write is queued or a job runs, a `flush` store's
 * writes queue too instead of running in place, so none overtakes an
 * earlier one.
 *
 * One queue serves an engine, shared by every handle on it (a second open
 * of a directory in this process), so their writes keep one call order.
 */
class WriteQueue {
  private queue: Array<{
    via: Batcher;
    write: Write;
    resolve: (text: string) => void;
    reject: (e: unknown) => void;
  }> = [];
  /** A `writeBatch` job runs. */
  private inFlight = false;
  /** Writes queued or in a job, per handle, and who waits for them to settle. */
  private pending = new Map<Batcher, { count: number; waiters: Array<() => void> }>();

  constructor(
    /** A `flush` store: writes try the JavaScript thread first. */
    private readonly inPlace: boolean,
  ) {}

  /**
   * A write's answer as JSON text: run in place through `n` when the store
   * is `flush` and nothing is queued or running and the engine need not
   * wait (see `runNow`), otherwise queued.
   */
  async submit(via: Batcher, write: Write): Promise<string> {
    if (this.inPlace && this.idle && !tooLargeInPlace(write)) {
      const text = callSync(() => runNow(via.n, write));
      if (text !== null) return text;
    }
    return this.run(via, write);
  }

  /** True when no write is queued and no job runs. */
  get idle(): boolean {
    return !this.inFlight && this.queue.length === 0;
  }

  private run(via: Batcher, write: Write): Promise<string> {
    return new Promise((resolve, reject) => {
      if (this.idle) queueMicrotask(() => this.send());
      this.queue.push({ via, write, resolve, reject });
      const mine = this.pending.get(via) ?? { count: 0, waiters: [] };
      mine.count += 1;
      this.pending.set(via, mine);
    });
  }

  /** Settles once every write queued through `via` so far has settled. */
  drained(via: Batcher): Promise<void> {
    const mine = this.pending.get(via);
    return mine === undefined ? Promise.resolve() : new Promise((resolve) => mine.waiters.push(resolve));
  }

  private settled(via: Batcher): void {
    const mine = this.pending.get(via);
    if (mine === undefined) return;
    mine.count -= 1;
    if (mine.count === 0) {
      this.pending.delete(via);
      for (const done of mine.waiters) done();
    }
  }

  private send(): void {
    const batch = this.queue;
    this.queue = [];
    this.inFlight = true;
    let sent: Promise<Array<{ text?: string | null; error?: string | null }>>;
    try {
      // Any open handle reaches the engine (a closed one rejects the whole
      // batch): the first one whose write is in it and that is not closed.
      const via = batch.find((q) => !q.via.closed)?.via ?? batch[0].via;
      sent = via.n.writeBatch(batch.map((q) => q.write));
    } catch (e) {
      sent = Promise.reject(e);
    }
    sent
      .then(
        (outcomes) =>
          outcomes.forEach((o, i) =>
            o.error != null ? batch[i].reject(new Error(o.error)) : batch[i].resolve(o.text ?? "null"),
          ),
        (e) => {
          for (const q of batch) q.reject(e instanceof Error ? new Error(e.message) : e);
        },
      )
      .finally(() => {
        this.inFlight = false;
        for (const q of batch) this.settled(q.via);
        // Queued while this job ran: the next batch, at once.
        if (this.queue.length > 0) this.send();
      });
  }
}

/**
 * The write queues of the engines open in this process, by `engineId`,
 * with the handles using each: kept on `globalThis`, so a reloaded copy of
 * this module (which opens a second handle on the first copy's engine)
 * finds the same queue.
 */
const QUEUES_KEY = Symbol.for("@logstore/pattern-stores: write queues");
type Queues = Map<number, { queue: WriteQueue; handles: number }>;
const queues: Queues = ((globalThis as Record<symbol, unknown>)[QUEUES_KEY] as Queues | undefined) ??
  ((globalThis as Record<symbol, unknown>)[QUEUES_KEY] = new Map() as Queues);

/** One handle's way into its engine's write queue. */
class Batcher {
  private readonly id: number;
  private readonly queue: WriteQueue;
  /** `release` ran: the handle is closing or closed. */
  closed = false;

  constructor(
    readonly n: NativeStore,
    inPlace: boolean,
  ) {
    this.id = n.engineId();
    let entry = queues.get(this.id);
    if (entry === undefined) {
      entry = { queue: new WriteQueue(inPlace), handles: 0 };
      queues.set(this.id, entry);
    }
    entry.handles += 1;
    this.queue = entry.queue;
  }

  submit(write: Write): Promise<string> {
    // As the engine answers a closed handle: a write queued now could go
    // to the engine through another, open handle.
    if (this.closed) return Promise.reject(new Error(CLOSED));
    return this.queue.submit(this, write);
  }

  /** Settles once every write of this handle called so far has settled. */
  drained(): Promise<void> {
    return this.queue.drained(this);
  }

  /** This handle is closing: the engine's last one forgets its queue. */
  release(): void {
    if (this.closed) return;
    this.closed = true;
    const entry = queues.get(this.id);
    if (entry !== undefined && entry.queue === this.queue && --entry.handles === 0) queues.delete(this.id);
  }
}

/**
 * A handle's writes that do not go through its write queue (blob writes,
 * `ensureCollection`), each its own pooled call: `close()` waits for them
 * too, or the engine could close under them.
 */
class Tracked {
  private readonly running = new Set<Promise<unknown>>();

  track<T>(p: Promise<T>): Promise<T> {
    this.running.add(p);
    const done = () => this.running.delete(p);
    p.then(done, done);
    return p;
  }

  /** Settles once every write tracked so far, and any tracked meanwhile, has. */
  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }
}

const parse = <T>(text: string): T => JSON.parse(text) as T;
const parseOrNull = <T>(text: string | null): T | null => (text == null ? null : parse<T>(text));

/** True when JSON.stringify keeps every top-level key of `patch`. */
function isPlainPatch(patch: unknown): patch is Record<string, unknown> {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return false;
  const proto = Object.getPrototypeOf(patch);
  if (proto !== Object.prototype && proto !== null) return false;
  for (const v of Object.values(patch)) {
    if (v === undefined || typeof v === "function" || typeof v === "symbol") return false;
  }
  return true;
}

/**
 * `value` as a string (as `String` makes it) for an argument the engine keys
 * on. napi-rs turns a lone surrogate into U+FFFD on its way to Rust, so two
 * different ids would name one row: a string that is not well-formed
 * UTF-16 is a `TypeError` naming the argument, thrown before anything runs.
 */
function wellFormed(value: unknown, name: string): string {
  const s = String(value);
  if (!(s as unknown as { isWellFormed(): boolean }).isWellFormed()) {
    throw new TypeError(`store: ${name} is not well-formed UTF-16 (it holds a lone surrogate)`);
  }
  return s;
}

/** `wellFormed` for an optional argument: null and undefined stay undefined. */
const optionalWellFormed = (value: unknown, name: string): string | undefined =>
  value == null ? undefined : wellFormed(value, name);

/** The where fields and their index strings (the reference's `indexValue(v) ?? ""`). */
function whereArgs(where: Record<string, unknown>): [string[], string[]] {
  const fields = Object.keys(where).map((f) => wellFormed(f, "a where field name"));
  return [fields, fields.map((f) => wellFormed(indexValue(where[f]) ?? "", `the where value of "${f}"`))];
}

const numberOrUndefined = (v: unknown): number | undefined => (v == null ? undefined : Number(v));

class LogDocumentStore implements DocumentStore {
  constructor(
    private readonly n: NativeStore,
    private readonly batch: Batcher,
    private readonly access: Access,
    private readonly tracked: Tracked,
  ) {}

  async ensureCollection(def: CollectionDef): Promise<void> {
    const name = wellFormed(def.name, "the collection name");
    const indexes = def.indexes.map((f) => wellFormed(f, "an index field"));
    this.access.writable();
    await this.tracked.track(call(this.n.ensureCollection(name, indexes)));
  }

  async listCollections(): Promise<Array<CollectionDef & { docCount: number }>> {
    if (this.access.readOnly) await this.access.ready();
    return parse(await call(this.n.listCollections()));
  }

  /** The row's version, createdAt and updatedAt, from `getSync`. */
  private readonly meta = new Float64Array(3);

  async get(collection: string, id: string): Promise<DocumentRow | null> {
    const [c, i] = [wellFormed(collection, "collection"), wellFormed(id, "id")];
    if (this.access.readOnly) await this.access.ready();
    if (!this.access.inThread) return parseOrNull(await call(this.n.get(c, i)));
    const got = callSync(() => this.n.getSync(c, i, this.meta));
    if (got === null) return null;
    // A record too large to read on this thread, or a busy lock (`getSync`
    // answers false): the pool's get, which answers the whole row.
    if (got === false) return parseOrNull(await call(this.n.get(c, i)));
    const m = this.meta;
    return { id: i, collection: c, data: JSON.parse(got), version: m[0], createdAt: m[1], updatedAt: m[2] };
  }

  async put(
    collection: string,
    id: string,
    data: Record<string, unknown>,
    expectedVersion?: number,
  ): Promise<DocumentRow | null> {
    const [c, i] = [wellFormed(collection, "collection"), wellFormed(id, "id")];
    // As the SQLite driver: the body is what JSON.stringify makes of it, and
    // a value it rejects (a cycle, a BigInt) throws its TypeError.
    this.access.writable();
    const body = JSON.stringify(data);
    if (typeof body !== "string") {
      throw new TypeError("store: document data must be a JSON object");
    }
    const write: Write = { op: "put", collection: c, id: i, body, expectedVersion: numberOrUndefined(expectedVersion) };
    return parseOrNull(await this.batch.submit(write));
  }

  async patch(
    collection: string,
    id: string,
    patch: Record<string, unknown>,
    expectedVersion: number,
  ): Promise<DocumentRow | null> {
    const [c, i] = [wellFormed(collection, "collection"), wellFormed(id, "id")];
    this.access.writable();
    if (typeof expectedVersion !== "number") return null;
    if (isPlainPatch(patch)) {
      let body: string | undefined;
      try {
        body = JSON.stringify(patch);
      } catch {
        // Take the reference path below: it throws only when the row is
        // there at that version.
      }
      if (body !== undefined) {
        const write: Write = { op: "patch", collection: c, id: i, body, expectedVersion };
        return parseOrNull(await this.batch.submit(write));
      }
    }
    // What the reference SQLite driver does: read, merge in JavaScript, CAS
    // put. Used when JSON.stringify would drop a top-level key of the patch
    // (an `undefined` value removes the key from the stored row there) or
    // cannot encode it.
    const current = await this.get(c, i);
    if (!current || current.version !== expectedVersion) return null;
    return this.put(c, i, { ...current.data, ...patch }, expectedVersion);
  }

  async delete(collection: string, id: string): Promise<boolean> {
    const [c, i] = [wellFormed(collection, "collection"), wellFormed(id, "id")];
    this.access.writable();
    return (await this.batch.submit({ op: "delete", collection: c, id: i })) === "true";
  }

  async query(opts: QueryOptions): Promise<DocumentRow[]> {
    const collection = wellFormed(opts.collection, "collection");
    const [fields, values] = whereArgs(opts.where ?? {});
    const orderBy = opts.orderBy ? wellFormed(opts.orderBy, "orderBy") : undefined;
    const args = [
      collection,
      fields,
      values,
      orderBy,
      opts.orderDir === "desc",
      numberOrUndefined(opts.limit),
      numberOrUndefined(opts.offset),
    ] as const;
    if (this.access.readOnly) await this.access.ready();
    // A query whose work fits the addon's in-place budget (the index
    // entries its plan walks or sorts, the bytes of its rows: not the rows
    // asked for) runs on this thread, faster than a trip to the pool and
    // back; `querySync` answers null for any other, and it goes to the pool.
    const inPlace = this.access.inThread ? callSync(() => this.n.querySync(...args)) : null;
    return parse(inPlace ?? (await call(this.n.query(...args))));
  }

  async count(collection: string, where: Record<string, unknown> = {}): Promise<number> {
    const c = wellFormed(collection, "collection");
    const [fields, values] = whereArgs(where);
    const args = [c, fields, values] as const;
    if (this.access.readOnly) await this.access.ready();
    const inPlace = this.access.inThread ? callSync(() => this.n.countSync(...args)) : null;
    return inPlace ?? (await call(this.n.count(...args)));
  }
}

class LogBlobStore implements BlobStore {
  constructor(
    private readonly n: NativeStore,
    private readonly maxBytes: number,
    private readonly access: Access,
    private readonly tracked: Tracked,
  ) {}

  async put(
    data: Uint8Array | ReadableStream<Uint8Array>,
    opts: { mime?: string; ownerId?: string | null } = {},
  ): Promise<BlobMeta> {
    const mime = optionalWellFormed(opts.mime, "mime");
    const ownerId = optionalWellFormed(opts.ownerId, "ownerId");
    this.access.writable();
    if (data instanceof Uint8Array) {
      if (data.byteLength > this.maxBytes) throw capError(this.maxBytes);
      const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      return parse(await this.tracked.track(call(this.n.blobPut(bytes, mime, ownerId))));
    }
    // The whole stream: `close()` waits for its last chunk.
    return this.tracked.track(this.putStream(data, mime, ownerId));
  }

  /** Chunk by chunk into the engine, the cap checked as bytes arrive. */
  private async putStream(
    stream: ReadableStream<Uint8Array>,
    mime: string | undefined,
    ownerId: string | undefined,
  ): Promise<BlobMeta> {
    const reader = stream.getReader();
    const upload = this.n.blobUpload(mime, ownerId);
    let ended = false;
    try {
      let total = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        const chunk: Uint8Array =
          typeof value === "string" ? new TextEncoder().encode(value) : value;
        total += chunk.byteLength;
        if (total > this.maxBytes) throw capError(this.maxBytes);
        await call(upload.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
      }
      ended = true;
      return parse(await call(upload.end()));
    } catch (err) {
      // Nothing is left behind: wait until the engine removed what it staged.
      if (!ended) await upload.abort().catch(() => undefined);
      throw err;
    } finally {
      reader.releaseLock();
    }
  }

  async get(id: string): Promise<{ meta: BlobMeta; stream: ReadableStream<Uint8Array> } | null> {
    const key = String(id);
    if (this.access.readOnly) await this.access.ready();
    if (this.access.inThread) {
      // A blob of at most 64 KiB is read whole on this thread, into the
      // scratch buffer, unless a lock is busy (`blobGetSync` answers
      // false): then the pool reads it.
      const text = callSync(() => this.n.blobGetSync(key, scratch));
      if (text === null) return null;
      if (text !== false) {
        const meta = parse<BlobMeta>(text);
        return { meta, stream: wholeStream(Buffer.from(scratch.subarray(0, meta.size))) };
      }
    }
    const bytes = await call(this.n.blobGet(key, READ_CHUNK));
    if (!bytes) return null;
    const meta = parse<BlobMeta>(bytes.meta);
    // The stream ends once the blob's size is out: the engine checked the
    // whole before it handed out the last bytes, so no read is left to do.
    let left = meta.size;
    const enqueue = (controller: ReadableStreamDefaultController<Uint8Array>, buf: Buffer) => {
      if (buf.byteLength > 0) controller.enqueue(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
      left -= buf.byteLength;
      if (buf.byteLength === 0 || left <= 0) controller.close();
    };
    const stream = new ReadableStream<Uint8Array>(
      {
        start(controller) {
          const first = bytes.first();
          if (first !== null) enqueue(controller, first);
        },
        async pull(controller) {
          // Filled on the pool; nothing here reads it until then.
          const buf = Buffer.allocUnsafeSlow(Math.min(READ_CHUNK, Math.max(left, 1)));
          const n = await call(bytes.readInto(buf));
          enqueue(controller, n === buf.byteLength ? buf : buf.subarray(0, n));
        },
        cancel() {
          bytes.cancel();
        },
      },
      { highWaterMark: 0 },
    );
    return { meta, stream };
  }

  async getMeta(id: string): Promise<BlobMeta | null> {
    if (this.access.readOnly) await this.access.ready();
    return parseOrNull(await call(this.n.blobMeta(String(id))));
  }

  async delete(id: string): Promise<boolean> {
    this.access.writable();
    return this.tracked.track(call(this.n.blobDelete(String(id))));
  }

  async list(opts: { ownerId?: string; limit?: number; offset?: number } = {}): Promise<BlobMeta[]> {
    const ownerId = optionalWellFormed(opts.ownerId, "ownerId");
    if (this.access.readOnly) await this.access.ready();
    return parse(
      await call(this.n.blobList(ownerId, numberOrUndefined(opts.limit), numberOrUndefined(opts.offset))),
    );
  }
}

class LogLeaseStore implements LeaseStore {
  constructor(
    private readonly n: NativeStore,
    private readonly batch: Batcher,
    private readonly access: Access,
  ) {}

  /** The lease key and owner, checked, for a write. */
  private writeArgs(key: string, owner: string): { key: string; owner: string } {
    const args = { key: wellFormed(key, "the lease key"), owner: wellFormed(owner, "owner") };
    this.access.writable();
    return args;
  }

  async acquire(key: string, owner: string, ttlMs: number): Promise<AcquireResult> {
    return parse(await this.batch.submit({ op: "acquire", ...this.writeArgs(key, owner), ttlMs: Number(ttlMs) }));
  }

  async renew(key: string, owner: string, ttlMs: number): Promise<AcquireResult> {
    return parse(await this.batch.submit({ op: "renew", ...this.writeArgs(key, owner), ttlMs: Number(ttlMs) }));
  }

  async release(key: string, owner: string): Promise<void> {
    await this.batch.submit({ op: "release", ...this.writeArgs(key, owner) });
  }

  async releaseAll(owner: string): Promise<number> {
    const o = wellFormed(owner, "owner");
    this.access.writable();
    return Number(await this.batch.submit({ op: "releaseAll", owner: o }));
  }

  async get(key: string): Promise<LeaseRow | null> {
    const k = wellFormed(key, "the lease key");
    if (this.access.readOnly) await this.access.ready();
    return parseOrNull(await call(this.n.leaseGet(k)));
  }
}

const nonEmpty = (v: unknown): v is string => typeof v === "string" && v !== "";

function storesOver(
  n: NativeStore,
  maxBlobBytes: number,
  durability: unknown,
  access: Access,
): LogstorePatternStores {
  // A PostgreSQL write is a server round trip: it never runs in place.
  const batch = new Batcher(n, durability === "flush" && !access.postgres);
  const tracked = new Tracked();
  return {
    docs: new LogDocumentStore(n, batch, access, tracked),
    blobs: new LogBlobStore(n, maxBlobBytes, access, tracked),
    leases: new LogLeaseStore(n, batch, access),
    close: async () => {
      // Writes called before close go first.
      await Promise.all([batch.drained(), tracked.settled()]);
      batch.release();
      await call(n.close());
    },
    backup: async (dest: string) => {
      if (!nonEmpty(dest)) throw new TypeError("backup: `dest` (the new store directory) must be a non-empty string");
      return call(n.backup(wellFormed(dest, "`dest`")));
    },
  };
}

/** Opens the native store the options name; TypeErrors for options that do not fit together. */
async function openNative(
  opts: LogstoreOptions,
  manualClockMs?: number,
): Promise<{ n: NativeStore; max: number; access: Access }> {
  const fn = "logstorePatternStores";
  if (opts == null || typeof opts !== "object") {
    throw new TypeError(`${fn}: options with \`dir\` (the store directory) or \`url\` (a PostgreSQL URL) are required`);
  }
  const { dir, url, schema, readOnly } = opts;
  if ((dir === undefined) === (url === undefined)) {
    throw new TypeError(`${fn}: give exactly one of \`dir\` (the store directory) and \`url\` (a PostgreSQL URL)`);
  }
  if (dir !== undefined && !nonEmpty(dir)) {
    throw new TypeError(`${fn}: \`dir\` (the store directory) must be a non-empty string`);
  }
  if (url !== undefined && !nonEmpty(url)) {
    throw new TypeError(`${fn}: \`url\` (a PostgreSQL URL) must be a non-empty string`);
  }
  if (readOnly !== undefined && typeof readOnly !== "boolean") {
    throw new TypeError(`${fn}: \`readOnly\` must be a boolean`);
  }
  if (readOnly && url !== undefined) {
    throw new TypeError(`${fn}: \`readOnly\` goes with \`dir\`; every handle on a PostgreSQL store may write`);
  }
  if (schema !== undefined && (url === undefined || !nonEmpty(schema))) {
    throw new TypeError(`${fn}: \`schema\` (a non-empty string) goes with \`url\``);
  }
  // napi-rs would turn a lone surrogate into U+FFFD: another directory.
  for (const [name, value] of [["dir", dir], ["url", url], ["schema", schema]] as const) {
    if (value !== undefined) wellFormed(value, `\`${name}\``);
  }
  const max = opts.maxBlobBytes ?? DEFAULT_MAX_BLOB_BYTES;
  const options = { maxBlobBytes: max, durability: opts.durability, manualClockMs, readOnly, schema };
  const n = await call(
    url !== undefined
      ? native.NativeStore.openPostgres(url, options)
      : native.NativeStore.open(dir as string, options),
  );
  return { n, max, access: new Access(n, url !== undefined, readOnly === true) };
}

/**
 * Opens a store as `PatternStores`: with `dir`, the logstore store there
 * (created if missing), or with `readOnly` a reader of it beside its
 * writer; with `url`, the PostgreSQL store on that server.
 *
 * A directory another process holds rejects, naming it. A second open of
 * a directory this process holds returns a handle on the same engine
 * (with the same `durability` and `maxBlobBytes`; other values reject);
 * each handle's `close()` waits for its writes and ends it, and the
 * engine closes with its last handle. Calls on a closed handle reject.
 */
export async function logstorePatternStores(opts: LogstoreOptions): Promise<LogstorePatternStores> {
  const { n, max, access } = await openNative(opts);
  return storesOver(n, max, opts.durability, access);
}

/**
 * Tests only: the same stores on a clock that stands still at `clockMs`
 * until `setClock` moves it, so timestamps and lease expiries are
 * deterministic. Production code uses `logstorePatternStores`.
 */
export async function logstorePatternStoresWithClock(
  opts: LogstoreOptions & { clockMs: number },
): Promise<LogstorePatternStores & { setClock(ms: number): void }> {
  const { n, max, access } = await openNative(opts, opts.clockMs);
  return { ...storesOver(n, max, opts.durability, access), setClock: (ms: number) => n.setClock(ms) };
}

/** What `migrateStore` copied. */
export type Migrated = import("../native/binding.js").Migrated;

/**
 * Copies the store at `from` into a new store at `to`, synchronously: a path
 * ending in `.db` is a store of the reference SQLite driver (blobs in
 * `blobs/` beside it), any other path a logstore directory. The target must
 * be missing or empty; throws an `Error` naming the path and the reason
 * otherwise. The `logstore-migrate` command runs it.
 */
export function migrateStore(from: string, to: string): Migrated {
  return native.migrate(wellFormed(from, "`from`"), wellFormed(to, "`to`"));
}
