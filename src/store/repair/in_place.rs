//! Repair in place: the salvage written back into the store's own directory
//! as new segments and switched in by one manifest write, the commit point
//! compaction uses. Every file operation goes through the [`Vfs`].
//!
//! Step by step (also in FORMAT.md, "Repair in place"), under the store's
//! lock:
//! 1. A file left under its `.relink` name is renamed back, as open does
//!    first, so that no earlier manifest can come back over the new one.
//! 2. Every record the salvage finds verifying, in salvage order, is
//!    applied to an empty in-memory state through the step replay uses and,
//!    if the state takes it (a document body must parse, a blob's content
//!    file must be there and match its size and hash), its payload is
//!    appended, framed anew, to outputs `<id>.seg.tmp` whose ids lie above
//!    every id in use. Each output is synced, then the directory.
//! 3. Every file the salvage read (the segments, under whatever name, and
//!    the quarantine copies) and the manifest are copied into a new folder
//!    `quarantine/repair-<first output id>.<n>/`, each copy synced, then
//!    the folder.
//! 4. `MANIFEST.tmp` names the outputs as the base and the last of them as
//!    the horizon, and is renamed over `MANIFEST`, the directory synced: the
//!    commit point. A failure before it removes the outputs and the copies
//!    and changes nothing.
//! 5. The quarantine copies that were read are removed (so a later salvage
//!    does not replay them again), then `SNAPSHOT` (it describes the old
//!    log), and the directory is settled as open settles it: the outputs
//!    are renamed to `<id>.seg`, the originals, now below the horizon and
//!    outside the base, removed.
//!
//! The horizon is an output because no segment above the damaged ones may
//! exist before the commit: open would take it for the writer's, and the
//! newest damaged segment for a sealed one that must verify to its end.
//!
//! The originals are copied, not moved: under the fault model a rename
//! across directories is a remove and a create that persist independently,
//! so a move into `quarantine/` could lose the file; and open removes
//! segments below a committed horizon. The copies are durable before the
//! commit, so at every moment each original exists whole, in place or in
//! the folder.

use std::path::{Path, PathBuf};

use super::{walk, Salvage, SalvageReport, Sink, Taken};
use crate::blob_files;
use crate::index::apply;
use crate::index::State;
use crate::io::{self, Vfs};
use crate::log::manifest::{self, segment_id, Manifest, MANIFEST_FILE};
use crate::log::outputs::Outputs;
use crate::log::record::{Record, FRAME_HEADER_LEN};
use crate::log::recovery::QUARANTINE_DIR;
use crate::log::scan::copy_data;
use crate::log::segment::parse_segment_name;
use crate::options::Options;
use crate::store::dir::{classify, StoreDir};
use crate::store::read_body;
use crate::store::snapshot_file::SNAPSHOT_FILE;
use crate::{Error, Result};

/// The start of the name of a folder in `quarantine/` that holds the
/// originals of a store repaired in place.
const KEPT_PREFIX: &str = "repair-";

/// What a repair in place did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// What the salvage kept and lost (the files it names are where they
    /// were read; each is now in `originals`).
    pub salvage: SalvageReport,
    /// Segments the repaired log was written to.
    pub segments_written: usize,
    /// The folder, inside the store's `quarantine/`, holding copies of the
    /// damaged originals: every file the salvage read, and the manifest.
    pub originals: PathBuf,
}

/// Whether `name`, in `quarantine/`, is a folder a repair in place made:
/// `repair-<20 digits>.<n>`.
pub(crate) fn is_kept_folder(name: &str) -> bool {
    let Some((id, n)) = name
        .strip_prefix(KEPT_PREFIX)
        .and_then(|rest| rest.split_once('.'))
    else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    id.len() == 20 && digits(id) && digits(n)
}

