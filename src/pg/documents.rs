//! The document facility of the PostgreSQL driver.

use postgres::types::ToSql;
use postgres::Row;
use serde_json::{Map, Value};

use super::{
    text_column, to_i64, unsigned_column, version_arg, version_column, PgStore, Session, Sql,
    MAX_VERSION,
};
use crate::contract::{CollectionInfo, Document, DocumentStore, Query, RawDocument};
use crate::document_rules;
use crate::validate::{self, CheckedQuery, OrderKey};
use crate::{Error, Result};

/// How many documents a backfill reads per round trip, so a large
/// collection is never held in memory whole.
const BACKFILL_BATCH: i32 = 1000;

const DOC_COLUMNS: &str = "d.id, d.collection, d.data::text, d.version, d.created_at, d.updated_at";

/// Rewrites the index rows of one document in one statement: rows for the
/// fields that now have a value are upserted, the others deleted (the two
/// touch disjoint rows, as one statement must).
const INDEX_ROWS_SQL: &str = "WITH gone AS (
        DELETE FROM store_index
        WHERE collection = $1 AND doc_id = $2 AND NOT (field = ANY($3::bytea[]))
    )
    INSERT INTO store_index (collection, doc_id, field, value)
    SELECT $1, $2, f, v FROM unnest($3::bytea[], $4::bytea[]) AS u(f, v)
    ON CONFLICT (collection, doc_id, field) DO UPDATE SET value = excluded.value";

/// Inserts index rows for many documents (a backfill of new fields).
const BACKFILL_SQL: &str = "INSERT INTO store_index (collection, doc_id, field, value)
    SELECT $1, d, f, v FROM unnest($2::bytea[], $3::bytea[], $4::bytea[]) AS u(d, f, v)
    ON CONFLICT (collection, doc_id, field) DO UPDATE SET value = excluded.value";

fn parse_indexes(name: &str, text: &str) -> Result<Vec<String>> {
    serde_json::from_str(text).map_err(|e| {
        Error::invalid(format!(
            "store_collections.indexes of \"{name}\" is not a JSON array of strings: {e}"
        ))
    })
}

/// The declared indexes of a collection, and whether it was ensured.
pub(super) fn collection_indexes(s: &mut impl Sql, name: &str) -> Result<Option<Vec<String>>> {
    s.query_opt(
        "SELECT indexes::text FROM store_collections WHERE name = $1",
        &[&name.as_bytes()],
    )?
    .map(|row| parse_indexes(name, &row.try_get::<_, String>(0)?))
    .transpose()
}

/// Takes a collection's lock shared, for a write of one of its documents.
///
/// The indexes must be read by a later statement: a statement that waits
/// for the lock (an `ensure_collection` holds it while it backfills) still
/// reads from the snapshot it took before waiting, so it would miss the
/// fields the ensure added, and the document would lack their index rows.
fn lock_shared(s: &mut Session<'_>, lock: i64) -> Result<()> {
    s.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&lock])?;
    Ok(())
}

/// Takes the collection's lock shared, then reads its indexes (empty when
/// the collection was never ensured).
pub(super) fn locked_indexes(s: &mut Session<'_>, lock: i64, name: &str) -> Result<Vec<String>> {
    lock_shared(s, lock)?;
    Ok(collection_indexes(s, name)?.unwrap_or_default())
}

/// The indexes a write's statement read along with its row, in the column
/// `idx` (empty when the collection was never ensured). The statement began
/// after the lock was taken, and the read costs no round trip of its own.
fn indexes_at(row: &Row, idx: usize, name: &str) -> Result<Vec<String>> {
    match row.try_get::<_, Option<String>>(idx)? {
        Some(text) => parse_indexes(name, &text),
        None => Ok(Vec::new()),
    }
}

/// Writes the index rows of one document for `fields`.
pub(super) fn write_index_rows(
    s: &mut impl Sql,
    collection: &str,
    id: &str,
    data: &Map<String, Value>,
    fields: &[String],
) -> Result<()> {
    let mut names: Vec<&[u8]> = Vec::with_capacity(fields.len());
    let mut values: Vec<Vec<u8>> = Vec::with_capacity(fields.len());
    for field in fields {
        if let Some(value) = document_rules::index_value(data, field) {
            names.push(field.as_bytes());
            values.push(value.into_bytes());
        }
    }
    s.execute(
        INDEX_ROWS_SQL,
        &[&collection.as_bytes(), &id.as_bytes(), &names, &values],
    )?;
    Ok(())
}

