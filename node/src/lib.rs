//! The native half of `@logstore/pattern-stores`: a logstore `LogStore`
//! behind a napi-rs class. The TypeScript layer (`ts/index.ts`) turns these
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
//! use the engine's raw reads: the stored body text goes into the row as it
//! is, never parsed or re-serialized in Rust.

mod blobs;
mod rows;
mod work;

use std::path::PathBuf;
use std::sync::Arc;

use logstore::{
    BlobList, Budget, Durability, LogStore, ManualClock, Options, OrderDir, Query, Session, Store,
    DEFAULT_LIMIT,
};
use napi::bindgen_prelude::Object;
use napi::Env;
use napi_derive::napi;
use serde_json::Value;

use crate::work::spawn;

/// An open store. Every method returns a promise unless it says otherwise.
#[napi]
pub struct NativeStore {
    store: Arc<LogStore>,
    clock: Option<Arc<ManualClock>>,
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
}

/// What a read on the JavaScript thread may do (`querySync`, `countSync`);
/// a read over it goes to the pool. At its edges, through PatternStores
/// with the JSON.parse of the rows (`bench/in-place.mjs`, fastest of 200
/// runs on the 2-core development machine): a 10-row page sorting 3,900
/// candidates by an indexed field 200 µs (by `updatedAt` 90 µs), a walk
/// of 3,900 checking two filters 12 µs, 200 rows of 150 to 300 bytes
/// 300 µs, 30 rows of 2 KiB 76 µs. So an in-place read stays near half a
/// millisecond at most, whatever the store's size.
const IN_PLACE: Budget = Budget {
    entries: 4_000,
    rows: 200,
    bytes: 64 * 1024,
};

fn invalid(message: impl Into<String>) -> logstore::Error {
    // `Error::InvalidInput` has a public constructor only inside the crate;
    // the variant itself is public.
    logstore::Error::InvalidInput(message.into())
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
    /// Opens (or creates) the store in `dir`. Fails with a message naming
    /// the directory when another handle holds it.
    #[napi(ts_return_type = "Promise<NativeStore>")]
    pub fn open(env: &Env, dir: String, opts: OpenOptions) -> napi::Result<Object<'_>> {
        spawn(env, move || {
            let mut options = Options::default();
            if let Some(max) = opts.max_blob_bytes {
                if !(max.is_finite() && max >= 0.0) {
                    return Err(invalid(format!("maxBlobBytes {max} is not a byte count")));
                }
                options.max_blob_bytes = max as u64;
            }
            options.durability = match opts.durability.as_deref() {
                None | Some("sync") => Durability::Sync,
                Some("flush") => Durability::Flush,
                Some(other) => {
                    return Err(invalid(format!(
                        "durability \"{other}\" is neither \"sync\" nor \"flush\""
                    )))
                }
            };
            let clock = opts
                .manual_clock_ms
                .map(|ms| Arc::new(ManualClock::new(ms as i64)));
            if let Some(clock) = &clock {
                options.clock = clock.clone();
            }
            let store = LogStore::open(PathBuf::from(dir), options)?;
            Ok(NativeStore {
                store: Arc::new(store),
                clock,
            })
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

    /// Syncs, writes the index snapshot and releases the directory.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let s = self.store.clone();
        spawn(env, move || s.close())
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub fn ensure_collection<'e>(
        &self,
        env: &'e Env,
        name: String,
        indexes: Vec<String>,
    ) -> napi::Result<Object<'e>> {
        let s = self.store.clone();
        spawn(env, move || {
            let fields: Vec<&str> = indexes.iter().map(String::as_str).collect();
            s.docs().ensure_collection(&name, &fields)
        })
    }

    /// JSON text of `[{ name, indexes, docCount }]`.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn list_collections<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let s = self.store.clone();
        spawn(env, move || {
            Ok(rows::collections(&s.docs().list_collections()?))
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
        let s = self.store.clone();
        spawn(env, move || {
            Ok(s.docs()
                .get_raw(&collection, &id)?
                .as_ref()
                .map(rows::raw_document))
        })
    }

    /// The same lookup as `get`, on the calling thread: a read that finds
    /// its record in the page cache costs less than a trip to the pool.
    #[napi(catch_unwind)]
    pub fn get_sync(&self, collection: String, id: String) -> napi::Result<Option<String>> {
        let doc = self
            .store
            .docs()
            .get_raw(&collection, &id)
            .map_err(work::to_napi)?;
        Ok(doc.as_ref().map(rows::raw_document))
    }

    /// A write of a `flush` store in place: the JSON text `writeBatch` would
    /// give for it, or `""` when it would wait (see [`now`]) and must go
    /// through `writeBatch` instead.
    /// Its arguments are a `Write`'s fields one by one: a napi object
    /// costs more to cross, a sizeable share of a put in place.
    #[napi(catch_unwind)]
    pub fn write_now(
        &self,
        op: String,
        a: String,
        b: String,
        body: Option<String>,
        num: Option<f64>,
    ) -> napi::Result<String> {
        let w = Write {
            op,
            a,
            b,
            body,
            num,
        };
        now(&self.store, |s| write(s, &w))
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
        let s = self.store.clone();
        spawn(env, move || {
            Ok(rows::raw_documents(&s.docs().query_raw(&q)?))
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
            .store
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
        let s = self.store.clone();
        spawn(env, move || Ok(s.docs().count(&q)? as f64))
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
            .store
            .count_within(&q, IN_PLACE)
            .map_err(work::to_napi)?;
        Ok(n.map(|n| n as f64))
    }

    /// JSON text of the blob's metadata, or null.
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn blob_meta<'e>(&self, env: &'e Env, id: String) -> napi::Result<Object<'e>> {
        let s = self.store.clone();
        spawn(env, move || {
            Ok(s.blobs().get_meta(&id)?.as_ref().map(rows::blob_meta))
        })
    }

    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn blob_delete<'e>(&self, env: &'e Env, id: String) -> napi::Result<Object<'e>> {
        let s = self.store.clone();
        spawn(env, move || s.blobs().delete(&id))
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
        let s = self.store.clone();
        spawn(env, move || Ok(rows::blob_metas(&s.blobs().list(&list)?)))
    }

    /// Runs `writes` in order on the pool as one batch (`LogStore::batch`):
    /// each is appended as it comes and all share one sync, so the writes
    /// one turn of the event loop queued cost one sync, not one each. Each
    /// outcome is its answer's JSON text or its error's message; the
    /// promise rejects (and no answer stands) when the batch's sync fails.
    #[napi(ts_return_type = "Promise<Written[]>")]
    pub fn write_batch<'e>(&self, env: &'e Env, writes: Vec<Write>) -> napi::Result<Object<'e>> {
        let s = self.store.clone();
        spawn(env, move || {
            s.batch(|s| {
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
            })
        })
    }

    /// JSON text of the lease row, or null.
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn lease_get<'e>(&self, env: &'e Env, key: String) -> napi::Result<Object<'e>> {
        let s = self.store.clone();
        spawn(env, move || {
            Ok(s.leases().get(&key)?.as_ref().map(rows::lease))
        })
    }
}

