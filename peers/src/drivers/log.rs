//! logstore itself, through the contract's `Store` calls.

use std::path::Path;

use anyhow::Result;
use logstore::{LogStore, Options, Query, Store};
use logstore_workload as workload;
use serde_json::Value;

use super::{Body, DocPeer, Durability, Peer};

/// A `LogStore` with the workload's collection ensured.
pub struct Logstore {
    store: LogStore,
    durability: Durability,
}

impl Logstore {
    /// Opens (or creates) the store in `dir` at `durability`, with
    /// automatic compaction off as in `logstore bench`: the run measures
    /// steady-state operations.
    ///
    /// # Errors
    /// Whatever opening the store returns.
    pub fn open(dir: &Path, durability: Durability) -> Result<Self> {
        let options = Options {
            durability: match durability {
                Durability::Sync => logstore::Durability::Sync,
                Durability::Flush => logstore::Durability::Flush,
            },
            auto_compact: false,
            ..Options::default()
        };
        let store = LogStore::open(dir, options)?;
        store
            .docs()
            .ensure_collection(workload::COLLECTION, &workload::INDEXES)?;
        Ok(Logstore { store, durability })
    }
}

impl Peer for Logstore {
    fn name(&self) -> &'static str {
        "logstore"
    }

    fn durability(&self) -> &'static str {
        match self.durability {
            Durability::Sync => "Sync (fdatasync per commit, group commit)",
            Durability::Flush => "Flush (each commit written to the OS)",
        }
    }

    fn put(&self, id: &str, doc: Value) -> Result<()> {
        self.store.docs().put(workload::COLLECTION, id, doc, None)?;
        Ok(())
    }

    /// One batch: the writes append as they come and share one sync.
    fn load(&self, docs: Vec<(String, Value)>) -> Result<()> {
        self.store.batch(|session| {
            for (id, doc) in docs {
                session.docs().put(workload::COLLECTION, &id, doc, None)?;
            }
            anyhow::Ok(())
        })?
    }

    fn get(&self, id: &str) -> Result<Option<Body>> {
        let row = self.store.docs().get(workload::COLLECTION, id)?;
        Ok(row.map(|row| Body::Json(Value::Object(row.data))))
    }

    fn query(&self, conversation: &str, limit: usize) -> Result<Vec<(String, Body)>> {
        let q = Query::new(workload::COLLECTION)
            .filter(workload::INDEXES[0], conversation)
            .limit(limit);
        let rows = self.store.docs().query(&q)?;
        Ok(rows
            .into_iter()
            .map(|row| (row.id, Body::Json(Value::Object(row.data))))
            .collect())
    }
}

impl DocPeer for Logstore {
    fn upsert(&self, id: &str, doc: Value) -> Result<()> {
        self.store.docs().put(workload::COLLECTION, id, doc, None)?;
        Ok(())
    }

    fn count(&self, author: &str) -> Result<u64> {
        let q = Query::new(workload::COLLECTION).filter(workload::INDEXES[1], author);
        Ok(self.store.docs().count(&q)?)
    }

    fn delete(&self, id: &str) -> Result<bool> {
        Ok(self.store.docs().delete(workload::COLLECTION, id)?)
    }
}
