//! `logstore::migrate`: a whole store copied between drivers keeps every
//! item as it was, and a target that is not empty is refused untouched.
#![cfg(feature = "sqlite")]

use logstore::{migrate, BlobPut, Copied, LogStore, Options, SqliteStore, Store};

#[path = "items/mod.rs"]
mod items;

use items::items;

#[test]
fn a_store_goes_to_sqlite_and_back_unchanged_and_a_full_target_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = LogStore::open(dir.path().join("log"), Options::default()).expect("open");
    log.docs()
        .ensure_collection("msgs", &["owner"])
        .expect("ensure");
    log.docs()
        .put("msgs", "m1", serde_json::json!({"owner": "a"}), None)
        .expect("put");
    log.docs()
        .put("loose", "l1", serde_json::json!({"x": 1}), None)
        .expect("put");
    let blob: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
    log.blobs()
        .put(&mut blob.as_slice(), BlobPut::default())
        .expect("blob");
    log.leases().acquire("k", "me", 60_000).expect("lease");
    let original = items(&log);

    let sqlite = SqliteStore::open(
        dir.path().join("store.db"),
        dir.path().join("blobs"),
        Options::default(),
    )
    .expect("sqlite");
    let mut total = 0;
    let mut seen = 0;
    let copied = migrate(&log, &sqlite, |n| total = n, |_| seen += 1).expect("to sqlite");
    assert_eq!(
        copied,
        Copied {
            collections: 1,
            documents: 2,
            blobs: 1,
            blob_bytes: 300_000,
            leases: 1,
        }
    );
    assert_eq!((total, seen), (5, 5));
    assert_eq!(items(&sqlite), original);

    let back = LogStore::open(dir.path().join("back"), Options::default()).expect("open");
    migrate(&sqlite, &back, |_| {}, |_| {}).expect("back");
    assert_eq!(items(&back), original);

    // A second copy into a filled store writes nothing.
    let refused = migrate(&sqlite, &back, |_| {}, |_| {}).expect_err("not empty");
    assert!(
        matches!(&refused, logstore::Error::InvalidInput(m) if m.contains("not empty")),
        "{refused}"
    );
    assert_eq!(items(&back), original);
}

/// The files in `dir`, by name.
fn names(dir: &std::path::Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

#[test]
fn probing_a_closed_wal_database_leaves_no_files_behind() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("store.db");
    let s = SqliteStore::open(&db, dir.path().join("blobs"), Options::default()).expect("open");
    s.docs()
        .put("c", "1", serde_json::json!({"k": 1}), None)
        .expect("put");
    s.close().expect("close");
    drop(s);
    let before = names(dir.path());
    assert!(!before.iter().any(|n| n.ends_with("-wal")), "{before:?}");
    assert_eq!(
        SqliteStore::probe(&db).expect("probe"),
        logstore::StoreDir::Store
    );
    assert_eq!(names(dir.path()), before);
}
