//! The index snapshot: the whole in-memory state as bytes, so open can load
//! it and replay only the log written after it instead of decoding every
//! document. FORMAT.md gives the layout; the driver writes the bytes to the
//! `SNAPSHOT` file at compaction and at close.
//!
//! Index values are stored once per field (a sorted dictionary) and each
//! document refers to its value by position, which keeps the file small and
//! lets load share one string per distinct value.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::collection::{Collection, DocMeta};
use super::State;
use crate::codec::{checked_body, DecodeError, Reader, Writer};
use crate::contract::{BlobMeta, LeaseRow};
use crate::log::segment::Loc;

/// The first eight bytes of a snapshot.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"LOGSTSNP";
/// The snapshot's own format version (unchanged since format 1).
pub const SNAPSHOT_VERSION: u32 = 1;
/// Marks a document with no value for a field.
pub const NO_VALUE: u32 = u32::MAX;

/// What a snapshot covers: the log up to `position`, with the segment
/// layout of that moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Covers {
    pub segment: u32,
    pub offset: u64,
    pub horizon: u32,
    pub base: Vec<u32>,
}

fn put_loc(w: &mut Writer<'_>, loc: Loc) {
    w.u32(loc.segment);
    w.u32(loc.offset);
    w.u32(loc.len);
}

/// Encodes the state with what it covers, checksum last.
pub fn encode(state: &State, covers: &Covers) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out);
    w.raw(&SNAPSHOT_MAGIC);
    w.u32(SNAPSHOT_VERSION);
    w.u32(covers.segment);
    w.u64(covers.offset);
    w.u32(covers.horizon);
    w.count(covers.base.len());
    for id in &covers.base {
        w.u32(*id);
    }
    w.count(state.collections.len());
    for (name, c) in &state.collections {
        encode_collection(&mut w, name, c);
    }
    w.count(state.leases.len());
    // Sorted, so equal states encode to equal bytes (the integrity check
    // compares them).
    let mut leases: Vec<_> = state.leases.rows().collect();
    leases.sort_by(|a, b| a.0.key.cmp(&b.0.key));
    for (row, loc) in leases {
        w.str(&row.key);
        w.str(&row.owner);
        w.i64(row.expires_at);
        w.u64(row.version);
        w.i64(row.created_at);
        w.i64(row.updated_at);
        put_loc(&mut w, loc);
    }
    w.count(state.blobs.len());
    let mut blobs: Vec<_> = state.blobs.entries().collect();
    blobs.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    for (meta, loc) in blobs {
        w.str(&meta.id);
        w.str(&meta.mime);
        w.u64(meta.size);
        match &meta.owner_id {
            Some(owner) => {
                w.u8(1);
                w.str(owner);
            }
            None => w.u8(0),
        }
        w.i64(meta.created_at);
        w.str(meta.content_hash.as_deref().unwrap_or_default());
        put_loc(&mut w, loc);
    }
    w.checksum();
    out
}

fn encode_collection(w: &mut Writer<'_>, name: &str, c: &Collection) {
    w.str(name);
    w.u8(u8::from(c.ensured));
    w.i64(c.created_at);
    w.count(c.indexes.len());
    for field in &c.indexes {
        w.str(field);
    }
    // Per field: its distinct values in order; documents refer to them by
    // position.
    let mut positions: Vec<BTreeMap<&str, u32>> = Vec::with_capacity(c.fields.len());
    for values in &c.fields {
        w.count(values.len());
        let mut map = BTreeMap::new();
        for (i, value) in values.keys().enumerate() {
            w.str(value);
            map.insert(value.as_ref(), i as u32);
        }
        positions.push(map);
    }
    w.u64(c.docs.len() as u64);
    let mut rank: std::collections::HashMap<&str, u32> =
        std::collections::HashMap::with_capacity(c.docs.len());
    for (id, meta) in &c.docs {
        rank.insert(id, rank.len() as u32);
        w.str(id);
        put_loc(w, meta.loc);
        w.u64(meta.version);
        w.i64(meta.created_at);
        w.i64(meta.updated_at);
        for (field, value) in meta.values.iter().enumerate() {
            let at = value
                .as_deref()
                .and_then(|v| positions[field].get(v).copied())
                .unwrap_or(NO_VALUE);
            w.u32(at);
        }
    }
    // The default order as positions into the list above, so open rebuilds
    // every ordered structure from already-sorted input.
    for (_, id) in &c.by_created {
        w.u32(rank.get(id.as_ref()).copied().unwrap_or(NO_VALUE));
    }
}

