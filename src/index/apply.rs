//! The one way the state changes: [`State::apply`], for replayed records
//! and live writes alike, and the conversions between log records and the
//! contract's rows.
//!
//! A [`Change`] is a record in the form the state applies. Replay makes one
//! from each decoded record (borrowing its fields); a live write builds one
//! directly, holding what it has already computed — the index values of the
//! body it parsed, the backfill values it read before appending, the lease
//! row or blob metadata itself — so that nothing is parsed, read or built a
//! second time. The store appends [`Change::record`], then applies the
//! change.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{IndexValues, PutMeta, State};
use crate::blob_files;
use crate::codec::DecodeError;
use crate::contract::{BlobMeta, Document, LeaseRow, RawDocument};
use crate::document_rules;
use crate::log::record::{Record, BLOB_HASH_LEN};
use crate::log::segment::Loc;
use crate::Result;

/// Reads the body of the document record at a location: how a replayed
/// ensure backfills the index values of the documents already stored.
pub type Bodies<'b> = &'b dyn Fn(Loc) -> Result<Vec<u8>>;

/// One change to the state, as a record of the log carries it.
#[derive(Debug)]
pub enum Change<'a> {
    /// A collection ensured, with its complete index list.
    Collection {
        name: &'a str,
        /// `None` in records of kind 1, which lack it.
        created_at: Option<i64>,
        indexes: Vec<String>,
        /// The values of the fields this adds, for each document by its
        /// location, when a live ensure read them before appending; `None`
        /// on replay, which reads the bodies then.
        backfill: Option<HashMap<Loc, IndexValues>>,
    },
    /// A document written.
    DocPut {
        collection: &'a str,
        id: &'a str,
        version: u64,
        created_at: i64,
        updated_at: i64,
        body: Cow<'a, [u8]>,
        /// The body's index values for the collection's fields, when a live
        /// write has the body parsed already; `None` on replay, which
        /// parses the body.
        values: Option<IndexValues>,
    },
    /// A document removed.
    DocDelete { collection: &'a str, id: &'a str },
    /// A lease row after an acquire or renew.
    LeaseSet(LeaseRow),
    /// A lease released by its holder.
    LeaseDelete { key: &'a str },
    /// Every lease of an owner released.
    LeaseReleaseAll { owner: &'a str },
    /// A blob's metadata; `hash` is the raw form of its content hash.
    BlobPut {
        meta: BlobMeta,
        hash: [u8; BLOB_HASH_LEN],
    },
    /// A blob removed.
    BlobDelete { id: &'a str },
}

impl<'a> Change<'a> {
    /// The change a replayed record makes; `None` for padding.
    pub fn from_record(record: Record<'a>) -> Option<Change<'a>> {
        Some(match record {
            Record::Collection {
                name,
                created_at,
                indexes,
            } => Change::Collection {
                name,
                created_at,
                indexes: indexes.into_iter().map(str::to_string).collect(),
                backfill: None,
            },
            Record::DocPut {
                collection,
                id,
                version,
                created_at,
                updated_at,
                body,
            } => Change::DocPut {
                collection,
                id,
                version,
                created_at,
                updated_at,
                body: Cow::Borrowed(body),
                values: None,
            },
            Record::DocDelete { collection, id } => Change::DocDelete { collection, id },
            Record::LeaseSet { .. } => Change::LeaseSet(lease_row(&record)?),
            Record::LeaseDelete { key } => Change::LeaseDelete { key },
            Record::LeaseReleaseAll { owner } => Change::LeaseReleaseAll { owner },
            Record::BlobPut { hash, .. } => Change::BlobPut {
                meta: blob_meta(&record)?,
                hash,
            },
            Record::BlobDelete { id } => Change::BlobDelete { id },
            Record::Pad { .. } => return None,
        })
    }

    /// The record that carries this change in the log.
    pub fn record(&self) -> Record<'_> {
        match self {
            Change::Collection {
                name,
                created_at,
                indexes,
                ..
            } => Record::Collection {
                name,
                created_at: *created_at,
                indexes: indexes.iter().map(String::as_str).collect(),
            },
            Change::DocPut {
                collection,
                id,
                version,
                created_at,
                updated_at,
                body,
                ..
            } => Record::DocPut {
                collection,
                id,
                version: *version,
                created_at: *created_at,
                updated_at: *updated_at,
                body,
            },
            Change::DocDelete { collection, id } => Record::DocDelete { collection, id },
            Change::LeaseSet(row) => lease_record(row),
            Change::LeaseDelete { key } => Record::LeaseDelete { key },
            Change::LeaseReleaseAll { owner } => Record::LeaseReleaseAll { owner },
            Change::BlobPut { meta, hash } => Record::BlobPut {
                id: &meta.id,
                mime: &meta.mime,
                size: meta.size,
                owner: meta.owner_id.as_deref(),
                created_at: meta.created_at,
                hash: *hash,
            },
            Change::BlobDelete { id } => Record::BlobDelete { id },
        }
    }
}

impl State {
    /// Applies a replayed record at `loc` (padding changes nothing).
    ///
    /// # Errors
    /// As [`State::apply`].
    pub fn replay(&mut self, record: Record<'_>, loc: Loc, bodies: Bodies<'_>) -> Result<()> {
        match Change::from_record(record) {
            Some(change) => self.apply(change, loc, bodies),
            None => Ok(()),
        }
    }

    /// Applies a change whose record is at `loc`: the one path by which
    /// both replay and live writes change the state, so a store rebuilt
    /// from its log equals the one that wrote it.
    ///
    /// # Errors
    /// A body `bodies` cannot read (an ensure's backfill on replay), or a
    /// collection record that reorders the index fields; the state is
    /// unchanged then.
    pub fn apply(&mut self, change: Change<'_>, loc: Loc, bodies: Bodies<'_>) -> Result<()> {
        match change {
            Change::Collection {
                name,
                created_at,
                indexes,
                mut backfill,
            } => self.apply_collection(name, created_at, &indexes, |meta, fields| {
                match backfill.as_mut() {
                    // Read before the record was appended, under the
                    // writer lock that keeps every location stable.
                    Some(known) => Ok(known.remove(&meta.loc).unwrap_or_default()),
                    None => Ok(stored_values(&bodies(meta.loc)?, fields)),
                }
            }),
            Change::DocPut {
                collection,
                id,
                version,
                created_at,
                updated_at,
                body,
                values,
            } => {
                let put = PutMeta {
                    version,
                    created_at,
                    updated_at,
                    loc,
                };
                self.apply_put(collection, id, put, |fields| {
                    Ok(match values {
                        // Computed for these same fields: the writer lock
                        // keeps them from changing since.
                        Some(values) if values.len() == fields.len() => values,
                        _ => stored_values(&body, fields),
                    })
                })
            }
            Change::DocDelete { collection, id } => {
                self.apply_delete(collection, id);
                Ok(())
            }
            Change::LeaseSet(row) => {
                self.leases.set(row, loc);
                Ok(())
            }
            Change::LeaseDelete { key } => {
                self.leases.remove(key);
                Ok(())
            }
            Change::LeaseReleaseAll { owner } => {
                self.leases.release_all(owner);
                Ok(())
            }
            Change::BlobPut { meta, .. } => {
                self.blobs.insert(meta, loc);
                Ok(())
            }
            Change::BlobDelete { id } => {
                self.blobs.remove(id);
                Ok(())
            }
        }
    }
}

/// The index strings of a parsed body for each of `fields`.
pub fn values_of(data: &Map<String, Value>, fields: &[String]) -> IndexValues {
    fields
        .iter()
        .map(|f| document_rules::index_value(data, f))
        .collect()
}

/// The index values of a stored body. A body that verified but does not
/// parse (one written before the nesting limit existed, say) must never stop
/// open: it gets no index values, and reading it reports `Corruption` with
/// its place in the log, which the integrity check lists too.
pub fn stored_values(body: &[u8], fields: &[String]) -> IndexValues {
    match serde_json::from_slice::<Map<String, Value>>(body) {
        Ok(data) => values_of(&data, fields),
        Err(_) => vec![None; fields.len()],
    }
}

/// What a `DocPut` record holds: collection, id, version, created and
/// updated times, and the body's bytes; otherwise why it is not one.
type DocPut<'r> = (&'r str, &'r str, u64, i64, i64, &'r [u8]);

fn doc_put<'r>(record: &Record<'r>) -> std::result::Result<DocPut<'r>, DecodeError> {
    match *record {
        Record::DocPut {
            collection,
            id,
            version,
            created_at,
            updated_at,
            body,
        } => Ok((collection, id, version, created_at, updated_at, body)),
        _ => Err(DecodeError::malformed("expected a document record")),
    }
}

