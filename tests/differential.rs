//! Differential test: random operation sequences run against the log engine
//! and the SQLite driver (and, with the `postgres` feature and
//! `LOGSTORE_PG_URL`, the PostgreSQL driver, each case in a schema of its
//! own) with one shared clock; after every step all must return the same
//! result. `LOGSTORE_DIFF_CASES` sets the number of cases
//! (256 by default). Shrunk failures are kept by proptest under
//! `tests/differential.proptest-regressions` and replayed first.
#![cfg(feature = "sqlite")]

use std::io::{Cursor, Read};
use std::path::Path;
use std::sync::Arc;

use logstore::{
    BlobList, BlobMeta, BlobPut, Document, Durability, Error, LogStore, ManualClock, Options,
    Query, SqliteStore, Store,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const COLLECTIONS: [&str; 2] = ["a", "b"];
const IDS: [&str; 5] = ["1", "2", "3", "10", "x"];
const FIELDS: [&str; 5] = ["owner", "rank", "n", "meta.k", "tags.0"];

#[derive(Debug, Clone)]
enum Op {
    Ensure {
        coll: usize,
        fields: Vec<usize>,
    },
    Put {
        coll: usize,
        id: usize,
        body: Value,
        cas: Option<u64>,
    },
    Patch {
        coll: usize,
        id: usize,
        body: Value,
        version: u64,
    },
    Delete {
        coll: usize,
        id: usize,
    },
    Get {
        coll: usize,
        id: usize,
    },
    Query {
        coll: usize,
        filters: Vec<(usize, Value)>,
        order: Option<usize>,
        desc: bool,
        limit: usize,
        offset: usize,
    },
    Count {
        coll: usize,
        filters: Vec<(usize, Value)>,
    },
    List,
    Advance(i64),
    Reopen,
    /// Compacts the log engine (the SQLite driver has nothing to do).
    Compact,
    BlobPut {
        content: usize,
        mime: Option<usize>,
        owner: Option<usize>,
    },
    BlobGet {
        blob: usize,
    },
    BlobDelete {
        blob: usize,
    },
    BlobList {
        owner: Option<usize>,
        limit: Option<usize>,
        offset: Option<usize>,
    },
    Acquire {
        key: usize,
        owner: usize,
        ttl: i64,
    },
    Renew {
        key: usize,
        owner: usize,
        ttl: i64,
    },
    Release {
        key: usize,
        owner: usize,
    },
    ReleaseAll {
        owner: usize,
    },
    LeaseGet {
        key: usize,
    },
}

const CONTENTS: [&[u8]; 3] = [b"", b"same", b"other bytes"];
const MIMES: [&str; 2] = ["text/plain", "image/png"];
const OWNERS: [&str; 3] = ["a", "b", "c"];
const KEYS: [&str; 3] = ["k1", "k2", "conv:3"];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec!["x", "y", "", "Z", "é"]).prop_map(|s| json!(s)),
        prop::sample::select(vec![1.0, 1.5, 10.0, 9.0, -0.0, 1e21, 1e-7]).prop_map(|n| json!(n)),
        any::<bool>().prop_map(|b| json!(b)),
        Just(json!(7)),
    ]
}

fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => scalar(),
        1 => Just(Value::Null),
        1 => scalar().prop_map(|v| json!({ "k": v })),
        1 => scalar().prop_map(|v| json!([v])),
    ]
}

fn body() -> impl Strategy<Value = Value> {
    prop::collection::vec((0..4usize, any_value()), 0..4).prop_map(|pairs| {
        let mut map = Map::new();
        for (key, value) in pairs {
            match ["owner", "rank", "n", "meta"][key] {
                "meta" => map.insert("meta".into(), json!({ "k": value })),
                key => map.insert(key.into(), value),
            };
        }
        if map.len() % 2 == 1 {
            map.insert("tags".into(), json!(["t", 1]));
        }
        Value::Object(map)
    })
}

fn filters() -> impl Strategy<Value = Vec<(usize, Value)>> {
    prop::collection::vec(
        (
            0..FIELDS.len(),
            prop_oneof![8 => scalar(), 1 => Just(Value::Null)],
        ),
        0..3,
    )
}

