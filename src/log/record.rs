//! Record framing, checksums and payload encoding. FORMAT.md describes every
//! byte written here; the `format_doc` test module beside this one holds the
//! constants and examples to it.

use crate::codec::{mask, DecodeError, Reader, Writer};
use crate::options::MAX_DOCUMENT_BYTES_LIMIT;

/// Bytes of a frame header in the format this code writes (2): payload
/// length, header checksum and frame checksum, each a u32 LE.
pub const FRAME_HEADER_LEN: usize = 12;
/// The largest payload a frame may declare: the largest document plus room
/// for its collection, id and fixed fields.
pub const MAX_PAYLOAD_LEN: u32 = (MAX_DOCUMENT_BYTES_LIMIT as u32) + 64 * 1024;

/// Record kind: a collection was ensured (its full index list). Written by
/// early format-1 stores; still read (the creation time is then unknown).
pub const KIND_COLLECTION: u8 = 1;
/// Record kind: a collection was ensured, with its creation time and full
/// index list. What the engine writes now.
pub const KIND_COLLECTION_AT: u8 = 9;
/// Record kind: a document was written (upsert, CAS or patch).
pub const KIND_DOC_PUT: u8 = 2;
/// Record kind: a document was deleted.
pub const KIND_DOC_DELETE: u8 = 3;
/// Record kind: a lease row was written (acquire or renew).
pub const KIND_LEASE_SET: u8 = 4;
/// Record kind: a lease was released.
pub const KIND_LEASE_DELETE: u8 = 5;
/// Record kind: every lease of an owner was released.
pub const KIND_LEASE_RELEASE_ALL: u8 = 6;
/// Record kind: a blob's metadata (its file is already durable).
pub const KIND_BLOB_PUT: u8 = 7;
/// Record kind: a blob was deleted.
pub const KIND_BLOB_DELETE: u8 = 8;
/// Record kind: padding to the next page boundary, written before a sync so
/// that no later write touches a page holding synced bytes. Carries nothing.
pub const KIND_PAD: u8 = 10;
/// The page size the log pads to before each sync.
pub const PAGE: u64 = 4096;
/// Bytes of a blob's content hash (BLAKE3).
pub const BLOB_HASH_LEN: usize = 32;

/// The checksum of a frame: CRC32 (IEEE) over the length field and the
/// payload, rotated right by 15 bits and offset by [`CRC_MASK_DELTA`].
pub fn frame_crc(len_field: [u8; 4], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len_field);
    hasher.update(payload);
    mask(hasher.finalize())
}