fn parse_data(collection: &str, id: &str, text: &str) -> Result<Map<String, Value>> {
    serde_json::from_str(text).map_err(|e| {
        Error::invalid(format!(
            "store_docs.data of \"{collection}\"/\"{id}\" is not a JSON object: {e}"
        ))
    })
}

/// A row of `DOC_COLUMNS`.
pub(super) fn read_doc(row: &Row) -> Result<Document> {
    let id = text_column(row, 0)?;
    let collection = text_column(row, 1)?;
    let text: String = row.try_get(2)?;
    Ok(Document {
        data: parse_data(&collection, &id, &text)?,
        id,
        collection,
        version: version_column(row, 3)?,
        created_at: row.try_get(4)?,
        updated_at: row.try_get(5)?,
    })
}

/// A row of `DOC_COLUMNS` with the `json` column's text as the server
/// keeps it (a `json` value is stored as its text, key order and all):
/// nothing parses it here.
fn read_raw(row: &Row) -> Result<RawDocument> {
    Ok(RawDocument {
        id: text_column(row, 0)?,
        collection: text_column(row, 1)?,
        data: row.try_get(2)?,
        version: version_column(row, 3)?,
        created_at: row.try_get(4)?,
        updated_at: row.try_get(5)?,
    })
}

/// The row a successful write returns, from its `RETURNING version,
/// created_at, updated_at`.
fn written_row(
    collection: &str,
    id: &str,
    data: Map<String, Value>,
    row: &Row,
) -> Result<Document> {
    Ok(Document {
        id: id.to_string(),
        collection: collection.to_string(),
        data,
        version: version_column(row, 0)?,
        created_at: row.try_get(1)?,
        updated_at: row.try_get(2)?,
    })
}

/// The FROM and WHERE clauses of a checked query, with their parameters
/// (`$1` is the collection).
fn query_clauses(collection: &str, q: &CheckedQuery) -> (String, Vec<Box<dyn ToSql + Sync>>) {
    let mut sql = String::from(" FROM store_docs d");
    let mut args: Vec<Box<dyn ToSql + Sync>> = vec![Box::new(collection.as_bytes().to_vec())];
    for (i, (_, field, value)) in q.filters.iter().enumerate() {
        let (f, v) = (args.len() + 1, args.len() + 2);
        sql.push_str(&format!(
            " JOIN store_index f{i} ON f{i}.collection = d.collection AND f{i}.doc_id = d.id AND f{i}.field = ${f} AND f{i}.value = ${v}"
        ));
        args.push(Box::new(field.as_bytes().to_vec()));
        args.push(Box::new(value.as_bytes().to_vec()));
    }
    if let OrderKey::Field(_, field) = &q.order {
        let f = args.len() + 1;
        sql.push_str(&format!(
            " LEFT JOIN store_index o ON o.collection = d.collection AND o.doc_id = d.id AND o.field = ${f}"
        ));
        args.push(Box::new(field.as_bytes().to_vec()));
    }
    sql.push_str(" WHERE d.collection = $1");
    (sql, args)
}

/// The ORDER BY clause: documents without the order field sort lowest, as
/// in the other drivers (first ascending, last descending); ties go by id.
fn order_clause(q: &CheckedQuery) -> String {
    let dir = if q.desc { "DESC" } else { "ASC" };
    match q.order {
        OrderKey::CreatedAt => format!("d.created_at {dir}, d.id {dir}"),
        OrderKey::UpdatedAt => format!("d.updated_at {dir}, d.id {dir}"),
        OrderKey::Id => format!("d.id {dir}"),
        OrderKey::Field(..) => {
            let nulls = if q.desc { "LAST" } else { "FIRST" };
            format!("o.value {dir} NULLS {nulls}, d.id {dir}")
        }
    }
}

