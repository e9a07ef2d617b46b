//! The real file system, confined to one directory.
//!
//! A store directory is untrusted input: anyone who can write into it may
//! plant a symbolic link, a FIFO or a folder where the engine expects its
//! own file. So [`RealFs`] opens the directory once (resolving the path the
//! caller gave, links included, at that moment only) and does every later
//! operation relative to that descriptor, one path component at a time,
//! with `O_NOFOLLOW` and close-on-exec:
//!
//! - A link anywhere below the root is never followed: opening it, or a
//!   folder through it, fails with `ErrorKind::NotADirectory` (for a
//!   folder) or `ErrorKind::InvalidInput` (for a file), which sweeps treat
//!   as "not ours" and skip.
//! - Only regular files are opened, listed by [`Vfs::list`] and removed;
//!   anything else is reported by [`Vfs::list_entries`] and left alone. A
//!   file with more than one hard link is read but never written (its
//!   writes, syncs and length changes are refused): it may be a file
//!   outside the store linked in under an engine name.
//! - [`Vfs::create_new`] creates exclusively (`O_EXCL`), so a temporary or
//!   quarantine name never opens something that already exists.
//! - A path the engine passes must lie under the root as given (it is the
//!   root joined with names); anything else is refused, never resolved
//!   against the current directory again. Changing the process's working
//!   directory after open changes nothing.
//! - A read-only instance opens files `O_RDONLY` and refuses every
//!   mutating call with `ErrorKind::PermissionDenied`, so a read-only
//!   handle cannot write even through a bug.
//!
//! rustix provides the `*at` calls: a well-kept, safe wrapper over the
//! system calls (the standard library has no `openat`), with no C code,
//! already in the dependency tree through `tempfile`. cap-std would do the
//! same one level higher, but hides the flags this module wants to state.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::{Entry, EntryKind, LockGuard, Stamp, VFile, Vfs};

/// How [`RealFs::open_root`] opens the store directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read and write.
    ReadWrite,
    /// Read only: the directory must exist, and nothing is ever written.
    ReadOnly,
}

/// The real file system, confined to one directory opened once; clones
/// share the directory descriptor.
#[derive(Debug, Clone)]
pub struct RealFs {
    root: Arc<Root>,
}

#[derive(Debug)]
struct Root {
    fd: OwnedFd,
    /// The path as the caller gave it: what the engine joins names to, and
    /// what messages show. Never resolved again.
    path: PathBuf,
    access: Access,
}

/// A directory descriptor: the root's, borrowed, or one opened below it.
enum DirFd<'a> {
    Root(BorrowedFd<'a>),
    Sub(OwnedFd),
}

impl AsFd for DirFd<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            DirFd::Root(fd) => *fd,
            DirFd::Sub(fd) => fd.as_fd(),
        }
    }
}

fn read_only() -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        "the store directory is open read-only",
    )
}

fn not_a_dir(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotADirectory,
        format!(
            "{} is not a directory the store made (a link or another kind of file); left alone",
            path.display()
        ),
    )
}

fn not_a_file(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{} is not a regular file the store made (a link or another kind of file); left alone",
            path.display()
        ),
    )
}

fn kind_of(file_type: FileType) -> EntryKind {
    match file_type {
        FileType::RegularFile => EntryKind::File,
        FileType::Directory => EntryKind::Dir,
        FileType::Symlink => EntryKind::Link,
        _ => EntryKind::Other,
    }
}

impl RealFs {
    /// Opens the existing directory `dir` as the root of every later call.
    ///
    /// # Errors
    /// `NotFound`, `NotADirectory`, or what the system returned.
    pub fn open_root(dir: &Path, access: Access) -> io::Result<RealFs> {
        let fd = rustix::fs::open(
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(RealFs {
            root: Arc::new(Root {
                fd,
                path: dir.to_path_buf(),
                access,
            }),
        })
    }

    /// Removes the empty folder `path` (never a link or a file).
    ///
    /// # Errors
    /// As the system's `rmdir`; `PermissionDenied` when read-only.
    pub fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.writable()?;
        let (dir, name) = self.parent_of(path)?;
        rustix::fs::unlinkat(&dir, name, AtFlags::REMOVEDIR)?;
        Ok(())
    }

