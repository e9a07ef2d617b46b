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
  /** The store directory (created if missing; one process owns it). */
  dir: string;
  /** The blob cap in bytes (default 25 MiB, as the reference drivers). */
  maxBlobBytes?: number;
  /**
   * `"sync"` (default): a write resolves once it is on stable storage, as
   * the reference SQLite driver's WAL with synchronous=FULL. `"flush"`: once
   * the OS has it (survives a process crash, not a power loss).
   */
  durability?: "sync" | "flush";
}

const DEFAULT_MAX_BLOB_BYTES = 25 * 1024 * 1024;
/** Bytes a blob read hands to JavaScript at a time. */
const READ_CHUNK = 256 * 1024;

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

/**
 * A `flush` store's document and lease writes first run on the JavaScript
 * thread through the addon's `writeNow`, which never blocks: a write that
 * would wait for the disk or another writer (a roll to a new segment, a
 * writer lock a pooled call holds) answers `""` having written nothing, and
 * only then goes to the worker pool (through the `Batcher`). A `sync` write
 * always waits for its sync, so it goes straight to the pool.
 */
const WOULD_WAIT = "";

type Write = import("../native/binding.js").Write;

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
 */
class Batcher {
  private queue: Array<{ write: Write; resolve: (text: string) => void; reject: (e: unknown) => void }> = [];
  /** A `writeBatch` job runs. */
  private inFlight = false;
  private drainedWaiters: Array<() => void> = [];

  constructor(
    private readonly n: NativeStore,
    /** A `flush` store: writes try the JavaScript thread first. */
    private readonly inPlace: boolean,
  ) {}

  /**
   * A write's answer as JSON text: run in place when the store is `flush`
   * and nothing is queued or running and the engine need not wait (see
   * `WOULD_WAIT`), otherwise queued.
   */
  async submit(write: Write): Promise<string> {
    if (this.inPlace && this.idle) {
      const text = callSync(() => this.n.writeNow(write.op, write.a, write.b, write.body, write.num));
      if (text !== WOULD_WAIT) return text;
    }
    return this.run(write);
  }

  /** True when no write is queued and no job runs. */
  get idle(): boolean {
    return !this.inFlight && this.queue.length === 0;
  }

  private run(write: Write): Promise<string> {
    return new Promise((resolve, reject) => {
      if (this.idle) queueMicrotask(() => this.send());
      this.queue.push({ write, resolve, reject });
    });
  }

  /** Settles once every write queued so far has settled. */
  drained(): Promise<void> {
    return this.idle ? Promise.resolve() : new Promise((resolve) => this.drainedWaiters.push(resolve));
  }

  private send(): void {
    const batch = this.queue;
    this.queue = [];
    this.inFlight = true;
    let sent: Promise<Array<{ text?: string | null; error?: string | null }>>;
    try {
      sent = this.n.writeBatch(batch.map((q) => q.write));
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
        if (this.queue.length > 0) {
          // Queued while this job ran: the next batch, at once.
          this.send();
        } else {
          for (const done of this.drainedWaiters.splice(0)) done();
        }
      });
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

function whereArgs(where: Record<string, unknown>): [string[], string[]] {
  const fields = Object.keys(where);
  return [fields, fields.map((f) => indexValue(where[f]) ?? "")];
}

const numberOrUndefined = (v: unknown): number | undefined => (v == null ? undefined : Number(v));

class LogDocumentStore implements DocumentStore {
  constructor(
    private readonly n: NativeStore,
    private readonly batch: Batcher,
  ) {}

  async ensureCollection(def: CollectionDef): Promise<void> {
    await call(this.n.ensureCollection(String(def.name), def.indexes.map(String)));
  }

  async listCollections(): Promise<Array<CollectionDef & { docCount: number }>> {
    return parse(await call(this.n.listCollections()));
  }

  async get(collection: string, id: string): Promise<DocumentRow | null> {
    return parseOrNull(callSync(() => this.n.getSync(String(collection), String(id))));
  }

  async put(
    collection: string,
    id: string,
    data: Record<string, unknown>,
    expectedVersion?: number,
  ): Promise<DocumentRow | null> {
    // As the SQLite driver: the body is what JSON.stringify makes of it, and
    // a value it rejects (a cycle, a BigInt) throws its TypeError.
    const body = JSON.stringify(data);
    if (typeof body !== "string") {
      throw new TypeError("store: document data must be a JSON object");
    }
    const num = numberOrUndefined(expectedVersion);
    return parseOrNull(await this.batch.submit({ op: "put", a: String(collection), b: String(id), body, num }));
  }

  async patch(
    collection: string,
    id: string,
    patch: Record<string, unknown>,
    expectedVersion: number,
  ): Promise<DocumentRow | null> {
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
        const write = { op: "patch", a: String(collection), b: String(id), body, num: expectedVersion };
        return parseOrNull(await this.batch.submit(write));
      }
    }
    // What the reference SQLite driver does: read, merge in JavaScript, CAS
    // put. Used when JSON.stringify would drop a top-level key of the patch
    // (an `undefined` value removes the key from the stored row there) or
    // cannot encode it.
    const current = await this.get(collection, id);
    if (!current || current.version !== expectedVersion) return null;
    return this.put(collection, id, { ...current.data, ...patch }, expectedVersion);
  }

  async delete(collection: string, id: string): Promise<boolean> {
    return (await this.batch.submit({ op: "delete", a: String(collection), b: String(id) })) === "true";
  }

  async query(opts: QueryOptions): Promise<DocumentRow[]> {
    const [fields, values] = whereArgs(opts.where ?? {});
    const orderBy = opts.orderBy ? String(opts.orderBy) : undefined;
    const args = [
      String(opts.collection),
      fields,
      values,
      orderBy,
      opts.orderDir === "desc",
      numberOrUndefined(opts.limit),
      numberOrUndefined(opts.offset),
    ] as const;
    // A query whose work fits the addon's in-place budget (the index
    // entries its plan walks or sorts, the bytes of its rows: not the rows
    // asked for) runs on this thread, faster than a trip to the pool and
    // back; `querySync` answers null for any other, and it goes to the pool.
    const text = callSync(() => this.n.querySync(...args)) ?? (await call(this.n.query(...args)));
    return parse(text);
  }

  async count(collection: string, where: Record<string, unknown> = {}): Promise<number> {
    const [fields, values] = whereArgs(where);
    const args = [String(collection), fields, values] as const;
    return callSync(() => this.n.countSync(...args)) ?? (await call(this.n.count(...args)));
  }
}

