//! Readers and backups beside a busy writer: a compaction that removes
//! the segments a refresh is about to open, a segment shorter than the
//! length a refresh read, backups while blobs come and go, a backup aimed
//! into the store itself, and manifests no compaction wrote.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::wrap_fs::WrapFs;
use logstore::io::{MemFs, Vfs};
use logstore::{BlobPut, Durability, Error, LogStore, ManualClock, Options, Store};
use serde_json::json;

fn opts(clock: &Arc<ManualClock>) -> Options {
    common::test_opts(clock, Durability::Sync, 4096)
}

fn segments(fs: &MemFs, dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs.list(dir).unwrap();
    names.retain(|n| n.ends_with(".seg"));
    names
}

/// A refresh lists the writer's new segments and reads the manifest again;
/// a compaction that commits right after removes those segments (they are
/// its inputs) before the refresh opens them. That is a new manifest, and
/// the refresh rebuilds its view: no error, and the writer's state.
#[test]
fn a_compaction_removing_the_segments_a_refresh_opens_rebuilds_the_view() {
    let fs = MemFs::new();
    let dir = Path::new("db");
    let clock = Arc::new(ManualClock::new(1_000));
    let writer = Arc::new(LogStore::open_with_fs(Arc::new(fs.clone()), dir, opts(&clock)).unwrap());
    writer.docs().ensure_collection("c", &["k"]).unwrap();
    let hook = WrapFs::new(Arc::new(fs.clone()));
    let reader =
        LogStore::open_read_only_with_fs(Arc::new(hook.clone()), dir, opts(&clock)).unwrap();
    let before = segments(&fs, dir);
    for i in 0..20 {
        let body = json!({"k": i % 3, "pad": "r".repeat(300)});
        writer
            .docs()
            .put("c", &format!("f{i}"), body, None)
            .unwrap();
    }
    let newer: Vec<String> = segments(&fs, dir)
        .into_iter()
        .filter(|n| !before.contains(n))
        .collect();
    assert!(newer.len() >= 2, "the writer rolled: {newer:?}");
    let compacting = writer.clone();
    hook.on_open(&newer[0], move || {
        compacting.compact().unwrap();
    });
    reader.refresh().unwrap();
    assert_eq!(
        common::workload_dump(&reader),
        common::workload_dump(&writer)
    );
}

/// Backups from the writer and from a reader while another thread puts
/// documents and blobs, deletes blobs and compacts without pause: every
/// backup succeeds, verifies, and holds a consistent moment.
#[test]
fn backups_beside_a_writer_deleting_blobs_and_compacting_all_succeed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let clock = Arc::new(ManualClock::new(1_000));
    let options = Options {
        durability: Durability::Flush,
        ..opts(&clock)
    };
    let writer = Arc::new(LogStore::open(&dir, options.clone()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let busy = {
        let (writer, stop) = (writer.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut ids = Vec::new();
            for n in 0u64.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let body = json!({"n": n, "pad": "y".repeat(400)});
                writer
                    .docs()
                    .put("c", &format!("d{}", n % 17), body, None)
                    .unwrap();
                let bytes = format!("blob {n}").into_bytes();
                let meta = writer
                    .blobs()
                    .put(&mut &bytes[..], BlobPut::default())
                    .unwrap();
                ids.push(meta.id);
                if ids.len() > 3 {
                    writer.blobs().delete(&ids.remove(0)).unwrap();
                }
                if n % 15 == 0 {
                    writer.compact().unwrap();
                }
            }
        })
    };
    let reader = LogStore::open_read_only(&dir, options.clone()).unwrap();
    let mut failures = Vec::new();
    for i in 0..12 {
        let (from, who): (&LogStore, _) = if i % 2 == 0 {
            (&writer, "writer")
        } else {
            (&reader, "reader")
        };
        let dest = tmp.path().join(format!("backup{i}"));
        match from.backup_to(&dest) {
            Ok(report) => {
                let copy = LogStore::open(&dest, options.clone()).unwrap();
                assert!(copy.verify().unwrap().is_clean(), "backup {i}");
                assert_eq!(copy.stats().unwrap().blobs, report.blobs, "backup {i}");
            }
            Err(e) => failures.push(format!("backup {i} from the {who}: {e}")),
        }
    }
    stop.store(true, Ordering::SeqCst);
    busy.join().unwrap();
    common::assert_no_failures("backups beside a busy writer", &failures);
}

