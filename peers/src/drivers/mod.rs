//! One driver per store, all behind the same calls, so the runner measures
//! each store doing the same work.

use anyhow::Result;
use serde_json::Value;

mod fjall;
mod log;
mod native;
mod redb;

pub use self::fjall::FjallStore;
pub use self::log::Logstore;
pub use self::native::{NativeDbStore, Turn};
pub use self::redb::RedbStore;

/// What a run asks of every store: durable commits, or commits handed on
/// without waiting for the disk. Each driver maps it to its own mode and
/// says which (`Peer::durability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// logstore `Sync`: each commit is on disk when the call returns.
    Sync,
    /// logstore `Flush`: each commit is handed to the OS (or less, where a
    /// store has no such mode: the driver says).
    Flush,
}

/// A document as a store hands it back: JSON for the stores that keep
/// JSON, the typed record for `native_db`. The runner only drops it;
/// the tests compare it with what was put.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Json(Value),
    Turn(Turn),
}

impl Body {
    /// The document as JSON.
    ///
    /// # Errors
    /// When a typed record cannot be written as JSON.
    pub fn to_json(&self) -> Result<Value> {
        Ok(match self {
            Body::Json(value) => value.clone(),
            Body::Turn(turn) => turn.to_json()?,
        })
    }
}

/// The operations every store offers: a key-value store's floor.
pub trait Peer {
    /// The store's name, as the table prints it.
    fn name(&self) -> &'static str;

    /// The store's own durability setting that the run uses.
    fn durability(&self) -> &'static str;

    /// Puts the document `doc` (a workload turn) under `id`, which no
    /// document has yet, with its index entries, in one commit.
    ///
    /// # Errors
    /// Whatever the store returns.
    fn put(&self, id: &str, doc: Value) -> Result<()>;

    /// Puts `docs` (ids no document has yet) in one commit, as a bulk
    /// load would.
    ///
    /// # Errors
    /// Whatever the store returns.
    fn load(&self, docs: Vec<(String, Value)>) -> Result<()>;

    /// The document under `id`, decoded.
    ///
    /// # Errors
    /// Whatever the store returns.
    fn get(&self, id: &str) -> Result<Option<Body>>;

    /// The first `limit` documents of `conversation`, with their ids,
    /// found through the index on `conversation`.
    ///
    /// # Errors
    /// Whatever the store returns.
    fn query(&self, conversation: &str, limit: usize) -> Result<Vec<(String, Body)>>;
}

/// The operations of a document store, beyond a key-value store's.
pub trait DocPeer: Peer {
    /// Replaces the document under `id` (which exists) with `doc`, its
    /// index entries with it.
    ///
    /// # Errors
    /// Whatever the store returns.
    fn upsert(&self, id: &str, doc: Value) -> Result<()>;

    /// How many documents `author` wrote, through the index on `author`.
    ///
    /// # Errors
    /// Whatever the store returns.
    fn count(&self, author: &str) -> Result<u64>;

    /// Deletes the document under `id`; true when there was one.
    ///
    /// # Errors
    /// Whatever the store returns.
    fn delete(&self, id: &str) -> Result<bool>;
}

/// A store in the run: a key-value floor or a document store.
pub enum Store {
    Kv(Box<dyn Peer>),
    Doc(Box<dyn DocPeer>),
}

impl Store {
    /// The operations every store offers.
    pub fn peer(&self) -> &dyn Peer {
        match self {
            Store::Kv(peer) => peer.as_ref(),
            Store::Doc(doc) => doc.as_ref(),
        }
    }

    /// The document operations, when the store has them.
    pub fn doc(&self) -> Option<&dyn DocPeer> {
        match self {
            Store::Kv(_) => None,
            Store::Doc(doc) => Some(doc.as_ref()),
        }
    }
}

/// The key of `id`'s entry in a hand-kept index on `conversation`: the
/// value, a NUL (which no workload value holds), then the id, so a prefix
/// scan of `conversation\0` finds the conversation's ids in id order.
pub(crate) fn index_key(conversation: &str, id: &str) -> String {
    format!("{conversation}\0{id}")
}

/// The conversation of a workload turn.
pub(crate) fn conversation_of(doc: &Value) -> Result<&str> {
    doc.get("conversation")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow::anyhow!("a turn without a conversation string"))
}
