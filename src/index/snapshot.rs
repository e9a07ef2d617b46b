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
use crate::contract::{BlobMeta, LeaseRow};
use crate::log::codec::Reader;
use crate::log::record::{mask, put_str};
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

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_loc(out: &mut Vec<u8>, loc: Loc) {
    put_u32(out, loc.segment);
    put_u32(out, loc.offset);
    put_u32(out, loc.len);
}

/// Encodes the state with what it covers, checksum last.
pub fn encode(state: &State, covers: &Covers) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&SNAPSHOT_MAGIC);
    put_u32(&mut out, SNAPSHOT_VERSION);
    put_u32(&mut out, covers.segment);
    put_u64(&mut out, covers.offset);
    put_u32(&mut out, covers.horizon);
    put_u32(&mut out, covers.base.len() as u32);
    for id in &covers.base {
        put_u32(&mut out, *id);
    }
    put_u32(&mut out, state.collections.len() as u32);
    for (name, c) in &state.collections {
        encode_collection(&mut out, name, c);
    }
    put_u32(&mut out, state.leases.len() as u32);
    // Sorted, so equal states encode to equal bytes (the integrity check
    // compares them).
    let mut leases: Vec<_> = state.leases.rows().collect();
    leases.sort_by(|a, b| a.0.key.cmp(&b.0.key));
    for (row, loc) in leases {
        put_str(&mut out, &row.key);
        put_str(&mut out, &row.owner);
        put_u64(&mut out, row.expires_at as u64);
        put_u64(&mut out, row.version);
        put_u64(&mut out, row.created_at as u64);
        put_u64(&mut out, row.updated_at as u64);
        put_loc(&mut out, loc);
    }
    put_u32(&mut out, state.blobs.len() as u32);
    let mut blobs: Vec<_> = state.blobs.entries().collect();
    blobs.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    for (meta, loc) in blobs {
        put_str(&mut out, &meta.id);
        put_str(&mut out, &meta.mime);
        put_u64(&mut out, meta.size);
        match &meta.owner_id {
            Some(owner) => {
                out.push(1);
                put_str(&mut out, owner);
            }
            None => out.push(0),
        }
        put_u64(&mut out, meta.created_at as u64);
        put_str(&mut out, meta.content_hash.as_deref().unwrap_or_default());
        put_loc(&mut out, loc);
    }
    let crc = mask(crc32fast::hash(&out));
    put_u32(&mut out, crc);
    out
}

fn encode_collection(out: &mut Vec<u8>, name: &str, c: &Collection) {
    put_str(out, name);
    out.push(u8::from(c.ensured));
    put_u64(out, c.created_at as u64);
    put_u32(out, c.indexes.len() as u32);
    for field in &c.indexes {
        put_str(out, field);
    }
    // Per field: its distinct values in order; documents refer to them by
    // position.
    let mut positions: Vec<BTreeMap<&str, u32>> = Vec::with_capacity(c.fields.len());
    for values in &c.fields {
        put_u32(out, values.len() as u32);
        let mut map = BTreeMap::new();
        for (i, value) in values.keys().enumerate() {
            put_str(out, value);
            map.insert(value.as_ref(), i as u32);
        }
        positions.push(map);
    }
    put_u64(out, c.docs.len() as u64);
    let mut rank: std::collections::HashMap<&str, u32> =
        std::collections::HashMap::with_capacity(c.docs.len());
    for (id, meta) in &c.docs {
        rank.insert(id, rank.len() as u32);
        put_str(out, id);
        put_loc(out, meta.loc);
        put_u64(out, meta.version);
        put_u64(out, meta.created_at as u64);
        put_u64(out, meta.updated_at as u64);
        for (field, value) in meta.values.iter().enumerate() {
            let at = value
                .as_deref()
                .and_then(|v| positions[field].get(v).copied())
                .unwrap_or(NO_VALUE);
            put_u32(out, at);
        }
    }
    // The default order as positions into the list above, so open rebuilds
    // every ordered structure from already-sorted input.
    for (_, id) in &c.by_created {
        put_u32(out, rank.get(id.as_ref()).copied().unwrap_or(NO_VALUE));
    }
}

/// Bounds a count read from the file by the bytes left (each item takes at
/// least `min_size` bytes), so a damaged count cannot cause a large
/// allocation.
fn count(r: &mut Reader<'_>, min_size: usize) -> Result<usize, String> {
    let n = r.u32()? as usize;
    if n > r.remaining() / min_size {
        return Err(format!("a count of {n} exceeds the snapshot"));
    }
    Ok(n)
}

fn loc(r: &mut Reader<'_>) -> Result<Loc, String> {
    Ok(Loc {
        segment: r.u32()?,
        offset: r.u32()?,
        len: r.u32()?,
    })
}

/// Checks a snapshot's checksum and reads what it covers; returns that and
/// a reader at the start of its body.
fn open_snapshot(bytes: &[u8]) -> Result<(Covers, Reader<'_>), String> {
    let Some(body_len) = bytes.len().checked_sub(4) else {
        return Err("the snapshot is shorter than its checksum".into());
    };
    let (body, crc) = bytes.split_at(body_len);
    if mask(crc32fast::hash(body)) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err("the snapshot checksum does not match".into());
    }
    let mut r = Reader::new(body);
    if r.take(8)? != SNAPSHOT_MAGIC {
        return Err("the snapshot does not start with its magic".into());
    }
    let version = r.u32()?;
    if version != SNAPSHOT_VERSION {
        return Err(format!(
            "snapshot format version {version} is not supported"
        ));
    }
    let segment = r.u32()?;
    let offset = r.u64()?;
    let horizon = r.u32()?;
    let base = (0..count(&mut r, 4)?)
        .map(|_| r.u32())
        .collect::<Result<_, _>>()?;
    let covers = Covers {
        segment,
        offset,
        horizon,
        base,
    };
    Ok((covers, r))
}

