//! Read-only handles and backups: a read-only open writes nothing and
//! serves exactly the log a writable open keeps; a reader beside a writer
//! follows it through appends, rolls and compactions, seeing a prefix of
//! the writes and never going backwards; a backup of a live store opens
//! equal to the moment it copied.

mod common;

use common::{keys, workload_dump as dump};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::power_fs::{image_fs, PowerFs};
use logstore::io::{LockGuard, MemFs, VFile, Vfs};
use logstore::{BlobPut, Durability, Error, LogStore, ManualClock, Options, Store};
use serde_json::json;

fn opts(clock: &Arc<ManualClock>) -> Options {
    common::test_opts(clock, Durability::Sync, 4096)
}

/// A file system that refuses, and counts, every call that would change
/// anything: what a read-only open must never make.
#[derive(Debug)]
struct NoWrites {
    inner: MemFs,
    attempts: Arc<std::sync::atomic::AtomicUsize>,
}

#[derive(Debug)]
struct NoWriteFile {
    inner: Arc<dyn VFile>,
    attempts: Arc<std::sync::atomic::AtomicUsize>,
}

fn refuse(attempts: &std::sync::atomic::AtomicUsize, what: &str) -> std::io::Error {
    attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        format!("{what} on a read-only open"),
    )
}

impl VFile for NoWriteFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, _: &[u8], _: u64) -> std::io::Result<()> {
        Err(refuse(&self.attempts, "write"))
    }
    fn sync_data(&self) -> std::io::Result<()> {
        Err(refuse(&self.attempts, "sync"))
    }
    fn set_len(&self, _: u64) -> std::io::Result<()> {
        Err(refuse(&self.attempts, "set_len"))
    }
    fn size(&self) -> std::io::Result<u64> {
        self.inner.size()
    }
}

impl Vfs for NoWrites {
    fn create_dir_all(&self, _: &Path) -> std::io::Result<()> {
        Err(refuse(&self.attempts, "create_dir_all"))
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn open(&self, path: &Path, create: bool) -> std::io::Result<Arc<dyn VFile>> {
        if create {
            return Err(refuse(&self.attempts, "create"));
        }
        Ok(Arc::new(NoWriteFile {
            inner: self.inner.open(path, false)?,
            attempts: self.attempts.clone(),
        }))
    }
    fn create_new(&self, _: &Path) -> std::io::Result<Arc<dyn VFile>> {
        Err(refuse(&self.attempts, "create_new"))
    }
    fn rename(&self, _: &Path, _: &Path) -> std::io::Result<()> {
        Err(refuse(&self.attempts, "rename"))
    }
    fn remove(&self, _: &Path) -> std::io::Result<()> {
        Err(refuse(&self.attempts, "remove"))
    }
    fn sync_dir(&self, _: &Path) -> std::io::Result<()> {
        Err(refuse(&self.attempts, "sync_dir"))
    }
    fn try_lock(&self, _: &Path) -> std::io::Result<Option<Box<dyn LockGuard>>> {
        Err(refuse(&self.attempts, "try_lock"))
    }
}

/// Every crash image of a workload with torn tails, orphan blob files,
/// compactions and snapshots: a read-only open of it makes no call that
/// changes anything, and reads the same store a writable open of a copy
/// keeps (which cuts, quarantines and sweeps).
#[test]
fn a_read_only_open_of_any_crash_image_writes_nothing_and_serves_what_a_writable_open_keeps() {
    let fs = PowerFs::prefix_model();
    let clock = Arc::new(ManualClock::new(1_000));
    let dir = Path::new("db");
    let store = LogStore::open_with_fs(fs.as_vfs(), dir, opts(&clock)).unwrap();
    for i in 0..36 {
        clock.advance(1);
        common::workload_step(&store, i, 12).unwrap();
    }
    drop(store);
    let images = fs.take_images();
    assert!(images.len() > 100, "{} crash images", images.len());
    let mut failures = Vec::new();
    for (n, (image, _)) in images.iter().enumerate() {
        let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let reads = NoWrites {
            inner: image_fs(image),
            attempts: attempts.clone(),
        };
        let writable = LogStore::open_with_fs(Arc::new(image_fs(image)), dir, opts(&clock));
        let read_only = LogStore::open_read_only_with_fs(Arc::new(reads), dir, opts(&clock));
        match (writable, read_only) {
            (Ok(w), Ok(r)) => {
                if dump(&w) != dump(&r) {
                    failures.push(format!("image {n}: the read-only view differs"));
                }
                let report = r.verify().unwrap();
                if !report.is_clean() {
                    failures.push(format!("image {n}: verify {:?}", report.problems));
                }
                r.close().unwrap();
            }
            // A log with no segment yet: a writable open makes one, a
            // read-only open has nothing to read.
            (Ok(w), Err(Error::NotAStore { .. })) if w.stats().unwrap().documents == 0 => {}
            (w, r) => failures.push(format!(
                "image {n}: writable {:?}, read-only {:?}",
                w.err(),
                r.err()
            )),
        }
        let made = attempts.load(std::sync::atomic::Ordering::SeqCst);
        if made > 0 {
            failures.push(format!("image {n}: {made} writes attempted"));
        }
    }
    common::assert_no_failures("read-only opens of crash images", &failures);
}

/// Every entry under `dir` with its bytes (links as their target).
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path.clone());
                out.push((path, Vec::new()));
            } else if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.push((path, target.into_os_string().into_encoded_bytes()));
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    out
}

