//! The file-system seam: every file operation of the log engine goes through
//! [`Vfs`], so tests can inject I/O errors ([`FaultFs`]) and simulate power
//! loss, and the in-memory store runs the same engine on [`MemFs`].

mod fault;

pub use fault::FaultFs;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

/// An open file: positioned reads and writes, sync, length.
pub trait VFile: Send + Sync + fmt::Debug {
    /// Fills `buf` from `offset`; an error if the file ends first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes the file's data durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
    /// Truncates or extends the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The file's length in bytes.
    fn size(&self) -> io::Result<u64>;
    /// The whole file mapped read-only, so reads slice the page cache
    /// without a syscall or a copy. Only for a file that is never written,
    /// shortened or lengthened while the map lives: a sealed segment, or
    /// the snapshot (only ever replaced by a rename). `None` (the default)
    /// when this file system does not map (the in-memory and fault-injecting
    /// ones); callers fall back to [`VFile::read_exact_at`].
    fn map(&self) -> io::Result<Option<Arc<memmap2::Mmap>>> {
        Ok(None)
    }
    /// The file's first `len` bytes mapped read-only, however long the file
    /// is now: for the active segment, which only grows below `len` while
    /// the map lives (appends and their zero-filling), so each record is
    /// readable through the map from the moment it is written. A caller
    /// must only read bytes the file already holds (a page wholly past the
    /// end raises SIGBUS) and never bytes still being written. `None` (the
    /// default) when this file system does not map.
    fn map_ahead(&self, _len: u64) -> io::Result<Option<Arc<memmap2::Mmap>>> {
        Ok(None)
    }
    /// The next extent `[start, end)` at or after `offset` that may hold
    /// data; the bytes between `offset` and `start` are a hole, which reads
    /// as zeros. `None` when nothing but a hole (or nothing) follows
    /// `offset`. A scan over a long stretch of the file asks this first, so
    /// that a sparse file's holes are skipped instead of read. The default,
    /// for a file system that cannot tell: all the rest of the file.
    fn next_data(&self, offset: u64) -> io::Result<Option<(u64, u64)>> {
        whole_rest(self.size()?, offset)
    }
}

/// [`VFile::next_data`] for a file of `size` bytes without holes.
fn whole_rest(size: u64, offset: u64) -> io::Result<Option<(u64, u64)>> {
    Ok((offset < size).then_some((offset, size)))
}

/// A held directory lock; dropping it releases the lock.
pub trait LockGuard: Send + Sync + fmt::Debug {}

/// The file-system operations the engine uses.
pub trait Vfs: Send + Sync + fmt::Debug {
    /// Creates a directory and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The names of the files in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Opens a file for reading and writing; `create` makes it if missing.
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VFile>>;
    /// Renames a file, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes the exclusive lock on `path` without waiting: `Ok(None)` when
    /// another handle holds it.
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn LockGuard>>>;
}

/// Creates `dir` (and missing parents) and syncs its parent, so that the
/// new entry survives a power loss. The one way the engine makes a
/// directory: the store's own, `blobs/` and its folders, `quarantine/`.
pub fn create_dir_durable(fs: &dyn Vfs, dir: &Path) -> io::Result<()> {
    fs.create_dir_all(dir)?;
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => fs.sync_dir(parent),
        _ => Ok(()),
    }
}

/// The temporary name [`write_temp`] writes `name` under.
pub(crate) fn temp_name(name: &str) -> String {
    format!("{name}.tmp")
}

/// The first half of replacing the file `name` in `dir` atomically: writes
/// `bytes` to `<name>.tmp` (truncating a leftover one) and syncs it. The
/// file in force is untouched, so a failure here changes nothing a reader
/// or the next open sees.
pub(crate) fn write_temp(fs: &dyn Vfs, dir: &Path, name: &str, bytes: &[u8]) -> crate::Result<()> {
    let tmp = dir.join(temp_name(name));
    let context = || format!("writing {}", tmp.display());
    let file = fs
        .open(&tmp, true)
        .map_err(|e| crate::Error::io(context(), e))?;
    file.set_len(0)
        .and_then(|()| file.write_all_at(bytes, 0))
        .and_then(|()| file.sync_data())
        .map_err(|e| crate::Error::io(context(), e))
}

/// The second half: renames `<name>.tmp` over `name`, then makes the
/// rename durable with `sync_dir` (a closure, because the store syncs its
/// directory through the commit gate and poisons itself when that fails).
/// After an error here the new file may or may not be in force.
pub(crate) fn rename_temp(
    fs: &dyn Vfs,
    dir: &Path,
    name: &str,
    sync_dir: impl FnOnce() -> crate::Result<()>,
) -> crate::Result<()> {
    let tmp = dir.join(temp_name(name));
    let path = dir.join(name);
    fs.rename(&tmp, &path)
        .map_err(|e| crate::Error::io(format!("renaming {} into place", tmp.display()), e))?;
    sync_dir()
}

