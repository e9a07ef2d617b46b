//! The native half of `@logstore/pattern-stores`: a logstore engine (a
//! `LogStore`, or a `PgStore` on a PostgreSQL server; `engine.rs`) behind a
//! napi-rs class. The TypeScript layer (`ts/index.ts`) turns these
//! calls into the reference package's `PatternStores` shape; this side
//! moves JSON text and bytes and runs every call that may touch the disk on
//! a worker pool (`work.rs`).
//!
//! Calls that run on the JavaScript thread (reads, and a `flush` store's
//! writes in place) catch a panic and throw it as an `Error`; pooled calls
//! reject with one (`work.rs`).
//!
//! Document bodies arrive as the text `JSON.stringify` produced. The
//! engine's `put` takes a `serde_json::Value`, so the text is parsed here
//! once; rows go back as JSON text that JavaScript parses. Gets and queries
//! use the engine's raw reads: the stored body text goes out as it is,
//! never parsed or re-serialized in Rust (a get in place sends the body
//! alone and the row's numbers through a `Float64Array`).

mod backup;
mod blobs;
mod engine;
mod migrate;
mod rows;
mod work;

// The `logstore-migrate` command's native function.
pub use migrate::migrate;

use std::ops::Deref;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use logstore::{
    BlobList, Budget, Durability, LogStore, ManualClock, Options, OrderDir, Query, Session, Store,
    DEFAULT_LIMIT,
};
use napi::bindgen_prelude::{Either, Float64ArraySlice, Object};
use napi::Env;
use napi_derive::napi;
use serde_json::Value;

use crate::engine::{Settings, Shared};
use crate::work::spawn;

/// The largest document record `getSync` reads on the JavaScript thread,
/// the byte limit of [`IN_PLACE`] too: small enough that reading and
/// parsing it stays a short stall of the event loop (`bench/in-place.mjs`
/// times the edges); a larger one goes to the pool.
pub(crate) const IN_THREAD_GET_BYTES: u64 = 64 * 1024;

/// The budget of a get in place: one record of at most
/// [`IN_THREAD_GET_BYTES`].
const IN_PLACE_GET: Budget = Budget {
    entries: 1,
    rows: 1,
    bytes: IN_THREAD_GET_BYTES,
};

/// A handle on an open store. Every method returns a promise unless it
/// says otherwise. Several handles may share one engine (a second open of a
/// directory in this process, `engine.rs`); each is closed on its own.
#[napi]
pub struct NativeStore {
    /// The engine, until this handle is closed: `close` takes it to the
    /// pool, so the engine's last handle frees it there and then, not on
    /// the JavaScript thread whenever the garbage collector finalizes this
    /// object (see `Drop`). `None`: calls fail with `Closed`, whatever the
    /// engine's other handles do.
    shared: Mutex<Option<Arc<Shared>>>,
    /// The engine's id (`engineId`), kept past the close.
    id: u64,
    clock: Option<Arc<ManualClock>>,
}

/// The log store of a handle, for a call on the JavaScript thread.
struct InThread(Arc<Shared>);

impl Deref for InThread {
    type Target = LogStore;

    fn deref(&self) -> &LogStore {
        self.0.log().expect("InThread is made only for a log store")
    }
}

impl NativeStore {
    fn new(shared: Arc<Shared>, clock: Option<Arc<ManualClock>>) -> NativeStore {
        NativeStore {
            id: shared.id(),
            shared: Mutex::new(Some(shared)),
            clock,
        }
    }

    /// The slot of the engine. Nothing panics while holding its lock, but
    /// a poisoned one still holds a consistent `Option`.
    fn slot(&self) -> MutexGuard<'_, Option<Arc<Shared>>> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The engine, for a call on this thread.
    fn engine(&self) -> napi::Result<Arc<Shared>> {
        self.live().map_err(work::to_napi)
    }

    /// The log store, for a read on the JavaScript thread: a PostgreSQL
    /// store's reads go over the network, so only its pooled calls serve it.
    fn in_thread(&self) -> napi::Result<InThread> {
        let shared = self.engine()?;
        if shared.log().is_none() {
            return Err(napi::Error::from_reason(
                "store: a PostgreSQL store is read through the pooled calls, never on the JavaScript thread",
            ));
        }
        Ok(InThread(shared))
    }

