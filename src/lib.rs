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

mod blobs;
pub mod contract;
mod drivers;
mod engine;
pub mod error;
pub mod io;
mod leases;
mod log;
pub mod options;
pub mod transfer;
pub mod validate;
pub mod workload;

pub use contract::{
    Acquire, BlobList, BlobMeta, BlobPut, BlobReader, BlobStore, CollectionInfo, Document,
    DocumentStore, LeaseRow, LeaseStore, OrderDir, Query, Store, DEFAULT_LIMIT, DEFAULT_MIME,
};
pub use drivers::log::repair::{salvage, SalvageReport};
pub use drivers::log::{CompactionReport, Problem, Stats, VerifyReport};
pub use drivers::log::{LogStore, LOCK_FILE};
#[cfg(feature = "sqlite")]
pub use drivers::sqlite::SqliteStore;
pub use error::{Error, Result};
pub use log::recovery::{RecoveryReport, SnapshotUse, TruncatedTail};
pub use options::{Clock, Durability, ManualClock, Options, SystemClock};
pub use transfer::Transfer;
