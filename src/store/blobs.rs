//! The blob facility of the log engine: content-addressed files plus one
//! metadata record each (see `crate::blobs` for the file protocol).

use std::io::Read;

use super::{Decision, Inner, LogStore};
use crate::blob_files;
use crate::contract::{BlobList, BlobMeta, BlobPut, BlobReader, BlobStore};
use crate::index::apply::Change;
use crate::validate;
use crate::Result;

/// What a blob delete found.
enum Deleted {
    /// No blob has the id.
    Missing,
    /// Deleted; other blobs still refer to its content file.
    Kept,
    /// Deleted, and its content file (by hash) lost its last reference.
    Orphaned(String),
}

impl Inner {
    /// The metadata of blob `id` and its content file, opened under the
    /// state lock that found the metadata: a delete of the blob's last
    /// reference removes the file only after applying the delete, which
    /// waits for this lock, so a blob that is found is never missing its
    /// file. (Reading the file, and checking its hash, happens after the
    /// lock is released; an open file outlives its removal.)
    pub(super) fn open_blob(&self, id: &str) -> Option<(BlobMeta, Result<blob_files::Opened>)> {
        let state = self.state.read();
        let meta = state.blobs.get(id)?;
        let opened = blob_files::open_content(self.fs.as_ref(), &self.dir, meta);
        Some((meta.clone(), opened))
    }

    /// [`Inner::open_blob`], except that a read-only handle whose view
    /// still lists a blob whose file the writer removed (with its last
    /// reference) brings its view up to date and looks the blob up again:
    /// the answer is the writer's, never a missing file.
    pub(super) fn open_blob_current(
        &self,
        id: &str,
    ) -> Result<Option<(BlobMeta, Result<blob_files::Opened>)>> {
        match self.open_blob(id) {
            Some((_, Err(_))) if self.follow.is_some() => {
                self.refresh()?;
                Ok(self.open_blob(id))
            }
            found => Ok(found),
        }
    }
}

impl BlobStore for LogStore {
    fn put(&self, bytes: &mut dyn Read, opts: BlobPut) -> Result<BlobMeta> {
        let (mime, owner_id) = validate::blob_put(&opts)?;
        let inner = &self.inner;
        inner.check_writable()?;
        // Staging and installing the file sync it.
        inner.refuse_if_no_wait()?;
        let id = uuid::Uuid::new_v4().to_string();
        let fs = inner.fs.as_ref();
        let poison = || inner.poison();
        // Dropped on any error before install, `staged` removes its file.
        let staged =
            blob_files::stage_new(fs, &inner.dir, bytes, inner.opts.max_blob_bytes, &poison)?;
        let (size, hash) = (staged.size(), staged.hash());
        inner.commit(|_| {
            // Installed under the writer lock, before the record: the
            // metadata never points at a missing file.
            blob_files::install(fs, &inner.dir, staged, &poison)?;
            let meta = BlobMeta {
                id,
                mime,
                size,
                owner_id,
                created_at: inner.opts.clock.now_ms(),
                content_hash: Some(blob_files::hex(&hash)),
            };
            Ok(Decision::Write(
                Change::BlobPut {
                    meta: meta.clone(),
                    hash,
                },
                meta,
            ))
        })
    }

    fn get(&self, id: &str) -> Result<Option<(BlobMeta, BlobReader)>> {
        validate::blob_id(id)?;
        self.inner.check_open()?;
        let Some((meta, opened)) = self.inner.open_blob_current(id)? else {
            return Ok(None);
        };
        // Streamed, hashed as it goes: a damaged blob fails the read that
        // would hand out its last bytes (small blobs fail here).
        let reader = blob_files::read(opened?, &meta)?;
        Ok(Some((meta, reader)))
    }

    fn get_meta(&self, id: &str) -> Result<Option<BlobMeta>> {
        validate::blob_id(id)?;
        self.inner.check_open()?;
        Ok(self.inner.state.read().blobs.get(id).cloned())
    }

    fn delete(&self, id: &str) -> Result<bool> {
        validate::blob_id(id)?;
        let inner = &self.inner;
        let deleted = inner.commit(|state| {
            let Some(meta) = state.blobs.get(id) else {
                return Ok(Decision::Unchanged(Deleted::Missing));
            };
            let change = Change::BlobDelete { id };
            // When this is the only blob that refers to its content file,
            // the delete leaves the file unreferenced (the writer lock keeps
            // the count as read until the delete applies). The file may
            // only go once the delete is on disk: a crash before that would
            // otherwise bring back metadata without its bytes.
            let orphaned = meta
                .content_hash
                .as_ref()
                .filter(|h| state.blobs.refs(h) == 1);
            Ok(match orphaned {
                Some(hash) => Decision::WriteSynced(change, Deleted::Orphaned(hash.clone())),
                None => Decision::Write(change, Deleted::Kept),
            })
        })?;
        let hash = match deleted {
            Deleted::Missing => return Ok(false),
            Deleted::Kept => return Ok(true),
            Deleted::Orphaned(hash) => hash,
        };
        let _writer = inner.writer.lock();
        // A put of the same bytes may have claimed the file meanwhile.
        if inner.state.read().blobs.refs(&hash) == 0 {
            blob_files::remove_content(inner.fs.as_ref(), &inner.dir, &hash)?;
        }
        Ok(true)
    }

    fn list(&self, query: &BlobList) -> Result<Vec<BlobMeta>> {
        self.inner.check_open()?;
        let (limit, offset) = validate::blob_page(query);
        Ok(self
            .inner
            .state
            .read()
            .blobs
            .list(query.owner_id.as_deref(), limit, offset))
    }
}
