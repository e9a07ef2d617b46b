//! A blob delete whose record is synced while `close` runs, and another
//! handle that opens the directory and puts the same bytes before the
//! delete's clean step: the new handle's content file stays. The clean step
//! of `Decision::WriteThenClean` runs under the writer lock only while the
//! store is open.

mod common;

use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logstore::io::{LockGuard, VFile, Vfs};
use logstore::{BlobPut, Durability, LogStore, Options, Store};

type Hook = Box<dyn FnOnce() + Send>;

#[derive(Debug)]
struct HookFs {
    inner: Arc<dyn Vfs>,
    hooks: Arc<Hooks>,
}

#[derive(Default)]
struct Hooks {
    /// The next sync of a segment runs this first.
    on_seg_sync: Mutex<Option<Hook>>,
    /// The lock guard's drop runs this after releasing the lock.
    on_unlock: Mutex<Option<Hook>>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hooks")
    }
}

#[derive(Debug)]
struct HookFile {
    inner: Arc<dyn VFile>,
    seg: bool,
    hooks: Arc<Hooks>,
}

impl VFile for HookFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        if self.seg {
            let hook = self.hooks.on_seg_sync.lock().unwrap().take();
            if let Some(hook) = hook {
                hook();
            }
        }
        self.inner.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
}

#[derive(Debug)]
struct HookGuard {
    inner: Option<Box<dyn LockGuard>>,
    hooks: Arc<Hooks>,
}
impl LockGuard for HookGuard {}
impl Drop for HookGuard {
    fn drop(&mut self) {
        drop(self.inner.take());
        let hook = self.hooks.on_unlock.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
    }
}

impl HookFs {
    fn wrap(&self, path: &Path, f: Arc<dyn VFile>) -> Arc<dyn VFile> {
        let seg = path.extension().is_some_and(|e| e == "seg");
        Arc::new(HookFile {
            inner: f,
            seg,
            hooks: self.hooks.clone(),
        })
    }
}

impl Vfs for HookFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn list_entries(&self, dir: &Path) -> io::Result<Vec<logstore::io::Entry>> {
        self.inner.list_entries(dir)
    }
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VFile>> {
        let f = self.inner.open(path, create)?;
        Ok(self.wrap(path, f))
    }
    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn VFile>> {
        let f = self.inner.create_new(path)?;
        Ok(self.wrap(path, f))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn LockGuard>>> {
        Ok(self.inner.try_lock(path)?.map(|g| {
            Box::new(HookGuard {
                inner: Some(g),
                hooks: self.hooks.clone(),
            }) as Box<dyn LockGuard>
        }))
    }
}

fn opts() -> Options {
    Options {
        durability: Durability::Flush,
        auto_compact: false,
        ..Options::default()
    }
}

const BYTES: &[u8] = b"the same bytes, put again by the next handle";

#[test]
fn a_delete_racing_close_and_a_reopen_that_puts_the_same_bytes_keeps_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().join("db");
    let real: Arc<dyn Vfs> = Arc::new(common::real_fs(&dir));
    let hooks = Arc::new(Hooks::default());
    let fs = Arc::new(HookFs {
        inner: real,
        hooks: hooks.clone(),
    });
    let store = LogStore::open_with_fs(fs, &dir, opts()).unwrap();
    let meta = store
        .blobs()
        .put(&mut Cursor::new(BYTES.to_vec()), BlobPut::default())
        .unwrap();

    // The delete's sync waits for the test.
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    *hooks.on_seg_sync.lock().unwrap() = Some(Box::new(move || {
        entered_tx.send(()).unwrap();
        release_rx.recv().unwrap();
    }));
    // When close releases the directory: another handle opens it and puts
    // the same bytes.
    let reopened_id: Arc<Mutex<Option<String>>> = Arc::default();
    let ran = Arc::new(AtomicBool::new(false));
    {
        let (dir, reopened_id, ran) = (dir.clone(), reopened_id.clone(), ran.clone());
        *hooks.on_unlock.lock().unwrap() = Some(Box::new(move || {
            let other = LogStore::open(&dir, opts()).unwrap();
            let m = other
                .blobs()
                .put(&mut Cursor::new(BYTES.to_vec()), BlobPut::default())
                .unwrap();
            *reopened_id.lock().unwrap() = Some(m.id);
            other.close().unwrap();
            ran.store(true, Ordering::SeqCst);
        }));
    }
    std::thread::scope(|s| {
        let deleter = s.spawn(|| store.blobs().delete(&meta.id));
        entered_rx.recv().unwrap();
        let closer = s.spawn(|| store.close());
        // Let close reach the commit gate the delete's sync holds.
        std::thread::sleep(Duration::from_millis(100));
        release_tx.send(()).unwrap();
        println!("delete: {:?}", deleter.join().unwrap());
        println!("close: {:?}", closer.join().unwrap());
    });
    assert!(ran.load(Ordering::SeqCst), "the other handle ran");
    drop(store);
    let id = reopened_id.lock().unwrap().clone().unwrap();
    let store = LogStore::open(&dir, opts()).unwrap();
    let (_, mut reader) = store.blobs().get(&id).unwrap().expect("the blob");
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).expect("its file is there");
    assert_eq!(bytes, BYTES);
    assert!(store.verify().unwrap().is_clean());
}