class LogBlobStore implements BlobStore {
  constructor(
    private readonly n: NativeStore,
    private readonly maxBytes: number,
  ) {}

  async put(
    data: Uint8Array | ReadableStream<Uint8Array>,
    opts: { mime?: string; ownerId?: string | null } = {},
  ): Promise<BlobMeta> {
    const mime = opts.mime ?? undefined;
    const ownerId = opts.ownerId ?? undefined;
    if (data instanceof Uint8Array) {
      if (data.byteLength > this.maxBytes) throw capError(this.maxBytes);
      const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      return parse(await call(this.n.blobPut(bytes, mime, ownerId)));
    }
    return this.putStream(data, mime, ownerId);
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
    const bytes = await call(this.n.blobGet(String(id)));
    if (!bytes) return null;
    const stream = new ReadableStream<Uint8Array>(
      {
        async pull(controller) {
          const buf = await call(bytes.read(READ_CHUNK));
          if (buf.byteLength === 0) controller.close();
          else controller.enqueue(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
        },
        cancel() {
          bytes.cancel();
        },
      },
      { highWaterMark: 0 },
    );
    return { meta: parse(bytes.meta), stream };
  }

  async getMeta(id: string): Promise<BlobMeta | null> {
    return parseOrNull(await call(this.n.blobMeta(String(id))));
  }

  async delete(id: string): Promise<boolean> {
    return call(this.n.blobDelete(String(id)));
  }

  async list(opts: { ownerId?: string; limit?: number; offset?: number } = {}): Promise<BlobMeta[]> {
    const ownerId = opts.ownerId != null ? String(opts.ownerId) : undefined;
    return parse(
      await call(this.n.blobList(ownerId, numberOrUndefined(opts.limit), numberOrUndefined(opts.offset))),
    );
  }
}

class LogLeaseStore implements LeaseStore {
  constructor(
    private readonly n: NativeStore,
    private readonly batch: Batcher,
  ) {}

  private write(op: string, key: string, owner: string, ttlMs = 0): Promise<string> {
    return this.batch.submit({ op, a: String(key), b: String(owner), num: Number(ttlMs) });
  }

  async acquire(key: string, owner: string, ttlMs: number): Promise<AcquireResult> {
    return parse(await this.write("acquire", key, owner, ttlMs));
  }

  async renew(key: string, owner: string, ttlMs: number): Promise<AcquireResult> {
    return parse(await this.write("renew", key, owner, ttlMs));
  }

  async release(key: string, owner: string): Promise<void> {
    await this.write("release", key, owner);
  }

  async releaseAll(owner: string): Promise<number> {
    return Number(await this.write("releaseAll", "", owner));
  }

  async get(key: string): Promise<LeaseRow | null> {
    return parseOrNull(await call(this.n.leaseGet(String(key))));
  }
}

function storesOver(n: NativeStore, maxBlobBytes: number, durability: unknown): PatternStores {
  const batch = new Batcher(n, durability === "flush");
  return {
    docs: new LogDocumentStore(n, batch),
    blobs: new LogBlobStore(n, maxBlobBytes),
    leases: new LogLeaseStore(n, batch),
    close: async () => {
      // Writes called before close go first.
      await batch.drained();
      await call(n.close());
    },
  };
}

function openArgs(opts: LogstoreOptions): { dir: string; max: number } {
  if (opts == null || typeof opts.dir !== "string" || opts.dir === "") {
    throw new TypeError("logstorePatternStores: `dir` (the store directory) is required");
  }
  return { dir: opts.dir, max: opts.maxBlobBytes ?? DEFAULT_MAX_BLOB_BYTES };
}

/**
 * Opens (or creates) a logstore store in `opts.dir` as `PatternStores`.
 * Rejects, naming the directory, when another process holds it; `close()`
 * releases it, and calls after `close()` reject.
 */
export async function logstorePatternStores(opts: LogstoreOptions): Promise<PatternStores> {
  const { dir, max } = openArgs(opts);
  const n = await call(native.NativeStore.open(dir, {
    maxBlobBytes: max,
    durability: opts.durability,
  }));
  return storesOver(n, max, opts.durability);
}

/**
 * Tests only: the same stores on a clock that stands still at `clockMs`
 * until `setClock` moves it, so timestamps and lease expiries are
 * deterministic. Production code uses `logstorePatternStores`.
 */
export async function logstorePatternStoresWithClock(
  opts: LogstoreOptions & { clockMs: number },
): Promise<PatternStores & { setClock(ms: number): void }> {
  const { dir, max } = openArgs(opts);
  const n = await call(native.NativeStore.open(dir, {
    maxBlobBytes: max,
    durability: opts.durability,
    manualClockMs: opts.clockMs,
  }));
  return { ...storesOver(n, max, opts.durability), setClock: (ms: number) => n.setClock(ms) };
}
