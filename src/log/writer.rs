//! Appending records to the active segment, and rolling to a new one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::io::{VFile, Vfs};
use crate::log::manifest::Manifest;
use crate::log::record::Record;
use crate::log::recovery::{Position, Tail};
use crate::log::segment::{self, Loc, SEGMENT_HEADER_LEN};
use crate::{Error, Result};

/// How far ahead of the tail the active segment is zero-filled at a time.
pub const ZERO_AHEAD: u64 = 1024 * 1024;

/// Every segment file by id, shared between the writer (which adds new ones)
/// and readers (which fetch document bodies).
pub type SegmentFiles = RwLock<BTreeMap<u32, Arc<dyn VFile>>>;

/// The single appender of the log. The store keeps it behind a mutex, so
/// records get their order, and CAS checks their truth, under that lock.
#[derive(Debug)]
pub struct LogWriter {
    fs: Arc<dyn Vfs>,
    dir: PathBuf,
    segment_bytes: u64,
    segment: u32,
    file: Arc<dyn VFile>,
    end: u64,
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
    ) -> Self {
        // Recovery stops at the first zero byte of a reserved tail.
        let zeroed_to = tail.file.size().unwrap_or(tail.end).max(tail.end);
        LogWriter {
            fs,
            dir,
            segment_bytes,
            segment: tail.segment,
            file: tail.file,
            end: tail.end,
            zeroed_to,
            next_id: tail.max_id.max(tail.segment).saturating_add(1),
            order: tail.order,
            seq: 0,
            sealed_bytes: tail.sealed_bytes,
            manifest,
            scratch: Vec::new(),
        }
    }

    /// Appends one record (handing it to the OS) and returns where it went
    /// and its sequence number. Any error leaves the tail in an unknown
    /// state: the caller must poison the store.
    pub fn append(&mut self, record: &Record<'_>, files: &SegmentFiles) -> Result<(Loc, u64)> {
        self.scratch.clear();
        record.encode_frame(&mut self.scratch);
        let frame_len = self.scratch.len() as u64;
        if self.end > SEGMENT_HEADER_LEN as u64 && self.end + frame_len > self.segment_bytes {
            self.roll(files)?;
        }
        self.reserve(frame_len)?;
        let loc = Loc {
            segment: self.segment,
            offset: u32::try_from(self.end)
                .map_err(|_| Error::invalid("segment offset does not fit 32 bits"))?,
            len: u32::try_from(frame_len)
                .map_err(|_| Error::invalid("record does not fit 32 bits"))?,
        };
        self.file
            .write_all_at(&self.scratch, self.end)
            .map_err(|e| Error::io(format!("appending to segment {}", self.segment), e))?;
        self.end += frame_len;
        self.seq += 1;
        Ok((loc, self.seq))
    }

    /// Zero-fills the active segment ahead of the tail (a window at a time,
    /// never past `segment_bytes`) so the next `len` bytes fit below it.
    fn reserve(&mut self, len: u64) -> Result<()> {
        let needed = self.end + len;
        if needed <= self.zeroed_to {
            return Ok(());
        }
        let target = needed.max((self.zeroed_to + ZERO_AHEAD).min(self.segment_bytes));
        let zeros = vec![0u8; (target - self.zeroed_to) as usize];
        self.file
            .write_all_at(&zeros, self.zeroed_to)
            .map_err(|e| Error::io(format!("reserving space in segment {}", self.segment), e))?;
        self.zeroed_to = target;
        Ok(())
    }

    /// Seals the active segment (its reserved zeros cut off, synced, so group
    /// commit only ever has to sync the newest file) and starts the next.
    pub fn roll(&mut self, files: &SegmentFiles) -> Result<()> {
        self.file
            .set_len(self.end)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| Error::io(format!("sealing segment {}", self.segment), e))?;
        let next = self.allocate_id()?;
        let file = segment::create(self.fs.as_ref(), &self.dir, next)?;
        files.write().insert(next, file.clone());
        self.sealed_bytes += self.end;
        self.segment = next;
        self.file = file;
        self.end = SEGMENT_HEADER_LEN as u64;
        self.zeroed_to = self.end;
        self.order.push(next);
        Ok(())
    }

    /// A fresh segment id, for a new segment or a compaction output.
    pub fn allocate_id(&mut self) -> Result<u32> {
        let id = self.next_id;
        self.next_id = id
            .checked_add(1)
            .ok_or_else(|| Error::invalid("segment ids are exhausted"))?;
        Ok(id)
    }

    /// The file a sync must cover and the sequence number it makes durable.
    pub fn sync_point(&self) -> (Arc<dyn VFile>, u64) {
        (self.file.clone(), self.seq)
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
        let mut order = base.to_vec();
        order.extend(self.order.iter().filter(|id| !inputs.contains(id)));
        self.order = order;
        self.sealed_bytes = self.sealed_bytes - input_bytes + base_bytes;
    }
}