impl Salvage {
    /// Repairs the store in place: every record that verifies is kept, in
    /// new segments of the same directory that replace the old ones
    /// atomically, through the manifest, as a compaction's do. The store's
    /// lock is held throughout; blob files stay where they are.
    ///
    /// A crash (or an error) at any point leaves the store either as it was
    /// (the repair did not commit: open and salvage see what they saw
    /// before, and a rerun repairs it) or repaired, which opens. Before
    /// anything is removed, every file the salvage read
    /// (the segments and the quarantine copies) and the manifest are copied
    /// into a new folder `quarantine/repair-<id>.<n>/` of the store and
    /// synced: [`RepairReport::originals`] names it. The repaired store
    /// holds the records the salvage kept, in salvage order, so it opens to
    /// the state [`Salvage::run`] would import into another store; its
    /// segments are at most `opts.segment_bytes` long.
    ///
    /// # Errors
    /// `InvalidInput` for options out of range and `Io` (kind
    /// `PermissionDenied`) for a store this user cannot write to, both
    /// before anything is written; `Io` from the file system (before the
    /// commit, the outputs and copies are removed again; after it, the next
    /// open finishes the switch).
    pub fn repair_in_place(self, opts: &Options) -> Result<RepairReport> {
        opts.validate()?;
        let dir = self.src.as_path();
        let fs = self.writes.clone().ok_or_else(|| {
            Error::io(
                format!("repairing {} in place", dir.display()),
                std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "the store directory cannot be written (a read-only mount, or another user's files); repair it into another directory with --out",
                ),
            )
        })?;
        let fs = fs.as_ref();
        // The directory the lock was taken in is the one repaired.
        if classify(fs, dir)? != StoreDir::Store {
            return Err(Error::NotAStore {
                path: dir.to_path_buf(),
            });
        }
        let names = list(fs, dir)?;
        if manifest::restore_relinked(fs, dir, &names)? {
            sync_dir(fs, dir)?;
        }
        let first = next_free_id(fs, dir)?;
        let mut next = first;
        let allocate = move || {
            let id = next;
            next = id
                .checked_add(1)
                .ok_or_else(|| Error::corruption(dir, 0, "segment ids are exhausted"))?;
            Ok(id)
        };
        let mut rewrite = Rewrite {
            fs,
            dir,
            out: Outputs::new(fs, dir, opts.segment_bytes, "repair", allocate),
            state: State::default(),
        };
        let mut kept = Kept {
            fs,
            folder: PathBuf::new(),
            made: Vec::new(),
        };
        let staged = (|| {
            let (report, read) = walk(fs, dir, &mut rewrite)?;
            // A salvage that kept nothing still gets one output, empty:
            // the horizon.
            if rewrite.out.is_empty() {
                rewrite.out.start()?;
            }
            let base: Vec<u32> = rewrite.out.finish()?.iter().map(|o| o.id).collect();
            sync_dir(fs, dir)?;
            kept.copy(dir, first, &read)?;
            let horizon = *base
                .last()
                .ok_or_else(|| Error::Internal("a repair made no segment".into()))?;
            let written = base.len();
            manifest::prepare(fs, dir, &Manifest { horizon, base })?;
            Ok((report, read, written))
        })();
        let (report, read, segments_written) = match staged {
            Ok(staged) => staged,
            Err(e) => {
                // Nothing is committed: the outputs and the copies can go.
                rewrite.out.abandon();
                kept.abandon();
                return Err(e);
            }
        };
        // The commit point. After an error here the new manifest may or may
        // not be in force; the next open settles it either way, and the
        // originals are kept in both.
        manifest::commit(fs, dir)?;
        after_the_switch(fs, dir, &read)?;
        Ok(RepairReport {
            salvage: report,
            segments_written,
            originals: kept.folder,
        })
    }
}

fn list(fs: &dyn Vfs, dir: &Path) -> Result<Vec<String>> {
    fs.list(dir)
        .map_err(|e| Error::io(format!("listing {}", dir.display()), e))
}

fn sync_dir(fs: &dyn Vfs, dir: &Path) -> Result<()> {
    fs.sync_dir(dir)
        .map_err(|e| Error::io(format!("syncing {}", dir.display()), e))
}

