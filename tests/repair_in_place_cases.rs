//! Repair in place on the real file system and on bad input: a store whose
//! manifest rotted is repaired with its originals kept byte for byte, a
//! manifest left mid-relink is kept with them, and options out of range or
//! a directory that is not a store change nothing.

mod common;

use std::sync::Arc;

use common::repair::{build, dir, expected, open_dump, opts, put, repair, repair_opts, Damage};
use logstore::io::{MemFs, Vfs};
use logstore::{Error, LogStore, ManualClock, Options, Query, Salvage, Store};

/// On the real file system: a store whose manifest rotted (it no longer
/// opens) is repaired in place; the damaged originals, the manifest among
/// them, are kept byte for byte in the folder the report names, and the
/// log keeps only the repaired segments.
#[test]
fn a_store_with_a_damaged_manifest_is_repaired_in_place_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    let clock = Arc::new(ManualClock::new(1_000));
    let store = LogStore::open(&path, opts(&clock)).unwrap();
    for i in 0..30 {
        put(&store, &format!("d{i}"), i);
    }
    store.compact().unwrap();
    put(&store, "after", 0);
    store.close().unwrap();
    let manifest = path.join("MANIFEST");
    let mut bytes = std::fs::read(&manifest).unwrap();
    bytes[15] ^= 0x01; // one bit of the horizon
    std::fs::write(&manifest, &bytes).unwrap();
    assert!(LogStore::open(&path, opts(&clock)).is_err());
    let before: Vec<(String, Vec<u8>)> = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .filter(|(name, _)| name.ends_with(".seg") || name == "MANIFEST")
        .collect();

    let report = Salvage::lock(&path)
        .unwrap()
        .repair_in_place(&repair_opts(&clock))
        .unwrap();
    assert!(report.salvage.lost.iter().any(|p| p.file == manifest));
    assert!(report.originals.starts_with(path.join("quarantine")));
    for (name, bytes) in &before {
        assert_eq!(&std::fs::read(report.originals.join(name)).unwrap(), bytes);
        if name.ends_with(".seg") {
            assert!(!path.join(name).exists(), "{name} left the log");
        }
    }
    let store = LogStore::open(&path, opts(&clock)).unwrap();
    let report = store.verify().unwrap();
    assert!(report.is_clean() && report.foreign.is_empty(), "{report:?}");
    assert_eq!(store.docs().count(&Query::new("c")).unwrap(), 31);
    // The repaired store takes writes and compacts as any other.
    put(&store, "later", 1);
    store.compact().unwrap();
    drop(store);
    let store = LogStore::open(&path, opts(&clock)).unwrap();
    assert_eq!(store.docs().count(&Query::new("c")).unwrap(), 32);
}

/// A crash inside open's re-link of the manifest leaves it named
/// `MANIFEST.relink`: the repair renames it back first, as open does, so it
/// is kept with the other originals and cannot come back later.
#[test]
fn a_manifest_left_mid_relink_is_kept_with_the_originals() {
    let clock = Arc::new(ManualClock::new(1_000));
    let fs = MemFs::new();
    build(Arc::new(fs.clone()), &clock, Damage::Tail);
    let want = expected(&fs.snapshot(), &clock);
    let manifest = fs.file(&dir().join("MANIFEST")).unwrap().contents();
    fs.rename(&dir().join("MANIFEST"), &dir().join("MANIFEST.relink"))
        .unwrap();
    let report = repair(Arc::new(fs.clone()), &clock).unwrap();
    let kept = fs.file(&report.originals.join("MANIFEST")).unwrap();
    assert_eq!(kept.contents(), manifest);
    assert!(fs.file(&dir().join("MANIFEST.relink")).is_none());
    assert_eq!(open_dump(Arc::new(fs), &clock).unwrap(), want.repaired);
}

/// Bad input changes nothing: options out of range, and a directory that
/// is not a store, are refused before anything is written.
#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let clock = Arc::new(ManualClock::new(1_000));
    let fs = MemFs::new();
    build(Arc::new(fs.clone()), &clock, Damage::Tail);
    let before = fs.snapshot();
    let bad = Options {
        segment_bytes: 1,
        ..opts(&clock)
    };
    let result = Salvage::lock_with_fs(Arc::new(fs.clone()), dir())
        .unwrap()
        .repair_in_place(&bad);
    assert!(matches!(result, Err(Error::InvalidInput(_))), "{result:?}");
    assert_eq!(fs.snapshot(), before);

    let empty = MemFs::new();
    let result = Salvage::lock_with_fs(Arc::new(empty.clone()), dir())
        .unwrap()
        .repair_in_place(&repair_opts(&clock));
    assert!(matches!(result, Err(Error::NotAStore { .. })), "{result:?}");
    assert!(empty.snapshot().is_empty());
}
