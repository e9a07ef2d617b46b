//! Moving whole stores between drivers: reading out what the contract
//! cannot list (collections never ensured, lease rows) and writing rows back
//! exactly, versions and timestamps included. The command-line tool's
//! `dump`, `load` and `migrate` are built on it.

use std::io::Read;

use crate::contract::{BlobMeta, Document, LeaseRow, Store};
use crate::Result;

/// Export and exact import, implemented by every driver.
pub trait Transfer: Store {
    /// Collections that hold documents but were never ensured (the contract's
    /// `list_collections` leaves them out), by name.
    ///
    /// # Errors
    /// `Closed`, or a driver error.
    fn unensured_collections(&self) -> Result<Vec<String>>;

    /// When an ensured collection was created (milliseconds since the Unix
    /// epoch; 0 when the store never recorded it).
    ///
    /// # Errors
    /// `Closed`, or a driver error.
    fn collection_created_at(&self, name: &str) -> Result<Option<i64>>;

    /// Ensures a collection with these indexes and, if it is new, this
    /// creation time.
    ///
    /// # Errors
    /// As `ensure_collection`.
    fn import_collection(&self, name: &str, indexes: &[&str], created_at: i64) -> Result<()>;

    /// Every lease row, expired ones included, by key.
    ///
    /// # Errors
    /// `Closed`, or a driver error.
    fn all_leases(&self) -> Result<Vec<LeaseRow>>;

    /// Writes `doc` as it is (version and timestamps included), replacing
    /// any row with its collection and id.
    ///
    /// # Errors
    /// `InvalidInput` for a bad name, id or body; `Closed`, `Poisoned`, `Io`.
    fn import_document(&self, doc: &Document) -> Result<()>;

    /// Stores `bytes` as the blob `meta` describes (its id, mime, owner and
    /// creation time); their length must be `meta.size`.
    ///
    /// # Errors
    /// `InvalidInput` when the id is malformed or taken, or the length
    /// differs; `Io` from the reader or the file system.
    fn import_blob(&self, meta: &BlobMeta, bytes: &mut dyn Read) -> Result<BlobMeta>;

    /// Writes a lease row as it is, replacing any row with its key.
    ///
    /// # Errors
    /// `InvalidInput` for a bad key or owner; `Closed`, `Poisoned`, `Io`.
    fn import_lease(&self, row: &LeaseRow) -> Result<()>;

    /// True when the store holds no collection, document, blob or lease.
    ///
    /// # Errors
    /// `Closed`, or a driver error.
    fn is_empty(&self) -> Result<bool> {
        let all = crate::BlobList {
            limit: Some(1),
            ..Default::default()
        };
        Ok(self.docs().list_collections()?.is_empty()
            && self.unensured_collections()?.is_empty()
            && self.blobs().list(&all)?.is_empty()
            && self.all_leases()?.is_empty())
    }
}
