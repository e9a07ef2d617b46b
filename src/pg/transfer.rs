//! Export and exact import for the PostgreSQL driver.

use std::collections::HashMap;
use std::io::Read;

use super::blobs::{insert_meta, write_chunks};
use super::documents::{locked_indexes, write_index_rows};
use super::leases::{read_row, LEASE_COLUMNS};
use super::{text_column, PgStore, Session, Sql};
use crate::contract::{BlobMeta, BlobStore, Document, DocumentStore, LeaseRow};
use crate::transfer::{check_run, in_runs, lease_version, Checked, DocRow, Row, Transfer};
use crate::validate;
use crate::{Error, Result};

/// What the errors call a version column.
const VERSION: &str = "PostgreSQL (bigint)";

/// Writes `row` and its index rows in the transaction `s`; `indexes`
/// holds each collection's fields once its lock is taken in `s`.
fn write_doc(
    row: &DocRow<'_>,
    store: &PgStore,
    s: &mut Session<'_>,
    indexes: &mut HashMap<String, Vec<String>>,
) -> Result<()> {
    let doc = row.doc;
    if !indexes.contains_key(&doc.collection) {
        let lock = store.collection_lock(&doc.collection);
        let fields = locked_indexes(s, lock, &doc.collection)?;
        indexes.insert(doc.collection.clone(), fields);
    }
    s.execute(
        "INSERT INTO store_docs (collection, id, data, version, created_at, updated_at)
         VALUES ($1, $2, $3::text::json, $4, $5, $6)
         ON CONFLICT (collection, id) DO UPDATE SET data = excluded.data,
            version = excluded.version, created_at = excluded.created_at,
            updated_at = excluded.updated_at",
        &[
            &doc.collection.as_bytes(),
            &doc.id.as_bytes(),
            &row.text,
            &row.version,
            &doc.created_at,
            &doc.updated_at,
        ],
    )?;
    let fields = indexes.get(&doc.collection).map_or(&[][..], Vec::as_slice);
    write_index_rows(s, &doc.collection, &doc.id, &row.data, fields)
}

fn write_lease(s: &mut impl Sql, row: &LeaseRow, version: i64) -> Result<()> {
    s.execute(
        "INSERT INTO store_leases (key, owner, expires_at, version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (key) DO UPDATE SET owner = excluded.owner,
            expires_at = excluded.expires_at, version = excluded.version,
            created_at = excluded.created_at, updated_at = excluded.updated_at",
        &[
            &row.key.as_bytes(),
            &row.owner.as_bytes(),
            &row.expires_at,
            &version,
            &row.created_at,
            &row.updated_at,
        ],
    )?;
    Ok(())
}

impl Transfer for PgStore {
    fn unensured_collections(&self) -> Result<Vec<String>> {
        self.with_conn(|conn| {
            conn.query(
                "SELECT DISTINCT collection FROM store_docs
                 WHERE collection NOT IN (SELECT name FROM store_collections) ORDER BY collection",
                &[],
            )?
            .iter()
            .map(|row| text_column(row, 0))
            .collect()
        })
    }

    fn collection_created_at(&self, name: &str) -> Result<Option<i64>> {
        self.with_conn(|conn| {
            conn.query_opt(
                "SELECT created_at FROM store_collections WHERE name = $1",
                &[&name.as_bytes()],
            )?
            .map(|row| Ok(row.try_get(0)?))
            .transpose()
        })
    }

    fn import_collection(&self, name: &str, indexes: &[&str], created_at: i64) -> Result<()> {
        let fresh = self.collection_created_at(name)?.is_none();
        DocumentStore::ensure_collection(self, name, indexes)?;
        if fresh {
            self.with_conn(|conn| {
                conn.execute(
                    "UPDATE store_collections SET created_at = $2 WHERE name = $1",
                    &[&name.as_bytes(), &created_at],
                )
            })?;
        }
        Ok(())
    }

    fn all_leases(&self) -> Result<Vec<LeaseRow>> {
        self.with_conn(|conn| {
            conn.query(
                &format!("SELECT {LEASE_COLUMNS} FROM store_leases ORDER BY key"),
                &[],
            )?
            .iter()
            .map(read_row)
            .collect()
        })
    }

    fn import_document(&self, doc: &Document) -> Result<()> {
        let row = DocRow::of(doc, self.opts.max_document_bytes, VERSION)?;
        self.with_tx(|s| write_doc(&row, self, s, &mut HashMap::new()))
    }

    fn import_blob(&self, meta: &BlobMeta, bytes: &mut dyn Read) -> Result<BlobMeta> {
        validate::blob_import(meta)?;
        if BlobStore::get_meta(self, &meta.id)?.is_some() {
            return Err(Error::invalid(format!("blob id {} is taken", meta.id)));
        }
        let max = self.opts.max_blob_bytes;
        self.with_tx(|s| {
            let (size, hash) = write_chunks(s, &meta.id, bytes, max)?;
            if size != meta.size {
                return Err(Error::invalid(format!(
                    "blob {} should be {} bytes, the stream had {size}",
                    meta.id, meta.size
                )));
            }
            let stored = BlobMeta {
                content_hash: Some(hash),
                ..meta.clone()
            };
            insert_meta(s, &stored)?;
            Ok(stored)
        })
    }

    fn import_lease(&self, row: &LeaseRow) -> Result<()> {
        let version = lease_version(row, VERSION)?;
        self.with_conn(|conn| write_lease(conn, row, version))
    }

    /// Collections one by one; each run of documents and leases in one
    /// transaction, checked and encoded before it begins.
    fn import_rows(&self, rows: &[Row]) -> Result<()> {
        in_runs(
            rows,
            |name, indexes, created_at| self.import_collection(name, indexes, created_at),
            |run| {
                let max = self.opts.max_document_bytes;
                let checked = check_run(
                    run,
                    |doc| DocRow::of(doc, max, VERSION),
                    |row| lease_version(row, VERSION),
                )?;
                self.with_tx(|s| {
                    let mut indexes = HashMap::new();
                    for row in &checked {
                        match row {
                            Checked::Doc(doc) => write_doc(doc, self, s, &mut indexes)?,
                            Checked::Lease(lease, version) => write_lease(s, lease, *version)?,
                        }
                    }
                    Ok(())
                })
            },
        )
    }
}