/// One mutation, as the log stores it.
#[derive(Debug, Clone, PartialEq)]
pub enum Record<'a> {
    /// A collection with its complete index list after an ensure, and when
    /// it was created (`None` in records of kind 1, which lack it).
    Collection {
        name: &'a str,
        created_at: Option<i64>,
        indexes: Vec<&'a str>,
    },
    /// A document body with its version and timestamps.
    DocPut {
        collection: &'a str,
        id: &'a str,
        version: u64,
        created_at: i64,
        updated_at: i64,
        body: &'a [u8],
    },
    /// A document removed.
    DocDelete { collection: &'a str, id: &'a str },
    /// A lease row after an acquire or renew.
    LeaseSet {
        key: &'a str,
        owner: &'a str,
        expires_at: i64,
        version: u64,
        created_at: i64,
        updated_at: i64,
    },
    /// A lease released by its holder.
    LeaseDelete { key: &'a str },
    /// Every lease of an owner released.
    LeaseReleaseAll { owner: &'a str },
    /// A blob's metadata.
    BlobPut {
        id: &'a str,
        mime: &'a str,
        size: u64,
        owner: Option<&'a str>,
        created_at: i64,
        hash: [u8; BLOB_HASH_LEN],
    },
    /// A blob removed.
    BlobDelete { id: &'a str },
    /// Padding of `len` payload bytes (the kind byte and zeros).
    Pad { len: usize },
}

impl<'a> Record<'a> {
    /// Appends the framed record to `out`, as the frame at file offset
    /// `offset` of a segment checked by `framing`.
    #[cfg(test)]
    pub fn encode_frame(&self, framing: Framing, offset: u64, out: &mut Vec<u8>) {
        let start = out.len();
        let header_len = framing.header_len();
        out.resize(start + header_len, 0);
        self.encode_payload(out);
        framing.seal(&mut out[start..], offset);
    }

    /// Appends the payload alone (the record kind and its fields).
    pub fn encode_payload(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        match self {
            Record::Collection {
                name,
                created_at,
                indexes,
            } => {
                match created_at {
                    Some(at) => {
                        w.u8(KIND_COLLECTION_AT);
                        w.str(name);
                        w.i64(*at);
                    }
                    None => {
                        w.u8(KIND_COLLECTION);
                        w.str(name);
                    }
                }
                w.count(indexes.len());
                for field in indexes {
                    w.str(field);
                }
            }
            Record::DocPut {
                collection,
                id,
                version,
                created_at,
                updated_at,
                body,
            } => {
                w.u8(KIND_DOC_PUT);
                w.str(collection);
                w.str(id);
                w.u64(*version);
                w.i64(*created_at);
                w.i64(*updated_at);
                w.bytes(body);
            }
            Record::DocDelete { collection, id } => {
                w.u8(KIND_DOC_DELETE);
                w.str(collection);
                w.str(id);
            }
            Record::LeaseSet { .. } => self.encode_lease_set(&mut w),
            Record::LeaseDelete { key } => {
                w.u8(KIND_LEASE_DELETE);
                w.str(key);
            }
            Record::LeaseReleaseAll { owner } => {
                w.u8(KIND_LEASE_RELEASE_ALL);
                w.str(owner);
            }
            Record::BlobPut { .. } => self.encode_blob_put(&mut w),
            Record::BlobDelete { id } => {
                w.u8(KIND_BLOB_DELETE);
                w.str(id);
            }
            Record::Pad { len } => {
                w.u8(KIND_PAD);
                w.zeros(len.saturating_sub(1));
            }
        }
    }

    fn encode_lease_set(&self, w: &mut Writer<'_>) {
        if let Record::LeaseSet {
            key,
            owner,
            expires_at,
            version,
            created_at,
            updated_at,
        } = self
        {
            w.u8(KIND_LEASE_SET);
            w.str(key);
            w.str(owner);
            w.i64(*expires_at);
            w.u64(*version);
            w.i64(*created_at);
            w.i64(*updated_at);
        }
    }

    fn encode_blob_put(&self, w: &mut Writer<'_>) {
        if let Record::BlobPut {
            id,
            mime,
            size,
            owner,
            created_at,
            hash,
        } = self
        {
            w.u8(KIND_BLOB_PUT);
            w.str(id);
            w.str(mime);
            w.u64(*size);
            match owner {
                Some(owner) => {
                    w.u8(1);
                    w.str(owner);
                }
                None => w.u8(0),
            }
            w.i64(*created_at);
            w.raw(hash);
        }
    }

    /// Decodes a payload whose checksum already verified. An error means the
    /// writer and this reader disagree about the format: corruption.
    pub fn decode(payload: &[u8]) -> Result<Record<'_>, DecodeError> {
        let mut r = Reader::new("record", payload);
        let record = match r.u8()? {
            kind @ (KIND_COLLECTION | KIND_COLLECTION_AT) => {
                let name = r.str()?;
                let created_at = match kind {
                    KIND_COLLECTION_AT => Some(r.i64()?),
                    _ => None,
                };
                // Each field takes at least its 4-byte length, so a count the
                // payload cannot hold is rejected before allocating.
                let count = r.count(4)?;
                let indexes = (0..count).map(|_| r.str()).collect::<Result<_, _>>()?;
                Record::Collection {
                    name,
                    created_at,
                    indexes,
                }
            }
            KIND_DOC_PUT => Record::DocPut {
                collection: r.str()?,
                id: r.str()?,
                version: r.u64()?,
                created_at: r.i64()?,
                updated_at: r.i64()?,
                body: r.bytes()?,
            },
            KIND_DOC_DELETE => Record::DocDelete {
                collection: r.str()?,
                id: r.str()?,
            },
            KIND_LEASE_SET => Record::LeaseSet {
                key: r.str()?,
                owner: r.str()?,
                expires_at: r.i64()?,
                version: r.u64()?,
                created_at: r.i64()?,
                updated_at: r.i64()?,
            },
            KIND_LEASE_DELETE => Record::LeaseDelete { key: r.str()? },
            KIND_LEASE_RELEASE_ALL => Record::LeaseReleaseAll { owner: r.str()? },
            KIND_BLOB_PUT => Record::BlobPut {
                id: r.str()?,
                mime: r.str()?,
                size: r.u64()?,
                owner: match r.u8()? {
                    0 => None,
                    1 => Some(r.str()?),
                    flag => {
                        return Err(DecodeError::malformed(format!(
                            "blob owner flag {flag} is neither 0 nor 1"
                        )))
                    }
                },
                created_at: r.i64()?,
                hash: r.array()?,
            },
            KIND_BLOB_DELETE => Record::BlobDelete { id: r.str()? },
            KIND_PAD => {
                let len = payload.len();
                if r.take(r.remaining())?.iter().any(|&b| b != 0) {
                    return Err(DecodeError::malformed("padding holds non-zero bytes"));
                }
                Record::Pad { len }
            }
            kind => {
                return Err(DecodeError::malformed(format!(
                    "unknown record kind {kind}"
                )))
            }
        };
        r.finish()?;
        Ok(record)
    }
}

/// What a frame at some offset turned out to be.
#[derive(Debug, PartialEq)]
pub enum Frame<'a> {
    /// A frame whose checksums verify; the next frame starts at `next` (an
    /// index into the same buffer).
    Valid { payload: &'a [u8], next: usize },
    /// No valid frame starts here.
    Invalid(DecodeError),
}

/// How the frames of one segment are laid out and checked; the segment
/// header says which (FORMAT.md, "Frames").
///
/// Format 1 frames carry the payload length and one checksum of length and
/// payload. Format 2 frames bind both of their checksums to the segment's
/// secret salt and to the frame's own file offset, and check the header on
/// its own: a user-chosen payload byte can then never verify as a frame (it
/// would have to guess the salt), a frame copied to another place never
/// verifies there, and finding the next frame after damage costs one small
/// checksum per byte instead of one per byte per possible length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Format 1: `len u32, crc u32`, no salt.
    V1,
    /// Format 2: `len u32, header crc u32, crc u32`, salted.
    V2 {
        /// The segment's random salt, from its header.
        salt: u32,
    },
}

