//! Appending records to the active segment, and rolling to a new one.

use std::path::PathBuf;
use std::sync::Arc;

use crate::io::Vfs;
use crate::log::commit::GroupCommit;
use crate::log::manifest::Manifest;
use crate::log::record::{pad_frame, pad_len, Record, PAGE};
use crate::log::recovery::{Position, Tail};
use crate::log::segment::{self, Loc, SegmentFile, SegmentFiles, FIRST_APPEND};
use crate::{Blocked, Error, Result};

/// How far ahead of the tail the active segment is zero-filled at a time.
pub const ZERO_AHEAD: u64 = 1024 * 1024;

/// The single appender of the log. The store keeps it behind a mutex, so
/// records get their order, and CAS checks their truth, under that lock.
#[derive(Debug)]
pub struct LogWriter {
    fs: Arc<dyn Vfs>,
    dir: PathBuf,
    segment_bytes: u64,
    segment: u32,
    file: SegmentFile,
    end: u64,
    /// Every sync of the log goes through its gate.
    commit: Arc<GroupCommit>,
    /// Every live segment in replay order; the active one is last.
    order: Vec<u32>,
    /// The next unused segment id (shared with compaction's outputs).
    next_id: u32,
    /// The active segment is zero-filled up to here: appends below it do
    /// not change the file's size, so their `fdatasync` flushes data alone
    /// and no file-system metadata.
    zeroed_to: u64,
    /// Records appended since open; group commit tracks durability in it.
    seq: u64,
    /// Whether this writer wrote to the active segment (a record, padding,
    /// reserved zeros) since its last [`LogWriter::sync_all`] or roll, or
    /// since open, whose recovery synced what it replayed. Syncs that group
    /// commit makes outside the writer do not clear it.
    unsynced: bool,
    /// Bytes of sealed segments, for the dead-byte share.
    sealed_bytes: u64,
    /// The manifest on disk (replaced by each compaction's commit).
    pub manifest: Manifest,
    scratch: Vec<u8>,
}

impl LogWriter {
    /// A writer that appends after what recovery found.
    pub fn new(
        fs: Arc<dyn Vfs>,
        dir: PathBuf,
        segment_bytes: u64,
        tail: Tail,
        manifest: Manifest,
        commit: Arc<GroupCommit>,
    ) -> Self {
        // Recovery stops at the first zero byte of a reserved tail.
        let zeroed_to = tail.file.file.size().unwrap_or(tail.end).max(tail.end);
        LogWriter {
            fs,
            dir,
            segment_bytes,
            segment: tail.segment,
            file: tail.file,
            end: tail.end,
            commit,
            zeroed_to,
            next_id: tail.max_id.max(tail.segment).saturating_add(1),
            order: tail.order,
            seq: 0,
            unsynced: false,
            sealed_bytes: tail.sealed_bytes,
            manifest,
            scratch: Vec::new(),
        }
    }

    /// Appends one record (handing it to the OS) and returns where it went
    /// and its sequence number. A record that does not fit the active
    /// segment first rolls to a new one (two syncs), and one past the
    /// zeros reserved ahead first writes the next window of them; with
    /// `may_wait` false either is `Error::WouldBlock` (`Roll` or `Reserve`)
    /// with nothing written.
    /// Any other error leaves the tail in an unknown state: the caller must
    /// poison the store.
    pub fn append(
        &mut self,
        record: &Record<'_>,
        files: &SegmentFiles,
        may_wait: bool,
    ) -> Result<(Loc, u64)> {
        self.encode(record);
        let frame_len = self.scratch.len() as u64;
        // A segment takes at least one record, however large.
        let has_records = self.end > FIRST_APPEND;
        if has_records && self.end + frame_len > self.segment_bytes {
            if !may_wait {
                return Err(Error::WouldBlock(Blocked::Roll));
            }
            self.roll(files)?;
            // A new segment may frame differently than an old-format one.
            self.encode(record);
        }
        let frame_len = self.scratch.len() as u64;
        if !may_wait && self.end + frame_len > self.zeroed_to {
            return Err(Error::WouldBlock(Blocked::Reserve));
        }
        self.file.framing.seal(&mut self.scratch, self.end);
        self.reserve(frame_len)?;
        debug_assert!(
            self.end + frame_len <= self.zeroed_to,
            "a record is written only over zeros reserved for it"
        );
        let loc = Loc {
            segment: self.segment,
            offset: u32::try_from(self.end)
                .map_err(|_| Error::Internal("a segment offset does not fit 32 bits".into()))?,
            len: u32::try_from(frame_len)
                .map_err(|_| Error::Internal("a record does not fit 32 bits".into()))?,
        };
        self.unsynced = true;
        self.file
            .file
            .write_all_at(&self.scratch, self.end)
            .map_err(|e| Error::io(format!("appending to segment {}", self.segment), e))?;
        debug_assert!(
            self.end == FIRST_APPEND || self.end + frame_len <= self.segment_bytes,
            "only a segment's first record may pass its size"
        );
        self.end += frame_len;
        self.file.written_to(self.end);
        self.seq += 1;
        Ok((loc, self.seq))
    }

