//! Compaction: the live records of every sealed segment are copied into new
//! segments, the rest are dropped, and the new segments replace the old ones
//! atomically through the manifest.
//!
//! Step by step (also in FORMAT.md):
//! 1. Under the writer lock, the active segment is sealed (even when empty)
//!    so everything written so far can be compacted. Its successor, whose id
//!    is above every existing segment's, is the horizon: it and everything
//!    after stay as they are.
//! 2. Without the writer lock, each input segment is read in order. A record
//!    is live if the in-memory state still points at it (the current version
//!    of a document, lease row or blob). Live records are copied unchanged,
//!    after one collection record per ensured collection, into
//!    `<id>.seg.tmp` outputs, which are then synced, as is the directory.
//! 3. The switch, under the writer lock: the manifest is replaced (the
//!    commit point), outputs are renamed to `<id>.seg`, and the in-memory
//!    state is pointed at the copies, unless a write moved a row meanwhile.
//! 4. The inputs are removed, an index snapshot is written (after a sync of
//!    the log), and then unreferenced blob files are removed.
//!
//! A crash before the commit leaves `.seg.tmp` files that open removes; a
//! crash after it leaves a manifest that open finishes (renames and
//! removals). Either way the store reads as before or as after.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::Inner;
use crate::blob_files;
use crate::index::State;
use crate::log::manifest::{self, Manifest};
use crate::log::outputs::{tmp_path, Output, Outputs};
use crate::log::record::Record;
use crate::log::scan::{Scan, Step};
use crate::log::segment::{segment_name, Loc, SegmentFile};
use crate::{Error, Result};

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompactionReport {
    /// Bytes of the segments compacted.
    pub bytes_before: u64,
    /// Bytes of the segments that replaced them.
    pub bytes_after: u64,
    /// Records copied.
    pub records_kept: u64,
    /// Records dropped (overwritten, deleted, released, or superseded).
    pub records_dropped: u64,
    /// Segments compacted (and removed).
    pub segments_compacted: usize,
    /// Segments written.
    pub segments_written: usize,
    /// Blob content files removed because no blob referred to them.
    pub blob_files_removed: u64,
    /// Wall time taken.
    pub duration: Duration,
}

/// The wake-up signal of the background compactor.
#[derive(Debug, Default)]
pub struct AutoCompact {
    wake: Mutex<bool>,
    signal: Condvar,
    stop: std::sync::atomic::AtomicBool,
    /// The last automatic compaction's error, if it failed.
    pub last_error: Mutex<Option<String>>,
}

impl AutoCompact {
    fn notify(&self) {
        *self.wake.lock() = true;
        self.signal.notify_one();
    }

    /// Stops the background thread (it finishes a compaction in progress).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.notify();
    }
}

/// Starts the background compactor. It holds only a weak reference, so a
/// dropped store is never kept alive by it.
pub(super) fn spawn(inner: Arc<Inner>) -> std::io::Result<JoinHandle<()>> {
    let weak: Weak<Inner> = Arc::downgrade(&inner);
    drop(inner);
    std::thread::Builder::new()
        .name("logstore-compactor".into())
        .spawn(move || loop {
            let Some(inner) = weak.upgrade() else { return };
            {
                let mut wake = inner.auto.wake.lock();
                while !*wake && !inner.auto.stop.load(Ordering::SeqCst) {
                    inner.auto.signal.wait(&mut wake);
                }
                *wake = false;
            }
            if inner.auto.stop.load(Ordering::SeqCst) {
                return;
            }
            if inner.needs_compaction() {
                if let Err(e) = inner.compact() {
                    *inner.auto.last_error.lock() = Some(e.to_string());
                }
            }
        })
}

/// Which row a copied record holds.
enum Row {
    Doc(String, String),
    Lease(String),
    Blob(String),
}

/// The row a record holds, if the state still points at this copy of it.
fn live_row(state: &State, record: &Record<'_>, loc: Loc) -> Option<Row> {
    match record {
        Record::DocPut { collection, id, .. } => (state.doc(collection, id)?.loc == loc)
            .then(|| Row::Doc(collection.to_string(), id.to_string())),
        Record::LeaseSet { key, .. } => {
            (state.leases.loc(key)? == loc).then(|| Row::Lease(key.to_string()))
        }
        Record::BlobPut { id, .. } => {
            (state.blobs.loc(id)? == loc).then(|| Row::Blob(id.to_string()))
        }
        _ => None,
    }
}

