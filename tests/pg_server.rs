//! The PostgreSQL driver against a real server (`LOGSTORE_PG_URL`), beyond
//! the conformance suite: races between separate stores (as separate
//! processes would race), NUL bytes where the contract allows them, blobs
//! larger than one chunk, the schema the URL names, and connection errors.
#![cfg(feature = "postgres")]

mod pg;

use std::io::{Cursor, Read};
use std::sync::Arc;

use logstore::{
    Acquire, BlobList, BlobPut, Error, LogStore, ManualClock, Options, PgStore, Query, Store,
    Transfer,
};
use serde_json::json;

const THREADS: usize = 8;
const ROUNDS: usize = 40;

fn manual_opts() -> (Options, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let opts = Options {
        clock: clock.clone(),
        ..Options::default()
    };
    (opts, clock)
}

/// Runs `f(thread)` on `THREADS` threads released together; returns how
/// many said they won.
fn race(f: impl Fn(usize) -> bool + Sync) -> usize {
    pg::race(THREADS, f).into_iter().filter(|won| *won).count()
}

#[test]
fn racing_stores_have_exactly_one_winner_per_cas_and_per_acquire() {
    let Some(url) = pg::url() else { return };
    let schema = pg::fresh_schema();
    // One store per thread, as separate processes on separate machines.
    let stores: Vec<PgStore> = (0..THREADS)
        .map(|_| PgStore::open_in_schema(&url, &schema, Options::default()).expect("open"))
        .collect();
    stores[0]
        .docs()
        .ensure_collection("c", &["round"])
        .expect("ensure");
    for round in 0..ROUNDS {
        let base = stores[0]
            .docs()
            .put("c", "race", json!({"round": round}), None)
            .expect("put")
            .expect("an upsert writes");
        let cas_winners = race(|t| {
            let body = json!({"round": round, "winner": t});
            stores[t]
                .docs()
                .put("c", "race", body, Some(base.version))
                .expect("a lost CAS is None, not an error")
                .is_some()
        });
        assert_eq!(cas_winners, 1, "round {round}: CAS winners");
        let key = format!("lease-{round}");
        let lease_winners = race(|t| {
            let outcome = stores[t]
                .leases()
                .acquire(&key, &format!("run-{t}"), 60_000)
                .expect("a held lease is Held, not an error");
            matches!(outcome, Acquire::Acquired(_))
        });
        assert_eq!(lease_winners, 1, "round {round}: lease winners");
        let doc = stores[0]
            .docs()
            .get("c", "race")
            .expect("get")
            .expect("row");
        assert_eq!(doc.version, base.version + 1);
    }
    let current = stores[0]
        .docs()
        .get("c", "race")
        .expect("get")
        .expect("row")
        .version;
    let patch_winners = race(|t| {
        stores[t]
            .docs()
            .patch("c", "race", json!({"patched": t}), current)
            .expect("a lost patch is None")
            .is_some()
    });
    assert_eq!(patch_winners, 1, "patch winners");
}

/// Runs the same calls on a store and returns what they answered.
fn nul_script(s: &dyn Store) -> Vec<String> {
    let (d, l, b) = (s.docs(), s.leases(), s.blobs());
    let mut out = Vec::new();
    d.ensure_collection("c\0x", &["k\0", "n"]).expect("ensure");
    for (id, k) in [("a\0b", "v\0"), ("a", "v"), ("a\0", "v\0\0"), ("\0", "v\0")] {
        let row = d.put("c\0x", id, json!({"k\0": k, "n": 1, "t": "\0"}), None);
        out.push(format!("{:?}", row.map(|r| r.map(|r| (r.id, r.data)))));
    }
    for order in ["id", "k\0"] {
        let q = Query::new("c\0x").order_by(order);
        out.push(format!("{:?}", d.query(&q).map(ids)));
        out.push(format!("{:?}", d.query(&q.desc()).map(ids)));
    }
    let q = Query::new("c\0x").filter("k\0", "v\0");
    out.push(format!("{:?}", d.query(&q).map(ids)));
    out.push(format!("{:?}", d.count(&q)));
    out.push(format!("{:?}", d.list_collections()));
    out.push(format!("{:?}", l.acquire("k\0", "o\0", 1000)));
    out.push(format!("{:?}", l.acquire("k\0", "o", 1000)));
    out.push(format!("{:?}", l.release_all("o\0")));
    let put = BlobPut {
        mime: Some("text/\0".into()),
        owner_id: Some("u\0".into()),
    };
    let meta = b
        .put(&mut Cursor::new(b"\0\0".to_vec()), put)
        .expect("blob");
    let listed = b.list(&BlobList {
        owner_id: Some("u\0".into()),
        ..BlobList::default()
    });
    out.push(format!(
        "{:?}",
        listed.map(|v| v
            .iter()
            .map(|m| (m.mime.clone(), m.size))
            .collect::<Vec<_>>())
    ));
    out.push(format!(
        "{:?}",
        b.get_meta(&meta.id).map(|m| m.map(|m| m.owner_id))
    ));
    out
}

