//! Opening the log: scan every segment in order, feed each record to the
//! caller's apply function, and settle the newest segment's tail.
//!
//! The rules, also in FORMAT.md ("Recovery"):
//! - A sealed segment (any but the newest) was synced when it was sealed:
//!   it must verify to its last byte, or open fails with `Corruption`
//!   naming the file and offset.
//! - In the newest segment, the log ends at the first frame that does not
//!   verify. Zeros from there to the end are reserved space. Anything else
//!   there is either debris of writes after the last sync (pages persist
//!   in any order, so valid frames may follow a hole) or damage: the file's
//!   bytes up to the last non-zero one are copied into `quarantine/` first,
//!   then the file is cut there, and the report names the copy. No byte a
//!   user chose can move that decision: frames are checked in order from
//!   the header, and a format-2 frame verifies only under its segment's
//!   secret salt and at its own offset.
//! - A newest segment whose header does not verify and after which only
//!   zeros follow never held a record (its header is synced before any
//!   append): it gets a fresh header.
//! - What is replayed from the newest segment is written again and synced
//!   before open returns, so bytes that only the page cache held (after a
//!   failed sync whose pages the kernel dropped) are durable before the
//!   store acts on them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::codec::DecodeError;
use crate::io::{VFile, Vfs};
use crate::log::manifest::{self, Layout};
use crate::log::record::{pad_frame, pad_len, Framing, Record};
use crate::log::scan::{copy_data, for_each_window, Scan, Step};
use crate::log::segment::{self, Loc, SegmentFile, SegmentFiles, FIRST_APPEND, SEGMENT_HEADER_LEN};
use crate::{Error, Result};

/// The folder, inside the store directory, where recovery keeps the bytes
/// it cut off a segment.
pub const QUARANTINE_DIR: &str = "quarantine";

/// What open found and did to the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files scanned.
    pub segments: usize,
    /// Records replayed.
    pub records: u64,
    /// The torn tail cut off the newest segment, if there was one. A
    /// read-only open cuts nothing: there it is damage with records after
    /// it, which the next writable open will cut (`quarantined` is None).
    pub truncated: Option<TruncatedTail>,
    /// Blob content files no blob referred to (a crash between a file and
    /// its metadata, or between a delete and the file's removal), removed.
    pub orphan_blobs_removed: u64,
    /// Temporary files of interrupted blob puts, removed.
    pub temp_files_removed: u64,
    /// Whether open started from the index snapshot.
    pub snapshot: SnapshotUse,
}

/// What open did with the index snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SnapshotUse {
    /// There was none: every record was replayed.
    #[default]
    Missing,
    /// It was loaded; only the log after it was replayed.
    Loaded,
    /// It was damaged or stale (the reason says which), so every record was
    /// replayed instead.
    Rejected(SnapshotRejection),
}

/// Why open did not use the index snapshot. Each reason falls back to a
/// full replay, which builds the same state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotRejection {
    /// The file could not be read; the operating system's message.
    Unreadable(String),
    /// It does not start with the snapshot magic.
    NoMagic,
    /// It is larger than a snapshot of this log can be.
    TooLarge {
        /// Its size in bytes.
        len: u64,
        /// The most a snapshot of this log can take.
        limit: u64,
    },
    /// Its checksum does not match its bytes.
    Checksum,
    /// Its bytes verify but do not decode; the decoder's message.
    Malformed(String),
    /// It was written before the last compaction.
    BeforeCompaction,
    /// It covers an offset that no sync point has.
    NotASyncPoint {
        /// The segment it names.
        segment: u32,
        /// The offset it names.
        offset: u64,
    },
    /// It covers a segment that is not in the log.
    SegmentMissing {
        /// The segment it names.
        segment: u32,
    },
    /// It covers more of a segment than the segment now holds.
    SegmentShorter {
        /// The segment it names.
        segment: u32,
        /// The bytes it covers.
        covers: u64,
        /// The bytes the segment holds.
        len: u64,
    },
}