    /// The engine, for a pooled call: an error the call rejects with once
    /// this handle is closed.
    fn live(&self) -> logstore::Result<Arc<Shared>> {
        self.slot().clone().ok_or(logstore::Error::Closed)
    }
}

impl Drop for NativeStore {
    /// Runs on the JavaScript thread when the garbage collector finalizes
    /// a handle that was never closed, which may hold the engine's last
    /// reference: dropping that closes the store (a sync and the index
    /// snapshot) and frees the whole index, and forgetting the handle takes
    /// the table's lock, which an open or close on the pool holds for as
    /// long as it runs. So all of it goes to the pool.
    fn drop(&mut self) {
        if let Some(shared) = self.slot().take() {
            work::detach(move || {
                engine::drop_handle(&shared);
                drop(shared);
            });
        }
    }
}

/// How `NativeStore.open` opens a store.
#[napi(object)]
pub struct OpenOptions {
    /// The blob cap in bytes (default 25 MiB).
    pub max_blob_bytes: Option<f64>,
    /// `"sync"` (default) or `"flush"`.
    pub durability: Option<String>,
    /// Tests only: a clock that stands still at this time (epoch ms) until
    /// `setClock` moves it.
    pub manual_clock_ms: Option<f64>,
    /// `open` only: follow the store read-only, beside its writer.
    pub read_only: Option<bool>,
    /// `openPostgres` only: the schema the store's tables live in.
    pub schema: Option<String>,
}

impl OpenOptions {
    /// The engine options, with the manual clock if one is asked for.
    fn engine_options(&self) -> logstore::Result<(Options, Option<Arc<ManualClock>>)> {
        let mut options = Options::default();
        if let Some(max) = self.max_blob_bytes {
            if !(max.is_finite() && max >= 0.0) {
                return Err(invalid(format!("maxBlobBytes {max} is not a byte count")));
            }
            options.max_blob_bytes = max as u64;
        }
        options.durability = match self.durability.as_deref() {
            None | Some("sync") => Durability::Sync,
            Some("flush") => Durability::Flush,
            Some(other) => {
                return Err(invalid(format!(
                    "durability \"{other}\" is neither \"sync\" nor \"flush\""
                )))
            }
        };
        let clock = self
            .manual_clock_ms
            .map(|ms| Arc::new(ManualClock::new(ms as i64)));
        if let Some(clock) = &clock {
            options.clock = clock.clone();
        }
        Ok((options, clock))
    }
}

/// What a read on the JavaScript thread may do (`querySync`, `countSync`);
/// a read over it goes to the pool. The limits bound the work (index
/// entries walked or sorted, rows, bytes), not the rows returned, so an
/// in-place read costs the same at its edges whatever the store's size;
/// `bench/in-place.mjs` times those edges through PatternStores.
const IN_PLACE: Budget = Budget {
    entries: 4_000,
    rows: 200,
    bytes: IN_THREAD_GET_BYTES,
};

fn invalid(message: impl Into<String>) -> logstore::Error {
    // `Error::InvalidInput` has a public constructor only inside the crate;
    // the variant itself is public.
    logstore::Error::InvalidInput(message.into())
}

/// The answer of a blob lookup by id (`get`, `get_meta`, `delete`), with
/// `absent` for an id the engine rejects as malformed (empty, longer than
/// `MAX_BLOB_ID_BYTES`, or holding anything but ASCII letters, digits, `-`
/// and `_`; a lone surrogate arrives from JavaScript as U+FFFD). No blob
/// has such an id, and the reference drivers answer `null` or `false` for
/// it, so a route serving `GET /blobs/:id` answers 404 rather than 500. The
/// id is these calls' only input and the engine checks it first, so
/// `InvalidInput` here always means a malformed id.
pub(crate) fn no_blob_if_malformed<T>(
    answer: logstore::Result<T>,
    absent: T,
) -> logstore::Result<T> {
    match answer {
        Err(logstore::Error::InvalidInput(_)) => Ok(absent),
        answer => answer,
    }
}

