//! Export and exact import for the SQLite driver.

use std::collections::HashMap;
use std::io::Read;

use rusqlite::{params, OptionalExtension, Transaction};

use super::leases::{read_row, LEASE_COLUMNS};
use super::{collection_indexes, insert_index_rows, SqliteStore};
use crate::blob_files;
use crate::contract::{BlobMeta, Document, LeaseRow};
use crate::io::Vfs;
use crate::transfer::{check_run, in_runs, lease_version, Checked, DocRow, Row, Transfer};
use crate::validate;
use crate::{Error, Result};

/// What the errors call a version column.
const VERSION: &str = "SQLite";

/// Writes `row` and its index rows in `tx`; `indexes` caches each
/// collection's declared fields for the transaction.
fn write_doc(
    row: &DocRow<'_>,
    tx: &Transaction<'_>,
    indexes: &mut HashMap<String, Vec<String>>,
) -> Result<()> {
    let doc = row.doc;
    tx.prepare_cached(
        "INSERT OR REPLACE INTO store_docs (collection, id, data, version, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        doc.collection,
        doc.id,
        row.text,
        row.version,
        doc.created_at,
        doc.updated_at
    ])?;
    tx.prepare_cached("DELETE FROM store_index WHERE collection = ?1 AND doc_id = ?2")?
        .execute(params![doc.collection, doc.id])?;
    if !indexes.contains_key(&doc.collection) {
        let fields = collection_indexes(tx, &doc.collection)?.unwrap_or_default();
        indexes.insert(doc.collection.clone(), fields);
    }
    let fields = indexes.get(&doc.collection).map_or(&[][..], Vec::as_slice);
    insert_index_rows(tx, &doc.collection, &doc.id, &row.data, fields)
}

fn write_lease(tx: &Transaction<'_>, row: &LeaseRow, version: i64) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO store_leases (key, owner, expires_at, version, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![row.key, row.owner, row.expires_at, version, row.created_at, row.updated_at])?;
    Ok(())
}

impl Transfer for SqliteStore {
    fn unensured_collections(&self) -> Result<Vec<String>> {
        self.with_conn(|conn| {
            Ok(conn
                .prepare(
                    "SELECT DISTINCT collection FROM store_docs
                     WHERE collection NOT IN (SELECT name FROM store_collections) ORDER BY collection",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?)
        })
    }

    fn collection_created_at(&self, name: &str) -> Result<Option<i64>> {
        self.with_conn(|conn| {
            Ok(conn
                .prepare_cached("SELECT created_at FROM store_collections WHERE name = ?1")?
                .query_row([name], |r| r.get(0))
                .optional()?)
        })
    }

    fn import_collection(&self, name: &str, indexes: &[&str], created_at: i64) -> Result<()> {
        let fresh = self.collection_created_at(name)?.is_none();
        crate::contract::DocumentStore::ensure_collection(self, name, indexes)?;
        if fresh {
            self.with_conn(|conn| {
                conn.execute(
                    "UPDATE store_collections SET created_at = ?2 WHERE name = ?1",
                    params![name, created_at],
                )?;
                Ok(())
            })?;
        }
        Ok(())
    }

    fn all_leases(&self) -> Result<Vec<LeaseRow>> {
        // One query, read with the same row reader as `get`.
        self.with_conn(|conn| {
            Ok(conn
                .prepare(&format!(
                    "SELECT {LEASE_COLUMNS} FROM store_leases ORDER BY key"
                ))?
                .query_map([], read_row)?
                .collect::<rusqlite::Result<_>>()?)
        })
    }

    fn import_document(&self, doc: &Document) -> Result<()> {
        let row = DocRow::of(doc, self.opts.max_document_bytes, VERSION)?;
        self.with_conn(|conn| {
            let tx = conn.transaction()?;
            write_doc(&row, &tx, &mut HashMap::new())?;
            tx.commit()?;
            Ok(())
        })
    }

    fn import_blob(&self, meta: &BlobMeta, bytes: &mut dyn Read) -> Result<BlobMeta> {
        validate::blob_import(meta)?;
        if crate::contract::BlobStore::get_meta(self, &meta.id)?.is_some() {
            return Err(Error::invalid(format!("blob id {} is taken", meta.id)));
        }
        let fs = &self.blob_fs;
        let tmp = self.staging_path();
        let staged = blob_files::stage(fs, tmp.clone(), bytes, self.opts.max_blob_bytes)?;
        if staged.size != meta.size {
            let _ = fs.remove(&tmp);
            return Err(Error::invalid(format!(
                "blob {} should be {} bytes, the stream had {}",
                meta.id, meta.size, staged.size
            )));
        }
        let path = self.blob_dir.join(&meta.id);
        fs.rename(&tmp, &path)
            .map_err(|e| Error::io(format!("renaming a staged blob to {}", path.display()), e))?;
        self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO store_blobs (id, mime, size, owner_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![meta.id, meta.mime, meta.size, meta.owner_id, meta.created_at],
            )?;
            Ok(())
        })?;
        Ok(BlobMeta {
            content_hash: None,
            ..meta.clone()
        })
    }

    fn import_lease(&self, row: &LeaseRow) -> Result<()> {
        let version = lease_version(row, VERSION)?;
        self.with_conn(|conn| {
            let tx = conn.transaction()?;
            write_lease(&tx, row, version)?;
            tx.commit()?;
            Ok(())
        })
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
                self.with_conn(|conn| {
                    let tx = conn.transaction()?;
                    let mut indexes = HashMap::new();
                    for row in &checked {
                        match row {
                            Checked::Doc(doc) => write_doc(doc, &tx, &mut indexes)?,
                            Checked::Lease(lease, version) => write_lease(&tx, lease, *version)?,
                        }
                    }
                    tx.commit()?;
                    Ok(())
                })
            },
        )
    }
}
