//! The index snapshot file: written at compaction and at close, read at open
//! so that only the log after it is replayed. A missing, damaged or stale
//! snapshot is reported and open falls back to a full replay, which builds
//! the same state.

use std::path::Path;

use super::Inner;
use crate::codec::mask;
use crate::index::snapshot::{self, Covers, SNAPSHOT_MAGIC};
use crate::index::State;
use crate::io::Vfs;
use crate::log::manifest::Layout;
use crate::log::record::PAGE;
use crate::log::recovery::{Position, SnapshotRejection as Rejected, SnapshotUse};
use crate::log::scan::for_each_window;
use crate::log::segment::{FIRST_APPEND, SEGMENT_HEADER_LEN};
use crate::log::writer::LogWriter;
use crate::{Error, Result};

/// The snapshot's file name.
pub const SNAPSHOT_FILE: &str = "SNAPSHOT";

/// Loads the snapshot if it matches `layout`; otherwise an empty state and
/// no start position (a full replay), with the reason.
pub fn load(fs: &dyn Vfs, dir: &Path, layout: &Layout) -> (State, Option<Position>, SnapshotUse) {
    match try_load(fs, dir, layout) {
        Ok(Some((state, position))) => (state, Some(position), SnapshotUse::Loaded),
        Ok(None) => (State::default(), None, SnapshotUse::Missing),
        Err(reason) => (State::default(), None, SnapshotUse::Rejected(reason)),
    }
}

fn try_load(
    fs: &dyn Vfs,
    dir: &Path,
    layout: &Layout,
) -> std::result::Result<Option<(State, Position)>, Rejected> {
    let path = dir.join(SNAPSHOT_FILE);
    let Ok(file) = fs.open(&path, false) else {
        return Ok(None);
    };
    let len = file.size().map_err(unreadable)?;
    let log_bytes = layout
        .order
        .iter()
        .filter_map(|id| {
            fs.open(&dir.join(layout.file_name(*id)), false)
                .and_then(|f| f.size())
                .ok()
        })
        .sum();
    let bytes = snapshot_bytes(file.as_ref(), len, log_bytes)?;
    let in_log = |id: u32| layout.order.contains(&id);
    let opened = snapshot::open(&bytes).map_err(|e| Rejected::Malformed(e.to_string()))?;
    let covers = &opened.covers;
    if covers.horizon != layout.manifest.horizon || covers.base != layout.manifest.base {
        return Err(Rejected::BeforeCompaction);
    }
    // Snapshots are written only at a sync point, which is page-aligned
    // past a segment's header page: any other offset could fall inside a
    // frame, and replay from it would cut valid records as a torn tail.
    if covers.offset < FIRST_APPEND || covers.offset % PAGE != 0 {
        return Err(Rejected::NotASyncPoint {
            segment: covers.segment,
            offset: covers.offset,
        });
    }
    if !in_log(covers.segment) || covers.offset < SEGMENT_HEADER_LEN as u64 {
        return Err(Rejected::SegmentMissing {
            segment: covers.segment,
        });
    }
    let segment = dir.join(layout.file_name(covers.segment));
    let segment_len = fs
        .open(&segment, false)
        .and_then(|f| f.size())
        .map_err(|e| Rejected::Unreadable(format!("{}: {e}", segment.display())))?;
    if segment_len < covers.offset {
        return Err(Rejected::SegmentShorter {
            segment: covers.segment,
            covers: covers.offset,
            len: segment_len,
        });
    }
    let (state, covers) = opened
        .decode(in_log)
        .map_err(|e| Rejected::Malformed(e.to_string()))?;
    let position = Position {
        segment: covers.segment,
        offset: covers.offset,
    };
    Ok(Some((state, position)))
}

/// A snapshot's bytes: mapped from the real file system, read into memory
/// from the others.
enum Bytes {
    Mapped(std::sync::Arc<memmap2::Mmap>),
    Read(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(map) => map,
            Bytes::Read(bytes) => bytes,
        }
    }
}