fn parse_body(json: &str) -> logstore::Result<Value> {
    serde_json::from_str(json).map_err(|e| invalid(format!("the document is not valid JSON: {e}")))
}

/// A JavaScript number as a version to compare with: `None` when no row
/// can be at that version (not a whole number, negative, or too large).
fn version(v: f64) -> Option<u64> {
    (v.fract() == 0.0 && (1.0..=9_007_199_254_740_991.0).contains(&v)).then_some(v as u64)
}

/// A JavaScript limit or offset as SQLite reads one: a negative limit means
/// no limit, a negative offset is zero.
fn count_arg(v: Option<f64>, default: usize, negative: usize) -> usize {
    match v {
        None => default,
        Some(v) if v.is_nan() => 0,
        Some(v) if v < 0.0 => negative,
        Some(v) if v >= usize::MAX as f64 => usize::MAX,
        Some(v) => v as usize,
    }
}

#[napi]
impl NativeStore {
    /// Opens (or creates) the store in `dir`, or, with `readOnly`, follows
    /// the store there without writing to it. A directory this process
    /// already has open for writing gives a handle on the same engine when
    /// the options match, and fails otherwise; one another process holds
    /// fails with a message naming it.
    #[napi(ts_return_type = "Promise<NativeStore>")]
    pub fn open(env: &Env, dir: String, opts: OpenOptions) -> napi::Result<Object<'_>> {
        spawn(env, move || {
            let (options, clock) = opts.engine_options()?;
            let dir = Path::new(&dir);
            let shared = if opts.read_only == Some(true) {
                engine::open_read_only(dir, options)?
            } else {
                let settings = Settings {
                    durability: options.durability,
                    max_blob_bytes: options.max_blob_bytes,
                    manual_clock: clock.is_some(),
                };
                engine::open_dir(dir, options, settings)?
            };
            Ok(NativeStore::new(shared, clock))
        })
    }

    /// Opens (or creates) the store on the PostgreSQL server at `url`, in
    /// the schema `opts.schema` names, or the URL's, or `logstore`.
    /// `durability` is the server's commit durability: `"sync"` waits for
    /// its WAL flush (synchronous_commit=on), `"flush"` does not.
    #[napi(ts_return_type = "Promise<NativeStore>")]
    pub fn open_postgres(env: &Env, url: String, opts: OpenOptions) -> napi::Result<Object<'_>> {
        spawn(env, move || {
            let (options, clock) = opts.engine_options()?;
            let shared = engine::open_postgres(&url, opts.schema.as_deref(), options)?;
            Ok(NativeStore::new(shared, clock))
        })
    }

    /// A read-only handle catches up with its writer (`LogStore::refresh`);
    /// on any other handle it does nothing.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn refresh<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let s = self.live();
        spawn(env, move || match s?.log() {
            Some(log) => log.refresh(),
            None => Ok(()),
        })
    }

    /// Tests only: moves a manual clock (see `OpenOptions`). Synchronous.
    #[napi]
    pub fn set_clock(&self, ms: f64) -> napi::Result<()> {
        match &self.clock {
            Some(clock) => {
                clock.set(ms as i64);
                Ok(())
            }
            None => Err(napi::Error::from_reason(
                "store: setClock needs a store opened with manualClockMs",
            )),
        }
    }

    /// The engine's id, unique in this process and the same for every
    /// handle on one engine (a second open of a directory): the
    /// JavaScript layer gives such handles one write queue. Synchronous.
    #[napi]
    pub fn engine_id(&self) -> f64 {
        self.id as f64
    }

    /// Closes this handle: its calls fail from now on. The engine's last
    /// handle closes the engine (a log store syncs, writes its index
    /// snapshot and releases the directory). A second close does nothing.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let taken = self.slot().take();
        // The job holds the handle's reference: when it is the engine's
        // last, the engine is freed on the pool as the job ends.
        spawn(env, move || match taken {
            Some(shared) => engine::release(&shared),
            None => Ok(()),
        })
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub fn ensure_collection<'e>(
        &self,
        env: &'e Env,
        name: String,
        indexes: Vec<String>,
    ) -> napi::Result<Object<'e>> {
        let s = self.live();
        spawn(env, move || {
            let s = s?;
            let fields: Vec<&str> = indexes.iter().map(String::as_str).collect();
            s.store().docs().ensure_collection(&name, &fields)
        })
    }

    /// JSON text of `[{ name, indexes, docCount }]`.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn list_collections<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let s = self.live();
        spawn(env, move || {
            let s = s?;
            Ok(rows::collections(&s.store().docs().list_collections()?))
        })
    }

    /// JSON text of the row, or null.
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn get<'e>(
        &self,
        env: &'e Env,
        collection: String,
        id: String,
    ) -> napi::Result<Object<'e>> {
        let s = self.live();
        spawn(env, move || {
            let s = s?;
            Ok(s.store()
                .docs()
                .get_raw(&collection, &id)?
                .as_ref()
                .map(rows::raw_document))
        })
    }

    /// The lookup of `get` on the calling thread, for a record of at most
    /// [`IN_THREAD_GET_BYTES`]: a read that finds its record in the page
    /// cache costs less than a trip to the pool. Its answer is the stored
    /// body's JSON text, with the row's `version`, `createdAt` and
    /// `updatedAt` written to `meta[0..3]` (numbers cross the boundary for
    /// less than the text of a row); `null` when there is no such
    /// document; or `false`, having read nothing, when the record is
    /// larger or a lock is busy (`LogStore::get_raw_within`), and `get`
    /// reads it on the pool instead.
    #[napi(catch_unwind, ts_return_type = "string | false | null")]
    pub fn get_sync(
        &self,
        collection: String,
        id: String,
        mut meta: Float64ArraySlice<'_>,
    ) -> napi::Result<Option<Either<String, bool>>> {
        // SAFETY: this runs on the JavaScript thread, which runs no other
        // code while it does, so nothing else reads or writes the array's
        // memory meanwhile, and the array outlives the call.
        let meta = unsafe { meta.as_mut() };
        let Some(meta) = meta.get_mut(..3) else {
            return Err(napi::Error::from_reason(
                "store: getSync needs a Float64Array of 3 for the row's numbers",
            ));
        };
        let got = self
            .in_thread()?
            .get_raw_within(&collection, &id, IN_PLACE_GET)
            .map_err(work::to_napi)?;
        Ok(match got {
            None => Some(Either::B(false)),
            Some(None) => None,
            Some(Some(doc)) => {
                meta.copy_from_slice(&[
                    doc.version as f64,
                    doc.created_at as f64,
                    doc.updated_at as f64,
                ]);
                Some(Either::A(doc.data))
            }
        })
    }

    /// A put of a `flush` store in place (see [`now`]): the row's JSON text,
    /// `"null"` on a lost CAS, or `null` when it would wait and must go
    /// through `writeBatch` instead. Each `*Now` method takes one `Write`
    /// variant's fields one by one: a napi object costs more to cross.
    #[napi(catch_unwind)]
    pub fn put_now(
        &self,
        collection: String,
        id: String,
        body: String,
        expected_version: Option<f64>,
    ) -> napi::Result<Option<String>> {
        self.now(Write::Put {
            collection,
            id,
            body,
            expected_version,
        })
    }

    /// `putNow` for a patch. A patch reads, merges and rewrites the whole
    /// stored document, whatever the patch's size, so one whose record is
    /// over [`IN_THREAD_GET_BYTES`] answers `null` having read nothing (as
    /// does a busy lock) and goes to the pool; one within it is read twice,
    /// a few microseconds more than the patch alone.
    #[napi(catch_unwind)]
    pub fn patch_now(
        &self,
        collection: String,
        id: String,
        body: String,
        expected_version: f64,
    ) -> napi::Result<Option<String>> {
        if let Some(log) = self.engine()?.log() {
            // An error here (a name that is not valid) is the patch's too,
            // which reports it.
            if let Ok(None) = log.get_raw_within(&collection, &id, IN_PLACE_GET) {
                return Ok(None);
            }
        }
        self.now(Write::Patch {
            collection,
            id,
            body,
            expected_version,
        })
    }

    /// `putNow` for a delete.
    #[napi(catch_unwind)]
    pub fn delete_now(&self, collection: String, id: String) -> napi::Result<Option<String>> {
        self.now(Write::Delete { collection, id })
    }

    /// `putNow` for a lease acquire.
    #[napi(catch_unwind)]
    pub fn acquire_now(
        &self,
        key: String,
        owner: String,
        ttl_ms: f64,
    ) -> napi::Result<Option<String>> {
        self.now(Write::Acquire { key, owner, ttl_ms })
    }

    /// `putNow` for a lease renew.
    #[napi(catch_unwind)]
    pub fn renew_now(
        &self,
        key: String,
        owner: String,
        ttl_ms: f64,
    ) -> napi::Result<Option<String>> {
        self.now(Write::Renew { key, owner, ttl_ms })
    }

    /// `putNow` for a lease release.
    #[napi(catch_unwind)]
    pub fn release_now(&self, key: String, owner: String) -> napi::Result<Option<String>> {
        self.now(Write::Release { key, owner })
    }

    /// `putNow` for a release of every lease of `owner`.
    #[napi(catch_unwind)]
    pub fn release_all_now(&self, owner: String) -> napi::Result<Option<String>> {
        self.now(Write::ReleaseAll { owner })
    }

    /// JSON text of the matching rows. `values` are index strings (the
    /// TypeScript layer turns each `where` value into one as the reference
    /// package does).
    #[allow(clippy::too_many_arguments)]
    #[napi(ts_return_type = "Promise<string>")]
    pub fn query<'e>(
        &self,
        env: &'e Env,
        collection: String,
        fields: Vec<String>,
        values: Vec<String>,
        order_by: Option<String>,
        desc: bool,
        limit: Option<f64>,
        offset: Option<f64>,
    ) -> napi::Result<Object<'e>> {
        let q = build_query(collection, fields, values, order_by, desc, limit, offset);
        let s = self.live();
        spawn(env, move || {
            let s = s?;
            Ok(rows::raw_documents(&s.store().docs().query_raw(&q)?))
        })
    }

    /// `query` on the calling thread when its work fits [`IN_PLACE`]
    /// (`LogStore::query_raw_within`); `null`, having read nothing, when it
    /// does not or would wait for a lock, and the caller makes the pooled
    /// call instead.
    #[allow(clippy::too_many_arguments)]
    #[napi(catch_unwind)]
    pub fn query_sync(
        &self,
        collection: String,
        fields: Vec<String>,
        values: Vec<String>,
        order_by: Option<String>,
        desc: bool,
        limit: Option<f64>,
        offset: Option<f64>,
    ) -> napi::Result<Option<String>> {
        let q = build_query(collection, fields, values, order_by, desc, limit, offset);
        let rows = self
            .in_thread()?
            .query_raw_within(&q, IN_PLACE)
            .map_err(work::to_napi)?;
        Ok(rows.as_deref().map(rows::raw_documents))
    }

    #[napi(ts_return_type = "Promise<number>")]
    pub fn count<'e>(
        &self,
        env: &'e Env,
        collection: String,
        fields: Vec<String>,
        values: Vec<String>,
    ) -> napi::Result<Object<'e>> {
        let q = build_query(collection, fields, values, None, false, None, None);
        let s = self.live();
        spawn(env, move || Ok(s?.store().docs().count(&q)? as f64))
    }

    /// `count` on the calling thread when its work fits [`IN_PLACE`]
    /// (`LogStore::count_within`: one filter or none always does), else
    /// `null` and the caller makes the pooled call.
    #[napi(catch_unwind)]
    pub fn count_sync(
        &self,
        collection: String,
        fields: Vec<String>,
        values: Vec<String>,
    ) -> napi::Result<Option<f64>> {
        let q = build_query(collection, fields, values, None, false, None, None);
        let n = self
            .in_thread()?
            .count_within(&q, IN_PLACE)
            .map_err(work::to_napi)?;
        Ok(n.map(|n| n as f64))
    }

    /// JSON text of the blob's metadata, or null (also for a malformed id,
    /// see [`no_blob_if_malformed`]).
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn blob_meta<'e>(&self, env: &'e Env, id: String) -> napi::Result<Object<'e>> {
        let s = self.live();
        spawn(env, move || {
            let meta = no_blob_if_malformed(s?.store().blobs().get_meta(&id), None)?;
            Ok(meta.as_ref().map(rows::blob_meta))
        })
    }

    /// True if the blob was there; false also for a malformed id (see
    /// [`no_blob_if_malformed`]).
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn blob_delete<'e>(&self, env: &'e Env, id: String) -> napi::Result<Object<'e>> {
        let s = self.live();
        spawn(env, move || {
            no_blob_if_malformed(s?.store().blobs().delete(&id), false)
        })
    }

    /// JSON text of one page of blob metadata, newest first.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn blob_list<'e>(
        &self,
        env: &'e Env,
        owner_id: Option<String>,
        limit: Option<f64>,
        offset: Option<f64>,
    ) -> napi::Result<Object<'e>> {
        let list = BlobList {
            owner_id,
            limit: Some(count_arg(limit, DEFAULT_LIMIT, usize::MAX)),
            offset: Some(count_arg(offset, 0, 0)),
        };
        let s = self.live();
        spawn(env, move || {
            Ok(rows::blob_metas(&s?.store().blobs().list(&list)?))
        })
    }

    /// Runs `writes` in order on the pool as one batch (`LogStore::batch`):
    /// each is appended as it comes and all share one sync, so the writes
    /// one turn of the event loop queued cost one sync, not one each (on
    /// PostgreSQL, each commits on its own, in order). Each
    /// outcome is its answer's JSON text or its error's message; the
    /// promise rejects (and no answer stands) when the batch's sync fails.
    #[napi(ts_return_type = "Promise<Written[]>")]
    pub fn write_batch<'e>(&self, env: &'e Env, writes: Vec<Write>) -> napi::Result<Object<'e>> {
        let s = self.live();
        spawn(env, move || {
            let s = s?;
            let all = |s: &dyn Store| {
                let outcome = |w: &Write| match write(s, w) {
                    Ok(text) => Written {
                        text: Some(text),
                        error: None,
                    },
                    Err(e) => Written {
                        text: None,
                        error: Some(work::message(&e)),
                    },
                };
                writes.iter().map(outcome).collect::<Vec<_>>()
            };
            match s.log() {
                Some(log) => log.batch(|session| all(session)),
                // Each write is its own transaction on the server, in call
                // order; there is no shared sync to wait for.
                None => Ok(all(s.store())),
            }
        })
    }

    /// JSON text of the lease row, or null.
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn lease_get<'e>(&self, env: &'e Env, key: String) -> napi::Result<Object<'e>> {
        let s = self.live();
        spawn(env, move || {
            let s = s?;
            Ok(s.store().leases().get(&key)?.as_ref().map(rows::lease))
        })
    }
}

