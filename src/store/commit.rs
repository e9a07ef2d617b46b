//! The one commit path of every write, and the modes it runs in.
//!
//! A write takes the writer lock, lets its facility decide from the state
//! what to write, appends that record (a failure poisons the store),
//! applies it to the state, releases the lock and waits until the record
//! is as durable as the options ask. The mode says how the write may wait:
//! for everything ([`WriteMode::Wait`]), for everything but the durability
//! wait, which a batch makes once at its end ([`WriteMode::Batch`]), or for
//! nothing ([`WriteMode::NoWait`]), where `commit` itself refuses a write
//! that would block and says why.

use std::sync::atomic::{AtomicU64, Ordering};

use super::Inner;
use crate::blob_files;
use crate::index::apply::Change;
use crate::index::State;
use crate::log::read;
use crate::log::record::Record;
use crate::log::segment::Loc;
use crate::log::writer::LogWriter;
use crate::options::Durability;
use crate::{Blocked, Error, Result};

/// How a write may wait.
#[derive(Debug)]
pub(super) enum WriteMode {
    /// For the writer lock and for its record to be as durable as the
    /// options ask: what a call on `LogStore` does.
    Wait,
    /// For the writer lock only: the durability wait is deferred to the
    /// batch's end, which waits for the highest sequence number noted here.
    Batch(AtomicU64),
    /// For nothing: a write that would wait is refused with
    /// `Error::WouldBlock`, having written nothing.
    NoWait,
}

impl WriteMode {
    /// A batch with nothing deferred yet.
    pub(super) fn batch() -> Self {
        WriteMode::Batch(AtomicU64::new(0))
    }

    /// The highest sequence number whose wait a batch deferred (0: none).
    pub(super) fn deferred(&self) -> u64 {
        match self {
            WriteMode::Batch(last) => last.load(Ordering::Acquire),
            _ => 0,
        }
    }

    /// In a batch: notes `seq` for the batch's one wait and returns true.
    fn defer(&self, seq: u64) -> bool {
        match self {
            WriteMode::Batch(last) => {
                last.fetch_max(seq, Ordering::AcqRel);
                true
            }
            _ => false,
        }
    }

    fn may_wait(&self) -> bool {
        !matches!(self, WriteMode::NoWait)
    }
}

/// What a write decided from the state it read under the writer lock.
pub(super) enum Decision<'a, T> {
    /// Nothing to write: `T` is the answer as it stands.
    Unchanged(T),
    /// Append the change's record, apply it, and answer `T` once the
    /// record is as durable as the options ask.
    Write(Change<'a>, T),
    /// As `Write`, but the record is synced whatever the durability option,
    /// and then `clean` runs under the writer lock if the store is still
    /// open: a blob delete that leaves a content file unreferenced removes
    /// it there, never before its record is on disk (a crash would bring
    /// back metadata without its bytes) and never once `close` has handed
    /// the directory on (the next open sweeps the file instead).
    WriteThenClean(Change<'a>, T, Clean<'a>),
}

/// The step after a [`Decision::WriteThenClean`] record is synced.
pub(super) type Clean<'a> = Box<dyn FnOnce(&State) -> Result<()> + 'a>;

