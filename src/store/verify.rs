//! The integrity check: every record's checksum, every blob's bytes against
//! its hash, the index snapshot on disk against the log, and the in-memory
//! index against a fresh replay of the log. It reads only; each problem is
//! reported with its file and offset.

use std::fmt;
use std::path::{Path, PathBuf};

use super::dir::ForeignEntry;
use super::snapshot_file::SNAPSHOT_FILE;
use super::Inner;
use crate::blob_files;
use crate::codec::DecodeError;
use crate::index::apply;
use crate::index::snapshot::{self, Covers};
use crate::index::State;
use crate::log::read::body as read_body;
use crate::log::record::Record;
use crate::log::recovery::records_past;
use crate::log::scan::{Scan, Step};
use crate::log::segment::{self, segment_name, SEGMENT_HEADER_LEN};
use crate::log::segment::{Loc, SegmentFiles};
use crate::{Error, Result};

/// One thing the integrity check found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file it is in.
    pub file: PathBuf,
    /// The byte offset in that file (0 when it concerns the whole file).
    pub offset: u64,
    /// What is wrong.
    pub description: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}",
            self.file.display(),
            self.offset,
            self.description
        )
    }
}

/// What the integrity check looked at and what it found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Segments read.
    pub segments: usize,
    /// Records whose checksum verified.
    pub records: u64,
    /// Blobs whose bytes were checked against their hash.
    pub blobs: u64,
    /// Whether the index snapshot on disk was compared with the log (a
    /// snapshot from before the last compaction is never used, and not
    /// compared).
    pub snapshot_checked: bool,
    /// Everything that did not verify.
    pub problems: Vec<Problem>,
    /// Entries of the store directory the store did not make (links,
    /// stray files and folders): left alone, listed so a user can see them.
    /// They are not damage, and do not make the report unclean.
    pub foreign: Vec<ForeignEntry>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Inner {
    pub(super) fn verify(&self) -> Result<VerifyReport> {
        self.check_open()?;
        // No compaction may remove segments while they are read.
        let _no_compaction = self.compaction.lock();
        let (order, covers, live) = {
            let writer = self.writer.lock();
            let end = writer.position();
            let covers = Covers {
                segment: end.segment,
                offset: end.offset,
                horizon: writer.manifest.horizon,
                base: writer.manifest.base.clone(),
            };
            let live = snapshot::encode(&self.state.read(), &covers);
            (writer.order().to_vec(), covers, live)
        };
        let files = SegmentFiles::default();
        {
            let live_files = self.files.read();
            let mut copy = files.write();
            for id in &order {
                if let Some(file) = live_files.get(id) {
                    copy.insert(*id, file.clone());
                }
            }
        }
        let mut report = VerifyReport {
            foreign: super::dir::foreign_entries(self.fs.as_ref(), &self.dir)?,
            ..VerifyReport::default()
        };
        let saved = self.saved_snapshot(&covers);
        let replayed =
            self.replay_for_check(&order, &files, &covers, saved.as_ref(), &mut report)?;
        if snapshot::encode(&replayed, &covers) != live {
            report.problems.push(Problem {
                file: self.dir.clone(),
                offset: 0,
                description: "the in-memory index differs from a replay of the log".into(),
            });
        }
        let ids: Vec<String> = self
            .state
            .read()
            .blobs
            .entries()
            .map(|(m, _)| m.id.clone())
            .collect();
        for id in ids {
            // Each file is opened under the lock that finds its metadata: a
            // blob deleted meanwhile is skipped, never reported missing.
            let Some((meta, opened)) = self.open_blob_current(&id)? else {
                continue;
            };
            report.blobs += 1;
            match opened.and_then(|opened| blob_files::verify(opened, &meta, Some(&self.verified)))
            {
                Ok(_) => {}
                Err(Error::Corruption {
                    file,
                    offset,
                    reason,
                }) => report.problems.push(Problem {
                    file,
                    offset,
                    description: reason.clone(),
                }),
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    /// The snapshot on disk, if it belongs to the current segment layout.
    fn saved_snapshot(&self, current: &Covers) -> Option<(Vec<u8>, Covers)> {
        let path = self.dir.join(SNAPSHOT_FILE);
        let file = self.fs.open(&path, false).ok()?;
        let len = file.size().ok()?;
        // Checked a window at a time first: a damaged (say huge, sparse)
        // file is never read into memory.
        let log_bytes = self
            .files
            .read()
            .values()
            .filter_map(|s| s.file.size().ok())
            .sum();
        super::snapshot_file::check_before_reading(file.as_ref(), len, log_bytes).ok()?;
        let mut bytes = vec![0u8; len as usize];
        file.read_exact_at(&mut bytes, 0).ok()?;
        let covers = snapshot::covers(&bytes).ok()?;
        (covers.horizon == current.horizon && covers.base == current.base)
            .then_some((bytes, covers))
    }

    /// Replays every record up to `end` into a fresh state, recording bad
    /// records, and compares the saved snapshot when the replay passes its
    /// position.
    fn replay_for_check(
        &self,
        order: &[u32],
        files: &SegmentFiles,
        end: &Covers,
        saved: Option<&(Vec<u8>, Covers)>,
        report: &mut VerifyReport,
    ) -> Result<State> {
        let mut replay = CheckReplay {
            dir: &self.dir,
            files,
            saved,
            report,
            state: State::default(),
            past_end: self.follow.is_some(),
        };
        for &id in order {
            replay.segment(id, end)?;
        }
        Ok(replay.state)
    }
}

/// The integrity check's replay: a fresh state built from the log, with
/// every record that does not verify or apply listed as a problem.
struct CheckReplay<'a> {
    dir: &'a Path,
    files: &'a SegmentFiles,
    saved: Option<&'a (Vec<u8>, Covers)>,
    report: &'a mut VerifyReport,
    state: State,
    /// Whether to look past the view's end for records after damage (a
    /// read-only handle's view ends at the first frame that does not
    /// verify; a writer's log ends at its own end, with zeros after it).
    past_end: bool,
}

impl CheckReplay<'_> {
    fn problem(&mut self, file: PathBuf, offset: u64, description: impl fmt::Display) {
        self.report.problems.push(Problem {
            file,
            offset,
            description: description.to_string(),
        });
    }

    /// Compares the saved snapshot with the state when the replay stands
    /// where the snapshot ends.
    fn check_saved(&mut self, id: u32, pos: u64) {
        let Some((bytes, covers)) = self.saved else {
            return;
        };
        if covers.segment == id && covers.offset == pos {
            self.report.snapshot_checked = true;
            if &snapshot::encode(&self.state, covers) != bytes {
                let description = "the index snapshot differs from a replay of the log it covers";
                self.problem(self.dir.join(SNAPSHOT_FILE), 0, description);
            }
        }
    }

    /// Replays segment `id` (up to `end` when it is the last one).
    fn segment(&mut self, id: u32, end: &Covers) -> Result<()> {
        self.report.segments += 1;
        let path = self.dir.join(segment_name(id));
        let Some(file) = self.files.read().get(&id).cloned() else {
            self.problem(path, 0, "the segment is missing");
            return Ok(());
        };
        let io_err = |e| Error::io(format!("reading {}", path.display()), e);
        let size = file.file.size().map_err(io_err)?;
        let len = if id == end.segment {
            end.offset.min(size)
        } else {
            size
        };
        let mut header = vec![0u8; SEGMENT_HEADER_LEN.min(len as usize)];
        file.file.read_exact_at(&mut header, 0).map_err(io_err)?;
        let framing = match segment::check_header(&header, id) {
            Ok(framing) => framing,
            Err(reason) => {
                self.problem(path, 0, reason);
                return Ok(());
            }
        };
        let mut scan = Scan::new(file.file.as_ref(), framing, id, len, 0);
        loop {
            self.check_saved(id, scan.position());
            match scan.next().map_err(io_err)? {
                Step::End => break,
                Step::Frame { loc, record, .. } => self.record(&path, loc, record),
                Step::Invalid { offset, reason } => {
                    self.problem(path.clone(), offset, reason);
                    match scan.next_valid_from(offset + 1).map_err(io_err)? {
                        Some(next) => scan.seek(next),
                        None => break,
                    }
                }
            }
        }
        self.check_saved(id, scan.position().min(len));
        if self.past_end && id == end.segment {
            let past = records_past(file.file.as_ref(), framing, id, len).map_err(io_err)?;
            if let Some((last, reason)) = past {
                let description = format!(
                    "{reason}, with records after it up to byte {last}: the next writable open cuts the log here and quarantines them"
                );
                self.problem(path, len, description);
            }
        }
        Ok(())
    }

    /// Applies one verified frame's record, listing what does not decode,
    /// apply, or (for a document) parse.
    fn record(&mut self, path: &Path, loc: Loc, record: Result<Record<'_>, DecodeError>) {
        self.report.records += 1;
        let offset = u64::from(loc.offset);
        let record = match record {
            Ok(record) => record,
            Err(reason) => return self.problem(path.to_path_buf(), offset, reason),
        };
        if let (Record::DocPut { .. }, Err(reason)) = (&record, apply::document(&record)) {
            // Replay indexes an unreadable body without its values; a read
            // fails.
            self.problem(path.to_path_buf(), offset, reason);
        }
        let (files, dir) = (self.files, self.dir);
        if let Err(e) = self
            .state
            .replay(record, loc, &|at| read_body(files, dir, at))
        {
            self.problem(path.to_path_buf(), offset, e);
        }
    }
}
