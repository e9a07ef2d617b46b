//! Record framing, checksums and payload encoding. FORMAT.md describes every
//! byte written here; `tests/format_doc.rs` holds the constants to it.

use crate::log::codec::Reader;
use crate::options::MAX_DOCUMENT_BYTES_LIMIT;

/// Bytes of a frame header: payload length (u32 LE) then checksum (u32 LE).
pub const FRAME_HEADER_LEN: usize = 8;
/// The largest payload a frame may declare: the largest document plus room
/// for its collection, id and fixed fields.
pub const MAX_PAYLOAD_LEN: u32 = (MAX_DOCUMENT_BYTES_LIMIT as u32) + 64 * 1024;
/// Added to the rotated CRC32 so that a run of zero bytes never verifies.
pub const CRC_MASK_DELTA: u32 = 0xa282_ead8;

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

/// Masks a raw CRC32 (shared with the segment header checksum).
pub fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(CRC_MASK_DELTA)
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
}

impl<'a> Record<'a> {
    /// The record that writes a lease row.
    pub fn lease_set(row: &'a crate::contract::LeaseRow) -> Self {
        Record::LeaseSet {
            key: &row.key,
            owner: &row.owner,
            expires_at: row.expires_at,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }

    /// The lease row a `LeaseSet` record writes.
    pub fn lease_row(&self) -> Option<crate::contract::LeaseRow> {
        match *self {
            Record::LeaseSet {
                key,
                owner,
                expires_at,
                version,
                created_at,
                updated_at,
            } => Some(crate::contract::LeaseRow {
                key: key.to_string(),
                owner: owner.to_string(),
                expires_at,
                version,
                created_at,
                updated_at,
            }),
            _ => None,
        }
    }

    /// The document a `DocPut` record writes, its body parsed; otherwise
    /// why it is not one.
    pub fn document(&self) -> Result<crate::contract::Document, String> {
        let Record::DocPut {
            collection,
            id,
            version,
            created_at,
            updated_at,
            body,
        } = *self
        else {
            return Err("expected a document record".into());
        };
        let data = serde_json::from_slice(body)
            .map_err(|e| format!("document body is not a JSON object: {e}"))?;
        Ok(crate::contract::Document {
            id: id.to_string(),
            collection: collection.to_string(),
            data,
            version,
            created_at,
            updated_at,
        })
    }

    /// Appends the framed record (header and payload) to `out`.
    pub fn encode_frame(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
        self.encode_payload(out);
        // Callers check documents against MAX_DOCUMENT_BYTES_LIMIT, so the
        // payload always fits the length field.
        debug_assert!(out.len() - start - FRAME_HEADER_LEN <= MAX_PAYLOAD_LEN as usize);
        let payload_len = (out.len() - start - FRAME_HEADER_LEN) as u32;
        let len_field = payload_len.to_le_bytes();
        let crc = frame_crc(len_field, &out[start + FRAME_HEADER_LEN..]);
        out[start..start + 4].copy_from_slice(&len_field);
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    }

    fn encode_payload(&self, out: &mut Vec<u8>) {
        match self {
            Record::Collection {
                name,
                created_at,
                indexes,
            } => {
                match created_at {
                    Some(at) => {
                        out.push(KIND_COLLECTION_AT);
                        put_str(out, name);
                        out.extend_from_slice(&at.to_le_bytes());
                    }
                    None => {
                        out.push(KIND_COLLECTION);
                        put_str(out, name);
                    }
                }
                out.extend_from_slice(&(indexes.len() as u32).to_le_bytes());
                for field in indexes {
                    put_str(out, field);
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
                out.push(KIND_DOC_PUT);
                put_str(out, collection);
                put_str(out, id);
                out.extend_from_slice(&version.to_le_bytes());
                out.extend_from_slice(&created_at.to_le_bytes());
                out.extend_from_slice(&updated_at.to_le_bytes());
                put_bytes(out, body);
            }
            Record::DocDelete { collection, id } => {
                out.push(KIND_DOC_DELETE);
                put_str(out, collection);
                put_str(out, id);
            }
            Record::LeaseSet {
                key,
                owner,
                expires_at,
                version,
                created_at,
                updated_at,
            } => {
                out.push(KIND_LEASE_SET);
                put_str(out, key);
                put_str(out, owner);
                out.extend_from_slice(&expires_at.to_le_bytes());
                out.extend_from_slice(&version.to_le_bytes());
                out.extend_from_slice(&created_at.to_le_bytes());
                out.extend_from_slice(&updated_at.to_le_bytes());
            }
            Record::LeaseDelete { key } => {
                out.push(KIND_LEASE_DELETE);
                put_str(out, key);
            }
            Record::LeaseReleaseAll { owner } => {
                out.push(KIND_LEASE_RELEASE_ALL);
                put_str(out, owner);
            }
            Record::BlobPut {
                id,
                mime,
                size,
                owner,
                created_at,
                hash,
            } => {
                out.push(KIND_BLOB_PUT);
                put_str(out, id);
                put_str(out, mime);
                out.extend_from_slice(&size.to_le_bytes());
                match owner {
                    Some(owner) => {
                        out.push(1);
                        put_str(out, owner);
                    }
                    None => out.push(0),
                }
                out.extend_from_slice(&created_at.to_le_bytes());
                out.extend_from_slice(hash);
            }
            Record::BlobDelete { id } => {
                out.push(KIND_BLOB_DELETE);
                put_str(out, id);
            }
        }
    }

    /// Decodes a payload whose checksum already verified. An error means the
    /// writer and this reader disagree about the format: corruption.
    pub fn decode(payload: &[u8]) -> Result<Record<'_>, String> {
        let mut r = Reader::new(payload);
        let record = match r.u8()? {
            kind @ (KIND_COLLECTION | KIND_COLLECTION_AT) => {
                let name = r.str()?;
                let created_at = match kind {
                    KIND_COLLECTION_AT => Some(r.u64()? as i64),
                    _ => None,
                };
                let count = r.u32()?;
                // Each field takes at least its 4-byte length, so a count the
                // payload cannot hold is rejected before allocating.
                if count as usize > r.remaining() / 4 {
                    return Err(format!("index count {count} exceeds the record"));
                }
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
                created_at: r.u64()? as i64,
                updated_at: r.u64()? as i64,
                body: r.bytes()?,
            },
            KIND_DOC_DELETE => Record::DocDelete {
                collection: r.str()?,
                id: r.str()?,
            },
            KIND_LEASE_SET => Record::LeaseSet {
                key: r.str()?,
                owner: r.str()?,
                expires_at: r.u64()? as i64,
                version: r.u64()?,
                created_at: r.u64()? as i64,
                updated_at: r.u64()? as i64,
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
                    flag => return Err(format!("blob owner flag {flag} is neither 0 nor 1")),
                },
                created_at: r.u64()? as i64,
                hash: r.array()?,
            },
            KIND_BLOB_DELETE => Record::BlobDelete { id: r.str()? },
            kind => return Err(format!("unknown record kind {kind}")),
        };
        if r.remaining() != 0 {
            return Err(format!(
                "{} unexpected bytes after the record",
                r.remaining()
            ));
        }
        Ok(record)
    }
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

/// What a frame at some offset turned out to be.
#[derive(Debug, PartialEq)]
pub enum Frame<'a> {
    /// A frame whose checksum verifies; the next frame starts at `next`.
    Valid { payload: &'a [u8], next: usize },
    /// No valid frame starts here.
    Invalid(String),
}

/// Checks the frame that starts at `pos` in `buf` (a whole segment image).
/// The declared length is checked against the bytes present before anything
/// is read, so a damaged length never leads to a large allocation.
pub fn read_frame(buf: &[u8], pos: usize) -> Frame<'_> {
    let Some(header) = buf.get(pos..pos + FRAME_HEADER_LEN) else {
        return Frame::Invalid(format!(
            "{} bytes left, fewer than a frame header",
            buf.len().saturating_sub(pos)
        ));
    };
    let len_field: [u8; 4] = [header[0], header[1], header[2], header[3]];
    let len = u32::from_le_bytes(len_field);
    let stored_crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 || len > MAX_PAYLOAD_LEN {
        return Frame::Invalid(format!("frame length {len} is out of range"));
    }
    let start = pos + FRAME_HEADER_LEN;
    let Some(payload) = buf.get(start..start + len as usize) else {
        return Frame::Invalid(format!("frame length {len} runs past the end of the file"));
    };
    if frame_crc(len_field, payload) != stored_crc {
        return Frame::Invalid("frame checksum does not match".to_string());
    }
    Frame::Valid {
        payload,
        next: start + len as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record<'static> {
        Record::DocPut {
            collection: "msgs",
            id: "m1",
            version: 3,
            created_at: 1_700_000_000_000,
            updated_at: -5,
            body: br#"{"a":1}"#,
        }
    }

