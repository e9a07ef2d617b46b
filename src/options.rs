//! How a store is opened: durability, limits and the clock.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Error, Result};

/// When a write returns, relative to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// A write returns only after its record is on stable storage
    /// (`fdatasync`). Concurrent writers share one sync (group commit).
    /// The SQLite driver maps this to `synchronous=FULL`.
    #[default]
    Sync,
    /// A write returns once its record is handed to the operating system: it
    /// survives a crash of the process, not a power loss. The SQLite driver
    /// maps this to `synchronous=NORMAL`.
    Flush,
}

/// The source of `created_at`, `updated_at` and lease expiry times, in
/// milliseconds since the Unix epoch. Tests inject a [`ManualClock`].
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The wall clock, the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock that only moves when told to; share it between a test and the
/// stores it drives.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock that reads `start_ms`.
    pub fn new(start_ms: i64) -> Self {
        ManualClock(AtomicI64::new(start_ms))
    }

    /// Moves the clock by `delta_ms` (may be negative).
    pub fn advance(&self, delta_ms: i64) {
        self.0.fetch_add(delta_ms, Ordering::SeqCst);
    }

    /// Sets the clock to `ms`.
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The largest `max_document_bytes` a store accepts (the record length field
/// of the log format must hold a document with its framing).
pub const MAX_DOCUMENT_BYTES_LIMIT: u64 = 512 * 1024 * 1024;
/// The smallest `segment_bytes` a store accepts.
pub const MIN_SEGMENT_BYTES: u64 = 4096;
/// The largest `segment_bytes` a store accepts: offsets inside a segment are
/// kept as `u32` in memory.
pub const MAX_SEGMENT_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// How a store is opened. Every field is public; start from
/// `Options::default()`.
#[derive(Debug, Clone)]
pub struct Options {
    /// When a write returns (default [`Durability::Sync`]).
    pub durability: Durability,
    /// The largest document body, as JSON text, in bytes (default 16 MiB).
    pub max_document_bytes: u64,
    /// A segment file is sealed once it reaches this size (default 64 MiB).
    pub segment_bytes: u64,
    /// The largest blob, in bytes (default 25 MiB).
    pub max_blob_bytes: u64,
    /// Where timestamps come from (default the wall clock).
    pub clock: Arc<dyn Clock>,
    /// Compact automatically, on a background thread, when dead bytes pass
    /// `compaction_threshold` of the log (default true).
    pub auto_compact: bool,
    /// The share of dead bytes that triggers automatic compaction (default
    /// 0.5).
    pub compaction_threshold: f64,
    /// Automatic compaction waits until the log holds at least this many
    /// bytes (default 16 MiB), so small stores are left alone.
    pub compaction_min_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Sync,
            max_document_bytes: 16 * 1024 * 1024,
            segment_bytes: 64 * 1024 * 1024,
            max_blob_bytes: 25 * 1024 * 1024,
            clock: Arc::new(SystemClock),
            auto_compact: true,
            compaction_threshold: 0.5,
            compaction_min_bytes: 16 * 1024 * 1024,
        }
    }
}

impl Options {
    /// Checks the limits; called by every driver's `open`.
    ///
    /// # Errors
    /// `InvalidInput` naming the field that is out of range.
    pub fn validate(&self) -> Result<()> {
        if self.max_document_bytes == 0 || self.max_document_bytes > MAX_DOCUMENT_BYTES_LIMIT {
            return Err(Error::invalid(format!(
                "max_document_bytes must be between 1 and {MAX_DOCUMENT_BYTES_LIMIT}, got {}",
                self.max_document_bytes
            )));
        }
        if !(MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES).contains(&self.segment_bytes) {
            return Err(Error::invalid(format!(
                "segment_bytes must be between {MIN_SEGMENT_BYTES} and {MAX_SEGMENT_BYTES}, got {}",
                self.segment_bytes
            )));
        }
        if !(self.compaction_threshold > 0.0 && self.compaction_threshold < 1.0) {
            return Err(Error::invalid(format!(
                "compaction_threshold must be between 0 and 1 (exclusive), got {}",
                self.compaction_threshold
            )));
        }
        Ok(())
    }
}
