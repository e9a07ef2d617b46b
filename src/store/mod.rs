//! The log engine as a [`Store`]: validation, then one record appended (and
//! synced), then the in-memory state applied. Every write goes through
//! `Inner::commit` (`commit.rs`), which holds that sequence; a facility
//! (`documents.rs`, `blobs.rs`, `leases.rs`, `transfer.rs`) only decides,
//! from the state, what (if anything) to write. This file opens the store
//! and holds its public API.

mod backup;
mod blobs;
mod commit;
mod compaction;
mod dir;
mod documents;
mod follow;
mod leases;
mod read;
mod repair;
mod session;
mod snapshot_file;
mod stats;
mod transfer;
mod verify;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};

use crate::blob_files;
use crate::contract::{
    BlobMeta, BlobReader, BlobStore, DocumentStore, LeaseStore, Query, RawDocument, Store,
};
use crate::index::snapshot::Covers;
use crate::index::State;
use crate::io::{Access, LockGuard, MemFs, RealFs, Vfs};
use crate::log::commit::GroupCommit;
use crate::log::manifest;
use crate::log::read::body as read_body;
use crate::log::recovery::{recover, Mode, RecoveryReport};
use crate::log::segment::SegmentFiles;
use crate::log::writer::LogWriter;
use crate::options::Options;
use crate::{Error, Result};
pub use backup::BackupReport;
use commit::WriteMode;
pub use compaction::CompactionReport;
pub use dir::{ForeignEntry, StoreDir};
pub use read::Budget;
pub use repair::{salvage, RepairReport, Salvage, SalvageReport};
pub use session::Session;
#[cfg(test)]
pub(crate) use snapshot_file::SNAPSHOT_FILE;
pub use stats::Stats;
pub use verify::{Problem, VerifyReport};

/// The name of the lock file in a store directory.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// The log-structured store: documents in append-only segment files,
/// indexes in memory, one process owning the directory.
///
/// Cheap to share between threads (`&LogStore` is `Send + Sync`).
#[derive(Debug)]
pub struct LogStore {
    /// The store's own calls: a session that waits. Its engine is the
    /// store's (`LogStore::inner`).
    waiting: Session,
    compactor: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    opts: Options,
    state: RwLock<State>,
    files: SegmentFiles,
    writer: Mutex<LogWriter>,
    commit: Arc<GroupCommit>,
    poisoned: AtomicBool,
    closed: AtomicBool,
    lock: Mutex<Option<Box<dyn LockGuard>>>,
    recovery: RecoveryReport,
    fs: Arc<dyn Vfs>,
    /// Held for the whole of a compaction: one at a time.
    compaction: Mutex<()>,
    auto: compaction::AutoCompact,
    /// What the snapshot on disk covers, so close skips rewriting it when
    /// nothing changed.
    snapshot_covers: Mutex<Option<Covers>>,
    /// Set on a read-only handle: what its view was built from. Every
    /// write of such a handle returns `Error::ReadOnly`.
    follow: Option<Mutex<follow::Follow>>,
    /// The content files this handle hashed whole, which its gets read
    /// without hashing again while their stamps hold.
    verified: Arc<blob_files::Verified>,
    /// Whether this handle synced the blob folders into their parents
    /// (before its first blob record; see `Inner::commit_file`).
    blob_dirs_synced: AtomicBool,
}

impl LogStore {
    /// Opens the store in directory `dir`, replaying its log; creates it
    /// when `dir` is missing or empty.
    ///
    /// The path is resolved once, here: the handle keeps the directory
    /// open and does every file operation relative to it, never following
    /// a link inside it, so a later change of the working directory (or a
    /// link planted in the store) cannot send a write elsewhere.
    ///
    /// # Errors
    /// `NotAStore` if `dir` holds other files and no store; `Locked` if
    /// another handle owns the directory; `Corruption` if the log holds
    /// damage other than a torn tail; `InvalidInput` for options out of
    /// range; `Io` from the file system.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<LogStore> {
        let dir = dir.as_ref();
        opts.validate()?;
        crate::io::create_dirs_durable(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let fs = RealFs::open_root(dir, Access::ReadWrite)
            .map_err(|e| Error::io(format!("opening {}", dir.display()), e))?;
        Self::open_with_fs(Arc::new(fs), dir, opts)
    }

