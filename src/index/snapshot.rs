//! The index snapshot: the whole in-memory state as bytes, so open can load
//! it and replay only the log written after it instead of decoding every
//! document. FORMAT.md gives the layout; the driver writes the bytes to the
//! `SNAPSHOT` file at compaction and at close.
//!
//! Index values are stored once per field (a sorted dictionary) and each
//! document refers to its value by position, which keeps the file small and
//! lets load share one string per distinct value.

use std::sync::Arc;

pub use super::collection::NO_VALUE;
use super::collection::{Collection, Docs, Field, Slot};
use super::ids::{entry_len, push_len, IdArena, NO_ID};
use super::order::OrderList;
use super::State;
use crate::codec::{checked_body, DecodeError, Reader, Writer};
use crate::contract::{BlobMeta, LeaseRow};
use crate::limits::MAX_ID_BYTES;
use crate::log::record::{FRAME_HEADER_LEN, MAX_PAYLOAD_LEN};
use crate::log::segment::Loc;

/// The first eight bytes of a snapshot.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"LOGSTSNP";
/// The snapshot's own format version: 3 since index paths read an array's
/// `length` (a snapshot of version 2 may lack those values); its layout is
/// version 2's, the compact index (ids in one block, fixed-size document
/// fields, value columns). A snapshot of another version is not read: open
/// rejects it and replays the log, which builds the state, and the next
/// close writes version 3.
pub const SNAPSHOT_VERSION: u32 = 3;

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

/// Bytes of one document's fixed fields: location, version, two times.
pub const DOC_META_LEN: usize = 36;