/// Bytes of a format-1 frame header.
pub const FRAME_HEADER_LEN_V1: usize = 8;

impl Framing {
    /// Bytes of a frame header under this framing.
    pub fn header_len(self) -> usize {
        match self {
            Framing::V1 => FRAME_HEADER_LEN_V1,
            Framing::V2 { .. } => FRAME_HEADER_LEN,
        }
    }

    /// Fills in the header of `frame` (header bytes then payload) for a frame
    /// at file offset `offset`.
    pub fn seal(self, frame: &mut [u8], offset: u64) {
        let header_len = self.header_len();
        let payload_len = frame.len() - header_len;
        // Callers check documents against MAX_DOCUMENT_BYTES_LIMIT, so the
        // payload always fits the length field.
        debug_assert!(payload_len <= MAX_PAYLOAD_LEN as usize);
        let len_field = (payload_len as u32).to_le_bytes();
        frame[0..4].copy_from_slice(&len_field);
        match self {
            Framing::V1 => {
                let crc = frame_crc(len_field, &frame[header_len..]);
                frame[4..8].copy_from_slice(&crc.to_le_bytes());
            }
            Framing::V2 { salt } => {
                let head = header_crc(salt, offset, len_field);
                let crc = payload_crc(salt, offset, len_field, &frame[header_len..]);
                frame[4..8].copy_from_slice(&head.to_le_bytes());
                frame[8..12].copy_from_slice(&crc.to_le_bytes());
            }
        }
    }