fn ids(rows: Vec<logstore::Document>) -> Vec<String> {
    rows.into_iter().map(|d| d.id).collect()
}

#[test]
fn nul_bytes_round_trip_and_sort_as_in_the_log_engine() {
    if !pg::available() {
        return;
    }
    let (opts, _clock) = manual_opts();
    let (pg_store, _) = pg::open_fresh(opts.clone());
    let log = LogStore::in_memory(opts).expect("log store");
    assert_eq!(nul_script(&pg_store), nul_script(&log));
}

/// Counts rows in the store's schema through `psql`, which comes with the
/// server's package; the store itself cannot see chunk rows.
fn psql_count(schema: &str, table: &str) -> i64 {
    let url = pg::url().expect("url");
    let out = std::process::Command::new("psql")
        .args([
            &url,
            "-tAc",
            &format!("SELECT count(*) FROM {schema}.{table}"),
        ])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a count")
}

/// Yields `left` bytes of a simple pattern, then fails if `fail` is set.
struct Pattern {
    left: usize,
    at: usize,
    fail: bool,
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return if self.fail {
                Err(std::io::Error::other("the caller's stream broke"))
            } else {
                Ok(0)
            };
        }
        let n = buf.len().min(self.left).min(100_000);
        for byte in &mut buf[..n] {
            *byte = (self.at % 251) as u8;
            self.at += 1;
        }
        self.left -= n;
        Ok(n)
    }
}

fn pattern(len: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    Pattern {
        left: len,
        at: 0,
        fail: false,
    }
    .read_to_end(&mut bytes)
    .expect("pattern");
    bytes
}

#[test]
fn blobs_larger_than_a_chunk_stream_whole_even_when_deleted_meanwhile() {
    if !pg::available() {
        return;
    }
    let len = 3 * 1024 * 1024 + 12_345;
    let (store, schema) = pg::open_fresh(Options::default());
    let b = store.blobs();
    let source = &mut Pattern {
        left: len,
        at: 0,
        fail: false,
    };
    let meta = b.put(source, BlobPut::default()).expect("put");
    assert_eq!(meta.size, len as u64);
    assert_eq!(psql_count(&schema, "store_blob_chunks"), 4);
    let (got, mut reader) = b.get(&meta.id).expect("get").expect("blob");
    assert_eq!(got, meta);
    let mut first = vec![0u8; 10];
    reader.read_exact(&mut first).expect("first bytes");
    // The reader keeps its snapshot: a delete now does not cut it short.
    assert!(b.delete(&meta.id).expect("delete"));
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).expect("the rest");
    first.extend(rest);
    assert!(first == pattern(len), "the bytes read back differ");
    assert!(b.get(&meta.id).expect("get").is_none());
    assert_eq!(psql_count(&schema, "store_blob_chunks"), 0);
}

#[test]
fn failed_blob_puts_leave_no_rows() {
    if !pg::available() {
        return;
    }
    let opts = Options {
        max_blob_bytes: 2 * 1024 * 1024 + 1,
        ..Options::default()
    };
    let (store, schema) = pg::open_fresh(opts);
    let b = store.blobs();
    let over = &mut Pattern {
        left: 2 * 1024 * 1024 + 2,
        at: 0,
        fail: false,
    };
    assert!(matches!(
        b.put(over, BlobPut::default()),
        Err(Error::InvalidInput(_))
    ));
    let broken = &mut Pattern {
        left: 1024 * 1024 + 7,
        at: 0,
        fail: true,
    };
    assert!(matches!(
        b.put(broken, BlobPut::default()),
        Err(Error::Io { .. })
    ));
    assert_eq!(psql_count(&schema, "store_blob_chunks"), 0);
    assert_eq!(psql_count(&schema, "store_blobs"), 0);
    let exact = &mut Pattern {
        left: 2 * 1024 * 1024 + 1,
        at: 0,
        fail: false,
    };
    assert!(
        b.put(exact, BlobPut::default()).is_ok(),
        "the limit itself fits"
    );
}

#[test]
fn the_url_can_name_the_schema_and_reopening_keeps_everything() {
    let Some(url) = pg::url() else { return };
    let schema = pg::fresh_schema();
    let named = pg::with_param(&url, &format!("options=-csearch_path%3D{schema}"));
    let (opts, _clock) = manual_opts();
    let store = PgStore::open(&named, opts.clone()).expect("open");
    assert_eq!(store.schema(), schema);
    store.docs().ensure_collection("c", &["k"]).expect("ensure");
    store
        .docs()
        .put("c", "1", json!({"k": 1}), None)
        .expect("put");
    store.leases().acquire("k", "o", 5).expect("acquire");
    store.close().expect("close");
    let again = PgStore::open_in_schema(&url, &schema, opts).expect("reopen");
    assert_eq!(
        again.docs().get("c", "1").expect("get").map(|d| d.version),
        Some(1)
    );
    assert_eq!(again.all_leases().expect("leases").len(), 1);
    assert_eq!(psql_count(&schema, "_store_migrations"), 3);
}

