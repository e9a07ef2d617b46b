//! The document facility of the log engine.

use std::collections::HashMap;

use serde_json::Value;

use super::{LogStore, NewRow};
use crate::contract::{CollectionInfo, Document, DocumentStore, Query};
use crate::log::record::Record;
use crate::log::segment::Loc;
use crate::validate;
use crate::Result;

impl LogStore {
    /// Ensures a collection; `created_at` is its creation time if it is new
    /// (an existing collection keeps its own).
    pub(super) fn ensure(&self, name: &str, indexes: &[&str], created_at: i64) -> Result<()> {
        validate::index_paths(name, indexes)?;
        let inner = &self.inner;
        let mut writer = inner.writer.lock();
        inner.check_writable()?;
        let (merged, new_fields, locs, created_at) = {
            let state = inner.state.read();
            let current = state.indexes(name);
            let merged = validate::merge_indexes(current, indexes);
            let existing = state.collection(name).filter(|c| c.ensured);
            if existing.is_some() && merged.len() == current.len() {
                return Ok(());
            }
            let created_at = existing.map_or(created_at, |c| c.created_at);
            let new_fields = merged[current.len()..].to_vec();
            let locs: Vec<Loc> = match state.collection(name) {
                Some(c) if !new_fields.is_empty() => c.docs.values().map(|m| m.loc).collect(),
                _ => Vec::new(),
            };
            (merged, new_fields, locs, created_at)
        };
        // Backfill values are computed before the record is appended, so a
        // body that fails to read leaves both log and state unchanged. The
        // writer lock keeps every location stable meanwhile.
        let mut backfill = HashMap::with_capacity(locs.len());
        for loc in locs {
            // As replay does: a body that verifies but does not parse gets
            // no values (reading it reports the corruption).
            let body = super::read_body(&inner.files, &inner.dir, loc)?;
            backfill.insert(loc, super::stored_values(&body, &new_fields));
        }
        let field_refs: Vec<&str> = merged.iter().map(String::as_str).collect();
        let record = Record::Collection {
            name,
            created_at: Some(created_at),
            indexes: field_refs.clone(),
        };
        let (_, seq) = inner.append(&mut writer, &record)?;
        inner
            .state
            .write()
            .apply_collection(name, Some(created_at), &field_refs, |meta, _| {
                Ok(backfill.remove(&meta.loc).unwrap_or_default())
            })?;
        drop(writer);
        inner.wait_durable(seq)
    }
}

impl DocumentStore for LogStore {
    fn ensure_collection(&self, name: &str, indexes: &[&str]) -> Result<()> {
        self.ensure(name, indexes, self.inner.opts.clock.now_ms())
    }

    fn list_collections(&self) -> Result<Vec<CollectionInfo>> {
        self.inner.check_open()?;
        Ok(self.inner.state.read().list_collections())
    }

    fn get(&self, collection: &str, id: &str) -> Result<Option<Document>> {
        validate::collection_and_id(collection, id)?;
        self.inner.check_open()?;
        let found = self.inner.read_found(|state| {
            Ok(state
                .doc(collection, id)
                .map(|m| m.loc)
                .into_iter()
                .collect())
        })?;
        Ok(found.into_iter().next())
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
        let inner = &self.inner;
        let mut writer = inner.writer.lock();
        inner.check_writable()?;
        let current = inner
            .state
            .read()
            .doc(collection, id)
            .map(|m| (m.version, m.created_at));
        let (version, created_at) = match (current, expected_version) {
            (None, Some(_)) => return Ok(None),
            (Some((version, _)), Some(expected)) if version != expected => return Ok(None),
            (None, None) => (1, inner.opts.clock.now_ms()),
            (Some((version, created_at)), _) => (validate::next_version(version)?, created_at),
        };
        let row = NewRow {
            collection,
            id,
            version,
            created_at,
        };
        let (doc, seq) = inner.write_doc(&mut writer, row, data, &body)?;
        drop(writer);
        inner.wait_durable(seq)?;
        Ok(Some(doc))
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
        let mut writer = inner.writer.lock();
        inner.check_writable()?;
        let current = inner
            .state
            .read()
            .doc(collection, id)
            .map(|m| (m.version, m.loc));
        let Some((version, loc)) = current else {
            return Ok(None);
        };
        if version != expected_version {
            return Ok(None);
        }
        let next = validate::next_version(version)?;
        let mut doc = inner.read_document(loc)?;
        validate::apply_patch(&mut doc.data, patch);
        let (data, body) =
            validate::document_body(Value::Object(doc.data), inner.opts.max_document_bytes)?;
        let row = NewRow {
            collection,
            id,
            version: next,
            created_at: doc.created_at,
        };
        let (doc, seq) = inner.write_doc(&mut writer, row, data, &body)?;
        drop(writer);
        inner.wait_durable(seq)?;
        Ok(Some(doc))
    }

    fn delete(&self, collection: &str, id: &str) -> Result<bool> {
        validate::collection_and_id(collection, id)?;
        let inner = &self.inner;
        let mut writer = inner.writer.lock();
        inner.check_writable()?;
        if inner.state.read().doc(collection, id).is_none() {
            return Ok(false);
        }
        let (_, seq) = inner.append(&mut writer, &Record::DocDelete { collection, id })?;
        inner.state.write().apply_delete(collection, id);
        drop(writer);
        inner.wait_durable(seq)?;
        Ok(true)
    }

    fn query(&self, query: &Query) -> Result<Vec<Document>> {
        self.inner.check_open()?;
        self.inner.read_found(|state| {
            let checked = validate::query(query, state.indexes(&query.collection))?;
            Ok(state.query(&query.collection, &checked))
        })
    }

    fn count(&self, query: &Query) -> Result<u64> {
        self.inner.check_open()?;
        let state = self.inner.state.read();
        let checked = validate::query(query, state.indexes(&query.collection))?;
        Ok(state.count(&query.collection, &checked))
    }
}
