//! Backups of a live store: `LogStore::backup_to`.
//!
//! A backup copies one consistent view of the store while the writer goes
//! on: the view is taken under the writer lock (on a read-only handle, its
//! own view after a refresh), which fixes the segments in replay order,
//! where the newest one's records end (a frame boundary), the manifest and
//! the blob content files the view refers to. The copy then runs without
//! any lock:
//! - Every segment is read through the descriptor the view holds, so a
//!   compaction that removes it meanwhile changes nothing; the newest is
//!   copied only up to the view's end, and bytes below that end are never
//!   written again.
//! - Blob files are copied first, by content address, each hashed as it
//!   is copied. One the writer removed meanwhile (its last reference
//!   deleted after the view was taken) makes the backup take a newer view
//!   and copy only the files it does not have yet, so each attempt is
//!   short and the backup makes progress however busy the writer is; a
//!   file copied for an older view and no longer referenced is swept when
//!   the copy is first opened.
//! - The destination may not lie inside the store: a backup from a
//!   read-only handle writes nothing in the store it copies.
//!
//! Every file is created new (exclusively) in the destination and synced,
//! then the destination's directories; the copy is then opened as a store,
//! checked with `verify`, compared with the view (documents, blobs,
//! leases), and closed, which writes its index snapshot.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use super::{Inner, LogStore, StoreDir};
use crate::blob_files::{self, BLOB_DIR};
use crate::io::{Access, RealFs, Vfs};
use crate::log::manifest::{self, Manifest};
use crate::log::scan::{copy_data, for_each_window};
use crate::log::segment::{segment_name, SegmentFile};
use crate::options::Options;
use crate::{Error, Result};

/// How many views a backup takes at most when the writer keeps removing
/// blob files the last one referred to.
const ATTEMPTS: usize = 100;

/// What a backup copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupReport {
    /// Segment files copied.
    pub segments: usize,
    /// Bytes of segments copied.
    pub segment_bytes: u64,
    /// Blob content files copied.
    pub blob_files: u64,
    /// Bytes of blob content copied.
    pub blob_bytes: u64,
    /// Documents in the copy.
    pub documents: u64,
    /// Blobs in the copy.
    pub blobs: u64,
    /// Leases in the copy.
    pub leases: u64,
}

/// One consistent view of the store, taken under the writer lock.
struct View {
    /// Segments in replay order, each with the length to copy.
    segments: Vec<(u32, SegmentFile, u64)>,
    manifest: Manifest,
    /// Content hash (hex) to size, for every blob file the view refers to.
    contents: BTreeMap<String, u64>,
    counts: (u64, u64, u64),
}

impl LogStore {
    /// Copies the store, as it stands at one moment, into the new directory
    /// `dest` (missing, or empty), without stopping writers: segments up
    /// to a frame boundary, blob files, the manifest. The copy is made
    /// durable, then opened, verified and compared with the moment it
    /// copied before this returns. It works from a read-only handle too
    /// (after a refresh), so a tool can back up a store an app holds.
    ///
    /// # Errors
    /// `InvalidInput` when `dest` exists and is not an empty directory, or
    /// lies inside the store; `Corruption` when a blob file does not match
    /// its hash, or the copy does not verify; `Io` from the file system;
    /// `Closed`. After an error the files and folders the backup made are
    /// removed.
    pub fn backup_to(&self, dest: impl AsRef<Path>) -> Result<BackupReport> {
        let dest = dest.as_ref();
        self.inner().check_unpoisoned()?;
        match LogStore::probe(dest) {
            Ok(StoreDir::Empty) => {}
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            _ => {
                return Err(Error::invalid(format!(
                    "the backup target {} exists and is not an empty directory",
                    dest.display()
                )))
            }
        }
        if inside(self.inner().fs.as_ref(), dest) {
            return Err(Error::invalid(format!(
                "the backup target {} is inside the store it would copy",
                dest.display()
            )));
        }
        let existed = dest.exists();
        crate::io::create_dirs_durable(dest)
            .map_err(|e| Error::io(format!("creating {}", dest.display()), e))?;
        let out = RealFs::open_root(dest, Access::ReadWrite)
            .map_err(|e| Error::io(format!("opening {}", dest.display()), e))?;
        let mut made = Made::default();
        let result = self.copy_into(&out, dest, &mut made);
        if result.is_err() {
            made.remove(&out, dest);
            if !existed {
                let _ = std::fs::remove_dir(dest);
            }
        }
        result
    }

