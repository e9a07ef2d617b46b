//! A file system for fault injection (for tests and fuzzing): an in-memory file system whose
//! mutating calls (create, write, sync, set length, rename, remove, sync
//! directory) are counted, and the Nth of them (or every one from the Nth
//! on) fails, as SQLite's I/O-error tests do; or the next call of one kind
//! fails.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{LockGuard, MemFs, Stamp, VFile, Vfs};

#[derive(Debug, Default)]
struct Faults {
    calls: AtomicU64,
    fail_at: AtomicU64,
    persistent: AtomicBool,
    injected: AtomicU64,
    /// The kind of call (`"sync_dir"`, ...) whose next occurrence fails.
    next_kind: Mutex<Option<&'static str>>,
}

impl Faults {
    /// Counts one mutating call and fails it if it is the one chosen.
    fn check(&self, what: &str) -> io::Result<()> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let at = self.fail_at.load(Ordering::SeqCst);
        let by_kind = {
            let mut next = self.next_kind.lock();
            let hit = *next == Some(what);
            if hit {
                *next = None;
            }
            hit
        };
        let hit =
            by_kind || (at != 0 && (n == at || (self.persistent.load(Ordering::SeqCst) && n > at)));
        if hit {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(io::Error::other(format!(
                "injected failure of call {n} ({what})"
            )));
        }
        Ok(())
    }
}

/// The fault-injecting file system; clones share files and counters.
#[derive(Debug, Clone, Default)]
pub struct FaultFs {
    inner: MemFs,
    faults: Arc<Faults>,
}

impl FaultFs {
    /// A fault injector over an empty in-memory file system.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fails mutating call number `n` from now (1 is the next call); with
    /// `persistent`, every call after it fails too.
    pub fn fail_at(&self, n: u64, persistent: bool) {
        self.faults.calls.store(0, Ordering::SeqCst);
        self.faults.injected.store(0, Ordering::SeqCst);
        self.faults.persistent.store(persistent, Ordering::SeqCst);
        self.faults.fail_at.store(n, Ordering::SeqCst);
    }

    /// Fails the next mutating call of kind `what` once: `"create"`,
    /// `"write"`, `"sync"`, `"set_len"`, `"rename"`, `"remove"` or
    /// `"sync_dir"`. Counts towards [`FaultFs::injected`].
    pub fn fail_next(&self, what: &'static str) {
        *self.faults.next_kind.lock() = Some(what);
    }

    /// Stops injecting faults.
    pub fn heal(&self) {
        self.faults.fail_at.store(0, Ordering::SeqCst);
        *self.faults.next_kind.lock() = None;
    }

    /// How many faults were injected since the last `fail_at`.
    pub fn injected(&self) -> u64 {
        self.faults.injected.load(Ordering::SeqCst)
    }

    /// The in-memory file system underneath.
    pub fn mem(&self) -> &MemFs {
        &self.inner
    }

    /// This file system as the seam a store opens through.
    pub fn as_vfs(&self) -> Arc<dyn Vfs> {
        Arc::new(self.clone())
    }
}

#[derive(Debug)]
struct FaultFile {
    inner: Arc<dyn VFile>,
    faults: Arc<Faults>,
}

impl VFile for FaultFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.faults.check("write")?;
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.faults.check("sync")?;
        self.inner.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.faults.check("set_len")?;
        self.inner.set_len(len)
    }
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
    fn stamp(&self) -> io::Result<Option<Stamp>> {
        self.inner.stamp()
    }
}

impl Vfs for FaultFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VFile>> {
        if create && self.inner.file(path).is_none() {
            self.faults.check("create")?;
        }
        let inner = self.inner.open(path, create)?;
        Ok(Arc::new(FaultFile {
            inner,
            faults: self.faults.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.faults.check("rename")?;
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.faults.check("remove")?;
        self.inner.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.faults.check("sync_dir")?;
        self.inner.sync_dir(dir)
    }
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn LockGuard>>> {
        self.inner.try_lock(path)
    }
}
