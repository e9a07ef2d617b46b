//! Segment files: names, the header, and durable creation.

use std::borrow::Cow;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::codec::{mask, DecodeError};
use crate::io::{VFile, Vfs};
use crate::log::record::{pad_frame, Framing};
use crate::{Error, Result};

/// The first eight bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"LOGSTSEG";
/// The segment format version this code writes. It also reads version 1
/// (unsalted frames, see [`Framing`]).
pub const FORMAT_VERSION: u32 = 2;
/// Bytes of the segment header: magic, format version, segment id, checksum.
pub const SEGMENT_HEADER_LEN: usize = 24;
/// Segment file names are the id in 20 decimal digits plus this suffix.
pub const SEGMENT_SUFFIX: &str = ".seg";
const SEGMENT_ID_DIGITS: usize = 20;

/// Where a record lives: segment id, byte offset of its frame, frame length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Loc {
    /// The segment id.
    pub segment: u32,
    /// Offset of the frame header in the segment file.
    pub offset: u32,
    /// Length of the whole frame (header and payload).
    pub len: u32,
}

/// The file name of segment `id`.
pub fn segment_name(id: u32) -> String {
    format!("{id:0SEGMENT_ID_DIGITS$}{SEGMENT_SUFFIX}")
}

/// The id of a segment file name, or `None` for any other file.
pub fn parse_segment_name(name: &str) -> Option<u32> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != SEGMENT_ID_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|id| u32::try_from(id).ok())
}

/// The header bytes of segment `id` in the current format, with the salt
/// its frames' checksums are bound to.
pub fn encode_header(id: u32, salt: u32) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[0..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&id.to_le_bytes());
    h[16..20].copy_from_slice(&salt.to_le_bytes());
    let crc = mask(crc32fast::hash(&h[0..20]));
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

/// A fresh random salt for a new segment. It is never derived from stored
/// bytes, so nothing a user writes can predict it.
pub fn new_salt() -> u32 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

// The versions `check_header` names in its error are spelled out.
const _: () = assert!(
    FORMAT_VERSION == 2,
    "update the versions check_header reports"
);

/// Checks a segment header against the id its file name gives and returns
/// how its frames are checked.
pub fn check_header(bytes: &[u8], id: u32) -> std::result::Result<Framing, DecodeError> {
    let Some(h) = bytes.get(..SEGMENT_HEADER_LEN) else {
        return Err(DecodeError::Truncated {
            what: "segment header",
            needed: SEGMENT_HEADER_LEN,
            left: bytes.len(),
        });
    };
    if h[0..8] != SEGMENT_MAGIC {
        return Err(DecodeError::BadMagic { what: "segment" });
    }
    let crc = u32::from_le_bytes([h[20], h[21], h[22], h[23]]);
    if mask(crc32fast::hash(&h[0..20])) != crc {
        return Err(DecodeError::Checksum {
            what: "segment header",
        });
    }
    let word = |at: usize| u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    let (stored, framing) = match word(8) {
        1 => {
            let mut raw_id = [0u8; 8];
            raw_id.copy_from_slice(&h[12..20]);
            (u64::from_le_bytes(raw_id), Framing::V1)
        }
        2 => (u64::from(word(12)), Framing::V2 { salt: word(16) }),
        version => {
            return Err(DecodeError::Version {
                what: "segment",
                version,
                reads: "versions 1 and 2",
            })
        }
    };
    if stored != u64::from(id) {
        return Err(DecodeError::WrongSegment { stored, named: id });
    }
    Ok(framing)
}

/// Creates segment `id` durably: the header is written and synced, then the
/// directory entry is synced, before any record goes in.
pub fn create(fs: &dyn Vfs, dir: &Path, id: u32) -> Result<SegmentFile> {
    let path = dir.join(segment_name(id));
    let context = || format!("creating segment {}", path.display());
    let file = fs.create_new(&path).map_err(|e| Error::io(context(), e))?;
    let framing = write_header(file.as_ref(), id).map_err(|e| Error::io(context(), e))?;
    fs.sync_dir(dir).map_err(|e| Error::io(context(), e))?;
    Ok(SegmentFile::new(file, framing))
}

