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
//! - A blob file is copied by its content address and hashed as it is
//!   copied. One the writer removed meanwhile (its last reference deleted
//!   after the view was taken) makes the backup start again from a newer
//!   view.
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
use crate::log::scan::{for_each_data_window, for_each_window};
use crate::log::segment::{segment_name, SegmentFile};
use crate::options::Options;
use crate::{Error, Result};

/// How many times a backup starts again when the writer removed a blob
/// file the view still referred to.
const ATTEMPTS: usize = 10;

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
    /// `InvalidInput` when `dest` exists and is not an empty directory;
    /// `Corruption` when a blob file does not match its hash, or the copy
    /// does not verify; `Io` from the file system; `Closed`. After an error
    /// the files the backup made are removed.
    pub fn backup_to(&self, dest: impl AsRef<Path>) -> Result<BackupReport> {
        let dest = dest.as_ref();
        self.inner.check_open()?;
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
        crate::io::create_dirs_durable(dest)
            .map_err(|e| Error::io(format!("creating {}", dest.display()), e))?;
        let out = RealFs::open_root(dest, Access::ReadWrite)
            .map_err(|e| Error::io(format!("opening {}", dest.display()), e))?;
        let mut last = None;
        for _ in 0..ATTEMPTS {
            self.refresh()?;
            let view = self.inner.backup_view();
            let mut made = Vec::new();
            match copy_view(&self.inner, &view, &out, dest, &mut made) {
                Ok(mut report) => {
                    return check_copy(dest, &self.inner.opts, &view, &mut report)
                        .map(|()| report)
                        .inspect_err(|_| remove_made(&out, dest, &made));
                }
                Err(e) => {
                    remove_made(&out, dest, &made);
                    match e {
                        Error::Io { ref source, .. }
                            if source.kind() == io::ErrorKind::NotFound =>
                        {
                            last = Some(e)
                        }
                        e => return Err(e),
                    }
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Internal("a backup made no attempt".into())))
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

/// Copies the view's files into `dest`, noting each file it makes in
/// `made`.
fn copy_view(
    inner: &Inner,
    view: &View,
    out: &RealFs,
    dest: &Path,
    made: &mut Vec<PathBuf>,
) -> Result<BackupReport> {
    let mut report = BackupReport::default();
    for (id, segment, len) in &view.segments {
        let path = dest.join(segment_name(*id));
        let copy = out.create_new(&path).map_err(io_err(&path, "creating"))?;
        made.push(path.clone());
        for_each_data_window(segment.file.as_ref(), 0, *len, |at, bytes| {
            copy.write_all_at(bytes, at)
        })
        .and_then(|()| copy.set_len(*len))
        .and_then(|()| copy.sync_data())
        .map_err(io_err(&path, "copying"))?;
        report.segments += 1;
        report.segment_bytes += len;
    }
    if view.manifest != Manifest::default() {
        made.push(dest.join(manifest::MANIFEST_FILE));
        manifest::prepare(out, dest, &view.manifest)?;
        manifest::commit(out, dest)?;
    }
    let mut folders = Vec::new();
    for (hash, size) in &view.contents {
        let (_, path) = blob_files::content_path(&inner.dir, hash);
        let (dest_folder, dest_path) = blob_files::content_path(dest, hash);
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
        crate::io::create_dir_durable(out, &dest_folder)
            .map_err(io_err(&dest_folder, "creating"))?;
        let copy = out
            .create_new(&dest_path)
            .map_err(io_err(&dest_path, "creating"))?;
        made.push(dest_path.clone());
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
        report.blob_files += 1;
        report.blob_bytes += size;
        folders.push(dest_folder);
    }
    if !folders.is_empty() {
        folders.sort();
        folders.dedup();
        folders.push(dest.join(BLOB_DIR));
        for folder in &folders {
            out.sync_dir(folder).map_err(io_err(folder, "syncing"))?;
        }
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

/// Removes the files a failed backup made (best effort: what is left is
/// reported by the error that stopped it).
fn remove_made(out: &RealFs, dest: &Path, made: &[PathBuf]) {
    for path in made.iter().rev() {
        let _ = out.remove(path);
    }
    let _ = out.remove(&dest.join(crate::store::LOCK_FILE));
    let _ = out.remove(&dest.join(crate::store::snapshot_file::SNAPSHOT_FILE));
}
