//! One collection's in-memory state, compact: documents are numbered by a
//! `u32`, their metadata sits in one vector indexed by that number, index
//! values are `u32`s into a per-field dictionary that holds each distinct
//! string once, and the primary map, the default order and every posting
//! list are [`OrderList`]s of document numbers (4 bytes an entry).
//!
//! The contract's orders stay exact: the primary list is ordered by id, the
//! default order and each posting list by (`created_at`, id), comparing the
//! id only when the times are equal. BENCHMARKS.md gives the bytes per
//! document this costs.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::ids::{IdArena, NO_ID};
use super::order::OrderList;
use crate::log::segment::Loc;

/// Marks a document with no value for a field (here and in the snapshot).
pub const NO_VALUE: u32 = u32::MAX;

/// A table at least this large (bytes of capacity) is not copied by a
/// write that may not wait ([`Collection::upsert_copies`]). Growing a
/// 32 KiB list of free numbers took 110 µs in place (measured at 300k
/// documents, the fastest of two runs), where a write costs a few µs.
pub const LARGE_TABLE: usize = 64 * 1024;

/// True when one more entry would grow `table` past its capacity, copying
/// at least [`LARGE_TABLE`] bytes.
fn grows<T>(table: &Vec<T>) -> bool {
    table.len() == table.capacity() && table.capacity() * std::mem::size_of::<T>() >= LARGE_TABLE
}

/// What the contract needs of a document besides its body, which stays in
/// the segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocMeta {
    pub loc: Loc,
    pub version: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A document number's entry: 40 bytes, no padding. `id` is the offset of