/// A backup aimed into the store it copies (from a read-only handle, which
/// writes nothing in its store) is refused, and nothing is made there.
#[test]
fn a_backup_into_the_store_itself_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let clock = Arc::new(ManualClock::new(1_000));
    let writer = LogStore::open(&dir, opts(&clock)).unwrap();
    writer.docs().put("c", "a", json!({}), None).unwrap();
    let names = || {
        let mut n: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        n.sort();
        n
    };
    let before = names();
    let reader = LogStore::open_read_only(&dir, opts(&clock)).unwrap();
    std::os::unix::fs::symlink(&dir, tmp.path().join("via-link")).unwrap();
    for dest in [
        dir.join("backup"),
        dir.clone(),
        tmp.path().join("via-link/x"),
    ] {
        let refused = reader.backup_to(&dest).unwrap_err();
        assert!(
            matches!(refused, Error::InvalidInput(_)),
            "{}: {refused}",
            dest.display()
        );
    }
    assert_eq!(names(), before);
}

/// A manifest with no compaction behind it (its horizon segment is not
/// there): open refuses it rather than remove every segment below its
/// horizon, and one naming the largest segment id fails cleanly.
#[test]
fn a_manifest_no_compaction_wrote_is_refused_and_removes_nothing() {
    let manifest = |horizon: u32| {
        let mut out = b"LOGSTMAN".to_vec();
        out.extend(1u32.to_le_bytes());
        out.extend(horizon.to_le_bytes());
        out.extend(0u32.to_le_bytes());
        let crc = crc32fast::hash(&out)
            .rotate_right(15)
            .wrapping_add(0xa282_ead8);
        out.extend(crc.to_le_bytes());
        out
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let clock = Arc::new(ManualClock::new(1_000));
    let store = LogStore::open(&dir, opts(&clock)).unwrap();
    for i in 0..20 {
        let body = json!({"pad": "z".repeat(300)});
        store.docs().put("c", &format!("d{i}"), body, None).unwrap();
    }
    store.close().unwrap();
    drop(store);
    let segments = common::segments(&dir);
    std::fs::write(dir.join("MANIFEST"), manifest(1000)).unwrap();
    for open in [
        LogStore::open(&dir, opts(&clock)),
        LogStore::open_read_only(&dir, opts(&clock)),
    ] {
        let refused = open.unwrap_err();
        assert!(
            matches!(&refused, Error::Corruption { reason, .. } if reason.contains("horizon")),
            "{refused}"
        );
    }
    assert_eq!(common::segments(&dir), segments, "a segment was removed");

    let lone = tmp.path().join("lone");
    std::fs::create_dir(&lone).unwrap();
    std::fs::write(lone.join("MANIFEST"), manifest(u32::MAX)).unwrap();
    assert!(LogStore::open(&lone, opts(&clock)).is_err());
    assert!(LogStore::open_read_only(&lone, opts(&clock)).is_err());
}

/// A newest segment that ends before the length a refresh read (the
/// writer cut its reserved zeros meanwhile) is no error: the refresh
/// keeps what it has, and the next one reads on.
#[test]
fn a_segment_shorter_than_the_length_a_refresh_read_is_no_error() {
    let fs = MemFs::new();
    let dir = Path::new("db");
    let clock = Arc::new(ManualClock::new(1_000));
    let options = Options {
        segment_bytes: 1 << 20,
        ..opts(&clock)
    };
    let writer = LogStore::open_with_fs(Arc::new(fs.clone()), dir, options.clone()).unwrap();
    writer.docs().put("c", "a", json!({}), None).unwrap();
    let wrapped = WrapFs::new(Arc::new(fs.clone()));
    let reader = LogStore::open_read_only_with_fs(Arc::new(wrapped.clone()), dir, options).unwrap();
    writer.docs().put("c", "b", json!({}), None).unwrap();
    // The next length read is a page past the end: as if the writer had
    // cut its reserved zeros right after the refresh read it.
    wrapped.stale_size_once.store(true, Ordering::SeqCst);
    reader.refresh().unwrap();
    reader.refresh().unwrap();
    assert!(reader.docs().get("c", "b").unwrap().is_some());
}

/// A backup after a failed sync (fsyncgate: the kernel may have dropped
/// the pages, and the write was reported failed) is refused: copying the
/// log as the page cache holds it would make that write durable.
#[test]
fn a_backup_of_a_store_whose_sync_failed_is_refused() {
    let clock = Arc::new(ManualClock::new(1_000));
    let options = common::test_opts(&clock, Durability::Sync, 1 << 20);
    let fs = common::power_fs::PowerFs::new();
    fs.set_capture(false);
    let store = LogStore::open_with_fs(fs.as_vfs(), Path::new("db"), options).unwrap();
    store
        .docs()
        .put("c", "a", json!({"v": "acknowledged"}), None)
        .unwrap();
    fs.fail_sync_at(1);
    let failed = store
        .docs()
        .put("c", "a", json!({"v": "sync failed"}), None);
    assert!(failed.is_err());
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("backup");
    let refused = store.backup_to(&dest).unwrap_err();
    assert!(matches!(refused, Error::Poisoned), "{refused}");
    assert!(!dest.exists());
}
