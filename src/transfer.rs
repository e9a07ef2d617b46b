//! Moving whole stores between drivers: reading out what the contract
//! cannot list (collections never ensured, lease rows) and writing rows back
//! exactly, versions and timestamps included; and the walk over every item
//! of a store that copies one store into another (`migrate`). The
//! command-line tool's `dump`, `load` and `migrate` and the Node.js
//! package's `logstore-migrate` are built on it.

use std::io::{self, Read};

use crate::contract::{BlobList, BlobMeta, Document, LeaseRow, Query, Store};
use crate::{Error, Result};

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

/// One item of a whole store, as [`each_item`] hands it out and
/// [`import_item`] writes it.
pub enum Item<'a> {
    /// An ensured collection with its indexes and creation time
    /// (milliseconds since the Unix epoch; 0 when never recorded).
    Collection {
        /// The collection's name.
        name: String,
        /// Its indexed fields.
        indexes: Vec<String>,
        /// When it was created.
        created_at: i64,
    },
    /// A document, version and timestamps included.
    Document(Document),
    /// A blob: its metadata and a reader of exactly `meta.size` bytes.
    Blob {
        /// The blob's id, mime, owner, size and creation time.
        meta: BlobMeta,
        /// Its bytes.
        bytes: &'a mut dyn Read,
    },
    /// A lease row, expired or not.
    Lease(LeaseRow),
}

/// How many items of each kind a walk or a copy handled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Copied {
    /// Ensured collections.
    pub collections: u64,
    /// Documents, in ensured collections and in others.
    pub documents: u64,
    /// Blobs.
    pub blobs: u64,
    /// The blobs' bytes.
    pub blob_bytes: u64,
    /// Lease rows.
    pub leases: u64,
}

impl Copied {
    /// Every item counted, of any kind.
    #[must_use]
    pub fn items(&self) -> u64 {
        self.collections + self.documents + self.blobs + self.leases
    }

    fn count(&mut self, item: &Item<'_>) {
        match item {
            Item::Collection { .. } => self.collections += 1,
            Item::Document(_) => self.documents += 1,
            Item::Blob { meta, .. } => {
                self.blobs += 1;
                self.blob_bytes += meta.size;
            }
            Item::Lease(_) => self.leases += 1,
        }
    }
}

/// Hands every item of `src` to `f`, in an order that [`import_item`]
/// writes back exactly: ensured collections, then the documents of every
/// collection by id, blobs oldest first, and leases. `on_total` hears the
/// number of items first (for progress). A blob's reader is read, or
/// skipped, by `f`.
///
/// # Errors
/// What `src` or `f` returns; `Io` (kind `NotFound`) when a listed blob
/// vanished during the walk.
pub fn each_item(
    src: &dyn Transfer,
    on_total: impl FnOnce(u64),
    mut f: impl FnMut(Item<'_>) -> Result<()>,
) -> Result<Copied> {
    let mut copied = Copied::default();
    let ensured = src.docs().list_collections()?;
    let mut names: Vec<String> = ensured.iter().map(|c| c.name.clone()).collect();
    let unensured = src.unensured_collections()?;
    let mut docs: u64 = ensured.iter().map(|c| c.doc_count).sum();
    for name in &unensured {
        docs += src.docs().count(&Query::new(name))?;
    }
    names.extend(unensured);
    let all_blobs = BlobList {
        limit: Some(usize::MAX),
        ..Default::default()
    };
    let mut blobs = src.blobs().list(&all_blobs)?;
    blobs.reverse();
    let leases = src.all_leases()?;
    on_total(ensured.len() as u64 + docs + blobs.len() as u64 + leases.len() as u64);
    let mut hand = |item: Item<'_>| {
        copied.count(&item);
        f(item)
    };
    for info in ensured {
        let created_at = src.collection_created_at(&info.name)?.unwrap_or(0);
        hand(Item::Collection {
            name: info.name,
            indexes: info.indexes,
            created_at,
        })?;
    }
    for name in names {
        let q = Query::new(&name).order_by("id").limit(usize::MAX);
        for doc in src.docs().query(&q)? {
            hand(Item::Document(doc))?;
        }
    }
    for listed in blobs {
        let (meta, mut reader) = src.blobs().get(&listed.id)?.ok_or_else(|| Error::Io {
            context: format!("reading blob {}", listed.id),
            source: io::Error::new(io::ErrorKind::NotFound, "it vanished during the copy"),
        })?;
        hand(Item::Blob {
            meta,
            bytes: &mut reader,
        })?;
    }
    for row in leases {
        hand(Item::Lease(row))?;
    }
    Ok(copied)
}

/// Writes one item of [`each_item`] into `dst` as it is.
///
/// # Errors
/// As the [`Transfer`] import methods.
pub fn import_item(dst: &dyn Transfer, item: Item<'_>) -> Result<()> {
    match item {
        Item::Collection {
            name,
            indexes,
            created_at,
        } => {
            let fields: Vec<&str> = indexes.iter().map(String::as_str).collect();
            dst.import_collection(&name, &fields, created_at)
        }
        Item::Document(doc) => dst.import_document(&doc),
        Item::Blob { meta, bytes } => dst.import_blob(&meta, bytes).map(drop),
        Item::Lease(row) => dst.import_lease(&row),
    }
}

/// Copies everything in `src` into `dst`, which must be empty: every
/// collection, document, blob and lease with its ids, versions and
/// timestamps. Blob bytes stream from one store to the other. `on_total`
/// and `on_item` hear the number of items, then each item as it is copied.
///
/// # Errors
/// `InvalidInput` when `dst` is not empty (nothing is written); otherwise
/// what either store returns, with the items before it copied.
pub fn migrate(
    src: &dyn Transfer,
    dst: &dyn Transfer,
    on_total: impl FnOnce(u64),
    mut on_item: impl FnMut(&Item<'_>),
) -> Result<Copied> {
    if !dst.is_empty()? {
        return Err(Error::InvalidInput(
            "the target store is not empty; a migration only fills an empty store".into(),
        ));
    }
    each_item(src, on_total, |item| {
        on_item(&item);
        import_item(dst, item)
    })
}