    fn writable(&self) -> io::Result<()> {
        match self.root.access {
            Access::ReadWrite => Ok(()),
            Access::ReadOnly => Err(read_only()),
        }
    }

    /// The components of `path` below the root.
    fn parts<'p>(&self, path: &'p Path) -> io::Result<Vec<&'p OsStr>> {
        let outside = || {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is outside the store directory {}",
                    path.display(),
                    self.root.path.display()
                ),
            )
        };
        let rel = path.strip_prefix(&self.root.path).map_err(|_| outside())?;
        let mut parts = Vec::new();
        for component in rel.components() {
            match component {
                Component::Normal(name) => parts.push(name),
                Component::CurDir => {}
                _ => return Err(outside()),
            }
        }
        Ok(parts)
    }

    /// Opens the directory `parts` below the root, never through a link;
    /// with `create`, makes each missing folder on the way.
    fn walk(&self, path: &Path, parts: &[&OsStr], create: bool) -> io::Result<DirFd<'_>> {
        let mut dir = DirFd::Root(self.root.fd.as_fd());
        for name in parts {
            if create {
                match rustix::fs::mkdirat(&dir, *name, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            dir = match rustix::fs::openat(&dir, *name, flags, Mode::empty()) {
                Ok(fd) => DirFd::Sub(fd),
                Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
                    return Err(not_a_dir(path))
                }
                Err(e) => return Err(e.into()),
            };
        }
        Ok(dir)
    }

    /// The folder holding `path` and the file's own name.
    fn parent_of<'p>(&self, path: &'p Path) -> io::Result<(DirFd<'_>, &'p OsStr)> {
        let parts = self.parts(path)?;
        let Some((name, folders)) = parts.split_last() else {
            return Err(not_a_file(path));
        };
        Ok((self.walk(path, folders, false)?, name))
    }

    /// Opens the regular file at `path` with `flags`, never through a
    /// link and never anything but a regular file; returns it with whether
    /// it has other hard links.
    fn open_fd(&self, path: &Path, flags: OFlags) -> io::Result<(OwnedFd, bool)> {
        // NONBLOCK: opening a FIFO planted under an engine name must not
        // hang; it changes nothing for a regular file.
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        // openat2 refuses a mode without O_CREAT.
        let mode = if flags.contains(OFlags::CREATE) {
            Mode::from_raw_mode(0o644)
        } else {
            Mode::empty()
        };
        let fd = match self.open_beneath(path, flags, mode)? {
            Some(fd) => fd,
            None => {
                let (dir, name) = self.parent_of(path)?;
                match rustix::fs::openat(&dir, name, flags, mode) {
                    Ok(fd) => fd,
                    Err(rustix::io::Errno::LOOP) => return Err(not_a_file(path)),
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let stat = rustix::fs::fstat(&fd)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(not_a_file(path));
        }
        Ok((fd, stat.st_nlink > 1))
    }

    /// A file or folder below a folder of the root (a blob content file, a
    /// blob folder) in one `openat2` call that refuses any link on the way,
    /// instead of one `openat` per component. `None` where that call is not
    /// available, or refused the path (the component walk then gives the
    /// precise error).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn open_beneath(&self, path: &Path, flags: OFlags, mode: Mode) -> io::Result<Option<OwnedFd>> {
        use rustix::fs::ResolveFlags;
        use rustix::io::Errno;
        let parts = self.parts(path)?;
        if parts.len() < 2 {
            return Ok(None);
        }
        let rel: PathBuf = parts.iter().collect();
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        match rustix::fs::openat2(&self.root.fd, &rel, flags, mode, resolve) {
            Ok(fd) => Ok(Some(fd)),
            Err(
                Errno::NOSYS
                | Errno::PERM
                | Errno::INVAL
                | Errno::LOOP
                | Errno::NOTDIR
                | Errno::XDEV
                | Errno::AGAIN,
            ) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn open_beneath(&self, _: &Path, _: OFlags, _: Mode) -> io::Result<Option<OwnedFd>> {
        Ok(None)
    }

    fn open_file(&self, path: &Path, flags: OFlags) -> io::Result<Arc<dyn VFile>> {
        let access = match self.root.access {
            Access::ReadWrite => OFlags::RDWR,
            Access::ReadOnly => OFlags::RDONLY,
        };
        let (fd, linked) = self.open_fd(path, flags | access)?;
        // A file with another hard link may be someone else's file (a
        // victim linked in under an engine name, or a copy made with
        // `cp -al`): it is read, never written.
        let shared = (access == OFlags::RDWR && linked).then(|| path.to_path_buf());
        Ok(Arc::new(RealFile {
            file: File::from(fd),
            shared,
        }))
    }
}

/// Creates `dir` and its missing parents, syncing each new entry into its
/// parent so a store whose first writes were acknowledged cannot vanish
/// whole. An existing `dir` is left as it is.
pub fn create_dirs_durable(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut at = dir;
    while !at.as_os_str().is_empty() && !at.exists() {
        missing.push(at);
        match at.parent() {
            Some(parent) => at = parent,
            None => break,
        }
    }
    for new in missing.into_iter().rev() {
        match std::fs::create_dir(new) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let parent = match new.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

#[derive(Debug)]
struct RealFile {
    file: File,
    /// The file's path when it has more than one hard link: then every
    /// change is refused.
    shared: Option<PathBuf>,
}

impl RealFile {
    fn writable(&self) -> io::Result<()> {
        match &self.shared {
            None => Ok(()),
            Some(path) => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} has other hard links, so it may not be the store's alone; it is read, never written",
                    path.display()
                ),
            )),
        }
    }
}