impl NativeStore {
    /// `w` in place through [`now`].
    fn now(&self, w: Write) -> napi::Result<Option<String>> {
        match self.engine()?.log() {
            Some(log) => now(log, |s| write(s, &w)),
            // A server round trip always waits.
            None => Ok(None),
        }
    }
}

/// One document or lease write (`writeBatch`, and the `*Now` methods).
/// In TypeScript a union tagged by `op`; a new variant fails to compile
/// until `write` here and the TypeScript layer's `runNow` handle it.
#[napi(discriminant = "op", discriminant_case = "camelCase")]
pub enum Write {
    /// Upsert (no `expectedVersion`) or CAS put of `body`, JSON text.
    Put {
        collection: String,
        id: String,
        body: String,
        expected_version: Option<f64>,
    },
    /// Shallow merge of `body`, JSON text of an object.
    Patch {
        collection: String,
        id: String,
        body: String,
        expected_version: f64,
    },
    Delete {
        collection: String,
        id: String,
    },
    Acquire {
        key: String,
        owner: String,
        ttl_ms: f64,
    },
    Renew {
        key: String,
        owner: String,
        ttl_ms: f64,
    },
    Release {
        key: String,
        owner: String,
    },
    ReleaseAll {
        owner: String,
    },
}

/// What a batch write came to: its answer as JSON text, or its error's
/// message.
#[napi(object)]
pub struct Written {
    pub text: Option<String>,
    pub error: Option<String>,
}

