//! The one frame reader: walks the frames of a segment file through a
//! bounded window and hands out each verified frame decoded, with its
//! location. Recovery, compaction, the integrity check and salvage all read
//! segments through it, so no file length (a damaged one, or a huge sparse
//! tail of zeros) ever decides how much memory a read takes.

use std::io;

use crate::codec::DecodeError;
use crate::io::VFile;
use crate::log::record::{Frame, Framing, Record};
use crate::log::segment::{Loc, SEGMENT_HEADER_LEN};

/// Bytes read from the file at a time (more only for a frame that needs it).
pub const WINDOW: usize = 1 << 20;

/// Bytes compared against zeros at once when looking for a non-zero byte:
/// a slice compare (memcmp) passes zeros fast, even unoptimized, and only
/// the piece that differs is then walked byte by byte.
const PIECE: usize = 4096;

static ZEROS: [u8; PIECE] = [0; PIECE];

/// The index of the first non-zero byte of `bytes`.
fn first_nonzero(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    for piece in bytes.chunks(PIECE) {
        if piece != &ZEROS[..piece.len()] {
            return piece.iter().position(|&b| b != 0).map(|p| at + p);
        }
        at += piece.len();
    }
    None
}

/// The index of the last non-zero byte of `bytes`.
fn last_nonzero(bytes: &[u8]) -> Option<usize> {
    let mut end = bytes.len();
    while end > 0 {
        let start = end.saturating_sub(PIECE);
        let piece = &bytes[start..end];
        if piece != &ZEROS[..piece.len()] {
            return piece.iter().rposition(|&b| b != 0).map(|p| start + p);
        }
        end = start;
    }
    None
}

/// Reads bytes `from..to` of `file` a window at a time, handing each window
/// and its offset to `each`: the one bounded-memory loop behind the
/// quarantine copy, open's rewrite and the snapshot's checksum.
pub fn for_each_window(
    file: &dyn VFile,
    from: u64,
    to: u64,
    mut each: impl FnMut(u64, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = vec![0u8; (to.saturating_sub(from)).min(WINDOW as u64) as usize];
    let mut at = from;
    while at < to {
        let n = (to - at).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], at)?;
        each(at, &buf[..n])?;
        at += n as u64;
    }
    Ok(())
}

/// Copies bytes `0..len` of `from` into `to` (a new, empty file) and syncs
/// the copy: holes stay holes, and the copy is `len` bytes long however its
/// data ends. Recovery's quarantine copy, a backup's segments and a repair's
/// kept originals are made with it.
pub fn copy_data(from: &dyn VFile, to: &dyn VFile, len: u64) -> io::Result<()> {
    for_each_data_window(from, 0, len, |at, bytes| to.write_all_at(bytes, at))?;
    to.set_len(len)?;
    to.sync_data()
}

/// [`for_each_window`] over the data of `from..to` alone: the holes that
/// [`VFile::next_data`] reports read as zeros and are skipped, so a copy
/// made through it is as sparse as the file (and its caller sets the
/// copy's length when a hole ends the range).
pub fn for_each_data_window(
    file: &dyn VFile,
    from: u64,
    to: u64,
    mut each: impl FnMut(u64, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut at = from;
    while at < to {
        let Some((start, end)) = file.next_data(at)? else {
            break;
        };
        let (start, end) = (start.max(at), end.min(to));
        if start >= end {
            break;
        }
        for_each_window(file, start, end, &mut each)?;
        at = end;
    }
    Ok(())
}

/// What the scan found at its position.
#[derive(Debug)]
pub enum Step<'a> {
    /// A frame that verifies: where it is, its payload, and the record the
    /// payload decodes to (a frame can verify and still hold a payload no
    /// record kind explains, which each reader reports in its own way).
    Frame {
        loc: Loc,
        payload: &'a [u8],
        record: Result<Record<'a>, DecodeError>,
    },
    /// No valid frame starts at `offset`; the reason says why.
    Invalid { offset: u64, reason: DecodeError },
    /// The position is the end of the file.
    End,
}

