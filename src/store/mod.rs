//! The log engine as a [`Store`]: validation, then one record appended (and
//! synced), then the in-memory state applied. Every write goes through
//! `Inner::commit`, which holds that sequence; a facility only decides,
//! from the state, what (if anything) to write.

mod backup;
mod blobs;
mod compaction;
mod dir;
mod documents;
mod follow;
mod leases;
mod repair;
mod snapshot_file;
mod stats;
mod transfer;
mod verify;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};

use crate::blob_files;
use crate::codec::DecodeError;
use crate::contract::{BlobStore, Document, DocumentStore, LeaseStore, RawDocument, Store};
use crate::index::apply::{self, Change};
use crate::index::snapshot::Covers;
use crate::index::State;
use crate::io::{Access, LockGuard, MemFs, RealFs, Vfs};
use crate::log::commit::GroupCommit;
use crate::log::manifest;
use crate::log::record::{Frame, Record};
use crate::log::recovery::{recover, Mode, RecoveryReport};
use crate::log::segment::SegmentFiles;
use crate::log::segment::{segment_name, Loc, SegmentFile};
use crate::log::writer::LogWriter;
use crate::options::{Durability, Options};
use crate::{Error, Result};
pub use backup::BackupReport;
pub use compaction::CompactionReport;
pub use dir::{ForeignEntry, StoreDir};
pub use repair::{salvage, RepairReport, Salvage, SalvageReport};
#[cfg(test)]
pub(crate) use snapshot_file::SNAPSHOT_FILE;
pub use stats::Stats;
pub use verify::{Problem, VerifyReport};

/// Puts a thread-local back as it was when dropped, however the scope that
/// set it ends (a panic included).
struct Restore<T: Copy + 'static> {
    key: &'static std::thread::LocalKey<std::cell::Cell<T>>,
    was: T,
}

impl<T: Copy + 'static> Restore<T> {
    fn set(key: &'static std::thread::LocalKey<std::cell::Cell<T>>, value: T) -> Self {
        Restore {
            key,
            was: key.replace(value),
        }
    }
}

impl<T: Copy + 'static> Drop for Restore<T> {
    fn drop(&mut self) {
        self.key.set(self.was);
    }
}

/// The name of the lock file in a store directory.
pub(crate) const LOCK_FILE: &str = "LOCK";

std::thread_local! {
    /// Set while this thread runs [`LogStore::without_waiting`].
    static NO_WAIT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// While this thread runs [`LogStore::batch`]: the store it batches for
    /// and the highest sequence number appended whose wait was deferred.
    static BATCH: std::cell::Cell<Option<(*const Inner, u64)>> =
        const { std::cell::Cell::new(None) };
}

