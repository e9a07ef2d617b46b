//! The in-memory state rebuilt from the log: collections, the primary map
//! and B-tree indexes. It knows nothing of files: bodies are reached through
//! closures the caller passes, and records arrive already decoded.
//!
//! Live writes and recovery both change the state only through
//! [`State::apply`] (in `apply`), so there is one way state is built; the
//! `apply_*` steps it uses are private to this module.

pub mod apply;
pub mod blobs;
pub mod collection;
pub mod ids;
pub mod leases;
pub mod order;
pub mod query;
pub mod snapshot;

use std::collections::BTreeMap;

use crate::contract::CollectionInfo;
use crate::log::segment::Loc;
use crate::Result;
use collection::{Collection, DocMeta};

/// Index strings of a document for each field of an index list.
pub type IndexValues = Vec<Option<String>>;

/// Every collection by name.
#[derive(Debug, Default)]
pub struct State {
    collections: BTreeMap<String, Collection>,
    /// Lease rows and their owner index.
    pub leases: leases::Leases,
    /// Blob metadata, listings and content reference counts.
    pub blobs: blobs::Blobs,
}

/// A document write, as it is applied.
#[derive(Debug, Clone, Copy)]
pub struct PutMeta {
    pub version: u64,
    pub created_at: i64,
    pub updated_at: i64,
    pub loc: Loc,
}

impl State {
    /// The collection, if it was ensured or holds documents.
    pub fn collection(&self, name: &str) -> Option<&Collection> {
        self.collections.get(name)
    }

    /// A document's metadata.
    pub fn doc(&self, collection: &str, id: &str) -> Option<DocMeta> {
        self.collections.get(collection)?.get(id)
    }

    /// True when applying `change` would copy a large table of its
    /// collection ([`Collection::upsert_copies`],
    /// [`Collection::remove_copies`]): work in proportion to the
    /// collection's size, which a write that may not wait leaves to one
    /// that may.
    pub fn apply_copies(&self, change: &apply::Change<'_>) -> bool {
        match change {
            apply::Change::DocPut {
                collection,
                id,
                values: Some(values),
                ..
            } => self
                .collection(collection)
                .is_some_and(|c| c.upsert_copies(id, values)),
            apply::Change::DocDelete { collection, id } => self
                .collection(collection)
                .is_some_and(|c| c.remove_copies(id)),
            _ => false,
        }
    }

    /// A document's index strings, one per declared field.
    #[cfg(test)]
    pub fn doc_values(&self, collection: &str, id: &str) -> Option<Vec<Option<&str>>> {
        self.collections.get(collection)?.values_of(id)
    }

    /// The declared index fields of a collection (none if never ensured).
    pub fn indexes(&self, collection: &str) -> &[String] {
        self.collections
            .get(collection)
            .map_or(&[], |c| c.indexes.as_slice())
    }

    /// Applies an ensured collection with its complete index list. Fields
    /// beyond the current list are backfilled: `values_of` gives the index
    /// strings of those fields for an existing document.
    ///
    /// # Errors
    /// Whatever `values_of` returns, and an error if `indexes` does not
    /// extend the current list (a log that disagrees with itself).
    fn apply_collection(
        &mut self,
        name: &str,
        created_at: Option<i64>,
        indexes: &[String],
        mut values_of: impl FnMut(&DocMeta, &[String]) -> Result<IndexValues>,
    ) -> Result<()> {
        let current = self.indexes(name);
        if !current.iter().zip(indexes).all(|(a, b)| a == b) {
            // Live writes only ever append fields, so only a log that
            // disagrees with itself gets here; replay reports it as
            // corruption at the record.
            return Err(crate::Error::Internal(format!(
                "collection \"{name}\" record reorders index fields"
            )));
        }
        // Fields are only ever appended, so a shorter list is an older state
        // of the same collection (compaction may have copied the newer list
        // ahead of it): it adds nothing.
        let new_fields: Vec<String> = indexes.get(current.len()..).unwrap_or_default().to_vec();
        let collection = self.collections.entry(name.to_string()).or_default();
        if !collection.ensured {
            collection.created_at = created_at.unwrap_or(0);
        }
        collection.ensured = true;
        if !new_fields.is_empty() {
            collection.add_fields(&new_fields, |meta| values_of(meta, &new_fields))?;
        }
        Ok(())
    }

    /// Applies a document write; `values_of` computes the body's index
    /// strings for the collection's fields (only called when it has some).
    ///
    /// # Errors
    /// Whatever `values_of` returns; the state is unchanged then.
    fn apply_put(
        &mut self,
        collection: &str,
        id: &str,
        put: PutMeta,
        values_of: impl FnOnce(&[String]) -> Result<IndexValues>,
    ) -> Result<()> {
        let c = match self.collections.get_mut(collection) {
            Some(c) => c,
            None => self.collections.entry(collection.to_string()).or_default(),
        };
        let values = if c.indexes.is_empty() {
            Vec::new()
        } else {
            values_of(&c.indexes)?
        };
        let meta = DocMeta {
            loc: put.loc,
            version: put.version,
            created_at: put.created_at,
            updated_at: put.updated_at,
        };
        c.upsert(id, meta, &values)
    }

    /// Applies a delete; true if the document existed.
    fn apply_delete(&mut self, collection: &str, id: &str) -> bool {
        let Some(c) = self.collections.get_mut(collection) else {
            return false;
        };
        let removed = c.remove(id);
        // A collection that was never ensured exists only through its
        // documents; keeping it empty would make the state depend on
        // history that compaction drops.
        if !c.ensured && c.is_empty() {
            self.collections.remove(collection);
        }
        removed
    }

    /// Bytes of the records that hold the current documents, leases and
    /// blobs: what a compaction would keep.
    pub fn live_bytes(&self) -> u64 {
        let docs: u64 = self.collections.values().map(|c| c.live_bytes).sum();
        docs + self.leases.live_bytes() + self.blobs.live_bytes()
    }

    /// The heap the index holds: the documents' structures from their
    /// capacities (see BENCHMARKS.md for the layout), plus lease and blob
    /// rows estimated from their entry sizes.
    pub fn index_bytes_estimate(&self) -> u64 {
        let docs: usize = self
            .collections
            .iter()
            .map(|(name, c)| name.len() + std::mem::size_of::<Collection>() + c.heap_bytes())
            .sum();
        docs as u64 + self.leases.len() as u64 * 160 + self.blobs.len() as u64 * 200
    }

    /// Every collection by name.
    pub fn collections(&self) -> impl Iterator<Item = (&String, &Collection)> {
        self.collections.iter()
    }

    /// Points a document at the copy of its record at `to`, if it is still
    /// the record at `from`.
    pub fn relocate_doc(&mut self, collection: &str, id: &str, from: Loc, to: Loc) {
        if let Some(c) = self.collections.get_mut(collection) {
            c.relocate(id, from, to);
        }
    }

    /// Ensured collections in name order.
    pub fn list_collections(&self) -> Vec<CollectionInfo> {
        self.collections
            .iter()
            .filter(|(_, c)| c.ensured)
            .map(|(name, c)| CollectionInfo {
                name: name.clone(),
                indexes: c.indexes.clone(),
                doc_count: c.len() as u64,
            })
            .collect()
    }
}
