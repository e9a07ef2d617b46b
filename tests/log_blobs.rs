//! Blob files and leases of the log engine: content addressing, reference
//! counts, orphan collection, damage detection, persistence, and the crash
//! windows of a blob put and delete (a fault injected at every I/O step).

mod common;

use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use logstore::io::{FaultFs, LockGuard, RealFs, VFile, Vfs};
use logstore::{
    Acquire, BlobList, BlobMeta, BlobPut, Durability, Error, LogStore, ManualClock, Options, Store,
    Transfer,
};

fn content_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir.join("blobs")) else {
        return files;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() && path.file_name().unwrap() != "tmp" {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
    }
    files.sort();
    files
}

fn put(store: &dyn Store, bytes: &[u8]) -> logstore::BlobMeta {
    store
        .blobs()
        .put(&mut Cursor::new(bytes.to_vec()), BlobPut::default())
        .unwrap()
}

fn read(store: &dyn Store, id: &str) -> Vec<u8> {
    let (_, mut r) = store.blobs().get(id).unwrap().unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    out
}

#[test]
fn identical_bytes_share_one_file_until_the_last_reference_goes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = LogStore::open(&dir, Options::default()).unwrap();
    let a = put(&store, b"shared");
    let b = put(&store, b"shared");
    let c = put(&store, b"other");
    let files = content_files(&dir);
    assert_eq!(files.len(), 2);
    let hash = a.content_hash.clone().unwrap();
    let shared = dir.join("blobs").join(&hash[..2]).join(&hash);
    assert!(
        files.contains(&shared),
        "content address is blobs/<2 hex>/<hash>"
    );
    assert!(store.blobs().delete(&a.id).unwrap());
    assert!(shared.exists(), "b still refers to it");
    assert!(store.blobs().delete(&b.id).unwrap());
    assert!(!shared.exists(), "removed with its last reference");
    assert_eq!(read(&store, &c.id), b"other");
}

#[test]
fn open_collects_orphan_and_staged_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let kept = {
        let store = LogStore::open(&dir, Options::default()).unwrap();
        put(&store, b"kept")
    };
    // A crash between a file's rename and its metadata record; and one
    // while a put was still staging its bytes.
    let orphan_hash = blake3::hash(b"orphan").to_hex().to_string();
    let folder = dir.join("blobs").join(&orphan_hash[..2]);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join(&orphan_hash), b"orphan").unwrap();
    std::fs::write(
        dir.join("blobs/tmp/0b6a4ab5-54c1-4a7e-9d53-2f2d3c1a9e10.tmp"),
        b"half",
    )
    .unwrap();
    let store = LogStore::open(&dir, Options::default()).unwrap();
    assert_eq!(store.recovery_report().orphan_blobs_removed, 1);
    assert_eq!(store.recovery_report().temp_files_removed, 1);
    assert!(!folder.join(&orphan_hash).exists());
    assert_eq!(read(&store, &kept.id), b"kept");
    assert_eq!(content_files(&dir).len(), 1);
}

#[test]
fn a_damaged_or_missing_file_reads_as_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = LogStore::open(&dir, Options::default()).unwrap();
    let meta = put(&store, b"precious bytes");
    let hash = meta.content_hash.clone().unwrap();
    let path = dir.join("blobs").join(&hash[..2]).join(&hash);
    std::fs::write(&path, b"PRECIOUS BYTES").unwrap();
    assert!(
        matches!(store.blobs().get(&meta.id), Err(Error::Corruption { .. })),
        "same length, other bytes"
    );
    std::fs::write(&path, b"short").unwrap();
    assert!(
        matches!(store.blobs().get(&meta.id), Err(Error::Corruption { .. })),
        "other length"
    );
    std::fs::remove_file(&path).unwrap();
    match store.blobs().get(&meta.id) {
        Err(Error::Corruption { file, .. }) => assert_eq!(file, path),
        other => panic!(
            "expected corruption, got {:?}",
            other.map(|o| o.map(|(m, _)| m))
        ),
    }
    assert!(
        store.blobs().get_meta(&meta.id).unwrap().is_some(),
        "metadata is still reported"
    );
}

