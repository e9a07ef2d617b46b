//! The document facility of the log engine.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::{Map, Value};

use super::commit::Decision;
use super::{read, Session};
use crate::contract::{CollectionInfo, Document, DocumentStore, Query, RawDocument};
use crate::document_rules;
use crate::index::apply::{self, Change};
use crate::index::State;
use crate::log::segment::Loc;
use crate::validate;
use crate::Result;

/// A document about to be written: its identity, version and times.
pub(super) struct DocWrite<'a> {
    pub(super) collection: &'a str,
    pub(super) id: &'a str,
    pub(super) version: u64,
    pub(super) created_at: i64,
    pub(super) updated_at: i64,
}

impl<'a> DocWrite<'a> {
    /// The change that writes `body`, with the index values of its parsed
    /// form `data` for the collection's current fields, so applying it
    /// parses nothing again.
    pub(super) fn change(
        &self,
        state: &State,
        data: &Map<String, Value>,
        body: Vec<u8>,
    ) -> Change<'a> {
        Change::DocPut {
            collection: self.collection,
            id: self.id,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            body: Cow::Owned(body),
            values: Some(apply::values_of(data, state.indexes(self.collection))),
        }
    }

    /// The document as the write returns it.
    fn document(self, data: Map<String, Value>) -> Document {
        Document {
            id: self.id.to_string(),
            collection: self.collection.to_string(),
            data,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

impl Session {
    /// Ensures a collection; `created_at` is its creation time if it is new
    /// (an existing collection keeps its own).
    pub(super) fn ensure(&self, name: &str, indexes: &[&str], created_at: i64) -> Result<()> {
        validate::index_paths(name, indexes)?;
        let inner = &self.inner;
        self.commit(|state| {
            let current = state.indexes(name);
            let merged = document_rules::merge_indexes(current, indexes);
            let existing = state.collection(name).filter(|c| c.ensured);
            if existing.is_some() && merged.len() == current.len() {
                return Ok(Decision::Unchanged(()));
            }
            let created_at = existing.map_or(created_at, |c| c.created_at);
            let new_fields = &merged[current.len()..];
            let locs: Vec<Loc> = match state.collection(name) {
                Some(c) if !new_fields.is_empty() => c.locations().collect(),
                _ => Vec::new(),
            };
            // Backfill values are computed before the record is appended,
            // so a body that fails to read leaves both log and state
            // unchanged. The writer lock keeps every location stable.
            let mut backfill = HashMap::with_capacity(locs.len());
            for loc in locs {
                // As replay does: a body that verifies but does not parse
                // gets no values (reading it reports the corruption).
                let body = crate::log::read::body(&inner.files, &inner.dir, loc)?;
                backfill.insert(loc, apply::stored_values(&body, new_fields));
            }
            let change = Change::Collection {
                name,
                created_at: Some(created_at),
                indexes: merged,
                backfill: Some(backfill),
            };
            Ok(Decision::Write(change, ()))
        })
    }
}

impl Session {
    /// A get, the record read with `read` (parsed or raw).
    fn get_with<T>(&self, collection: &str, id: &str, read: read::ReadDoc<T>) -> Result<Option<T>> {
        validate::collection_and_id(collection, id)?;
        self.inner.check_open()?;
        self.inner
            .read_one(|state| state.doc(collection, id).map(|m| m.loc), read)
    }

    /// A query, each record read with `read` (parsed or raw).
    fn query_with<T>(&self, query: &Query, read: read::ReadDoc<T>) -> Result<Vec<T>> {
        self.inner.check_open()?;
        self.inner.read_found(
            |state| {
                let checked = validate::query(query, state.indexes(&query.collection))?;
                Ok(state.query(&query.collection, &checked))
            },
            read,
        )
    }
}

impl Session {
    /// [`LogStore::query_raw_within`](crate::LogStore::query_raw_within).
    pub(super) fn query_raw_within(
        &self,
        query: &Query,
        budget: read::Budget,
    ) -> Result<Option<Vec<RawDocument>>> {
        self.inner.check_open()?;
        self.inner.read_found_within(
            |state| {
                let checked = validate::query(query, state.indexes(&query.collection))?;
                if state.query_work(&query.collection, &checked) > budget.entries {
                    return Ok(None);
                }
                Ok(Some(state.query(&query.collection, &checked)))
            },
            budget,
            read::raw_in,
        )
    }

    /// [`LogStore::get_raw_within`](crate::LogStore::get_raw_within).
    pub(super) fn get_raw_within(
        &self,
        collection: &str,
        id: &str,
        budget: read::Budget,
    ) -> Result<Option<Option<RawDocument>>> {
        validate::collection_and_id(collection, id)?;
        self.inner.check_open()?;
        self.inner.read_one_within(
            |state| state.doc(collection, id).map(|m| m.loc),
            budget,
            read::raw_in,
        )
    }

    /// [`LogStore::count_within`](crate::LogStore::count_within).
    pub(super) fn count_within(&self, query: &Query, budget: read::Budget) -> Result<Option<u64>> {
        self.inner.check_open()?;
        let Some(state) = self.inner.state.try_read() else {
            return Ok(None);
        };
        let checked = validate::query(query, state.indexes(&query.collection))?;
        if state.count_work(&query.collection, &checked) > budget.entries {
            return Ok(None);
        }
        Ok(Some(state.count(&query.collection, &checked)))
    }
}

impl DocumentStore for Session {
    fn ensure_collection(&self, name: &str, indexes: &[&str]) -> Result<()> {
        self.ensure(name, indexes, self.inner.opts.clock.now_ms())
    }

    fn list_collections(&self) -> Result<Vec<CollectionInfo>> {
        self.inner.check_open()?;
        Ok(self.inner.state.read().list_collections())
    }

    fn get(&self, collection: &str, id: &str) -> Result<Option<Document>> {
        self.get_with(collection, id, read::document_in)
    }

    fn get_raw(&self, collection: &str, id: &str) -> Result<Option<RawDocument>> {
        self.get_with(collection, id, read::raw_in)
    }

    fn put(
        &self,
        collection: &str,
        id: &str,
        data: Value,
        expected_version: Option<u64>,
    ) -> Result<Option<Document>> {
        validate::collection_and_id(collection, id)?;
        let (data, body) = validate::document_body(data, self.inner.opts.max_document_bytes)?;
        let clock = &self.inner.opts.clock;
        self.commit(|state| {
            let current = state.doc(collection, id).map(|m| (m.version, m.created_at));
            let (version, created_at) = match (current, expected_version) {
                (None, Some(_)) => return Ok(Decision::Unchanged(None)),
                (Some((version, _)), Some(expected)) if version != expected => {
                    return Ok(Decision::Unchanged(None))
                }
                (None, None) => (1, clock.now_ms()),
                (Some((version, created_at)), _) => {
                    (document_rules::next_version(version)?, created_at)
                }
            };
            let write = DocWrite {
                collection,
                id,
                version,
                created_at,
                updated_at: clock.now_ms(),
            };
            let change = write.change(state, &data, body);
            Ok(Decision::Write(change, Some(write.document(data))))
        })
    }

    fn patch(
        &self,
        collection: &str,
        id: &str,
        patch: Value,
        expected_version: u64,
    ) -> Result<Option<Document>> {
        validate::collection_and_id(collection, id)?;
        let patch = validate::patch_body(patch)?;
        let inner = &self.inner;
        self.commit(|state| {
            let Some(meta) = state.doc(collection, id) else {
                return Ok(Decision::Unchanged(None));
            };
            if meta.version != expected_version {
                return Ok(Decision::Unchanged(None));
            }
            let version = document_rules::next_version(meta.version)?;
            let mut doc = inner.read_document(meta.loc)?;
            document_rules::apply_patch(&mut doc.data, patch);
            let (data, body) =
                validate::document_body(Value::Object(doc.data), inner.opts.max_document_bytes)?;
            let write = DocWrite {
                collection,
                id,
                version,
                created_at: doc.created_at,
                updated_at: inner.opts.clock.now_ms(),
            };
            let change = write.change(state, &data, body);
            Ok(Decision::Write(change, Some(write.document(data))))
        })
    }

    fn delete(&self, collection: &str, id: &str) -> Result<bool> {
        validate::collection_and_id(collection, id)?;
        self.commit(|state| {
            if state.doc(collection, id).is_none() {
                return Ok(Decision::Unchanged(false));
            }
            Ok(Decision::Write(Change::DocDelete { collection, id }, true))
        })
    }

    fn query(&self, query: &Query) -> Result<Vec<Document>> {
        self.query_with(query, read::document_in)
    }

    fn query_raw(&self, query: &Query) -> Result<Vec<RawDocument>> {
        self.query_with(query, read::raw_in)
    }

    fn count(&self, query: &Query) -> Result<u64> {
        self.inner.check_open()?;
        let state = self.inner.state.read();
        let checked = validate::query(query, state.indexes(&query.collection))?;
        Ok(state.count(&query.collection, &checked))
    }
}