/// A cursor over the frames of one segment file, which must not change
/// while the scan reads it.
///
/// Looking past damage for more data (the end of the last non-zero byte,
/// the next frame that verifies) skips the file's holes
/// ([`VFile::next_data`]) and passes runs of zeros with slice compares, so
/// its cost follows the bytes the file holds, not its length.
#[derive(Debug)]
pub struct Scan<'f> {
    file: &'f dyn VFile,
    framing: Framing,
    segment: u32,
    len: u64,
    pos: u64,
    buf: Vec<u8>,
    buf_start: u64,
    window: usize,
    /// The data extent the file last reported, clamped to `len`.
    extent: Option<(u64, u64)>,
    /// Every byte from here to `len` is zero (`len` until
    /// [`Scan::nonzero_end`] has looked).
    zeros_from: u64,
}

impl<'f> Scan<'f> {
    /// A scan of `file` (segment `segment`, `len` bytes) from offset `from`.
    pub fn new(file: &'f dyn VFile, framing: Framing, segment: u32, len: u64, from: u64) -> Self {
        Scan {
            file,
            framing,
            segment,
            len,
            pos: from.max(SEGMENT_HEADER_LEN as u64),
            buf: Vec::new(),
            buf_start: 0,
            window: WINDOW,
            extent: None,
            zeros_from: len,
        }
    }

    /// The same scan reading `window` bytes at a time (more only for a
    /// frame that needs it) instead of [`WINDOW`].
    pub fn window(self, window: usize) -> Self {
        Scan { window, ..self }
    }

    /// The offset of the next frame.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Moves the scan to `offset` (after damage, to resume at a later frame).
    pub fn seek(&mut self, offset: u64) {
        self.pos = offset;
    }

    /// Makes `buf` hold `[from, from + n)`; false if that passes the end.
    fn fill(&mut self, from: u64, n: usize) -> io::Result<bool> {
        let Some(end) = from.checked_add(n as u64).filter(|&end| end <= self.len) else {
            return Ok(false);
        };
        let buf_end = self.buf_start + self.buf.len() as u64;
        if from >= self.buf_start && end <= buf_end {
            return Ok(true);
        }
        let want = (n.max(self.window) as u64).min(self.len - from) as usize;
        self.buf.clear();
        self.buf.resize(want, 0);
        self.file.read_exact_at(&mut self.buf, from)?;
        self.buf_start = from;
        Ok(true)
    }

    /// Bytes from `at` on, below `end`: at least one, at most a window,
    /// from the buffer when it holds `at`, else read (none past `end`).
    fn bytes_at(&mut self, at: u64, end: u64) -> io::Result<&[u8]> {
        let held = self.buf_start + self.buf.len() as u64;
        if !(self.buf_start <= at && at < held) {
            let n = (end - at).min(WINDOW as u64) as usize;
            self.buf.clear();
            self.buf.resize(n, 0);
            self.file.read_exact_at(&mut self.buf, at)?;
            self.buf_start = at;
        }
        let held = self.buf_start + self.buf.len() as u64;
        let from = (at - self.buf_start) as usize;
        let to = (end.min(held) - self.buf_start) as usize;
        Ok(&self.buf[from..to])
    }

    /// The data extent `[start, end)` at or after `at` and below the
    /// scan's length (`start` is `at` inside an extent), or `None` when
    /// only a hole follows.
    fn data_from(&mut self, at: u64) -> io::Result<Option<(u64, u64)>> {
        if let Some((start, end)) = self.extent {
            if start <= at && at < end {
                return Ok(Some((at, end)));
            }
        }
        if at >= self.len {
            return Ok(None);
        }
        let found = self
            .file
            .next_data(at)?
            .map(|(start, end)| (start.max(at), end.min(self.len)))
            .filter(|(start, end)| start < end);
        if found.is_some() {
            self.extent = found;
        }
        Ok(found)
    }

    /// The offset of the first non-zero byte at or after `from`, if any;
    /// holes are skipped, and nothing past `zeros_from` is read.
    fn next_nonzero(&mut self, from: u64) -> io::Result<Option<u64>> {
        let mut at = from;
        while at < self.zeros_from {
            let Some((start, end)) = self.data_from(at)? else {
                return Ok(None);
            };
            at = start;
            let end = end.min(self.zeros_from);
            while at < end {
                let bytes = self.bytes_at(at, end)?;
                if let Some(p) = first_nonzero(bytes) {
                    return Ok(Some(at + p as u64));
                }
                at += bytes.len() as u64;
            }
        }
        Ok(None)
    }