/// One document or lease write (`NativeStore.writeNow`, `writeBatch`): `op`
/// names it, the other fields are its arguments.
#[napi(object)]
pub struct Write {
    /// `"put"`, `"patch"`, `"delete"`, `"acquire"`, `"renew"`, `"release"`
    /// or `"releaseAll"`.
    pub op: String,
    /// The collection, or the lease key (unused by `releaseAll`).
    pub a: String,
    /// The document id, or the lease owner.
    pub b: String,
    /// A put's or a patch's body, as JSON text.
    pub body: Option<String>,
    /// A put's or a patch's expected version, or a lease's TTL in ms.
    pub num: Option<f64>,
}

/// What a batch write came to: its answer as JSON text, or its error's
/// message.
#[napi(object)]
pub struct Written {
    pub text: Option<String>,
    pub error: Option<String>,
}

/// Runs one write, in place or in a batch; its answer as JSON text (a row or `null`, `true`
/// or `false`, a lease result, a count).
fn write(s: &dyn Store, w: &Write) -> logstore::Result<String> {
    let body = || {
        w.body
            .as_deref()
            .ok_or_else(|| invalid(format!("a {} needs a body", w.op)))
    };
    match w.op.as_str() {
        "put" => put(s, &w.a, &w.b, body()?, w.num).map(text_or_null),
        "patch" => patch(s, &w.a, &w.b, body()?, w.num.unwrap_or(f64::NAN)).map(text_or_null),
        "delete" => s.docs().delete(&w.a, &w.b).map(|done| done.to_string()),
        op => lease_write(s, op, &w.a, &w.b, w.num.unwrap_or(0.0)),
    }
}

/// A lease write; its answer as JSON text.
fn lease_write(
    s: &dyn Store,
    op: &str,
    key: &str,
    owner: &str,
    ttl_ms: f64,
) -> logstore::Result<String> {
    match op {
        "acquire" => Ok(rows::acquire(&s.leases().acquire(
            key,
            owner,
            ttl(ttl_ms)?,
        )?)),
        "renew" => Ok(rows::acquire(&s.leases().renew(
            key,
            owner,
            ttl(ttl_ms)?,
        )?)),
        "release" => s.leases().release(key, owner).map(|()| "null".to_string()),
        "releaseAll" => s.leases().release_all(owner).map(|n| n.to_string()),
        other => Err(invalid(format!("no write called \"{other}\""))),
    }
}

/// Runs the write `f` in place on the JavaScript thread without ever
/// blocking it ([`LogStore::without_waiting`]): its answer as JSON text, or
/// `""` when it would have waited for the disk or another writer (a
/// `sync` store's every write; a `flush` store's roll to a new segment, or
/// a writer lock held by a pooled call), having written nothing; the
/// caller then makes the pooled call. A `flush` write that needs no wait is
/// an append to the page cache, a small fraction of the cost of a trip
/// through the pool and back.
fn now(
    store: &LogStore,
    f: impl FnOnce(&Session) -> logstore::Result<String>,
) -> napi::Result<String> {
    match store.without_waiting(f) {
        Ok(answer) => Ok(answer),
        Err(logstore::Error::WouldBlock(_)) => Ok(String::new()),
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
