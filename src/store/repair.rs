//! Salvage: reads a damaged log store without changing it and writes every
//! record that still verifies into another store, reporting what was lost;
//! or, in place, into new segments of the store itself, switched in through
//! the manifest (`in_place`). The command-line tool's `repair` is built on
//! it.

mod in_place;

pub(crate) use in_place::is_kept_folder;
pub use in_place::RepairReport;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::verify::Problem;
use super::LOCK_FILE;
use crate::blob_files;
use crate::contract::{BlobMeta, LeaseStore};
use crate::index::apply;
use crate::io::{Access, LockGuard, RealFs, Vfs};
use crate::log::manifest::{self, Manifest, MANIFEST_FILE, RELINK_SUFFIX, TMP_SUFFIX};
use crate::log::record::{Framing, Record};
use crate::log::recovery::QUARANTINE_DIR;
use crate::log::scan::{Scan, Step};
use crate::log::segment::{self, parse_segment_name, SEGMENT_HEADER_LEN};
use crate::transfer::Transfer;
use crate::{Error, Result};

/// What a salvage kept and lost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SalvageReport {
    /// Segments read.
    pub segments: usize,
    /// Records that verified and were written to the destination.
    pub records_kept: u64,
    /// Damaged byte ranges skipped (file, offset, and how much in the
    /// description), and records that verified but could not be applied.
    pub lost: Vec<Problem>,
}

/// The segments of `dir` in replay order with the file each is read from,
/// without changing anything. A segment still named `.relink` (a crash
/// while open re-linked it) or a committed compaction output still named
/// `.seg.tmp` is read under that name. A manifest that does not verify is
/// reported, and every segment then replays in id order.
fn segment_order(
    fs: &dyn Vfs,
    dir: &Path,
    report: &mut SalvageReport,
) -> Result<Vec<(u32, PathBuf)>> {
    let names = fs
        .list(dir)
        .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
    let manifest = manifest::read(fs, dir).unwrap_or_else(|e| {
        report.lost.push(Problem {
            file: dir.join(MANIFEST_FILE),
            offset: 0,
            description: format!("{e}; segments were read in id order"),
        });
        Manifest::default()
    });
    let mut files: BTreeMap<u32, PathBuf> = BTreeMap::new();
    for name in &names {
        if let Some(id) = parse_segment_name(name) {
            files.insert(id, dir.join(name));
        }
    }
    for name in &names {
        let stem = name
            .strip_suffix(RELINK_SUFFIX)
            .or_else(|| name.strip_suffix(TMP_SUFFIX));
        let Some(id) = stem.and_then(parse_segment_name) else {
            continue;
        };
        let committed_output = name.ends_with(TMP_SUFFIX) && manifest.base.contains(&id);
        if name.ends_with(RELINK_SUFFIX) || committed_output {
            files.entry(id).or_insert_with(|| dir.join(name));
        }
    }
    let listed = |id: &u32| manifest.base.contains(id);
    let order: Vec<u32> = if manifest.base.iter().all(|id| files.contains_key(id)) {
        let mut order = manifest.base.clone();
        order.extend(
            files
                .keys()
                .filter(|id| **id >= manifest.horizon && !listed(id)),
        );
        order
    } else {
        files.keys().copied().collect()
    };
    Ok(order
        .into_iter()
        .filter_map(|id| Some((id, files.get(&id)?.clone())))
        .collect())
}

/// A damaged log store, locked so that no program opens it while it is
/// read. `salvage` is this in one call; [`Salvage::repair_in_place`] holds
/// the lock on through its switch.
#[derive(Debug)]
pub struct Salvage {
    fs: Arc<dyn Vfs>,
    /// The file system the lock was taken through, for a repair in place;
    /// `None` for a store this user cannot write to.
    writes: Option<Arc<dyn Vfs>>,
    src: PathBuf,
    /// `None` only for a store this user cannot write to.
    _lock: Option<Box<dyn LockGuard>>,
}

/// Replays every verifying record of the log store in `src` into `dst`
/// (see [`Salvage::run`]), holding the store's lock meanwhile.
///
/// # Errors
/// `Locked` when a program has the store open; as [`Salvage::run`].
pub fn salvage(src: &Path, dst: &dyn Transfer) -> Result<SalvageReport> {
    Salvage::lock(src)?.run(dst)
}