/// The log-structured store: documents in append-only segment files,
/// indexes in memory, one process owning the directory.
///
/// Cheap to share between threads (`&LogStore` is `Send + Sync`).
#[derive(Debug)]
pub struct LogStore {
    inner: Arc<Inner>,
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
        });
        let compactor = if auto_compact {
            let thread = compaction::spawn(inner.clone())
                .map_err(|e| Error::io("starting the compaction thread", e))?;
            Some(thread)
        } else {
            None
        };
        Ok(LogStore {
            inner,
            compactor: Mutex::new(compactor),
        })
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
        self.inner.compact()
    }

    /// Runs `f` with the durability waits of its writes to this store
    /// deferred to its end: each write is appended and applied as `f` runs
    /// (later writes in `f` see it), and `batch` returns only once every
    /// one of them is as durable as the options ask, all covered by one
    /// sync under `Durability::Sync`. A caller that makes several writes at
    /// once (the Node.js driver, for the writes one turn of the event loop
    /// queued) pays one sync for them instead of one each.
    ///
    /// `f` returns the writes' answers (and errors) as it likes; none of
    /// them is acknowledged until `batch` returns `Ok`. A blob delete that
    /// orphans its file still syncs inside `f`, before the file goes. A
    /// batch inside a batch on the same store returns as soon as its `f`
    /// does: the outermost one waits for all.
    ///
    /// # Errors
    /// The final wait's error (`Io` or `Poisoned`: the store is then
    /// poisoned, and no answer of `f` may be taken as durable).
    pub fn batch<T>(&self, f: impl FnOnce(&Self) -> T) -> Result<T> {
        let me = Arc::as_ptr(&self.inner);
        if matches!(BATCH.get(), Some((store, _)) if store == me) {
            // Nested: the outer batch waits for these too.
            return Ok(f(self));
        }
        let reset = Restore::set(&BATCH, Some((me, 0)));
        let answer = f(self);
        let last = BATCH.get().map_or(0, |(_, seq)| seq);
        drop(reset);
        if last > 0 {
            self.inner.wait_durable(last)?;
        }
        Ok(answer)
    }

    /// Runs `f` on this thread with every write in it refusing to wait: a
    /// write that would have to wait for the disk or for another writer
    /// returns [`Error::WouldBlock`] having written nothing, and every other
    /// write is appended and acknowledged at once. That is every write under
    /// `Durability::Sync`; under `Flush`, one that finds the writer lock
    /// held (another thread is writing, rolling or syncing), one whose
    /// record would roll the log to a new segment (two syncs) or needs the
    /// next megabyte of zeros written ahead of the tail, a blob put or
    /// import (its file is synced) and a blob delete that orphans its file
    /// (its record is synced before the file goes). Reads never wait and run as
    /// usual. Compaction and close are not writes of this kind and must not
    /// be called inside `f`: they wait.
    ///
    /// This is for a caller that must not block, such as an event loop
    /// (the Node.js driver): it runs the write in place, and only one that
    /// comes back `WouldBlock` goes to a thread that may wait.
    ///
    /// # Errors
    /// What `f` returns.
    pub fn without_waiting<T>(&self, f: impl FnOnce(&Self) -> Result<T>) -> Result<T> {
        let _reset = Restore::set(&NO_WAIT, true);
        f(self)
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
        self.inner.verify()
    }

    /// Sizes and counts: segments, live and dead bytes, space
    /// amplification, documents, blobs and leases.
    ///
    /// # Errors
    /// `Closed`.
    pub fn stats(&self) -> Result<Stats> {
        self.inner.stats()
    }

    /// What open found in the log: segments and records replayed, and the
    /// torn tail it cut, if any.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.inner.recovery
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }
}

fn corrupt(dir: &Path, loc: Loc, reason: impl std::fmt::Display) -> Error {
    Error::corruption(
        dir.join(segment_name(loc.segment)),
        u64::from(loc.offset),
        reason,
    )
}

/// The body of the document record at `loc`, its frame verified.
pub(super) fn read_body(files: &SegmentFiles, dir: &Path, loc: Loc) -> Result<Vec<u8>> {
    let segment = segment_at(files, dir, loc)?;
    with_record(&segment, dir, loc, |record| match record {
        Record::DocPut { body, .. } => Ok(body.to_vec()),
        _ => Err(DecodeError::malformed("expected a document record")),
    })
}