/// On the real file system: a store with a torn tail, an orphan blob file,
/// a staged file, no snapshot and no lock file is opened read-only, read,
/// verified and closed, and not one name or byte under it changes.
#[test]
fn a_read_only_open_changes_no_file_of_a_damaged_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let clock = Arc::new(ManualClock::new(1_000));
    let store = LogStore::open(&dir, opts(&clock)).unwrap();
    for i in 0..30 {
        common::workload_step(&store, i, 9).unwrap();
    }
    let expected = dump(&store);
    drop(store);
    std::fs::remove_file(dir.join("SNAPSHOT")).unwrap();
    std::fs::remove_file(dir.join("LOCK")).unwrap();
    let newest = common::segments(&dir).pop().unwrap();
    let mut bytes = std::fs::read(&newest).unwrap();
    let end = common::log_end(&bytes) as usize;
    bytes.truncate(end);
    bytes.extend_from_slice(b"a torn record's first bytes");
    std::fs::write(&newest, &bytes).unwrap();
    let orphan = blake3::hash(b"orphan").to_hex().to_string();
    let folder = dir.join("blobs").join(&orphan[..2]);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join(&orphan), b"orphan").unwrap();
    std::fs::create_dir_all(dir.join("blobs/tmp")).unwrap();
    std::fs::write(
        dir.join("blobs/tmp/0b6a4ab5-54c1-4a7e-9d53-2f2d3c1a9e10.tmp"),
        b"half",
    )
    .unwrap();
    let before = tree(&dir);

    let reader = LogStore::open_read_only(&dir, opts(&clock)).unwrap();
    assert!(reader.is_read_only());
    assert_eq!(dump(&reader), expected);
    assert!(reader.verify().unwrap().is_clean());
    reader.stats().unwrap();
    reader.refresh().unwrap();
    reader.close().unwrap();
    drop(reader);
    assert_eq!(tree(&dir), before, "a read-only open changed the store");
}

/// Every write of a read-only handle returns `ReadOnly`, having written
/// nothing.
#[test]
fn every_write_of_a_read_only_handle_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let clock = Arc::new(ManualClock::new(1_000));
    let writer = LogStore::open(&dir, opts(&clock)).unwrap();
    writer.docs().ensure_collection("c", &["k"]).unwrap();
    writer.docs().put("c", "a", json!({"k": 1}), None).unwrap();
    let before = tree(&dir);
    let reader = LogStore::open_read_only(&dir, opts(&clock)).unwrap();
    let refused = |r: logstore::Result<()>| assert!(matches!(r, Err(Error::ReadOnly)), "{r:?}");
    refused(reader.docs().ensure_collection("c", &["k"]));
    refused(reader.docs().put("c", "b", json!({}), None).map(drop));
    refused(reader.docs().put("c", "a", json!({}), Some(1)).map(drop));
    refused(reader.docs().patch("c", "a", json!({"k": 2}), 1).map(drop));
    refused(reader.docs().delete("c", "a").map(drop));
    refused(
        reader
            .blobs()
            .put(&mut &b"bytes"[..], BlobPut::default())
            .map(drop),
    );
    refused(reader.blobs().delete("x").map(drop));
    refused(reader.leases().acquire("k1", "me", 1000).map(drop));
    refused(reader.leases().release("k1", "me").map(drop));
    refused(reader.compact().map(drop));
    assert_eq!(tree(&dir), before);
    assert_eq!(reader.docs().get("c", "a").unwrap().unwrap().data["k"], 1);
}

