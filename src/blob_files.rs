//! Content-addressed blob files of the log engine.
//!
//! A put streams the bytes into a staging file `blobs/tmp/<uuid>.tmp` (a
//! fresh name per put, so concurrent puts never share one) while hashing
//! (BLAKE3) and counting them, syncs the file, then renames it to its
//! content address `blobs/<first two hex digits>/<64 hex digits>` and syncs
//! that directory. The rename replaces a file already at the address: the
//! bytes are the same unless that file rotted, and then the put repairs it
//! (readers with the old file open keep reading the old file). Only after
//! that is the metadata record appended to the log, so metadata never points
//! at a missing file. Identical bytes are one file; open removes files no
//! blob refers to and leftover staging files.
//!
//! A get reads the file through [`read`]: a blob up to [`SMALL_BLOB`] bytes
//! is read whole and checked (length and hash) before the get returns; a
//! larger one streams, hashed as it is read, and the read that would hand
//! out its last bytes fails instead if the whole does not match
//! ([`Checked::reader`]). The integrity check reads through [`verify`],
//! which hashes the whole file whatever its size.
//!
//! A directory created here is synced into its parent before anything in it
//! is relied on, and open syncs the blob directories again in case a crash
//! came in between. A failed directory sync leaves an entry the engine
//! cannot vouch for, so it poisons the store (through the `poison` callback
//! the engine passes in).

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::contract::{BlobMeta, BlobReader};
use crate::io::{VFile, Vfs};
use crate::log::record::BLOB_HASH_LEN;
use crate::{Error, Result};

/// The blob folder inside a store directory.
pub const BLOB_DIR: &str = "blobs";
/// Where puts stage their bytes, inside [`BLOB_DIR`].
pub const TMP_DIR: &str = "tmp";
const CHUNK: usize = 64 * 1024;

/// Lowercase hex of a content hash: the name of its content file.
pub fn hex(hash: &[u8; BLOB_HASH_LEN]) -> String {
    blake3::Hash::from_bytes(*hash).to_hex().to_string()
}

/// The directory and path of the content file with hex hash `hash`.
pub fn content_path(dir: &Path, hash: &str) -> (PathBuf, PathBuf) {
    let folder = dir.join(BLOB_DIR).join(hash.get(..2).unwrap_or("xx"));
    let path = folder.join(hash);
    (folder, path)
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A content folder's name: two hex digits.
pub(crate) fn is_folder_name(name: &str) -> bool {
    is_hex(name, 2)
}

/// A staging file's name: a UUID and `.tmp`.
pub(crate) fn is_staging_name(name: &str) -> bool {
    name.strip_suffix(".tmp")
        .is_some_and(|stem| uuid::Uuid::try_parse(stem).is_ok())
}

/// A content file's name in folder `folder`: 64 hex digits that start
/// with the folder's two.
pub(crate) fn is_content_name(folder: &str, name: &str) -> bool {
    is_hex(name, 64) && name.starts_with(folder)
}

/// A folder the engine did not make (a link, or a file): sweeps skip it,
/// `verify` reports it.
fn is_foreign(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotADirectory | io::ErrorKind::InvalidInput
    )
}

fn io_err<'a>(path: &'a Path, what: &'a str) -> impl FnOnce(io::Error) -> Error + 'a {
    move |e| Error::io(format!("{what} {}", path.display()), e)
}

/// Bytes staged in a temporary file, synced, not yet at their address.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 of the bytes.
    pub hash: [u8; BLOB_HASH_LEN],
}

/// Creates `dir` (and missing parents) and syncs its parent, so the new
/// entry survives a power loss. A failed sync calls `poison`: the directory
/// now exists, and later puts would rely on an entry that may not be on
/// disk.
pub fn create_dir_durable(fs: &dyn Vfs, dir: &Path, poison: &dyn Fn()) -> Result<()> {
    crate::io::create_dir_durable(fs, dir).map_err(|e| {
        poison();
        io_err(dir, "creating")(e)
    })
}

/// Staged bytes of a log-engine put: the staging file is removed when this
/// is dropped before [`install`] moved it, so no error path leaves it
/// behind until the next open.
#[derive(Debug)]
pub struct Pending<'a> {
    fs: &'a dyn Vfs,
    staged: Staged,
    moved: bool,
}

impl Pending<'_> {
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.staged.size
    }

    /// BLAKE3 of the bytes.
    pub fn hash(&self) -> [u8; BLOB_HASH_LEN] {
        self.staged.hash
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.moved {
            // Best effort: open removes whatever is left in blobs/tmp/.
            let _ = self.fs.remove(&self.staged.tmp);
        }
    }
}