fn loc(r: &mut Reader<'_>) -> Result<Loc, DecodeError> {
    Ok(Loc {
        segment: r.u32()?,
        offset: r.u32()?,
        len: r.u32()?,
    })
}

/// A snapshot whose checksum verified, with what it covers read and its
/// body not yet decoded: the caller checks `covers` against the log first,
/// and decodes nothing from a stale snapshot.
#[derive(Debug)]
pub struct Opened<'a> {
    /// What the snapshot covers.
    pub covers: Covers,
    body: Reader<'a>,
}

/// Checks a snapshot's checksum and reads what it covers.
pub fn open(bytes: &[u8]) -> Result<Opened<'_>, DecodeError> {
    let mut r = Reader::new("snapshot", checked_body("snapshot", bytes)?);
    if r.take(8)? != SNAPSHOT_MAGIC {
        return Err(DecodeError::BadMagic { what: "snapshot" });
    }
    let version = r.u32()?;
    if version != SNAPSHOT_VERSION {
        return Err(DecodeError::Version {
            what: "snapshot",
            version,
            reads: "version 1",
        });
    }
    let segment = r.u32()?;
    let offset = r.u64()?;
    let horizon = r.u32()?;
    let base = (0..r.count(4)?)
        .map(|_| r.u32())
        .collect::<Result<_, _>>()?;
    let covers = Covers {
        segment,
        offset,
        horizon,
        base,
    };
    Ok(Opened { covers, body: r })
}

/// What a snapshot covers, without decoding its state.
pub fn covers(bytes: &[u8]) -> Result<Covers, DecodeError> {
    open(bytes).map(|opened| opened.covers)
}

impl Opened<'_> {
    /// Decodes the state. `segment_ok` says whether a segment id is part of
    /// the log (a location in any other segment makes the snapshot stale).
    pub fn decode(self, segment_ok: impl Fn(u32) -> bool) -> Result<(State, Covers), DecodeError> {
        let Opened { covers, mut body } = self;
        let r = &mut body;
        let checked_loc = |r: &mut Reader<'_>| -> Result<Loc, DecodeError> {
            let l = loc(r)?;
            if segment_ok(l.segment) {
                Ok(l)
            } else {
                Err(DecodeError::malformed(format!(
                    "a location in segment {}, which is not in the log",
                    l.segment
                )))
            }
        };
        let mut state = State::default();
        for _ in 0..r.count(17)? {
            let (name, collection) = decode_collection(r, &checked_loc)?;
            state.collections.insert(name, collection);
        }
        for _ in 0..r.count(56)? {
            let row = LeaseRow {
                key: r.str()?.to_string(),
                owner: r.str()?.to_string(),
                expires_at: r.i64()?,
                version: r.u64()?,
                created_at: r.i64()?,
                updated_at: r.i64()?,
            };
            state.leases.set(row, checked_loc(r)?);
        }
        for _ in 0..r.count(41)? {
            let meta = decode_blob(r)?;
            state.blobs.insert(meta, checked_loc(r)?);
        }
        r.finish()?;
        Ok((state, covers))
    }
}

fn decode_blob(r: &mut Reader<'_>) -> Result<BlobMeta, DecodeError> {
    let id = r.str()?.to_string();
    let mime = r.str()?.to_string();
    let size = r.u64()?;
    let owner_id = match r.u8()? {
        0 => None,
        1 => Some(r.str()?.to_string()),
        flag => return Err(DecodeError::malformed(format!("blob owner flag {flag}"))),
    };
    let created_at = r.i64()?;
    let hash = r.str()?.to_string();
    Ok(BlobMeta {
        id,
        mime,
        size,
        owner_id,
        created_at,
        content_hash: Some(hash),
    })
}

/// Per field, per dictionary value: its documents as (created_at, id).
type PostingLists = Vec<Vec<Vec<(i64, Arc<str>)>>>;

/// A collection's documents as (created_at, id), in the default order.
type DefaultOrder = Vec<(i64, Arc<str>)>;

type LocReader<'f> = dyn Fn(&mut Reader<'_>) -> Result<Loc, DecodeError> + 'f;

/// A collection's documents in id order, as the snapshot lists them.
struct Documents {
    docs: Vec<(Arc<str>, DocMeta)>,
    /// Per document, per field: the position of its value in the field's
    /// dictionary, or [`NO_VALUE`].
    value_positions: Vec<u32>,
    live_bytes: u64,
}

