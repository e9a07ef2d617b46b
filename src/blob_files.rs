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
//! A get reads the file through [`read`]. The first read of a content file
//! in a store handle hashes it: a blob up to [`read::SMALL_BLOB`] bytes is
//! read whole and checked (length and hash) before the get returns; a
//! larger one streams, hashed as it is read, and the read that would hand
//! out its last bytes fails instead if the whole does not match
//! ([`Checked::reader`]). A file that hashed whole joins the handle's
//! [`Verified`] set with its stamp (device, inode, length, change times);
//! later gets of it check its length alone while the stamp stays the same,
//! and hash it again once it moves (the file was written, or replaced). So
//! a read finds any damage made through the file system, and damage in a
//! file this handle has not read yet; it does not find a change the file
//! system cannot see (bit rot, a write to the raw device) in a file this
//! handle already hashed. The integrity check reads through [`verify`],
//! which hashes the whole file whatever its size and whatever the set
//! holds, and takes a damaged file out of the set; a fresh open starts
//! with an empty set.
//!
//! A directory created here is synced into its parent before anything in it
//! is relied on, and a handle's first blob put or import syncs the blob
//! directories again ([`sync_dirs`]) in case a crash came in between. A
//! failed directory sync leaves an entry the engine cannot vouch for, so it
//! poisons the store (through the `poison` callback the engine passes in).

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::contract::BlobMeta;
use crate::io::{VFile, Vfs};
use crate::log::record::BLOB_HASH_LEN;
use crate::{Error, Result};

mod read;
mod verified;

#[cfg(feature = "sqlite")]
pub use read::Checked;
pub use read::{read, verify, FileReader};
pub use verified::Verified;

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

/// Removes the content file `hash` (after its last reference went away).
pub fn remove_content(fs: &dyn Vfs, dir: &Path, hash: &str) -> Result<()> {
    let (_, path) = content_path(dir, hash);
    match fs.remove(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&path, "removing")(e)),
        _ => Ok(()),
    }
}

/// Syncs the store directory and `blobs/`, which `stage_new` has made:
/// then `blobs/` and every folder in it (`tmp/`, the content folders) are
/// durable in their parents, even one a crashed session made without
/// syncing its parent (`create_dir_durable` syncs only the folders it
/// creates). The engine calls this once per handle, before the first blob
/// record it writes, rather than at every open: a session that writes no
/// blob relies on no blob folder. A failure calls `poison`, as in
/// [`create_dir_durable`].
pub fn sync_dirs(fs: &dyn Vfs, dir: &Path, poison: &dyn Fn()) -> Result<()> {
    let root = dir.join(BLOB_DIR);
    for folder in [dir, root.as_path()] {
        fs.sync_dir(folder).map_err(|e| {
            poison();
            io_err(folder, "syncing")(e)
        })?;
    }
    Ok(())
}

/// Removes content files no blob refers to and leftover temporary files;
/// returns how many of each. Only at open: staged files of puts in flight
/// live in the same folder. Only regular files under names the engine
/// makes are removed; a folder that is a link is never entered. Syncs
/// nothing: a removal that a power loss undoes leaves a file the next
/// open's sweep removes again.
pub fn sweep(fs: &dyn Vfs, dir: &Path, referenced: &dyn Fn(&str) -> bool) -> Result<(u64, u64)> {
    let root = dir.join(BLOB_DIR);
    match fs.list(&root) {
        Ok(_) => {}
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