/// Streams `reader` into a new staging file under `blobs/tmp/` of store
/// `dir` (named by a fresh UUID, never by the blob id, so two puts or
/// imports never write one file), hashing, counting and syncing as
/// [`stage`] does. Creates `blobs/` and `blobs/tmp/` durably when missing;
/// `poison` as in [`create_dir_durable`].
pub fn stage_new<'a>(
    fs: &'a dyn Vfs,
    dir: &Path,
    reader: &mut dyn Read,
    max: u64,
    poison: &dyn Fn(),
) -> Result<Pending<'a>> {
    let root = dir.join(BLOB_DIR);
    let tmp_dir = root.join(TMP_DIR);
    let tmp = tmp_dir.join(format!("{}.tmp", uuid::Uuid::new_v4()));
    let file = match fs.create_new(&tmp) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            create_dir_durable(fs, &root, poison)?;
            create_dir_durable(fs, &tmp_dir, poison)?;
            fs.create_new(&tmp)
        }
        opened => opened,
    }
    .map_err(io_err(&tmp, "creating"))?;
    let staged = stage_into(fs, file, tmp, reader, max)?;
    Ok(Pending {
        fs,
        staged,
        moved: false,
    })
}

/// Streams `reader` into the file `tmp`, hashing and counting, and syncs
/// it; removes the file and fails once more than `max` bytes arrive. Memory
/// use is one 64 KiB buffer whatever the blob's size. (The SQLite driver's
/// staging; the log engine stages through `stage_new`.)
#[cfg(feature = "sqlite")]
pub fn stage(fs: &dyn Vfs, tmp: PathBuf, reader: &mut dyn Read, max: u64) -> Result<Staged> {
    let file = fs.create_new(&tmp).map_err(io_err(&tmp, "creating"))?;
    stage_into(fs, file, tmp, reader, max)
}

fn stage_into(
    fs: &dyn Vfs,
    file: Arc<dyn VFile>,
    tmp: PathBuf,
    reader: &mut dyn Read,
    max: u64,
) -> Result<Staged> {
    match fill(file.as_ref(), &tmp, reader, max) {
        Ok((size, hash)) => Ok(Staged { tmp, size, hash }),
        Err(e) => {
            drop(file);
            let _ = fs.remove(&tmp);
            Err(e)
        }
    }
}

fn fill(
    file: &dyn VFile,
    tmp: &Path,
    reader: &mut dyn Read,
    max: u64,
) -> Result<(u64, [u8; BLOB_HASH_LEN])> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A reader of another store's blob that found it damaged
            // carries that store's `Corruption`: report it as such.
            Err(e) => {
                return Err(e
                    .downcast::<Error>()
                    .unwrap_or_else(|e| Error::io("reading the blob's bytes from the caller", e)))
            }
        };
        if size + n as u64 > max {
            return Err(Error::invalid(format!(
                "the blob is larger than the limit of {max} bytes"
            )));
        }
        file.write_all_at(&buf[..n], size)
            .map_err(io_err(tmp, "writing"))?;
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    file.sync_data().map_err(io_err(tmp, "syncing"))?;
    Ok((size, *hasher.finalize().as_bytes()))
}

/// Moves staged bytes to their content address `blobs/HH/<hash>` and syncs
/// `blobs/HH/`. Call with the writer lock held, so a delete cannot remove
/// the content file between this and the record.
///
/// The staged file always replaces a file already at the address (an
/// atomic rename) rather than being dropped in its favour: the bytes are
/// the same unless the old file rotted, and then this put repairs it, with
/// no extra read. Readers that already opened the old file keep it.
///
/// A failure before the rename leaves `pending` to remove the staging file.
/// Any failure after it (the directory syncs) calls `poison` first: the
/// file is at its address, but whether its entry is on disk is unknown, so
/// nothing may be acknowledged on the strength of it.
pub fn install(
    fs: &dyn Vfs,
    dir: &Path,
    mut pending: Pending<'_>,
    poison: &dyn Fn(),
) -> Result<()> {
    let (folder, path) = content_path(dir, &hex(&pending.staged.hash));
    let tmp = &pending.staged.tmp;
    let renamed = match fs.rename(tmp, &path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            create_dir_durable(fs, &folder, poison)?;
            fs.rename(tmp, &path)
        }
        renamed => renamed,
    };
    renamed.map_err(io_err(&path, "renaming a staged blob to"))?;
    pending.moved = true;
    fs.sync_dir(&folder).map_err(|e| {
        poison();
        io_err(&folder, "syncing")(e)
    })
}

