//! Durability: a failed sync or write poisons the store, so no later write
//! reports success until the store is reopened.

mod common;

use std::path::Path;
use std::sync::Arc;

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

/// An open and a close of a store that write nothing between them sync
/// nothing: the open's recovery left the log durable, and the snapshot
/// already covers it. A close after a write still syncs it, and what a
/// power loss after the second close leaves holds the write and the blob.
#[test]
fn an_open_and_close_that_write_nothing_sync_nothing() {
    let rig = common::crash::Rig::without_capture(Durability::Flush, 64 * 1024);
    let store = rig.open();
    let blob = common::blobs::put(&store, b"blob bytes").id;
    store.docs().put("c", "a", json!({"n": 1}), None).unwrap();
    rig.fs.fail_sync_at(0);
    store.close().unwrap();
    assert!(rig.fs.syncs() > 0, "the close synced the put");
    drop(store);

    rig.fs.fail_sync_at(0);
    let store = rig.open();
    assert_eq!(rig.fs.syncs(), 0, "the open synced nothing");
    assert_eq!(store.docs().get("c", "a").unwrap().unwrap().version, 1);
    store.close().unwrap();
    drop(store);
    assert_eq!(rig.fs.syncs(), 0, "the close synced nothing");

    let image = common::power_fs::image_fs(&rig.fs.durable_image());
    let store =
        LogStore::open_with_fs(Arc::new(image), common::crash::dir(), rig.options.clone()).unwrap();
    assert!(store.docs().get("c", "a").unwrap().is_some());
    assert_eq!(common::blobs::read(&store, &blob), b"blob bytes");
}
