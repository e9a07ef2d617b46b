//! Opening the log: scan every segment in order, feed each record to the
//! caller's apply function, and cut a torn tail off the newest segment.
//!
//! The rules, also in FORMAT.md:
//! - A sealed segment (any but the newest) must verify to its last byte.
//! - In the newest segment, an invalid frame with no valid frame anywhere
//!   after it is a torn tail (a crash during an append): the file is cut
//!   back to the last whole record, and the cut is reported.
//! - An invalid frame followed by a valid one is damage, not a torn write:
//!   `Error::Corruption` with the file and offset, and nothing is changed.
//! - Zero bytes from some offset to the end of the newest segment are space
//!   the writer reserved, not a torn record: appends resume at that offset.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::io::{VFile, Vfs};
use crate::log::manifest::Layout;
use crate::log::record::{read_frame, Frame, Record};
use crate::log::segment::{self, Loc, SEGMENT_HEADER_LEN};
use crate::log::writer::SegmentFiles;
use crate::{Error, Result};

/// What open found and did to the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files scanned.
    pub segments: usize,
    /// Records replayed.
    pub records: u64,
    /// The torn tail cut off the newest segment, if there was one.
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
    Rejected(String),
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
}

/// Where appends continue after recovery.
#[derive(Debug)]
pub struct Tail {
    pub segment: u32,
    pub file: Arc<dyn VFile>,
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
    mut apply: impl FnMut(Record<'_>, Loc) -> Result<()>,
) -> Result<(Tail, RecoveryReport)> {
    let mut report = RecoveryReport::default();
    let Some(&newest) = layout.order.last() else {
        let id = layout.max_id + 1;
        let file = segment::create(fs, dir, id)?;
        files.write().insert(id, file.clone());
        let tail = Tail {
            segment: id,
            file,
            end: SEGMENT_HEADER_LEN as u64,
            order: vec![id],
            max_id: id,
            sealed_bytes: 0,
        };
        return Ok((tail, report));
    };
    let mut tail = None;
    let mut skipping = start.is_some();
    let mut sealed_bytes = 0;
    for &id in &layout.order {
        let path = dir.join(segment::segment_name(id));
        let context = || format!("reading segment {}", path.display());
        let file = fs.open(&path, false).map_err(|e| Error::io(context(), e))?;
        if id != newest {
            sealed_bytes += file.size().map_err(|e| Error::io(context(), e))?;
        }
        let mut first = SEGMENT_HEADER_LEN;
        if let Some(start) = start.filter(|_| skipping) {
            if start.segment != id {
                files.write().insert(id, file);
                continue;
            }
            skipping = false;
            first = usize::try_from(start.offset).unwrap_or(usize::MAX);
        }
        let len = file.size().map_err(|e| Error::io(context(), e))?;
        let mut image =
            vec![
                0u8;
                usize::try_from(len).map_err(|_| Error::corruption(&path, 0, "file too large"))?
            ];
        // Only the header and what follows the start position are read: the
        // records before it are covered by the snapshot. (The zeroed
        // allocation costs nothing for pages never touched.)
        let from = first.min(image.len());
        let header = SEGMENT_HEADER_LEN.min(image.len());
        file.read_exact_at(&mut image[..header], 0)
            .and_then(|()| {
                file.read_exact_at(&mut image[from.max(header)..], from.max(header) as u64)
            })
            .map_err(|e| Error::io(context(), e))?;
        files.write().insert(id, file.clone());
        report.segments += 1;
        let is_newest = id == newest;

        if let Err(reason) = segment::check_header(&image, id) {
            // A crash while the newest segment was being created leaves a
            // short or zeroed header and no records: start it again.
            if is_newest
                && from <= SEGMENT_HEADER_LEN
                && (image.len() < SEGMENT_HEADER_LEN || image.iter().all(|&b| b == 0))
            {
                segment::write_header(file.as_ref(), id).map_err(|e| Error::io(context(), e))?;
                report.truncated = Some(TruncatedTail {
                    file: path.clone(),
                    offset: SEGMENT_HEADER_LEN as u64,
                    bytes_cut: len,
                    reason,
                });
                tail = Some(Tail {
                    segment: id,
                    file,
                    end: SEGMENT_HEADER_LEN as u64,
                    order: layout.order.clone(),
                    max_id: layout.max_id,
                    sealed_bytes,
                });
                continue;
            }
            return Err(Error::corruption(&path, 0, reason));
        }

        let mut pos = first.max(SEGMENT_HEADER_LEN);
        while pos < image.len() {
            match read_frame(&image, pos) {
                Frame::Valid { payload, next } => {
                    let record = Record::decode(payload)
                        .map_err(|reason| Error::corruption(&path, pos as u64, reason))?;
                    let loc = Loc {
                        segment: id,
                        offset: pos as u32,
                        len: (next - pos) as u32,
                    };
                    apply(record, loc)?;
                    report.records += 1;
                    pos = next;
                }
                Frame::Invalid(reason) => {
                    if !is_newest {
                        return Err(Error::corruption(
                            &path,
                            pos as u64,
                            format!("{reason} in a sealed segment"),
                        ));
                    }
                    if image[pos..].iter().all(|&b| b == 0) {
                        // The zeroed space the writer reserves ahead of the
                        // tail (or a file a crash extended with zeros):
                        // nothing was written there, so nothing is cut.
                        break;
                    }
                    if let Some(later) = next_valid_frame(&image, pos + 1) {
                        return Err(Error::corruption(
                            &path,
                            pos as u64,
                            format!("{reason}, yet a valid record follows at offset {later}, so this is damage rather than a torn write"),
                        ));
                    }
                    file.set_len(pos as u64)
                        .and_then(|()| file.sync_data())
                        .map_err(|e| {
                            Error::io(format!("cutting the torn tail of {}", path.display()), e)
                        })?;
                    report.truncated = Some(TruncatedTail {
                        file: path.clone(),
                        offset: pos as u64,
                        bytes_cut: len - pos as u64,
                        reason,
                    });
                    break;
                }
            }
        }
        if is_newest {
            let end = (pos as u64).min(len);
            tail = Some(Tail {
                segment: id,
                file,
                end,
                order: layout.order.clone(),
                max_id: layout.max_id,
                sealed_bytes,
            });
        }
    }
    let tail = tail.ok_or_else(|| Error::corruption(dir, 0, "no newest segment after the scan"))?;
    Ok((tail, report))
}

/// The offset of the first frame at or after `from` that verifies and
/// decodes. Most offsets fail on the length check before any checksum is
/// computed, so this stays cheap on zeros and random bytes.
pub(crate) fn next_valid_frame(image: &[u8], from: usize) -> Option<usize> {
    (from..image.len()).find(|&pos| match read_frame(image, pos) {
        Frame::Valid { payload, .. } => Record::decode(payload).is_ok(),
        Frame::Invalid(_) => false,
    })
}