/// The document a `DocPut` record writes, its body parsed straight from
/// the record's bytes; otherwise why it is not one.
pub fn document(record: &Record<'_>) -> std::result::Result<Document, DecodeError> {
    let (collection, id, version, created_at, updated_at, body) = doc_put(record)?;
    let data = serde_json::from_slice(body)
        .map_err(|e| DecodeError::malformed(format!("document body is not a JSON object: {e}")))?;
    Ok(Document {
        id: id.to_string(),
        collection: collection.to_string(),
        data,
        version,
        created_at,
        updated_at,
    })
}

/// The document a `DocPut` record writes, its body handed back as the JSON
/// text it was stored as. The engine serialized the text and the frame
/// holding it verified, so it is neither parsed nor re-serialized here.
pub fn raw_document(record: &Record<'_>) -> std::result::Result<RawDocument, DecodeError> {
    let (collection, id, version, created_at, updated_at, body) = doc_put(record)?;
    let data = std::str::from_utf8(body)
        .map_err(|e| DecodeError::malformed(format!("document body is not UTF-8 text: {e}")))?;
    Ok(RawDocument {
        id: id.to_string(),
        collection: collection.to_string(),
        data: data.to_string(),
        version,
        created_at,
        updated_at,
    })
}

/// The record that writes a lease row.
pub fn lease_record(row: &LeaseRow) -> Record<'_> {
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
pub fn lease_row(record: &Record<'_>) -> Option<LeaseRow> {
    let Record::LeaseSet {
        key,
        owner,
        expires_at,
        version,
        created_at,
        updated_at,
    } = *record
    else {
        return None;
    };
    Some(LeaseRow {
        key: key.to_string(),
        owner: owner.to_string(),
        expires_at,
        version,
        created_at,
        updated_at,
    })
}