impl std::fmt::Display for SnapshotRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotRejection::Unreadable(e) => write!(f, "cannot read it: {e}"),
            SnapshotRejection::NoMagic => write!(f, "it does not start with the snapshot magic"),
            SnapshotRejection::TooLarge { len, limit } => write!(
                f,
                "it is {len} bytes, more than a snapshot of this log can be ({limit})"
            ),
            SnapshotRejection::Checksum => write!(f, "its checksum does not match"),
            SnapshotRejection::Malformed(e) => write!(f, "{e}"),
            SnapshotRejection::BeforeCompaction => {
                write!(f, "it was written before the last compaction")
            }
            SnapshotRejection::NotASyncPoint { segment, offset } => write!(
                f,
                "it covers offset {offset} of segment {segment}, which no sync point has"
            ),
            SnapshotRejection::SegmentMissing { segment } => {
                write!(f, "it covers segment {segment}, which is not in the log")
            }
            SnapshotRejection::SegmentShorter {
                segment,
                covers,
                len,
            } => write!(
                f,
                "it covers {covers} bytes of segment {segment}, which now has {len}"
            ),
        }
    }
}

/// A torn tail removed by recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruncatedTail {
    /// The segment file that was cut.
    pub file: PathBuf,
    /// The new length of the file: the end of its last whole record.
    pub offset: u64,
    /// How many bytes were removed.
    pub bytes_cut: u64,
    /// Why the first removed byte did not start a valid record.
    pub reason: String,
    /// Where the removed bytes were kept (a copy of the segment up to its
    /// last non-zero byte, which `logstore repair` reads), unless they were
    /// only a torn header.
    pub quarantined: Option<PathBuf>,
}

/// Where appends continue after recovery.
#[derive(Debug, Clone)]
pub struct Tail {
    pub segment: u32,
    pub file: SegmentFile,
    pub end: u64,
    /// Every live segment in replay order (the tail's is last).
    pub order: Vec<u32>,
    /// The largest segment id in use or seen.
    pub max_id: u32,
    /// Bytes of every live segment but the newest.
    pub sealed_bytes: u64,
}

/// A point in the log: replay may start there (after an index snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub segment: u32,
    pub offset: u64,
}

/// How open treats what it finds past the log's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The writer's open: cut a torn tail (after its quarantine copy),
    /// restart a segment whose header never reached the disk, write the
    /// replayed tail again, create the first segment of a new store.
    Repair,
    /// A read-only open: the same log, ending at the same frame, with
    /// nothing written (records after that frame are reported, not read:
    /// see [`records_past`]). A newest segment whose header does not
    /// verify yet (a writer creating it right now) is left for a later
    /// refresh: the tail it returns has `end` 0.
    ReadOnly,
}

