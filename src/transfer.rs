//! Moving whole stores between drivers: reading out what the contract
//! cannot list (collections never ensured, lease rows) and writing rows back
//! exactly, versions and timestamps included; and the walk over every item
//! of a store that copies one store into another (`migrate`). The
//! command-line tool's `dump`, `load` and `migrate` and the Node.js
//! package's `logstore-migrate` are built on it.
//!
//! Imports go in chunks ([`Importer`], [`Transfer::import_rows`]): each
//! driver writes a chunk of rows in one durable step (the log engine's
//! batch, one SQLite or PostgreSQL transaction), so a copy pays one sync
//! per chunk instead of one per item.

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
    /// creation time); their length must be `meta.size`. The log engine
    /// also refuses bytes whose BLAKE3 hash is not `meta.content_hash`,
    /// when that is given.
    ///
    /// # Errors
    /// `InvalidInput` when the id is malformed or taken, or the length (or,
    /// in the log engine, the hash) differs; `Io` from the reader or the
    /// file system.
    fn import_blob(&self, meta: &BlobMeta, bytes: &mut dyn Read) -> Result<BlobMeta>;

    /// Writes a lease row as it is, replacing any row with its key.
    ///
    /// # Errors
    /// `InvalidInput` for a bad key or owner; `Closed`, `Poisoned`, `Io`.
    fn import_lease(&self, row: &LeaseRow) -> Result<()>;

    /// Writes `rows` in order, each as [`Transfer::import_collection`],
    /// [`Transfer::import_document`] or [`Transfer::import_lease`] would,
    /// in as few durable steps as the driver can: when it returns `Ok`,
    /// every row is as durable as the store's options ask. The log engine
    /// writes the chunk in one [`LogStore::batch`](crate::LogStore::batch);
    /// the SQL drivers write each run of documents and leases in one
    /// transaction. On an error some of the rows may be written.
    ///
    /// # Errors
    /// As the single imports.
    fn import_rows(&self, rows: &[Row]) -> Result<()> {
        for row in rows {
            match row {
                Row::Collection {
                    name,
                    indexes,
                    created_at,
                } => {
                    let fields: Vec<&str> = indexes.iter().map(String::as_str).collect();
                    self.import_collection(name, &fields, *created_at)?;
                }
                Row::Document(doc) => self.import_document(doc)?,
                Row::Lease(row) => self.import_lease(row)?,
            }
        }
        Ok(())
    }

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

/// An item other than a blob, owned: what a chunk of
/// [`Transfer::import_rows`] holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    /// An ensured collection with its indexes and creation time.
    Collection {
        /// The collection's name.
        name: String,
        /// Its indexed fields.
        indexes: Vec<String>,
        /// When it was created (milliseconds since the Unix epoch).
        created_at: i64,
    },
    /// A document, version and timestamps included.
    Document(Document),
    /// A lease row, expired or not.
    Lease(LeaseRow),
}

/// Splits `rows` for a driver that ensures collections one by one and
/// writes the documents and leases between them in one transaction each:
/// `collection` for each collection row, `run` for each run of others.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn in_runs(
    rows: &[Row],
    mut collection: impl FnMut(&str, &[&str], i64) -> Result<()>,
    mut run: impl FnMut(&[Row]) -> Result<()>,
) -> Result<()> {
    let mut start = 0;
    for (at, row) in rows.iter().enumerate() {
        if let Row::Collection {
            name,
            indexes,
            created_at,
        } = row
        {
            if start < at {
                run(&rows[start..at])?;
            }
            let fields: Vec<&str> = indexes.iter().map(String::as_str).collect();
            collection(name, &fields, *created_at)?;
            start = at + 1;
        }
    }
    if start < rows.len() {
        run(&rows[start..])?;
    }
    Ok(())
}

/// A document or lease row of a run, checked for a driver's columns
/// before its transaction begins.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) enum Checked<'a, D> {
    /// A document, as the driver encodes it.
    Doc(D),
    /// A lease row and its version as the driver stores it.
    Lease(&'a LeaseRow, i64),
}

/// The documents and leases of `run` (a run [`in_runs`] hands out), each
/// checked by the driver's `doc` and `lease` before anything is written.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn check_run<'a, D>(
    run: &'a [Row],
    doc: impl Fn(&'a Document) -> Result<D>,
    lease: impl Fn(&LeaseRow) -> Result<i64>,
) -> Result<Vec<Checked<'a, D>>> {
    run.iter()
        .filter_map(|row| match row {
            Row::Document(d) => Some(doc(d).map(Checked::Doc)),
            Row::Lease(l) => Some(lease(l).map(|v| Checked::Lease(l, v))),
            Row::Collection { .. } => None,
        })
        .collect()
}