/// The snapshot's bytes after the checks that keep a damaged file from
/// costing memory or time. A mapped file is checked for its magic and size
/// only: its checksum is verified once, by the decoder, with no copy and
/// no heap behind it. A file that cannot be mapped is checked whole, a
/// window at a time, before it is read into memory.
fn snapshot_bytes(
    file: &dyn crate::io::VFile,
    len: u64,
    log_bytes: u64,
) -> std::result::Result<Bytes, Rejected> {
    if let Ok(Some(map)) = file.map() {
        if map.len() as u64 == len {
            check_magic_and_size(file, len, log_bytes)?;
            return Ok(Bytes::Mapped(map));
        }
    }
    check_before_reading(file, len, log_bytes)?;
    let too_large = |_| Rejected::TooLarge {
        len,
        limit: usize::MAX as u64,
    };
    let mut bytes = vec![0u8; usize::try_from(len).map_err(too_large)?];
    file.read_exact_at(&mut bytes, 0).map_err(unreadable)?;
    Ok(Bytes::Read(bytes))
}

/// Checks a snapshot file of `len` bytes before it is read whole, so a
/// damaged one (a huge sparse file, say) is never held in memory: it must
/// start with the magic, be no larger than a snapshot of `log_bytes` of
/// log can be (a snapshot holds less per record than the record: ids,
/// fixed fields, a u32 per index field, each distinct value once; four
/// times the log plus 1 MiB is a generous bound), and its checksum,
/// computed a window at a time, must verify.
pub(super) fn check_before_reading(
    file: &dyn crate::io::VFile,
    len: u64,
    log_bytes: u64,
) -> std::result::Result<(), Rejected> {
    check_magic_and_size(file, len, log_bytes)?;
    if !checksum_verifies(file, len).map_err(unreadable)? {
        return Err(Rejected::Checksum);
    }
    Ok(())
}

/// The first checks: the magic, and a size no larger than a snapshot of
/// `log_bytes` of log can be.
fn check_magic_and_size(
    file: &dyn crate::io::VFile,
    len: u64,
    log_bytes: u64,
) -> std::result::Result<(), Rejected> {
    let mut magic = [0u8; 8];
    if len < 8 || file.read_exact_at(&mut magic, 0).is_err() || magic != SNAPSHOT_MAGIC {
        return Err(Rejected::NoMagic);
    }
    let limit = log_bytes.saturating_mul(4).saturating_add(1 << 20);
    if len > limit {
        return Err(Rejected::TooLarge { len, limit });
    }
    Ok(())
}

fn unreadable(e: std::io::Error) -> Rejected {
    Rejected::Unreadable(e.to_string())
}

/// Whether the snapshot's last four bytes are the masked CRC of the rest,
/// computed a window at a time.
fn checksum_verifies(file: &dyn crate::io::VFile, len: u64) -> std::io::Result<bool> {
    if len < 4 {
        return Ok(false);
    }
    let body = len - 4;
    let mut hasher = crc32fast::Hasher::new();
    for_each_window(file, 0, body, |_, bytes| {
        hasher.update(bytes);
        Ok(())
    })?;
    let mut stored = [0u8; 4];
    file.read_exact_at(&mut stored, body)?;
    Ok(mask(hasher.finalize()) == u32::from_le_bytes(stored))
}

impl Inner {
    /// Writes a snapshot of the state as of the writer's position, unless
    /// the one on disk already covers it. Call with the writer lock held, so
    /// no record lands between the state and the position. The log is
    /// synced first (through the commit gate), so a snapshot never covers a
    /// record that is not durable, and a poisoned store writes none.
    pub(super) fn write_snapshot(&self, writer: &mut LogWriter) -> Result<()> {
        if self.poisoned.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Error::Poisoned);
        }
        writer.sync_all().inspect_err(|_| self.poison())?;
        let position = writer.position();
        let covers = Covers {
            segment: position.segment,
            offset: position.offset,
            horizon: writer.manifest.horizon,
            base: writer.manifest.base.clone(),
        };
        let mut current = self.snapshot_covers.lock();
        if current.as_ref() == Some(&covers) {
            return Ok(());
        }
        let bytes = snapshot::encode(&self.state.read(), &covers);
        // The directory sync goes through the commit gate and poisons the
        // store when it fails; a failed temporary write or rename only
        // abandons this snapshot.
        crate::io::write_atomic(self.fs.as_ref(), &self.dir, SNAPSHOT_FILE, &bytes, || {
            self.sync_store_dir()
        })?;
        *current = Some(covers);
        Ok(())
    }
}