/// The first id above every segment id the store uses or names: its
/// segments under any name, the manifest, the quarantine copies.
fn next_free_id(fs: &dyn Vfs, dir: &Path) -> Result<u32> {
    let mut max = list(fs, dir)?
        .iter()
        .filter_map(|name| segment_id(name))
        .max()
        .unwrap_or(0);
    if let Ok(m) = manifest::read(fs, dir) {
        max = m.base.iter().copied().fold(max.max(m.horizon), u32::max);
    }
    if let Ok(names) = fs.list(&dir.join(QUARANTINE_DIR)) {
        let copies = names.iter().filter_map(|name| {
            let (segment, _) = name.split_once(".at-")?;
            parse_segment_name(segment)
        });
        max = copies.fold(max, u32::max);
    }
    max.checked_add(1)
        .ok_or_else(|| Error::corruption(dir, 0, "segment ids are exhausted"))
}

/// The sink of a repair in place: the records the store's own replay takes,
/// appended to the outputs.
struct Rewrite<'a> {
    fs: &'a dyn Vfs,
    dir: &'a Path,
    out: Outputs<'a>,
    /// The state the outputs replay to, so far.
    state: State,
}

impl Sink for Rewrite<'_> {
    fn take(
        &mut self,
        record: Record<'_>,
        payload: &[u8],
        path: &Path,
        offset: u64,
    ) -> Result<Taken> {
        if let Some(reason) = self.refused(&record, path, offset) {
            return Ok(Taken::Lost(reason));
        }
        if matches!(record, Record::Pad { .. }) {
            return Ok(Taken::Kept);
        }
        // Applied first, at the location it will have: a record the state
        // refuses is never written, so the outputs replay to this state.
        let loc = self.out.place((FRAME_HEADER_LEN + payload.len()) as u64)?;
        let (files, dir) = (self.out.files(), self.dir);
        if let Err(e) = self
            .state
            .replay(record, loc, &|at| read_body(files, dir, at))
        {
            return Ok(Taken::Lost(e.to_string()));
        }
        let written = self.out.push(payload)?;
        debug_assert_eq!(written, loc, "a record went where it was applied");
        Ok(Taken::Kept)
    }
}

impl Rewrite<'_> {
    /// Why the import into another store would refuse `record`, which a
    /// repair in place refuses too: a document body that does not parse, a
    /// blob id already taken, a blob whose content file is missing or does
    /// not match its size and hash.
    fn refused(&self, record: &Record<'_>, path: &Path, offset: u64) -> Option<String> {
        match record {
            Record::DocPut { .. } => apply::document(record)
                .err()
                .map(|reason| Error::corruption(path, offset, reason).to_string()),
            Record::BlobPut { id, .. } => {
                if self.state.blobs.get(id).is_some() {
                    return Some(Error::invalid(format!("blob id {id} is taken")).to_string());
                }
                let meta = apply::blob_meta(record)?;
                blob_files::open_content(self.fs, self.dir, &meta)
                    .and_then(|opened| blob_files::verify(opened, &meta, None))
                    .err()
                    .map(|e| format!("the bytes of blob {id} do not verify: {e}"))
            }
            _ => None,
        }
    }
}

/// The copies of the originals, in a folder of `quarantine/`.
struct Kept<'a> {
    fs: &'a dyn Vfs,
    folder: PathBuf,
    /// The copies made so far.
    made: Vec<PathBuf>,
}