    #[test]
    fn records_round_trip() {
        let records = [
            Record::Collection {
                name: "c",
                created_at: None,
                indexes: vec!["a", "b.c"],
            },
            Record::Collection {
                name: "c",
                created_at: Some(-7),
                indexes: vec![],
            },
            sample(),
            Record::DocDelete {
                collection: "c",
                id: "x",
            },
            Record::LeaseSet {
                key: "k",
                owner: "o",
                expires_at: -3,
                version: 2,
                created_at: 5,
                updated_at: 6,
            },
            Record::LeaseDelete { key: "k" },
            Record::LeaseReleaseAll { owner: "o" },
            Record::BlobPut {
                id: "b",
                mime: "text/plain",
                size: 5,
                owner: Some("u"),
                created_at: 9,
                hash: [7; BLOB_HASH_LEN],
            },
            Record::BlobPut {
                id: "b",
                mime: "text/plain",
                size: 5,
                owner: None,
                created_at: 9,
                hash: [7; BLOB_HASH_LEN],
            },
            Record::BlobDelete { id: "b" },
        ];
        for record in records {
            let mut buf = Vec::new();
            record.encode_frame(&mut buf);
            let Frame::Valid { payload, next } = read_frame(&buf, 0) else {
                panic!("frame did not verify")
            };
            assert_eq!(next, buf.len());
            assert_eq!(Record::decode(payload), Ok(record));
        }
    }

    #[test]
    fn zeros_never_verify() {
        let zeros = vec![0u8; 64];
        assert!(matches!(read_frame(&zeros, 0), Frame::Invalid(_)));
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let mut buf = Vec::new();
        sample().encode_frame(&mut buf);
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut damaged = buf.clone();
                damaged[byte] ^= 1 << bit;
                if let Frame::Valid { payload, .. } = read_frame(&damaged, 0) {
                    panic!("flip of bit {bit} in byte {byte} verified: {payload:?}");
                }
            }
        }
    }

    #[test]
    fn huge_lengths_are_rejected_without_reading() {
        let mut buf = vec![0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0];
        buf.extend_from_slice(&[1; 16]);
        assert!(matches!(read_frame(&buf, 0), Frame::Invalid(_)));
    }
}
