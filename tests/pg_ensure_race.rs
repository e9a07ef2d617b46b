//! Writes that wait for an `ensure_collection` adding an index: a put and
//! a patch that take the collection's lock while the ensure backfills must
//! write index rows for the new field once it commits, as the backfill did
//! not see them. (A statement that waits for a lock still reads from the
//! snapshot it took before waiting, so the indexes are read by a statement
//! that begins after the lock is held.)
//!
//! One test in its own binary: it watches the server's advisory locks to
//! know that the writes wait, and no other test's locks may show there.
#![cfg(feature = "postgres")]

mod pg;

use logstore::{Options, PgStore, Query, Store};
use serde_json::json;

/// Documents the ensure backfills, so that it holds its lock long enough
/// for the writes to queue behind it.
const BACKFILLED: u64 = 50_000;

/// Advisory locks on the server in `mode` that are `granted` (or not).
fn advisory_locks(client: &mut postgres::Client, mode: &str, granted: bool) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND mode = $1 AND granted = $2",
            &[&mode, &granted],
        )
        .expect("pg_locks")
        .get(0)
}

#[test]
fn writes_that_waited_for_an_ensure_are_indexed_by_its_new_field() {
    let Some(url) = pg::url() else { return };
    let (store, schema) = pg::open_fresh(Options::default());
    let docs = store.docs();
    docs.ensure_collection("c", &[]).expect("ensure");
    docs.put("c", "patched", json!({"k": "v"}), None)
        .expect("put")
        .expect("written");
    pg::psql(&format!(
        "INSERT INTO {schema}.store_docs (collection, id, data, version, created_at, updated_at)
         SELECT 'c'::bytea, convert_to('p' || g, 'UTF8'), '{{\"k\": \"v\"}}'::json, 1, 0, 0
         FROM generate_series(1, {BACKFILLED}) g"
    ));
    let writer = PgStore::open_in_schema(&url, &schema, Options::default()).expect("open");
    let mut watch = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    std::thread::scope(|scope| {
        let ensure = scope.spawn(|| store.docs().ensure_collection("c", &["k"]));
        let mut wait_for = |mode: &str, granted: bool, count: i64, what: &str| {
            while advisory_locks(&mut watch, mode, granted) < count {
                assert!(
                    !ensure.is_finished(),
                    "the ensure finished before {what}: raise BACKFILLED"
                );
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        };
        wait_for("ExclusiveLock", true, 1, "it was seen holding its lock");
        let put = scope.spawn(|| writer.docs().put("c", "late", json!({"k": "v"}), None));
        let patch = scope.spawn(|| writer.docs().patch("c", "patched", json!({"n": 1}), 1));
        wait_for("ShareLock", false, 2, "both writes were seen waiting");
        ensure.join().expect("ensure").expect("ensure");
        assert!(put.join().expect("put").expect("put").is_some());
        assert!(patch.join().expect("patch").expect("patch").is_some());
    });
    let indexed = docs
        .count(&Query::new("c").filter("k", "v"))
        .expect("count");
    // The backfilled ones, "late" and "patched".
    assert_eq!(indexed, BACKFILLED + 2, "documents found by the new index");
    store.drop_schema().expect("drop");
}