impl Kept<'_> {
    /// Copies every file in `read`, and the manifest, into a new folder
    /// `quarantine/repair-<first>.<n>/`: each copy synced, then the folder.
    fn copy(&mut self, dir: &Path, first: u32, read: &[PathBuf]) -> Result<()> {
        let fs = self.fs;
        let qdir = dir.join(QUARANTINE_DIR);
        let io_err = |what: &Path| {
            let what = what.to_path_buf();
            move |e| Error::io(format!("keeping the originals in {}", what.display()), e)
        };
        io::create_dir_durable(fs, &qdir).map_err(io_err(&qdir))?;
        self.folder = free_folder(fs, &qdir, first)?;
        io::create_dir_durable(fs, &self.folder).map_err(io_err(&self.folder))?;
        let manifest = dir.join(MANIFEST_FILE);
        let has_manifest = fs.open(&manifest, false).is_ok();
        let mut files: Vec<&Path> = read.iter().map(PathBuf::as_path).collect();
        if has_manifest {
            files.push(&manifest);
        }
        for from in files {
            let name = from
                .file_name()
                .ok_or_else(|| Error::Internal(format!("{} has no name", from.display())))?;
            let to = self.folder.join(name);
            let copy = fs.create_new(&to).map_err(io_err(&to))?;
            self.made.push(to.clone());
            copy_into(fs, from, copy.as_ref()).map_err(io_err(&to))?;
        }
        sync_dir(fs, &self.folder)
    }

    /// Removes the copies of a repair that will not commit.
    fn abandon(&mut self) {
        for path in self.made.drain(..) {
            let _ = self.fs.remove(&path);
        }
    }
}

/// A new folder of `qdir` for the originals: `repair-<first>.<n>`, the
/// first `n` that names nothing yet. A folder already there is never
/// reused, even empty: one left by a repair that did not commit may be an
/// entry a failed sync dropped, which no later sync of `qdir` writes.
fn free_folder(fs: &dyn Vfs, qdir: &Path, first: u32) -> Result<PathBuf> {
    let entries = fs
        .list_entries(qdir)
        .map_err(|e| Error::io(format!("listing {}", qdir.display()), e))?;
    for n in 0..1000u32 {
        let name = format!("{KEPT_PREFIX}{first:020}.{n}");
        if entries.iter().any(|entry| entry.name == name) {
            continue;
        }
        // Not in the listing (the simulated file systems list no folders):
        // new unless it holds files.
        let folder = qdir.join(name);
        match fs.list(&folder) {
            Ok(names) if names.is_empty() => return Ok(folder),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(folder),
            _ => {}
        }
    }
    Err(Error::io(
        format!("keeping the originals in {}", qdir.display()),
        std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "every folder name for this repair is taken",
        ),
    ))
}

/// Copies the file at `from` into `copy` and syncs it. Holes stay holes.
fn copy_into(fs: &dyn Vfs, from: &Path, copy: &dyn crate::io::VFile) -> std::io::Result<()> {
    let file = fs.open(from, false)?;
    copy_data(file.as_ref(), copy, file.size()?)
}

/// After the commit: the quarantine copies that were read go (they are
/// kept), then the snapshot of the old log, then the directory is settled
/// as open settles it.
fn after_the_switch(fs: &dyn Vfs, dir: &Path, read: &[PathBuf]) -> Result<()> {
    let qdir = dir.join(QUARANTINE_DIR);
    let copies: Vec<&PathBuf> = read
        .iter()
        .filter(|p| p.parent() == Some(qdir.as_path()))
        .collect();
    for path in &copies {
        fs.remove(path)
            .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
    }
    if !copies.is_empty() {
        sync_dir(fs, &qdir)?;
    }
    let snapshot = dir.join(SNAPSHOT_FILE);
    match fs.remove(&snapshot) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("removing {}", snapshot.display()), e)),
    }
    manifest::layout(fs, dir)?;
    sync_dir(fs, dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_folder_names() {
        assert!(is_kept_folder("repair-00000000000000000012.0"));
        assert!(is_kept_folder("repair-00000000000000000012.17"));
        assert!(!is_kept_folder("repair-12.0"));
        assert!(!is_kept_folder("repair-00000000000000000012"));
        assert!(!is_kept_folder("repair-00000000000000000012."));
        assert!(!is_kept_folder("repair-0000000000000000001x.0"));
        assert!(!is_kept_folder(
            "00000000000000000001.seg.at-00000000000000000100.0"
        ));
    }
}