    /// What the directory `dir` holds, as open judges it: a store, an empty
    /// directory (where `open` would make one), or something else (which
    /// every open refuses with `NotAStore`). Reads only.
    ///
    /// # Errors
    /// `Io` when `dir` is missing, is not a directory or cannot be listed.
    pub fn probe(dir: impl AsRef<Path>) -> Result<StoreDir> {
        let dir = dir.as_ref();
        let fs = RealFs::open_root(dir, Access::ReadOnly)
            .map_err(|e| Error::io(format!("opening {}", dir.display()), e))?;
        dir::classify(&fs, dir)
    }

    /// A store held in memory: the same engine on an in-memory file system.
    /// Nothing survives the handle.
    ///
    /// # Errors
    /// `InvalidInput` for options out of range.
    pub fn in_memory(opts: Options) -> Result<LogStore> {
        Self::open_with_fs(Arc::new(MemFs::new()), Path::new("memory"), opts)
    }

    /// Opens a store through a given file system: the seam that crash and
    /// fault-injection tests use.
    ///
    /// # Errors
    /// As [`LogStore::open`].
    #[doc(hidden)]
    pub fn open_with_fs(fs: Arc<dyn Vfs>, dir: &Path, opts: Options) -> Result<LogStore> {
        opts.validate()?;
        let dir = dir.to_path_buf();
        // `open` made the directory durably on the real file system; the
        // simulated ones keep no directories.
        fs.create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        if dir::classify(fs.as_ref(), &dir)? == StoreDir::Other {
            return Err(Error::NotAStore { path: dir });
        }
        let lock = fs
            .try_lock(&dir.join(LOCK_FILE))
            .map_err(|e| Error::io(format!("locking {}", dir.display()), e))?
            .ok_or_else(|| Error::Locked { path: dir.clone() })?;

        let layout = manifest::layout(fs.as_ref(), &dir)?;
        let files = SegmentFiles::default();
        let (mut state, start, snapshot_use) = snapshot_file::load(fs.as_ref(), &dir, &layout);
        let (tail, mut recovery) = recover(
            fs.as_ref(),
            &dir,
            &layout,
            &files,
            start,
            Mode::Repair,
            |record, loc| state.replay(record, loc, &|at| read_body(&files, &dir, at)),
        )?;
        recovery.snapshot = snapshot_use;
        let (orphans, temps) =
            blob_files::sweep(fs.as_ref(), &dir, &|hash| state.blobs.refs(hash) > 0)?;
        recovery.orphan_blobs_removed = orphans;
        recovery.temp_files_removed = temps;
        let snapshot_covers = start.map(|p| Covers {
            segment: p.segment,
            offset: p.offset,
            horizon: layout.manifest.horizon,
            base: layout.manifest.base.clone(),
        });
        let commit = Arc::new(GroupCommit::default());
        let mut writer = LogWriter::new(
            fs.clone(),
            dir.clone(),
            opts.segment_bytes,
            tail,
            layout.manifest,
            commit.clone(),
        );
        if writer.active_is_old_format() {
            // New records are always written in the current format.
            writer.roll(&files)?;
        }
        writer.map_active(&files);
        if writer.active().file.is_shared() {
            // Appends would be refused one by one (and poison the store):
            // refuse the open instead, saying why.
            return Err(Error::io(
                format!("opening {} for writing", dir.display()),
                std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "its newest segment has other hard links (a copy made with `cp -al`, or a file linked in from outside), so the store will not append to it; copy the store with `logstore backup` or `cp -a` instead",
                ),
            ));
        }
        let auto_compact = opts.auto_compact;
        let inner = Arc::new(Inner {
            dir,
            opts,
            state: RwLock::new(state),
            files,
            writer: Mutex::new(writer),
            commit,
            poisoned: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            lock: Mutex::new(Some(lock)),
            recovery,
            fs,
            compaction: Mutex::new(()),
            auto: compaction::AutoCompact::default(),
            snapshot_covers: Mutex::new(snapshot_covers),
            follow: None,
            verified: Arc::default(),
            blob_dirs_synced: AtomicBool::new(false),
        });
        let compactor = if auto_compact {
            let thread = compaction::spawn(inner.clone())
                .map_err(|e| Error::io("starting the compaction thread", e))?;
            Some(thread)
        } else {
            None
        };
        Ok(LogStore::serving(inner, compactor))
    }

    /// Rewrites the live records of every segment written so far into new
    /// segments and drops the rest, online: reads and writes go on, and a
    /// writer waits only for the short switch at the end. Then writes an
    /// index snapshot for fast open.
    ///
    /// # Errors
    /// `Io` from the file system (the store is unchanged if the failure came
    /// before the switch; after it, the store is poisoned and the next open
    /// finishes the switch); `Closed` or `Poisoned`.
    pub fn compact(&self) -> Result<CompactionReport> {
        self.inner().compact()
    }

    /// Runs `f` with a [`Session`] whose writes defer their durability
    /// waits to the batch's end: each write is appended and applied as `f`
    /// runs (later writes in `f` see it), and `batch` returns only once
    /// every one of them is as durable as the options ask, all covered by
    /// one sync under `Durability::Sync`. A caller that makes several writes
    /// at once (the Node.js driver, for the writes one turn of the event
    /// loop queued) pays one sync for them instead of one each.
    ///
    /// `f` returns the writes' answers (and errors) as it likes; none of
    /// them is acknowledged until `batch` returns `Ok`. A blob delete that
    /// orphans its file still syncs inside `f`, before the file goes. Writes
    /// made through the `LogStore` itself (or another batch) inside `f` are
    /// not the batch's: they wait as usual.
    ///
    /// # Errors
    /// The final wait's error (`Io` or `Poisoned`: the store is then
    /// poisoned, and no answer of `f` may be taken as durable).
    pub fn batch<T>(&self, f: impl FnOnce(&Session) -> T) -> Result<T> {
        let session = Session::new(self.inner().clone(), WriteMode::batch());
        let answer = f(&session);
        let last = session.mode.deferred();
        if last > 0 {
            self.inner().wait_durable(last)?;
        }
        Ok(answer)
    }

    /// Runs `f` with a [`Session`] whose writes never wait: a write that
    /// would have to wait for the disk or for another writer returns
    /// [`Error::WouldBlock`] with the reason ([`Blocked`](crate::Blocked)),
    /// having written nothing and poisoned nothing, and every other write
    /// is appended and acknowledged at once. Under `Durability::Sync` that
    /// is every write; under `Flush`, one that finds the writer lock held
    /// (another thread is writing, rolling or syncing), one whose record
    /// would roll the log to a new segment (two syncs) or needs the next
    /// window of zeros written ahead of the tail, a blob put or import (its
    /// file is synced), a blob delete that orphans its file (its record
    /// is synced before the file goes), one that finds the in-memory state
    /// locked by another thread (a long query, a compaction's switch), and
    /// a document delete that would copy every id of its collection. Reads
    /// run as usual.
    ///
    /// This is for a caller that must not block, such as an event loop
    /// (the Node.js driver): it runs the write in place, and only one that
    /// comes back `WouldBlock` goes to a thread that may wait.
    ///
    /// # Errors
    /// What `f` returns.
    pub fn without_waiting<T>(&self, f: impl FnOnce(&Session) -> Result<T>) -> Result<T> {
        f(&Session::new(self.inner().clone(), WriteMode::NoWait))
    }

    /// [`DocumentStore::query_raw`] on a thread that must not stall (an
    /// event loop): `None`, having read no record, when the query would do
    /// more than `budget` allows or would wait for a lock. The plan's work
    /// (the index entries it walks and the comparisons of a sort, from the
    /// sizes of the lists it would use) is checked before any of it is
    /// done; the number of rows and the bytes of their records once they
    /// are found, before one is read. A page walked straight from an index costs its offset
    /// and length whatever the collection's size; an order the filter's
    /// index cannot serve costs every candidate. `None` also when the
    /// in-memory state is write-locked, or a writer waits for it: the
    /// caller then runs the query where it may wait.
    ///
    /// # Errors
    /// As `query_raw` (a query that is not valid is an error, not `None`,
    /// unless the state lock was busy).
    pub fn query_raw_within(
        &self,
        query: &Query,
        budget: Budget,
    ) -> Result<Option<Vec<RawDocument>>> {
        self.waiting.query_raw_within(query, budget)
    }

    /// [`DocumentStore::get_raw`] within `budget`, as
    /// [`LogStore::query_raw_within`]: `None`, having read nothing, when
    /// the document's record holds more than `budget.bytes` or taking a
    /// lock would wait; `Some(None)` when there is no such document.
    ///
    /// # Errors
    /// As `get_raw`.
    pub fn get_raw_within(
        &self,
        collection: &str,
        id: &str,
        budget: Budget,
    ) -> Result<Option<Option<RawDocument>>> {
        self.waiting.get_raw_within(collection, id, budget)
    }

    /// [`BlobStore::get`] on a thread that must not stall, for a blob of
    /// at most `max_bytes`: `None`, having read nothing, when the blob is
    /// larger or taking a lock would wait (on a read-only handle also when
    /// its view lists a blob whose file the writer removed, which `get`
    /// answers after catching up); `Some(None)` when there is no such
    /// blob. A blob of at most 64 KiB is read whole and checked before
    /// this returns, as `get` does.
    ///
    /// # Errors
    /// As `get`.
    pub fn blob_get_within(
        &self,
        id: &str,
        max_bytes: u64,
    ) -> Result<Option<Option<(BlobMeta, BlobReader)>>> {
        self.waiting.blob_get_within(id, max_bytes)
    }

    /// [`DocumentStore::count`] within `budget`, as
    /// [`LogStore::query_raw_within`]: a count with at most one filter
    /// costs nothing (the size of a list); one with several walks the
    /// smallest filter's documents. Only `budget.entries` applies.
    ///
    /// # Errors
    /// As `count`.
    pub fn count_within(&self, query: &Query, budget: Budget) -> Result<Option<u64>> {
        self.waiting.count_within(query, budget)
    }

    /// The integrity check: every record's checksum, every blob's bytes
    /// against its hash, the index snapshot against the log it covers, and
    /// the in-memory index against a fresh replay. Reads only; writes go on
    /// meanwhile (compaction waits).
    ///
    /// # Errors
    /// `Closed`, or `Io` when a file cannot be read at all. Damage is not an
    /// error: it is listed in the report's `problems`.
    pub fn verify(&self) -> Result<VerifyReport> {
        self.inner().verify()
    }

    /// Sizes and counts: segments, live and dead bytes, space
    /// amplification, documents, blobs and leases.
    ///
    /// # Errors
    /// `Closed`.
    pub fn stats(&self) -> Result<Stats> {
        self.inner().stats()
    }

    /// What open found in the log: segments and records replayed, and the
    /// torn tail it cut, if any.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.inner().recovery
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.inner().dir
    }
}

