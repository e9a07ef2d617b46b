//! Group commit: writers that need durability wait for one shared sync.
//!
//! A writer appends under the writer lock and receives a sequence number,
//! then calls [`GroupCommit::wait`] without that lock. The first waiter
//! becomes the leader and syncs the active segment; everyone whose record the
//! sync covered returns together. Sealed segments are synced when they are
//! sealed, so syncing the newest file covers every earlier record.
//!
//! Every sync of the log (group commit, sealing a segment, creating one,
//! close, the sync before a snapshot) runs through [`GroupCommit::sync`],
//! one at a time. The first that fails marks the log failed before any
//! other sync can start, and from then on no sync runs and no waiter is
//! acknowledged: after a failed `fsync` the kernel may have dropped the
//! dirty pages and report the next `fsync` as a success, so a later
//! success proves nothing about records written before the failure.

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Condvar, Mutex};

use crate::{Error, Result};

#[derive(Debug, Default)]
struct CommitState {
    durable: u64,
    syncing: bool,
}

/// Shared durability progress of the log.
#[derive(Debug, Default)]
pub struct GroupCommit {
    state: Mutex<CommitState>,
    synced: Condvar,
    /// Held for the whole of every sync of the log.
    gate: Mutex<()>,
    /// Set, inside the gate, by the first failed sync (or by [`fail`]).
    ///
    /// [`fail`]: GroupCommit::fail
    failed: AtomicBool,
}

impl GroupCommit {
    /// Returns once record `seq` is durable. `sync` performs one sync (its
    /// file sync through [`GroupCommit::sync`]) and returns the highest
    /// sequence number it covered. A failed sync fails
    /// every waiter with `Poisoned` (the leader gets the I/O error itself).
    pub fn wait(&self, seq: u64, sync: impl Fn() -> Result<u64>) -> Result<()> {
        debug_assert!(seq > 0, "sequence numbers start at 1");
        let mut state = self.state.lock();
        loop {
            if state.durable >= seq {
                return Ok(());
            }
            if self.failed() {
                return Err(Error::Poisoned);
            }
            if state.syncing {
                self.synced.wait(&mut state);
                continue;
            }
            state.syncing = true;
            // No wait for more writers before syncing: those that arrive
            // during this sync share the next one, and a leader that sleeps
            // first loses more to the sleep than it gains in batch size.
            let outcome = parking_lot::MutexGuard::unlocked(&mut state, || {
                // A panicking sync (a file system seam that panics) must not
                // leave `syncing` set, or every later writer would wait
                // forever: it fails the log, then the panic goes on.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(&sync))
            });
            state.syncing = false;
            let outcome = match outcome {
                Ok(outcome) => outcome,
                Err(panic) => {
                    self.mark_failed();
                    drop(state);
                    std::panic::resume_unwind(panic);
                }
            };
            self.synced.notify_all();
            match outcome {
                Ok(covered) => state.durable = state.durable.max(covered),
                Err(e) => {
                    self.mark_failed();
                    return Err(e);
                }
            }
        }
    }

