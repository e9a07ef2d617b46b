//! `LogStore::stats`: sizes and counts read off the writer and the index.

use super::Inner;
use crate::Result;

/// Sizes and counts of a log store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Live segment files.
    pub segments: usize,
    /// Bytes in those files.
    pub total_bytes: u64,
    /// Bytes of the records that hold current rows: what compaction keeps.
    pub live_bytes: u64,
    /// `total_bytes - live_bytes`: what compaction would reclaim.
    pub dead_bytes: u64,
    /// `total_bytes / live_bytes` (1.0 for an empty store).
    pub space_amplification: f64,
    /// Documents in all collections.
    pub documents: u64,
    /// Blobs, and distinct content files behind them.
    pub blobs: u64,
    /// Distinct blob content files.
    pub blob_files: u64,
    /// Lease rows (expired ones included).
    pub leases: u64,
    /// Of those, rows whose expiry has passed (`expires_at < now`).
    pub leases_expired: u64,
    /// An estimate of the heap the in-memory index holds, in bytes.
    pub index_bytes_estimate: u64,
    /// Entries of the store directory the store did not make (links,
    /// stray files and folders), which it leaves alone; `verify` lists them.
    pub foreign_entries: u64,
}

impl Inner {
    pub(super) fn stats(&self) -> Result<Stats> {
        self.check_open()?;
        // Listed before the locks are taken: no writer waits on a listing.
        let foreign_entries =
            super::dir::foreign_entries(self.fs.as_ref(), &self.dir)?.len() as u64;
        let writer = self.writer.lock();
        let state = self.state.read();
        let total = writer.total_bytes();
        let live = state.live_bytes();
        let now = self.opts.clock.now_ms();
        Ok(Stats {
            segments: writer.order().len(),
            total_bytes: total,
            live_bytes: live,
            dead_bytes: total.saturating_sub(live),
            space_amplification: if live == 0 {
                1.0
            } else {
                total as f64 / live as f64
            },
            documents: state.collections().map(|(_, c)| c.len() as u64).sum(),
            blobs: state.blobs.len() as u64,
            blob_files: state.blobs.contents().count() as u64,
            leases: state.leases.len() as u64,
            leases_expired: state
                .leases
                .rows()
                .filter(|(row, _)| row.expires_at < now)
                .count() as u64,
            index_bytes_estimate: state.index_bytes_estimate(),
            foreign_entries,
        })
    }
}
