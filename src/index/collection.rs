//! One collection's in-memory state: the primary map and its B-tree indexes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::log::segment::Loc;

/// Where a document lives and what the indexes know of it. The body stays
/// in the segment file.
#[derive(Debug, Clone)]
pub struct DocMeta {
    pub loc: Loc,
    pub version: u64,
    pub created_at: i64,
    pub updated_at: i64,
    /// The index string of each declared field, parallel to
    /// `Collection::indexes` (`None`: not indexed for this document).
    pub values: Box<[Option<Arc<str>>]>,
}

/// Entries of one index value, in the default query order.
pub type Postings = BTreeSet<(i64, Arc<str>)>;

/// A collection: documents by id, by creation time, and by each index field.
#[derive(Debug, Default)]
pub struct Collection {
    /// True once `ensure_collection` named it (only those are listed).
    pub ensured: bool,
    /// When it was first ensured (0 when the log did not record it).
    pub created_at: i64,
    pub indexes: Vec<String>,
    pub docs: BTreeMap<Arc<str>, DocMeta>,
    /// (created_at, id): the default order.
    pub by_created: BTreeSet<(i64, Arc<str>)>,
    /// One map per index field: index string to its documents.
    pub fields: Vec<BTreeMap<Arc<str>, Postings>>,
    /// Bytes of the records that hold the current documents.
    pub live_bytes: u64,
}

impl Collection {
    /// Inserts or replaces a document, moving its index entries.
    /// `values` holds the index strings of the new body, one per field.
    pub fn upsert(&mut self, id: &str, mut meta: DocMeta, values: Vec<Option<String>>) {
        let id: Arc<str> = match self.docs.get_key_value(id) {
            Some((key, _)) => key.clone(),
            None => Arc::from(id),
        };
        self.unlink(&id);
        if let Some(old) = self.docs.get(&id) {
            self.live_bytes -= u64::from(old.loc.len);
        }
        self.live_bytes += u64::from(meta.loc.len);
        meta.values = values
            .into_iter()
            .enumerate()
            .map(|(field, value)| value.map(|v| self.link(field, &v, meta.created_at, &id)))
            .collect();
        self.by_created.insert((meta.created_at, id.clone()));
        self.docs.insert(id, meta);
    }

    /// Removes a document and its index entries; true if it existed.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some((key, _)) = self.docs.get_key_value(id) else {
            return false;
        };
        let key = key.clone();
        self.unlink(&key);
        if let Some(old) = self.docs.remove(&key) {
            self.live_bytes -= u64::from(old.loc.len);
        }
        true
    }

    /// Points a document at the copy of its record at `to`, if it is still
    /// the record at `from`.
    pub fn relocate(&mut self, id: &str, from: Loc, to: Loc) {
        if let Some(meta) = self.docs.get_mut(id).filter(|m| m.loc == from) {
            self.live_bytes = self.live_bytes - u64::from(from.len) + u64::from(to.len);
            meta.loc = to;
        }
    }

    /// Adds index fields at the end of the list; `values_of` gives, for each
    /// existing document, the index strings of the new fields.
    pub fn add_fields(
        &mut self,
        new_fields: &[String],
        mut values_of: impl FnMut(&DocMeta) -> crate::Result<Vec<Option<String>>>,
    ) -> crate::Result<()> {
        // Compute everything first so a failed body read changes nothing.
        let mut computed = Vec::with_capacity(self.docs.len());
        for (id, meta) in &self.docs {
            computed.push((id.clone(), values_of(meta)?));
        }
        let first_new = self.indexes.len();
        self.indexes.extend(new_fields.iter().cloned());
        self.fields.resize_with(self.indexes.len(), BTreeMap::new);
        for (id, values) in computed {
            let created_at = self.docs[&id].created_at;
            let linked: Vec<Option<Arc<str>>> = values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_ref()
                        .map(|v| self.link(first_new + i, v, created_at, &id))
                })
                .collect();
            if let Some(meta) = self.docs.get_mut(&id) {
                let mut all = std::mem::take(&mut meta.values).into_vec();
                all.extend(linked);
                meta.values = all.into_boxed_slice();
            }
        }
        Ok(())
    }

    /// Adds `id` under `value` in field `field`; returns the shared value
    /// string so equal values are stored once.
    fn link(&mut self, field: usize, value: &str, created_at: i64, id: &Arc<str>) -> Arc<str> {
        let map = &mut self.fields[field];
        let key = match map.get_key_value(value) {
            Some((key, _)) => key.clone(),
            None => Arc::from(value),
        };
        map.entry(key.clone())
            .or_default()
            .insert((created_at, id.clone()));
        key
    }

    /// Removes every index entry of `id` (the document itself stays).
    fn unlink(&mut self, id: &Arc<str>) {
        let Some(meta) = self.docs.get(id) else {
            return;
        };
        let entry = (meta.created_at, id.clone());
        self.by_created.remove(&entry);
        for (field, value) in meta.values.iter().enumerate() {
            let Some(value) = value else { continue };
            if let Some(postings) = self.fields[field].get_mut(value) {
                postings.remove(&entry);
                if postings.is_empty() {
                    self.fields[field].remove(value);
                }
            }
        }
    }
}