impl Salvage {
    /// Takes the lock of the store in `src`, which [`Salvage::run`] only
    /// reads.
    ///
    /// # Errors
    /// `Locked` when a program has the store open; `Io` when the lock file
    /// cannot be made.
    pub fn lock(src: &Path) -> Result<Salvage> {
        let open = |access| {
            RealFs::open_root(src, access)
                .map_err(|e| Error::io(format!("opening {}", src.display()), e))
        };
        let reads = open(Access::ReadOnly)?;
        if super::dir::classify(&reads, src)? != super::StoreDir::Store {
            return Err(Error::NotAStore {
                path: src.to_path_buf(),
            });
        }
        // The lock is taken through a writable handle on the same
        // directory; the files are read through a read-only one, so a
        // store on read-only media is salvaged too.
        let writes = open(Access::ReadWrite)?;
        let lock = Self::take_lock(&writes, src)?;
        let writes: Option<Arc<dyn Vfs>> = lock.as_ref().map(|_| Arc::new(writes) as _);
        Ok(Salvage {
            fs: Arc::new(reads),
            writes,
            src: src.to_path_buf(),
            _lock: lock,
        })
    }

    /// [`Salvage::lock`] through a given file system: the seam the tests use.
    ///
    /// # Errors
    /// As [`Salvage::lock`].
    #[doc(hidden)]
    pub fn lock_with_fs(fs: Arc<dyn Vfs>, src: &Path) -> Result<Salvage> {
        let lock = Self::take_lock(fs.as_ref(), src)?;
        let writes = lock.as_ref().map(|_| fs.clone());
        Ok(Salvage {
            fs,
            writes,
            src: src.to_path_buf(),
            _lock: lock,
        })
    }

    fn take_lock(fs: &dyn Vfs, src: &Path) -> Result<Option<Box<dyn LockGuard>>> {
        match fs.try_lock(&src.join(LOCK_FILE)) {
            Ok(Some(lock)) => Ok(Some(lock)),
            Ok(None) => Err(Error::Locked {
                path: src.to_path_buf(),
            }),
            // A store this user cannot write to (a read-only mount, a copy
            // owned by someone else) is read without its lock: salvage only
            // reads, and this user's programs cannot open it for writing
            // either.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::io(format!("locking {}", src.display()), e)),
        }
    }

    /// Replays every verifying record into `dst`, with the records recovery
    /// quarantined (FORMAT.md, "Recovery"): those of a segment still in the
    /// log go right after the records that preceded the cut, in the order
    /// they were written; those of a segment compacted away go first, so the
    /// log's later records win over them.
    ///
    /// # Errors
    /// `Io` when the store cannot be listed or read, or `dst` fails.
    pub fn run(&self, dst: &dyn Transfer) -> Result<SalvageReport> {
        let fs = self.fs.as_ref();
        let mut sink = Import {
            fs,
            src: &self.src,
            dst,
        };
        Ok(walk(fs, &self.src, &mut sink)?.0)
    }
}

/// What became of one record that verified.
enum Taken {
    /// Written to the destination.
    Kept,
    /// Refused by it, for this reason: reported as lost.
    Lost(String),
}

/// Where a salvage puts the records that verify.
trait Sink {
    /// Takes `record` (its payload as it was framed, in the file at `path`
    /// at `offset`): `Err` only for a failure that must end the salvage.
    fn take(
        &mut self,
        record: Record<'_>,
        payload: &[u8],
        path: &Path,
        offset: u64,
    ) -> Result<Taken>;
}

/// Replays every verifying record of the store in `src` into `sink`, in
/// the order [`Salvage::run`] describes; returns the report and every file
/// it read, in the order read.
fn walk(fs: &dyn Vfs, src: &Path, sink: &mut dyn Sink) -> Result<(SalvageReport, Vec<PathBuf>)> {
    let mut report = SalvageReport::default();
    let order = segment_order(fs, src, &mut report)?;
    let (quarantined, orphans): (Vec<Quarantined>, Vec<Quarantined>) = quarantined(fs, src)?
        .into_iter()
        .partition(|q| order.iter().any(|(id, _)| *id == q.segment));
    let mut run = Run {
        fs,
        sink,
        report: &mut report,
        read: Vec::new(),
    };
    for q in &orphans {
        run.file(&q.path, q.segment, q.offset, &[])?;
    }
    for (id, path) in order {
        let mine: Vec<&Quarantined> = quarantined.iter().filter(|q| q.segment == id).collect();
        run.file(&path, id, 0, &mine)?;
    }
    let read = run.read;
    Ok((report, read))
}