/// What a snapshot covers, without decoding its state.
pub fn covers(bytes: &[u8]) -> Result<Covers, String> {
    open_snapshot(bytes).map(|(covers, _)| covers)
}

/// Decodes a snapshot. `accept` checks what it covers against the log before
/// the body is decoded; `segment_ok` says whether a segment id is part of
/// the log (a location in any other segment makes the snapshot stale).
pub fn decode(
    bytes: &[u8],
    accept: impl Fn(&Covers) -> Result<(), String>,
    segment_ok: impl Fn(u32) -> bool,
) -> Result<(State, Covers), String> {
    let (covers, mut r) = open_snapshot(bytes)?;
    accept(&covers)?;
    let checked_loc = |r: &mut Reader<'_>| -> Result<Loc, String> {
        let l = loc(r)?;
        if segment_ok(l.segment) {
            Ok(l)
        } else {
            Err(format!(
                "a location in segment {}, which is not in the log",
                l.segment
            ))
        }
    };
    let mut state = State::default();
    for _ in 0..count(&mut r, 17)? {
        let (name, collection) = decode_collection(&mut r, &checked_loc)?;
        state.collections.insert(name, collection);
    }
    for _ in 0..count(&mut r, 56)? {
        let row = LeaseRow {
            key: r.str()?.to_string(),
            owner: r.str()?.to_string(),
            expires_at: r.u64()? as i64,
            version: r.u64()?,
            created_at: r.u64()? as i64,
            updated_at: r.u64()? as i64,
        };
        state.leases.set(row, checked_loc(&mut r)?);
    }
    for _ in 0..count(&mut r, 41)? {
        let id = r.str()?.to_string();
        let mime = r.str()?.to_string();
        let size = r.u64()?;
        let owner_id = match r.u8()? {
            0 => None,
            1 => Some(r.str()?.to_string()),
            flag => return Err(format!("blob owner flag {flag}")),
        };
        let created_at = r.u64()? as i64;
        let hash = r.str()?.to_string();
        let meta = BlobMeta {
            id,
            mime,
            size,
            owner_id,
            created_at,
            content_hash: Some(hash),
        };
        state.blobs.insert(meta, checked_loc(&mut r)?);
    }
    if r.remaining() != 0 {
        return Err(format!(
            "{} unexpected bytes at the end of the snapshot",
            r.remaining()
        ));
    }
    Ok((state, covers))
}

/// Per field, per dictionary value: its documents as (created_at, id).
type PostingLists = Vec<Vec<Vec<(i64, Arc<str>)>>>;

type LocReader<'f> = dyn Fn(&mut Reader<'_>) -> Result<Loc, String> + 'f;

fn decode_collection(
    r: &mut Reader<'_>,
    loc: &LocReader<'_>,
) -> Result<(String, Collection), String> {
    let name = r.str()?.to_string();
    let ensured = r.u8()? != 0;
    let created_at = r.u64()? as i64;
    let indexes: Vec<String> = (0..count(r, 4)?)
        .map(|_| r.str().map(str::to_string))
        .collect::<Result<_, _>>()?;
    let mut dictionaries: Vec<Vec<Arc<str>>> = Vec::with_capacity(indexes.len());
    for _ in &indexes {
        let values = (0..count(r, 4)?)
            .map(|_| r.str().map(Arc::from))
            .collect::<Result<_, _>>()?;
        dictionaries.push(values);
    }
    let n = r.u64()?;
    if n > (r.remaining() / 48) as u64 {
        return Err(format!("a document count of {n} exceeds the snapshot"));
    }
    let mut docs = Vec::with_capacity(n as usize);
    let mut value_positions: Vec<u32> = Vec::with_capacity(n as usize * indexes.len());
    let mut live_bytes = 0u64;
    for _ in 0..n {
        let id: Arc<str> = Arc::from(r.str()?);
        let loc = loc(r)?;
        let version = r.u64()?;
        let created_at = r.u64()? as i64;
        let updated_at = r.u64()? as i64;
        let mut values = Vec::with_capacity(indexes.len());
        for (field, dictionary) in dictionaries.iter().enumerate() {
            let at = r.u32()?;
            value_positions.push(at);
            if at == NO_VALUE {
                values.push(None);
                continue;
            }
            let value = dictionary
                .get(at as usize)
                .ok_or_else(|| format!("value {at} is not in the dictionary of field {field}"))?;
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
    // The default order, and each field's postings in that order.
    let mut seen = vec![false; docs.len()];
    let mut by_created = Vec::with_capacity(docs.len());
    let mut postings: PostingLists = dictionaries
        .iter()
        .map(|d| vec![Vec::new(); d.len()])
        .collect();
    for _ in 0..n {
        let at = r.u32()? as usize;
        if at >= docs.len() || std::mem::replace(&mut seen[at], true) {
            return Err(format!(
                "the order of \"{name}\" names document {at} twice or out of range"
            ));
        }
        let (id, meta) = &docs[at];
        by_created.push((meta.created_at, id.clone()));
        for (field, lists) in postings.iter_mut().enumerate() {
            let value = value_positions[at * dictionaries.len() + field];
            if value != NO_VALUE {
                lists[value as usize].push((meta.created_at, id.clone()));
            }
        }
    }
    let count = docs.len();
    let docs: BTreeMap<Arc<str>, DocMeta> = docs.into_iter().collect();
    if docs.len() != count {
        return Err(format!("\"{name}\" holds a document id twice"));
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
