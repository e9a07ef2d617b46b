//! The blob facility of the SQLite driver: a `store_blobs` row per blob and
//! the bytes in a file named by the blob id in the blob directory, as the
//! reference package lays them out.

use std::io::Read;
use std::path::PathBuf;

use rusqlite::{params, OptionalExtension};

use super::SqliteStore;
use crate::blob_files;
use crate::contract::{BlobList, BlobMeta, BlobPut, BlobReader, BlobStore};
use crate::io::Vfs;
use crate::options::Durability;
use crate::validate;
use crate::{Error, Result};

const BLOB_COLUMNS: &str = "id, mime, size, owner_id, created_at";

/// A row of `BLOB_COLUMNS` as stored: id, mime, size, owner, creation time.
type Row = (String, String, i64, Option<String>, i64);

fn read_meta(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

/// The metadata of a row. A negative size was written by something other
/// than a driver: `Corruption` naming the blob.
fn checked((id, mime, size, owner_id, created_at): Row) -> Result<BlobMeta> {
    let size = u64::try_from(size).map_err(|_| {
        super::corrupt_row(format!(
            "blob {id} records a size of {size} bytes in store_blobs (written by something other than a driver?)"
        ))
    })?;
    Ok(BlobMeta {
        id,
        mime,
        size,
        owner_id,
        created_at,
        content_hash: None,
    })
}

impl SqliteStore {
    fn blob_path(&self, id: &str) -> PathBuf {
        self.blob_dir.join(id)
    }

    /// A fresh staging name for a put or an import: a new UUID each time,
    /// created exclusively, so no planted file or link is ever written.
    pub(super) fn staging_path(&self) -> PathBuf {
        self.blob_dir.join(format!(".{}.tmp", uuid::Uuid::new_v4()))
    }
}

impl BlobStore for SqliteStore {
    fn put(&self, bytes: &mut dyn Read, opts: BlobPut) -> Result<BlobMeta> {
        let (mime, owner_id) = validate::blob_put(&opts)?;
        self.with_conn(|_| Ok(()))?;
        let id = uuid::Uuid::new_v4().to_string();
        let fs = &self.blob_fs;
        let tmp = self.staging_path();
        let staged = blob_files::stage(fs, tmp.clone(), bytes, self.opts.max_blob_bytes)?;
        let path = self.blob_path(&id);
        fs.rename(&tmp, &path)
            .map_err(|e| Error::io(format!("renaming a staged blob to {}", path.display()), e))?;
        if self.opts.durability == Durability::Sync {
            fs.sync_dir(&self.blob_dir)
                .map_err(|e| Error::io(format!("syncing {}", self.blob_dir.display()), e))?;
        }
        let meta = BlobMeta {
            id,
            mime,
            size: staged.size,
            owner_id,
            created_at: self.opts.clock.now_ms(),
            content_hash: None,
        };
        let inserted = self.with_conn(|conn| {
            conn.prepare_cached(
                "INSERT INTO store_blobs (id, mime, size, owner_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![meta.id, meta.mime, meta.size, meta.owner_id, meta.created_at])?;
            Ok(())
        });
        if let Err(e) = inserted {
            let _ = fs.remove(&path);
            return Err(e);
        }
        Ok(meta)
    }

    fn get(&self, id: &str) -> Result<Option<(BlobMeta, BlobReader)>> {
        let Some(meta) = self.get_meta(id)? else {
            return Ok(None);
        };
        let path = self.blob_path(id);
        let file = self.blob_fs.open(&path, false).map_err(|e| {
            Error::corruption(
                &path,
                0,
                format!("the file of blob {id} cannot be opened: {e}"),
            )
        })?;
        // The reference schema keeps no hash: the length alone is checked,
        // before the first byte and again at the end of the stream.
        let reader = blob_files::Checked {
            file,
            path,
            id: meta.id.clone(),
            size: meta.size,
            hash: None,
        }
        .reader()?;
        Ok(Some((meta, reader)))
    }

    fn get_meta(&self, id: &str) -> Result<Option<BlobMeta>> {
        validate::blob_id(id)?;
        self.with_conn(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {BLOB_COLUMNS} FROM store_blobs WHERE id = ?1"
            ))?
            .query_row([id], read_meta)
            .optional()?
            .map(checked)
            .transpose()
        })
    }

    fn delete(&self, id: &str) -> Result<bool> {
        validate::blob_id(id)?;
        let removed = self.with_conn(|conn| {
            Ok(conn
                .prepare_cached("DELETE FROM store_blobs WHERE id = ?1")?
                .execute([id])?)
        })?;
        if removed == 0 {
            return Ok(false);
        }
        let path = self.blob_path(id);
        match self.blob_fs.remove(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(format!("removing {}", path.display()), e))
            }
            _ => Ok(true),
        }
    }

    fn list(&self, query: &BlobList) -> Result<Vec<BlobMeta>> {
        let (limit, offset) = validate::blob_page(query);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        self.with_conn(|conn| {
            let rows: Vec<Row> = match &query.owner_id {
                Some(owner) => conn
                    .prepare_cached(&format!(
                        "SELECT {BLOB_COLUMNS} FROM store_blobs WHERE owner_id = ?1
                         ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3"
                    ))?
                    .query_map(params![owner, limit, offset], read_meta)?
                    .collect::<rusqlite::Result<_>>()?,
                None => conn
                    .prepare_cached(&format!(
                        "SELECT {BLOB_COLUMNS} FROM store_blobs
                         ORDER BY created_at DESC, id DESC LIMIT ?1 OFFSET ?2"
                    ))?
                    .query_map(params![limit, offset], read_meta)?
                    .collect::<rusqlite::Result<_>>()?,
            };
            rows.into_iter().map(checked).collect()
        })
    }
}