/// Scans the segments of `layout` in replay order, registering each in
/// `files` and calling `apply` for each record. With `start`, the segments
/// before it are only registered and replay begins at its offset (the
/// caller has checked that `start` lies within the log).
pub fn recover(
    fs: &dyn Vfs,
    dir: &Path,
    layout: &Layout,
    files: &SegmentFiles,
    start: Option<Position>,
    mode: Mode,
    mut apply: impl FnMut(Record<'_>, Loc) -> Result<()>,
) -> Result<(Tail, RecoveryReport)> {
    let mut report = RecoveryReport::default();
    let Some(&newest) = layout.order.last() else {
        if mode == Mode::ReadOnly {
            return Err(Error::NotAStore {
                path: dir.to_path_buf(),
            });
        }
        return Ok((first_segment(fs, dir, layout, files)?, report));
    };
    let mut sealed_bytes = 0;
    let mut skipping = start.is_some();
    let mut end = SEGMENT_HEADER_LEN as u64;
    for &id in &layout.order {
        let is_newest = id == newest;
        let path = dir.join(layout.file_name(id));
        let (file, len, header) = open_segment(fs, &path)?;
        let mut first = SEGMENT_HEADER_LEN as u64;
        if let Some(start) = start.filter(|p| skipping && p.segment == id) {
            skipping = false;
            first = start.offset;
        }
        if !is_newest {
            sealed_bytes += len;
        }
        let framing = match segment::check_header(&header, id) {
            Ok(framing) => framing,
            Err(reason) if is_newest && mode == Mode::ReadOnly => {
                header_never_synced(file.as_ref(), &path, id, len, &reason.to_string())?;
                let tail = Tail {
                    segment: id,
                    file: SegmentFile::new(file, Framing::V1),
                    end: 0,
                    order: layout.order[..layout.order.len() - 1].to_vec(),
                    max_id: layout.max_id,
                    sealed_bytes,
                };
                return Ok((tail, report));
            }
            Err(reason) if is_newest && first == SEGMENT_HEADER_LEN as u64 => {
                let (framing, cut) =
                    restart_segment(file.as_ref(), &path, id, len, reason.to_string())?;
                files.write().insert(id, SegmentFile::new(file, framing));
                end = FIRST_APPEND;
                report.segments += 1;
                report.truncated = Some(cut);
                continue;
            }
            Err(reason) => return Err(Error::corruption(&path, 0, reason)),
        };
        // Every segment but the newest is sealed: recovery only reads it
        // (damage there fails the open; it is never cut), so it is mapped.
        // The newest may still be cut or rewritten below and stays
        // unmapped here; open maps it ahead once recovery is done.
        let segment = SegmentFile::new(file.clone(), framing);
        let segment = if is_newest { segment } else { segment.sealed() };
        files.write().insert(id, segment);
        if skipping {
            continue;
        }
        report.segments += 1;
        let scanned = Scanned {
            path: &path,
            file: file.as_ref(),
            framing,
            id,
            len,
            mode,
        };
        let replayed_to = scanned.replay(fs, dir, first, is_newest, &mut apply, &mut report)?;
        if is_newest {
            end = replayed_to;
        }
    }
    let segment = files
        .read()
        .get(&newest)
        .cloned()
        .ok_or_else(|| Error::corruption(dir, 0, "no newest segment after the scan"))?;
    let from = match start {
        Some(p) if p.segment == newest => p.offset,
        _ => 0,
    };
    if from < end && mode == Mode::Repair {
        end = settle_newest(fs, dir, &segment, newest, from, end)?;
    }
    let tail = Tail {
        segment: newest,
        file: segment,
        end,
        order: layout.order.clone(),
        max_id: layout.max_id,
        sealed_bytes,
    };
    Ok((tail, report))
}

/// A log with no segment yet (a new store): its first segment, created.
fn first_segment(fs: &dyn Vfs, dir: &Path, layout: &Layout, files: &SegmentFiles) -> Result<Tail> {
    let id = layout.max_id.checked_add(1).ok_or_else(|| {
        Error::corruption(
            dir,
            0,
            "segment ids are exhausted (the manifest names the largest)",
        )
    })?;
    let segment = segment::create(fs, dir, id)?;
    files.write().insert(id, segment.clone());
    Ok(Tail {
        segment: id,
        file: segment,
        end: FIRST_APPEND,
        order: vec![id],
        max_id: id,
        sealed_bytes: 0,
    })
}

/// Opens a segment file: the file, its length, and its header bytes (fewer
/// than a header's worth when the file is that short).
fn open_segment(fs: &dyn Vfs, path: &Path) -> Result<(Arc<dyn VFile>, u64, Vec<u8>)> {
    let io_err = |e| Error::io(format!("reading segment {}", path.display()), e);
    let file = fs.open(path, false).map_err(io_err)?;
    let len = file.size().map_err(io_err)?;
    let mut header = vec![0u8; SEGMENT_HEADER_LEN.min(len as usize)];
    file.read_exact_at(&mut header, 0).map_err(io_err)?;
    Ok((file, len, header))
}

/// One segment file being replayed.
struct Scanned<'a> {
    path: &'a Path,
    file: &'a dyn VFile,
    framing: Framing,
    id: u32,
    len: u64,
    mode: Mode,
}