fn op() -> impl Strategy<Value = Op> {
    let coll = 0..COLLECTIONS.len();
    let id = 0..IDS.len();
    prop_oneof![
        2 => (coll.clone(), prop::collection::vec(0..FIELDS.len(), 0..3))
            .prop_map(|(coll, fields)| Op::Ensure { coll, fields }),
        6 => (coll.clone(), id.clone(), body(), prop::option::of(0..4u64))
            .prop_map(|(coll, id, body, cas)| Op::Put { coll, id, body, cas }),
        2 => (coll.clone(), id.clone(), body(), 0..4u64)
            .prop_map(|(coll, id, body, version)| Op::Patch { coll, id, body, version }),
        2 => (coll.clone(), id.clone()).prop_map(|(coll, id)| Op::Delete { coll, id }),
        1 => (coll.clone(), id.clone()).prop_map(|(coll, id)| Op::Get { coll, id }),
        4 => (coll.clone(), filters(), prop::option::of(0..FIELDS.len() + 3), any::<bool>(), prop_oneof![4 => 1..6usize, 1 => Just(0usize), 1 => Just(100usize)], 0..3usize)
            .prop_map(|(coll, filters, order, desc, limit, offset)| Op::Query { coll, filters, order, desc, limit, offset }),
        2 => (coll, filters()).prop_map(|(coll, filters)| Op::Count { coll, filters }),
        1 => Just(Op::List),
        2 => (-5i64..20).prop_map(Op::Advance),
        1 => Just(Op::Reopen),
        1 => Just(Op::Compact),
        2 => (0..CONTENTS.len(), prop::option::of(0..MIMES.len()), prop::option::of(0..OWNERS.len()))
            .prop_map(|(content, mime, owner)| Op::BlobPut { content, mime, owner }),
        1 => (0..8usize).prop_map(|blob| Op::BlobGet { blob }),
        1 => (0..8usize).prop_map(|blob| Op::BlobDelete { blob }),
        1 => (prop::option::of(0..OWNERS.len()), prop::option::of(0..4usize), prop::option::of(0..3usize))
            .prop_map(|(owner, limit, offset)| Op::BlobList { owner, limit, offset }),
        3 => (0..KEYS.len(), 0..OWNERS.len(), prop::sample::select(vec![-5i64, 0, 5, 50]))
            .prop_map(|(key, owner, ttl)| Op::Acquire { key, owner, ttl }),
        2 => (0..KEYS.len(), 0..OWNERS.len(), prop::sample::select(vec![-5i64, 0, 5, 50]))
            .prop_map(|(key, owner, ttl)| Op::Renew { key, owner, ttl }),
        1 => (0..KEYS.len(), 0..OWNERS.len()).prop_map(|(key, owner)| Op::Release { key, owner }),
        1 => (0..OWNERS.len()).prop_map(|owner| Op::ReleaseAll { owner }),
        1 => (0..KEYS.len()).prop_map(|key| Op::LeaseGet { key }),
    ]
}

/// Blob ids are random per driver: rows are compared with each id replaced
/// by the position of its put in the sequence, and without the content
/// hash, which only the log engine records.
fn normalize(meta: &BlobMeta, ids: &[String]) -> String {
    let position = ids.iter().position(|id| id == &meta.id);
    format!(
        "blob#{position:?} {} {} {:?} {}",
        meta.mime, meta.size, meta.owner_id, meta.created_at
    )
}

fn blob_id(ids: &[String], blob: usize) -> String {
    if ids.is_empty() {
        // A well-formed id that no store holds.
        return "00000000-0000-4000-8000-000000000000".into();
    }
    ids[blob % ids.len()].clone()
}

/// A comparable outcome: the value, or the error's kind and message.
fn outcome<T: std::fmt::Debug>(r: logstore::Result<T>) -> String {
    match r {
        Ok(v) => format!("ok {v:?}"),
        Err(Error::InvalidInput(m)) => format!("invalid {m}"),
        Err(e) => format!("other error {e}"),
    }
}