#[test]
fn blobs_and_leases_survive_reopen_with_their_expiries() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let clock = Arc::new(ManualClock::new(1_000));
    let opts = Options {
        clock: clock.clone(),
        ..Options::default()
    };
    let (blob, lease) = {
        let store = LogStore::open(&dir, opts.clone()).unwrap();
        let owned = BlobPut {
            mime: Some("text/plain".into()),
            owner_id: Some("u".into()),
        };
        let blob = store
            .blobs()
            .put(&mut Cursor::new(b"abc".to_vec()), owned)
            .unwrap();
        let gone = put(&store, b"gone");
        store.blobs().delete(&gone.id).unwrap();
        let Acquire::Acquired(lease) = store.leases().acquire("k1", "run", 500).unwrap() else {
            panic!()
        };
        store.leases().acquire("k2", "run", 500).unwrap();
        store.leases().acquire("k3", "other", 500).unwrap();
        store.leases().release("k2", "run").unwrap();
        store.leases().acquire("k4", "gone", 5).unwrap();
        store.leases().release_all("gone").unwrap();
        store.close().unwrap();
        (blob, lease)
    };
    let store = LogStore::open(&dir, opts).unwrap();
    assert_eq!(
        store.blobs().get_meta(&blob.id).unwrap(),
        Some(blob.clone())
    );
    assert_eq!(read(&store, &blob.id), b"abc");
    let listed = store
        .blobs()
        .list(&BlobList {
            owner_id: Some("u".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(listed, vec![blob]);
    assert_eq!(store.blobs().list(&BlobList::default()).unwrap().len(), 1);
    assert_eq!(store.leases().get("k1").unwrap(), Some(lease));
    assert_eq!(store.leases().get("k2").unwrap(), None);
    assert_eq!(store.leases().get("k4").unwrap(), None);
    assert_eq!(
        store.leases().acquire("k1", "thief", 10).unwrap(),
        Acquire::Held {
            owner: "run".into(),
            expires_at: 1_500
        },
        "the expiry came back with the lease"
    );
    clock.advance(501);
    assert!(matches!(
        store.leases().acquire("k1", "thief", 10).unwrap(),
        Acquire::Acquired(_)
    ));
    assert_eq!(store.leases().release_all("other").unwrap(), 1);
}

/// The store's blobs after reopening `fs` cleanly, each read through to the
/// end (so every metadata row has its bytes), with no orphan file left.
fn reopened_blobs(fs: &FaultFs) -> Vec<(String, Vec<u8>)> {
    fs.heal();
    let store = LogStore::open_with_fs(fs.as_vfs(), Path::new("db"), Options::default()).unwrap();
    let mut out = Vec::new();
    for meta in store
        .blobs()
        .list(&BlobList {
            limit: Some(usize::MAX),
            ..Default::default()
        })
        .unwrap()
    {
        out.push((meta.id.clone(), read(&store, &meta.id)));
    }
    drop(store);
    let again = LogStore::open_with_fs(fs.as_vfs(), Path::new("db"), Options::default()).unwrap();
    assert_eq!(
        again.recovery_report().orphan_blobs_removed,
        0,
        "the first open collected every orphan"
    );
    assert_eq!(again.recovery_report().temp_files_removed, 0);
    out.sort();
    out
}

#[test]
fn a_fault_at_every_step_of_a_blob_put_leaves_the_old_state_or_the_new() {
    for durability in [Durability::Sync, Durability::Flush] {
        let mut step = 1;
        loop {
            let fs = FaultFs::new();
            let opts = Options {
                durability,
                ..Options::default()
            };
            let store = LogStore::open_with_fs(fs.as_vfs(), Path::new("db"), opts).unwrap();
            let before = put(&store, b"existing");
            fs.fail_at(step, true);
            let result = store
                .blobs()
                .put(&mut Cursor::new(b"new bytes".to_vec()), BlobPut::default());
            let faulted = fs.injected() > 0;
            drop(store);
            let blobs = reopened_blobs(&fs);
            assert!(
                blobs.contains(&(before.id.clone(), b"existing".to_vec())),
                "step {step}"
            );
            match &result {
                Ok(meta) => assert!(
                    blobs.contains(&(meta.id.clone(), b"new bytes".to_vec())),
                    "step {step}"
                ),
                Err(_) => assert!(
                    blobs.len() <= 2,
                    "step {step}: at most the unacknowledged blob appears"
                ),
            }
            if !faulted {
                assert!(result.is_ok());
                break;
            }
            assert!(result.is_err(), "step {step}: a fault is reported");
            step += 1;
        }
        assert!(step > 5, "a put has several I/O steps: {step}");
    }
}

#[test]
fn a_fault_at_every_step_of_a_blob_delete_never_leaves_a_dangling_row() {
    let mut step = 1;
    loop {
        let fs = FaultFs::new();
        let store =
            LogStore::open_with_fs(fs.as_vfs(), Path::new("db"), Options::default()).unwrap();
        let doomed = put(&store, b"doomed");
        let twin = put(&store, b"twin");
        fs.fail_at(step, true);
        let result = store.blobs().delete(&doomed.id);
        let faulted = fs.injected() > 0;
        drop(store);
        // reopened_blobs reads every listed blob: a row without its bytes
        // would fail there with Corruption.
        let blobs = reopened_blobs(&fs);
        assert!(
            blobs.contains(&(twin.id.clone(), b"twin".to_vec())),
            "step {step}"
        );
        if result.is_ok() {
            assert!(!blobs.iter().any(|(id, _)| id == &doomed.id), "step {step}");
        }
        if !faulted {
            assert!(result.unwrap());
            break;
        }
        step += 1;
    }
    assert!(step > 2, "a delete has several I/O steps: {step}");
}

#[test]
fn a_failed_directory_sync_after_installing_a_blob_poisons_the_store() {
    let fs = FaultFs::new();
    let store = LogStore::open_with_fs(fs.as_vfs(), Path::new("db"), Options::default()).unwrap();
    store.docs().ensure_collection("c", &[]).unwrap();
    // The sync of blobs/HH/ after the staged file was renamed there.
    fs.fail_next("sync_dir");
    let first = store
        .blobs()
        .put(&mut Cursor::new(b"bytes".to_vec()), BlobPut::default());
    assert_eq!(fs.injected(), 1);
    assert!(matches!(first, Err(Error::Io { .. })), "{first:?}");
    // The renamed file is there, its directory entry maybe not on disk: a
    // put of the same bytes must not be acknowledged on the strength of it.
    let again = store
        .blobs()
        .put(&mut Cursor::new(b"bytes".to_vec()), BlobPut::default());
    assert!(matches!(again, Err(Error::Poisoned)), "{again:?}");
    assert!(matches!(
        store.docs().put("c", "d", serde_json::json!({}), None),
        Err(Error::Poisoned)
    ));
    drop(store);
    assert!(reopened_blobs(&fs).is_empty(), "nothing was acknowledged");
}

#[test]
fn putting_the_same_bytes_again_repairs_a_damaged_content_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = LogStore::open(&dir, Options::default()).unwrap();
    let old = put(&store, b"precious bytes");
    let hash = old.content_hash.clone().unwrap();
    let path = dir.join("blobs").join(&hash[..2]).join(&hash);
    std::fs::write(&path, b"PRECIOUS BYTES").unwrap();
    assert!(matches!(
        store.blobs().get(&old.id),
        Err(Error::Corruption { .. })
    ));
    let new = put(&store, b"precious bytes");
    assert_eq!(new.content_hash, old.content_hash);
    assert_eq!(read(&store, &new.id), b"precious bytes");
    assert_eq!(read(&store, &old.id), b"precious bytes", "the shared file");
    assert_eq!(content_files(&dir), vec![path]);
    assert!(store.verify().unwrap().problems.is_empty());
}

/// Yields `first`, then, asked for more, reports on `asked` and waits for
/// `go` before yielding `rest`: a put paused in the middle of staging.
struct PausedReader {
    first: Cursor<Vec<u8>>,
    rest: Cursor<Vec<u8>>,
    asked: mpsc::Sender<()>,
    go: mpsc::Receiver<()>,
    paused: bool,
}

impl PausedReader {
    fn new(first: &[u8], rest: &[u8]) -> (Self, mpsc::Receiver<()>, mpsc::Sender<()>) {
        let (asked, asked_rx) = mpsc::channel();
        let (go_tx, go) = mpsc::channel();
        let reader = PausedReader {
            first: Cursor::new(first.to_vec()),
            rest: Cursor::new(rest.to_vec()),
            asked,
            go,
            paused: false,
        };
        (reader, asked_rx, go_tx)
    }
}

impl Read for PausedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.first.read(buf)?;
        if n > 0 {
            return Ok(n);
        }
        if !self.paused {
            self.paused = true;
            let _ = self.asked.send(());
            // An error here means the test gave up: go on rather than hang.
            let _ = self.go.recv();
        }
        self.rest.read(buf)
    }
}