    /// Runs one sync of the log through the gate. If the log has failed
    /// already, `f` does not run (`Poisoned`); if `f` fails, the log is
    /// failed before the gate opens for the next sync.
    pub fn sync<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let _gate = self.gate.lock();
        if self.failed() {
            return Err(Error::Poisoned);
        }
        f().inspect_err(|_| self.fail())
    }

    /// Records that a sync covering record `seq` succeeded outside
    /// [`wait`](GroupCommit::wait) (a segment seal or a pre-snapshot sync).
    pub fn advance(&self, seq: u64) {
        let mut state = self.state.lock();
        state.durable = state.durable.max(seq);
    }

    /// Marks the log failed and wakes every waiter: none whose record is
    /// not durable yet will be acknowledged.
    pub fn fail(&self) {
        let _state = self.state.lock();
        self.mark_failed();
    }

    /// Marks the log failed and wakes every waiter; the caller holds the
    /// state lock, so no waiter can miss the wake-up.
    fn mark_failed(&self) {
        self.failed.store(true, Ordering::SeqCst);
        self.synced.notify_all();
    }

    /// Whether a sync has failed (or the store was poisoned).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn one_sync_serves_every_record_it_covers() {
        let commit = GroupCommit::default();
        let syncs = AtomicU64::new(0);
        let sync = || {
            syncs.fetch_add(1, Ordering::SeqCst);
            Ok(10)
        };
        for seq in 1..=10 {
            commit.wait(seq, sync).expect("sync succeeds");
        }
        assert_eq!(syncs.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_failed_sync_fails_later_waiters() {
        let commit = Arc::new(GroupCommit::default());
        let err = commit.wait(1, || {
            Err(Error::io("test", std::io::Error::other("disk gone")))
        });
        assert!(matches!(err, Err(Error::Io { .. })));
        assert!(matches!(commit.wait(1, || Ok(1)), Err(Error::Poisoned)));
    }

    /// A sync that fails elsewhere (sealing a segment) while a writer waits:
    /// the writer is not acknowledged, and no later sync runs at all, so
    /// the kernel's "success" after a failed fsync can never acknowledge
    /// it.
    #[test]
    fn a_failed_sync_elsewhere_fails_waiters_and_stops_every_later_sync() {
        let commit = Arc::new(GroupCommit::default());
        let entered = Arc::new(std::sync::Barrier::new(2));
        let release = Arc::new(std::sync::Barrier::new(2));
        // Writer A's leader is inside its sync when the seal fails.
        let leader = {
            let (commit, entered, release) = (commit.clone(), entered.clone(), release.clone());
            std::thread::spawn(move || {
                commit.wait(1, || {
                    entered.wait();
                    release.wait();
                    Ok(1)
                })
            })
        };
        entered.wait();
        // The seal waits for the gate, so it runs after A's sync: A's
        // sync covered record 1 before any failure and may succeed.
        let sealer = {
            let commit = commit.clone();
            std::thread::spawn(move || {
                commit.sync(|| -> Result<()> {
                    Err(Error::io("sealing", std::io::Error::other("disk gone")))
                })
            })
        };
        release.wait();
        assert!(leader.join().unwrap().is_ok());
        assert!(matches!(sealer.join().unwrap(), Err(Error::Io { .. })));
        // Record 2 was written before the failure; nothing may acknowledge
        // it now, and the sync closure must not even run.
        let ran = AtomicU64::new(0);
        let outcome = commit.wait(2, || {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok(2)
        });
        assert!(matches!(outcome, Err(Error::Poisoned)));
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        assert!(matches!(commit.sync(|| Ok(())), Err(Error::Poisoned)));
    }

    /// A writer waiting behind a leader whose sync fails is woken and told
    /// the log failed: neither acknowledged nor left waiting.
    #[test]
    fn a_waiter_behind_a_failing_leader_is_woken_with_an_error() {
        let commit = Arc::new(GroupCommit::default());
        let entered = Arc::new(std::sync::Barrier::new(2));
        let release = Arc::new(std::sync::Barrier::new(2));
        let leader = {
            let (commit, entered, release) = (commit.clone(), entered.clone(), release.clone());
            std::thread::spawn(move || {
                commit.wait(1, || {
                    entered.wait();
                    release.wait();
                    Err(Error::io("syncing", std::io::Error::other("disk gone")))
                })
            })
        };
        entered.wait();
        // The leader is inside its sync: this waiter finds `syncing` set
        // and sleeps on the condition variable (or, if it is late, finds
        // the log failed); either way it must not be acknowledged.
        let waiter = {
            let commit = commit.clone();
            std::thread::spawn(move || commit.wait(1, || Ok(1)))
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        release.wait();
        assert!(leader.join().unwrap().is_err());
        assert!(matches!(waiter.join().unwrap(), Err(Error::Poisoned)));
    }
}
