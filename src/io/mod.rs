//! The file-system seam: every file operation of the log engine goes through
//! [`Vfs`], so tests can inject I/O errors ([`FaultFs`]) and simulate power
//! loss, and the in-memory store runs the same engine on [`MemFs`].

mod fault;
mod real;

pub use fault::FaultFs;
pub use real::{create_dirs_durable, Access, RealFs};

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Whether the file has other hard links, so that the engine must not
    /// write it (the real file system then refuses every change to it).
    fn is_shared(&self) -> bool {
        false
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
    /// What the file is now and when it last changed ([`Stamp`]), read
    /// without reading its bytes: how a blob read tells that a content file
    /// it already hashed is still the file it hashed. `None` (the default)
    /// when this file system cannot tell; callers then assume it changed.
    fn stamp(&self) -> io::Result<Option<Stamp>> {
        Ok(None)
    }
}

/// A file's identity, length and change times, as [`VFile::stamp`] reads
/// them: on disk the device, inode, length, modification time and status
/// change time; in memory a serial number per file and a count of its
/// writes. Two equal stamps of a file taken at different moments mean it
/// was not changed through the file system in between, provided the first
/// was `settled`. A change below the file system (a bit flipped on the
/// medium, a raw write to the device) leaves the stamp as it was, and so
/// can a write through a shared writable map of the file: the kernel
/// stamps such a write when it first dirties a page, not when it writes
/// again into a page that is still dirty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Device and inode (in memory: 0 and the file's serial number).
    pub file: (u64, u64),
    /// Length in bytes.
    pub len: u64,
    /// Last change of the bytes, in nanoseconds since the Unix epoch (in
    /// memory: the count of writes).
    pub modified: i128,
    /// Last change of the bytes or of the file's status (a rename, a
    /// permission or time change), in nanoseconds since the Unix epoch; no
    /// call can set it back (in memory: the count of writes).
    pub changed: i128,
    /// Whether every later change through the file system is sure to give
    /// a different stamp. A change made within the same tick of the clock
    /// that stamps files (or the same unit of a file system that keeps
    /// coarse times) as the last one may keep its times, so a file changed
    /// too recently is not settled (see `RealFs`).
    pub settled: bool,
}

/// [`VFile::next_data`] for a file of `size` bytes without holes.
pub(crate) fn whole_rest(size: u64, offset: u64) -> io::Result<Option<(u64, u64)>> {
    Ok((offset < size).then_some((offset, size)))
}

/// What a directory entry is, as [`Vfs::list_entries`] reports it (links
/// are never followed to find out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Link,
    /// Anything else (a FIFO, a socket, a device, a name that is not UTF-8).
    Other,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's name.
    pub name: String,
    /// What it is.
    pub kind: EntryKind,
}

/// A held directory lock; dropping it releases the lock.
pub trait LockGuard: Send + Sync + fmt::Debug {}

/// The file-system operations the engine uses.
pub trait Vfs: Send + Sync + fmt::Debug {
    /// Creates a directory and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The names of the regular files in `dir`, sorted.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Every entry of `dir`, sorted by name, with its kind: what
    /// `verify` and `stats` read to report what the engine did not make.
    /// The default lists the files of [`Vfs::list`].
    fn list_entries(&self, dir: &Path) -> io::Result<Vec<Entry>> {
        Ok(self
            .list(dir)?
            .into_iter()
            .map(|name| Entry {
                name,
                kind: EntryKind::File,
            })
            .collect())
    }
    /// Opens a file for reading and writing; `create` makes it if missing.
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VFile>>;
    /// Creates a new, empty file; `AlreadyExists` when anything (a link
    /// included) has that name. Temporary and quarantine files are made
    /// this way, so they never open something already there. The default
    /// suits the single-process test file systems.
    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn VFile>> {
        if self.open(path, false).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} already exists", path.display()),
            ));
        }
        self.open(path, true)
    }
    /// Renames a file, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes the exclusive lock on `path` without waiting: `Ok(None)` when
    /// another handle holds it.
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn LockGuard>>>;
    /// The device and inode of the directory this file system is confined
    /// to, where it is one on disk: how a backup tells that its target
    /// lies inside the store.
    fn root_id(&self) -> Option<(u64, u64)> {
        None
    }
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
/// `bytes` to a new `<name>.tmp` (removing a leftover regular file of that
/// name first; anything else there is refused, never written through) and
/// syncs it. The
/// file in force is untouched, so a failure here changes nothing a reader
/// or the next open sees.
pub(crate) fn write_temp(fs: &dyn Vfs, dir: &Path, name: &str, bytes: &[u8]) -> crate::Result<()> {
    let tmp = dir.join(temp_name(name));
    let context = || format!("writing {}", tmp.display());
    match fs.remove(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(crate::Error::io(context(), e));
        }
        _ => {}
    }
    let file = fs
        .create_new(&tmp)
        .map_err(|e| crate::Error::io(context(), e))?;
    file.write_all_at(bytes, 0)
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

/// A file system held in memory: the backing of `LogStore::in_memory`, and
/// the base that test file systems build on. Syncs do nothing; every write
/// is as durable as the process.
#[derive(Debug, Default, Clone)]
pub struct MemFs {
    files: Arc<Mutex<BTreeMap<PathBuf, Arc<MemFile>>>>,
}

/// One file of a [`MemFs`].
#[derive(Debug)]
pub struct MemFile {
    data: RwLock<Vec<u8>>,
    /// Unique per file, as an inode is: what its [`Stamp`] names it by.
    serial: u64,
    /// Writes and length changes so far, counted under `data`'s write
    /// lock: what its [`Stamp`] gives as its times.
    writes: AtomicU64,
}

impl Default for MemFile {
    fn default() -> Self {
        MemFile::with(Vec::new())
    }
}

impl MemFile {
    fn with(data: Vec<u8>) -> Self {
        static SERIAL: AtomicU64 = AtomicU64::new(1);
        MemFile {
            data: RwLock::new(data),
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
            writes: AtomicU64::new(0),
        }
    }

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
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(|_| eof())?;
        let mut data = self.data.write();
        data.resize(len, 0);
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.data.read().len() as u64)
    }
    fn stamp(&self) -> io::Result<Option<Stamp>> {
        // Under the read lock: no write is between its bytes and its count.
        let data = self.data.read();
        let writes = i128::from(self.writes.load(Ordering::Relaxed));
        Ok(Some(Stamp {
            file: (0, self.serial),
            len: data.len() as u64,
            modified: writes,
            changed: writes,
            settled: true,
        }))
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

    /// Every file's path and bytes, in path order.
    pub fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        self.files
            .lock()
            .iter()
            .map(|(path, file)| (path.clone(), file.contents()))
            .collect()
    }

    /// An independent copy of every file: what a crash at this moment
    /// would leave, for a store kept entirely in memory.
    pub fn deep_copy(&self) -> MemFs {
        let files = self
            .files
            .lock()
            .iter()
            .map(|(path, file)| (path.clone(), Arc::new(MemFile::with(file.contents()))))
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
    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn VFile>> {
        let mut files = self.files.lock();
        if files.contains_key(path) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} already exists", path.display()),
            ));
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
        let file = RealFs::open_root(tmp.path(), Access::ReadWrite)
            .unwrap()
            .open(&tmp.path().join("sparse"), true)
            .unwrap();
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