const IMPORTED_ID: &str = "0b5c1c9e-6a8d-4a8f-9a4f-3f1f0c6d2e11";

fn imported_meta(size: u64) -> BlobMeta {
    BlobMeta {
        id: IMPORTED_ID.into(),
        mime: "application/octet-stream".into(),
        size,
        owner_id: None,
        created_at: 5,
        content_hash: None,
    }
}

#[test]
fn concurrent_imports_of_one_blob_id_never_share_a_staging_file() {
    let store = LogStore::in_memory(Options::default()).unwrap();
    let meta = imported_meta(8);
    let (mut slow_bytes, asked, go) = PausedReader::new(b"aaaa", b"aaaa");
    std::thread::scope(|s| {
        let slow = s.spawn(|| store.import_blob(&meta, &mut slow_bytes));
        // The slow import has written half its bytes to its staging file.
        asked.recv().unwrap();
        let fast = store
            .import_blob(&meta, &mut Cursor::new(b"bbbbbbbb".to_vec()))
            .unwrap();
        assert_eq!(fast.id, IMPORTED_ID);
        go.send(()).unwrap();
        let slow = slow.join().unwrap();
        assert!(matches!(slow, Err(Error::InvalidInput(_))), "{slow:?}");
    });
    let (_, mut bytes) = store
        .blobs()
        .get(IMPORTED_ID)
        .expect("the fast import's file is whole")
        .unwrap();
    let mut out = Vec::new();
    bytes.read_to_end(&mut out).unwrap();
    assert_eq!(out, b"bbbbbbbb");
}