/// Calls `read` with the record at `loc` of `segment`, its frame verified
/// first: the checksums bind it to this segment's salt and this offset, so
/// a read never returns a torn or foreign record. The frame is a slice of
/// the segment's map when it has one (no system call, no copy), otherwise
/// read into a buffer.
fn with_record<T>(
    segment: &SegmentFile,
    dir: &Path,
    loc: Loc,
    read: impl FnOnce(Record<'_>) -> std::result::Result<T, DecodeError>,
) -> Result<T> {
    let frame = segment
        .bytes_at(loc)
        .map_err(|e| Error::io(format!("reading segment {}", loc.segment), e))?;
    match segment.framing.read(&frame, 0, u64::from(loc.offset)) {
        Frame::Valid { payload, next } if next == frame.len() => Record::decode(payload)
            .and_then(read)
            .map_err(|reason| corrupt(dir, loc, reason)),
        _ => Err(corrupt(dir, loc, "the document record no longer verifies")),
    }
}

/// Reads and verifies the document record at `loc`.
fn read_document(files: &SegmentFiles, dir: &Path, loc: Loc) -> Result<Document> {
    read_document_in(&segment_at(files, dir, loc)?, dir, loc)
}

/// The segment that holds `loc`.
fn segment_at(files: &SegmentFiles, dir: &Path, loc: Loc) -> Result<SegmentFile> {
    files
        .read()
        .get(&loc.segment)
        .cloned()
        .ok_or_else(|| corrupt(dir, loc, "the segment file is missing"))
}

/// How a read turns the document record at a location of a segment into a
/// row: [`read_document_in`] (parsed) or [`read_raw_in`] (raw text).
type ReadDoc<T> = fn(&SegmentFile, &Path, Loc) -> Result<T>;

/// Reads and verifies the document record at `loc` of `segment`; the body
/// is parsed straight from the verified frame.
fn read_document_in(segment: &SegmentFile, dir: &Path, loc: Loc) -> Result<Document> {
    with_record(segment, dir, loc, |record| apply::document(&record))
}

/// Reads and verifies the document record at `loc` of `segment`, its body
/// handed back as the stored JSON text, unparsed.
fn read_raw_in(segment: &SegmentFile, dir: &Path, loc: Loc) -> Result<RawDocument> {
    with_record(segment, dir, loc, |record| apply::raw_document(&record))
}

/// What a write decided from the state it read under the writer lock.
pub(super) enum Decision<'a, T> {
    /// Nothing to write: `T` is the answer as it stands.
    Unchanged(T),
    /// Append the change's record, apply it, and answer `T` once the
    /// record is as durable as the options ask.
    Write(Change<'a>, T),
    /// As `Write`, but answer only once the record is on stable storage
    /// whatever the durability option: what a blob delete that orphans a
    /// content file needs before the file may go.
    WriteSynced(Change<'a>, T),
}

impl Inner {
    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Marks the store poisoned: the engine no longer knows which bytes
    /// reached the disk, so no later write may be acknowledged.
    pub(super) fn poison(&self) {
        self.poisoned.store(true, Ordering::Release);
        self.commit.fail();
    }

    /// Syncs the store directory through the commit gate, poisoning the
    /// store if it fails: a failed directory sync may have dropped every
    /// entry pending in the directory, a segment another thread just
    /// rolled to among them, so nothing may be acknowledged after it.
    pub(super) fn sync_store_dir(&self) -> Result<()> {
        self.commit
            .sync(|| {
                self.fs
                    .sync_dir(&self.dir)
                    .map_err(|e| Error::io(format!("syncing {}", self.dir.display()), e))
            })
            .inspect_err(|_| self.poison())
    }

    /// `Closed`, or `Poisoned` when a sync failed: then bytes the log holds
    /// were never acknowledged, and no path (a backup) may make them
    /// durable.
    fn check_unpoisoned(&self) -> Result<()> {
        self.check_open()?;
        if self.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned);
        }
        Ok(())
    }

    fn check_writable(&self) -> Result<()> {
        self.check_open()?;
        if self.follow.is_some() {
            return Err(Error::ReadOnly);
        }
        self.check_unpoisoned()
    }

    /// Reads a document body with the writer lock held (no compaction can
    /// move it meanwhile).
    fn read_document(&self, loc: Loc) -> Result<Document> {
        read_document(&self.files, &self.dir, loc)
    }

    /// Finds documents with `find` and reads each with `read` (parsed or
    /// raw). The file handles are taken under the same state lock as the
    /// locations, so a compaction's switch cannot remove a file between the
    /// two; reading happens after the lock is released, from a handle (and
    /// map) that stays valid even once compaction has unlinked its file.
    fn read_found<T>(
        &self,
        find: impl FnOnce(&State) -> Result<Vec<Loc>>,
        read: ReadDoc<T>,
    ) -> Result<Vec<T>> {
        let found: Vec<(Loc, Option<SegmentFile>)> = {
            let state = self.state.read();
            let locs = find(&state)?;
            let files = self.files.read();
            locs.into_iter()
                .map(|loc| (loc, files.get(&loc.segment).cloned()))
                .collect()
        };
        found
            .into_iter()
            .map(|(loc, file)| {
                let file =
                    file.ok_or_else(|| corrupt(&self.dir, loc, "the segment file is missing"))?;
                read(&file, &self.dir, loc)
            })
            .collect()
    }

    /// Finds at most one document with `find` and reads it with `read`: a
    /// get, as [`Inner::read_found`] does it but without collecting.
    fn read_one<T>(
        &self,
        find: impl FnOnce(&State) -> Option<Loc>,
        read: ReadDoc<T>,
    ) -> Result<Option<T>> {
        let (loc, file) = {
            let state = self.state.read();
            let Some(loc) = find(&state) else {
                return Ok(None);
            };
            (loc, self.files.read().get(&loc.segment).cloned())
        };
        let file = file.ok_or_else(|| corrupt(&self.dir, loc, "the segment file is missing"))?;
        read(&file, &self.dir, loc).map(Some)
    }

    /// The one commit path of every write: takes the writer lock, checks
    /// the store is writable, lets `decide` read the state, and if it
    /// decided on a change, appends its record (a failure poisons), applies
    /// it, releases the lock and waits until the record is durable.
    ///
    /// `decide` runs under the writer lock with the state read-locked, so
    /// what it read stays true until the change is applied (the state is
    /// write-locked only under the writer lock, so holding its read lock
    /// meanwhile keeps no one waiting). Whatever must happen before the
    /// append happens in `decide`: an ensure reads its backfill values
    /// there, a blob put installs its file there. An error from `decide`
    /// writes nothing. Under [`LogStore::without_waiting`] the append may
    /// still be refused after `decide` (a roll, zeros to reserve), so a
    /// write whose `decide` changes files refuses up front
    /// ([`Inner::refuse_if_no_wait`]).
    fn commit<'a, T>(&self, decide: impl FnOnce(&State) -> Result<Decision<'a, T>>) -> Result<T> {
        let no_wait = NO_WAIT.get();
        let mut writer = if no_wait {
            self.check_writable()?;
            if self.opts.durability == Durability::Sync {
                return Err(Error::WouldBlock);
            }
            self.writer.try_lock().ok_or(Error::WouldBlock)?
        } else {
            self.writer.lock()
        };
        self.check_writable()?;
        let decision = decide(&self.state.read())?;
        let (change, answer, synced) = match decision {
            Decision::Unchanged(answer) => {
                // The answer rests on the state, which may hold another
                // writer's records not yet durable (a lease just taken, a
                // version just bumped): it is given only once they are, or
                // a failed sync could leave it answering for a write that
                // never was.
                let last = writer.last_seq();
                drop(writer);
                if last > 0 && !self.defer_to_batch(last) {
                    self.wait_durable(last)?;
                }
                return Ok(answer);
            }
            Decision::Write(change, answer) => (change, answer, false),
            Decision::WriteSynced(..) if no_wait => return Err(Error::WouldBlock),
            Decision::WriteSynced(change, answer) => (change, answer, true),
        };
        let (loc, seq) = self.append(&mut writer, &change.record(), !no_wait)?;
        let bodies = |at| read_body(&self.files, &self.dir, at);
        // The record is in the log now: a state that failed to take it
        // would differ from what replay builds, so nothing more may be
        // acknowledged.
        self.state
            .write()
            .apply(change, loc, &bodies)
            .inspect_err(|_| self.poison())?;
        self.maybe_wake_compactor(seq, &writer);
        drop(writer);
        if synced {
            self.wait_synced(seq)?;
        } else if !self.defer_to_batch(seq) {
            self.wait_durable(seq)?;
        }
        Ok(answer)
    }

    /// Inside [`LogStore::batch`] for this store: notes `seq` for the
    /// batch's one wait at its end and returns true.
    fn defer_to_batch(&self, seq: u64) -> bool {
        match BATCH.get() {
            Some((store, last)) if std::ptr::eq(store, self) => {
                BATCH.set(Some((store, last.max(seq))));
                true
            }
            _ => false,
        }
    }

    /// `Error::WouldBlock` inside [`LogStore::without_waiting`]: for a write
    /// that syncs before its commit, or whose `decide` changes files.
    pub(super) fn refuse_if_no_wait(&self) -> Result<()> {
        if NO_WAIT.get() {
            return Err(Error::WouldBlock);
        }
        Ok(())
    }

    /// Appends under the writer lock; any failure but a refused wait
    /// (which wrote nothing) poisons the store, since the tail of the log
    /// is then unknown.
    fn append(
        &self,
        writer: &mut LogWriter,
        record: &Record<'_>,
        may_wait: bool,
    ) -> Result<(Loc, u64)> {
        writer
            .append(record, &self.files, may_wait)
            .inspect_err(|e| {
                if !matches!(e, Error::WouldBlock) {
                    self.poison();
                }
            })
    }

    /// Returns once record `seq` is as durable as the options ask.
    fn wait_durable(&self, seq: u64) -> Result<()> {
        if self.opts.durability != Durability::Sync {
            return Ok(());
        }
        self.wait_synced(seq)
    }

    /// Returns once record `seq` is on stable storage, whatever the
    /// durability option (a blob file may only go once its delete is).
    fn wait_synced(&self, seq: u64) -> Result<()> {
        self.commit
            .wait(seq, || {
                // The writer lock is taken outside the gate: a roll holds
                // the writer lock while it waits for the gate.
                let (file, covered) = self.writer.lock().sync_point()?;
                self.commit.sync(|| {
                    file.sync_data()
                        .map_err(|e| Error::io("syncing the log", e))
                })?;
                Ok(covered)
            })
            .inspect_err(|_| self.poison())
    }

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
    fn shut_down(&self) -> Result<()> {
        self.inner.auto.stop();
        if let Some(thread) = self.compactor.lock().take() {
            let _ = thread.join();
        }
        self.inner.close()
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
        self
    }

    fn blobs(&self) -> &dyn BlobStore {
        self
    }

    fn leases(&self) -> &dyn LeaseStore {
        self
    }

    fn close(&self) -> Result<()> {
        self.shut_down()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::MIN_SEGMENT_BYTES;

    /// Which segments are mapped: on the real file system every one, sealed
    /// (rolled, compacted, or found sealed at open) and active (mapped ahead,
    /// after open, and each new one the writer rolls to); none on the
    /// in-memory file system.
    #[test]
    fn every_segment_is_mapped_on_the_real_file_system() {
        let mapped = |store: &LogStore| -> Vec<(u32, bool)> {
            let files = store.inner.files.read();
            files.iter().map(|(id, f)| (*id, f.is_mapped())).collect()
        };
        let fill = |store: &LogStore| {
            store.ensure_collection("c", &["k"]).unwrap();
            for i in 0..200 {
                let body = serde_json::json!({"k": i % 3, "text": "x".repeat(500)});
                store.docs().put("c", &format!("{i}"), body, None).unwrap();
            }
        };
        let check = |store: &LogStore| {
            let segments = mapped(store);
            assert!(segments.len() > 2, "{segments:?}");
            assert!(segments.iter().all(|(_, m)| *m), "{segments:?}");
            for i in 0..200 {
                let doc = store.docs().get("c", &format!("{i}")).unwrap().unwrap();
                assert_eq!(doc.data["k"], i % 3);
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let opts = || Options {
            segment_bytes: 4 * MIN_SEGMENT_BYTES,
            auto_compact: false,
            ..Options::default()
        };
        let store = LogStore::open(dir.path(), opts()).unwrap();
        fill(&store);
        check(&store);
        store.compact().unwrap();
        fill(&store);
        check(&store);
        store.close().unwrap();
        drop(store);
        let store = LogStore::open(dir.path(), opts()).unwrap();
        check(&store);

        let memory = LogStore::in_memory(opts()).unwrap();
        fill(&memory);
        assert!(mapped(&memory).iter().all(|(_, m)| !m));
    }

    /// `without_waiting` appends what needs no wait and refuses, writing
    /// nothing and poisoning nothing, each write that would wait: every
    /// write under Sync; under Flush one that finds the writer lock held,
    /// one that would roll the log or write zeros ahead of the tail, a blob
    /// put or import, and a blob delete that orphans its file. Outside it, the same writes run as usual.
    #[test]
    fn without_waiting_refuses_exactly_the_writes_that_would_wait() {
        use crate::contract::BlobPut;
        let body = |n: usize| serde_json::json!({"text": "x".repeat(n)});
        let refused = |r: Result<Option<Document>>| matches!(r, Err(Error::WouldBlock));

        let sync = LogStore::in_memory(Options::default()).unwrap();
        let put = sync.without_waiting(|s| s.docs().put("c", "a", body(10), None));
        assert!(refused(put));
        assert!(sync.docs().get("c", "a").unwrap().is_none());

        let opts = Options {
            durability: Durability::Flush,
            segment_bytes: 4 * MIN_SEGMENT_BYTES,
            auto_compact: false,
            ..Options::default()
        };
        let store = LogStore::in_memory(opts).unwrap();
        // A new segment has no zeros written ahead of its tail yet.
        let first = store.without_waiting(|s| s.docs().put("c", "a", body(10), None));
        assert!(refused(first));
        assert!(store.docs().get("c", "a").unwrap().is_none());
        store.docs().put("c", "first", body(10), None).unwrap();
        let done = store.without_waiting(|s| s.docs().put("c", "a", body(10), None));
        assert_eq!(done.unwrap().unwrap().version, 1);
        assert_eq!(
            store.docs().get("c", "a").unwrap().unwrap().data["text"],
            "x".repeat(10)
        );

        // Another writer holds the lock (here, this thread).
        let held = store.inner.writer.lock();
        assert!(refused(store.without_waiting(|s| s.docs().put(
            "c",
            "b",
            body(10),
            None
        ))));
        drop(held);

        // Fill the segment until the next record would roll it.
        let segments = || store.inner.files.read().len();
        let before = segments();
        let fill = |n: usize| {
            let put =
                store.without_waiting(|s| s.docs().put("c", &format!("f{n}"), body(900), None));
            refused(put)
        };
        let n = (0..100)
            .find(|&n| fill(n))
            .expect("a put that would roll is refused");
        assert!(n > 5, "{n} records fit a 16 KiB segment");
        assert_eq!(segments(), before, "a refused roll rolls nothing");
        assert!(store.docs().get("c", &format!("f{n}")).unwrap().is_none());
        // Not poisoned; the ordinary write rolls.
        store
            .docs()
            .put("c", &format!("f{n}"), body(900), None)
            .unwrap();
        assert_eq!(segments(), before + 1);

        let blob = store.without_waiting(|s| s.blobs().put(&mut &b"bytes"[..], BlobPut::default()));
        assert!(matches!(blob, Err(Error::WouldBlock)));
        let meta = crate::contract::BlobMeta {
            id: "imported".into(),
            mime: "text/plain".into(),
            size: 5,
            owner_id: None,
            created_at: 1,
            content_hash: None,
        };
        use crate::Transfer;
        let import = store.without_waiting(|s| s.import_blob(&meta, &mut &b"bytes"[..]));
        assert!(matches!(import, Err(Error::WouldBlock)));
        assert!(store.blobs().list(&Default::default()).unwrap().is_empty());
        let meta = store
            .blobs()
            .put(&mut &b"bytes"[..], BlobPut::default())
            .unwrap();
        let delete = store.without_waiting(|s| s.blobs().delete(&meta.id));
        assert!(matches!(delete, Err(Error::WouldBlock)));
        assert!(store.blobs().get_meta(&meta.id).unwrap().is_some());

        // The flag ends with the call: a Sync store's put inside waits no more.
        assert!(store.docs().delete("c", "a").unwrap());
        let put = sync.docs().put("c", "a", body(10), None);
        assert_eq!(put.unwrap().unwrap().version, 1);
    }

    /// A clock that, once armed, lets another thread queue on the writer
    /// lock while a write (which reads the clock under that lock) holds it.
    #[derive(Debug, Default)]
    struct QueueingClock {
        armed: AtomicBool,
        go: AtomicBool,
    }

    impl crate::options::Clock for QueueingClock {
        fn now_ms(&self) -> i64 {
            if self.armed.swap(false, Ordering::SeqCst) {
                self.go.store(true, Ordering::SeqCst);
                // Long enough for the other thread to block on the lock.
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            1_000
        }
    }

    /// A `without_waiting` write that got the writer lock never takes it
    /// again (the compactor check of every 64th write included): it returns
    /// while another thread, queued behind it, holds the lock.
    #[test]
    fn without_waiting_never_waits_for_the_writer_lock_after_writing() {
        use std::time::{Duration, Instant};
        let clock = Arc::new(QueueingClock::default());
        let opts = Options {
            durability: Durability::Flush,
            auto_compact: true,
            compaction_min_bytes: u64::MAX / 2,
            clock: clock.clone(),
            ..Options::default()
        };
        let store = LogStore::in_memory(opts).unwrap();
        for i in 0..63 {
            let body = serde_json::json!({"i": i});
            store.docs().put("c", &format!("{i}"), body, None).unwrap();
        }
        let done = AtomicBool::new(false);
        let returned_while_held = std::thread::scope(|scope| {
            let holder = scope.spawn(|| {
                while !clock.go.load(Ordering::SeqCst) {
                    std::hint::spin_loop();
                }
                let _held = store.inner.writer.lock();
                let deadline = Instant::now() + Duration::from_secs(10);
                while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
                done.load(Ordering::SeqCst)
            });
            clock.armed.store(true, Ordering::SeqCst);
            let put =
                store.without_waiting(|s| s.docs().put("c", "64th", serde_json::json!({}), None));
            done.store(true, Ordering::SeqCst);
            assert!(put.unwrap().is_some());
            holder.join().unwrap()
        });
        assert!(
            returned_while_held,
            "the write waited for the lock it had released"
        );
    }

    /// `batch` defers each write's sync to its end: inside it, with the
    /// next sync set to fail, every put still answers (nothing synced
    /// yet), the batch returns the sync's error, and the store is poisoned.
    /// With the sync healthy, one batch's writes are all there after a
    /// reopen. Writes to another store inside the batch wait as usual.
    #[test]
    fn batch_defers_the_syncs_of_its_writes_to_its_end() {
        use crate::io::FaultFs;
        let fs = FaultFs::new();
        let open = || LogStore::open_with_fs(fs.as_vfs(), Path::new("s"), Options::default());
        let store = open().unwrap();
        store
            .docs()
            .put("c", "before", serde_json::json!({}), None)
            .unwrap();
        let other = LogStore::in_memory(Options::default()).unwrap();

        let answers = store
            .batch(|s| {
                (0..5)
                    .map(|i| {
                        s.docs()
                            .put("c", &format!("{i}"), serde_json::json!({"i": i}), None)
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap();
        assert!(answers.iter().all(|a| matches!(a, Ok(Some(_)))));

        fs.fail_next("sync");
        let mut inside = Vec::new();
        let failed = store.batch(|s| {
            for i in 5..10 {
                inside.push(
                    s.docs()
                        .put("c", &format!("{i}"), serde_json::json!({}), None),
                );
            }
            // Another store's write is not the batch's: it syncs now.
            other
                .docs()
                .put("c", "x", serde_json::json!({}), None)
                .unwrap();
        });
        assert!(
            inside.iter().all(|a| matches!(a, Ok(Some(_)))),
            "{inside:?}"
        );
        assert!(matches!(failed, Err(Error::Io { .. })), "{failed:?}");
        assert!(matches!(
            store.docs().put("c", "after", serde_json::json!({}), None),
            Err(Error::Poisoned)
        ));
        drop(store);
        fs.heal();
        let store = open().unwrap();
        for i in 0..5 {
            assert!(store.docs().get("c", &format!("{i}")).unwrap().is_some());
        }
    }

    /// A write that changes nothing answers from the state, which may hold
    /// another writer's record not yet synced: it answers only once that
    /// record is durable. Here a lease taken inside a batch (its sync
    /// deferred) makes a second acquire from another thread wait for that
    /// sync, which fails: the second caller gets the error, never "held by
    /// me" for a lease that was never durable.
    #[test]
    fn an_unchanged_answer_waits_for_the_records_it_rests_on() {
        use crate::io::FaultFs;
        let fs = FaultFs::new();
        let store =
            LogStore::open_with_fs(fs.as_vfs(), Path::new("s"), Options::default()).unwrap();
        store
            .docs()
            .put("c", "warm", serde_json::json!({}), None)
            .unwrap();
        fs.fail_next("sync");
        let mut other = None;
        let batch = store.batch(|s| {
            let taken = s.leases().acquire("k", "me", 60_000);
            assert!(
                matches!(taken, Ok(crate::Acquire::Acquired(_))),
                "{taken:?}"
            );
            other = Some(std::thread::scope(|scope| {
                scope
                    .spawn(|| store.leases().acquire("k", "other", 60_000))
                    .join()
                    .unwrap()
            }));
        });
        let other = other.unwrap();
        assert!(
            other.is_err(),
            "answered from a record never durable: {other:?}"
        );
        assert!(batch.is_err(), "the batch's sync failed too: {batch:?}");
        assert_eq!(fs.injected(), 1);
    }
}