impl Scanned<'_> {
    /// Replays the frames from offset `first` and returns where the log
    /// ends. A sealed segment must verify to its end; the newest one ends
    /// at its first invalid frame, cut there (after a quarantine copy) when
    /// anything but zeros follows.
    fn replay(
        &self,
        fs: &dyn Vfs,
        dir: &Path,
        first: u64,
        is_newest: bool,
        apply: &mut impl FnMut(Record<'_>, Loc) -> Result<()>,
        report: &mut RecoveryReport,
    ) -> Result<u64> {
        let path = self.path;
        let io_err = |e| Error::io(format!("reading segment {}", path.display()), e);
        let mut scan = Scan::new(self.file, self.framing, self.id, self.len, first);
        loop {
            match scan.next().map_err(io_err)? {
                Step::Frame { loc, record, .. } => {
                    let record = record
                        .map_err(|reason| Error::corruption(path, u64::from(loc.offset), reason))?;
                    // A record the state cannot take is the log's fault here,
                    // not the program's: report it where it lies.
                    apply(record, loc).map_err(|e| match e {
                        Error::Internal(reason) => {
                            Error::corruption(path, u64::from(loc.offset), reason)
                        }
                        e => e,
                    })?;
                    report.records += 1;
                }
                Step::End => break,
                Step::Invalid { offset, reason } if !is_newest => {
                    let reason = format!("{reason} in a sealed segment");
                    return Err(Error::corruption(path, offset, reason));
                }
                // The view ends here, where a writable open's log ends too;
                // nothing is cut. A record in progress at the tail is not
                // damage, but records after a frame that does not verify
                // are: a writable open would cut and quarantine them, so the
                // report names them as the tail it would cut.
                Step::Invalid { offset, .. } if self.mode == Mode::ReadOnly => {
                    if let Some((last, reason)) =
                        records_past(self.file, self.framing, self.id, offset).map_err(io_err)?
                    {
                        report.truncated = Some(TruncatedTail {
                            file: path.to_path_buf(),
                            offset,
                            bytes_cut: last - offset,
                            reason: reason.to_string(),
                            quarantined: None,
                        });
                    }
                    scan.seek(offset);
                    break;
                }
                Step::Invalid { offset, reason } => {
                    let last = scan.nonzero_end(offset).map_err(io_err)?;
                    if last > offset {
                        let reason = reason.to_string();
                        let tail = Tail::cut(fs, dir, path, self.file, offset, last, reason)?;
                        report.truncated = Some(tail);
                    }
                    scan.seek(offset);
                    break;
                }
            }
        }
        Ok(scan.position().min(self.len))
    }
}

/// Whether records follow the frame at `offset` of the newest segment
/// `file` (segment `id`), which does not verify: a frame further on that
/// verifies, with the one at `offset` still not verifying when read again
/// after it. The writer appends frames in order, each over zeros, so a
/// frame it wrote at `offset` was whole before any later one began: a read
/// may catch an append in progress (its pages land in any order for a
/// reader), but not once a later frame was seen. What this finds is damage
/// or a crash's debris, which a writable open cuts there and quarantines.
/// Returns the end of the last non-zero byte and why the frame at `offset`
/// does not verify. A file cut meanwhile (a roll drops the zeros past the
/// log, a writable open cuts its tail) has nothing past `offset` to report.
///
/// A format-1 segment is not searched: its frame headers carry no checksum
/// of their own, so each offset would cost a read of the length it
/// declares, and crafted bytes could make the search take the square of
/// the tail. A writable open rolls away from such a segment, and salvage
/// reads past its damage.
pub fn records_past(
    file: &dyn VFile,
    framing: Framing,
    id: u32,
    offset: u64,
) -> std::io::Result<Option<(u64, DecodeError)>> {
    if framing == Framing::V1 {
        return Ok(None);
    }
    let look = || -> std::io::Result<Option<(u64, DecodeError)>> {
        let mut scan = Scan::new(file, framing, id, file.size()?, offset);
        if scan.next_valid_from(offset + 1)?.is_none() {
            return Ok(None);
        }
        // Read again, after the later frame: fresh bytes, not the window.
        let mut again = Scan::new(file, framing, id, file.size()?, offset);
        let reason = match again.next()? {
            Step::Invalid { reason, .. } => reason,
            Step::Frame { .. } | Step::End => return Ok(None),
        };
        Ok(Some((again.nonzero_end(offset)?, reason)))
    };
    match look() {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        found => found,
    }
}

/// The snapshot does not cover the newest segment whole, so the last
/// session may have ended on a failed sync: the segment is padded to a page
/// boundary (no later append writes into a page open made durable), its
/// bytes `from..` are written again and synced, and its directory entry is
/// made anew, before anything rests on them. Returns the new end.
fn settle_newest(
    fs: &dyn Vfs,
    dir: &Path,
    segment: &SegmentFile,
    id: u32,
    from: u64,
    end: u64,
) -> Result<u64> {
    let pad = pad_len(segment.framing, end);
    if pad > 0 {
        let frame = pad_frame(segment.framing, end, pad);
        segment
            .file
            .write_all_at(&frame, end)
            .map_err(|e| Error::io(format!("padding segment {id}"), e))?;
    }
    rewrite(segment.file.as_ref(), from, end + pad)
        .map_err(|e| Error::io(format!("re-syncing the tail of segment {id}"), e))?;
    manifest::relink(fs, dir, &segment::segment_name(id))?;
    Ok(end + pad)
}