    /// The payload length a frame header declares, if the header verifies
    /// (format 2) and the length is in range. Cheap: no payload is read.
    pub fn check_header(self, header: &[u8], offset: u64) -> Result<u32, DecodeError> {
        let len_field: [u8; 4] = [header[0], header[1], header[2], header[3]];
        let len = u32::from_le_bytes(len_field);
        if let Framing::V2 { salt } = self {
            let stored = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            if header_crc(salt, offset, len_field) != stored {
                return Err(DecodeError::Checksum {
                    what: "frame header",
                });
            }
        }
        if len == 0 || len > MAX_PAYLOAD_LEN {
            return Err(DecodeError::LengthOutOfRange {
                what: "frame",
                len: u64::from(len),
            });
        }
        Ok(len)
    }

    /// Checks the frame that starts at index `at` of `buf`, whose first byte
    /// is at file offset `offset`. The declared length is checked against
    /// the bytes present before anything is read, so a damaged length never
    /// leads to a large allocation.
    pub fn read(self, buf: &[u8], at: usize, offset: u64) -> Frame<'_> {
        let header_len = self.header_len();
        let Some(header) = buf.get(at..at + header_len) else {
            return Frame::Invalid(DecodeError::Truncated {
                what: "frame header",
                needed: header_len,
                left: buf.len().saturating_sub(at),
            });
        };
        let len = match self.check_header(header, offset) {
            Ok(len) => len,
            Err(reason) => return Frame::Invalid(reason),
        };
        let start = at + header_len;
        let Some(payload) = buf.get(start..start + len as usize) else {
            return Frame::Invalid(DecodeError::PastEnd {
                what: "frame",
                len: u64::from(len),
            });
        };
        let len_field = len.to_le_bytes();
        let ok = match self {
            Framing::V1 => {
                frame_crc(len_field, payload)
                    == u32::from_le_bytes([header[4], header[5], header[6], header[7]])
            }
            Framing::V2 { salt } => {
                payload_crc(salt, offset, len_field, payload)
                    == u32::from_le_bytes([header[8], header[9], header[10], header[11]])
            }
        };
        if !ok {
            return Frame::Invalid(DecodeError::Checksum { what: "frame" });
        }
        Frame::Valid {
            payload,
            next: start + len as usize,
        }
    }
}

/// A padding frame of `total` bytes (header included, more than a header)
/// at file offset `offset`.
pub fn pad_frame(framing: Framing, offset: u64, total: u64) -> Vec<u8> {
    let mut frame = vec![0u8; framing.header_len()];
    Record::Pad {
        len: total as usize - framing.header_len(),
    }
    .encode_payload(&mut frame);
    framing.seal(&mut frame, offset);
    frame
}

/// The bytes of padding from `offset` to the next page boundary: none when
/// it is on one, else the gap, or the gap and one page more when the gap is
/// too small for a frame.
pub fn pad_len(framing: Framing, offset: u64) -> u64 {
    let gap = (PAGE - offset % PAGE) % PAGE;
    match gap {
        0 => 0,
        gap if gap > framing.header_len() as u64 => gap,
        gap => gap + PAGE,
    }
}

fn salted(salt: u32, offset: u64, len_field: [u8; 4]) -> crc32fast::Hasher {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&salt.to_le_bytes());
    hasher.update(&offset.to_le_bytes());
    hasher.update(&len_field);
    hasher
}

/// Format 2's header checksum: salt, offset and length field.
fn header_crc(salt: u32, offset: u64, len_field: [u8; 4]) -> u32 {
    mask(salted(salt, offset, len_field).finalize())
}

/// Format 2's frame checksum: salt, offset, length field and payload.
fn payload_crc(salt: u32, offset: u64, len_field: [u8; 4], payload: &[u8]) -> u32 {
    let mut hasher = salted(salt, offset, len_field);
    hasher.update(payload);
    mask(hasher.finalize())
}