    fn copy_into(&self, out: &RealFs, dest: &Path, made: &mut Made) -> Result<BackupReport> {
        let inner = &self.inner();
        let mut last = None;
        let mut view = None;
        for _ in 0..ATTEMPTS {
            self.refresh()?;
            let taken = inner.backup_view();
            match copy_blobs(inner, &taken, out, dest, made) {
                Ok(()) => {
                    view = Some(taken);
                    break;
                }
                Err(e @ Error::Io { .. }) if is_not_found(&e) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        let Some(view) = view else {
            return Err(last.unwrap_or_else(|| Error::Internal("a backup took no view".into())));
        };
        let mut report = copy_segments(&view, out, dest, made)?;
        // A sync that failed while the copy ran may have covered records
        // the view holds: they were never acknowledged, and the copy must
        // not make them durable.
        inner.check_unpoisoned()?;
        report.blob_files = view.contents.len() as u64;
        report.blob_bytes = view.contents.values().sum();
        check_copy(dest, &inner.opts, &view, &mut report)?;
        Ok(report)
    }
}

fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
}

/// Whether `dest` (or the folder it would be made in) is the store
/// directory of `fs` or lies inside it, by device and inode: no path is
/// trusted to tell.
fn inside(fs: &dyn Vfs, dest: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(root) = fs.root_id() else {
        return false;
    };
    fn here(p: &Path) -> &Path {
        if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        }
    }
    let Some(existing) = dest.ancestors().map(here).find(|p| p.exists()) else {
        return false;
    };
    let Ok(real) = std::fs::canonicalize(existing) else {
        return false;
    };
    real.ancestors()
        .any(|p| std::fs::metadata(p).is_ok_and(|m| (m.dev(), m.ino()) == root))
}

/// What a backup made in its destination, removed if it fails.
#[derive(Default)]
struct Made {
    files: Vec<PathBuf>,
    folders: Vec<PathBuf>,
    /// Blob folders holding files not yet synced into them, whichever
    /// attempt copied the files.
    unsynced: Vec<PathBuf>,
}

impl Made {
    /// Best effort: what is left is reported by the error that stopped it.
    fn remove(&self, out: &RealFs, dest: &Path) {
        for path in self.files.iter().rev() {
            let _ = out.remove(path);
        }
        let _ = out.remove(&dest.join(crate::store::LOCK_FILE));
        let _ = out.remove(&dest.join(crate::store::snapshot_file::SNAPSHOT_FILE));
        for folder in self.folders.iter().rev() {
            let _ = out.remove_dir(folder);
        }
    }
}

impl Inner {
    /// The view a backup copies: under the writer lock, so no record is
    /// half-applied and no segment rolls meanwhile.
    fn backup_view(&self) -> View {
        let writer = self.writer.lock();
        let state = self.state.read();
        let files = self.files.read();
        let position = writer.position();
        let segments = writer
            .order()
            .iter()
            .filter_map(|id| {
                let file = files.get(id)?.clone();
                let len = if *id == position.segment {
                    position.offset
                } else {
                    file.file.size().ok()?
                };
                Some((*id, file, len))
            })
            .collect();
        let contents = state
            .blobs
            .entries()
            .filter_map(|(meta, _)| Some((meta.content_hash.clone()?, meta.size)))
            .collect();
        let documents = state.collections().map(|(_, c)| c.len() as u64).sum();
        View {
            segments,
            manifest: writer.manifest.clone(),
            contents,
            counts: (
                documents,
                state.blobs.len() as u64,
                state.leases.len() as u64,
            ),
        }
    }
}

fn io_err(path: &Path, what: &str) -> impl FnOnce(io::Error) -> Error {
    let context = format!("{what} {}", path.display());
    move |e| Error::io(context, e)
}

