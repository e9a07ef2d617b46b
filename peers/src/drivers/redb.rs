//! redb as a key-value floor: documents as JSON bytes under their id, and
//! an index on `conversation` kept by hand in a second table, both written
//! in one transaction.

use std::path::Path;

use anyhow::Result;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::Value;

use super::{conversation_of, index_key, Body, Durability, Peer};

const DOCS: TableDefinition<&str, &[u8]> = TableDefinition::new("docs");
const BY_CONVERSATION: TableDefinition<&str, ()> = TableDefinition::new("by_conversation");

/// A redb database with the two tables.
pub struct RedbStore {
    db: Database,
    durability: redb::Durability,
}

impl RedbStore {
    /// Creates the database file `path`; commits at `durability` are redb's
    /// `Immediate` (`Sync`) or `None` (`Flush`).
    ///
    /// # Errors
    /// Whatever redb returns.
    pub fn create(path: &Path, durability: Durability) -> Result<Self> {
        let db = Database::create(path)?;
        let durability = match durability {
            Durability::Sync => redb::Durability::Immediate,
            Durability::Flush => redb::Durability::None,
        };
        let store = RedbStore { db, durability };
        // Made once, so that reads never meet a missing table.
        let tx = store.db.begin_write()?;
        tx.open_table(DOCS)?;
        tx.open_table(BY_CONVERSATION)?;
        tx.commit()?;
        Ok(store)
    }
}

impl RedbStore {
    /// Puts each of `docs` and its index entry, in one transaction.
    fn write<I: AsRef<str>>(&self, docs: impl Iterator<Item = (I, Value)>) -> Result<()> {
        let mut tx = self.db.begin_write()?;
        tx.set_durability(self.durability)?;
        {
            let mut table = tx.open_table(DOCS)?;
            let mut index = tx.open_table(BY_CONVERSATION)?;
            for (id, doc) in docs {
                let id = id.as_ref();
                table.insert(id, serde_json::to_vec(&doc)?.as_slice())?;
                index.insert(index_key(conversation_of(&doc)?, id).as_str(), ())?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

impl Peer for RedbStore {
    fn name(&self) -> &'static str {
        "redb"
    }

    fn durability(&self) -> &'static str {
        match self.durability {
            redb::Durability::Immediate => "Durability::Immediate",
            // redb has nothing between a durable commit and one that only a
            // later durable commit makes persistent.
            _ => "Durability::None",
        }
    }

    fn put(&self, id: &str, doc: Value) -> Result<()> {
        self.write(std::iter::once((id, doc)))
    }

    fn load(&self, docs: Vec<(String, Value)>) -> Result<()> {
        self.write(docs.into_iter())
    }

    fn get(&self, id: &str) -> Result<Option<Body>> {
        let tx = self.db.begin_read()?;
        let docs = tx.open_table(DOCS)?;
        let Some(bytes) = docs.get(id)? else {
            return Ok(None);
        };
        Ok(Some(Body::Json(serde_json::from_slice(bytes.value())?)))
    }

    fn query(&self, conversation: &str, limit: usize) -> Result<Vec<(String, Body)>> {
        let tx = self.db.begin_read()?;
        let docs = tx.open_table(DOCS)?;
        let index = tx.open_table(BY_CONVERSATION)?;
        let (from, to) = (format!("{conversation}\0"), format!("{conversation}\u{1}"));
        let mut out = Vec::new();
        for entry in index.range(from.as_str()..to.as_str())?.take(limit) {
            let (key, _) = entry?;
            let id = &key.value()[from.len()..];
            let bytes = docs
                .get(id)?
                .ok_or_else(|| anyhow::anyhow!("index entry for {id}, a missing document"))?;
            out.push((
                id.to_owned(),
                Body::Json(serde_json::from_slice(bytes.value())?),
            ));
        }
        Ok(out)
    }
}
