//! Durability: a failed sync or write poisons the store, so no later write
//! reports success until the store is reopened.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use logstore::io::{LockGuard, MemFs, VFile, Vfs};
use logstore::{Durability, Error, LogStore, Options, Store};
use serde_json::json;

/// A MemFs whose syncs and writes fail while `failing` is set.
#[derive(Debug, Clone, Default)]
struct FlakyFs {
    inner: MemFs,
    failing: Arc<AtomicBool>,
}

#[derive(Debug)]
struct FlakyFile {
    inner: Arc<dyn VFile>,
    failing: Arc<AtomicBool>,
}

impl FlakyFile {
    fn check(&self) -> io::Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected failure"));
        }
        Ok(())
    }
}

impl VFile for FlakyFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.check()?;
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.check()?;
        self.inner.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check()?;
        self.inner.set_len(len)
    }
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
}

impl Vfs for FlakyFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VFile>> {
        let inner = self.inner.open(path, create)?;
        Ok(Arc::new(FlakyFile {
            inner,
            failing: self.failing.clone(),
        }))
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
        self.inner.try_lock(path)
    }
}

fn open(fs: &FlakyFs, durability: Durability) -> LogStore {
    let opts = Options {
        durability,
        ..Options::default()
    };
    LogStore::open_with_fs(Arc::new(fs.clone()), Path::new("db"), opts).unwrap()
}

#[test]
fn a_failed_sync_poisons_the_store_until_reopen() {
    let fs = FlakyFs::default();
    let store = open(&fs, Durability::Sync);
    store.docs().put("c", "ok", json!({}), None).unwrap();
    fs.failing.store(true, Ordering::SeqCst);
    let err = store.docs().put("c", "lost", json!({}), None).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    fs.failing.store(false, Ordering::SeqCst);
    // The disk works again, but the store no longer knows what is durable.
    for attempt in [
        store.docs().put("c", "later", json!({}), None).map(drop),
        store.docs().delete("c", "ok").map(drop),
        store.docs().ensure_collection("c", &["a"]),
        store.docs().patch("c", "ok", json!({}), 1).map(drop),
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
    let fs = FlakyFs::default();
    let store = open(&fs, Durability::Flush);
    fs.failing.store(true, Ordering::SeqCst);
    assert!(matches!(
        store.docs().put("c", "x", json!({}), None),
        Err(Error::Io { .. })
    ));
    fs.failing.store(false, Ordering::SeqCst);
    assert!(matches!(
        store.docs().put("c", "y", json!({}), None),
        Err(Error::Poisoned)
    ));
}

#[test]
fn concurrent_sync_writers_all_succeed_and_persist() {
    let fs = FlakyFs::default();
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
    assert_eq!(store.docs().count(&logstore::Query::new("c")).unwrap(), 400);
}