fn decode_collection(
    r: &mut Reader<'_>,
    loc: &LocReader<'_>,
) -> Result<(String, Collection), DecodeError> {
    let name = r.str()?.to_string();
    let ensured = r.u8()? != 0;
    let created_at = r.i64()?;
    let indexes: Vec<String> = (0..r.count(4)?)
        .map(|_| r.str().map(str::to_string))
        .collect::<Result<_, _>>()?;
    let mut dictionaries: Vec<Vec<Arc<str>>> = Vec::with_capacity(indexes.len());
    for _ in &indexes {
        let values = (0..r.count(4)?)
            .map(|_| r.str().map(Arc::from))
            .collect::<Result<_, _>>()?;
        dictionaries.push(values);
    }
    let documents = decode_documents(r, loc, &dictionaries)?;
    let (by_created, postings) = decode_order(r, &name, &documents, &dictionaries)?;
    let Documents {
        docs, live_bytes, ..
    } = documents;
    let count = docs.len();
    let docs: BTreeMap<Arc<str>, DocMeta> = docs.into_iter().collect();
    if docs.len() != count {
        return Err(DecodeError::malformed(format!(
            "\"{name}\" holds a document id twice"
        )));
    }
    let fields = dictionaries
        .into_iter()
        .zip(postings)
        .map(|(dictionary, lists)| {
            dictionary
                .into_iter()
                .zip(lists)
                .filter(|(_, list)| !list.is_empty())
                .map(|(value, list)| (value, list.into_iter().collect::<BTreeSet<_>>()))
                .collect::<BTreeMap<_, _>>()
        })
        .collect();
    let collection = Collection {
        ensured,
        created_at,
        indexes,
        docs,
        by_created: by_created.into_iter().collect(),
        fields,
        live_bytes,
    };
    Ok((name, collection))
}

/// Reads a collection's documents, each value checked against its field's
/// dictionary.
fn decode_documents(
    r: &mut Reader<'_>,
    loc: &LocReader<'_>,
    dictionaries: &[Vec<Arc<str>>],
) -> Result<Documents, DecodeError> {
    let n = r.u64()?;
    let n = r.bounded(n, 48)?;
    let mut docs = Vec::with_capacity(n);
    let mut value_positions: Vec<u32> = Vec::with_capacity(n * dictionaries.len());
    let mut live_bytes = 0u64;
    for _ in 0..n {
        let id: Arc<str> = Arc::from(r.str()?);
        let loc = loc(r)?;
        let version = r.u64()?;
        let created_at = r.i64()?;
        let updated_at = r.i64()?;
        let mut values = Vec::with_capacity(dictionaries.len());
        for (field, dictionary) in dictionaries.iter().enumerate() {
            let at = r.u32()?;
            value_positions.push(at);
            if at == NO_VALUE {
                values.push(None);
                continue;
            }
            let value = dictionary.get(at as usize).ok_or_else(|| {
                DecodeError::malformed(format!(
                    "value {at} is not in the dictionary of field {field}"
                ))
            })?;
            values.push(Some(value.clone()));
        }
        live_bytes += u64::from(loc.len);
        let meta = DocMeta {
            loc,
            version,
            created_at,
            updated_at,
            values: values.into_boxed_slice(),
        };
        docs.push((id, meta));
    }
    Ok(Documents {
        docs,
        value_positions,
        live_bytes,
    })
}

/// Reads the default order (positions into the documents) and builds each
/// field's postings in that order.
fn decode_order(
    r: &mut Reader<'_>,
    name: &str,
    documents: &Documents,
    dictionaries: &[Vec<Arc<str>>],
) -> Result<(DefaultOrder, PostingLists), DecodeError> {
    let docs = &documents.docs;
    let mut seen = vec![false; docs.len()];
    let mut by_created = Vec::with_capacity(docs.len());
    let mut postings: PostingLists = dictionaries
        .iter()
        .map(|d| vec![Vec::new(); d.len()])
        .collect();
    for _ in 0..docs.len() {
        let at = r.u32()? as usize;
        if at >= docs.len() || std::mem::replace(&mut seen[at], true) {
            return Err(DecodeError::malformed(format!(
                "the order of \"{name}\" names document {at} twice or out of range"
            )));
        }
        let (id, meta) = &docs[at];
        by_created.push((meta.created_at, id.clone()));
        for (field, lists) in postings.iter_mut().enumerate() {
            let value = documents.value_positions[at * dictionaries.len() + field];
            if value != NO_VALUE {
                lists[value as usize].push((meta.created_at, id.clone()));
            }
        }
    }
    Ok((by_created, postings))
}
