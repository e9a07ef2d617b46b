//! The blob facility of the log engine: content-addressed files plus one
//! metadata record each (see `crate::blobs` for the file protocol).

use std::io::Read;

use super::commit::Decision;
use super::{Inner, Session};
use crate::blob_files;
use crate::contract::{BlobList, BlobMeta, BlobPut, BlobReader, BlobStore};
use crate::index::apply::Change;
use crate::index::State;
use crate::validate;
use crate::Result;

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

    /// [`Inner::open_blob`] for a caller that may not wait: `None`,
    /// having opened nothing, when the state lock is held by a writer (or
    /// one waits for it) or the blob holds more than `max_bytes`;
    /// `Some(None)` when there is no such blob.
    fn open_blob_within(
        &self,
        id: &str,
        max_bytes: u64,
    ) -> Option<Option<(BlobMeta, Result<blob_files::Opened>)>> {
        let state = self.state.try_read()?;
        let Some(meta) = state.blobs.get(id) else {
            return Some(None);
        };
        if meta.size > max_bytes {
            return None;
        }
        let opened = blob_files::open_content(self.fs.as_ref(), &self.dir, meta);
        Some(Some((meta.clone(), opened)))
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

impl Session {
    /// [`LogStore::blob_get_within`](crate::LogStore::blob_get_within).
    pub(super) fn blob_get_within(
        &self,
        id: &str,
        max_bytes: u64,
    ) -> Result<Option<Option<(BlobMeta, BlobReader)>>> {
        validate::blob_id(id)?;
        self.inner.check_open()?;
        let Some(found) = self.inner.open_blob_within(id, max_bytes) else {
            return Ok(None);
        };
        let Some((meta, opened)) = found else {
            return Ok(Some(None));
        };
        // A read-only handle whose view lists a blob whose file the writer
        // removed brings its view up to date first (`get`), which waits.
        if opened.is_err() && self.inner.follow.is_some() {
            return Ok(None);
        }
        let reader = blob_files::read(opened?, &meta, &self.inner.verified)?;
        Ok(Some(Some((meta, reader))))
    }
}

impl BlobStore for Session {
    fn put(&self, bytes: &mut dyn Read, opts: BlobPut) -> Result<BlobMeta> {
        let (mime, owner_id) = validate::blob_put(&opts)?;
        let inner = &self.inner;
        let fs = inner.fs.as_ref();
        let poison = || inner.poison();
        self.commit_file(
            // Dropped on any error before install, the staged file is
            // removed.
            || blob_files::stage_new(fs, &inner.dir, bytes, inner.opts.max_blob_bytes, &poison),
            |_, staged| {
                let (size, hash) = (staged.size(), staged.hash());
                // Installed under the writer lock, before the record: the
                // metadata never points at a missing file.
                blob_files::install(fs, &inner.dir, staged, &poison)?;
                let meta = BlobMeta {
                    id: uuid::Uuid::new_v4().to_string(),
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
            },
        )
    }

    fn get(&self, id: &str) -> Result<Option<(BlobMeta, BlobReader)>> {
        validate::blob_id(id)?;
        self.inner.check_open()?;
        let Some((meta, opened)) = self.inner.open_blob_current(id)? else {
            return Ok(None);
        };
        // A file this handle hashed whole before and that has not changed
        // since is checked for its length; any other is hashed as it
        // streams: a damaged blob fails the read that would hand out its
        // last bytes (small blobs fail here).
        let reader = blob_files::read(opened?, &meta, &self.inner.verified)?;
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
        self.commit(|state| {
            let Some(meta) = state.blobs.get(id) else {
                return Ok(Decision::Unchanged(false));
            };
            let change = Change::BlobDelete { id };
            // When this is the only blob that refers to its content file,
            // the delete leaves the file unreferenced (the writer lock keeps
            // the count as read until the delete applies): it goes once the
            // delete is on disk.
            let orphaned = meta
                .content_hash
                .as_ref()
                .filter(|h| state.blobs.refs(h) == 1);
            Ok(match orphaned {
                Some(hash) => {
                    let hash = hash.clone();
                    let remove = move |state: &State| {
                        // A put of the same bytes may have claimed the file
                        // meanwhile.
                        if state.blobs.refs(&hash) > 0 {
                            return Ok(());
                        }
                        blob_files::remove_content(inner.fs.as_ref(), &inner.dir, &hash)
                    };
                    Decision::WriteThenClean(change, true, Box::new(remove))
                }
                None => Decision::Write(change, true),
            })
        })
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