impl VFile for RealFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.writable()?;
        self.file.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.writable()?;
        self.file.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.writable()?;
        self.file.set_len(len)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn is_shared(&self) -> bool {
        self.shared.is_some()
    }
    fn stamp(&self) -> io::Result<Option<Stamp>> {
        use std::os::unix::fs::MetadataExt;
        // Read before the file's status: a change after that status is
        // stamped with this moment or a later one.
        let now = SystemTime::now();
        let meta = self.file.metadata()?;
        let changed = nanos(meta.ctime(), meta.ctime_nsec());
        Ok(Some(Stamp {
            file: (meta.dev(), meta.ino()),
            len: meta.len(),
            modified: nanos(meta.mtime(), meta.mtime_nsec()),
            changed,
            settled: settled(changed, now),
        }))
    }
    fn map(&self) -> io::Result<Option<Arc<memmap2::Mmap>>> {
        // SAFETY: a map is only asked for a file no one changes while it is
        // mapped (reading a page past a shortened end raises SIGBUS, and
        // bytes changing under a reader break Rust's aliasing rules), which
        // the engine holds to: only sealed segments and the snapshot are
        // mapped; sealed segments are never written, truncated or extended
        // again, and the snapshot is replaced only by renaming a new file
        // over it. FORMAT.md ("Mapped reads") gives the argument. The
        // directory lock keeps other writers away, and read-only handles
        // never write; a process that ignores the lock and shortens or
        // overwrites a file is outside the contract.
        let map = unsafe { memmap2::Mmap::map(&self.file)? };
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
        let map = unsafe { memmap2::MmapOptions::new().len(len).map(&self.file)? };
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
        match seek(&self.file, SeekFrom::Data(offset)) {
            Ok(start) => {
                // There is always a hole at the end of the file, so this
                // finds one unless the file shrank in between.
                let end = match seek(&self.file, SeekFrom::Hole(start)) {
                    Ok(end) => end,
                    Err(Errno::NXIO) => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
                Ok(Some((start, end)))
            }
            // Only a hole from `offset` to the end, or `offset` is past it.
            Err(Errno::NXIO) => Ok(None),
            // A file system without SEEK_DATA: no holes are known.
            Err(Errno::INVAL | Errno::NOTSUP) => super::whole_rest(self.size()?, offset),
            Err(e) => Err(e.into()),
        }
    }
}

fn nanos(secs: i64, nanos: i64) -> i128 {
    i128::from(secs) * 1_000_000_000 + i128::from(nanos)
}