impl Inner {
    /// True when automatic compaction should run now.
    pub(super) fn needs_compaction(&self) -> bool {
        let total = self.writer.lock().total_bytes();
        self.needs_compaction_at(total, || self.state.read().live_bytes())
    }

    /// Whether a log of `total` bytes, `live()` of them live, has enough
    /// dead bytes to compact.
    fn needs_compaction_at(&self, total: u64, live: impl FnOnce() -> u64) -> bool {
        if !self.opts.auto_compact {
            return false;
        }
        let live = live();
        total >= self.opts.compaction_min_bytes
            && (total.saturating_sub(live) as f64) > self.opts.compaction_threshold * total as f64
    }

    /// Wakes the background compactor if the log has grown past its
    /// threshold; checked every few writes to keep the write path cheap.
    /// Called with the writer lock and the state's write lock held
    /// (`writer` and `state` are their guards' targets), so it never waits
    /// for either (a `without_waiting` write must not).
    pub(super) fn maybe_wake_compactor(
        &self,
        seq: u64,
        writer: &crate::log::writer::LogWriter,
        state: &State,
    ) {
        if seq.is_multiple_of(64)
            && self.needs_compaction_at(writer.total_bytes(), || state.live_bytes())
        {
            self.auto.notify();
        }
    }

    pub(super) fn compact(&self) -> Result<CompactionReport> {
        let _one_at_a_time = self.compaction.lock();
        let started = Instant::now();
        // 1. Seal what has been written so far.
        let (inputs, horizon): (Vec<u32>, u32) = {
            let mut writer = self.writer.lock();
            self.check_writable()?;
            // Always roll, even an empty segment: the new segment's id is
            // then above every input's, which is what lets open tell the
            // inputs (below the horizon) from the writer's segments. The
            // horizon is that segment, read under the same lock: writers
            // may roll again before the next lock, and a later segment as
            // horizon would make open remove the ones between.
            writer.roll(&self.files).inspect_err(|_| self.poison())?;
            let order = writer.order();
            let (&horizon, inputs) = order
                .split_last()
                .ok_or_else(|| Error::Internal("the log has no segment after a roll".into()))?;
            (inputs.to_vec(), horizon)
        };
        let mut report = CompactionReport::default();
        if inputs.is_empty() {
            report.duration = started.elapsed();
            return Ok(report);
        }
        let input_files: Vec<(u32, SegmentFile)> = {
            let files = self.files.read();
            inputs
                .iter()
                .filter_map(|id| Some((*id, files.get(id)?.clone())))
                .collect()
        };

        // 2. Copy the live records.
        let allocate = || self.writer.lock().allocate_id();
        let (fs, segment_bytes) = (self.fs.as_ref(), self.opts.segment_bytes);
        let mut output = Outputs::new(fs, &self.dir, segment_bytes, "compaction", allocate);
        let copied = self.copy_live(&input_files, &mut output, &mut report);
        let finished = copied.and_then(|moves| {
            let outputs = output.finish()?;
            self.sync_store_dir()?;
            Ok((outputs, moves))
        });
        let (outputs, moves) = match finished {
            Ok(done) => done,
            Err(e) => {
                output.abandon();
                return Err(e);
            }
        };

        // 3. The switch.
        let base: Vec<u32> = outputs.iter().map(|o| o.id).collect();
        report.segments_compacted = inputs.len();
        report.segments_written = outputs.len();
        report.bytes_after = outputs.iter().map(|o| o.end).sum();
        {
            let mut writer = self.writer.lock();
            // A store closed (or poisoned) meanwhile must not change: its
            // directory may already belong to another handle.
            if let Err(e) = self.check_writable() {
                output.abandon();
                return Err(e);
            }
            let manifest = Manifest {
                horizon,
                base: base.clone(),
            };
            if let Err(e) = manifest::prepare(self.fs.as_ref(), &self.dir, &manifest) {
                // Nothing is committed: the outputs can go.
                output.abandon();
                return Err(e);
            }
            // From here on a failure may leave the new manifest in force or
            // not; the next open settles it either way, and until then no
            // write may be acknowledged.
            self.commit
                .sync(|| manifest::commit(self.fs.as_ref(), &self.dir))
                .inspect_err(|_| self.poison())?;
            self.install(&outputs, &inputs, &moves)
                .inspect_err(|_| self.poison())?;
            writer.replace_sealed(&inputs, report.bytes_before, &base, report.bytes_after);
            writer.manifest = manifest;
        }

        // 4. Clean up and snapshot.
        report.blob_files_removed = self.clean_up(&inputs)?;
        report.duration = started.elapsed();
        Ok(report)
    }