/// One salvage in progress: where records go and what has been found.
struct Run<'a> {
    fs: &'a dyn Vfs,
    sink: &'a mut dyn Sink,
    report: &'a mut SalvageReport,
    /// The files read so far.
    read: Vec<PathBuf>,
}

/// A copy recovery made of a segment before cutting it.
#[derive(Debug)]
struct Quarantined {
    path: PathBuf,
    segment: u32,
    /// Where the segment was cut: the copy's records from here on were
    /// removed from the log.
    offset: u64,
}

/// The quarantine folder's copies, by segment, cut offset and name.
fn quarantined(fs: &dyn Vfs, src: &Path) -> Result<Vec<Quarantined>> {
    let qdir = src.join(QUARANTINE_DIR);
    let Ok(names) = fs.list(&qdir) else {
        return Ok(Vec::new());
    };
    let mut found: Vec<Quarantined> = names
        .iter()
        .filter_map(|name| {
            let (segment, rest) = name.split_once(".at-")?;
            let (offset, _) = rest.split_once('.')?;
            Some(Quarantined {
                path: qdir.join(name),
                segment: parse_segment_name(segment)?,
                offset: offset.parse().ok()?,
            })
        })
        .collect();
    found.sort_by(|a, b| (a.segment, a.offset, &a.path).cmp(&(b.segment, b.offset, &b.path)));
    Ok(found)
}

impl Run<'_> {
    /// Replays the verifying records of one segment file from offset
    /// `from`; before the first record at or past a quarantined copy's cut,
    /// that copy's records from the cut are replayed.
    fn file(
        &mut self,
        path: &Path,
        id: u32,
        from: u64,
        quarantined: &[&Quarantined],
    ) -> Result<()> {
        let io_err = |e| Error::io(format!("reading {}", path.display()), e);
        let file = self.fs.open(path, false).map_err(io_err)?;
        let len = file.size().map_err(io_err)?;
        self.read.push(path.to_path_buf());
        self.report.segments += usize::from(from == 0);
        let mut header = vec![0u8; SEGMENT_HEADER_LEN.min(len as usize)];
        file.read_exact_at(&mut header, 0).map_err(io_err)?;
        let framing = self.framing(path, id, &header);
        let mut pending = quarantined.iter().peekable();
        let mut scan = Scan::new(file.as_ref(), framing, id, len, from);
        // Where the file's last non-zero byte ends: found once, at the first
        // damage, since it is the same from every earlier offset.
        let mut data_end: Option<u64> = None;
        loop {
            while let Some(q) = pending.next_if(|q| q.offset <= scan.position()) {
                self.file(&q.path, id, q.offset, &[])?;
            }
            match scan.next().map_err(io_err)? {
                Step::End => break,
                Step::Frame {
                    loc,
                    record,
                    payload,
                } => {
                    let offset = u64::from(loc.offset);
                    match record {
                        Err(reason) => self.lost(path, offset, reason.to_string()),
                        Ok(record) => match self.sink.take(record, payload, path, offset)? {
                            Taken::Kept => self.report.records_kept += 1,
                            Taken::Lost(reason) => self.lost(path, offset, reason),
                        },
                    }
                }
                Step::Invalid { offset, reason } => {
                    // Only zeros from here on: the unwritten end of the
                    // segment, not damage.
                    let end = match data_end {
                        Some(end) => end,
                        None => *data_end.insert(scan.nonzero_end(offset).map_err(io_err)?),
                    };
                    if end <= offset {
                        break;
                    }
                    let resume = scan.next_valid_from(offset + 1).map_err(io_err)?;
                    let resume_at = resume.unwrap_or(len);
                    let skipped = resume_at - offset;
                    self.lost(path, offset, format!("{reason}; {skipped} bytes skipped"));
                    scan.seek(resume_at);
                }
            }
        }
        for q in pending {
            self.file(&q.path, id, q.offset, &[])?;
        }
        Ok(())
    }

    /// The framing of a segment from its header; a damaged header may
    /// still hold the version and salt, so they are tried.
    fn framing(&mut self, path: &Path, id: u32, header: &[u8]) -> Framing {
        segment::check_header(header, id).unwrap_or_else(|reason| {
            let word = |at: usize| {
                header
                    .get(at..at + 4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            };
            let (framing, how) = match (word(8), word(16)) {
                (Some(2), Some(salt)) => (Framing::V2 { salt }, "with the salt it names"),
                _ => (Framing::V1, "as format 1"),
            };
            self.lost(
                path,
                0,
                format!("{reason}; the header was skipped, frames read {how}"),
            );
            framing
        })
    }

    fn lost(&mut self, file: &Path, offset: u64, description: String) {
        self.report.lost.push(Problem {
            file: file.to_path_buf(),
            offset,
            description,
        });
    }
}