fn build_query(coll: usize, filters: &[(usize, Value)], order: Option<usize>, desc: bool) -> Query {
    let mut q = Query::new(COLLECTIONS[coll]);
    for (field, value) in filters {
        q = q.filter(FIELDS[*field], value.clone());
    }
    if let Some(order) = order {
        let name = match order {
            0 => "createdAt",
            1 => "updatedAt",
            2 => "id",
            n => FIELDS[n - 3],
        };
        q = q.order_by(name);
    }
    if desc {
        q = q.desc();
    }
    q
}

fn run(store: &dyn Store, op: &Op, clock: &ManualClock, blobs: &mut Vec<String>) -> String {
    let d = store.docs();
    let (b, l) = (store.blobs(), store.leases());
    match op {
        Op::BlobPut {
            content,
            mime,
            owner,
        } => {
            let opts = BlobPut {
                mime: mime.map(|m| MIMES[m].to_string()),
                owner_id: owner.map(|o| OWNERS[o].to_string()),
            };
            let result = b.put(&mut Cursor::new(CONTENTS[*content].to_vec()), opts);
            if let Ok(meta) = &result {
                blobs.push(meta.id.clone());
            }
            outcome(result.map(|m| normalize(&m, blobs)))
        }
        Op::BlobGet { blob } => outcome(b.get(&blob_id(blobs, *blob)).map(|found| {
            found.map(|(meta, mut reader)| {
                let mut bytes = Vec::new();
                reader.read_to_end(&mut bytes).expect("blob bytes");
                (normalize(&meta, blobs), bytes)
            })
        })),
        Op::BlobDelete { blob } => outcome(b.delete(&blob_id(blobs, *blob))),
        Op::BlobList {
            owner,
            limit,
            offset,
        } => {
            let list = BlobList {
                owner_id: owner.map(|o| OWNERS[o].to_string()),
                limit: *limit,
                offset: *offset,
            };
            outcome(b.list(&list).map(|metas| {
                metas
                    .iter()
                    .map(|m| normalize(m, blobs))
                    .collect::<Vec<_>>()
            }))
        }
        Op::Acquire { key, owner, ttl } => outcome(l.acquire(KEYS[*key], OWNERS[*owner], *ttl)),
        Op::Renew { key, owner, ttl } => outcome(l.renew(KEYS[*key], OWNERS[*owner], *ttl)),
        Op::Release { key, owner } => outcome(l.release(KEYS[*key], OWNERS[*owner])),
        Op::ReleaseAll { owner } => outcome(l.release_all(OWNERS[*owner])),
        Op::LeaseGet { key } => outcome(l.get(KEYS[*key])),
        Op::Ensure { coll, fields } => {
            let fields: Vec<&str> = fields.iter().map(|f| FIELDS[*f]).collect();
            outcome(d.ensure_collection(COLLECTIONS[*coll], &fields))
        }
        Op::Put {
            coll,
            id,
            body,
            cas,
        } => outcome(d.put(COLLECTIONS[*coll], IDS[*id], body.clone(), *cas)),
        Op::Patch {
            coll,
            id,
            body,
            version,
        } => outcome(d.patch(COLLECTIONS[*coll], IDS[*id], body.clone(), *version)),
        Op::Delete { coll, id } => outcome(d.delete(COLLECTIONS[*coll], IDS[*id])),
        Op::Get { coll, id } => outcome(d.get(COLLECTIONS[*coll], IDS[*id])),
        Op::Query {
            coll,
            filters,
            order,
            desc,
            limit,
            offset,
        } => {
            let q = build_query(*coll, filters, *order, *desc)
                .limit(*limit)
                .offset(*offset);
            outcome(d.query(&q).map(|rows: Vec<Document>| rows))
        }
        Op::Count { coll, filters } => outcome(d.count(&build_query(*coll, filters, None, false))),
        Op::List => outcome(d.list_collections()),
        Op::Advance(ms) => {
            clock.advance(*ms);
            String::new()
        }
        Op::Reopen | Op::Compact => String::new(),
    }
}

#[cfg(feature = "postgres")]
#[path = "pg/mod.rs"]
mod pg;

struct Pair {
    log: LogStore,
    sqlite: SqliteStore,
    #[cfg(feature = "postgres")]
    pg: Option<logstore::PgStore>,
}