fn refs(args: &[Box<dyn ToSql + Sync>]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

impl PgStore {
    /// Backfills index rows for `fields` on every document of `name`,
    /// reading the documents through a cursor in batches.
    fn backfill(&self, s: &mut Session<'_>, name: &str, fields: &[String]) -> Result<()> {
        let select = s.statement("SELECT id, data::text FROM store_docs WHERE collection = $1")?;
        let portal = s.tx.bind(&select, &[&name.as_bytes()])?;
        loop {
            let rows = s.tx.query_portal(&portal, BACKFILL_BATCH)?;
            if rows.is_empty() {
                return Ok(());
            }
            let (mut ids, mut names, mut values) = (Vec::new(), Vec::new(), Vec::new());
            for row in &rows {
                let id = text_column(row, 0)?;
                let data = parse_data(name, &id, &row.try_get::<_, String>(1)?)?;
                for field in fields {
                    if let Some(value) = document_rules::index_value(&data, field) {
                        ids.push(id.clone().into_bytes());
                        names.push(field.as_bytes());
                        values.push(value.into_bytes());
                    }
                }
            }
            s.execute(BACKFILL_SQL, &[&name.as_bytes(), &ids, &names, &values])?;
        }
    }

    /// The one statement of a put (`expected_version` as in the contract),
    /// returning `version, created_at, updated_at` and the collection's
    /// indexes when it wrote. Call with the collection's lock held.
    fn put_row(
        s: &mut Session<'_>,
        collection: &str,
        id: &str,
        text: &str,
        now: i64,
        expected_version: Option<u64>,
    ) -> Result<Option<Row>> {
        let (c, i) = (collection.as_bytes(), id.as_bytes());
        match expected_version {
            // The UPDATE could only match a row at the top version.
            Some(MAX_VERSION) => {
                let row = s.query_opt(
                    "SELECT version FROM store_docs WHERE collection = $1 AND id = $2",
                    &[&c, &i],
                )?;
                match row.map(|r| r.try_get::<_, i64>(0)).transpose()? {
                    Some(v) if u64::try_from(v) == Ok(MAX_VERSION) => Err(document_rules::version_overflow(MAX_VERSION)),
                    _ => Ok(None),
                }
            }
            Some(expected) => s.query_opt(
                "UPDATE store_docs SET data = $1::text::json, version = version + 1, updated_at = $2
                 WHERE collection = $3 AND id = $4 AND version = $5
                 RETURNING version, created_at, updated_at,
                    (SELECT indexes::text FROM store_collections WHERE name = $3)",
                &[&text, &now, &c, &i, &version_arg(expected)],
            ),
            // The upsert skips a row at the top version and then returns
            // nothing.
            None => s
                .query_opt(
                    "INSERT INTO store_docs AS d (collection, id, data, version, created_at, updated_at)
                     VALUES ($1, $2, $3::text::json, 1, $4, $4)
                     ON CONFLICT (collection, id) DO UPDATE SET
                        data = excluded.data,
                        version = d.version + 1,
                        updated_at = excluded.updated_at
                     WHERE d.version < 9223372036854775807
                     RETURNING version, created_at, updated_at,
                        (SELECT indexes::text FROM store_collections WHERE name = $1)",
                    &[&c, &i, &text, &now],
                )?
                .ok_or_else(|| document_rules::version_overflow(MAX_VERSION))
                .map(Some),
        }
    }
}

impl DocumentStore for PgStore {
    fn ensure_collection(&self, name: &str, indexes: &[&str]) -> Result<()> {
        validate::index_paths(name, indexes)?;
        let now = self.opts.clock.now_ms();
        let lock = self.collection_lock(name);
        self.with_tx(|s| {
            s.execute("SELECT pg_advisory_xact_lock($1)", &[&lock])?;
            let existing = collection_indexes(s, name)?;
            let current = existing.clone().unwrap_or_default();
            let merged = document_rules::merge_indexes(&current, indexes);
            if existing.is_some() && merged.len() == current.len() {
                return Ok(());
            }
            let text = serde_json::to_string(&merged)
                .map_err(|e| Error::invalid(format!("index list: {e}")))?;
            s.execute(
                "INSERT INTO store_collections (name, indexes, created_at) VALUES ($1, $2::text::json, $3)
                 ON CONFLICT (name) DO UPDATE SET indexes = excluded.indexes",
                &[&name.as_bytes(), &text, &now],
            )?;
            let new_fields = &merged[current.len()..];
            if !new_fields.is_empty() {
                self.backfill(s, name, new_fields)?;
            }
            Ok(())
        })
    }

    fn list_collections(&self) -> Result<Vec<CollectionInfo>> {
        self.with_conn(|conn| {
            let rows = conn.query(
                "SELECT c.name, c.indexes::text,
                    (SELECT COUNT(*) FROM store_docs d WHERE d.collection = c.name)
                 FROM store_collections c ORDER BY c.name",
                &[],
            )?;
            rows.iter()
                .map(|row| {
                    let name = text_column(row, 0)?;
                    let indexes = parse_indexes(&name, &row.try_get::<_, String>(1)?)?;
                    Ok(CollectionInfo {
                        name,
                        indexes,
                        doc_count: unsigned_column(row, 2)?,
                    })
                })
                .collect()
        })
    }

    fn get(&self, collection: &str, id: &str) -> Result<Option<Document>> {
        self.get_row(collection, id, read_doc)
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
        let text = String::from_utf8(body).map_err(|e| Error::invalid(e.to_string()))?;
        let now = self.opts.clock.now_ms();
        let lock = self.collection_lock(collection);
        self.with_tx(|s| {
            lock_shared(s, lock)?;
            let Some(row) = PgStore::put_row(s, collection, id, &text, now, expected_version)?
            else {
                return Ok(None);
            };
            let indexes = indexes_at(&row, 3, collection)?;
            write_index_rows(s, collection, id, &data, &indexes)?;
            written_row(collection, id, data, &row).map(Some)
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
        let lock = self.collection_lock(collection);
        let (c, i) = (collection.as_bytes(), id.as_bytes());
        self.with_tx(|s| {
            lock_shared(s, lock)?;
            // FOR UPDATE holds the row from the read to the write, so the
            // merge is applied to the version it was checked against.
            let current = s.query_opt(
                "SELECT data::text,
                    (SELECT indexes::text FROM store_collections WHERE name = $1)
                 FROM store_docs
                 WHERE collection = $1 AND id = $2 AND version = $3 FOR UPDATE",
                &[&c, &i, &version_arg(expected_version)],
            )?;
            let Some(current) = current else {
                return Ok(None);
            };
            let indexes = indexes_at(&current, 1, collection)?;
            if expected_version >= MAX_VERSION {
                return Err(document_rules::version_overflow(expected_version));
            }
            let mut data = parse_data(collection, id, &current.try_get::<_, String>(0)?)?;
            document_rules::apply_patch(&mut data, patch);
            let (data, body) = validate::document_body(Value::Object(data), max)?;
            let text = String::from_utf8(body).map_err(|e| Error::invalid(e.to_string()))?;
            let row = s.query_opt(
                "UPDATE store_docs SET data = $1::text::json, version = version + 1, updated_at = $2
                 WHERE collection = $3 AND id = $4 AND version = $5
                 RETURNING version, created_at, updated_at",
                &[&text, &now, &c, &i, &version_arg(expected_version)],
            )?;
            let Some(row) = row else {
                return Ok(None);
            };
            write_index_rows(s, collection, id, &data, &indexes)?;
            written_row(collection, id, data, &row).map(Some)
        })
    }

    fn delete(&self, collection: &str, id: &str) -> Result<bool> {
        validate::collection_and_id(collection, id)?;
        let lock = self.collection_lock(collection);
        let (c, i) = (collection.as_bytes(), id.as_bytes());
        self.with_tx(|s| {
            lock_shared(s, lock)?;
            let removed = s.execute(
                "DELETE FROM store_docs WHERE collection = $1 AND id = $2",
                &[&c, &i],
            )?;
            s.execute(
                "DELETE FROM store_index WHERE collection = $1 AND doc_id = $2",
                &[&c, &i],
            )?;
            Ok(removed > 0)
        })
    }

    fn query(&self, query: &Query) -> Result<Vec<Document>> {
        self.query_rows(query, read_doc)
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
            let row = conn.query_one(&format!("SELECT COUNT(*){clauses}"), &refs(&args))?;
            unsigned_column(&row, 0)
        })
    }
}

impl PgStore {
    /// The rows of a query, each turned into a `T` by `read`.
    /// The document `id` of `collection`, read by `read` (parsed or raw).
    fn get_row<T>(
        &self,
        collection: &str,
        id: &str,
        read: fn(&Row) -> Result<T>,
    ) -> Result<Option<T>> {
        validate::collection_and_id(collection, id)?;
        self.with_conn(|conn| {
            conn.query_opt(
                &format!(
                    "SELECT {DOC_COLUMNS} FROM store_docs d WHERE d.collection = $1 AND d.id = $2"
                ),
                &[&collection.as_bytes(), &id.as_bytes()],
            )?
            .map(|row| read(&row))
            .transpose()
        })
    }

    fn query_rows<T>(&self, query: &Query, read: fn(&Row) -> Result<T>) -> Result<Vec<T>> {
        validate::collection_name(&query.collection)?;
        self.with_conn(|conn| {
            let indexes = collection_indexes(conn, &query.collection)?.unwrap_or_default();
            let q = validate::query(query, &indexes)?;
            let (clauses, mut args) = query_clauses(&query.collection, &q);
            let (limit, offset) = (args.len() + 1, args.len() + 2);
            let sql = format!(
                "SELECT {DOC_COLUMNS}{clauses} ORDER BY {} LIMIT ${limit} OFFSET ${offset}",
                order_clause(&q)
            );
            args.push(Box::new(to_i64(q.limit)));
            args.push(Box::new(to_i64(q.offset)));
            let rows = conn.query(&sql, &refs(&args))?;
            rows.iter().map(read).collect()
        })
    }
}