/// How far a clock reading may run ahead of the time the kernel stamps a
/// change with: its coarse clock moves once a tick, at least 100 times a
/// second; five ticks leave room.
const TICK_NANOS: i128 = 50_000_000;

/// Whether a file whose status last changed at `changed` (nanoseconds since
/// the epoch), looked at after `now`, has a settled stamp: any later change
/// through the file system gives it a different status change time.
///
/// The kernel stamps a change with its coarse clock, which lags the time
/// by up to a tick, cut to the file system's unit (a nanosecond on ext4,
/// XFS, btrfs and tmpfs; 10 ms on exFAT; one or two seconds where a file
/// system keeps coarse times). So a change at `now` or later is stamped no
/// earlier than `now` less a tick and a unit, and a file whose last change
/// is older than that cannot be changed again without its time moving.
/// This holds while the clock does not step back and the file system's
/// times come from this machine's clock (not a network server's running
/// behind it).
fn settled(changed: i128, now: SystemTime) -> bool {
    let Ok(now) = now.duration_since(UNIX_EPOCH) else {
        return false;
    };
    let now = i128::try_from(now.as_nanos()).unwrap_or(i128::MAX);
    changed.saturating_add(unit_of(changed) + TICK_NANOS) < now
}

/// The coarsest unit of time the file system may have cut `time`
/// (nanoseconds since the epoch) to, as far as its digits show: a unit
/// below a second is a power of ten, so a time ending in k zero digits was
/// cut to at most 10^k ns; a whole second may be FAT's unit of two.
fn unit_of(time: i128) -> i128 {
    let mut rest = time.rem_euclid(1_000_000_000);
    if rest == 0 {
        return 2_000_000_000;
    }
    let mut unit = 1;
    while rest % 10 == 0 {
        unit *= 10;
        rest /= 10;
    }
    unit
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
        self.writable()?;
        let parts = self.parts(dir)?;
        self.walk(dir, &parts, true).map(drop)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        Ok(self
            .list_entries(dir)?
            .into_iter()
            .filter(|e| e.kind == EntryKind::File)
            .map(|e| e.name)
            .collect())
    }
    fn list_entries(&self, dir: &Path) -> io::Result<Vec<Entry>> {
        let parts = self.parts(dir)?;
        // A folder below a folder of the root (a blob folder, which open's
        // sweep lists 256 of) in one `openat2`, read through the descriptor
        // opened for it; the root's own descriptor is shared, so it is read
        // through a copy.
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match self.open_beneath(dir, flags, Mode::empty())? {
            Some(fd) => DirFd::Sub(fd),
            None => self.walk(dir, &parts, false)?,
        };
        let mut listing = match fd {
            DirFd::Sub(fd) => rustix::fs::Dir::new(fd)?,
            DirFd::Root(fd) => rustix::fs::Dir::read_from(fd)?,
        };
        let mut entries = Vec::new();
        while let Some(entry) = listing.next() {
            let entry = entry?;
            let raw = entry.file_name().to_bytes();
            if raw == b"." || raw == b".." {
                continue;
            }
            let mut file_type = entry.file_type();
            if file_type == FileType::Unknown {
                let stat = rustix::fs::statat(
                    listing.fd()?,
                    entry.file_name(),
                    AtFlags::SYMLINK_NOFOLLOW,
                )?;
                file_type = FileType::from_raw_mode(stat.st_mode);
            }
            // A name that is not UTF-8 is never one the engine made.
            let (name, kind) = match std::str::from_utf8(raw) {
                Ok(name) => (name.to_string(), kind_of(file_type)),
                Err(_) => (
                    String::from_utf8_lossy(OsStr::from_bytes(raw).as_bytes()).into_owned(),
                    EntryKind::Other,
                ),
            };
            entries.push(Entry { name, kind });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VFile>> {
        if create {
            self.writable()?;
        }
        let flags = if create {
            OFlags::CREATE
        } else {
            OFlags::empty()
        };
        self.open_file(path, flags)
    }
    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn VFile>> {
        self.writable()?;
        self.open_file(path, OFlags::CREATE | OFlags::EXCL)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.writable()?;
        let (from_dir, from_name) = self.parent_of(from)?;
        let stat = rustix::fs::statat(&from_dir, from_name, AtFlags::SYMLINK_NOFOLLOW)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(not_a_file(from));
        }
        let (to_dir, to_name) = self.parent_of(to)?;
        rustix::fs::renameat(&from_dir, from_name, &to_dir, to_name)?;
        Ok(())
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.writable()?;
        let (dir, name) = self.parent_of(path)?;
        let stat = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(not_a_file(path));
        }
        rustix::fs::unlinkat(&dir, name, AtFlags::empty())?;
        Ok(())
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.writable()?;
        let parts = self.parts(dir)?;
        let fd = self.walk(dir, &parts, false)?;
        rustix::fs::fsync(&fd)?;
        Ok(())
    }
    fn root_id(&self) -> Option<(u64, u64)> {
        let stat = rustix::fs::fstat(&self.root.fd).ok()?;
        Some((stat.st_dev, stat.st_ino))
    }
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn LockGuard>>> {
        self.writable()?;
        let (fd, _) = self.open_fd(path, OFlags::RDWR | OFlags::CREATE)?;
        let file = File::from(fd);
        // The standard library's lock (stable since Rust 1.89, hence the
        // crate's rust-version) rather than `fs2`, unmaintained since 2018,
        // or its fork `fs4`: one dependency fewer for the same call. On Unix
        // it is the same `flock(LOCK_EX | LOCK_NB)` fs2 took, so a store
        // stays locked against a process built with the older crate, and
        // contention is a typed `WouldBlock` instead of a comparison of raw
        // OS error codes.
        match file.try_lock() {
            Ok(()) => Ok(Some(Box::new(FileLock(file)))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A store folder with a victim folder beside it, and the confined
    /// file system on the store folder.
    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf, RealFs) {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("store");
        let victim = tmp.path().join("victim");
        std::fs::create_dir_all(store.join("blobs")).unwrap();
        std::fs::create_dir_all(&victim).unwrap();
        std::fs::write(victim.join("secret"), b"victim bytes").unwrap();
        let fs = RealFs::open_root(&store, Access::ReadWrite).unwrap();
        (tmp, store, victim, fs)
    }

    #[test]
    fn links_are_never_followed_for_a_file_or_a_folder() {
        let (_tmp, store, victim, fs) = setup();
        symlink(victim.join("secret"), store.join("SNAPSHOT")).unwrap();
        symlink(&victim, store.join("blobs/ab")).unwrap();
        let file = fs.open(&store.join("SNAPSHOT"), false).unwrap_err();
        assert_eq!(file.kind(), io::ErrorKind::InvalidInput, "{file}");
        let deep = fs.open(&store.join("blobs/ab/secret"), false).unwrap_err();
        assert_eq!(deep.kind(), io::ErrorKind::NotADirectory, "{deep}");
        let listed = fs.list(&store.join("blobs/ab")).unwrap_err();
        assert_eq!(listed.kind(), io::ErrorKind::NotADirectory);
        let made = fs.create_new(&store.join("SNAPSHOT")).unwrap_err();
        assert_eq!(made.kind(), io::ErrorKind::AlreadyExists);
        assert!(fs.remove(&store.join("SNAPSHOT")).is_err());
        assert!(fs
            .rename(&store.join("SNAPSHOT"), &store.join("x"))
            .is_err());
        assert!(fs.create_dir_all(&store.join("blobs/ab/cd")).is_err());
        assert_eq!(
            std::fs::read(victim.join("secret")).unwrap(),
            b"victim bytes"
        );
        assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 1);
        let kinds: Vec<_> = fs
            .list_entries(&store)
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("SNAPSHOT".to_string(), EntryKind::Link),
                ("blobs".to_string(), EntryKind::Dir)
            ]
        );
        assert!(fs.list(&store).unwrap().is_empty(), "links are not files");
    }

    #[test]
    fn a_fifo_under_an_engine_name_is_refused_without_blocking() {
        let (_tmp, store, _victim, fs) = setup();
        let fifo = store.join("MANIFEST");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let refused = fs.open(&fifo, false).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::InvalidInput, "{refused}");
        assert_eq!(fs.list_entries(&store).unwrap()[0].kind, EntryKind::Other);
    }

    #[test]
    fn paths_outside_the_root_are_refused_and_the_root_is_resolved_once() {
        let (tmp, store, victim, fs) = setup();
        let outside = fs.open(&victim.join("secret"), false).unwrap_err();
        assert_eq!(outside.kind(), io::ErrorKind::InvalidInput);
        let up = fs.open(&store.join("../victim/secret"), false).unwrap_err();
        assert_eq!(up.kind(), io::ErrorKind::InvalidInput);
        // The folder moves: the handle still reaches it, not a new one at
        // the old path.
        let moved = tmp.path().join("moved");
        std::fs::rename(&store, &moved).unwrap();
        std::fs::create_dir_all(&store).unwrap();
        fs.create_new(&store.join("MANIFEST.tmp")).unwrap();
        assert!(moved.join("MANIFEST.tmp").exists());
        assert!(!store.join("MANIFEST.tmp").exists());
    }

    #[test]
    fn a_read_only_root_refuses_every_change() {
        let (_tmp, store, _victim, fs) = setup();
        fs.create_new(&store.join("LOCK")).unwrap();
        let ro = RealFs::open_root(&store, Access::ReadOnly).unwrap();
        let denied =
            |r: io::Result<()>| assert_eq!(r.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        denied(ro.create_new(&store.join("x")).map(drop));
        denied(ro.open(&store.join("x"), true).map(drop));
        denied(ro.remove(&store.join("LOCK")));
        denied(ro.rename(&store.join("LOCK"), &store.join("y")));
        denied(ro.sync_dir(&store));
        denied(ro.create_dir_all(&store.join("q")));
        denied(ro.try_lock(&store.join("LOCK")).map(drop));
        let file = ro.open(&store.join("LOCK"), false).unwrap();
        assert!(file.write_all_at(b"x", 0).is_err(), "opened read-only");
    }
}