/// Every document of every collection, and the leases: a view's reads
/// that never touch a blob file (one the writer deletes is gone for every
/// reader, see `a_blob_the_writer_deleted_is_gone_for_a_reader_too`).
fn docs_and_leases(store: &LogStore) -> String {
    let mut out = String::new();
    for col in store.docs().list_collections().unwrap() {
        out += &format!("{:?}\n", common::all_docs(store.docs(), &col.name));
    }
    for key in keys() {
        out += &format!("{:?}\n", store.leases().get(&key).unwrap());
    }
    out
}

/// A reader beside a writer (one process, the real file system, one-page
/// segments so the writer rolls often, a compaction every 40 steps): after
/// each refresh it equals the writer exactly, and between refreshes it
/// keeps reading its view, from segments the compaction removed too.
#[test]
fn a_reader_follows_a_writer_through_rolls_and_compactions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let clock = Arc::new(ManualClock::new(1_000));
    let writer = LogStore::open(&dir, opts(&clock)).unwrap();
    common::workload_step(&writer, 0, 12).unwrap();
    let reader = LogStore::open_read_only(&dir, opts(&clock)).unwrap();
    let mut seen = docs_and_leases(&reader);
    assert_eq!(dump(&reader), dump(&writer));
    for i in 1..160 {
        clock.advance(1);
        common::workload_step(&writer, i, 11).unwrap();
        if i % 40 == 0 {
            writer.compact().unwrap();
            // The view before the refresh still reads: its segments were
            // removed, but the reader holds them open.
            assert_eq!(
                docs_and_leases(&reader),
                seen,
                "step {i}: the old view changed"
            );
        }
        if i % 3 == 0 {
            reader.refresh().unwrap();
            seen = docs_and_leases(&reader);
            assert_eq!(dump(&reader), dump(&writer), "step {i}");
        }
    }
    reader.refresh().unwrap();
    assert_eq!(dump(&reader), dump(&writer));
    assert!(reader.verify().unwrap().is_clean());
    assert_eq!(
        reader.stats().unwrap().documents,
        writer.stats().unwrap().documents
    );
}

/// The reader stops at a record still being written (its bytes partly
/// there) and applies it once it is whole.
#[test]
fn a_refresh_stops_at_a_record_being_written_and_takes_it_once_whole() {
    let fs = MemFs::new();
    let dir = Path::new("db");
    let clock = Arc::new(ManualClock::new(1_000));
    // Flush: no padding frame after each record, so the bytes between
    // two ends are the one record.
    let options = Options {
        segment_bytes: 1 << 20,
        durability: Durability::Flush,
        ..opts(&clock)
    };
    let writer = LogStore::open_with_fs(Arc::new(fs.clone()), dir, options.clone()).unwrap();
    writer.docs().ensure_collection("c", &["k"]).unwrap();
    writer.docs().put("c", "a", json!({"k": 1}), None).unwrap();
    let reader = LogStore::open_read_only_with_fs(Arc::new(fs.clone()), dir, options).unwrap();
    let newest = {
        let mut names = fs.list(dir).unwrap();
        names.retain(|n| n.ends_with(".seg"));
        dir.join(names.pop().unwrap())
    };
    let file = fs.file(&newest).unwrap();
    let start = common::log_end(&file.contents());
    writer.docs().put("c", "b", json!({"k": 2}), None).unwrap();
    let end = common::log_end(&file.contents());
    assert!(end > start);
    let whole = file.contents()[start as usize..end as usize].to_vec();
    // Each prefix of the record, the rest still zeros: not applied.
    for cut in [1, 8, 12, whole.len() / 2, whole.len() - 1] {
        let mut partial = vec![0u8; whole.len()];
        partial[..cut].copy_from_slice(&whole[..cut]);
        file.write_all_at(&partial, start).unwrap();
        reader.refresh().unwrap();
        assert!(reader.docs().get("c", "b").unwrap().is_none(), "cut {cut}");
        assert!(reader.docs().get("c", "a").unwrap().is_some());
    }
    file.write_all_at(&whole, start).unwrap();
    reader.refresh().unwrap();
    assert_eq!(reader.docs().get("c", "b").unwrap().unwrap().data["k"], 2);
}