/// Replaces the file's contents with a bare header (a new salt) and syncs
/// it.
pub fn write_header(file: &dyn VFile, id: u32) -> std::io::Result<Framing> {
    let salt = new_salt();
    let framing = Framing::V2 { salt };
    // The header's page is written whole (a padding frame after the
    // header) and synced once: no append ever writes into it again.
    let mut page = encode_header(id, salt).to_vec();
    let header = SEGMENT_HEADER_LEN as u64;
    page.extend(pad_frame(framing, header, FIRST_APPEND - header));
    file.set_len(0)?;
    file.write_all_at(&page, 0)?;
    file.sync_data()?;
    Ok(framing)
}

/// Where the first record of a segment this build creates goes: the first
/// page holds the header and a padding frame.
pub const FIRST_APPEND: u64 = crate::log::record::PAGE;

/// Every segment file by id, shared between the writer (which adds new ones)
/// and readers (which fetch document bodies).
pub type SegmentFiles = parking_lot::RwLock<std::collections::BTreeMap<u32, SegmentFile>>;

/// An open segment file and how its frames are checked; a sealed one also
/// mapped, when the file system maps.
#[derive(Debug, Clone)]
pub struct SegmentFile {
    /// The file.
    pub file: Arc<dyn VFile>,
    /// Its framing, from its header.
    pub framing: Framing,
    /// The file mapped for reads: the whole of a sealed segment
    /// ([`SegmentFile::sealed`]), or the active segment's first
    /// `segment_bytes` ahead of its end ([`SegmentFile::active`]).
    map: Option<Arc<memmap2::Mmap>>,
    /// For the active segment's map: the end of its last whole record,
    /// which the writer moves forward after each append. A read slices the
    /// map only below it, so no location (however it was damaged) makes a
    /// read touch a page the file does not hold yet.
    written: Option<Arc<AtomicU64>>,
}

impl SegmentFile {
    /// A segment read with positioned reads: the active one, one recovery
    /// may still cut, or a compaction output not yet in place.
    pub fn new(file: Arc<dyn VFile>, framing: Framing) -> Self {
        SegmentFile {
            file,
            framing,
            map: None,
            written: None,
        }
    }

    /// The same segment, mapped for reads. Only for a segment that is
    /// sealed: synced at its final length and never written, truncated or
    /// extended again (FORMAT.md, "Mapped reads", says why each sealed
    /// segment is). A file system that does not map, or a map that fails
    /// (address space, the kernel's map count), leaves positioned reads:
    /// slower, the same bytes.
    pub fn sealed(self) -> Self {
        let map = self.file.map().ok().flatten();
        SegmentFile {
            map,
            written: None,
            ..self
        }
    }

    /// The same segment as the active one, mapped `len` bytes ahead (the
    /// segment's size limit) so that reads of the records appended to it
    /// slice the map too. The file only grows below `len` while it is the
    /// active segment (FORMAT.md, "Mapped reads"); a record that ends past
    /// `len` (a segment's single oversized record) is read with a
    /// positioned read. `end` is where its records end now; the writer
    /// moves it with [`SegmentFile::written_to`]. Without a map,
    /// positioned reads, as before.
    pub fn active(self, len: u64, end: u64) -> Self {
        let map = self.file.map_ahead(len).ok().flatten();
        let written = map.as_ref().map(|_| Arc::new(AtomicU64::new(end)));
        SegmentFile {
            map,
            written,
            ..self
        }
    }

    /// Records the active segment's records now end at `end`.
    pub fn written_to(&self, end: u64) {
        if let Some(written) = &self.written {
            written.store(end, Ordering::Release);
        }
    }

