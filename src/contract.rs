//! The contract every driver honours: rows, queries and the store traits.
//!
//! Code written against `&dyn Store` runs unchanged on the log engine (on
//! disk or in memory) and on the SQLite driver. The behaviour behind each
//! call is the one in the project's `CONTRACT.md`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Result;

/// A stored document: a JSON object with its identity, version and timestamps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// The id, unique within its collection.
    pub id: String,
    /// The collection it lives in.
    pub collection: String,
    /// The document body; key order is kept as written.
    pub data: Map<String, Value>,
    /// Starts at 1 and grows by one with every successful write.
    pub version: u64,
    /// Milliseconds since the Unix epoch when the row was first written.
    pub created_at: i64,
    /// Milliseconds since the Unix epoch of the latest write.
    pub updated_at: i64,
}

/// A stored document as its driver keeps it: the fields of [`Document`],
/// with the body as JSON text that was never parsed on the way out.
///
/// `data` is the text of a JSON object exactly as the driver stores it: the
/// log engine's record body (its frame checksum verified), the SQLite
/// driver's `data` column, the PostgreSQL driver's `json` column. Reads hand
/// it over without parsing or re-serializing it, so it costs a copy where a
/// parsed read costs building a map; a caller that passes documents on as
/// JSON (an HTTP response, a JavaScript runtime) splices it in as it is.
/// Parsing it gives the `data` of the parsed read ([`RawDocument::parse`]).
///
/// It is not re-validated on read: a body stored before a limit existed
/// (say, nested deeper than [`crate::MAX_DOCUMENT_DEPTH`]) comes back as
/// text where the parsed read reports it as corrupt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDocument {
    /// The id, unique within its collection.
    pub id: String,
    /// The collection it lives in.
    pub collection: String,
    /// The document body: the JSON text of an object, as stored.
    pub data: String,
    /// Starts at 1 and grows by one with every successful write.
    pub version: u64,
    /// Milliseconds since the Unix epoch when the row was first written.
    pub created_at: i64,
    /// Milliseconds since the Unix epoch of the latest write.
    pub updated_at: i64,
}