/// Runs one write, in place or in a batch; its answer as JSON text (a row
/// or `null`, `true` or `false`, a lease result, a count).
fn write(s: &dyn Store, w: &Write) -> logstore::Result<String> {
    match w {
        Write::Put {
            collection,
            id,
            body,
            expected_version,
        } => put(s, collection, id, body, *expected_version).map(text_or_null),
        Write::Patch {
            collection,
            id,
            body,
            expected_version,
        } => patch(s, collection, id, body, *expected_version).map(text_or_null),
        Write::Delete { collection, id } => {
            s.docs().delete(collection, id).map(|done| done.to_string())
        }
        Write::Acquire { key, owner, ttl_ms } => Ok(rows::acquire(&s.leases().acquire(
            key,
            owner,
            ttl(*ttl_ms)?,
        )?)),
        Write::Renew { key, owner, ttl_ms } => Ok(rows::acquire(&s.leases().renew(
            key,
            owner,
            ttl(*ttl_ms)?,
        )?)),
        Write::Release { key, owner } => s.leases().release(key, owner).map(|()| "null".into()),
        Write::ReleaseAll { owner } => s.leases().release_all(owner).map(|n| n.to_string()),
    }
}

/// Runs the write `f` in place on the JavaScript thread without ever
/// blocking it ([`LogStore::without_waiting`]): its answer as JSON text, or
/// `None` when it would have waited for the disk or another writer (a
/// `sync` store's every write; a `flush` store's roll to a new segment, or
/// a writer lock held by a pooled call), having written nothing; the
/// caller then makes the pooled call. A `flush` write that needs no wait is
/// an append to the page cache, a small fraction of the cost of a trip
/// through the pool and back.
fn now(
    store: &LogStore,
    f: impl FnOnce(&Session) -> logstore::Result<String>,
) -> napi::Result<Option<String>> {
    match store.without_waiting(f) {
        Ok(answer) => Ok(Some(answer)),
        Err(logstore::Error::WouldBlock(_)) => Ok(None),
        Err(e) => Err(work::to_napi(e)),
    }
}