    /// Encodes `record` into the scratch buffer behind room for the active
    /// segment's frame header (filled in once the offset is known).
    fn encode(&mut self, record: &Record<'_>) {
        self.scratch.clear();
        self.scratch.resize(self.file.framing.header_len(), 0);
        record.encode_payload(&mut self.scratch);
    }

    /// Zero-fills the active segment ahead of the tail (a window at a time,
    /// never past `segment_bytes`) so the next `len` bytes fit below it.
    fn reserve(&mut self, len: u64) -> Result<()> {
        let needed = self.end + len;
        if needed <= self.zeroed_to {
            return Ok(());
        }
        let target = needed.max((self.zeroed_to + ZERO_AHEAD).min(self.segment_bytes));
        debug_assert!(target >= needed && target > self.zeroed_to);
        let zeros = vec![0u8; (target - self.zeroed_to) as usize];
        self.unsynced = true;
        self.file
            .file
            .write_all_at(&zeros, self.zeroed_to)
            .map_err(|e| Error::io(format!("reserving space in segment {}", self.segment), e))?;
        self.zeroed_to = target;
        Ok(())
    }

    /// Seals the active segment (its reserved zeros cut off, synced, so group
    /// commit only ever has to sync the newest file) and starts the next.
    /// Both syncs run through the commit gate: if either fails, no waiting
    /// writer is acknowledged afterwards.
    pub fn roll(&mut self, files: &SegmentFiles) -> Result<()> {
        self.pad()?;
        let (file, end, id, seq) = (&self.file.file, self.end, self.segment, self.seq);
        self.commit.sync(|| {
            file.set_len(end)
                .and_then(|()| file.sync_data())
                .map_err(|e| Error::io(format!("sealing segment {id}"), e))
        })?;
        self.commit.advance(seq);
        let next = self.allocate_id()?;
        let segment = self
            .commit
            .sync(|| segment::create(self.fs.as_ref(), &self.dir, next))?
            .active(self.segment_bytes, FIRST_APPEND);
        {
            // The old segment is at its final length and synced, and no
            // append goes to it again: from here on it is read through a map.
            let mut files = files.write();
            files.insert(id, self.file.clone().sealed());
            files.insert(next, segment.clone());
        }
        self.sealed_bytes += self.end;
        self.segment = next;
        self.file = segment;
        self.end = FIRST_APPEND;
        self.zeroed_to = self.end;
        self.order.push(next);
        self.unsynced = false;
        Ok(())
    }

    /// Maps the active segment ahead for reads, once open has finished
    /// everything that may still cut or rewrite it (recovery's tail repair,
    /// the roll out of an old-format segment).
    pub fn map_active(&mut self, files: &SegmentFiles) {
        self.file = self.file.clone().active(self.segment_bytes, self.end);
        files.write().insert(self.segment, self.file.clone());
    }

    /// A read-only handle's view moved on: its records now end at `end` of
    /// segment `segment` (`file`, mapped ahead), which is the one it had or
    /// a newer one the writer rolled to. A segment left behind is sealed:
    /// the writer cut it to its final length before it created the next,
    /// so it is mapped whole from here on.
    pub fn follow(&mut self, files: &SegmentFiles, segment: u32, file: SegmentFile, end: u64) {
        debug_assert!(
            segment > self.segment || (segment == self.segment && end >= self.end),
            "a reader's view only moves forward"
        );
        if segment != self.segment {
            let mut map = files.write();
            if self.end > 0 {
                map.insert(self.segment, self.file.clone().sealed());
                self.sealed_bytes += self.end;
            }
            map.insert(segment, file.clone());
            self.order.push(segment);
            self.segment = segment;
            self.next_id = self.next_id.max(segment.saturating_add(1));
        } else if self.end == 0 {
            files.write().insert(segment, file.clone());
            self.order.push(segment);
        }
        self.file = file;
        self.end = end;
        self.file.written_to(end);
    }