impl RawDocument {
    /// The document with its body parsed.
    ///
    /// # Errors
    /// `InvalidInput` naming the row when the body is not a JSON object.
    pub fn parse(&self) -> Result<Document> {
        let data = serde_json::from_str(&self.data).map_err(|e| {
            crate::Error::invalid(format!(
                "the body of \"{}\"/\"{}\" is not a JSON object: {e}",
                self.collection, self.id
            ))
        })?;
        Ok(Document {
            id: self.id.clone(),
            collection: self.collection.clone(),
            data,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A collection as `list_collections` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionInfo {
    /// The collection name.
    pub name: String,
    /// Declared index fields, in the order they were first declared.
    pub indexes: Vec<String>,
    /// How many documents the collection holds.
    pub doc_count: u64,
}

/// The direction of a query's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OrderDir {
    /// Smallest first (the default).
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// The default number of rows a query returns.
pub const DEFAULT_LIMIT: usize = 100;

/// A query: equality on declared index fields, an order, a page.
///
/// ```
/// use logstore::Query;
/// let q = Query::new("msgs").filter("owner", "a").order_by("rank").desc().limit(20);
/// assert_eq!(q.limit, 20);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Query {
    /// The collection to search.
    pub collection: String,
    /// Field path and value pairs; every one must match.
    pub filter: Vec<(String, Value)>,
    /// `createdAt` (when `None`), `updatedAt`, `id` or a declared index field.
    pub order_by: Option<String>,
    /// Ascending unless set otherwise.
    pub order_dir: OrderDir,
    /// At most this many rows (default 100).
    pub limit: usize,
    /// Rows to skip before the first one returned (default 0).
    pub offset: usize,
}

impl Query {
    /// A query of every document in `collection`, oldest first, 100 at most.
    pub fn new(collection: impl Into<String>) -> Self {
        Query {
            collection: collection.into(),
            filter: Vec::new(),
            order_by: None,
            order_dir: OrderDir::Asc,
            limit: DEFAULT_LIMIT,
            offset: 0,
        }
    }

    /// Adds an equality condition on a declared index field.
    pub fn filter(mut self, field: impl Into<String>, value: impl Into<Value>) -> Self {
        self.filter.push((field.into(), value.into()));
        self
    }

    /// Orders by `createdAt`, `updatedAt`, `id` or a declared index field.
    pub fn order_by(mut self, field: impl Into<String>) -> Self {
        self.order_by = Some(field.into());
        self
    }

    /// Largest first.
    pub fn desc(mut self) -> Self {
        self.order_dir = OrderDir::Desc;
        self
    }

    /// Smallest first (the default).
    pub fn asc(mut self) -> Self {
        self.order_dir = OrderDir::Asc;
        self
    }

    /// Returns at most `limit` rows.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Skips the first `offset` matching rows.
    pub fn offset(mut self, offset: usize) -> Self {
        self.offset = offset;
        self
    }
}

/// JSON documents in collections with declared indexes.
///
/// Every racy mutation is compare-and-swap: a lost race is `Ok(None)`, never
/// an error.
pub trait DocumentStore: Send + Sync {
    /// Creates the collection if it is missing and appends index fields that
    /// are new, backfilling existing documents in the same atomic step. An
    /// index is never dropped.
    ///
    /// # Errors
    /// `InvalidInput` for a bad collection name or an index path with an
    /// empty segment; `Closed`, `Poisoned` or `Io` from the driver.
    fn ensure_collection(&self, name: &str, indexes: &[&str]) -> Result<()>;

    /// Every ensured collection with its indexes and document count, ordered
    /// by name (byte order).
    ///
    /// # Errors
    /// `Closed` or an I/O error from the driver.
    fn list_collections(&self) -> Result<Vec<CollectionInfo>>;

    /// The row, or `None`.
    ///
    /// # Errors
    /// `InvalidInput` for a bad name or id; `Corruption` if the stored
    /// record does not verify.
    fn get(&self, collection: &str, id: &str) -> Result<Option<Document>>;

    /// As [`DocumentStore::get`], the body as the stored JSON text, unparsed
    /// (see [`RawDocument`]): the read for a caller that passes documents on
    /// as JSON.
    ///
    /// # Errors
    /// As [`DocumentStore::get`]; a body that does not parse is not an error
    /// here.
    fn get_raw(&self, collection: &str, id: &str) -> Result<Option<RawDocument>>;

    /// Upsert (`expected_version: None`) or compare-and-swap
    /// (`Some(v)`: the row must exist at exactly version `v`, else `Ok(None)`).
    ///
    /// # Errors
    /// `InvalidInput` when `data` is not a JSON object, is larger than
    /// `max_document_bytes`, or the name or id is bad; nothing is written.
    fn put(
        &self,
        collection: &str,
        id: &str,
        data: Value,
        expected_version: Option<u64>,
    ) -> Result<Option<Document>>;

    /// Shallow merge of `patch` into the row at `expected_version`; `Ok(None)`
    /// if the row is missing or at another version.
    ///
    /// # Errors
    /// As [`DocumentStore::put`].
    fn patch(
        &self,
        collection: &str,
        id: &str,
        patch: Value,
        expected_version: u64,
    ) -> Result<Option<Document>>;

    /// Removes the row and its index entries; true if it existed.
    ///
    /// # Errors
    /// `InvalidInput` for a bad name or id; `Closed`, `Poisoned` or `Io`.
    fn delete(&self, collection: &str, id: &str) -> Result<bool>;

    /// The matching rows, in order, one page.
    ///
    /// # Errors
    /// `InvalidInput` when a filter or order field is not indexed on the
    /// collection, or a filter value is null, an object or an array.
    fn query(&self, query: &Query) -> Result<Vec<Document>>;

    /// As [`DocumentStore::query`], each body as the stored JSON text,
    /// unparsed (see [`RawDocument`]).
    ///
    /// # Errors
    /// As [`DocumentStore::query`].
    fn query_raw(&self, query: &Query) -> Result<Vec<RawDocument>>;

    /// How many rows match; the query's order, limit and offset are ignored.
    ///
    /// # Errors
    /// As [`DocumentStore::query`].
    fn count(&self, query: &Query) -> Result<u64>;
}

/// The mime type of a blob put without one.
pub const DEFAULT_MIME: &str = "application/octet-stream";

/// Options of a blob put.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobPut {
    /// The mime type (default `application/octet-stream`).
    pub mime: Option<String>,
    /// The owner, for `list` by owner.
    pub owner_id: Option<String>,
}

/// Which blobs `list` returns: newest first (`created_at` descending, ties by
/// `id` descending).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobList {
    /// Only this owner's blobs; `None` lists every blob.
    pub owner_id: Option<String>,
    /// At most this many (default 100).
    pub limit: Option<usize>,
    /// Skip this many first (default 0).
    pub offset: Option<usize>,
}

/// A blob's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobMeta {
    /// A UUID, unique in the store.
    pub id: String,
    /// The mime type.
    pub mime: String,
    /// Size in bytes.
    pub size: u64,
    /// The owner, if one was given.
    pub owner_id: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// The BLAKE3 hash of the bytes in lowercase hex: the content address in
    /// the log engine. The SQLite driver's schema has no such column, so it
    /// reports `None`.
    pub content_hash: Option<String>,
}

