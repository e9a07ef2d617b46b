//! fjall as a key-value floor: documents as JSON bytes under their id in
//! one keyspace, and an index on `conversation` kept by hand in a second,
//! both written in one atomic batch.

use std::path::Path;

use anyhow::Result;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable};
use serde_json::Value;

use super::{conversation_of, index_key, Body, Durability, Peer};

/// A fjall database with the two keyspaces.
pub struct FjallStore {
    db: Database,
    docs: Keyspace,
    by_conversation: Keyspace,
    persist: PersistMode,
}

impl FjallStore {
    /// Opens (or creates) the database in the folder `path`; each batch is
    /// persisted with `PersistMode::SyncData` (`Sync`) or `Buffer` (`Flush`,
    /// written to the OS).
    ///
    /// # Errors
    /// Whatever fjall returns.
    pub fn open(path: &Path, durability: Durability) -> Result<Self> {
        let db = Database::builder(path).open()?;
        let docs = db.keyspace("docs", KeyspaceCreateOptions::default)?;
        let by_conversation = db.keyspace("by_conversation", KeyspaceCreateOptions::default)?;
        let persist = match durability {
            Durability::Sync => PersistMode::SyncData,
            Durability::Flush => PersistMode::Buffer,
        };
        Ok(FjallStore {
            db,
            docs,
            by_conversation,
            persist,
        })
    }
}

impl FjallStore {
    /// Puts each of `docs` and its index entry, in one atomic batch.
    fn write<I: AsRef<str>>(&self, docs: impl Iterator<Item = (I, Value)>) -> Result<()> {
        let mut batch = self.db.batch().durability(Some(self.persist));
        for (id, doc) in docs {
            let id = id.as_ref();
            batch.insert(&self.docs, id, serde_json::to_vec(&doc)?);
            batch.insert(
                &self.by_conversation,
                index_key(conversation_of(&doc)?, id),
                [],
            );
        }
        batch.commit()?;
        Ok(())
    }
}

impl Peer for FjallStore {
    fn name(&self) -> &'static str {
        "fjall"
    }

    fn durability(&self) -> &'static str {
        match self.persist {
            PersistMode::SyncData => "PersistMode::SyncData (fdatasync)",
            PersistMode::SyncAll => "PersistMode::SyncAll (fsync)",
            PersistMode::Buffer => "PersistMode::Buffer (written to the OS)",
        }
    }

    fn put(&self, id: &str, doc: Value) -> Result<()> {
        self.write(std::iter::once((id, doc)))
    }

    fn load(&self, docs: Vec<(String, Value)>) -> Result<()> {
        self.write(docs.into_iter())
    }

    fn get(&self, id: &str) -> Result<Option<Body>> {
        let Some(bytes) = self.docs.get(id)? else {
            return Ok(None);
        };
        Ok(Some(Body::Json(serde_json::from_slice(&bytes)?)))
    }

    fn query(&self, conversation: &str, limit: usize) -> Result<Vec<(String, Body)>> {
        // One snapshot for the index and the documents, as redb's read
        // transaction gives.
        let snapshot = self.db.snapshot();
        let prefix = format!("{conversation}\0");
        let mut out = Vec::new();
        for entry in snapshot.prefix(&self.by_conversation, &prefix).take(limit) {
            let (key, _) = entry.into_inner()?;
            let id = std::str::from_utf8(&key[prefix.len()..])?;
            let bytes = snapshot
                .get(&self.docs, id)?
                .ok_or_else(|| anyhow::anyhow!("index entry for {id}, a missing document"))?;
            out.push((id.to_owned(), Body::Json(serde_json::from_slice(&bytes)?)));
        }
        Ok(out)
    }
}