/// The metadata a `BlobPut` record writes.
pub fn blob_meta(record: &Record<'_>) -> Option<BlobMeta> {
    let Record::BlobPut {
        id,
        mime,
        size,
        owner,
        created_at,
        hash,
    } = *record
    else {
        return None;
    };
    Some(BlobMeta {
        id: id.to_string(),
        mime: mime.to_string(),
        size,
        owner_id: owner.map(str::to_string),
        created_at,
        content_hash: Some(blob_files::hex(&hash)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(body: &[u8]) -> Vec<Record<'_>> {
        vec![
            Record::Collection {
                name: "c",
                created_at: Some(5),
                indexes: vec!["a", "b.c"],
            },
            Record::Collection {
                name: "old",
                created_at: None,
                indexes: vec![],
            },
            Record::DocPut {
                collection: "c",
                id: "d",
                version: 3,
                created_at: 1,
                updated_at: 2,
                body,
            },
            Record::DocDelete {
                collection: "c",
                id: "d",
            },
            Record::LeaseSet {
                key: "k",
                owner: "o",
                expires_at: 9,
                version: 2,
                created_at: 1,
                updated_at: 3,
            },
            Record::LeaseDelete { key: "k" },
            Record::LeaseReleaseAll { owner: "o" },
            Record::BlobPut {
                id: "b",
                mime: "text/plain",
                size: 4,
                owner: Some("o"),
                created_at: 7,
                hash: [0xab; BLOB_HASH_LEN],
            },
            Record::BlobPut {
                id: "b2",
                mime: "m",
                size: 0,
                owner: None,
                created_at: 8,
                hash: [1; BLOB_HASH_LEN],
            },
            Record::BlobDelete { id: "b" },
        ]
    }

    #[test]
    fn a_change_carries_the_record_it_was_made_from() {
        let body = br#"{"a":1}"#;
        for record in records(body) {
            let change = Change::from_record(record.clone()).unwrap();
            assert_eq!(change.record(), record);
        }
        assert!(Change::from_record(Record::Pad { len: 8 }).is_none());
    }

    #[test]
    fn a_record_converts_to_its_row_and_back() {
        let body = br#"{"a":{"b":[1,2]}}"#;
        for record in records(body) {
            if let Record::DocPut { id, version, .. } = record {
                let doc = document(&record).unwrap();
                assert_eq!((doc.id.as_str(), doc.version), (id, version));
                assert_eq!(serde_json::to_vec(&doc.data).unwrap(), body);
            } else {
                assert!(document(&record).is_err());
            }
            match lease_row(&record) {
                Some(row) => assert_eq!(lease_record(&row), record),
                None => assert!(!matches!(record, Record::LeaseSet { .. })),
            }
        }
        let bad = Record::DocPut {
            collection: "c",
            id: "d",
            version: 1,
            created_at: 1,
            updated_at: 1,
            body: b"[1]",
        };
        assert!(document(&bad).is_err());
    }

    #[test]
    fn a_blob_record_becomes_its_metadata() {
        let hash = [0xab; BLOB_HASH_LEN];
        let record = Record::BlobPut {
            id: "b",
            mime: "text/plain",
            size: 4,
            owner: Some("o"),
            created_at: 7,
            hash,
        };
        let meta = blob_meta(&record).unwrap();
        assert_eq!(meta.id, "b");
        assert_eq!(meta.owner_id.as_deref(), Some("o"));
        assert_eq!(meta.content_hash, Some(blob_files::hex(&hash)));
        assert!(blob_meta(&Record::BlobDelete { id: "b" }).is_none());
    }

    #[test]
    fn precomputed_values_and_replayed_bodies_index_alike() {
        let loc = |offset| Loc {
            segment: 1,
            offset,
            len: 10,
        };
        let no_bodies = |_| -> Result<Vec<u8>> { Err(crate::Error::invalid("no bodies")) };
        let body = br#"{"a":"x","n":2}"#.to_vec();
        let data: Map<String, Value> = serde_json::from_slice(&body).unwrap();
        let ensure = Record::Collection {
            name: "c",
            created_at: Some(1),
            indexes: vec!["a", "n"],
        };
        let mut replayed = State::default();
        let mut live = State::default();
        for state in [&mut replayed, &mut live] {
            state.replay(ensure.clone(), loc(0), &no_bodies).unwrap();
        }
        let put = |values| Change::DocPut {
            collection: "c",
            id: "d",
            version: 1,
            created_at: 1,
            updated_at: 1,
            body: Cow::Borrowed(&body),
            values,
        };
        replayed.apply(put(None), loc(20), &no_bodies).unwrap();
        let values = values_of(&data, live.indexes("c"));
        live.apply(put(Some(values)), loc(20), &no_bodies).unwrap();
        assert_eq!(replayed.doc("c", "d"), live.doc("c", "d"));
        let (a, b) = (
            replayed.doc_values("c", "d").unwrap(),
            live.doc_values("c", "d").unwrap(),
        );
        assert_eq!(a, b);
        assert_eq!(a, vec![Some("x"), Some("2")]);
    }
}