/// The bytes of a blob, streamed.
///
/// Read it to the end (until `read` returns `Ok(0)`): a blob whose stored
/// bytes no longer match its metadata (length, and hash where the driver
/// keeps one) ends in an error instead, never in a clean end of stream,
/// and the read that would hand out its last bytes already fails. That
/// error is an `std::io::Error` of kind `InvalidData` whose inner error is
/// [`crate::Error::Corruption`] (`io_error.downcast::<logstore::Error>()`
/// recovers it), in every driver. Other `io::Error`s are I/O failures of
/// the read itself.
pub type BlobReader = Box<dyn std::io::Read + Send>;

/// Bytes with metadata. A blob is immutable: put a new one to change it.
pub trait BlobStore: Send + Sync {
    /// Streams `bytes` into the store and returns the new blob's metadata.
    ///
    /// # Errors
    /// `InvalidInput` when the blob is larger than `max_blob_bytes` (nothing
    /// is left behind) or the mime or owner is bad; `Io` from the reader or
    /// the file system.
    fn put(&self, bytes: &mut dyn std::io::Read, opts: BlobPut) -> Result<BlobMeta>;

    /// The metadata and a stream of the bytes, or `None`.
    ///
    /// Small blobs (up to 64 KiB in the log and SQLite drivers) are checked
    /// whole before this returns; larger ones are checked as they stream,
    /// and damage shows as an error of the [`BlobReader`] at the end. The
    /// log engine hashes a content file on a handle's first read of it (and
    /// on any read after the file changed); that handle's later reads check
    /// the length and that the file has not changed since.
    ///
    /// # Errors
    /// `Corruption` when the file is missing or its length is wrong, or
    /// when a small blob's bytes no longer match.
    fn get(&self, id: &str) -> Result<Option<(BlobMeta, BlobReader)>>;

    /// The metadata, or `None`.
    ///
    /// # Errors
    /// `InvalidInput` for a malformed id.
    fn get_meta(&self, id: &str) -> Result<Option<BlobMeta>>;

    /// Removes the blob; true if it existed.
    ///
    /// # Errors
    /// `InvalidInput` for a malformed id; `Io`, `Closed` or `Poisoned`.
    fn delete(&self, id: &str) -> Result<bool>;

    /// One page of blobs, newest first.
    ///
    /// # Errors
    /// `Closed`, or a driver error.
    fn list(&self, query: &BlobList) -> Result<Vec<BlobMeta>>;
}

/// A lease: a TTL'd claim on a key by an owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRow {
    /// The claimed key.
    pub key: String,
    /// Who holds it (conventionally a workflow run id).
    pub owner: String,
    /// Milliseconds since the Unix epoch; expired when `expires_at < now`.
    pub expires_at: i64,
    /// Grows by one with every successful acquire or renew.
    pub version: u64,
    /// When the row was first created.
    pub created_at: i64,
    /// When the row was last acquired or renewed.
    pub updated_at: i64,
}

/// The outcome of `acquire` or `renew`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquire {
    /// The caller holds the lease now.
    Acquired(LeaseRow),
    /// Someone else holds it (for `renew` without a row: owner `""` and
    /// expiry 0).
    Held {
        /// The current holder.
        owner: String,
        /// When the current hold expires.
        expires_at: i64,
    },
}

/// TTL'd compare-and-swap claims on keys.
pub trait LeaseStore: Send + Sync {
    /// Claims `key` when it is free, expired, or already held by `owner`.
    ///
    /// # Errors
    /// `InvalidInput` for an empty or oversized key or owner.
    fn acquire(&self, key: &str, owner: &str, ttl_ms: i64) -> Result<Acquire>;

    /// Extends a lease `owner` holds and that has not expired.
    ///
    /// # Errors
    /// As [`LeaseStore::acquire`].
    fn renew(&self, key: &str, owner: &str, ttl_ms: i64) -> Result<Acquire>;

    /// Removes the lease if `owner` holds it; otherwise does nothing.
    ///
    /// # Errors
    /// As [`LeaseStore::acquire`].
    fn release(&self, key: &str, owner: &str) -> Result<()>;

    /// Removes every lease of `owner`; returns how many.
    ///
    /// # Errors
    /// As [`LeaseStore::acquire`].
    fn release_all(&self, owner: &str) -> Result<u64>;

    /// The row, expired or not, or `None`.
    ///
    /// # Errors
    /// `InvalidInput` for a bad key.
    fn get(&self, key: &str) -> Result<Option<LeaseRow>>;
}

/// A store: the contract's facilities behind one handle.
pub trait Store: Send + Sync {
    /// The document facility.
    fn docs(&self) -> &dyn DocumentStore;

    /// The blob facility.
    fn blobs(&self) -> &dyn BlobStore;

    /// The lease facility.
    fn leases(&self) -> &dyn LeaseStore;

    /// Makes everything durable and releases the store; every later call
    /// fails with `Error::Closed`. Closing twice is harmless.
    ///
    /// # Errors
    /// `Io` if the final sync fails.
    fn close(&self) -> Result<()>;
}