impl Inner {
    /// Waits for a running compaction, syncs the log, writes the index
    /// snapshot (so the next open is fast) and releases the directory.
    fn close(&self) -> Result<()> {
        // A compaction holds this for its whole run: close waits for it, and
        // one that starts later finds the store closed before it changes
        // anything.
        let _no_compaction = self.compaction.lock();
        let mut writer = self.writer.lock();
        if self.closed.swap(true, Ordering::AcqRel) || self.follow.is_some() {
            return Ok(());
        }
        // The snapshot syncs the log first, so this is the one sync.
        let result = self.write_snapshot(&mut writer);
        self.lock.lock().take();
        result
    }
}

impl LogStore {
    /// The handle on an opened engine, with its compaction thread if any.
    fn serving(inner: Arc<Inner>, compactor: Option<JoinHandle<()>>) -> LogStore {
        LogStore {
            waiting: Session::new(inner, WriteMode::Wait),
            compactor: Mutex::new(compactor),
        }
    }

    /// The engine this handle serves.
    fn inner(&self) -> &Arc<Inner> {
        &self.waiting.inner
    }

    fn shut_down(&self) -> Result<()> {
        self.inner().auto.stop();
        if let Some(thread) = self.compactor.lock().take() {
            let _ = thread.join();
        }
        self.inner().close()
    }
}

impl Drop for LogStore {
    fn drop(&mut self) {
        // Best effort: a caller who needs to see a failed final sync calls
        // `close` and checks its result.
        let _ = self.shut_down();
    }
}

impl Store for LogStore {
    fn docs(&self) -> &dyn DocumentStore {
        &self.waiting
    }

    fn blobs(&self) -> &dyn BlobStore {
        &self.waiting
    }

    fn leases(&self) -> &dyn LeaseStore {
        &self.waiting
    }

    fn close(&self) -> Result<()> {
        self.shut_down()
    }
}