fn encode_collection(w: &mut Writer<'_>, name: &str, c: &Collection) {
    w.str(name);
    w.u8(u8::from(c.ensured));
    w.i64(c.created_at);
    w.count(c.indexes.len());
    for field in &c.indexes {
        w.str(field);
    }
    // Per field: its distinct values in byte order; documents refer to them
    // by position, so the bytes do not depend on in-memory numbering (the
    // integrity check compares the encodings of equal states).
    let mut positions: Vec<Vec<u32>> = Vec::with_capacity(c.fields.len());
    for field in &c.fields {
        w.count(field.distinct());
        let mut position = vec![NO_VALUE; field.capacity()];
        for (i, (text, value)) in field.values().enumerate() {
            w.str(text);
            position[value as usize] = i as u32;
        }
        positions.push(position);
    }
    let docs = &c.docs;
    let by_id: Vec<u32> = c.primary.iter().collect();
    let mut rank = vec![NO_VALUE; docs.slots.len()];
    let mut ids = Vec::new();
    for (i, &doc) in by_id.iter().enumerate() {
        rank[doc as usize] = i as u32;
        let id = docs.id(doc);
        push_len(&mut ids, id.len());
        ids.extend_from_slice(id);
    }
    w.u64(by_id.len() as u64);
    w.u64(ids.len() as u64);
    w.raw(&ids);
    for &doc in &by_id {
        let slot = &docs.slots[doc as usize];
        put_loc(w, slot.loc);
        w.u64(slot.version);
        w.i64(slot.created_at);
        w.i64(slot.updated_at);
    }
    for (column, position) in docs.values.iter().zip(&positions) {
        for &doc in &by_id {
            let value = column[doc as usize];
            w.u32(position.get(value as usize).copied().unwrap_or(NO_VALUE));
        }
    }
    // The default order as positions in the id order, so open rebuilds
    // every ordered list from already-sorted input.
    for doc in c.by_created.iter() {
        w.u32(rank[doc as usize]);
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
            reads: "version 3",
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
        // Neighbouring documents mostly share a segment: remember the last
        // one that passed, so the check costs a compare per document.
        let last_ok = std::cell::Cell::new(None);
        let checked_loc = |r: &mut Reader<'_>| -> Result<Loc, DecodeError> {
            let l = loc(r)?;
            // A read allocates the frame's length: no length a frame can
            // never have is taken on the snapshot's word.
            if l.len as usize > FRAME_HEADER_LEN + MAX_PAYLOAD_LEN as usize {
                return Err(DecodeError::malformed(format!(
                    "a location of {} bytes, longer than any frame",
                    l.len
                )));
            }
            if last_ok.get() == Some(l.segment) || segment_ok(l.segment) {
                last_ok.set(Some(l.segment));
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
        // The smallest lease: two empty strings (4 + 4), four 8-byte fields
        // and a 12-byte location.
        for _ in 0..r.count(52)? {
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

type LocReader<'f> = dyn Fn(&mut Reader<'_>) -> Result<Loc, DecodeError> + 'f;

fn malformed(name: &str, what: impl std::fmt::Display) -> DecodeError {
    DecodeError::malformed(format!("collection \"{name}\": {what}"))
}

/// Decodes one collection, checking every invariant the index relies on
/// (ids strictly ascending, values in their dictionaries, the default
/// order a sorted permutation, no value without documents): a snapshot
/// that breaks one is rejected and the log replayed, never loaded as a
/// wrong index.
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
    for field in &indexes {
        let texts: Vec<&str> = (0..r.count(4)?)
            .map(|_| r.str())
            .collect::<Result<_, _>>()?;
        if texts.windows(2).any(|w| w[0] >= w[1]) {
            return Err(malformed(
                &name,
                format!("the values of \"{field}\" are out of order"),
            ));
        }
        dictionaries.push(texts.into_iter().map(Arc::from).collect());
    }
    let n = r.u64()?;
    let n = r.bounded(n, 1 + DOC_META_LEN + 4 + 4 * indexes.len())?;
    let (ids, slots) = decode_documents(r, &name, n, loc)?;
    let values = dictionaries
        .iter()
        .map(|d| decode_values(r, &name, n, d.len()))
        .collect::<Result<Vec<_>, _>>()?;
    let order = decode_order(r, &name, &slots)?;
    let mut fields = Vec::with_capacity(indexes.len());
    for (texts, column) in dictionaries.into_iter().zip(&values) {
        let postings = postings(&name, texts.len(), column, &order)?;
        fields.push(Field::from_sorted(texts, postings));
    }
    let live_bytes = slots.iter().map(|s| u64::from(s.loc.len)).sum();
    let collection = Collection {
        ensured,
        created_at,
        indexes,
        docs: Docs {
            slots,
            ids,
            free: Vec::new(),
            values,
        },
        // Numbers are positions in id order, so the primary list is 0..n.
        primary: OrderList::from_sorted((0..n as u32).collect()),
        by_created: OrderList::from_sorted(order),
        fields,
        live_bytes,
    };
    Ok((name, collection))
}

/// Reads the ids (copied into the arena in one piece, then checked entry by
/// entry) and each document's fixed fields; document `i` gets number `i`.
fn decode_documents(
    r: &mut Reader<'_>,
    name: &str,
    n: usize,
    loc: &LocReader<'_>,
) -> Result<(IdArena, Vec<Slot>), DecodeError> {
    let len = r.u64()?;
    let len = r.bounded(len, 1)?;
    if len >= NO_ID as usize {
        return Err(malformed(name, "its ids pass 4 GiB"));
    }
    let bytes = r.take(len)?;
    let meta = r.take(n * DOC_META_LEN)?;
    let mut slots = Vec::with_capacity(n);
    let mut at = 0usize;
    let mut previous: Option<&[u8]> = None;
    for record in meta.chunks_exact(DOC_META_LEN) {
        let rest = bytes.get(at..).unwrap_or_default();
        let (id_len, header) =
            entry_len(rest).ok_or_else(|| malformed(name, "an id is cut short"))?;
        let id = rest
            .get(header..header + id_len)
            .filter(|id| id.len() <= MAX_ID_BYTES)
            .ok_or_else(|| malformed(name, "an id is cut short or too long"))?;
        std::str::from_utf8(id).map_err(DecodeError::NotUtf8)?;
        if previous.is_some_and(|p| p >= id) {
            return Err(malformed(name, "its ids are out of order or repeated"));
        }
        previous = Some(id);
        let mut fixed = Reader::new("snapshot", record);
        slots.push(Slot {
            id: at as u32,
            loc: loc(&mut fixed)?,
            version: fixed.u64()?,
            created_at: fixed.i64()?,
            updated_at: fixed.i64()?,
        });
        at += header + id_len;
    }
    if at != len {
        return Err(malformed(
            name,
            "its id bytes do not hold exactly its documents",
        ));
    }
    Ok((IdArena::from_bytes(bytes.to_vec()), slots))
}

/// Reads one field's value positions, each checked against the dictionary.
fn decode_values(
    r: &mut Reader<'_>,
    name: &str,
    n: usize,
    dictionary_len: usize,
) -> Result<Vec<u32>, DecodeError> {
    let bytes = r.take(n * 4)?;
    let column: Vec<u32> = bytes.chunks_exact(4).map(le_u32).collect();
    if column
        .iter()
        .any(|&v| v != NO_VALUE && v as usize >= dictionary_len)
    {
        return Err(malformed(name, "a value is not in its field's dictionary"));
    }
    Ok(column)
}

/// Reads the default order and checks it is every document once, sorted by
/// (`created_at`, id): numbers are id ranks, so the id tie-break is the
/// number's. A strictly increasing sequence of `n` numbers below `n` is a
/// permutation, so no other check is needed.
fn decode_order(r: &mut Reader<'_>, name: &str, slots: &[Slot]) -> Result<Vec<u32>, DecodeError> {
    let bytes = r.take(slots.len() * 4)?;
    let order: Vec<u32> = bytes.chunks_exact(4).map(le_u32).collect();
    let key = |doc: u32| slots.get(doc as usize).map(|s| (s.created_at, doc));
    let mut previous = None;
    for &doc in &order {
        let current = key(doc);
        if current.is_none() || (previous.is_some() && previous >= current) {
            return Err(malformed(
                name,
                "its default order is not sorted or names a document twice",
            ));
        }
        previous = current;
    }
    Ok(order)
}

/// Each value's documents in the default order; every value must have some.
fn postings(
    name: &str,
    values: usize,
    column: &[u32],
    order: &[u32],
) -> Result<Vec<Vec<u32>>, DecodeError> {
    let mut counts = vec![0usize; values];
    for &value in column.iter().filter(|&&v| v != NO_VALUE) {
        counts[value as usize] += 1;
    }
    if counts.contains(&0) {
        return Err(malformed(name, "a dictionary value no document holds"));
    }
    let mut lists: Vec<Vec<u32>> = counts.into_iter().map(Vec::with_capacity).collect();
    for &doc in order {
        let value = column[doc as usize];
        if value != NO_VALUE {
            lists[value as usize].push(doc);
        }
    }
    Ok(lists)
}

fn le_u32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::mask;
    use crate::index::collection::DocMeta;

    fn covers() -> Covers {
        Covers {
            segment: 1,
            offset: 24,
            horizon: 0,
            base: vec![],
        }
    }

    fn meta(created_at: i64, offset: u32) -> DocMeta {
        DocMeta {
            loc: Loc {
                segment: 1,
                offset,
                len: 100,
            },
            version: 2,
            created_at,
            updated_at: created_at + 1,
        }
    }

    /// A collection with ties on creation time, documents without values,
    /// a removed document and a moved value; `reverse` inserts in the
    /// opposite order, which numbers the documents differently.
    fn state(reverse: bool) -> State {
        let mut state = State::default();
        let c = state.collections.entry("c".into()).or_default();
        c.ensured = true;
        c.add_fields(&["a".into(), "b".into()], |_| Ok(Vec::new()))
            .unwrap();
        let mut rows: Vec<u32> = (0..40).collect();
        if reverse {
            rows.reverse();
        }
        for i in rows {
            let a = (i % 3 != 0).then(|| format!("a{}", i % 4));
            let b = Some(format!("b{}", i % 2));
            c.upsert(&format!("id-{i:04}"), meta(i64::from(i / 5), i), &[a, b])
                .unwrap();
        }
        c.upsert("gone", meta(3, 99), &[Some("only".into()), None])
            .unwrap();
        assert!(c.remove("gone"));
        state
    }

    fn reseal(bytes: &mut Vec<u8>) {
        bytes.truncate(bytes.len() - 4);
        let crc = mask(crc32fast::hash(bytes));
        bytes.extend_from_slice(&crc.to_le_bytes());
    }

    fn decode(bytes: &[u8]) -> Result<State, DecodeError> {
        Ok(open(bytes)?.decode(|s| s == 1)?.0)
    }

    /// Leases of one-byte keys and owners are 54 bytes each: a snapshot
    /// holding only those must not be taken for one that claims more rows
    /// than its bytes can hold.
    #[test]
    fn a_snapshot_of_small_leases_alone_decodes() {
        let mut state = State::default();
        for k in ["a", "b", "c"] {
            let row = LeaseRow {
                key: k.into(),
                owner: "o".into(),
                expires_at: 5,
                version: 1,
                created_at: 1,
                updated_at: 1,
            };
            state.leases.set(row, meta(0, 30).loc);
        }
        let bytes = encode(&state, &covers());
        let decoded = decode(&bytes).unwrap();
        assert_eq!(decoded.leases.len(), 3);
        assert_eq!(encode(&decoded, &covers()), bytes);
    }

    /// A location longer than any frame is refused before a read would
    /// allocate it.
    #[test]
    fn a_location_longer_than_any_frame_is_refused() {
        let mut state = State::default();
        let mut loc = meta(0, 30).loc;
        loc.len = u32::MAX;
        let row = LeaseRow {
            key: "k".into(),
            owner: "o".into(),
            expires_at: 5,
            version: 1,
            created_at: 1,
            updated_at: 1,
        };
        state.leases.set(row, loc);
        let bytes = encode(&state, &covers());
        assert!(decode(&bytes).is_err());
    }

    #[test]
    fn a_snapshot_decodes_to_a_state_that_encodes_the_same_and_answers_alike() {
        let state = state(false);
        let bytes = encode(&state, &covers());
        assert_eq!(
            encode(&self::state(true), &covers()),
            bytes,
            "numbering does not show"
        );
        let loaded = decode(&bytes).unwrap();
        assert_eq!(encode(&loaded, &covers()), bytes);
        let (a, b) = (
            state.collection("c").unwrap(),
            loaded.collection("c").unwrap(),
        );
        assert_eq!(a.len(), 40);
        for i in 0..40 {
            let id = format!("id-{i:04}");
            assert_eq!(a.get(&id), b.get(&id));
            assert_eq!(a.values_of(&id), b.values_of(&id));
        }
        let order = |c: &Collection| -> Vec<Loc> {
            c.by_created
                .iter()
                .map(|d| c.docs.slots[d as usize].loc)
                .collect()
        };
        assert_eq!(order(a), order(b));
        assert_eq!(a.live_bytes, b.live_bytes);
        assert_eq!(b.fields[0].lookup("only"), None);
    }

    #[test]
    fn every_truncation_and_every_bit_flip_is_rejected() {
        let bytes = encode(&state(false), &covers());
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "cut at {len}");
        }
        let mut damaged = bytes.clone();
        for bit in 0..bytes.len() * 8 {
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&damaged).is_err(), "bit {bit}");
            damaged[bit / 8] ^= 1 << (bit % 8);
        }
    }

    type Damage<'a> = Box<dyn Fn(&mut Vec<u8>) + 'a>;

    /// Damage the checksum cannot see (a snapshot written by a faulty
    /// build, say) is still caught by the checks of the index's invariants.
    #[test]
    fn a_resealed_snapshot_that_breaks_an_invariant_is_rejected() {
        let bytes = encode(&state(false), &covers());
        // After the last collection: lease and blob counts, then the crc.
        let order_end = bytes.len() - 12;
        let order_start = order_end - 40 * 4;
        let position = |needle: &[u8]| {
            bytes
                .windows(needle.len())
                .position(|w| w == needle)
                .unwrap()
        };
        let cases: Vec<(&str, Damage<'_>)> = vec![
            (
                "order swapped",
                Box::new(|b: &mut Vec<u8>| b.swap(order_start, order_start + 4)),
            ),
            (
                "order repeats",
                Box::new(|b: &mut Vec<u8>| {
                    let first: Vec<u8> = b[order_start..order_start + 4].to_vec();
                    b[order_start + 4..order_start + 8].copy_from_slice(&first);
                }),
            ),
            (
                "value outside its dictionary",
                Box::new(|b: &mut Vec<u8>| {
                    b[order_start - 4..order_start].copy_from_slice(&7u32.to_le_bytes());
                }),
            ),
            (
                "ids out of order",
                Box::new(|b: &mut Vec<u8>| {
                    let at = position(b"id-0001");
                    b[at + 6] = b'9';
                }),
            ),
            (
                "version 1",
                Box::new(|b: &mut Vec<u8>| b[8..12].copy_from_slice(&1u32.to_le_bytes())),
            ),
            (
                // Same layout, but written before index paths read `length`.
                "version 2",
                Box::new(|b: &mut Vec<u8>| b[8..12].copy_from_slice(&2u32.to_le_bytes())),
            ),
            (
                "a location outside the log",
                Box::new(|b: &mut Vec<u8>| {
                    // The ids take 40 x 8 bytes from the length byte before
                    // "id-0000"; the first location's segment follows.
                    let at = position(b"id-0000") - 1 + 40 * 8;
                    b[at..at + 4].copy_from_slice(&9u32.to_le_bytes());
                }),
            ),
        ];
        assert!(decode(&bytes).is_ok());
        for (what, damage) in cases {
            let mut damaged = bytes.clone();
            damage(&mut damaged);
            reseal(&mut damaged);
            assert!(decode(&damaged).is_err(), "{what}");
        }
    }
}