/// `Corruption` unless only zeros follow the header of segment `id` (whose
/// header did not verify for `reason`): a header is synced before any
/// record goes in, so records after a bad one mean the header was damaged,
/// not that a crash came while the segment was created.
fn header_never_synced(
    file: &dyn VFile,
    path: &Path,
    id: u32,
    len: u64,
    reason: &str,
) -> Result<()> {
    let header = SEGMENT_HEADER_LEN as u64;
    let last = Scan::new(file, Framing::V1, id, len, 0)
        .nonzero_end(header)
        .map_err(|e| Error::io(format!("reading segment {}", path.display()), e))?;
    if last > header {
        return Err(Error::corruption(
            path,
            0,
            format!("{reason}, and records follow it"),
        ));
    }
    Ok(())
}

/// A newest segment whose header does not verify: if only zeros follow it,
/// a crash came while it was created (its header is synced before any
/// record goes in), and it is started again; otherwise the synced header
/// was damaged, which is corruption.
fn restart_segment(
    file: &dyn VFile,
    path: &Path,
    id: u32,
    len: u64,
    reason: String,
) -> Result<(Framing, TruncatedTail)> {
    let io_err = |e| Error::io(format!("restarting segment {}", path.display()), e);
    header_never_synced(file, path, id, len, &reason)?;
    let header = SEGMENT_HEADER_LEN as u64;
    let framing = segment::write_header(file, id).map_err(io_err)?;
    let cut = TruncatedTail {
        file: path.to_path_buf(),
        offset: header,
        bytes_cut: len.saturating_sub(header),
        reason,
        quarantined: None,
    };
    Ok((framing, cut))
}

impl Tail {
    /// Ends the newest segment at `offset`: its bytes up to `last` (the end
    /// of its last non-zero byte) are first copied into the quarantine
    /// folder and synced, then the file is cut and synced.
    fn cut(
        fs: &dyn Vfs,
        dir: &Path,
        path: &Path,
        file: &dyn VFile,
        offset: u64,
        last: u64,
        reason: String,
    ) -> Result<TruncatedTail> {
        let copy = quarantine(fs, dir, path, file, offset, last)?;
        file.set_len(offset)
            .and_then(|()| file.sync_data())
            .map_err(|e| Error::io(format!("cutting the tail of {}", path.display()), e))?;
        Ok(TruncatedTail {
            file: path.to_path_buf(),
            offset,
            bytes_cut: last - offset,
            reason,
            quarantined: Some(copy),
        })
    }
}

/// Copies bytes `0..last` of the segment at `path` to a new file in the
/// quarantine folder, named by the segment and the cut offset, and makes
/// the copy durable. The segment's holes stay holes in the copy.
fn quarantine(
    fs: &dyn Vfs,
    dir: &Path,
    path: &Path,
    file: &dyn VFile,
    offset: u64,
    last: u64,
) -> Result<PathBuf> {
    let qdir = dir.join(QUARANTINE_DIR);
    let io_err = |e| Error::io(format!("quarantining the tail of {}", path.display()), e);
    crate::io::create_dir_durable(fs, &qdir).map_err(io_err)?;
    let stem = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("segment");
    // A new name, created exclusively: never a file (or a link) that is
    // already there.
    let mut n = 0u32;
    let (target, copy) = loop {
        let target = qdir.join(format!("{stem}.at-{offset:020}.{n}"));
        match fs.create_new(&target) {
            Ok(copy) => break (target, copy),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
            Err(e) => return Err(io_err(e)),
        }
    };
    copy_data(file, copy.as_ref(), last)
        .and_then(|()| fs.sync_dir(&qdir))
        .map_err(io_err)?;
    Ok(target)
}

/// Writes bytes `from..to` of `file` again, as they read now, and syncs:
/// pages the kernel kept after a failed writeback are dirtied anew, so the
/// sync really puts them on disk.
fn rewrite(file: &dyn VFile, from: u64, to: u64) -> std::io::Result<()> {
    for_each_window(file, from, to, |at, bytes| file.write_all_at(bytes, at))?;
    file.sync_data()
}