    /// Checks the frame at `offset` without moving the scan.
    fn frame_at(&mut self, offset: u64) -> io::Result<Result<(u32, usize), DecodeError>> {
        let header_len = self.framing.header_len();
        if !self.fill(offset, header_len)? {
            return Ok(Err(DecodeError::Truncated {
                what: "frame header",
                needed: header_len,
                left: self.len.saturating_sub(offset) as usize,
            }));
        }
        let at = (offset - self.buf_start) as usize;
        let len = match self
            .framing
            .check_header(&self.buf[at..at + header_len], offset)
        {
            Ok(len) => len,
            Err(reason) => return Ok(Err(reason)),
        };
        let total = header_len + len as usize;
        if !self.fill(offset, total)? {
            return Ok(Err(DecodeError::PastEnd {
                what: "frame",
                len: u64::from(len),
            }));
        }
        let at = (offset - self.buf_start) as usize;
        Ok(
            match self.framing.read(&self.buf[..at + total], at, offset) {
                Frame::Valid { .. } => Ok((total as u32, at)),
                Frame::Invalid(reason) => Err(reason),
            },
        )
    }

    /// The frame at the position (moving past it), the reason there is
    /// none, or the end of the file.
    pub fn next(&mut self) -> io::Result<Step<'_>> {
        if self.pos >= self.len {
            return Ok(Step::End);
        }
        let offset = self.pos;
        match self.frame_at(offset)? {
            Ok((frame_len, at)) => {
                self.pos += u64::from(frame_len);
                let header_len = self.framing.header_len();
                let payload = &self.buf[at + header_len..at + frame_len as usize];
                Ok(Step::Frame {
                    loc: Loc {
                        segment: self.segment,
                        offset: offset as u32,
                        len: frame_len,
                    },
                    payload,
                    record: Record::decode(payload),
                })
            }
            Err(reason) => Ok(Step::Invalid { offset, reason }),
        }
    }

    /// The offset of the first frame at or after `from` that verifies, if
    /// any. A format-2 frame header has its own checksum, so most offsets
    /// cost a 12-byte checksum; format 1 has none, so there a candidate is
    /// only checked when its declared length fits the file. A frame starts
    /// with its length, which is never zero, so only offsets up to three
    /// bytes before a non-zero byte are candidates: holes and runs of zeros
    /// are passed without a check, and the search ends at the last
    /// non-zero byte.
    pub fn next_valid_from(&mut self, from: u64) -> io::Result<Option<u64>> {
        let mut offset = from;
        while offset < self.len {
            let Some(nonzero) = self.next_nonzero(offset)? else {
                return Ok(None);
            };
            for candidate in offset.max(nonzero.saturating_sub(3))..=nonzero {
                if self.frame_at(candidate)?.is_ok() {
                    return Ok(Some(candidate));
                }
            }
            offset = nonzero + 1;
        }
        Ok(None)
    }

    /// The end of the last non-zero byte at or after `from` (so `from`
    /// itself when only zeros follow). Only the file's data is read, a
    /// window at a time: its holes are skipped.
    pub fn nonzero_end(&mut self, from: u64) -> io::Result<u64> {
        let mut end = from;
        let mut at = from;
        while at < self.zeros_from {
            let Some((start, stop)) = self.data_from(at)? else {
                break;
            };
            at = start;
            let stop = stop.min(self.zeros_from);
            while at < stop {
                let bytes = self.bytes_at(at, stop)?;
                if let Some(last) = last_nonzero(bytes) {
                    end = at + last as u64 + 1;
                }
                at += bytes.len() as u64;
            }
        }
        self.zeros_from = self.zeros_from.min(end);
        Ok(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{MemFs, RealFs, Vfs};
    use crate::log::record::Record;
    use crate::log::segment::encode_header;
    use std::path::Path;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    const GIB: u64 = 1 << 30;

    /// A file that counts the bytes read through it, holes and data alike,
    /// and fails a read past `READ_BUDGET` in all, so that a scan that
    /// reads a hole stops at once instead of reading gigabytes.
    #[derive(Debug)]
    struct Counted {
        inner: Arc<dyn VFile>,
        read: AtomicU64,
    }

    const READ_BUDGET: u64 = 64 << 20;

    impl VFile for Counted {
        fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
            let n = buf.len() as u64;
            if self.read.fetch_add(n, Ordering::Relaxed) + n > READ_BUDGET {
                return Err(io::Error::other("read past the test's budget"));
            }
            self.inner.read_exact_at(buf, offset)
        }
        fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
            self.inner.write_all_at(buf, offset)
        }
        fn sync_data(&self) -> io::Result<()> {
            self.inner.sync_data()
        }
        fn set_len(&self, len: u64) -> io::Result<()> {
            self.inner.set_len(len)
        }
        fn size(&self) -> io::Result<u64> {
            self.inner.size()
        }
        fn next_data(&self, offset: u64) -> io::Result<Option<(u64, u64)>> {
            self.inner.next_data(offset)
        }
    }

    /// A real segment file of 64 GiB: a header and two records, then a
    /// hole, with `after_hole` at 32 GiB when given, read through a
    /// counter. Returns the file, its framing and where the records end.
    fn sparse_segment(
        dir: &Path,
        after_hole: Option<&dyn Fn(Framing, u64) -> Vec<u8>>,
    ) -> (Counted, Framing, u64) {
        let file = RealFs::open_root(dir, crate::io::Access::ReadWrite)
            .unwrap()
            .open(&dir.join("seg"), true)
            .unwrap();
        let salt = 0x5a17;
        let framing = Framing::V2 { salt };
        file.write_all_at(&encode_header(1, salt), 0).unwrap();
        let mut at = SEGMENT_HEADER_LEN as u64;
        for key in ["a", "b"] {
            let mut frame = Vec::new();
            Record::LeaseDelete { key }.encode_frame(framing, at, &mut frame);
            file.write_all_at(&frame, at).unwrap();
            at += frame.len() as u64;
        }
        if let Some(bytes) = after_hole {
            file.write_all_at(&bytes(framing, 32 * GIB), 32 * GIB)
                .unwrap();
        }
        file.set_len(64 * GIB).unwrap();
        let file = Counted {
            inner: file,
            read: AtomicU64::new(0),
        };
        (file, framing, at)
    }

    /// Finding the next frame after garbage costs one small checksum per
    /// byte in format 2: a scan over megabytes of random bytes finishes and
    /// finds the frame that follows them (with a cost cubic in the garbage,
    /// as format 1's search had, this test would not finish).
    #[test]
    fn the_next_frame_after_megabytes_of_garbage_is_found() {
        let fs = MemFs::new();
        let file = fs.open(Path::new("seg"), true).unwrap();
        let salt = 0x5a17;
        let framing = Framing::V2 { salt };
        file.write_all_at(&encode_header(1, salt), 0).unwrap();
        let garbage_len = 4 << 20;
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let garbage: Vec<u8> = (0..garbage_len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        file.write_all_at(&garbage, SEGMENT_HEADER_LEN as u64)
            .unwrap();
        let at = (SEGMENT_HEADER_LEN + garbage_len) as u64;
        let mut frame = Vec::new();
        Record::LeaseDelete { key: "k" }.encode_frame(framing, at, &mut frame);
        file.write_all_at(&frame, at).unwrap();
        let len = file.size().unwrap();
        let mut scan = Scan::new(file.as_ref(), framing, 1, len, 0);
        assert!(matches!(
            scan.next().unwrap(),
            Step::Invalid { offset: 24, .. }
        ));
        assert_eq!(scan.next_valid_from(25).unwrap(), Some(at));
        scan.seek(at);
        assert!(matches!(scan.next().unwrap(), Step::Frame { .. }));
        assert!(matches!(scan.next().unwrap(), Step::End));
    }

    /// A sparse tail of zeros is skipped, not read: the scan ends at the
    /// records, finds that only zeros follow them, and searches no further
    /// for a frame, reading a few windows at most of the 64 GiB.
    #[test]
    fn a_sparse_tail_is_skipped_not_read() {
        let tmp = tempfile::tempdir().unwrap();
        let (file, framing, end) = sparse_segment(tmp.path(), None);
        let len = file.size().unwrap();
        let mut scan = Scan::new(&file, framing, 1, len, 0);
        assert!(matches!(scan.next().unwrap(), Step::Frame { .. }));
        assert!(matches!(scan.next().unwrap(), Step::Frame { .. }));
        assert!(matches!(
            scan.next().unwrap(),
            Step::Invalid { offset, .. } if offset == end
        ));
        assert_eq!(scan.nonzero_end(end).unwrap(), end);
        assert_eq!(scan.next_valid_from(end + 1).unwrap(), None);
        let read = file.read.load(Ordering::Relaxed);
        assert!(read <= 4 * WINDOW as u64, "{read} bytes read");
    }

    /// Bytes after a hole are found without reading the hole: the end of
    /// the last non-zero byte, and a frame that verifies there.
    #[test]
    fn what_follows_a_hole_is_found_without_reading_the_hole() {
        let tmp = tempfile::tempdir().unwrap();
        let frame = |framing, at| {
            let mut frame = Vec::new();
            Record::LeaseDelete { key: "late" }.encode_frame(framing, at, &mut frame);
            frame
        };
        let (file, framing, end) = sparse_segment(tmp.path(), Some(&frame));
        let frame_len = frame(framing, 32 * GIB).len() as u64;
        let len = file.size().unwrap();
        let mut scan = Scan::new(&file, framing, 1, len, end);
        assert!(matches!(scan.next().unwrap(), Step::Invalid { .. }));
        assert_eq!(scan.nonzero_end(end).unwrap(), 32 * GIB + frame_len);
        assert_eq!(scan.next_valid_from(end + 1).unwrap(), Some(32 * GIB));
        scan.seek(32 * GIB);
        match scan.next().unwrap() {
            Step::Frame { record, .. } => {
                assert_eq!(record.unwrap(), Record::LeaseDelete { key: "late" });
            }
            other => panic!("expected the frame after the hole, got {other:?}"),
        }
        assert!(matches!(scan.next().unwrap(), Step::Invalid { .. }));
        let after = 32 * GIB + frame_len;
        assert_eq!(scan.next_valid_from(after).unwrap(), None);
        let read = file.read.load(Ordering::Relaxed);
        assert!(read <= 8 * WINDOW as u64, "{read} bytes read");
    }

    /// A frame's length is never zero, but its first bytes may be (the
    /// length is little-endian): the search passes zeros and still finds a
    /// frame whose length field starts with one, two or three zero bytes,
    /// in either format.
    #[test]
    fn a_frame_whose_length_starts_with_zero_bytes_is_found_after_zeros() {
        let cases = [
            (Framing::V2 { salt: 0x5a17 }, 1usize << 8),
            (Framing::V2 { salt: 0x5a17 }, 1 << 16),
            (Framing::V2 { salt: 0x5a17 }, 1 << 24),
            (Framing::V1, 1 << 16),
        ];
        for (framing, payload_len) in cases {
            let fs = MemFs::new();
            let file = fs.open(Path::new("seg"), true).unwrap();
            let at = 3 * PIECE as u64 + 5;
            let mut frame = Vec::new();
            Record::Pad { len: payload_len }.encode_frame(framing, at, &mut frame);
            assert_eq!(frame[0], 0, "the length field starts with a zero byte");
            file.write_all_at(&frame, at).unwrap();
            file.set_len(at + frame.len() as u64 + 3 * PIECE as u64)
                .unwrap();
            let len = file.size().unwrap();
            let mut scan = Scan::new(file.as_ref(), framing, 1, len, 0);
            let what = format!("{framing:?}, a payload of {payload_len} bytes");
            assert_eq!(scan.next_valid_from(24).unwrap(), Some(at), "{what}");
            assert_eq!(scan.next_valid_from(at).unwrap(), Some(at), "{what}");
            assert_eq!(scan.next_valid_from(at + 1).unwrap(), None, "{what}");
            assert_eq!(
                scan.nonzero_end(24).unwrap(),
                at + frame.len() as u64 - (payload_len as u64 - 1),
                "{what}: the pad's payload is its kind byte, then zeros"
            );
        }
    }

    #[test]
    fn first_and_last_nonzero_find_the_byte_in_any_piece() {
        let mut bytes = vec![0u8; 3 * PIECE + 17];
        assert_eq!(first_nonzero(&bytes), None);
        assert_eq!(last_nonzero(&bytes), None);
        for at in [0, 1, PIECE - 1, PIECE, 2 * PIECE + 3, bytes.len() - 1] {
            bytes[at] = 9;
            assert_eq!(first_nonzero(&bytes), Some(at));
            assert_eq!(last_nonzero(&bytes), Some(at));
            bytes[at] = 0;
        }
        bytes[5] = 1;
        bytes[2 * PIECE + 1] = 1;
        assert_eq!(first_nonzero(&bytes), Some(5));
        assert_eq!(last_nonzero(&bytes), Some(2 * PIECE + 1));
    }
}
