//! Reading one record back from where the index says it is: the frame is
//! verified (checksums bound to the segment's salt and the offset) before
//! its payload is decoded, so a read never returns a torn or foreign record.

use std::path::Path;

use super::record::{Frame, Record};
use super::segment::{segment_name, Loc, SegmentFile, SegmentFiles};
use crate::codec::DecodeError;
use crate::{Error, Result};

/// The `Corruption` error for the record at `loc`.
pub fn corrupt(dir: &Path, loc: Loc, reason: impl std::fmt::Display) -> Error {
    Error::corruption(
        dir.join(segment_name(loc.segment)),
        u64::from(loc.offset),
        reason,
    )
}

/// The `Corruption` error for a location whose segment is not open.
pub fn missing_segment(dir: &Path, loc: Loc) -> Error {
    corrupt(dir, loc, "the segment file is missing")
}

/// The segment that holds `loc`.
///
/// # Errors
/// `Corruption` when no open segment has that id.
pub fn segment_at(files: &SegmentFiles, dir: &Path, loc: Loc) -> Result<SegmentFile> {
    files
        .read()
        .get(&loc.segment)
        .cloned()
        .ok_or_else(|| missing_segment(dir, loc))
}

/// Calls `read` with the record at `loc` of `segment`, its frame verified
/// first. The frame is a slice of the segment's map when it has one (no
/// system call, no copy), otherwise read into a buffer.
///
/// # Errors
/// `Io` when the bytes cannot be read; `Corruption` when the frame does not
/// verify, does not end where the location says, or `read` rejects the
/// record.
pub fn with_record<T>(
    segment: &SegmentFile,
    dir: &Path,
    loc: Loc,
    read: impl FnOnce(Record<'_>) -> std::result::Result<T, DecodeError>,
) -> Result<T> {
    let frame = segment
        .bytes_at(loc)
        .map_err(|e| Error::io(format!("reading segment {}", loc.segment), e))?;
    match segment.framing.read(&frame, 0, u64::from(loc.offset)) {
        Frame::Valid { payload, next } if next == frame.len() => Record::decode(payload)
            .and_then(read)
            .map_err(|reason| corrupt(dir, loc, reason)),
        _ => Err(corrupt(dir, loc, "the document record no longer verifies")),
    }
}

/// The body of the document record at `loc`, its frame verified.
///
/// # Errors
/// As [`with_record`], and `Corruption` when the record is not a document.
pub fn body(files: &SegmentFiles, dir: &Path, loc: Loc) -> Result<Vec<u8>> {
    let segment = segment_at(files, dir, loc)?;
    with_record(&segment, dir, loc, |record| match record {
        Record::DocPut { body, .. } => Ok(body.to_vec()),
        _ => Err(DecodeError::malformed("expected a document record")),
    })
}