fn text_or_null(row: Option<String>) -> String {
    row.unwrap_or_else(|| "null".to_string())
}

/// Upsert (`expected` `None`) or CAS put of the JSON text `body`; the row's
/// JSON text, or `None` on a lost race.
fn put(
    s: &dyn Store,
    collection: &str,
    id: &str,
    body: &str,
    expected: Option<f64>,
) -> logstore::Result<Option<String>> {
    let expected = match expected {
        None => None,
        Some(v) => match version(v) {
            Some(v) => Some(v),
            None => return Ok(None),
        },
    };
    let data = parse_body(body)?;
    let row = s.docs().put(collection, id, data, expected)?;
    Ok(row.as_ref().map(rows::document))
}

/// Shallow merge of the JSON object `patch` at version `expected`.
fn patch(
    s: &dyn Store,
    collection: &str,
    id: &str,
    patch: &str,
    expected: f64,
) -> logstore::Result<Option<String>> {
    let Some(expected) = version(expected) else {
        return Ok(None);
    };
    let patch = parse_body(patch)?;
    let row = s.docs().patch(collection, id, patch, expected)?;
    Ok(row.as_ref().map(rows::document))
}

/// A TTL from JavaScript: whole milliseconds, as SQLite stores `now + ttl`.
fn ttl(ms: f64) -> logstore::Result<i64> {
    if !ms.is_finite() || ms.abs() > 9_007_199_254_740_991.0 {
        return Err(invalid(format!(
            "ttlMs {ms} is not a number of milliseconds"
        )));
    }
    Ok(ms.trunc() as i64)
}

fn build_query(
    collection: String,
    fields: Vec<String>,
    values: Vec<String>,
    order_by: Option<String>,
    desc: bool,
    limit: Option<f64>,
    offset: Option<f64>,
) -> Query {
    let mut q = Query::new(collection);
    q.filter = fields
        .into_iter()
        .zip(values.into_iter().map(Value::String))
        .collect();
    q.order_by = order_by;
    q.order_dir = if desc { OrderDir::Desc } else { OrderDir::Asc };
    q.limit = count_arg(limit, DEFAULT_LIMIT, usize::MAX);
    q.offset = count_arg(offset, 0, 0);
    q
}
