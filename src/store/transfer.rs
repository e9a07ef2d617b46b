//! Export and exact import for the log engine.

use std::io::Read;

use super::commit::Decision;
use super::documents::DocWrite;
use super::{LogStore, Session};
use crate::blob_files;
use crate::contract::{BlobMeta, Document, LeaseRow};
use crate::index::apply::Change;
use crate::transfer::{Row, Transfer};
use crate::validate;
use crate::{Error, Result};

impl Transfer for Session {
    fn unensured_collections(&self) -> Result<Vec<String>> {
        self.inner.check_open()?;
        Ok(self
            .inner
            .state
            .read()
            .collections()
            .filter(|(_, c)| !c.ensured && !c.is_empty())
            .map(|(name, _)| name.clone())
            .collect())
    }

    fn collection_created_at(&self, name: &str) -> Result<Option<i64>> {
        self.inner.check_open()?;
        let state = self.inner.state.read();
        Ok(state
            .collection(name)
            .filter(|c| c.ensured)
            .map(|c| c.created_at))
    }

    fn import_collection(&self, name: &str, indexes: &[&str], created_at: i64) -> Result<()> {
        self.ensure(name, indexes, created_at)
    }

    fn all_leases(&self) -> Result<Vec<LeaseRow>> {
        self.inner.check_open()?;
        let mut rows: Vec<LeaseRow> = self
            .inner
            .state
            .read()
            .leases
            .rows()
            .map(|(r, _)| r.clone())
            .collect();
        rows.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(rows)
    }

    fn import_document(&self, doc: &Document) -> Result<()> {
        validate::collection_and_id(&doc.collection, &doc.id)?;
        validate::document_depth("the document", &doc.data)?;
        let value = serde_json::Value::Object(doc.data.clone());
        let (data, body) = validate::document_body(value, self.inner.opts.max_document_bytes)?;
        // Exact: the document's own version and times.
        let write = DocWrite {
            collection: &doc.collection,
            id: &doc.id,
            version: doc.version,
            created_at: doc.created_at,
            updated_at: doc.updated_at,
        };
        self.commit(|state| Ok(Decision::Write(write.change(state, &data, body), ())))
    }

    fn import_blob(&self, meta: &BlobMeta, bytes: &mut dyn Read) -> Result<BlobMeta> {
        let (mime, owner_id) = validate::blob_import(meta)?;
        let inner = &self.inner;
        let fs = inner.fs.as_ref();
        let poison = || inner.poison();
        self.commit_file(
            // Staged under a fresh name, not the blob id: two imports of one
            // id must not write one file. Dropped on any error before
            // install, the staged file is removed.
            || {
                let staged = blob_files::stage_new(
                    fs,
                    &inner.dir,
                    bytes,
                    inner.opts.max_blob_bytes,
                    &poison,
                )?;
                if staged.size() != meta.size {
                    return Err(Error::invalid(format!(
                        "blob {} should be {} bytes, the stream had {}",
                        meta.id,
                        meta.size,
                        staged.size()
                    )));
                }
                // The source's hash, where it keeps one, is a promise about
                // these bytes: a source read that did not hash them (a
                // handle's later read of a file it checked before) must not
                // turn damage into a blob that verifies here.
                let hash = blob_files::hex(&staged.hash());
                if let Some(named) = meta.content_hash.as_deref().filter(|h| *h != hash) {
                    return Err(Error::invalid(format!(
                        "blob {}: its bytes hash to {hash}, not to {named}, the content \
                         hash its metadata names; the source's copy is damaged",
                        meta.id
                    )));
                }
                Ok(staged)
            },
            |state, staged| {
                if state.blobs.get(&meta.id).is_some() {
                    return Err(Error::invalid(format!("blob id {} is taken", meta.id)));
                }
                let (size, hash) = (staged.size(), staged.hash());
                blob_files::install(fs, &inner.dir, staged, &poison)?;
                let imported = BlobMeta {
                    id: meta.id.clone(),
                    mime,
                    size,
                    owner_id,
                    created_at: meta.created_at,
                    content_hash: Some(blob_files::hex(&hash)),
                };
                let change = Change::BlobPut {
                    meta: imported.clone(),
                    hash,
                };
                Ok(Decision::Write(change, imported))
            },
        )
    }

    fn import_lease(&self, row: &LeaseRow) -> Result<()> {
        validate::lease_key(&row.key)?;
        validate::lease_owner(&row.owner)?;
        self.commit(|_| Ok(Decision::Write(Change::LeaseSet(row.clone()), ())))
    }
}

/// The store's own transfers wait, as its other calls do; a chunk of rows
/// waits once.
impl Transfer for LogStore {
    fn unensured_collections(&self) -> Result<Vec<String>> {
        self.waiting.unensured_collections()
    }

    fn collection_created_at(&self, name: &str) -> Result<Option<i64>> {
        self.waiting.collection_created_at(name)
    }

    fn import_collection(&self, name: &str, indexes: &[&str], created_at: i64) -> Result<()> {
        self.waiting.import_collection(name, indexes, created_at)
    }

    fn all_leases(&self) -> Result<Vec<LeaseRow>> {
        self.waiting.all_leases()
    }

    fn import_document(&self, doc: &Document) -> Result<()> {
        self.waiting.import_document(doc)
    }

    fn import_blob(&self, meta: &BlobMeta, bytes: &mut dyn Read) -> Result<BlobMeta> {
        self.waiting.import_blob(meta, bytes)
    }

    fn import_lease(&self, row: &LeaseRow) -> Result<()> {
        self.waiting.import_lease(row)
    }

    /// One batch: every row appended and applied, then one sync for all.
    fn import_rows(&self, rows: &[Row]) -> Result<()> {
        self.batch(|session| session.import_rows(rows))?
    }
}