    /// After the switch: removes the inputs, writes the index snapshot and
    /// removes the blob files no blob refers to any more; returns how many.
    fn clean_up(&self, inputs: &[u32]) -> Result<u64> {
        for id in inputs {
            let path = self.dir.join(segment_name(*id));
            self.fs
                .remove(&path)
                .map_err(|e| Error::io(format!("removing compacted {}", path.display()), e))?;
        }
        self.sync_store_dir()?;
        let mut writer = self.writer.lock();
        // The snapshot syncs the log before it is written, so after it
        // every delete that orphaned a blob file is durable and the file
        // may go.
        self.write_snapshot(&mut writer)?;
        let state = self.state.read();
        blob_files::sweep_orphans(self.fs.as_ref(), &self.dir, &|hash| {
            state.blobs.refs(hash) > 0
        })
    }

    /// Copies the live records of the inputs (after the collection records)
    /// and returns which rows moved where.
    fn copy_live(
        &self,
        inputs: &[(u32, SegmentFile)],
        output: &mut Outputs<'_>,
        report: &mut CompactionReport,
    ) -> Result<Vec<(Row, Loc, Loc)>> {
        let collections: Vec<(String, i64, Vec<String>)> = self
            .state
            .read()
            .collections()
            .filter(|(_, c)| c.ensured)
            .map(|(name, c)| (name.clone(), c.created_at, c.indexes.clone()))
            .collect();
        let mut payload = Vec::new();
        for (name, created_at, indexes) in &collections {
            payload.clear();
            let indexes = indexes.iter().map(String::as_str).collect();
            let created_at = Some(*created_at);
            Record::Collection {
                name,
                created_at,
                indexes,
            }
            .encode_payload(&mut payload);
            output.push(&payload)?;
        }
        let mut moves = Vec::new();
        for (id, segment) in inputs {
            let path = self.dir.join(segment_name(*id));
            let io_err = |e| Error::io(format!("reading {}", path.display()), e);
            let len = segment.file.size().map_err(io_err)?;
            report.bytes_before += len;
            let mut scan = Scan::new(segment.file.as_ref(), segment.framing, *id, len, 0);
            loop {
                let (loc, payload, record) = match scan.next().map_err(io_err)? {
                    Step::Frame {
                        loc,
                        payload,
                        record,
                    } => (loc, payload, record),
                    Step::End => break,
                    Step::Invalid { offset, reason } => {
                        return Err(Error::corruption(
                            &path,
                            offset,
                            format!("{reason}: a record of a sealed segment no longer verifies"),
                        ))
                    }
                };
                let record =
                    record.map_err(|r| Error::corruption(&path, u64::from(loc.offset), r))?;
                let row = live_row(&self.state.read(), &record, loc);
                match row {
                    Some(row) => {
                        let to = output.push(payload)?;
                        moves.push((row, loc, to));
                        report.records_kept += 1;
                    }
                    None => report.records_dropped += 1,
                }
            }
        }
        Ok(moves)
    }

    /// After the commit: outputs become `.seg` files and replace the inputs
    /// in the file map, and rows point at their copies.
    fn install(&self, outputs: &[Output], inputs: &[u32], moves: &[(Row, Loc, Loc)]) -> Result<()> {
        for output in outputs {
            let from = tmp_path(&self.dir, output.id);
            let to = self.dir.join(segment_name(output.id));
            self.fs
                .rename(&from, &to)
                .map_err(|e| Error::io(format!("renaming {}", from.display()), e))?;
        }
        self.sync_store_dir()?;
        let mut state = self.state.write();
        let mut files = self.files.write();
        // The outputs were synced whole and are never written again:
        // sealed, so mapped. The inputs leave the map here and their files
        // are removed after the switch; a reader that took one before keeps
        // its handle (and map), and an unlinked file stays readable through
        // both.
        for output in outputs {
            files.insert(output.id, output.file.clone().sealed());
        }
        for id in inputs {
            files.remove(id);
        }
        for (row, from, to) in moves {
            match row {
                Row::Doc(collection, id) => state.relocate_doc(collection, id, *from, *to),
                Row::Lease(key) => state.leases.relocate(key, *from, *to),
                Row::Blob(id) => state.blobs.relocate(id, *from, *to),
            }
        }
        Ok(())
    }
}