/// The PostgreSQL schema of this case, when a server is configured.
type PgSchema = Option<String>;

#[cfg(feature = "postgres")]
fn pg_schema() -> PgSchema {
    pg::available().then(pg::fresh_schema)
}

#[cfg(not(feature = "postgres"))]
fn pg_schema() -> PgSchema {
    None
}

fn open_pair(dir: &Path, opts: &Options, _schema: &PgSchema) -> Pair {
    Pair {
        log: LogStore::open(dir.join("log"), opts.clone()).unwrap(),
        sqlite: SqliteStore::open(dir.join("store.db"), dir.join("blobs"), opts.clone()).unwrap(),
        #[cfg(feature = "postgres")]
        pg: _schema.as_ref().map(|schema| {
            let url = pg::url().unwrap();
            logstore::PgStore::open_in_schema(&url, schema, opts.clone()).unwrap()
        }),
    }
}

impl Pair {
    fn close(&self) {
        self.log.close().unwrap();
        self.sqlite.close().unwrap();
        #[cfg(feature = "postgres")]
        if let Some(pg) = &self.pg {
            pg.close().unwrap();
        }
    }

    /// Runs `op` on the PostgreSQL store, if any, and checks it answers
    /// as the log engine did.
    #[cfg(feature = "postgres")]
    fn check_pg(
        &self,
        op: &Op,
        clock: &ManualClock,
        blobs: &mut Vec<String>,
        log: &str,
        step: usize,
    ) -> Result<(), TestCaseError> {
        if let Some(pg) = &self.pg {
            let answer = run(pg, op, clock, blobs);
            prop_assert_eq!(log, &answer, "postgres: step {} {:?}", step, op);
        }
        Ok(())
    }

    #[cfg(not(feature = "postgres"))]
    fn check_pg(
        &self,
        _op: &Op,
        _clock: &ManualClock,
        _blobs: &mut Vec<String>,
        _log: &str,
        _step: usize,
    ) -> Result<(), TestCaseError> {
        Ok(())
    }
}

fn check_sequence(ops: &[Op]) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    // Small segments, so sequences roll and compact across several.
    let opts = Options {
        clock: clock.clone(),
        durability: Durability::Flush,
        segment_bytes: 4096,
        ..Options::default()
    };
    let schema = pg_schema();
    let mut pair = open_pair(tmp.path(), &opts, &schema);
    let (mut log_blobs, mut sqlite_blobs, mut pg_blobs) = (Vec::new(), Vec::new(), Vec::new());
    let mut last_blob_ms = i64::MIN / 2;
    for (step, op) in ops.iter().enumerate() {
        if let Op::BlobPut { .. } = op {
            // Distinct timestamps keep the newest-first order free of ties,
            // which would otherwise break on the drivers' different ids
            // (the clock may also have moved back).
            use logstore::Clock as _;
            last_blob_ms = (last_blob_ms + 1).max(clock.now_ms());
            clock.set(last_blob_ms);
        }
        if let Op::Reopen = op {
            pair.close();
            drop(pair);
            pair = open_pair(tmp.path(), &opts, &schema);
            continue;
        }
        if let Op::Compact = op {
            pair.log.compact().unwrap();
            continue;
        }
        let log = run(&pair.log, op, &clock, &mut log_blobs);
        let sqlite = run(&pair.sqlite, op, &clock, &mut sqlite_blobs);
        prop_assert_eq!(&log, &sqlite, "step {} {:?}", step, op);
        pair.check_pg(op, &clock, &mut pg_blobs, &log, step)?;
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("LOGSTORE_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn log_engine_and_sqlite_agree(
        setup in prop::collection::vec(prop::collection::vec(0..FIELDS.len(), 2..5), COLLECTIONS.len()),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        // Most sequences start from ensured collections, so queries on
        // indexed fields are common rather than rare.
        let mut all: Vec<Op> = setup
            .into_iter()
            .enumerate()
            .map(|(coll, fields)| Op::Ensure { coll, fields })
            .collect();
        all.extend(ops);
        check_sequence(&all)?;
    }
}
