//! The read path: find locations in the state, then read each record from
//! its segment (verified by `log::read`) as a parsed or a raw document.

use std::collections::BTreeMap;
use std::path::Path;

use super::Inner;
use crate::contract::{Document, RawDocument};
use crate::index::apply;
use crate::index::State;
use crate::log::read;
use crate::log::segment::{Loc, SegmentFile};
use crate::Result;

/// How a read turns the document record at a location of a segment into a
/// row: [`document_in`] (parsed) or [`raw_in`] (raw text).
pub(super) type ReadDoc<T> = fn(&SegmentFile, &Path, Loc) -> Result<T>;

/// Reads and verifies the document record at `loc` of `segment`; the body
/// is parsed straight from the verified frame.
pub(super) fn document_in(segment: &SegmentFile, dir: &Path, loc: Loc) -> Result<Document> {
    read::with_record(segment, dir, loc, |record| apply::document(&record))
}

/// Reads and verifies the document record at `loc` of `segment`, its body
/// handed back as the stored JSON text, unparsed.
pub(super) fn raw_in(segment: &SegmentFile, dir: &Path, loc: Loc) -> Result<RawDocument> {
    read::with_record(segment, dir, loc, |record| apply::raw_document(&record))
}

/// Each location with the file that holds it (taken from `files` while
/// the state lock is held).
fn with_files(
    locs: Vec<Loc>,
    files: &BTreeMap<u32, SegmentFile>,
) -> Vec<(Loc, Option<SegmentFile>)> {
    locs.into_iter()
        .map(|loc| (loc, files.get(&loc.segment).cloned()))
        .collect()
}

/// How much work a read on a thread that must not stall may do: see
/// [`LogStore::query_raw_within`](crate::LogStore::query_raw_within).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Index entries walked, plus the comparisons of a sort.
    pub entries: u64,
    /// Rows read (each costs a lookup, a checksum and a row to build,
    /// beside its bytes).
    pub rows: u64,
    /// Bytes of the records read.
    pub bytes: u64,
}

impl Inner {
    /// Reads a document body with the writer lock held (no compaction can
    /// move it meanwhile).
    pub(super) fn read_document(&self, loc: Loc) -> Result<Document> {
        document_in(
            &read::segment_at(&self.files, &self.dir, loc)?,
            &self.dir,
            loc,
        )
    }

    /// Finds documents with `find` and reads each with `read` (parsed or
    /// raw). The file handles are taken under the same state lock as the
    /// locations, so a compaction's switch cannot remove a file between the
    /// two; reading happens after the lock is released, from a handle (and
    /// map) that stays valid even once compaction has unlinked its file.
    pub(super) fn read_found<T>(
        &self,
        find: impl FnOnce(&State) -> Result<Vec<Loc>>,
        read: ReadDoc<T>,
    ) -> Result<Vec<T>> {
        let found = {
            let state = self.state.read();
            let locs = find(&state)?;
            with_files(locs, &self.files.read())
        };
        self.read_each(found, read)
    }

    /// [`Inner::read_found`] for a caller that may not wait: `None`, having
    /// read nothing, when a lock it takes is held by a writer (or one waits
    /// for it), when `find` answers `None`, or when it finds more than
    /// `budget.rows` records or ones holding more than `budget.bytes`.
    pub(super) fn read_found_within<T>(
        &self,
        find: impl FnOnce(&State) -> Result<Option<Vec<Loc>>>,
        budget: Budget,
        read: ReadDoc<T>,
    ) -> Result<Option<Vec<T>>> {
        let found = {
            let Some(state) = self.state.try_read() else {
                return Ok(None);
            };
            let Some(locs) = find(&state)? else {
                return Ok(None);
            };
            let bytes: u64 = locs.iter().map(|loc| u64::from(loc.len)).sum();
            if locs.len() as u64 > budget.rows || bytes > budget.bytes {
                return Ok(None);
            }
            let Some(files) = self.files.try_read() else {
                return Ok(None);
            };
            with_files(locs, &files)
        };
        self.read_each(found, read).map(Some)
    }

    fn read_each<T>(
        &self,
        found: Vec<(Loc, Option<SegmentFile>)>,
        read: ReadDoc<T>,
    ) -> Result<Vec<T>> {
        found
            .into_iter()
            .map(|(loc, file)| {
                let file = file.ok_or_else(|| read::missing_segment(&self.dir, loc))?;
                read(&file, &self.dir, loc)
            })
            .collect()
    }

    /// Finds at most one document with `find` and reads it with `read`: a
    /// get, as [`Inner::read_found`] does it but without collecting.
    pub(super) fn read_one<T>(
        &self,
        find: impl FnOnce(&State) -> Option<Loc>,
        read: ReadDoc<T>,
    ) -> Result<Option<T>> {
        let (loc, file) = {
            let state = self.state.read();
            let Some(loc) = find(&state) else {
                return Ok(None);
            };
            (loc, self.files.read().get(&loc.segment).cloned())
        };
        let file = file.ok_or_else(|| read::missing_segment(&self.dir, loc))?;
        read(&file, &self.dir, loc).map(Some)
    }

    /// [`Inner::read_one`] for a caller that may not wait: `None`, having
    /// read nothing, when a lock it takes is held by a writer (or one waits
    /// for it), or when the record found holds more than `budget.bytes` (or
    /// `budget.rows` is 0); `Some(None)` when there is no such document.
    pub(super) fn read_one_within<T>(
        &self,
        find: impl FnOnce(&State) -> Option<Loc>,
        budget: Budget,
        read: ReadDoc<T>,
    ) -> Result<Option<Option<T>>> {
        let (loc, file) = {
            let Some(state) = self.state.try_read() else {
                return Ok(None);
            };
            let Some(loc) = find(&state) else {
                return Ok(Some(None));
            };
            if budget.rows == 0 || u64::from(loc.len) > budget.bytes {
                return Ok(None);
            }
            let Some(files) = self.files.try_read() else {
                return Ok(None);
            };
            (loc, files.get(&loc.segment).cloned())
        };
        let file = file.ok_or_else(|| read::missing_segment(&self.dir, loc))?;
        read(&file, &self.dir, loc).map(|doc| Some(Some(doc)))
    }
}
