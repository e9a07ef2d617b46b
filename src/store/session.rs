//! A session: the store's traits through one write mode. `LogStore` serves
//! its own calls through a session that waits; [`LogStore::batch`] and
//! [`LogStore::without_waiting`] hand out one that defers its durability
//! waits or refuses to wait at all.

use std::sync::Arc;

use super::commit::{Decision, WriteMode};
use super::Inner;
use crate::contract::{BlobStore, DocumentStore, LeaseStore, Store};
use crate::index::State;
use crate::{Error, Result};

/// The store seen through one way of writing. Reads are the store's own;
/// writes commit in the session's mode:
///
/// - the store's own session waits for each write to be as durable as the
///   options ask;
/// - a [`LogStore::batch`](crate::LogStore::batch) session appends and
///   applies each write at once and leaves the durability wait to the
///   batch's end;
/// - a [`LogStore::without_waiting`](crate::LogStore::without_waiting)
///   session never blocks: a write that would wait returns
///   [`Error::WouldBlock`] with the reason, having written nothing.
///
/// It implements the store traits, so the calls inside a batch are the
/// calls outside it. Closing goes through the `LogStore`: a session's
/// `close` is refused.
pub struct Session {
    pub(super) inner: Arc<Inner>,
    pub(super) mode: WriteMode,
}

impl Session {
    pub(super) fn new(inner: Arc<Inner>, mode: WriteMode) -> Self {
        Session { inner, mode }
    }

    /// [`Inner::commit`] in this session's mode.
    pub(super) fn commit<'a, T>(
        &self,
        decide: impl FnOnce(&State) -> Result<Decision<'a, T>>,
    ) -> Result<T> {
        self.inner.commit(&self.mode, decide)
    }

    /// [`Inner::commit_file`] in this session's mode.
    pub(super) fn commit_file<'a, S, T>(
        &self,
        stage: impl FnOnce() -> Result<S>,
        decide: impl FnOnce(&State, S) -> Result<Decision<'a, T>>,
    ) -> Result<T> {
        self.inner.commit_file(&self.mode, stage, decide)
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("dir", &self.inner.dir)
            .field("mode", &self.mode)
            .finish()
    }
}

impl Store for Session {
    fn docs(&self) -> &dyn DocumentStore {
        self
    }

    fn blobs(&self) -> &dyn BlobStore {
        self
    }

    fn leases(&self) -> &dyn LeaseStore {
        self
    }

    /// Refused: the store is closed through the `LogStore` that handed the
    /// session out (a batch still waits at its end for its writes).
    fn close(&self) -> Result<()> {
        Err(Error::invalid(
            "a session cannot close its store; close the LogStore",
        ))
    }
}
