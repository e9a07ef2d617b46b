//! A file system wrapper that counts the bytes read from and written to
//! files through it, holes and data alike, and fails any read once a
//! budget is spent: a test of a scan that must skip a huge hole then fails
//! at once, instead of reading gigabytes first. It passes on what the
//! wrapped file system knows of holes (`VFile::next_data`); it does not map
//! files, so every read goes through `read_exact_at` and is counted.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use logstore::io::{LockGuard, VFile, Vfs};

#[derive(Debug, Default)]
struct Counts {
    read: AtomicU64,
    written: AtomicU64,
}

/// The wrapper; clones share their counts.
#[derive(Debug, Clone)]
pub struct CountFs {
    inner: Arc<dyn Vfs>,
    counts: Arc<Counts>,
    read_budget: u64,
}

impl CountFs {
    /// Counts over `inner`; a read that takes the bytes read past
    /// `read_budget` fails.
    pub fn new(inner: Arc<dyn Vfs>, read_budget: u64) -> Self {
        CountFs {
            inner,
            counts: Arc::default(),
            read_budget,
        }
    }

    /// Bytes read from files so far.
    pub fn read(&self) -> u64 {
        self.counts.read.load(Ordering::SeqCst)
    }

    /// Bytes written to files so far.
    pub fn written(&self) -> u64 {
        self.counts.written.load(Ordering::SeqCst)
    }

    /// This file system as the seam a store opens through.
    pub fn as_vfs(&self) -> Arc<dyn Vfs> {
        Arc::new(self.clone())
    }
}

#[derive(Debug)]
struct CountFile {
    inner: Arc<dyn VFile>,
    fs: CountFs,
}

impl VFile for CountFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let n = buf.len() as u64;
        let before = self.fs.counts.read.fetch_add(n, Ordering::SeqCst);
        if before + n > self.fs.read_budget {
            return Err(io::Error::other(format!(
                "reading {n} bytes at {offset} would pass the test's budget of {} bytes",
                self.fs.read_budget
            )));
        }
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.fs
            .counts
            .written
            .fetch_add(buf.len() as u64, Ordering::SeqCst);
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
    fn next_data(&self, offset: u64) -> io::Result<Option<(u64, u64)>> {
        self.inner.next_data(offset)
    }
}

impl Vfs for CountFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VFile>> {
        let inner = self.inner.open(path, create)?;
        Ok(Arc::new(CountFile {
            inner,
            fs: self.clone(),
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
