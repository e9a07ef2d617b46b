//! The files of a blob put besides its content: the staging file of a put
//! or an import (never shared, removed when the store is found poisoned or
//! closed) and the blob directories (each synced into its parent when made,
//! and again before a handle's first blob put; a failed sync poisons the
//! store).

mod common;

use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use common::blobs::{put, read};
use logstore::io::{FaultFs, LockGuard, RealFs, VFile, Vfs};
use logstore::{BlobMeta, BlobPut, Error, LogStore, Options, Store, Transfer};

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
fn the_first_blob_put_of_a_handle_syncs_the_blob_directories_into_their_parents() {
    // A crash may come between creating a blob directory and syncing its
    // parent; the next handle makes up for it before the first blob record
    // it writes, and an open that writes no blob syncs no directory.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let meta = {
        let store = LogStore::open(&dir, Options::default()).unwrap();
        put(&store, b"kept")
    };
    let fs = Arc::new(DirRecorder::new(&dir));
    let store = LogStore::open_with_fs(fs.clone(), &dir, Options::default()).unwrap();
    let synced = |parent: &Path| {
        fs.log()
            .iter()
            .filter(|entry| **entry == ("sync_dir", parent.to_path_buf()))
            .count()
    };
    let parents = [dir.clone(), dir.join("blobs")];
    for parent in &parents {
        assert_eq!(synced(parent), 0, "{} synced at open", parent.display());
    }
    assert_eq!(read(&store, &meta.id), b"kept");
    // Into the folder the first handle made, so the put creates none.
    put(&store, b"kept");
    for parent in &parents {
        assert_eq!(synced(parent), 1, "{} synced by the put", parent.display());
    }
    put(&store, b"kept");
    for parent in &parents {
        assert_eq!(synced(parent), 1, "{} synced once", parent.display());
    }
}

#[test]
fn a_failed_sync_of_the_blob_directories_before_a_handle_s_first_put_poisons_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    drop(LogStore::open(&dir, Options::default()).map(|store| put(&store, b"kept")));
    let fs = Arc::new(DirRecorder::new(&dir));
    let store = LogStore::open_with_fs(fs.clone(), &dir, Options::default()).unwrap();
    *fs.fail_sync_of.lock().unwrap() = Some(dir.join("blobs"));
    let first = store
        .blobs()
        .put(&mut Cursor::new(b"kept".to_vec()), BlobPut::default());
    assert!(matches!(first, Err(Error::Io { .. })), "{first:?}");
    *fs.fail_sync_of.lock().unwrap() = None;
    let again = store
        .blobs()
        .put(&mut Cursor::new(b"kept".to_vec()), BlobPut::default());
    assert!(matches!(again, Err(Error::Poisoned)), "{again:?}");
}