#[test]
fn bad_urls_and_schemas_are_invalid_input_and_an_absent_server_is_not_connected() {
    let Some(url) = pg::url() else { return };
    let bad = PgStore::open("postgres://host:notaport/db", Options::default());
    assert!(matches!(bad, Err(Error::InvalidInput(_))), "{bad:?}");
    let bad = PgStore::open_in_schema(&url, "no-dashes", Options::default());
    assert!(matches!(bad, Err(Error::InvalidInput(_))), "{bad:?}");
    let absent = "postgresql://postgres@%2Fnonexistent-logstore-dir/postgres?connect_timeout=1";
    match PgStore::open(absent, Options::default()) {
        Err(Error::Io { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::NotConnected);
        }
        other => panic!("expected Io NotConnected, got {other:?}"),
    }
}

#[test]
fn a_statement_the_server_refuses_is_a_postgres_error() {
    if !pg::available() {
        return;
    }
    let (store, schema) = pg::open_fresh(Options::default());
    store.docs().put("c", "1", json!({}), None).expect("put");
    // A foreign writer drops a table the store needs.
    let url = pg::url().expect("url");
    let out = std::process::Command::new("psql")
        .args([&url, "-c", &format!("DROP TABLE {schema}.store_leases")])
        .output()
        .expect("psql");
    assert!(out.status.success());
    let err = store.leases().get("k").expect_err("no table");
    assert!(matches!(err, Error::Postgres(_)), "{err:?}");
    // What the server said, with its SQLSTATE, not the client's "db error".
    assert_eq!(
        err.to_string(),
        "PostgreSQL error 42P01: relation \"store_leases\" does not exist"
    );
    // A refused statement does not break the store.
    assert!(store.docs().get("c", "1").expect("get").is_some());
}

/// PostgreSQL folds an unquoted `search_path` to lower case, so a store
/// opened in schema `T_X` must not end up in `t_x` (another store's tables),
/// nor fail with a server error because `t_x` does not exist: a schema name
/// is either refused up front or names exactly that schema.
#[test]
fn a_mixed_case_schema_is_refused_or_is_its_own_schema() {
    let Some(url) = pg::url() else { return };
    let lower = pg::fresh_schema();
    let upper = lower.to_uppercase();
    assert_ne!(lower, upper);
    // Alone: the open must not fail with a server error.
    match PgStore::open_in_schema(&url, &upper, Options::default()) {
        Ok(up) => {
            up.docs().put("c", "1", json!({}), None).expect("put");
            up.drop_schema().expect("drop");
        }
        Err(Error::InvalidInput(_)) => {}
        Err(e) => panic!("opening schema {upper} alone: {e:?}"),
    }
    // Beside its lower-case twin: it must not see the twin's rows.
    let low = PgStore::open_in_schema(&url, &lower, Options::default()).expect("open lower");
    low.docs().put("c", "1", json!({}), None).expect("put");
    match PgStore::open_in_schema(&url, &upper, Options::default()) {
        Ok(up) => {
            let seen = up.docs().get("c", "1").expect("get");
            let _ = up.drop_schema();
            assert!(
                seen.is_none(),
                "the store in {upper} reads the rows of {lower}"
            );
        }
        Err(Error::InvalidInput(_)) => {}
        Err(e) => panic!("opening schema {upper} beside {lower}: {e:?}"),
    }
    low.drop_schema().expect("drop");
}

/// A get of a chunked blob whose row cannot be read (here a mime type that
/// is not UTF-8, as a foreign writer may leave) fails; the connection it
/// ran on must not go back to the pool inside its READ ONLY, REPEATABLE
/// READ transaction, where the next calls would fail to write and read a
/// stale snapshot.
#[test]
fn a_failed_chunked_get_leaves_no_transaction_open_on_the_pooled_connection() {
    if !pg::available() {
        return;
    }
    let (store, schema) = pg::open_fresh(Options::default());
    let bytes = pattern(1024 * 1024 + 10);
    let meta = store
        .blobs()
        .put(&mut Cursor::new(bytes), BlobPut::default())
        .expect("put");
    let url = pg::url().expect("url");
    let out = std::process::Command::new("psql")
        .args([
            &url,
            "-c",
            &format!(
                "UPDATE {schema}.store_blobs SET mime = '\\xff'::bytea WHERE id = '{}'",
                meta.id
            ),
        ])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        store.blobs().get(&meta.id).is_err(),
        "a mime that is not UTF-8"
    );
    // One thread, so the pool hands out the same connection again.
    for round in 0..3 {
        let doc = store
            .docs()
            .put("c", "1", json!({ "round": round }), None)
            .expect("a write after the failed get")
            .expect("an unconditional put writes");
        let read = store.docs().get("c", "1").expect("get").expect("the doc");
        assert_eq!(read.version, doc.version, "a read sees the write before it");
        store.leases().acquire("k", "o", 1000).expect("acquire");
    }
}