#[cfg(test)]
mod stamp_tests {
    use super::*;
    use std::time::Duration;

    const SEC: i128 = 1_000_000_000;
    const T: i128 = 1_700_000_000 * SEC;

    #[test]
    fn a_time_s_digits_bound_the_unit_it_was_cut_to() {
        assert_eq!(unit_of(T + 123_456_789), 1);
        assert_eq!(unit_of(T + 123_456_780), 10);
        assert_eq!(unit_of(T + 120_000_000), 10_000_000);
        assert_eq!(unit_of(T), 2 * SEC, "whole seconds: perhaps FAT's two");
        assert_eq!(unit_of(-SEC + 5), 1, "before the epoch");
    }

    #[test]
    fn a_stamp_settles_a_unit_and_some_ticks_after_its_change() {
        let now = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_500_000_001);
        // Nanosecond times: settled once 50 ms and a nanosecond passed.
        assert!(settled(T + 400_000_001, now));
        assert!(!settled(T + 460_000_001, now));
        assert!(!settled(T + 600_000_001, now), "a time after now");
        // Whole seconds: two seconds and the ticks.
        assert!(!settled(T - SEC, now));
        assert!(settled(T - 3 * SEC, now));
    }

    #[test]
    fn a_file_just_written_is_not_settled_and_a_new_inode_changes_its_stamp() {
        let tmp = tempfile::tempdir().unwrap();
        let fs = RealFs::open_root(tmp.path(), Access::ReadWrite).unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        let file = fs.create_new(&a).unwrap();
        file.write_all_at(b"bytes", 0).unwrap();
        let first = file.stamp().unwrap().unwrap();
        assert_eq!(first.len, 5);
        assert!(!first.settled, "changed a moment ago");
        fs.create_new(&b)
            .unwrap()
            .write_all_at(b"other", 0)
            .unwrap();
        fs.rename(&b, &a).unwrap();
        let second = fs.open(&a, false).unwrap().stamp().unwrap().unwrap();
        assert_ne!(first.file, second.file, "another inode");
        assert_eq!(second.len, 5);
    }
}