/// A backup taken from the writer and one taken from a reader beside it
/// each open as a store equal to the moment they copied; a target that is
/// not empty is refused and left alone.
#[test]
fn backups_of_a_live_store_open_equal_to_the_moment_they_copied() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let clock = Arc::new(ManualClock::new(1_000));
    let writer = LogStore::open(&dir, opts(&clock)).unwrap();
    for i in 0..60 {
        common::workload_step(&writer, i, 12).unwrap();
    }
    writer
        .blobs()
        .put(&mut &b"kept bytes"[..], BlobPut::default())
        .unwrap();
    let at_backup = dump(&writer);
    let report = writer.backup_to(tmp.path().join("from-writer")).unwrap();
    assert!(report.segments > 1, "{report:?}");
    assert!(report.blob_files > 0, "{report:?}");
    for i in 60..90 {
        common::workload_step(&writer, i, 12).unwrap();
    }
    let reader = LogStore::open_read_only(&dir, opts(&clock)).unwrap();
    let later = dump(&writer);
    reader.backup_to(tmp.path().join("from-reader")).unwrap();
    for (name, expected) in [("from-writer", &at_backup), ("from-reader", &later)] {
        let copy = LogStore::open(tmp.path().join(name), opts(&clock)).unwrap();
        assert_eq!(&dump(&copy), expected, "{name}");
        assert!(copy.verify().unwrap().is_clean(), "{name}");
    }
    let busy = tmp.path().join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("keep.txt"), b"mine").unwrap();
    let refused = writer.backup_to(&busy).unwrap_err();
    assert!(matches!(refused, Error::InvalidInput(_)), "{refused}");
    assert_eq!(std::fs::read(busy.join("keep.txt")).unwrap(), b"mine");
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1);
}

/// A blob file goes when the writer deletes the blob's last reference: a
/// reader whose view still lists the blob finds the file gone, refreshes,
/// and answers as the writer does (no such blob), never `Corruption`, and
/// its `verify` reports no damage.
#[test]
fn a_blob_the_writer_deleted_is_gone_for_a_reader_too() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let clock = Arc::new(ManualClock::new(1_000));
    let writer = LogStore::open(&dir, opts(&clock)).unwrap();
    let meta = writer
        .blobs()
        .put(&mut &b"short-lived"[..], BlobPut::default())
        .unwrap();
    let reader = LogStore::open_read_only(&dir, opts(&clock)).unwrap();
    assert!(reader.blobs().get_meta(&meta.id).unwrap().is_some());
    assert!(writer.blobs().delete(&meta.id).unwrap());
    // verify finds the file gone too: the writer's delete, not damage.
    let report = reader.verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert!(reader.blobs().get(&meta.id).unwrap().is_none());
    assert!(reader.blobs().get_meta(&meta.id).unwrap().is_none());
}

/// A compaction that commits between a refresh's read of the manifest and
/// its listing of the directory: the listing shows the compaction's
/// outputs under their final names, which the refresh must not take for
/// the writer's new segments (their records would apply twice, over newer
/// ones).
#[test]
fn a_compaction_between_the_manifest_and_the_listing_rebuilds_the_view() {
    let fs = MemFs::new();
    let dir = Path::new("db");
    let clock = Arc::new(ManualClock::new(1_000));
    let writer = Arc::new(LogStore::open_with_fs(Arc::new(fs.clone()), dir, opts(&clock)).unwrap());
    writer.docs().ensure_collection("c", &["k"]).unwrap();
    for i in 0..30 {
        let body = json!({"k": i % 3, "pad": "p".repeat(200)});
        writer
            .docs()
            .put("c", &format!("d{}", i % 10), body, None)
            .unwrap();
    }
    let hook = common::wrap_fs::WrapFs::new(Arc::new(fs.clone()));
    let reader =
        LogStore::open_read_only_with_fs(Arc::new(hook.clone()), dir, opts(&clock)).unwrap();
    for i in 0..10 {
        writer.docs().delete("c", &format!("d{i}")).unwrap();
    }
    let compacting = writer.clone();
    hook.on_list(move || {
        compacting.compact().unwrap();
    });
    reader.refresh().unwrap();
    assert!(!hook.list_hook_pending(), "the hook ran");
    assert_eq!(dump(&reader), dump(&writer));
    assert_eq!(reader.stats().unwrap().documents, 0);
}