/// Replaces the file `name` in `dir` with `bytes` atomically: write
/// `<name>.tmp`, sync it, rename it over `name`, sync the directory through
/// `sync_dir`. A crash at any point leaves the old file or the new one,
/// never a mix. Callers whose commit point lies between the halves (the
/// manifest) call [`write_temp`] and [`rename_temp`] themselves.
pub(crate) fn write_atomic(
    fs: &dyn Vfs,
    dir: &Path,
    name: &str,
    bytes: &[u8],
    sync_dir: impl FnOnce() -> crate::Result<()>,
) -> crate::Result<()> {
    write_temp(fs, dir, name, bytes)?;
    rename_temp(fs, dir, name, sync_dir)
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

#[derive(Debug)]
struct RealFile(File);

impl VFile for RealFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn map(&self) -> io::Result<Option<Arc<memmap2::Mmap>>> {
        // SAFETY: a map is only asked for a file no one changes while it is
        // mapped (reading a page past a shortened end raises SIGBUS, and
        // bytes changing under a reader break Rust's aliasing rules), which
        // the engine holds to: only sealed segments and the snapshot are
        // mapped; sealed segments are never written, truncated or extended
        // again, and the snapshot is replaced only by renaming a new file
        // over it. FORMAT.md ("Mapped reads") gives the argument. The
        // directory lock keeps other logstore handles away; a process that
        // ignores the lock and shortens or overwrites a file is outside the
        // contract.
        let map = unsafe { memmap2::Mmap::map(&self.0)? };
        Ok(Some(Arc::new(map)))
    }
    fn map_ahead(&self, len: u64) -> io::Result<Option<Arc<memmap2::Mmap>>> {
        let Ok(len) = usize::try_from(len) else {
            return Ok(None);
        };
        // SAFETY: as for `map`, and only the active segment is mapped ahead:
        // it only grows while this map lives (appends and the zeros written
        // ahead of them; the roll's cut of those zeros happens after the
        // last record, and readers only read records), and a reader builds
        // a slice only of a record the index already points at, whose bytes
        // are written once and never again. FORMAT.md ("Mapped reads").
        let map = unsafe { memmap2::MmapOptions::new().len(len).map(&self.0)? };
        Ok(Some(Arc::new(map)))
    }
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "illumos",
        target_os = "solaris",
    ))]
    fn next_data(&self, offset: u64) -> io::Result<Option<(u64, u64)>> {
        use rustix::fs::{seek, SeekFrom};
        use rustix::io::Errno;
        // `lseek` moves the descriptor's position, which nothing here uses:
        // every read and write is positioned (`pread`, `pwrite`).
        match seek(&self.0, SeekFrom::Data(offset)) {
            Ok(start) => {
                // There is always a hole at the end of the file, so this
                // finds one unless the file shrank in between.
                let end = match seek(&self.0, SeekFrom::Hole(start)) {
                    Ok(end) => end,
                    Err(Errno::NXIO) => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
                Ok(Some((start, end)))
            }
            // Only a hole from `offset` to the end, or `offset` is past it.
            Err(Errno::NXIO) => Ok(None),
            // A file system without SEEK_DATA: no holes are known.
            Err(Errno::INVAL | Errno::NOTSUP) => whole_rest(self.size()?, offset),
            Err(e) => Err(e.into()),
        }
    }
}

#[derive(Debug)]
struct FileLock(File);

impl LockGuard for FileLock {}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock too; unlocking first
        // makes the release independent of other clones of the descriptor.
        let _ = self.0.unlock();
    }
}

impl Vfs for RealFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                if let Some(name) = entry.file_name().to_str() {
                    names.push(name.to_string());
                }
            }
        }
        names.sort();
        Ok(names)
    }
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)?;
        Ok(Arc::new(RealFile(file)))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn LockGuard>>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        // The standard library's lock (stable since Rust 1.89, hence the
        // crate's rust-version) rather than `fs2`, unmaintained since 2018,
        // or its fork `fs4`: one dependency fewer for the same call. On Unix
        // it is the same `flock(LOCK_EX | LOCK_NB)` fs2 took, so a store
        // stays locked against a process built with the older crate, and
        // contention is a typed `WouldBlock` instead of a comparison of raw
        // OS error codes.
        match file.try_lock() {
            Ok(()) => Ok(Some(Box::new(FileLock(file)))),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

/// A file system held in memory: the backing of `LogStore::in_memory`, and
/// the base that test file systems build on. Syncs do nothing; every write
/// is as durable as the process.
#[derive(Debug, Default, Clone)]
pub struct MemFs {
    files: Arc<Mutex<BTreeMap<PathBuf, Arc<MemFile>>>>,
}

/// One file of a [`MemFs`].
#[derive(Debug, Default)]
pub struct MemFile {
    data: RwLock<Vec<u8>>,
}

impl MemFile {
    /// A copy of the file's bytes.
    pub fn contents(&self) -> Vec<u8> {
        self.data.read().clone()
    }
}

impl VFile for MemFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let data = self.data.read();
        let start = usize::try_from(offset).map_err(|_| eof())?;
        let end = start.checked_add(buf.len()).ok_or_else(eof)?;
        let src = data.get(start..end).ok_or_else(eof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut data = self.data.write();
        let start = usize::try_from(offset).map_err(|_| eof())?;
        let end = start + buf.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[start..end].copy_from_slice(buf);
        Ok(())
    }
    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(|_| eof())?;
        self.data.write().resize(len, 0);
        Ok(())
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.data.read().len() as u64)
    }
}