#[test]
fn a_put_that_finds_the_store_poisoned_or_closed_removes_its_staged_file() {
    for import in [false, true] {
        for close in [false, true] {
            let case = format!("import {import}, close {close}");
            let fs = FaultFs::new();
            let opts = Options {
                auto_compact: false,
                ..Options::default()
            };
            let store = LogStore::open_with_fs(fs.as_vfs(), Path::new("db"), opts).unwrap();
            store.docs().ensure_collection("c", &[]).unwrap();
            let (mut bytes, asked, go) = PausedReader::new(b"staged ", b"bytes");
            std::thread::scope(|s| {
                let paused = s.spawn(|| {
                    if import {
                        store.import_blob(&imported_meta(12), &mut bytes).map(drop)
                    } else {
                        store.blobs().put(&mut bytes, BlobPut::default()).map(drop)
                    }
                });
                asked.recv().unwrap();
                let staged = fs.mem().list(Path::new("db/blobs/tmp")).unwrap();
                assert_eq!(staged.len(), 1, "{case}: the put is staging");
                if close {
                    store.close().unwrap();
                } else {
                    fs.fail_next("sync");
                    let write = store.docs().put("c", "d", serde_json::json!({}), None);
                    assert!(write.is_err(), "{case}");
                }
                go.send(()).unwrap();
                match (close, paused.join().unwrap()) {
                    (true, Err(Error::Closed)) | (false, Err(Error::Poisoned)) => {}
                    (_, other) => panic!("{case}: {other:?}"),
                }
            });
            assert_eq!(
                fs.mem().list(Path::new("db/blobs/tmp")).unwrap(),
                Vec::<String>::new(),
                "{case}: the staged file is gone"
            );
        }
    }
}

/// The real file system, recording which directories are created and
/// synced, and failing the syncs of one directory when asked.
#[derive(Debug)]
struct DirRecorder {
    fs: RealFs,
    log: Mutex<Vec<(&'static str, PathBuf)>>,
    fail_sync_of: Mutex<Option<PathBuf>>,
}

impl DirRecorder {
    /// Records the calls on the real file system confined to `dir`, which
    /// it creates.
    fn new(dir: &Path) -> Self {
        logstore::io::create_dirs_durable(dir).unwrap();
        DirRecorder {
            fs: RealFs::open_root(dir, logstore::io::Access::ReadWrite).unwrap(),
            log: Mutex::default(),
            fail_sync_of: Mutex::default(),
        }
    }

