//! logstore: an embedded, log-structured store for JSON documents in
//! collections with declared indexes.
//!
//! Every mutation is one CRC-checked record appended to a segment file; the
//! primary map and B-tree indexes live in memory and are rebuilt from the log
//! on open; document bodies are read back from the segment files. One process
//! owns a store directory through a lock file.
//!
//! ```
//! use logstore::{LogStore, Options, Query, Store};
//! use serde_json::json;
//!
//! # fn main() -> logstore::Result<()> {
//! # let dir = tempfile::tempdir().expect("temp dir");
//! let store = LogStore::open(dir.path().join("log"), Options::default())?;
//! let s: &dyn Store = &store;
//! s.docs().ensure_collection("msgs", &["owner", "rank"])?;
//! s.docs().put("msgs", "m1", json!({"owner": "a", "rank": "r1"}), None)?;
//! let row = s.docs().put("msgs", "m1", json!({"owner": "a", "rank": "r2"}), Some(1))?;
//! assert_eq!(row.map(|d| d.version), Some(2));
//! let rows = s.docs().query(&Query::new("msgs").filter("owner", "a").limit(20))?;
//! assert_eq!(rows.len(), 1);
//! s.close()?;
//! # Ok(())
//! # }
//! ```
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

// Every module is private; the public API is the re-exports below, so each
// type has one path. The layout, from the bottom up:
// - `log`: the on-disk log (frames, segments, the manifest, appends with
//   group commit, recovery);
// - `index`: the in-memory state rebuilt from the log, and its snapshot
//   encoding;
// - `store`: the log engine as a `Store` (`LogStore`), tying the two
//   together, with compaction, the snapshot file, verify and salvage;
// - `sqlite`: the SQLite driver of the same contract;
// - `transfer`, `staging`: whole-store copies between drivers, and the
//   staging areas a new store is built in before it is moved into place;
// - `blob_files`: the content-addressed blob-file protocol both drivers use;
// - `codec`: the little-endian reader and writer of every file format;
// - `contract`, `validate`, `limits`, `lease_rules`: the contract and the
//   rules every driver shares.
mod blob_files;
mod codec;
mod contract;
mod document_rules;
mod error;
#[cfg(test)]
mod format_doc;
mod index;
mod lease_rules;
mod limits;
mod log;
mod options;
#[cfg(feature = "postgres")]
mod pg;
#[cfg(feature = "sqlite")]
mod sqlite;
mod staging;
mod store;
mod transfer;
mod validate;

/// The file-system seam the engine does all its I/O through, with the
/// in-memory and fault-injecting file systems the crash tests build on.
/// Not a stable API: it exists for this project's own tests.
#[doc(hidden)]
pub mod io;

pub use contract::{
    Acquire, BlobList, BlobMeta, BlobPut, BlobReader, BlobStore, CollectionInfo, Document,
    DocumentStore, LeaseRow, LeaseStore, OrderDir, Query, RawDocument, Store, DEFAULT_LIMIT,
    DEFAULT_MIME,
};
pub use error::{Blocked, Error, Result};
pub use limits::{
    DEFAULT_BLOB_LIMIT, MAX_BLOB_ID_BYTES, MAX_COLLECTION_NAME_BYTES, MAX_DOCUMENT_DEPTH,
    MAX_ID_BYTES, MAX_INDEXES, MAX_INDEX_PATH_BYTES, MAX_KEY_BYTES, MAX_MIME_BYTES,
    ORDER_CREATED_AT, ORDER_ID, ORDER_UPDATED_AT,
};
pub use log::recovery::{RecoveryReport, SnapshotRejection, SnapshotUse, TruncatedTail};
pub use options::{
    Clock, Durability, ManualClock, Options, SystemClock, MAX_DOCUMENT_BYTES_LIMIT,
    MAX_SEGMENT_BYTES, MIN_SEGMENT_BYTES,
};
#[cfg(feature = "postgres")]
pub use pg::PgStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use staging::{refuse_inside, staging_area, Leftover, Place, Staging, MARKER};
pub use store::{
    salvage, BackupReport, Budget, CompactionReport, ForeignEntry, LogStore, Problem, RepairReport,
    Salvage, SalvageReport, Session, Stats, StoreDir, VerifyReport,
};
pub use transfer::{each_item, import_item, migrate, Copied, Importer, Item, Row, Transfer};