/// its id in the collection's [`IdArena`], [`NO_ID`] for a free number.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    pub id: u32,
    pub loc: Loc,
    pub version: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Slot {
    fn new(id: u32, meta: DocMeta) -> Self {
        Slot {
            id,
            loc: meta.loc,
            version: meta.version,
            created_at: meta.created_at,
            updated_at: meta.updated_at,
        }
    }

    pub fn meta(&self) -> DocMeta {
        DocMeta {
            loc: self.loc,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// The documents by number: metadata, ids and index values.
#[derive(Debug, Default)]
pub(crate) struct Docs {
    pub slots: Vec<Slot>,
    pub ids: IdArena,
    /// Numbers of removed documents, reused before the vector grows.
    pub free: Vec<u32>,
    /// Per field, per document number: its value in the field's
    /// dictionary, or [`NO_VALUE`].
    pub values: Vec<Vec<u32>>,
}

impl Docs {
    /// The id of document `doc`, as bytes.
    pub fn id(&self, doc: u32) -> &[u8] {
        self.ids.get(self.slots[doc as usize].id)
    }

    /// Orders a document against the key `id` (the primary list's order).
    pub fn by_id<'a>(&'a self, id: &'a [u8]) -> impl Fn(u32) -> Ordering + 'a {
        move |doc| self.id(doc).cmp(id)
    }

    /// Orders a document against the key (`created_at`, `id`): the default
    /// order, the id compared only on equal times.
    pub fn by_created<'a>(
        &'a self,
        created_at: i64,
        id: &'a [u8],
    ) -> impl Fn(u32) -> Ordering + 'a {
        move |doc| {
            let slot = &self.slots[doc as usize];
            slot.created_at
                .cmp(&created_at)
                .then_with(|| self.ids.get(slot.id).cmp(id))
        }
    }

    /// A number for a new document: a free one, or the next.
    fn alloc(&mut self, slot: Slot) -> Option<u32> {
        if let Some(doc) = self.free.pop() {
            self.slots[doc as usize] = slot;
            return Some(doc);
        }
        let doc = u32::try_from(self.slots.len())
            .ok()
            .filter(|d| *d != NO_ID)?;
        self.slots.push(slot);
        for column in &mut self.values {
            column.push(NO_VALUE);
        }
        Some(doc)
    }
}

/// One field's dictionary: each distinct value once, numbered, with the
/// documents that hold it in the default order.
#[derive(Debug, Default)]
pub struct Field {
    by_text: BTreeMap<Arc<str>, u32>,
    entries: Vec<Entry>,
    /// Numbers of values no document holds any more, reused first.
    free: Vec<u32>,
}

#[derive(Debug, Default)]
struct Entry {
    text: Option<Arc<str>>,
    postings: OrderList,
}

impl Field {
    /// A dictionary of `texts` (value number = position), each with its
    /// documents already in the default order.
    pub(crate) fn from_sorted(texts: Vec<Arc<str>>, postings: Vec<Vec<u32>>) -> Self {
        let by_text = texts.iter().cloned().zip(0..).collect();
        let entries = texts
            .into_iter()
            .zip(postings)
            .map(|(text, list)| Entry {
                text: Some(text),
                postings: OrderList::from_sorted(list),
            })
            .collect();
        Field {
            by_text,
            entries,
            free: Vec::new(),
        }
    }

    /// The number of a value, if some document holds it.
    pub fn lookup(&self, text: &str) -> Option<u32> {
        self.by_text.get(text).copied()
    }

    /// The string of value `value`.
    pub fn text(&self, value: u32) -> Option<&str> {
        self.entries.get(value as usize)?.text.as_deref()
    }

    /// The documents holding value `value`, in the default order.
    pub fn postings(&self, value: u32) -> Option<&OrderList> {
        self.entries.get(value as usize).map(|e| &e.postings)
    }

    /// The values some document holds, in byte order, with their numbers.
    pub fn values(&self) -> impl Iterator<Item = (&str, u32)> {
        self.by_text
            .iter()
            .map(|(text, value)| (text.as_ref(), *value))
    }

    /// How many distinct values documents hold.
    pub fn distinct(&self) -> usize {
        self.by_text.len()
    }

    /// One past the highest value number in use (the dictionary's size,
    /// free numbers included).
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// The number of `text`, adding it if no document holds it yet.
    fn intern(&mut self, text: &str) -> u32 {
        if let Some(value) = self.lookup(text) {
            return value;
        }
        let text: Arc<str> = Arc::from(text);
        let entry = Entry {
            text: Some(text.clone()),
            postings: OrderList::default(),
        };
        let value = match self.free.pop() {
            Some(value) => {
                self.entries[value as usize] = entry;
                value
            }
            None => {
                self.entries.push(entry);
                (self.entries.len() - 1) as u32
            }
        };
        self.by_text.insert(text, value);
        value
    }

    /// Drops value `value` from the dictionary once no document holds it.
    fn release_if_unused(&mut self, value: u32) {
        let Some(entry) = self.entries.get_mut(value as usize) else {
            return;
        };
        if entry.postings.is_empty() {
            if let Some(text) = entry.text.take() {
                self.by_text.remove(&text);
                self.free.push(value);
            }
        }
    }

    /// Heap bytes: entries, map nodes (estimated at an entry's size plus a
    /// share of the node), strings and posting lists.
    pub fn heap_bytes(&self) -> usize {
        let entries =
            self.entries.capacity() * std::mem::size_of::<Entry>() + self.free.capacity() * 4;
        let per_value: usize = self
            .entries
            .iter()
            .map(|e| e.postings.heap_bytes() + e.text.as_ref().map_or(0, |t| t.len() + 16))
            .sum();
        entries + per_value + self.by_text.len() * 32
    }
}

/// A collection: documents by number, by id, by creation time, and by each
/// index field's values.
#[derive(Debug, Default)]
pub struct Collection {
    /// True once `ensure_collection` named it (only those are listed).
    pub ensured: bool,
    /// When it was first ensured (0 when the log did not record it).
    pub created_at: i64,
    pub indexes: Vec<String>,
    pub(crate) docs: Docs,
    /// Document numbers in id order.
    pub(crate) primary: OrderList,
    /// Document numbers in the default order, (`created_at`, id).
    pub(crate) by_created: OrderList,
    /// One dictionary per index field.
    pub(crate) fields: Vec<Field>,
    /// Bytes of the records that hold the current documents.
    pub(crate) live_bytes: u64,
}

impl Collection {
    /// How many documents it holds.
    pub fn len(&self) -> usize {
        self.primary.len()
    }

    /// True when it holds no document.
    pub fn is_empty(&self) -> bool {
        self.primary.is_empty()
    }

    /// The number of the document with id `id`.
    pub(crate) fn find(&self, id: &str) -> Option<u32> {
        self.primary.find(self.docs.by_id(id.as_bytes()))
    }

    /// True when writing document `id` with the index strings `values`
    /// would copy a table of at least [`LARGE_TABLE`] bytes: the slots, a
    /// value column or the ids of a new document, or a field's dictionary
    /// for a new value, growing past its capacity.
    pub fn upsert_copies(&self, id: &str, values: &[Option<String>]) -> bool {
        let d = &self.docs;
        let new_document = self.find(id).is_none();
        if new_document {
            if d.free.is_empty() && (grows(&d.slots) || d.values.iter().any(grows)) {
                return true;
            }
            if d.ids.push_grows(id.len()) && d.ids.capacity() >= LARGE_TABLE {
                return true;
            }
        }
        let new_value = |(field, value): (&Field, &Option<String>)| {
            value.as_deref().is_some_and(|text| {
                field.lookup(text).is_none() && field.free.is_empty() && grows(&field.entries)
            })
        };
        self.fields.iter().zip(values).any(new_value)
    }

    /// True when removing document `id` would copy or walk a table of at
    /// least [`LARGE_TABLE`] bytes: the ids' compaction once half of them
    /// are removed (it copies the live ids and walks every slot), or the
    /// list of free numbers growing past its capacity.
    pub fn remove_copies(&self, id: &str) -> bool {
        let Some(doc) = self.find(id) else {
            return false;
        };
        let d = &self.docs;
        let walked = d
            .ids
            .capacity()
            .max(d.slots.len() * std::mem::size_of::<Slot>());
        (d.ids.compacts_after_removing(d.slots[doc as usize].id) && walked >= LARGE_TABLE)
            || grows(&d.free)
    }

    /// A document's metadata.
    pub fn get(&self, id: &str) -> Option<DocMeta> {
        self.find(id)
            .map(|doc| self.docs.slots[doc as usize].meta())
    }

    /// The index string of each field for document `id`.
    #[cfg(test)]
    pub fn values_of(&self, id: &str) -> Option<Vec<Option<&str>>> {
        let doc = self.find(id)? as usize;
        let values = self.docs.values.iter().zip(&self.fields);
        Some(
            values
                .map(|(column, field)| field.text(column[doc]))
                .collect(),
        )
    }

    /// Where each document's record is, in id order.
    pub fn locations(&self) -> impl Iterator<Item = Loc> + '_ {
        self.primary
            .iter()
            .map(|doc| self.docs.slots[doc as usize].loc)
    }

    /// Inserts or replaces a document, moving its index entries. `values`
    /// holds the index strings of the new body, one per field.
    ///
    /// # Errors
    /// A new document whose id or number does not fit (ids past 4 GiB or
    /// 4 billion documents in one collection); nothing changes then.
    pub fn upsert(
        &mut self,
        id: &str,
        meta: DocMeta,
        values: &[Option<String>],
    ) -> crate::Result<()> {
        let place = match self.primary.search(self.docs.by_id(id.as_bytes())) {
            Ok(doc) => {
                self.update(doc, meta, values);
                return Ok(());
            }
            Err(place) => place,
        };
        let too_many =
            || crate::Error::Internal(format!("collection holds too many ids for \"{id}\""));
        let at = self.docs.ids.push(id).ok_or_else(too_many)?;
        let Some(doc) = self.docs.alloc(Slot::new(at, meta)) else {
            self.docs.ids.remove(at);
            return Err(too_many());
        };
        self.live_bytes += u64::from(meta.loc.len);
        // Nothing above changed the primary list: `place` still holds.
        self.primary.insert_at(place, doc);
        self.link(doc, values);
        debug_assert_eq!(self.primary.len(), self.by_created.len());
        Ok(())
    }

    /// Replaces document `doc`'s metadata and values, touching only the
    /// lists whose key or value changed.
    fn update(&mut self, doc: u32, meta: DocMeta, values: &[Option<String>]) {
        let old = self.docs.slots[doc as usize];
        debug_assert_ne!(old.id, NO_ID, "only a live document is updated");
        debug_assert!(self.live_bytes >= u64::from(old.loc.len));
        self.live_bytes = self.live_bytes - u64::from(old.loc.len) + u64::from(meta.loc.len);
        if old.created_at != meta.created_at {
            self.unlink(doc);
            self.docs.slots[doc as usize] = Slot::new(old.id, meta);
            self.link(doc, values);
            return;
        }
        self.docs.slots[doc as usize] = Slot::new(old.id, meta);
        for field in 0..self.fields.len() {
            let new = values.get(field).and_then(Option::as_deref);
            let current = self.fields[field].text(self.docs.values[field][doc as usize]);
            if current != new {
                self.unlink_value(doc, field);
                if let Some(text) = new {
                    self.link_value(doc, field, text);
                }
            }
        }
    }

    /// Removes a document and its index entries; true if it existed.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(doc) = self.find(id) else {
            return false;
        };
        self.unlink(doc);
        self.primary.remove(self.docs.by_id(id.as_bytes()));
        debug_assert_eq!(self.primary.len(), self.by_created.len());
        let slot = &mut self.docs.slots[doc as usize];
        debug_assert!(self.live_bytes >= u64::from(slot.loc.len));
        self.live_bytes -= u64::from(slot.loc.len);
        self.docs.ids.remove(slot.id);
        slot.id = NO_ID;
        self.docs.free.push(doc);
        if self.docs.ids.wants_compaction() {
            let Docs { slots, ids, .. } = &mut self.docs;
            ids.compact(slots.iter_mut().map(|s| &mut s.id));
        }
        true
    }

    /// Points a document at the copy of its record at `to`, if it is still
    /// the record at `from`.
    pub fn relocate(&mut self, id: &str, from: Loc, to: Loc) {
        let Some(doc) = self.find(id) else { return };
        let slot = &mut self.docs.slots[doc as usize];
        if slot.loc == from {
            self.live_bytes = self.live_bytes - u64::from(from.len) + u64::from(to.len);
            slot.loc = to;
        }
    }

    /// Adds index fields at the end of the list; `values_of` gives, for each
    /// existing document, the index strings of the new fields.
    ///
    /// # Errors
    /// Whatever `values_of` returns; nothing changes then.
    pub fn add_fields(
        &mut self,
        new_fields: &[String],
        mut values_of: impl FnMut(&DocMeta) -> crate::Result<Vec<Option<String>>>,
    ) -> crate::Result<()> {
        // Compute everything first so a failed body read changes nothing.
        // In the default order, each posting list grows at its end.
        let order: Vec<u32> = self.by_created.iter().collect();
        let mut computed = Vec::with_capacity(order.len());
        for &doc in &order {
            computed.push(values_of(&self.docs.slots[doc as usize].meta())?);
        }
        let first_new = self.indexes.len();
        self.indexes.extend(new_fields.iter().cloned());
        self.fields.resize_with(self.indexes.len(), Field::default);
        let numbers = self.docs.slots.len();
        self.docs
            .values
            .resize_with(self.indexes.len(), || vec![NO_VALUE; numbers]);
        debug_assert_eq!(computed.len(), order.len());
        for (doc, values) in order.into_iter().zip(computed) {
            for (i, value) in values.iter().enumerate().take(new_fields.len()) {
                if let Some(text) = value {
                    self.link_value(doc, first_new + i, text);
                }
            }
        }
        Ok(())
    }

    /// Adds document `doc` to the default order and to the postings of its
    /// values.
    fn link(&mut self, doc: u32, values: &[Option<String>]) {
        let slot = self.docs.slots[doc as usize];
        let key = self
            .docs
            .by_created(slot.created_at, self.docs.ids.get(slot.id));
        self.by_created.insert(doc, key);
        for (field, value) in values.iter().enumerate().take(self.fields.len()) {
            if let Some(text) = value {
                self.link_value(doc, field, text);
            }
        }
    }

    fn link_value(&mut self, doc: u32, field: usize, text: &str) {
        let value = self.fields[field].intern(text);
        self.docs.values[field][doc as usize] = value;
        let slot = self.docs.slots[doc as usize];
        let key = self
            .docs
            .by_created(slot.created_at, self.docs.ids.get(slot.id));
        self.fields[field].entries[value as usize]
            .postings
            .insert(doc, key);
    }

    /// Removes document `doc` from the default order and every posting
    /// list (its metadata and id stay).
    fn unlink(&mut self, doc: u32) {
        let slot = self.docs.slots[doc as usize];
        let key = self
            .docs
            .by_created(slot.created_at, self.docs.ids.get(slot.id));
        self.by_created.remove(key);
        for field in 0..self.fields.len() {
            self.unlink_value(doc, field);
        }
    }

    fn unlink_value(&mut self, doc: u32, field: usize) {
        let value = std::mem::replace(&mut self.docs.values[field][doc as usize], NO_VALUE);
        if value == NO_VALUE {
            return;
        }
        let slot = self.docs.slots[doc as usize];
        let key = self
            .docs
            .by_created(slot.created_at, self.docs.ids.get(slot.id));
        let dictionary = &mut self.fields[field];
        debug_assert!(
            (value as usize) < dictionary.entries.len(),
            "a document's value number names a dictionary entry"
        );
        if let Some(entry) = dictionary.entries.get_mut(value as usize) {
            entry.postings.remove(key);
        }
        dictionary.release_if_unused(value);
    }

    /// Heap bytes of the documents and every list, from their capacities.
    pub fn heap_bytes(&self) -> usize {
        let docs = &self.docs;
        docs.slots.capacity() * std::mem::size_of::<Slot>()
            + docs.ids.heap_bytes()
            + docs.free.capacity() * 4
            + docs.values.iter().map(|c| c.capacity() * 4).sum::<usize>()
            + self.primary.heap_bytes()
            + self.by_created.heap_bytes()
            + self.fields.iter().map(Field::heap_bytes).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(created_at: i64, offset: u32) -> DocMeta {
        DocMeta {
            loc: Loc {
                segment: 1,
                offset,
                len: 10,
            },
            version: 1,
            created_at,
            updated_at: created_at,
        }
    }

    fn values(v: &[Option<&str>]) -> Vec<Option<String>> {
        v.iter().map(|v| v.map(str::to_string)).collect()
    }

    fn with_field() -> Collection {
        let mut c = Collection::default();
        c.add_fields(&["f".to_string()], |_| Ok(Vec::new()))
            .unwrap();
        c
    }

    fn ids_of(c: &Collection, list: &OrderList) -> Vec<String> {
        list.iter()
            .map(|d| String::from_utf8(c.docs.id(d).to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn equal_creation_times_break_ties_by_id_whatever_the_insert_order() {
        let mut c = with_field();
        // Inserted in an order unrelated to the ids, most at the same time.
        for (i, id) in ["m", "b", "z", "a", "k", "c"].iter().enumerate() {
            let created = if *id == "c" { 5 } else { 7 };
            c.upsert(id, meta(created, i as u32), &values(&[Some("v")]))
                .unwrap();
        }
        let expected = ["c", "a", "b", "k", "m", "z"];
        assert_eq!(ids_of(&c, &c.by_created), expected);
        let postings = c.fields[0]
            .postings(c.fields[0].lookup("v").unwrap())
            .unwrap();
        assert_eq!(ids_of(&c, postings), expected);
        assert_eq!(ids_of(&c, &c.primary), ["a", "b", "c", "k", "m", "z"]);
        // A new creation time moves the document to its new place.
        c.upsert("z", meta(1, 9), &values(&[Some("v")])).unwrap();
        assert_eq!(ids_of(&c, &c.by_created)[0], "z");
        assert_eq!(c.get("z").unwrap().created_at, 1);
    }

    #[test]
    fn values_no_document_holds_leave_the_dictionary_and_numbers_are_reused() {
        let mut c = with_field();
        c.upsert("a", meta(1, 0), &values(&[Some("x")])).unwrap();
        c.upsert("b", meta(2, 1), &values(&[Some("x")])).unwrap();
        c.upsert("c", meta(3, 2), &values(&[Some("y")])).unwrap();
        let x = c.fields[0].lookup("x").unwrap();
        assert_eq!(c.fields[0].distinct(), 2);
        // Moving "c" from y to x frees y; both x documents share one entry.
        c.upsert("c", meta(3, 3), &values(&[Some("x")])).unwrap();
        assert_eq!(c.fields[0].lookup("y"), None);
        assert_eq!(c.fields[0].distinct(), 1);
        assert_eq!(c.fields[0].postings(x).unwrap().len(), 3);
        // The next new value takes y's freed number: the dictionary does not grow.
        c.upsert("d", meta(4, 4), &values(&[Some("w")])).unwrap();
        assert_eq!(c.fields[0].capacity(), 2);
        assert_eq!(c.values_of("d").unwrap(), vec![Some("w")]);
        // A document with no value holds none.
        c.upsert("d", meta(4, 5), &values(&[None])).unwrap();
        assert_eq!(c.fields[0].lookup("w"), None);
        assert_eq!(c.values_of("d").unwrap(), vec![None]);
        for id in ["a", "b", "c"] {
            assert!(c.remove(id));
        }
        assert_eq!(c.fields[0].distinct(), 0);
        assert!(!c.remove("a"));
        assert_eq!(c.len(), 1);
        assert_eq!(c.live_bytes, 10);
    }

    #[test]
    fn document_numbers_are_reused_before_the_slots_grow() {
        let mut c = with_field();
        for i in 0..10 {
            c.upsert(
                &format!("d{i}"),
                meta(i, i.try_into().unwrap()),
                &values(&[Some("v")]),
            )
            .unwrap();
        }
        assert_eq!(c.docs.slots.len(), 10);
        let freed = c.find("d3").unwrap();
        assert!(c.remove("d3"));
        assert!(c.remove("d7"));
        c.upsert("new", meta(20, 50), &values(&[Some("v")]))
            .unwrap();
        c.upsert("newer", meta(21, 51), &values(&[Some("v")]))
            .unwrap();
        assert_eq!(c.docs.slots.len(), 10, "freed numbers reused");
        c.upsert("newest", meta(22, 52), &values(&[Some("v")]))
            .unwrap();
        assert_eq!(c.docs.slots.len(), 11, "then the slots grow");
        assert!(c.find("newer") == Some(freed) || c.find("new") == Some(freed));
        assert_eq!(c.get("d3"), None);
        assert_eq!(c.len(), 11);
        let order = ids_of(&c, &c.by_created);
        assert_eq!(&order[8..], ["new", "newer", "newest"]);
        assert_eq!(c.docs.values[0].len(), 11);
    }

    #[test]
    fn many_deletes_compact_the_ids_and_keep_every_lookup() {
        let mut c = Collection::default();
        for i in 0..3000 {
            c.upsert(
                &format!("document-{i:06}"),
                meta(i, i.try_into().unwrap()),
                &[],
            )
            .unwrap();
        }
        let before = c.docs.ids.heap_bytes();
        for i in (0..3000).filter(|i| i % 4 != 0) {
            assert!(c.remove(&format!("document-{i:06}")));
        }
        assert!(c.docs.ids.heap_bytes() < before, "the arena was compacted");
        for i in 0..3000 {
            let found = c.get(&format!("document-{i:06}"));
            assert_eq!(found.is_some(), i % 4 == 0, "{i}");
        }
        assert_eq!(ids_of(&c, &c.by_created).len(), 750);
    }
}