    fn log(&self) -> Vec<(&'static str, PathBuf)> {
        self.log.lock().unwrap().clone()
    }
}

impl Vfs for DirRecorder {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.log
            .lock()
            .unwrap()
            .push(("create_dir_all", dir.to_path_buf()));
        self.fs.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.fs.list(dir)
    }
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VFile>> {
        self.fs.open(path, create)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.fs.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.fs.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.log
            .lock()
            .unwrap()
            .push(("sync_dir", dir.to_path_buf()));
        if self.fail_sync_of.lock().unwrap().as_deref() == Some(dir) {
            return Err(io::Error::other("injected directory sync failure"));
        }
        self.fs.sync_dir(dir)
    }
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn LockGuard>>> {
        self.fs.try_lock(path)
    }
}

#[test]
fn new_blob_directories_are_synced_into_their_parents() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let fs = Arc::new(DirRecorder::new(&dir));
    let store = LogStore::open_with_fs(fs.clone(), &dir, Options::default()).unwrap();
    let meta = put(&store, b"first bytes");
    let hash = meta.content_hash.unwrap();
    let log = fs.log();
    for new in [
        dir.join("blobs"),
        dir.join("blobs/tmp"),
        dir.join("blobs").join(&hash[..2]),
    ] {
        assert!(new.is_dir());
        let created = log
            .iter()
            .position(|(op, path)| *op == "create_dir_all" && path.starts_with(&new))
            .unwrap_or_else(|| panic!("{} was created", new.display()));
        let parent = new.parent().unwrap();
        assert!(
            log[created..]
                .iter()
                .any(|(op, path)| *op == "sync_dir" && path == parent),
            "{} is synced into its parent after its creation: {log:?}",
            new.display()
        );
    }
}

#[test]
fn a_failed_sync_of_a_new_blob_directory_poisons_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let fs = Arc::new(DirRecorder::new(&dir));
    let store = LogStore::open_with_fs(fs.clone(), &dir, Options::default()).unwrap();
    // The first put creates blobs/ in the store directory.
    *fs.fail_sync_of.lock().unwrap() = Some(dir.clone());
    let first = store
        .blobs()
        .put(&mut Cursor::new(b"bytes".to_vec()), BlobPut::default());
    assert!(matches!(first, Err(Error::Io { .. })), "{first:?}");
    *fs.fail_sync_of.lock().unwrap() = None;
    let again = store
        .blobs()
        .put(&mut Cursor::new(b"bytes".to_vec()), BlobPut::default());
    assert!(matches!(again, Err(Error::Poisoned)), "{again:?}");
}

#[test]
fn open_syncs_the_blob_directories_into_their_parents() {
    // A crash may come between creating a blob directory and syncing its
    // parent; the next open makes up for it.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let meta = {
        let store = LogStore::open(&dir, Options::default()).unwrap();
        put(&store, b"kept")
    };
    let fs = Arc::new(DirRecorder::new(&dir));
    let store = LogStore::open_with_fs(fs.clone(), &dir, Options::default()).unwrap();
    let log = fs.log();
    for parent in [dir.clone(), dir.join("blobs")] {
        assert!(
            log.contains(&("sync_dir", parent.clone())),
            "{} synced at open: {log:?}",
            parent.display()
        );
    }
    assert_eq!(read(&store, &meta.id), b"kept");
}