    /// A fresh segment id, for a new segment or a compaction output.
    pub fn allocate_id(&mut self) -> Result<u32> {
        let id = self.next_id;
        self.next_id = id
            .checked_add(1)
            .ok_or_else(|| Error::Internal("the u32 segment ids are exhausted".into()))?;
        Ok(id)
    }

    /// Pads the log to the next page boundary with one padding frame, so the
    /// sync that follows leaves every page it covers whole: no later append
    /// writes into a page that holds synced bytes (which a power loss during
    /// that page's writeback could tear or zero).
    fn pad(&mut self) -> Result<()> {
        let total = pad_len(self.file.framing, self.end);
        if total == 0 {
            return Ok(());
        }
        let frame = pad_frame(self.file.framing, self.end, total);
        self.unsynced = true;
        // No zeros are reserved ahead for padding alone.
        self.file
            .file
            .write_all_at(&frame, self.end)
            .map_err(|e| Error::io(format!("padding segment {}", self.segment), e))?;
        self.end += total;
        debug_assert_eq!(self.end % PAGE, 0, "padding ends on a page boundary");
        self.zeroed_to = self.zeroed_to.max(self.end);
        Ok(())
    }

    /// Pads the log to a page boundary and returns the file a sync must
    /// cover and the sequence number it makes durable. Any error leaves the
    /// tail unknown: the caller must poison the store.
    pub fn sync_point(&mut self) -> Result<(Arc<dyn crate::io::VFile>, u64)> {
        self.pad()?;
        Ok((self.file.file.clone(), self.seq))
    }

    /// Pads and syncs the active segment through the commit gate, with the
    /// writer lock held: every record appended so far is then durable. When
    /// this writer wrote nothing to the segment since its last sync here
    /// (or since open), there is nothing to make durable and nothing is
    /// synced; a poisoned log is still refused.
    pub fn sync_all(&mut self) -> Result<()> {
        if !self.unsynced {
            return self.commit.sync(|| Ok(()));
        }
        self.pad()?;
        let file = &self.file.file;
        self.commit.sync(|| {
            file.sync_data()
                .map_err(|e| Error::io(format!("syncing segment {}", self.segment), e))
        })?;
        self.commit.advance(self.seq);
        self.unsynced = false;
        Ok(())
    }

    /// The active segment.
    pub fn active(&self) -> &SegmentFile {
        &self.file
    }

    /// Whether the active segment is of an older format than this build
    /// writes (open then seals it and starts a new one).
    pub fn active_is_old_format(&self) -> bool {
        self.file.framing == crate::log::record::Framing::V1
    }

    /// The sequence number of the last record appended since open (0 for
    /// none).
    pub fn last_seq(&self) -> u64 {
        self.seq
    }

    /// The end of the log: where the next record will go.
    pub fn position(&self) -> Position {
        Position {
            segment: self.segment,
            offset: self.end,
        }
    }

    /// Every live segment in replay order (the active one last).
    pub fn order(&self) -> &[u32] {
        &self.order
    }

    /// Bytes in all live segments, headers included.
    pub fn total_bytes(&self) -> u64 {
        self.sealed_bytes + self.end
    }

    /// After a compaction commits: its outputs `base` replace its sealed
    /// `inputs` at the front of the replay order.
    pub fn replace_sealed(
        &mut self,
        inputs: &[u32],
        input_bytes: u64,
        base: &[u32],
        base_bytes: u64,
    ) {
        debug_assert!(
            inputs
                .iter()
                .all(|id| self.order.contains(id) && *id != self.segment),
            "a compaction's inputs are sealed live segments"
        );
        debug_assert!(input_bytes <= self.sealed_bytes);
        let mut order = base.to_vec();
        order.extend(self.order.iter().filter(|id| !inputs.contains(id)));
        self.order = order;
        self.sealed_bytes = self.sealed_bytes - input_bytes + base_bytes;
    }
}
