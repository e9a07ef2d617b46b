//! The tool on stores it must not change: one a program holds open and
//! keeps writing (inspection and `backup` work beside it), and a damaged
//! one (a torn tail, an orphan blob, a staged file) whose files every
//! inspection leaves exactly as they were.

mod common;

use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{logstore, text, tree};
use logstore::{BlobPut, Durability, LogStore, Options, Store};
use serde_json::{json, Value};

/// The numbers `i` of the documents `d{i}` in `ids`, which must be every
/// number below their count: a prefix of the writer's puts.
fn prefix(ids: impl IntoIterator<Item = String>) -> u64 {
    let numbers: BTreeSet<u64> = ids
        .into_iter()
        .map(|id| id.strip_prefix('d').unwrap().parse().unwrap())
        .collect();
    let n = numbers.len() as u64;
    assert_eq!(
        numbers.last().map_or(0, |last| last + 1),
        n,
        "not a prefix of the writes: {numbers:?}"
    );
    n
}

/// The document ids in a dump.
fn dumped_ids(dump: &str) -> Vec<String> {
    dump.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "document")
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn inspection_and_backup_work_on_a_store_another_handle_is_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("live");
    let d = dir.to_str().unwrap();
    let opts = Options {
        durability: Durability::Sync,
        // Small segments: the writer rolls to new ones while the tool reads.
        segment_bytes: 16 * 1024,
        ..Options::default()
    };
    // This handle holds the store's lock for the whole test.
    let store = Arc::new(LogStore::open(&dir, opts).unwrap());
    store.docs().ensure_collection("docs", &["parity"]).unwrap();
    let (acked, stop) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let writer = {
        let (store, acked, stop) = (store.clone(), acked.clone(), stop.clone());
        std::thread::spawn(move || {
            for i in 0u64.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let body = json!({"i": i, "parity": (i % 2).to_string(), "pad": "x".repeat(200)});
                store
                    .docs()
                    .put("docs", &format!("d{i}"), body, None)
                    .unwrap();
                acked.store(i + 1, Ordering::SeqCst);
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.load(Ordering::SeqCst) < 20 {
        assert!(Instant::now() < deadline, "the writer is stuck");
        std::thread::sleep(Duration::from_millis(5));
    }
    let ok = |args: &[&str]| {
        let acked_before = acked.load(Ordering::SeqCst);
        (common::ok(args), acked_before)
    };
    let started = acked.load(Ordering::SeqCst);

    for _ in 0..3 {
        let (count, before) = ok(&["count", d, "docs"]);
        let count: u64 = count.trim().parse().unwrap();
        assert!(
            count >= before,
            "count {count} misses acknowledged writes ({before})"
        );
        let (rows, _) = ok(&["query", d, "docs", "--where", "parity=0", "--limit", "5"]);
        assert_eq!(rows.lines().count(), 5, "{rows}");
        let (dump, before) = ok(&["dump", d]);
        assert!(prefix(dumped_ids(&dump)) >= before);
        let (verified, _) = ok(&["verify", d]);
        assert!(verified.starts_with("ok:"), "{verified}");
        ok(&["stats", d]);
        ok(&["get", d, "docs", "d0"]);
    }

    let copy = tmp.path().join("backup");
    let (summary, before) = ok(&["backup", d, copy.to_str().unwrap()]);
    assert!(summary.starts_with("backed up "), "{summary}");
    let backup = LogStore::open(&copy, Options::default()).unwrap();
    let q = logstore::Query::new("docs").limit(usize::MAX);
    let ids = backup
        .docs()
        .query(&q)
        .unwrap()
        .into_iter()
        .map(|doc| doc.id);
    let n = prefix(ids);
    assert!(
        n >= before,
        "the backup holds {n} documents, {before} were acknowledged"
    );
    assert!(backup.verify().unwrap().is_clean());
    drop(backup);

    // Writes from the tool are refused while the store is held.
    let locked = logstore(&["compact", d]);
    assert_eq!(locked.status.code(), Some(1));
    assert!(
        text(&locked.stderr).contains("locked"),
        "{}",
        text(&locked.stderr)
    );

    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert!(
        acked.load(Ordering::SeqCst) > started,
        "the writer went on writing while the tool read"
    );
}

/// A closed store with a torn tail on its newest segment, an orphan blob
/// file and a staged blob file: what a writable open would clean up.
fn damaged_store(dir: &Path) {
    let opts = Options {
        durability: Durability::Flush,
        ..Options::default()
    };
    let store = LogStore::open(dir, opts).unwrap();
    store.docs().ensure_collection("msgs", &["owner"]).unwrap();
    for i in 0..5 {
        let body = json!({"owner": "ana", "n": i});
        store
            .docs()
            .put("msgs", &format!("m{i}"), body, None)
            .unwrap();
    }
    let blob = Cursor::new(b"blob bytes".to_vec());
    store
        .blobs()
        .put(&mut blob.clone(), BlobPut::default())
        .unwrap();
    store.leases().acquire("conv:1", "run-a", 60_000).unwrap();
    store.close().unwrap();
    let mut segments: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segments.sort();
    let newest = segments.pop().unwrap();
    let mut bytes = std::fs::read(&newest).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    bytes.truncate(end);
    bytes.extend_from_slice(b"a torn record's first bytes");
    std::fs::write(&newest, bytes).unwrap();
    let orphan = format!("ab{}", "0".repeat(62));
    std::fs::create_dir_all(dir.join("blobs").join("ab")).unwrap();
    std::fs::write(dir.join("blobs").join("ab").join(orphan), b"orphan").unwrap();
    std::fs::create_dir_all(dir.join("blobs").join("tmp")).unwrap();
    let staged = "0b6a4ab5-54c1-4a7e-9d53-2f2d3c1a9e10.tmp";
    std::fs::write(dir.join("blobs").join("tmp").join(staged), b"half").unwrap();
}

#[test]
fn inspection_changes_no_file_of_a_store_with_a_torn_tail_and_an_orphan_blob() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let d = dir.to_str().unwrap();
    damaged_store(&dir);
    let before = tree(&dir);
    let aside = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    let (copy, migrated) = (aside("backup"), aside("migrated"));
    for args in [
        &["stats", d][..],
        &["stats", d, "--json"],
        &["get", d, "msgs", "m4"],
        &["query", d, "msgs", "--where", "owner=ana"],
        &["count", d, "msgs"],
        &["dump", d],
        &["verify", d],
        &["backup", d, &copy],
        &["migrate", d, &migrated],
    ] {
        common::ok(args);
        assert_eq!(tree(&dir), before, "{args:?} changed the store");
    }
    let counted = logstore(&["count", &copy, "msgs"]);
    assert_eq!(text(&counted.stdout), "5\n", "{}", text(&counted.stderr));

    // The check sees what a writable open does: it cuts the tail and
    // sweeps the blob files.
    drop(LogStore::open(&dir, Options::default()).unwrap());
    assert_ne!(tree(&dir), before);
}

#[test]
fn backup_refuses_a_destination_that_is_not_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let made = logstore(&["put", dir.to_str().unwrap(), "msgs", "m1", "{}"]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    std::fs::write(dest.join("keep.txt"), "mine").unwrap();
    let before = tree(tmp.path());
    let out = logstore(&["backup", dir.to_str().unwrap(), dest.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("exists and is not an empty directory"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(tree(tmp.path()), before);

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = logstore(&["backup", dir.to_str().unwrap(), empty.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = logstore(&["get", empty.to_str().unwrap(), "msgs", "m1"]);
    assert!(got.status.success(), "{}", text(&got.stderr));
}