/// Copies each blob file of the view that `dest` does not hold yet,
/// hashing it as it goes, and syncs the folders it wrote into.
fn copy_blobs(
    inner: &Inner,
    view: &View,
    out: &RealFs,
    dest: &Path,
    made: &mut Made,
) -> Result<()> {
    for (hash, size) in &view.contents {
        let (_, path) = blob_files::content_path(&inner.dir, hash);
        let (dest_folder, dest_path) = blob_files::content_path(dest, hash);
        if made.files.contains(&dest_path) {
            continue;
        }
        let source = inner
            .fs
            .open(&path, false)
            .map_err(io_err(&path, "opening"))?;
        if source.size().map_err(io_err(&path, "reading"))? != *size {
            return Err(Error::corruption(
                &path,
                0,
                format!("the blob file is not the {size} bytes its blob records"),
            ));
        }
        for folder in [dest.join(BLOB_DIR), dest_folder.clone()] {
            if !made.folders.contains(&folder) {
                crate::io::create_dir_durable(out, &folder).map_err(io_err(&folder, "creating"))?;
                made.folders.push(folder);
            }
        }
        let copy = out
            .create_new(&dest_path)
            .map_err(io_err(&dest_path, "creating"))?;
        made.files.push(dest_path.clone());
        let mut hasher = blake3::Hasher::new();
        for_each_window(source.as_ref(), 0, *size, |at, bytes| {
            hasher.update(bytes);
            copy.write_all_at(bytes, at)
        })
        .and_then(|()| copy.sync_data())
        .map_err(io_err(&dest_path, "copying"))?;
        if hasher.finalize().to_hex().as_str() != hash {
            return Err(Error::corruption(
                &path,
                0,
                "the blob file's bytes do not match their hash",
            ));
        }
        made.unsynced.push(dest_folder);
    }
    made.unsynced.sort();
    made.unsynced.dedup();
    for folder in &made.unsynced {
        out.sync_dir(folder).map_err(io_err(folder, "syncing"))?;
    }
    made.unsynced.clear();
    Ok(())
}

/// Copies the view's segments and manifest, and syncs the destination.
fn copy_segments(view: &View, out: &RealFs, dest: &Path, made: &mut Made) -> Result<BackupReport> {
    let mut report = BackupReport::default();
    for (id, segment, len) in &view.segments {
        let path = dest.join(segment_name(*id));
        let copy = out.create_new(&path).map_err(io_err(&path, "creating"))?;
        made.files.push(path.clone());
        copy_data(segment.file.as_ref(), copy.as_ref(), *len).map_err(io_err(&path, "copying"))?;
        report.segments += 1;
        report.segment_bytes += len;
    }
    if view.manifest != Manifest::default() {
        made.files.push(dest.join(manifest::MANIFEST_FILE));
        manifest::prepare(out, dest, &view.manifest)?;
        manifest::commit(out, dest)?;
    }
    if made.folders.iter().any(|f| f == &dest.join(BLOB_DIR)) {
        let blobs = dest.join(BLOB_DIR);
        out.sync_dir(&blobs).map_err(io_err(&blobs, "syncing"))?;
    }
    out.sync_dir(dest).map_err(io_err(dest, "syncing"))?;
    Ok(report)
}

/// Opens the copy as a store, verifies it and compares its counts with
/// the view's; closing it writes its index snapshot.
fn check_copy(dest: &Path, opts: &Options, view: &View, report: &mut BackupReport) -> Result<()> {
    let opts = Options {
        auto_compact: false,
        ..opts.clone()
    };
    let copy = LogStore::open(dest, opts)?;
    let verified = copy.verify()?;
    if let Some(problem) = verified.problems.first() {
        return Err(Error::corruption(
            &problem.file,
            problem.offset,
            format!("the backup does not verify: {}", problem.description),
        ));
    }
    let stats = copy.stats()?;
    report.documents = stats.documents;
    report.blobs = stats.blobs;
    report.leases = stats.leases;
    if (stats.documents, stats.blobs, stats.leases) != view.counts {
        return Err(Error::Internal(format!(
            "the backup holds {} documents, {} blobs and {} leases where the store held {:?}",
            stats.documents, stats.blobs, stats.leases, view.counts
        )));
    }
    copy.shut_down()
}
