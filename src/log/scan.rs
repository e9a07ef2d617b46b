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

static ZEROS: [u8; WINDOW] = [0; WINDOW];

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

/// A cursor over the frames of one segment file.
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
    /// only checked when its declared length fits the file.
    pub fn next_valid_from(&mut self, from: u64) -> io::Result<Option<u64>> {
        let mut offset = from;
        while offset < self.len {
            if self.frame_at(offset)?.is_ok() {
                return Ok(Some(offset));
            }
            offset += 1;
        }
        Ok(None)
    }

    /// The end of the last non-zero byte at or after `from` (so `from`
    /// itself when only zeros follow), read a window at a time.
    pub fn nonzero_end(&mut self, from: u64) -> io::Result<u64> {
        let mut end = from;
        let mut at = from;
        while at < self.len {
            let n = (self.len - at).min(WINDOW as u64) as usize;
            self.fill(at, n)?;
            let start = (at - self.buf_start) as usize;
            let chunk = &self.buf[start..start + n];
            // A slice compare (memcmp) passes zeros fast, even unoptimized.
            if chunk != &ZEROS[..n] {
                if let Some(last) = chunk.iter().rposition(|&b| b != 0) {
                    end = at + last as u64 + 1;
                }
            }
            at += n as u64;
        }
        Ok(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{MemFs, Vfs};
    use crate::log::record::Record;
    use crate::log::segment::encode_header;
    use std::path::Path;

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
}