impl Inner {
    pub(super) fn check_open(&self) -> Result<()> {
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
    pub(super) fn check_unpoisoned(&self) -> Result<()> {
        self.check_open()?;
        if self.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned);
        }
        Ok(())
    }

    pub(super) fn check_writable(&self) -> Result<()> {
        self.check_open()?;
        if self.follow.is_some() {
            return Err(Error::ReadOnly);
        }
        self.check_unpoisoned()
    }

    /// The state's read lock, or `WouldBlock` (`StateBusy`) when taking it
    /// would wait: a writer holds it, or waits for it (a waiting writer
    /// queues later readers behind it).
    fn try_state(&self) -> Result<parking_lot::RwLockReadGuard<'_, State>> {
        self.state
            .try_read()
            .ok_or(Error::WouldBlock(Blocked::StateBusy))
    }

    /// The commit path (see the module comment). `decide` runs under the
    /// writer lock with the state read-locked, so what it read stays true
    /// until the change is applied (the state is write-locked only under
    /// the writer lock, so holding its read lock meanwhile keeps no one
    /// waiting). Whatever must happen before the append happens in
    /// `decide`: an ensure reads its backfill values there, a blob put
    /// installs its file there. An error from `decide` writes nothing.
    pub(super) fn commit<'a, T>(
        &self,
        mode: &WriteMode,
        decide: impl FnOnce(&State) -> Result<Decision<'a, T>>,
    ) -> Result<T> {
        let mut writer = match mode {
            WriteMode::NoWait => {
                self.check_writable()?;
                if self.opts.durability == Durability::Sync {
                    return Err(Error::WouldBlock(Blocked::SyncEveryWrite));
                }
                self.writer
                    .try_lock()
                    .ok_or(Error::WouldBlock(Blocked::WriterBusy))?
            }
            _ => self.writer.lock(),
        };
        self.check_writable()?;
        let decision = match mode {
            // A compaction's switch write-locks the state without the
            // writer lock, and a long read may hold it meanwhile.
            WriteMode::NoWait => {
                let state = self.try_state()?;
                let decision = decide(&state)?;
                if let Decision::Write(change, _) = &decision {
                    if state.apply_copies(change) {
                        return Err(Error::WouldBlock(Blocked::LargeCopy));
                    }
                }
                decision
            }
            _ => decide(&self.state.read())?,
        };
        let (change, answer, clean) = match decision {
            Decision::Unchanged(answer) => {
                // The answer rests on the state, which may hold another
                // writer's records not yet durable (a lease just taken, a
                // version just bumped): it is given only once they are, or
                // a failed sync could leave it answering for a write that
                // never was.
                let last = writer.last_seq();
                drop(writer);
                if last > 0 && !mode.defer(last) {
                    self.wait_durable(last)?;
                }
                return Ok(answer);
            }
            Decision::Write(change, answer) => (change, answer, None),
            Decision::WriteThenClean(..) if !mode.may_wait() => {
                return Err(Error::WouldBlock(Blocked::BlobRemoval))
            }
            Decision::WriteThenClean(change, answer, clean) => (change, answer, Some(clean)),
        };
        // A write that may not wait takes the state's write lock before it
        // appends: once its record is in the log it must be applied, and
        // finding the lock busy then would leave it waiting (or written
        // and unanswered). A write that may wait takes it after, so readers
        // go on while it appends.
        let held = match mode.may_wait() {
            true => None,
            false => Some(
                self.state
                    .try_write()
                    .ok_or(Error::WouldBlock(Blocked::StateBusy))?,
            ),
        };
        let before = writer.last_seq();
        let (loc, seq) = self.append(&mut writer, &change.record(), mode.may_wait())?;
        debug_assert_eq!(seq, before + 1, "one record, one sequence number");
        let bodies = |at| read::body(&self.files, &self.dir, at);
        // The record is in the log now: a state that failed to take it
        // would differ from what replay builds, so nothing more may be
        // acknowledged.
        let mut state = held.unwrap_or_else(|| self.state.write());
        state
            .apply(change, loc, &bodies)
            .inspect_err(|_| self.poison())?;
        // From the state in hand: taking its lock again could wait.
        self.maybe_wake_compactor(seq, &writer, &state);
        drop(state);
        drop(writer);
        match clean {
            Some(clean) => {
                self.wait_synced(seq)?;
                let _writer = self.writer.lock();
                if self.check_open().is_ok() {
                    clean(&self.state.read())?;
                }
            }
            None if mode.defer(seq) => {}
            None => self.wait_durable(seq)?,
        }
        Ok(answer)
    }

    /// The commit path of a write that first stores a blob file (`stage`,
    /// which writes and syncs it, outside the writer lock so that other
    /// writes go on meanwhile), then decides with it in hand. Refused up
    /// front when the mode may not wait.
    pub(super) fn commit_file<'a, S, T>(
        &self,
        mode: &WriteMode,
        stage: impl FnOnce() -> Result<S>,
        decide: impl FnOnce(&State, S) -> Result<Decision<'a, T>>,
    ) -> Result<T> {
        self.check_writable()?;
        if !mode.may_wait() {
            return Err(Error::WouldBlock(Blocked::BlobFile));
        }
        let staged = stage()?;
        self.sync_blob_dirs()?;
        self.commit(mode, |state| decide(state, staged))
    }

    /// Before the first blob record of this handle: makes the blob folders
    /// durable in their parents ([`blob_files::sync_dirs`]), since a crashed
    /// session may have made one without syncing its parent. Once per
    /// handle; a failure poisons the store.
    fn sync_blob_dirs(&self) -> Result<()> {
        if self.blob_dirs_synced.load(Ordering::Acquire) {
            return Ok(());
        }
        blob_files::sync_dirs(self.fs.as_ref(), &self.dir, &|| self.poison())?;
        self.blob_dirs_synced.store(true, Ordering::Release);
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
                if !matches!(e, Error::WouldBlock(_)) {
                    self.poison();
                }
            })
    }

    /// Returns once record `seq` is as durable as the options ask.
    pub(super) fn wait_durable(&self, seq: u64) -> Result<()> {
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
}
