//! The one little-endian codec of the crate's files: record payloads, the
//! index snapshot and the manifest are all written with [`Writer`] and read
//! with [`Reader`], and every way their bytes can fail to decode is a
//! [`DecodeError`]. It sits at the crate root because both the log and the
//! index use it. FORMAT.md describes the bytes.

use std::fmt;

/// Added to the rotated CRC32 so that a run of zero bytes never verifies.
pub const CRC_MASK_DELTA: u32 = 0xa282_ead8;

/// Masks a raw CRC32: rotated right by 15 bits and offset by
/// [`CRC_MASK_DELTA`]. Every checksum the store writes is masked.
pub fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(CRC_MASK_DELTA)
}

/// Why stored bytes do not decode. `what` names the structure being read
/// (a record, the snapshot, the manifest, a segment or frame header); the
/// caller knows the file and offset and adds them when it reports
/// corruption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes end before a field does.
    Truncated {
        what: &'static str,
        needed: usize,
        left: usize,
    },
    /// A string field is not UTF-8.
    NotUtf8(std::str::Utf8Error),
    /// The structure does not start with its magic bytes.
    BadMagic { what: &'static str },
    /// A stored checksum does not match the bytes it covers.
    Checksum { what: &'static str },
    /// A format version this build does not read.
    Version {
        what: &'static str,
        version: u32,
        reads: &'static str,
    },
    /// A count larger than the bytes left could hold.
    Count { what: &'static str, count: u64 },
    /// Bytes left over after the structure's last field.
    Trailing { what: &'static str, count: usize },
    /// A declared length outside what the format allows.
    LengthOutOfRange { what: &'static str, len: u64 },
    /// A declared length that runs past the end of the file.
    PastEnd { what: &'static str, len: u64 },
    /// A segment header naming another segment than its file name does.
    WrongSegment { stored: u64, named: u32 },
    /// A field holds a value no writer produces; the text says which.
    Malformed(String),
}

impl DecodeError {
    /// A field holding a value no writer produces.
    pub fn malformed(message: impl Into<String>) -> Self {
        DecodeError::Malformed(message.into())
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { what, needed, left } => {
                write!(
                    f,
                    "{what} ends early: needs {needed} more bytes, has {left}"
                )
            }
            DecodeError::NotUtf8(e) => write!(f, "a string is not UTF-8: {e}"),
            DecodeError::BadMagic { what } => write!(f, "the {what} does not start with its magic"),
            DecodeError::Checksum { what } => write!(f, "the {what} checksum does not match"),
            DecodeError::Version {
                what,
                version,
                reads,
            } => write!(
                f,
                "{what} format version {version} is not supported (this build reads {reads})"
            ),
            DecodeError::Count { what, count } => {
                write!(f, "a count of {count} exceeds the {what}")
            }
            DecodeError::Trailing { what, count } => {
                write!(f, "{count} unexpected bytes after the {what}")
            }
            DecodeError::LengthOutOfRange { what, len } => {
                write!(f, "{what} length {len} is out of range")
            }
            DecodeError::PastEnd { what, len } => {
                write!(f, "{what} length {len} runs past the end of the file")
            }
            DecodeError::WrongSegment { stored, named } => write!(
                f,
                "the header names segment {stored} but the file name says {named}"
            ),
            DecodeError::Malformed(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DecodeError::NotUtf8(e) => Some(e),
            _ => None,
        }
    }
}

/// Splits `bytes` into its body and checks the masked CRC32 of the body
/// against the last four bytes: how the snapshot and the manifest end.
pub fn checked_body<'a>(what: &'static str, bytes: &'a [u8]) -> Result<&'a [u8], DecodeError> {
    let Some(body_len) = bytes.len().checked_sub(4) else {
        return Err(DecodeError::Truncated {
            what,
            needed: 4 - bytes.len(),
            left: bytes.len(),
        });
    };
    let (body, crc) = bytes.split_at(body_len);
    if mask(crc32fast::hash(body)) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err(DecodeError::Checksum { what });
    }
    Ok(body)
}

/// Reads little-endian fields from a byte slice; every read checks that the
/// bytes are there, so damaged lengths fail instead of over-reading.
#[derive(Debug)]
pub struct Reader<'a> {
    what: &'static str,
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`, which holds a `what` (named in
    /// errors).
    pub fn new(what: &'static str, buf: &'a [u8]) -> Self {
        Reader { what, buf }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated {
                what: self.what,
                needed: n,
                left: self.buf.len(),
            });
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_le_bytes)
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_le_bytes)
    }

    /// A signed time stored as its two's-complement u64.
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        self.u64().map(u64::cast_signed)
    }

    /// A byte string: u32 length, then the bytes.
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    /// A UTF-8 string: u32 length, then the bytes.
    pub fn str(&mut self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.bytes()?).map_err(DecodeError::NotUtf8)
    }

    /// A u32 count of items that each take at least `min_size` bytes,
    /// bounded by the bytes left, so a damaged count cannot cause a large
    /// allocation.
    pub fn count(&mut self, min_size: usize) -> Result<usize, DecodeError> {
        let n = self.u32()?;
        self.bounded(u64::from(n), min_size)
    }

    /// `n` if `n` items of at least `min_size` bytes fit in the bytes left.
    pub fn bounded(&self, n: u64, min_size: usize) -> Result<usize, DecodeError> {
        if n > (self.remaining() / min_size.max(1)) as u64 {
            return Err(DecodeError::Count {
                what: self.what,
                count: n,
            });
        }
        Ok(n as usize)
    }

    /// Checks that every byte was read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::Trailing {
                what: self.what,
                count,
            }),
        }
    }
}

/// Appends little-endian fields to a byte vector: the mirror of [`Reader`].
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    /// A writer appending to `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Writer { out }
    }

    /// Raw bytes, no length.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// `n` zero bytes.
    pub fn zeros(&mut self, n: usize) {
        self.out.resize(self.out.len() + n, 0);
    }

    pub fn u8(&mut self, v: u8) {
        self.out.push(v);
    }

    pub fn u32(&mut self, v: u32) {
        self.raw(&v.to_le_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.raw(&v.to_le_bytes());
    }

    /// A signed time as its two's-complement u64.
    pub fn i64(&mut self, v: i64) {
        self.raw(&v.to_le_bytes());
    }

    /// A count or length as a u32. Callers bound what they count well below
    /// `u32::MAX` (the payload and document limits), so it always fits.
    pub fn count(&mut self, n: usize) {
        debug_assert!(u32::try_from(n).is_ok(), "a count fits 32 bits");
        self.u32(n as u32);
    }

    /// A byte string: u32 length, then the bytes.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.count(bytes.len());
        self.raw(bytes);
    }

    /// A UTF-8 string: u32 length, then the bytes.
    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    /// Appends the masked CRC32 of everything written to the vector so far:
    /// how the snapshot and the manifest end.
    pub fn checksum(&mut self) {
        let crc = mask(crc32fast::hash(self.out));
        self.u32(crc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_short_input_fails() {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        w.u8(7);
        w.u32(0x0102_0304);
        w.i64(-5);
        w.str("héllo");
        w.checksum();
        let body = checked_body("test", &out).unwrap();
        let mut r = Reader::new("test", body);
        assert_eq!(r.u8(), Ok(7));
        assert_eq!(r.u32(), Ok(0x0102_0304));
        assert_eq!(r.i64(), Ok(-5));
        assert_eq!(r.str(), Ok("héllo"));
        assert_eq!(r.finish(), Ok(()));
        assert!(matches!(
            r.u8(),
            Err(DecodeError::Truncated {
                needed: 1,
                left: 0,
                ..
            })
        ));
        let mut bad = out.clone();
        bad[0] ^= 1;
        assert_eq!(
            checked_body("test", &bad),
            Err(DecodeError::Checksum { what: "test" })
        );
    }
}
