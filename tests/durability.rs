//! Durability: a failed sync or write poisons the store, so no later write
//! reports success until the store is reopened.

mod common;

use std::path::Path;

use logstore::io::FaultFs;
use logstore::{Durability, Error, LogStore, Options, Query, Store};
use serde_json::json;

fn open(fs: &FaultFs, durability: Durability) -> LogStore {
    let opts = Options {
        durability,
        ..Options::default()
    };
    LogStore::open_with_fs(fs.as_vfs(), Path::new("db"), opts).unwrap()
}

#[test]
fn a_failed_sync_poisons_the_store_until_reopen() {
    let fs = FaultFs::new();
    let store = open(&fs, Durability::Sync);
    store.docs().put("c", "ok", json!({}), None).unwrap();
    // The put's write succeeds and its sync (call 2) fails.
    fs.fail_at(2, false);
    let err = store.docs().put("c", "lost", json!({}), None).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert_eq!(fs.injected(), 1);
    // The disk works again, but the store no longer knows what is durable.
    for attempt in [
        store.docs().put("c", "later", json!({}), None).map(drop),
        store.docs().delete("c", "ok").map(drop),
        store.docs().ensure_collection("c", &["a"]),
        store.docs().patch("c", "ok", json!({}), 1).map(drop),
        store.leases().acquire("k", "o", 10).map(drop),
        store.leases().release_all("o").map(drop),
    ] {
        assert!(matches!(attempt, Err(Error::Poisoned)), "{attempt:?}");
    }
    assert!(
        store.docs().get("c", "ok").unwrap().is_some(),
        "reads still work"
    );
    drop(store);
    let store = open(&fs, Durability::Sync);
    assert!(store.docs().get("c", "ok").unwrap().is_some());
    assert!(store.docs().get("c", "later").unwrap().is_none());
    store.docs().put("c", "later", json!({}), None).unwrap();
}

#[test]
fn a_failed_append_poisons_the_store_in_flush_mode_too() {
    let fs = FaultFs::new();
    let store = open(&fs, Durability::Flush);
    fs.fail_at(1, false);
    assert!(matches!(
        store.docs().put("c", "x", json!({}), None),
        Err(Error::Io { .. })
    ));
    assert!(matches!(
        store.docs().put("c", "y", json!({}), None),
        Err(Error::Poisoned)
    ));
}

#[test]
fn concurrent_sync_writers_all_succeed_and_persist() {
    let fs = FaultFs::new();
    let store = open(&fs, Durability::Sync);
    std::thread::scope(|scope| {
        for t in 0..8 {
            let store = &store;
            scope.spawn(move || {
                for i in 0..50 {
                    store
                        .docs()
                        .put("c", &format!("{t}-{i}"), json!({"t": t}), None)
                        .unwrap();
                }
            });
        }
    });
    store.close().unwrap();
    let store = open(&fs, Durability::Sync);
    assert_eq!(store.docs().count(&Query::new("c")).unwrap(), 400);
}