/// A blob's content file, opened but not yet checked against its metadata.
#[derive(Debug)]
pub struct Opened {
    file: Arc<dyn VFile>,
    path: PathBuf,
}

/// Opens the content file of `meta`; a missing one is `Corruption`. The
/// engine calls this with the state lock held, so that a delete of the
/// blob's last reference cannot remove the file between finding the
/// metadata and opening it; [`read`] or [`verify`] then reads it without
/// the lock.
pub fn open_content(fs: &dyn Vfs, dir: &Path, meta: &BlobMeta) -> Result<Opened> {
    let hash = meta.content_hash.as_deref().unwrap_or_default();
    let (_, path) = content_path(dir, hash);
    match fs.open(&path, false) {
        Ok(file) => Ok(Opened { file, path }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::corruption(
            &path,
            0,
            format!("the content file of blob {} is missing", meta.id),
        )),
        Err(e) => Err(io_err(&path, "opening")(e)),
    }
}

/// The checks a read of a log-engine blob makes: its size and its BLAKE3
/// hash (a missing or malformed hash in the metadata is `Corruption`).
fn expected(opened: Opened, meta: &BlobMeta) -> Result<Checked> {
    let hash = meta
        .content_hash
        .as_deref()
        .and_then(|h| blake3::Hash::from_hex(h).ok())
        .ok_or_else(|| {
            Error::corruption(
                &opened.path,
                0,
                format!("blob {} has no valid content hash", meta.id),
            )
        })?;
    Ok(Checked {
        file: opened.file,
        path: opened.path,
        id: meta.id.clone(),
        size: meta.size,
        hash: Some(hash),
    })
}

/// A reader of the opened content file of `meta` that checks its size and
/// hash as it goes (see [`Checked::reader`]): what a get returns.
pub fn read(opened: Opened, meta: &BlobMeta) -> Result<BlobReader> {
    expected(opened, meta)?.reader()
}

/// Reads the whole opened content file of `meta` and checks its size and
/// hash before returning a reader of it from its start: the integrity
/// check's read, which must see every byte whatever the blob's size.
pub fn verify(opened: Opened, meta: &BlobMeta) -> Result<BlobReader> {
    let checked = expected(opened, meta)?;
    let (file, path, size) = (checked.file.clone(), checked.path.clone(), checked.size);
    let mut stream = checked.reader()?;
    // As large as a read-ahead piece, so pieces are hashed in place.
    let mut buf = vec![0u8; READ_AHEAD];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // The corruption the reader found, or a plain I/O error.
            Err(e) => {
                return Err(e
                    .downcast::<Error>()
                    .unwrap_or_else(io_err(&path, "reading")))
            }
        }
    }
    Ok(Box::new(FileReader::new(file, size)))
}

/// Blobs of at most this many bytes are read whole and checked before a get
/// returns: a damaged small blob fails the get itself. Larger ones stream.
pub const SMALL_BLOB: u64 = 64 * 1024;
/// How much a streaming read takes from its file (and hashes) at a time.
const READ_AHEAD: usize = 256 * 1024;

/// A content file with what its bytes must be: `size` bytes and, when
/// `hash` is given, that BLAKE3 hash (the SQLite driver's schema has no
/// hash, so it checks the size alone).
#[derive(Debug)]
pub struct Checked {
    /// The open file.
    pub file: Arc<dyn VFile>,
    /// Its path, for errors.
    pub path: PathBuf,
    /// The blob's id, for errors.
    pub id: String,
    /// The size the metadata records.
    pub size: u64,
    /// The hash the metadata records, if the driver keeps one.
    pub hash: Option<blake3::Hash>,
}

impl Checked {
    fn corruption(&self, offset: u64, reason: String) -> Error {
        Error::corruption(&self.path, offset, reason)
    }

    fn check_size(&self) -> Result<()> {
        let len = self.file.size().map_err(io_err(&self.path, "reading"))?;
        if len != self.size {
            return Err(self.corruption(
                0,
                format!(
                    "blob {} should be {} bytes, the file has {len}",
                    self.id, self.size
                ),
            ));
        }
        Ok(())
    }