/// A store on the real file system whose hook, the first time the content
/// file of `bytes` is opened, deletes that blob from another thread and
/// waits (up to a second) for the delete to finish. Returns the store, the
/// blob, and the delete's result once the hook ran.
fn store_deleting_on_open(
    dir: &Path,
    bytes: &[u8],
) -> (Arc<LogStore>, BlobMeta, mpsc::Receiver<bool>) {
    use common::wrap_fs::WrapFs;
    logstore::io::create_dirs_durable(dir).unwrap();
    let fs = WrapFs::new(Arc::new(
        RealFs::open_root(dir, logstore::io::Access::ReadWrite).unwrap(),
    ));
    let store =
        Arc::new(LogStore::open_with_fs(Arc::new(fs.clone()), dir, Options::default()).unwrap());
    let meta = put(store.as_ref(), bytes);
    let (done_tx, done_rx) = mpsc::channel();
    let (result_tx, result_rx) = mpsc::channel();
    let deleter = Arc::downgrade(&store);
    let id = meta.id.clone();
    fs.on_open(meta.content_hash.as_deref().unwrap(), move || {
        std::thread::spawn(move || {
            let deleted = deleter
                .upgrade()
                .is_some_and(|store| store.blobs().delete(&id).unwrap());
            let _ = done_tx.send(());
            let _ = result_tx.send(deleted);
        });
        // Without the file handle taken under the state lock, the delete
        // finishes (and removes the file) here, before the open. With it,
        // the delete waits for the reader, and this times out.
        let _ = done_rx.recv_timeout(std::time::Duration::from_secs(1));
    });
    (store, meta, result_rx)
}

#[test]
fn a_get_racing_the_delete_of_its_blob_never_reports_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let (store, meta, deleted) = store_deleting_on_open(&dir, b"raced bytes");
    match store.blobs().get(&meta.id) {
        Ok(Some((got, mut reader))) => {
            assert_eq!(got, meta);
            let mut bytes = Vec::new();
            reader.read_to_end(&mut bytes).unwrap();
            assert_eq!(bytes, b"raced bytes", "a blob read is whole");
        }
        Ok(None) => {}
        Err(e) => panic!("a blob deleted meanwhile is not damage: {e}"),
    }
    assert!(deleted.recv().unwrap(), "the delete went through");
    assert!(store.blobs().get(&meta.id).unwrap().is_none());
    assert!(
        content_files(&dir).is_empty(),
        "the delete removed the file"
    );
}

#[test]
fn verify_racing_the_delete_of_a_blob_finds_no_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let (store, _, deleted) = store_deleting_on_open(&dir, b"raced bytes");
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert!(report.blobs <= 1);
    assert!(deleted.recv().unwrap(), "the delete went through");
    assert!(store.verify().unwrap().is_clean());
    assert!(
        content_files(&dir).is_empty(),
        "the delete removed the file"
    );
}

/// A blob larger than the size checked before the first byte (64 KiB), and
/// spanning several of the reader's read-ahead pieces (256 KiB).
const LARGE: usize = 700 * 1024 + 3;

fn large_bytes() -> Vec<u8> {
    (0..LARGE).map(|i| (i * 13 % 241) as u8).collect()
}

fn content_path(dir: &Path, meta: &BlobMeta) -> PathBuf {
    let hash = meta.content_hash.clone().unwrap();
    dir.join("blobs").join(&hash[..2]).join(&hash)
}

/// Reads `reader` to its end in 8 KiB pieces (as `io::copy` does), keeping
/// what it handed out; returns those bytes and how the stream ended.
fn drain(reader: &mut dyn Read) -> (Vec<u8>, io::Result<()>) {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return (got, Err(e)),
        }
    }
}

/// The `Error::Corruption` a blob reader's error carries, naming `path`.
fn assert_corruption(e: io::Error, path: &Path) {
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    match e.downcast::<Error>() {
        Ok(Error::Corruption { file, .. }) => assert_eq!(file, path),
        other => panic!("expected Error::Corruption inside, got {other:?}"),
    }
}

fn flip_a_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn an_intact_large_blob_streams_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LogStore::open(tmp.path().join("store"), Options::default()).unwrap();
    let bytes = large_bytes();
    let meta = put(&store, &bytes);
    assert_eq!(read(&store, &meta.id), bytes, "read_to_end");
    let (_, mut reader) = store.blobs().get(&meta.id).unwrap().unwrap();
    let (got, end) = drain(reader.as_mut());
    assert!(end.is_ok() && got == bytes, "8 KiB reads");
    let (_, mut reader) = store.blobs().get(&meta.id).unwrap().unwrap();
    let mut exact = vec![0u8; LARGE];
    reader.read_exact(&mut exact).unwrap();
    assert!(exact == bytes, "one read_exact of the whole");
    assert_eq!(reader.read(&mut [0u8; 8]).unwrap(), 0);
}

