//! The document facility of the SQLite driver.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, OptionalExtension};
use serde_json::{Map, Value};

use super::*;
use crate::contract::{CollectionInfo, Document, DocumentStore, Query, RawDocument};
use crate::document_rules;
use crate::validate::{self, OrderKey};
use crate::{Error, Result};

impl DocumentStore for SqliteStore {
    fn ensure_collection(&self, name: &str, indexes: &[&str]) -> Result<()> {
        validate::index_paths(name, indexes)?;
        let now = self.opts.clock.now_ms();
        self.with_conn(|conn| {
            let tx = conn.transaction()?;
            let existing = collection_indexes(&tx, name)?;
            let current = existing.clone().unwrap_or_default();
            let merged = document_rules::merge_indexes(&current, indexes);
            if existing.is_some() && merged.len() == current.len() {
                return Ok(());
            }
            let text = serde_json::to_string(&merged)
                .map_err(|e| Error::Internal(format!("serializing an index list: {e}")))?;
            tx.execute(
                "INSERT INTO store_collections (name, indexes, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET indexes = excluded.indexes",
                params![name, text, now],
            )?;
            let new_fields = &merged[current.len()..];
            if !new_fields.is_empty() {
                let docs: Vec<(String, String)> = tx
                    .prepare("SELECT id, data FROM store_docs WHERE collection = ?1")?
                    .query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                for (id, text) in docs {
                    let data = parse_data(name, &id, &text)?;
                    insert_index_rows(&tx, name, &id, &data, new_fields)?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn list_collections(&self) -> Result<Vec<CollectionInfo>> {
        self.with_conn(|conn| {
            let rows: Vec<(String, String, u64)> = conn
                .prepare_cached(
                    "SELECT c.name, c.indexes,
                        (SELECT COUNT(*) FROM store_docs d WHERE d.collection = c.name)
                     FROM store_collections c ORDER BY c.name",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            rows.into_iter()
                .map(|(name, indexes, count)| {
                    let indexes = serde_json::from_str(&indexes).map_err(|e| {
                        corrupt_row(format!("indexes of \"{name}\" are not a JSON array: {e}"))
                    })?;
                    Ok(CollectionInfo {
                        name,
                        indexes,
                        doc_count: count,
                    })
                })
                .collect()
        })
    }

    fn get(&self, collection: &str, id: &str) -> Result<Option<Document>> {
        self.get_row(collection, id, read_doc)?
            .map(finish_doc)
            .transpose()
    }

    fn get_raw(&self, collection: &str, id: &str) -> Result<Option<RawDocument>> {
        self.get_row(collection, id, read_raw)
    }

    fn put(
        &self,
        collection: &str,
        id: &str,
        data: Value,
        expected_version: Option<u64>,
    ) -> Result<Option<Document>> {
        validate::collection_and_id(collection, id)?;
        let (data, body) = validate::document_body(data, self.opts.max_document_bytes)?;
        let text = json_text(body)?;
        let now = self.opts.clock.now_ms();
        self.with_conn(|conn| {
            let tx = conn.transaction()?;
            // CAS is one conditional UPDATE: a row comes back only if the
            // version matched and the row changed.
            let row: Option<(u64, i64, i64)> = match expected_version {
                // The UPDATE below could only match a row at the top version.
                Some(MAX_VERSION) => {
                    return match doc_version(&tx, collection, id)? {
                        Some(MAX_VERSION) => Err(document_rules::version_overflow(MAX_VERSION)),
                        _ => Ok(None),
                    };
                }
                Some(expected) => tx
                    .prepare_cached(
                        "UPDATE store_docs SET data = ?1, version = version + 1, updated_at = ?2
                         WHERE collection = ?3 AND id = ?4 AND version = ?5
                         RETURNING version, created_at, updated_at",
                    )?
                    .query_row(
                        params![text, now, collection, id, version_arg(expected)],
                        |r| Ok((version_at(r, 0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?,
                // The upsert skips a row at the top version (i64::MAX) and
                // then returns nothing.
                None => Some(
                    tx.prepare_cached(
                        "INSERT INTO store_docs (collection, id, data, version, created_at, updated_at)
                         VALUES (?1, ?2, ?3, 1, ?4, ?4)
                         ON CONFLICT (collection, id) DO UPDATE SET
                            data = excluded.data,
                            version = store_docs.version + 1,
                            updated_at = excluded.updated_at
                         WHERE store_docs.version < 9223372036854775807
                         RETURNING version, created_at, updated_at",
                    )?
                    .query_row(params![collection, id, text, now], |r| {
                        Ok((version_at(r, 0)?, r.get(1)?, r.get(2)?))
                    })
                    .optional()?
                    .ok_or_else(|| document_rules::version_overflow(MAX_VERSION))?,
                ),
            };
            let Some((version, created_at, updated_at)) = row else {
                return Ok(None);
            };
            write_index_rows(&tx, collection, id, &data)?;
            tx.commit()?;
            Ok(Some(written_row(collection, id, data, (version, created_at, updated_at))))
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
        let now = self.opts.clock.now_ms();
        let max = self.opts.max_document_bytes;
        self.with_conn(|conn| {
            let tx = conn.transaction()?;
            let current: Option<String> = tx
                .prepare_cached(
                    "SELECT data FROM store_docs WHERE collection = ?1 AND id = ?2 AND version = ?3",
                )?
                .query_row(
                    params![collection, id, version_arg(expected_version)],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(text) = current else {
                return Ok(None);
            };
            if expected_version >= MAX_VERSION {
                return Err(document_rules::version_overflow(expected_version));
            }
            let mut data = parse_data(collection, id, &text)?;
            document_rules::apply_patch(&mut data, patch);
            let (data, body) = validate::document_body(Value::Object(data), max)?;
            let text = json_text(body)?;
            let (version, created_at, updated_at): (u64, i64, i64) = tx
                .prepare_cached(
                    "UPDATE store_docs SET data = ?1, version = version + 1, updated_at = ?2
                     WHERE collection = ?3 AND id = ?4 AND version = ?5
                     RETURNING version, created_at, updated_at",
                )?
                .query_row(
                    params![text, now, collection, id, version_arg(expected_version)],
                    |r| Ok((version_at(r, 0)?, r.get(1)?, r.get(2)?)),
                )?;
            write_index_rows(&tx, collection, id, &data)?;
            tx.commit()?;
            Ok(Some(written_row(collection, id, data, (version, created_at, updated_at))))
        })
    }

    fn delete(&self, collection: &str, id: &str) -> Result<bool> {
        validate::collection_and_id(collection, id)?;
        self.with_conn(|conn| {
            let tx = conn.transaction()?;
            let removed = tx
                .prepare_cached("DELETE FROM store_docs WHERE collection = ?1 AND id = ?2")?
                .execute(params![collection, id])?;
            tx.prepare_cached("DELETE FROM store_index WHERE collection = ?1 AND doc_id = ?2")?
                .execute(params![collection, id])?;
            tx.commit()?;
            Ok(removed > 0)
        })
    }

    fn query(&self, query: &Query) -> Result<Vec<Document>> {
        let rows = self.query_rows(query, read_doc)?;
        rows.into_iter().map(finish_doc).collect()
    }

    fn query_raw(&self, query: &Query) -> Result<Vec<RawDocument>> {
        self.query_rows(query, read_raw)
    }

    fn count(&self, query: &Query) -> Result<u64> {
        validate::collection_name(&query.collection)?;
        self.with_conn(|conn| {
            let indexes = collection_indexes(conn, &query.collection)?.unwrap_or_default();
            let mut q = validate::query(query, &indexes)?;
            // Order plays no part in a count; drop its join.
            q.order = OrderKey::CreatedAt;
            let (clauses, args) = query_clauses(&query.collection, &q);
            let n: u64 = conn
                .prepare_cached(&format!("SELECT COUNT(*){clauses}"))?
                .query_row(params_from_iter(args), |r| r.get(0))?;
            Ok(n)
        })
    }
}

impl SqliteStore {
    /// The rows of a query, each turned into a `T` by `read`.
    /// The document `id` of `collection`, read by `read` (parsed or raw).
    fn get_row<T>(
        &self,
        collection: &str,
        id: &str,
        read: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>> {
        validate::collection_and_id(collection, id)?;
        self.with_conn(|conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {DOC_COLUMNS} FROM store_docs d WHERE d.collection = ?1 AND d.id = ?2"
                ))?
                .query_row(params![collection, id], read)
                .optional()?)
        })
    }

    fn query_rows<T>(
        &self,
        query: &Query,
        read: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        validate::collection_name(&query.collection)?;
        self.with_conn(|conn| {
            let indexes = collection_indexes(conn, &query.collection)?.unwrap_or_default();
            let q = validate::query(query, &indexes)?;
            let (clauses, mut args) = query_clauses(&query.collection, &q);
            let dir = if q.desc { "DESC" } else { "ASC" };
            let key = match q.order {
                OrderKey::CreatedAt => "d.created_at",
                OrderKey::UpdatedAt => "d.updated_at",
                OrderKey::Id => "d.id",
                OrderKey::Field(..) => "o.value",
            };
            let order = if key == "d.id" {
                format!("d.id {dir}")
            } else {
                format!("{key} {dir}, d.id {dir}")
            };
            let sql = format!("SELECT {DOC_COLUMNS}{clauses} ORDER BY {order} LIMIT ? OFFSET ?");
            args.push(SqlValue::Integer(to_i64(q.limit)));
            args.push(SqlValue::Integer(to_i64(q.offset)));
            let rows = conn
                .prepare_cached(&sql)?
                .query_map(params_from_iter(args), read)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
    }
}

/// A row of `DOC_COLUMNS` with the `data` column's text as it is: SQLite
/// hands it over, nothing parses it.
fn read_raw(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawDocument> {
    Ok(RawDocument {
        id: row.get(0)?,
        collection: row.get(1)?,
        data: row.get(2)?,
        version: version_at(row, 3)?,
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
    })
}

/// The version of a row, if it exists.
fn doc_version(conn: &rusqlite::Connection, collection: &str, id: &str) -> Result<Option<u64>> {
    Ok(conn
        .prepare_cached("SELECT version FROM store_docs WHERE collection = ?1 AND id = ?2")?
        .query_row(params![collection, id], |r| version_at(r, 0))
        .optional()?)
}

/// The row a successful write returns, from the (version, created_at,
/// updated_at) its statement returned.
fn written_row(
    collection: &str,
    id: &str,
    data: Map<String, Value>,
    written: (u64, i64, i64),
) -> Document {
    let (version, created_at, updated_at) = written;
    Document {
        id: id.to_string(),
        collection: collection.to_string(),
        data,
        version,
        created_at,
        updated_at,
    }
}
