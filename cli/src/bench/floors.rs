//! The disk's floor for `Sync` writes, measured in the same run as the log
//! engine: a loop of positioned writes of one record's size, each followed
//! by `fdatasync`, into a scratch file zero-filled ahead (as the engine's
//! active segment is, so a sync flushes data and no file size). With one
//! writer, one sync per record; with several, group commit at its plainest:
//! writers append under one lock, and whoever finds no sync running syncs
//! everything appended so far while the others wait for it.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use logstore_workload::{self as workload, Rng};

use super::FloorRow;

/// Alternating slices of the floor and the engine per figure.
const ROUNDS: u64 = 8;

/// The scratch file's zero-filled region; records wrap around in it.
const REGION: u64 = 16 * 1024 * 1024;

/// Bytes of a document-put record beside its body and id (FORMAT.md): the
/// frame header (12), the kind (1), the collection name's and id's length
/// prefixes (4 + 4), version and two timestamps (24), the body's length
/// prefix (4).
const RECORD_OVERHEAD: usize = 12 + 1 + 4 + 4 + 24 + 4;

/// The size of the records the benchmark's concurrent puts write: the
/// average over the same generated documents.
fn record_bytes() -> usize {
    let mut rng = Rng::new(0);
    let ids = 2_000_000_000..2_000_000_100u64;
    let n = ids.end - ids.start;
    let total: usize = ids
        .map(|i| {
            let body = workload::turn(&mut rng, i).to_string().len();
            body + workload::id(i).len() + workload::COLLECTION.len() + RECORD_OVERHEAD
        })
        .sum();
    total / n as usize
}

/// Group-commit progress of the batched floor.
#[derive(Default)]
struct Batch {
    appended: u64,
    durable: u64,
    syncing: bool,
}

/// The scratch file the floors write into.
pub struct Scratch {
    path: PathBuf,
    file: File,
    record: Vec<u8>,
    batch: Mutex<Batch>,
    synced: Condvar,
}

impl Scratch {
    fn open(dir: &Path, record_bytes: usize) -> anyhow::Result<Scratch> {
        let path = dir.join("write-floor.scratch");
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        let zeros = vec![0u8; 1024 * 1024];
        for at in (0..REGION).step_by(zeros.len()) {
            file.write_all_at(&zeros, at)?;
        }
        file.sync_all()?;
        Ok(Scratch {
            path,
            file,
            record: vec![0x5a; record_bytes],
            batch: Mutex::new(Batch::default()),
            synced: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Batch> {
        self.batch.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self, seq: u64) -> std::io::Result<()> {
        let len = self.record.len() as u64;
        let at = (seq * len) % (REGION - len);
        self.file.write_all_at(&self.record, at)
    }

    /// One writer: a write and a sync per record, for `budget`; returns
    /// the records written and the time taken.
    fn single(&self, budget: Duration) -> anyhow::Result<(u64, Duration)> {
        let started = Instant::now();
        let mut n = 0u64;
        while n < 10 || started.elapsed() < budget {
            self.write(n)?;
            self.file.sync_data()?;
            n += 1;
        }
        Ok((n, started.elapsed()))
    }

    /// Appends one record and returns once a sync covered it.
    fn append_and_wait(&self) -> std::io::Result<()> {
        let mut batch = self.lock();
        batch.appended += 1;
        let seq = batch.appended;
        self.write(seq)?;
        while batch.durable < seq {
            if batch.syncing {
                batch = self
                    .synced
                    .wait(batch)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            batch.syncing = true;
            let covered = batch.appended;
            drop(batch);
            let synced = self.file.sync_data();
            batch = self.lock();
            batch.syncing = false;
            self.synced.notify_all();
            synced?;
            batch.durable = batch.durable.max(covered);
        }
        Ok(())
    }

    /// `threads` writers sharing syncs, for `budget`; returns the records
    /// written and the time taken.
    fn batched(&self, threads: usize, budget: Duration) -> anyhow::Result<(u64, Duration)> {
        super::on_threads(threads, budget, |_, _| Ok(self.append_and_wait()?))
    }
}

impl Scratch {
    /// A zero-filled scratch file in `dir` for records of the size the
    /// benchmark's puts write; removed when dropped.
    pub fn create(dir: &Path) -> anyhow::Result<Scratch> {
        Scratch::open(dir, record_bytes())
    }

    /// The floor for `threads` writers (one: a sync per record; more:
    /// batched) and `engine`'s puts from as many threads, in [`ROUNDS`]
    /// alternating slices of `budget / ROUNDS` each (so a disk that other
    /// work slows at some moment slows both alike). `engine` is given its
    /// slice and round and returns the puts it made and the time taken.
    /// Returns the engine's rate and the row setting it beside the floor.
    pub fn paired(
        &self,
        threads: usize,
        budget: Duration,
        engine: &mut dyn FnMut(Duration, u64) -> anyhow::Result<(u64, Duration)>,
    ) -> anyhow::Result<(f64, FloorRow)> {
        let slice = budget / ROUNDS as u32;
        let (mut floor_n, mut floor_t) = (0, Duration::ZERO);
        let (mut log_n, mut log_t) = (0, Duration::ZERO);
        for round in 0..ROUNDS {
            let (n, t) = match threads {
                1 => self.single(slice)?,
                _ => self.batched(threads, slice)?,
            };
            (floor_n, floor_t) = (floor_n + n, floor_t + t);
            let (n, t) = engine(slice, round)?;
            (log_n, log_t) = (log_n + n, log_t + t);
        }
        let floor = floor_n as f64 / floor_t.as_secs_f64();
        let log = log_n as f64 / log_t.as_secs_f64();
        let plural = if threads == 1 { "" } else { "s" };
        let name = match threads {
            1 => "write + fdatasync, 1 writer".to_string(),
            _ => format!("writes + one fdatasync per batch, {threads} writers"),
        };
        let row = FloorRow {
            operation: format!("put (new), {threads} thread{plural} vs {name}"),
            record_bytes: self.record.len(),
            floor_ops_per_sec: floor,
            log_ops_per_sec: log,
            share: log / floor,
        };
        Ok((log, row))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Best effort: the benchmark's temporary folder goes anyway.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What the floors measure, in one line (none without them).
pub fn caption(floors: &[FloorRow]) -> Option<String> {
    let first = floors.first()?;
    Some(format!(
        "`Sync` puts against the disk's floor: positioned writes of {} B records, each \
         followed by `fdatasync` (one writer) or one `fdatasync` per batch (several), into a \
         zero-filled scratch file, alternating with the engine in the same run.",
        first.record_bytes
    ))
}

/// The floors as a Markdown table.
pub fn table(floors: &[FloorRow]) -> String {
    let mut out =
        "| log engine vs floor | floor ops/s | log engine ops/s | log / floor |\n".to_string();
    out += "| --- | ---: | ---: | ---: |\n";
    for row in floors {
        out += &format!(
            "| {} | {:.0} | {:.0} | {:.0}% |\n",
            row.operation,
            row.floor_ops_per_sec,
            row.log_ops_per_sec,
            row.share * 100.0
        );
    }
    out
}