#[test]
fn a_large_blob_with_flipped_bytes_streams_into_a_corruption_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = LogStore::open(&dir, Options::default()).unwrap();
    let meta = put(&store, &large_bytes());
    let path = content_path(&dir, &meta);
    // Same length, one byte changed: only the hash can tell.
    flip_a_byte(&path, 300 * 1024);
    let (_, mut reader) = store.blobs().get(&meta.id).unwrap().unwrap();
    let (got, end) = drain(reader.as_mut());
    assert_corruption(end.unwrap_err(), &path);
    assert!(
        got.len() < LARGE,
        "the read that would hand out the last bytes fails instead"
    );
    let again = reader.read(&mut [0u8; 8192]).unwrap_err();
    assert_corruption(again, &path);
    // A reader of exactly the blob's size sees the error too.
    let (_, mut reader) = store.blobs().get(&meta.id).unwrap().unwrap();
    let mut exact = vec![0u8; LARGE];
    assert_corruption(reader.read_exact(&mut exact).unwrap_err(), &path);
    // The integrity check still hashes the whole file.
    let report = store.verify().unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].file, path);
}

#[test]
fn a_large_blob_whose_file_changes_length_fails_before_or_while_streaming() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = LogStore::open(&dir, Options::default()).unwrap();
    let meta = put(&store, &large_bytes());
    let path = content_path(&dir, &meta);
    let set_len = |len: u64| {
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len).unwrap();
    };
    // Damaged before the get: the get itself fails.
    for len in [LARGE as u64 - 1, LARGE as u64 + 1] {
        set_len(len);
        match store.blobs().get(&meta.id) {
            Err(Error::Corruption { file, .. }) => assert_eq!(file, path),
            other => panic!("{len} bytes: {:?}", other.map(|o| o.map(|(m, _)| m))),
        }
    }
    // Damaged while a reader streams it (the file is changed in place, as
    // rot or a stray writer would): the stream ends in the error.
    for (len, name) in [(100 * 1024, "truncated"), (LARGE as u64 + 5, "extended")] {
        set_len(LARGE as u64);
        std::fs::write(&path, large_bytes()).unwrap();
        let (_, mut reader) = store.blobs().get(&meta.id).unwrap().unwrap();
        let mut first = [0u8; 4096];
        reader.read_exact(&mut first).unwrap();
        set_len(len);
        let (got, end) = drain(reader.as_mut());
        let err = end.expect_err(name);
        assert_corruption(err, &path);
        assert!(4096 + got.len() < LARGE, "{name}: not handed out whole");
    }
}

#[test]
fn a_small_damaged_blob_fails_before_the_first_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = LogStore::open(&dir, Options::default()).unwrap();
    // The largest blob still checked whole before the get returns.
    let bytes: Vec<u8> = (0..64 * 1024).map(|i| (i % 199) as u8).collect();
    let meta = put(&store, &bytes);
    let path = content_path(&dir, &meta);
    flip_a_byte(&path, 64 * 1024 - 1);
    match store.blobs().get(&meta.id) {
        Err(Error::Corruption { file, .. }) => assert_eq!(file, path),
        other => panic!(
            "expected corruption, got {:?}",
            other.map(|o| o.map(|(m, _)| m))
        ),
    }
}

/// The SQLite driver uses the same reader, checking the length alone (its
/// schema keeps no hash): a file that changes length while it streams ends
/// the stream in the error.
#[cfg(feature = "sqlite")]
#[test]
fn the_sqlite_driver_checks_a_streamed_blob_s_length_at_the_end() {
    let tmp = tempfile::tempdir().unwrap();
    let blob_dir = tmp.path().join("blobs");
    let store =
        logstore::SqliteStore::open(tmp.path().join("store.db"), &blob_dir, Options::default())
            .unwrap();
    let bytes = large_bytes();
    let meta = put(&store, &bytes);
    assert_eq!(read(&store, &meta.id), bytes);
    let path = blob_dir.join(&meta.id);
    let (_, mut reader) = store.blobs().get(&meta.id).unwrap().unwrap();
    let mut first = [0u8; 4096];
    reader.read_exact(&mut first).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(LARGE as u64 + 1).unwrap();
    let (_, end) = drain(reader.as_mut());
    assert_corruption(end.unwrap_err(), &path);
    assert!(matches!(
        store.blobs().get(&meta.id),
        Err(Error::Corruption { .. })
    ));
}
