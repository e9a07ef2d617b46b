//! `native_db` 0.8: typed records with secondary keys, on redb 2.
//!
//! Its durability is redb's default, `Durability::Immediate` (a durable
//! commit, two fsyncs): `native_db` 0.8 opens every read-write transaction
//! with redb's `begin_write` and offers no way to set another, so it takes
//! part in the `Sync` run only.

use std::path::Path;
use std::sync::LazyLock;

use anyhow::Result;
use native_db::{native_db, Builder, Database, Models, ToKey};
use native_model::{native_model, Model};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Body, DocPeer, Peer};

/// A workload turn as a `native_db` user declares it: the id as primary
/// key, conversation and author as (non-unique) secondary keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[native_model(id = 1, version = 1)]
#[native_db]
pub struct Turn {
    #[primary_key]
    pub id: String,
    #[secondary_key]
    pub conversation: String,
    #[secondary_key]
    pub author: String,
    pub role: String,
    pub seq: u64,
    pub text: String,
}

/// The workload turn's fields, without the id (which the store keeps
/// beside the body).
#[derive(Deserialize)]
struct TurnFields {
    conversation: String,
    author: String,
    role: String,
    seq: u64,
    text: String,
}

impl Turn {
    /// Turn `id` from a workload document.
    ///
    /// # Errors
    /// When `doc` is not a workload turn.
    pub fn from_json(id: &str, doc: Value) -> Result<Self> {
        let f: TurnFields = serde_json::from_value(doc)?;
        Ok(Turn {
            id: id.to_owned(),
            conversation: f.conversation,
            author: f.author,
            role: f.role,
            seq: f.seq,
            text: f.text,
        })
    }

    /// The workload document this turn holds (without its id), its fields
    /// in the workload's order.
    ///
    /// # Errors
    /// Never in practice: every field is a string or a number.
    pub fn to_json(&self) -> Result<Value> {
        Ok(serde_json::json!({
            "conversation": self.conversation,
            "author": self.author,
            "role": self.role,
            "seq": self.seq,
            "text": self.text,
        }))
    }
}

static MODELS: LazyLock<Models> = LazyLock::new(|| {
    let mut models = Models::new();
    models
        .define::<Turn>()
        .expect("the Turn model is valid: its keys are declared by the derive");
    models
});

/// A `native_db` database holding `Turn`s.
pub struct NativeDbStore {
    db: Database<'static>,
}

impl NativeDbStore {
    /// Creates the database file `path`.
    ///
    /// # Errors
    /// Whatever `native_db` returns.
    pub fn create(path: &Path) -> Result<Self> {
        let db = Builder::new().create(&MODELS, path)?;
        Ok(NativeDbStore { db })
    }
}

impl Peer for NativeDbStore {
    fn name(&self) -> &'static str {
        "native_db"
    }

    fn durability(&self) -> &'static str {
        "redb Durability::Immediate (its only mode)"
    }

    fn put(&self, id: &str, doc: Value) -> Result<()> {
        let turn = Turn::from_json(id, doc)?;
        let rw = self.db.rw_transaction()?;
        rw.insert(turn)?;
        rw.commit()?;
        Ok(())
    }

    fn load(&self, docs: Vec<(String, Value)>) -> Result<()> {
        let rw = self.db.rw_transaction()?;
        for (id, doc) in docs {
            rw.insert(Turn::from_json(&id, doc)?)?;
        }
        rw.commit()?;
        Ok(())
    }

    fn get(&self, id: &str) -> Result<Option<Body>> {
        let r = self.db.r_transaction()?;
        let turn: Option<Turn> = r.get().primary(id)?;
        Ok(turn.map(Body::Turn))
    }

    fn query(&self, conversation: &str, limit: usize) -> Result<Vec<(String, Body)>> {
        let r = self.db.r_transaction()?;
        let scan = r.scan().secondary::<Turn>(TurnKey::conversation)?;
        let mut out = Vec::new();
        for turn in scan.range(conversation..=conversation)?.take(limit) {
            let turn = turn?;
            out.push((turn.id.clone(), Body::Turn(turn)));
        }
        Ok(out)
    }
}

impl DocPeer for NativeDbStore {
    fn upsert(&self, id: &str, doc: Value) -> Result<()> {
        let turn = Turn::from_json(id, doc)?;
        let rw = self.db.rw_transaction()?;
        rw.upsert(turn)?;
        rw.commit()?;
        Ok(())
    }

    /// `native_db` counts a whole table only (`len`), so a filtered count
    /// walks the author's range of the secondary key, reading each turn.
    fn count(&self, author: &str) -> Result<u64> {
        let r = self.db.r_transaction()?;
        let scan = r.scan().secondary::<Turn>(TurnKey::author)?;
        let mut n = 0;
        for turn in scan.range(author..=author)? {
            turn?;
            n += 1;
        }
        Ok(n)
    }

    /// `remove` takes the record itself (to find its secondary keys), so a
    /// delete by id reads it first, in the same transaction.
    fn delete(&self, id: &str) -> Result<bool> {
        let rw = self.db.rw_transaction()?;
        let turn: Option<Turn> = rw.get().primary(id)?;
        let found = match turn {
            Some(turn) => {
                rw.remove(turn)?;
                true
            }
            None => false,
        };
        rw.commit()?;
        Ok(found)
    }
}
