//! Appending records to the active segment, and rolling to a new one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::io::{VFile, Vfs};
use crate::log::record::Record;
use crate::log::segment::{self, Loc, SEGMENT_HEADER_LEN};
use crate::{Error, Result};

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
    /// Records appended since open; group commit tracks durability in it.
    seq: u64,
    scratch: Vec<u8>,
}

impl LogWriter {
    /// A writer that appends to `file` (segment `segment`) at offset `end`.
    pub fn new(
        fs: Arc<dyn Vfs>,
        dir: PathBuf,
        segment_bytes: u64,
        segment: u32,
        file: Arc<dyn VFile>,
        end: u64,
    ) -> Self {
        LogWriter {
            fs,
            dir,
            segment_bytes,
            segment,
            file,
            end,
            seq: 0,
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

    /// Seals the active segment (synced, so group commit only ever has to
    /// sync the newest file) and starts the next one.
    fn roll(&mut self, files: &SegmentFiles) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| Error::io(format!("syncing sealed segment {}", self.segment), e))?;
        let next = self
            .segment
            .checked_add(1)
            .ok_or_else(|| Error::invalid("segment ids are exhausted"))?;
        let file = segment::create(self.fs.as_ref(), &self.dir, next)?;
        files.write().insert(next, file.clone());
        self.segment = next;
        self.file = file;
        self.end = SEGMENT_HEADER_LEN as u64;
        Ok(())
    }

    /// The file a sync must cover and the sequence number it makes durable.
    pub fn sync_point(&self) -> (Arc<dyn VFile>, u64) {
        (self.file.clone(), self.seq)
    }
}
