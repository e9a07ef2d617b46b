//! An SQLite store.db whose signed columns hold what no driver writes (a
//! negative version or size, a version below 1): reads are typed errors
//! without a panic or a wrapped number, and a write over such a row fails
//! before its transaction commits, leaving the row as it was.
#![cfg(feature = "sqlite")]

use std::sync::Arc;

use logstore::{Acquire, BlobList, ManualClock, Options, Query, SqliteStore, Store};
use rusqlite::Connection;
use serde_json::json;

fn opts() -> Options {
    Options {
        clock: Arc::new(ManualClock::new(1_000)),
        ..Options::default()
    }
}

#[test]
fn negative_columns_are_errors_that_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store.db");
    let blobs = tmp.path().join("blobs");
    {
        let s = SqliteStore::open(&db, &blobs, opts()).unwrap();
        s.docs().put("c", "a", json!({"x": 1}), None).unwrap();
        s.docs().put("c", "b", json!({"x": 2}), None).unwrap();
        s.leases().acquire("k", "o", 60_000).unwrap();
        s.blobs()
            .put(&mut &b"hello"[..], logstore::BlobPut::default())
            .unwrap();
        s.close().unwrap();
    }
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "UPDATE store_docs SET version = -5 WHERE id = 'a';
             UPDATE store_docs SET version = -1 WHERE id = 'b';
             UPDATE store_leases SET version = -1;
             UPDATE store_blobs SET size = -7;",
        )
        .unwrap();
    let s = SqliteStore::open(&db, &blobs, opts()).unwrap();
    // Reads: typed errors, no panic.
    assert!(s.docs().get("c", "a").is_err());
    assert!(s.docs().query(&Query::new("c")).is_err());
    assert!(s.blobs().list(&BlobList::default()).is_err());
    assert!(s.docs().put("c", "a", json!({"x": 3}), None).is_err());
    // Writes over a row at version -1 must be refused too.
    let upsert = s.docs().put("c", "b", json!({"x": 3}), None);
    let acquire = s.leases().acquire("k", "o", 1_000);
    let version: i64 = Connection::open(&db)
        .unwrap()
        .query_row("SELECT version FROM store_docs WHERE id = 'b'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(upsert.is_err(), "acknowledged: {upsert:?}");
    assert_eq!(version, -1, "the bad row was rewritten");
    assert!(!matches!(acquire, Ok(Acquire::Acquired(_))), "{acquire:?}");
    let lease: i64 = Connection::open(&db)
        .unwrap()
        .query_row("SELECT version FROM store_leases", [], |r| r.get(0))
        .unwrap();
    assert_eq!(lease, -1, "the bad lease was rewritten");
}

/// A `store_blobs` size that is not the file's length (2^62, a byte off, a
/// negative number) sizes nothing: a get and a whole-store walk are
/// `Corruption` naming the blob.
#[test]
fn a_blob_size_that_is_not_its_file_is_corruption_naming_the_blob() {
    for size in ["4611686018427387904", "size - 1", "size + 1", "-1"] {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("store.db");
        let blobs = tmp.path().join("blobs");
        let id = {
            let s = SqliteStore::open(&db, &blobs, opts()).unwrap();
            let meta = s
                .blobs()
                .put(&mut &b"hello"[..], logstore::BlobPut::default())
                .unwrap();
            s.close().unwrap();
            meta.id
        };
        Connection::open(&db)
            .unwrap()
            .execute(&format!("UPDATE store_blobs SET size = {size}"), [])
            .unwrap();
        let s = SqliteStore::open(&db, &blobs, opts()).unwrap();
        let named = |result: logstore::Result<()>, what: &str| match result {
            Err(logstore::Error::Corruption { reason, .. }) => {
                assert!(reason.contains(&id), "{what}, size {size}: {reason}");
            }
            other => panic!("{what}, size {size}: expected Corruption, got {other:?}"),
        };
        named(s.blobs().get(&id).map(drop), "get");
        let walk = logstore::each_item(&s, |_| {}, |_| Ok(())).map(drop);
        named(walk, "walk");
    }
}