    /// Whether reads slice a map (no system call, no copy).
    #[cfg(test)]
    pub fn is_mapped(&self) -> bool {
        self.map.is_some()
    }

    /// The `loc.len` bytes at `loc.offset`: a slice of the map when the map
    /// covers them (for the active segment: when they lie below the end of
    /// its records), otherwise read into a buffer. An error (`UnexpectedEof`)
    /// when the file ends first. Callers ask only for records the index (or
    /// a scan) already found whole, never for bytes still being written.
    pub fn bytes_at(&self, loc: Loc) -> std::io::Result<Cow<'_, [u8]>> {
        let start = loc.offset as usize;
        let len = loc.len as usize;
        if let Some(map) = &self.map {
            let limit = match &self.written {
                Some(written) => written.load(Ordering::Acquire).min(map.len() as u64) as usize,
                None => map.len(),
            };
            if start.checked_add(len).is_some_and(|end| end <= limit) {
                // SAFETY: `start + len` lies within the map. The slice covers
                // one finished record and nothing else: a map of the active
                // segment also spans bytes the writer is still appending, so
                // no reference to the whole map is ever made.
                let bytes = unsafe { std::slice::from_raw_parts(map.as_ptr().add(start), len) };
                return Ok(Cow::Borrowed(bytes));
            }
        }
        let mut buf = vec![0u8; len];
        self.file.read_exact_at(&mut buf, u64::from(loc.offset))?;
        Ok(Cow::Owned(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(segment_name(7), "00000000000000000007.seg");
        assert_eq!(parse_segment_name(&segment_name(7)), Some(7));
        assert_eq!(parse_segment_name("7.seg"), None);
        assert_eq!(parse_segment_name("LOCK"), None);
    }

    #[test]
    fn header_checks_id_and_checksum() {
        let h = encode_header(3, 0xfeed);
        assert_eq!(check_header(&h, 3), Ok(Framing::V2 { salt: 0xfeed }));
        assert!(check_header(&h, 4).is_err());
        let mut bad = h;
        bad[13] ^= 1;
        assert!(check_header(&bad, 3).is_err());
        assert!(check_header(&[0u8; SEGMENT_HEADER_LEN], 3).is_err());
    }

    /// The active segment is mapped far past its end, but a read slices the
    /// map only below the end of its records: a location past them (a
    /// damaged snapshot's, say) is a positioned read that fails, never a
    /// touch of a page the file does not hold (SIGBUS, the end of the test
    /// process).
    #[test]
    fn an_active_map_is_read_only_below_the_written_end() {
        use crate::io::{Access, RealFs};
        let dir = tempfile::tempdir().unwrap();
        let fs = RealFs::open_root(dir.path(), Access::ReadWrite).unwrap();
        let segment = create(&fs, dir.path(), 1).unwrap();
        let record = b"0123456789abcdef";
        segment.file.write_all_at(record, FIRST_APPEND).unwrap();
        let end = FIRST_APPEND + record.len() as u64;
        let active = segment.active(64 << 20, end);
        assert!(active.is_mapped());
        let at = |offset: u64, len: u32| Loc {
            segment: 1,
            offset: offset as u32,
            len,
        };
        let bytes = active.bytes_at(at(FIRST_APPEND, 16)).unwrap();
        assert!(matches!(bytes, Cow::Borrowed(b) if b == record));
        // Past the file's end, inside the map: an error, not a signal.
        assert!(active.bytes_at(at(32 << 20, 100)).is_err());
        // Written but not yet recorded as written: read, not sliced.
        active.file.write_all_at(b"more", end).unwrap();
        let read = active.bytes_at(at(end, 4)).unwrap();
        assert!(matches!(read, Cow::Owned(ref b) if b == b"more"));
        active.written_to(end + 4);
        let sliced = active.bytes_at(at(end, 4)).unwrap();
        assert!(matches!(sliced, Cow::Borrowed(b) if b == b"more"));
    }
}