/// A document checked and encoded for a SQL driver's row: its JSON text,
/// its version as the driver's signed 64-bit column, and its parsed body
/// (for the index rows).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) struct DocRow<'a> {
    pub(crate) doc: &'a Document,
    pub(crate) text: String,
    pub(crate) version: i64,
    pub(crate) data: serde_json::Map<String, serde_json::Value>,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl<'a> DocRow<'a> {
    /// Checks `doc` (name, id, depth, size) for a driver whose version
    /// column `column` names in its error.
    pub(crate) fn of(doc: &'a Document, max_bytes: u64, column: &str) -> Result<Self> {
        crate::validate::collection_and_id(&doc.collection, &doc.id)?;
        // Before the clone, which recurses once per level.
        crate::validate::document_depth("the document", &doc.data)?;
        let value = serde_json::Value::Object(doc.data.clone());
        let (data, body) = crate::validate::document_body(value, max_bytes)?;
        let text = String::from_utf8(body)
            .map_err(|e| Error::Internal(format!("serialized JSON is not UTF-8: {e}")))?;
        Ok(DocRow {
            doc,
            text,
            version: sql_version(doc.version, column)?,
            data,
        })
    }
}

/// A lease row checked for a SQL driver's columns: its version as the
/// driver's signed 64-bit column, which `column` names in its error.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn lease_version(row: &LeaseRow, column: &str) -> Result<i64> {
    crate::validate::lease_key(&row.key)?;
    crate::validate::lease_owner(&row.owner)?;
    sql_version(row.version, column)
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn sql_version(version: u64, column: &str) -> Result<i64> {
    i64::try_from(version).map_err(|_| Error::invalid(format!("version too large for {column}")))
}

/// Rows a chunk holds at most.
const CHUNK_ROWS: usize = 1_000;
/// About how many bytes of documents a chunk holds at most.
const CHUNK_BYTES: usize = 4 << 20;

/// Writes items into a store in chunks: rows gather until a chunk is full
/// (1,000 rows or about 4 MiB of documents) and then go to
/// [`Transfer::import_rows`] together; a blob goes on its own, after the
/// rows before it. Nothing handed to [`Importer::add`] is durable before
/// [`Importer::finish`] returns `Ok`.
pub struct Importer<'a> {
    dst: &'a dyn Transfer,
    pending: Vec<Row>,
    bytes: usize,
}

impl<'a> Importer<'a> {
    /// An importer into `dst`.
    pub fn new(dst: &'a dyn Transfer) -> Self {
        Importer {
            dst,
            pending: Vec::new(),
            bytes: 0,
        }
    }

    /// Adds `item`, writing a chunk when one is full (and a blob at once).
    ///
    /// # Errors
    /// As [`Transfer::import_rows`] and [`Transfer::import_blob`].
    pub fn add(&mut self, item: Item<'_>) -> Result<()> {
        let row = match item {
            Item::Blob { meta, bytes } => {
                self.flush()?;
                return self.dst.import_blob(&meta, bytes).map(drop);
            }
            Item::Collection {
                name,
                indexes,
                created_at,
            } => Row::Collection {
                name,
                indexes,
                created_at,
            },
            Item::Document(doc) => {
                self.bytes += doc.id.len()
                    + doc
                        .data
                        .iter()
                        .map(|(k, v)| k.len() + approx_bytes(v))
                        .sum::<usize>();
                Row::Document(doc)
            }
            Item::Lease(row) => Row::Lease(row),
        };
        self.pending.push(row);
        if self.pending.len() >= CHUNK_ROWS || self.bytes >= CHUNK_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// How many rows are gathered and not yet written.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Writes the rows still gathered.
    ///
    /// # Errors
    /// As [`Transfer::import_rows`].
    pub fn finish(mut self) -> Result<()> {
        self.flush()
    }

    fn flush(&mut self) -> Result<()> {
        if !self.pending.is_empty() {
            self.dst.import_rows(&self.pending)?;
            self.pending.clear();
            self.bytes = 0;
        }
        Ok(())
    }
}

/// About the size of `value` as JSON, without writing it out.
fn approx_bytes(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 8,
        Value::String(s) => s.len() + 2,
        Value::Array(items) => 2 + items.iter().map(approx_bytes).sum::<usize>(),
        Value::Object(map) => {
            2 + map
                .iter()
                .map(|(k, v)| k.len() + 4 + approx_bytes(v))
                .sum::<usize>()
        }
    }
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
/// timestamps. Blob bytes stream from one store to the other; the rest go
/// in chunks ([`Importer`]), each one durable step of `dst`. `on_total`
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
    let mut importer = Importer::new(dst);
    let copied = each_item(src, on_total, |item| {
        on_item(&item);
        importer.add(item)
    })?;
    importer.finish()?;
    Ok(copied)
}