    /// A reader of the blob's bytes. The file's length is checked first
    /// (a mismatch is `Corruption`). A blob of at most [`SMALL_BLOB`] bytes
    /// is then read whole and its hash checked before this returns; a
    /// larger one streams, hashed as it is read, and the read that would
    /// hand out its last bytes instead fails with an `io::Error` of kind
    /// `InvalidData` carrying `Error::Corruption` when the bytes do not
    /// match the hash or the file is not `size` bytes long (it may change
    /// after this check), and keeps failing after that. So a consumer that
    /// reads to the end, or reads exactly `size` bytes, never takes damaged
    /// bytes for the whole blob.
    pub fn reader(self) -> Result<BlobReader> {
        self.check_size()?;
        if self.size > SMALL_BLOB {
            return Ok(Box::new(CheckedReader::new(self)));
        }
        let mut bytes = vec![0u8; self.size as usize];
        self.file
            .read_exact_at(&mut bytes, 0)
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => self.corruption(
                    0,
                    format!(
                        "the file of blob {} is shorter than {} bytes",
                        self.id, self.size
                    ),
                ),
                _ => io_err(&self.path, "reading")(e),
            })?;
        if let Some(reason) = self.mismatch(|| blake3::hash(&bytes)) {
            return Err(self.corruption(0, reason));
        }
        Ok(Box::new(io::Cursor::new(bytes)))
    }

    /// Why a file whose bytes hash to `got()` is not the blob, if it is
    /// not (never hashing when there is no hash to check against).
    fn mismatch(&self, got: impl FnOnce() -> blake3::Hash) -> Option<String> {
        let want = self.hash?;
        (got() != want).then(|| format!("the bytes of blob {} no longer match their hash", self.id))
    }
}

/// Streams a content file, hashing each piece as it is read, and checks
/// the whole before handing out the last piece (see [`Checked::reader`]).
struct CheckedReader {
    checked: Checked,
    hasher: blake3::Hasher,
    /// Bytes read from the file (and hashed) so far.
    pos: u64,
    /// Read ahead and hashed, not yet handed out from `start` on.
    buf: Vec<u8>,
    start: usize,
    /// Set once the bytes failed their check: every later read fails too.
    failed: Option<(u64, String)>,
}

impl CheckedReader {
    fn new(checked: Checked) -> Self {
        CheckedReader {
            checked,
            hasher: blake3::Hasher::new(),
            pos: 0,
            buf: Vec::new(),
            start: 0,
            failed: None,
        }
    }

    fn failure(&self) -> Option<io::Error> {
        let (offset, reason) = self.failed.as_ref()?;
        let err = self.checked.corruption(*offset, reason.clone());
        Some(io::Error::new(io::ErrorKind::InvalidData, err))
    }

    /// Records that the bytes failed their check and returns the error; the
    /// read-ahead is dropped, so nothing more is handed out.
    fn fail(&mut self, offset: u64, reason: String) -> io::Error {
        self.buf.clear();
        self.start = 0;
        let err = self.checked.corruption(offset, reason.clone());
        self.failed = Some((offset, reason));
        io::Error::new(io::ErrorKind::InvalidData, err)
    }

    /// Reads the next piece of the file into `target` (whose length is what
    /// is left, at most [`READ_AHEAD`]) and hashes it; at the end of the
    /// blob, checks the hash and the file's length. A mismatch is recorded
    /// in `failed`; a plain I/O error is returned and may be retried.
    fn fill(
        c: &Checked,
        hasher: &mut blake3::Hasher,
        pos: u64,
        target: &mut [u8],
    ) -> io::Result<std::result::Result<(), (u64, String)>> {
        match c.file.read_exact_at(target, pos) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                let reason = format!("the file of blob {} ends before its {} bytes", c.id, c.size);
                return Ok(Err((pos, reason)));
            }
            other => other?,
        }
        let end = pos + target.len() as u64;
        let hashed = c.hash.is_some();
        if end < c.size {
            if hashed {
                hasher.update(target);
            }
            return Ok(Ok(()));
        }
        // Before hashing the last piece: a failed size lookup leaves the
        // hasher as it was, so the piece can be read again.
        let len = c.file.size()?;
        if len != c.size {
            let reason = format!(
                "blob {} should be {} bytes, the file has {len}",
                c.id, c.size
            );
            return Ok(Err((c.size.min(len), reason)));
        }
        if hashed {
            hasher.update(target);
        }
        Ok(c.mismatch(|| hasher.finalize())
            .map_or(Ok(()), |reason| Err((0, reason))))
    }
}