fn eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "read past the end of the file",
    )
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} does not exist", path.display()),
    )
}

#[derive(Debug)]
struct NoLock;
impl LockGuard for NoLock {}

impl MemFs {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    /// The file at `path`, if any.
    pub fn file(&self, path: &Path) -> Option<Arc<MemFile>> {
        self.files.lock().get(path).cloned()
    }

    /// An independent copy of every file: what a crash at this moment
    /// would leave, for a store kept entirely in memory.
    pub fn deep_copy(&self) -> MemFs {
        let files = self
            .files
            .lock()
            .iter()
            .map(|(path, file)| {
                let copy = MemFile {
                    data: RwLock::new(file.contents()),
                };
                (path.clone(), Arc::new(copy))
            })
            .collect();
        MemFs {
            files: Arc::new(Mutex::new(files)),
        }
    }
}

impl Vfs for MemFs {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let files = self.files.lock();
        Ok(files
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
            .collect())
    }
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VFile>> {
        let mut files = self.files.lock();
        if let Some(file) = files.get(path) {
            return Ok(file.clone());
        }
        if !create {
            return Err(not_found(path));
        }
        let file = Arc::new(MemFile::default());
        files.insert(path.to_path_buf(), file.clone());
        Ok(file)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut files = self.files.lock();
        let file = files.remove(from).ok_or_else(|| not_found(from))?;
        files.insert(to.to_path_buf(), file);
        Ok(())
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.files
            .lock()
            .remove(path)
            .map(drop)
            .ok_or_else(|| not_found(path))
    }
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
    fn try_lock(&self, _path: &Path) -> io::Result<Option<Box<dyn LockGuard>>> {
        // A MemFs belongs to one store handle; nothing else can reach it.
        Ok(Some(Box::new(NoLock)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    /// A real sparse file reports its data extents and skips its holes:
    /// a page at the start, one in the middle of a 64 GiB file, nothing
    /// after it. (A file system may round an extent out to its block or
    /// allocation size, so only "covers the page, spans little more" is
    /// asserted.)
    #[test]
    fn a_real_file_reports_its_data_and_skips_its_holes() {
        let tmp = tempfile::tempdir().unwrap();
        let file = RealFs.open(&tmp.path().join("sparse"), true).unwrap();
        let page = [7u8; 4096];
        file.write_all_at(&page, 0).unwrap();
        file.write_all_at(&page, 32 * GIB).unwrap();
        file.set_len(64 * GIB).unwrap();
        let around = |offset: u64, page_at: u64| {
            let (start, end) = file.next_data(offset).unwrap().expect("data");
            assert!(offset <= start && start <= page_at.max(offset), "{start}");
            assert!(end >= page_at + 4096, "{start}..{end}");
            assert!(end - start <= 1 << 20, "{start}..{end}");
            end
        };
        let end = around(0, 0);
        assert_eq!(file.next_data(100).unwrap().unwrap().0, 100);
        let end = around(end, 32 * GIB);
        assert_eq!(file.next_data(end).unwrap(), None);
        assert_eq!(file.next_data(64 * GIB).unwrap(), None);
        assert_eq!(file.next_data(65 * GIB).unwrap(), None);
    }

    /// A file system that cannot tell holes from data reports the whole
    /// rest of the file.
    #[test]
    fn the_default_is_the_rest_of_the_file() {
        let file = MemFs::new().open(Path::new("f"), true).unwrap();
        file.set_len(100).unwrap();
        assert_eq!(file.next_data(0).unwrap(), Some((0, 100)));
        assert_eq!(file.next_data(99).unwrap(), Some((99, 100)));
        assert_eq!(file.next_data(100).unwrap(), None);
        assert_eq!(file.next_data(1000).unwrap(), None);
    }
}