/// The sink of [`Salvage::run`]: another store, through exact import.
struct Import<'a> {
    /// What the damaged store is read through (its blob files).
    fs: &'a dyn Vfs,
    src: &'a Path,
    dst: &'a dyn Transfer,
}

impl Sink for Import<'_> {
    /// Whatever the target refuses, an I/O error of its own included, is
    /// reported as lost and the salvage goes on.
    fn take(
        &mut self,
        record: Record<'_>,
        _payload: &[u8],
        path: &Path,
        offset: u64,
    ) -> Result<Taken> {
        Ok(match self.apply(record, path, offset) {
            Ok(()) => Taken::Kept,
            Err(e) => Taken::Lost(e.to_string()),
        })
    }
}

impl Import<'_> {
    /// Writes one record of the segment at `path` (its frame at `offset`)
    /// into the target.
    fn apply(&self, record: Record<'_>, path: &Path, offset: u64) -> Result<()> {
        let dst = self.dst;
        match record {
            Record::Collection {
                name,
                created_at,
                indexes,
            } => dst.import_collection(name, &indexes, created_at.unwrap_or(0)),
            Record::DocPut { .. } => {
                let doc = apply::document(&record)
                    .map_err(|reason| Error::corruption(path, offset, reason))?;
                dst.import_document(&doc)
            }
            Record::DocDelete { collection, id } => dst.docs().delete(collection, id).map(drop),
            Record::LeaseSet { .. } => match apply::lease_row(&record) {
                Some(row) => dst.import_lease(&row),
                None => Ok(()),
            },
            Record::LeaseDelete { key } => match LeaseStore::get(dst.leases(), key)? {
                Some(row) => dst.leases().release(key, &row.owner),
                None => Ok(()),
            },
            Record::LeaseReleaseAll { owner } => dst.leases().release_all(owner).map(drop),
            Record::BlobPut {
                id,
                mime,
                size,
                owner,
                created_at,
                hash,
            } => {
                let hash = blob_files::hex(&hash);
                let (_, path) = blob_files::content_path(self.src, &hash);
                let gone = |e| {
                    Error::corruption(&path, 0, format!("the bytes of blob {id} are gone: {e}"))
                };
                let file = self.fs.open(&path, false).map_err(gone)?;
                let len = file.size().map_err(gone)?;
                let mut file = blob_files::FileReader::new(file, len);
                let meta = BlobMeta {
                    id: id.into(),
                    mime: mime.into(),
                    size,
                    owner_id: owner.map(Into::into),
                    created_at,
                    content_hash: None,
                };
                let imported = dst.import_blob(&meta, &mut file)?;
                if imported.content_hash.as_ref().is_some_and(|h| h != &hash) {
                    dst.blobs().delete(id)?;
                    return Err(Error::corruption(
                        &path,
                        0,
                        format!("the bytes of blob {id} no longer match their hash"),
                    ));
                }
                Ok(())
            }
            Record::BlobDelete { id } => dst.blobs().delete(id).map(drop),
            Record::Pad { .. } => Ok(()),
        }
    }
}