impl Read for CheckedReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(err) = self.failure() {
            return Err(err);
        }
        if self.start == self.buf.len() {
            let left = self.checked.size - self.pos;
            if left == 0 || out.is_empty() {
                return Ok(0);
            }
            let next = left.min(READ_AHEAD as u64) as usize;
            // A caller's buffer that takes the whole piece is filled
            // directly: no copy through our own.
            let direct = out.len() >= next;
            let target = if direct {
                &mut out[..next]
            } else {
                self.buf.resize(next, 0);
                self.start = 0;
                &mut self.buf[..]
            };
            match Self::fill(&self.checked, &mut self.hasher, self.pos, target) {
                Ok(Ok(())) => {}
                Ok(Err((offset, reason))) => return Err(self.fail(offset, reason)),
                Err(e) => {
                    // The piece was not hashed: the next call reads it
                    // again.
                    self.buf.clear();
                    self.start = 0;
                    return Err(e);
                }
            }
            self.pos += next as u64;
            if direct {
                return Ok(next);
            }
        }
        let n = out.len().min(self.buf.len() - self.start);
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

/// Removes the content file `hash` (after its last reference went away).
pub fn remove_content(fs: &dyn Vfs, dir: &Path, hash: &str) -> Result<()> {
    let (_, path) = content_path(dir, hash);
    match fs.remove(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&path, "removing")(e)),
        _ => Ok(()),
    }
}

/// Removes content files no blob refers to and leftover temporary files;
/// returns how many of each. Only at open: staged files of puts in flight
/// live in the same folder. Only regular files under names the engine
/// makes are removed; a folder that is a link is never entered.
///
/// First syncs the store directory and `blobs/` when `blobs/` exists, so
/// the blob directories are durable in their parents even if a crash came
/// between creating one and syncing its parent.
pub fn sweep(fs: &dyn Vfs, dir: &Path, referenced: &dyn Fn(&str) -> bool) -> Result<(u64, u64)> {
    let root = dir.join(BLOB_DIR);
    match fs.list(&root) {
        Ok(_) => {
            fs.sync_dir(dir).map_err(io_err(dir, "syncing"))?;
            fs.sync_dir(&root).map_err(io_err(&root, "syncing"))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound || is_foreign(&e) => return Ok((0, 0)),
        Err(e) => return Err(io_err(&root, "listing")(e)),
    }
    let orphans = sweep_orphans(fs, dir, referenced)?;
    let tmp_dir = root.join(TMP_DIR);
    let mut temps = 0;
    match fs.list(&tmp_dir) {
        Ok(names) => {
            for name in names.into_iter().filter(|n| is_staging_name(n)) {
                let path = tmp_dir.join(name);
                fs.remove(&path).map_err(io_err(&path, "removing"))?;
                temps += 1;
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound || is_foreign(&e) => {}
        Err(e) => return Err(io_err(&tmp_dir, "listing")(e)),
    }
    Ok((orphans, temps))
}

/// Removes content files for which `referenced` (given the hex hash) is
/// false; returns how many. Call with the writer lock held, so no put is
/// installing a file meanwhile.
pub fn sweep_orphans(fs: &dyn Vfs, dir: &Path, referenced: &dyn Fn(&str) -> bool) -> Result<u64> {
    let root = dir.join(BLOB_DIR);
    let mut orphans = 0;
    for prefix in 0..=255u8 {
        let hex = format!("{prefix:02x}");
        let folder = root.join(&hex);
        let names = match fs.list(&folder) {
            Ok(names) => names,
            Err(e) if e.kind() == io::ErrorKind::NotFound || is_foreign(&e) => continue,
            Err(e) => return Err(io_err(&folder, "listing")(e)),
        };
        for name in names {
            if is_content_name(&hex, &name) && !referenced(&name) {
                let path = folder.join(&name);
                fs.remove(&path).map_err(io_err(&path, "removing orphan"))?;
                orphans += 1;
            }
        }
    }
    Ok(orphans)
}

/// Streams a file through the file-system seam.
#[derive(Debug)]
pub struct FileReader {
    file: Arc<dyn VFile>,
    pos: u64,
    len: u64,
}

impl FileReader {
    /// Reads `file` from its start to `len`.
    pub fn new(file: Arc<dyn VFile>, len: u64) -> Self {
        FileReader { file, pos: 0, len }
    }
}

impl Read for FileReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min((self.len - self.pos) as usize);
        if n == 0 {
            return Ok(0);
        }
        self.file.read_exact_at(&mut buf[..n], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}
