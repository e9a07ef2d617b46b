//! `logstore bench`: the log engine against the SQLite driver (or, with
//! `--driver postgres`, a PostgreSQL server), through the same `&dyn Store`
//! calls, at equal durability, in one run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use logstore::{Durability, LogStore, Options, PgStore, SqliteStore, Store};
use logstore_workload::{self as workload, Op, Rng};
use serde::Serialize;

use crate::progress::Progress;

mod blobs;
mod floors;
mod place;
mod print;
mod readers;
pub mod scale;

pub use print::{markdown, table, Format};

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub docs: u64,
    pub durability: Durability,
    pub threads: usize,
    pub seconds_per_op: f64,
    /// The driver the log engine is compared with.
    pub baseline: Baseline,
    /// The directory the stores go in (in a folder made for the run); the
    /// system's temporary folder when `None`.
    pub dir: Option<PathBuf>,
    /// Only this part of the bench, when set.
    pub only: Option<Part>,
}

/// A part of the bench that runs alone with `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// The blob put and get rows, at every size.
    Blobs,
}

/// The driver the log engine is measured against.
#[derive(Debug, Clone)]
pub enum Baseline {
    /// The SQLite driver, in a temporary folder.
    Sqlite,
    /// The PostgreSQL driver on the server at `url`, in a schema of its own
    /// that is dropped at the end.
    Postgres { url: String },
}

impl Baseline {
    fn name(&self) -> &'static str {
        match self {
            Baseline::Sqlite => "SQLite",
            Baseline::Postgres { .. } => "PostgreSQL",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub operation: String,
    pub log_ops_per_sec: f64,
    /// The compared driver's rate (`Report::driver` names it).
    pub driver_ops_per_sec: f64,
    pub ratio: f64,
}

/// The whole run, as `--json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The driver the log engine was compared with.
    pub driver: String,
    pub documents: u64,
    pub durability: String,
    pub document_shape: String,
    pub cores: usize,
    /// Where the stores were (a folder removed at the end of the run).
    pub store_dir: PathBuf,
    /// The file system that held them.
    pub file_system: place::FileSystem,
    /// What makes figures of this run meaningless (a `Sync` run on a file
    /// system in memory).
    pub warnings: Vec<String>,
    pub rows: Vec<Row>,
    /// With `Sync`: the log engine's concurrent puts against the disk's
    /// floor for the same writes, measured in the same run.
    pub floors: Vec<FloorRow>,
    /// A read-only handle beside the log engine's writer, in the same run.
    pub readers: Vec<readers::ReaderRow>,
}

/// A write figure of the log engine beside the floor the disk sets for it.
#[derive(Debug, Clone, Serialize)]
pub struct FloorRow {
    pub operation: String,
    /// Bytes per record, in the engine's log and in the floor's loop.
    pub record_bytes: usize,
    pub floor_ops_per_sec: f64,
    pub log_ops_per_sec: f64,
    /// `log_ops_per_sec / floor_ops_per_sec`.
    pub share: f64,
}

fn options(durability: Durability) -> Options {
    Options {
        durability,
        // The benchmark measures steady-state operations; compaction is
        // measured on its own.
        auto_compact: false,
        ..Options::default()
    }
}

fn open_log(dir: &Path, durability: Durability) -> logstore::Result<LogStore> {
    LogStore::open(dir.join("log"), options(durability))
}

/// The compared driver's store: SQLite in `dir`, or PostgreSQL in
/// `schema`.
fn open_baseline(
    baseline: &Baseline,
    dir: &Path,
    schema: &str,
    durability: Durability,
) -> logstore::Result<Box<dyn Store>> {
    Ok(match baseline {
        Baseline::Sqlite => Box::new(SqliteStore::open(
            dir.join("store.db"),
            dir.join("blobs"),
            options(durability),
        )?),
        Baseline::Postgres { url } => {
            Box::new(PgStore::open_in_schema(url, schema, options(durability))?)
        }
    })
}

/// A schema no earlier run left behind.
fn bench_schema() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("logstore_bench_{}_{nanos}", std::process::id())
}

/// Runs `f` until `budget` has passed (at least 10 times) or `max` calls;
/// returns calls per second.
fn rate(
    budget: Duration,
    max: u64,
    mut f: impl FnMut(u64) -> anyhow::Result<()>,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut i = 0;
    while i < max && (i < 10 || started.elapsed() < budget) {
        f(i)?;
        i += 1;
    }
    Ok(i as f64 / started.elapsed().as_secs_f64())
}

/// Puts of new documents from `threads` threads for `budget`.
fn concurrent_puts(store: &dyn Store, threads: usize, budget: Duration) -> anyhow::Result<f64> {
    let (n, took) = puts_from_threads(store, threads, budget, 0)?;
    Ok(n as f64 / took.as_secs_f64())
}

/// Runs `each(thread, n)` on `threads` threads, each looping until
/// `budget` has passed and it ran at least 10 times; returns the calls made
/// and the time taken. The one harness of every concurrent figure, the
/// engine's and the disk floor's alike.
fn on_threads(
    threads: usize,
    budget: Duration,
    each: impl Fn(usize, u64) -> anyhow::Result<()> + Sync,
) -> anyhow::Result<(u64, Duration)> {
    let started = Instant::now();
    let each = &each;
    let done: Vec<anyhow::Result<u64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut n = 0u64;
                    while n < 10 || started.elapsed() < budget {
                        each(t, n)?;
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a benchmark thread panicked")))
            })
            .collect()
    });
    let mut total = 0;
    for n in done {
        total += n?;
    }
    Ok((total, started.elapsed()))
}

/// Puts from `threads` threads for `budget` (at least 10 each), of ids no
/// other `round` uses; returns how many and the time taken.
fn puts_from_threads(
    store: &dyn Store,
    threads: usize,
    budget: Duration,
    round: u64,
) -> anyhow::Result<(u64, Duration)> {
    on_threads(threads, budget, |t, n| {
        let i = 2_000_000_000 + (t as u64) * 100_000_000 + round * 1_000_000 + n;
        let mut rng = Rng::new(i);
        store.docs().put(
            workload::COLLECTION,
            &workload::id(i),
            workload::turn(&mut rng, i),
            None,
        )?;
        Ok(())
    })
}

/// Gets and one-filter queries (limit 20) that return the stored JSON text
/// unparsed (`get_raw`, `query_raw`), on both drivers, each a `row` of
/// (operation, log engine rate, compared driver rate). The reads run the
/// same keys as the parsed "get by id" and "query, 1 filter, limit 20" rows.
fn raw_reads(
    log: &dyn Store,
    other: &dyn Store,
    config: &BenchConfig,
    progress: &Progress,
    row: &mut dyn FnMut(String, f64, f64),
) -> anyhow::Result<()> {
    progress.step("raw reads");
    let (docs, budget) = (config.docs, Duration::from_secs_f64(config.seconds_per_op));
    let get = |store: &dyn Store| {
        let mut rng = Rng::new(9);
        rate(budget, u64::MAX, |_| {
            let id = workload::id(rng.below(docs.max(1)));
            store.docs().get_raw(workload::COLLECTION, &id)?;
            Ok(())
        })
    };
    let query = |store: &dyn Store| {
        let mut rng = Rng::new(9);
        rate(budget, u64::MAX, |_| {
            let conversation = workload::conversation(rng.below(workload::CONVERSATIONS));
            let q = logstore::Query::new(workload::COLLECTION)
                .filter(workload::INDEXES[0], conversation)
                .limit(20);
            store.docs().query_raw(&q)?;
            Ok(())
        })
    };
    row("get by id, raw JSON text".into(), get(log)?, get(other)?);
    let name = "query, 1 filter, limit 20, raw JSON text";
    row(name.into(), query(log)?, query(other)?);
    Ok(())
}

/// Puts from each of `thread_counts` threads on both drivers, as rows.
/// With `Sync`, the log engine's figure is taken in slices alternating
/// with the disk's floor for the same writes (so both see the same disk),
/// returned beside it.
fn concurrent_rows(
    log: &dyn Store,
    baseline: &dyn Store,
    thread_counts: &[usize],
    config: &BenchConfig,
    dir: &Path,
    progress: &Progress,
    row: &mut dyn FnMut(String, f64, f64),
) -> anyhow::Result<Vec<FloorRow>> {
    let budget = Duration::from_secs_f64(config.seconds_per_op);
    let scratch = match config.durability {
        Durability::Sync => Some(floors::Scratch::create(dir)?),
        Durability::Flush => None,
    };
    let mut floor_rows = Vec::new();
    for &threads in thread_counts {
        progress.step(&format!("puts from {threads} threads"));
        let l = match &scratch {
            Some(scratch) => {
                let mut puts = |slice, round| puts_from_threads(log, threads, slice, round);
                let (l, floor) = scratch.paired(threads, budget, &mut puts)?;
                floor_rows.push(floor);
                l
            }
            None => concurrent_puts(log, threads, budget)?,
        };
        let s = concurrent_puts(baseline, threads, budget)?;
        let plural = if threads == 1 { "" } else { "s" };
        row(format!("put (new), {threads} thread{plural}"), l, s);
    }
    Ok(floor_rows)
}

/// The writer-thread counts the concurrent puts run with: 1, 4 and
/// `threads`, none above `threads`.
fn thread_counts(threads: usize) -> Vec<usize> {
    let most = threads.max(1);
    let mut counts: Vec<usize> = [1, 4, most].into_iter().filter(|&n| n <= most).collect();
    counts.sort_unstable();
    counts.dedup();
    counts
}

/// Closes both stores and opens them again, timing each open; returns
/// each store with the seconds its open took.
#[allow(clippy::type_complexity)]
fn reopened(
    log: LogStore,
    other: Box<dyn Store>,
    config: &BenchConfig,
    log_dir: &Path,
    other_dir: &Path,
    schema: &str,
    progress: &Progress,
) -> anyhow::Result<((LogStore, f64), (Box<dyn Store>, f64))> {
    progress.step("reopening");
    log.close()?;
    other.close()?;
    drop((log, other));
    let started = Instant::now();
    let log = open_log(log_dir, config.durability)?;
    let log_open = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let other = open_baseline(&config.baseline, other_dir, schema, config.durability)?;
    let other_open = started.elapsed().as_secs_f64();
    Ok(((log, log_open), (other, other_open)))
}

/// Runs every workload on both drivers (or only the part `config.only`
/// names) and returns the table.
pub fn run(config: &BenchConfig, progress: &Progress) -> anyhow::Result<Report> {
    let tmp = place::Place::make(config.dir.as_deref())?;
    eprintln!("logstore bench: {}", tmp.describe());
    let warnings: Vec<String> = match config.durability {
        Durability::Sync => tmp.sync_warning().into_iter().collect(),
        Durability::Flush => Vec::new(),
    };
    for warning in &warnings {
        eprintln!("logstore bench: {warning}");
    }
    if config.only == Some(Part::Blobs) {
        return blobs::run_blobs(config, progress, &tmp, warnings);
    }
    let (log_dir, sqlite_dir) = (tmp.path().join("log-engine"), tmp.path().join("sqlite"));
    let budget = Duration::from_secs_f64(config.seconds_per_op);
    let d = config.durability;
    let thread_counts = thread_counts(config.threads);
    progress.start(
        2 + Op::ALL.len() as u64
            + 1
            + blobs::BLOB_SIZES.len() as u64
            + thread_counts.len() as u64
            + 1
            + readers::STEPS,
    );
    let mut rows = Vec::new();
    let mut row = |operation: String, log: f64, sqlite: f64| {
        rows.push(Row {
            operation,
            log_ops_per_sec: log,
            driver_ops_per_sec: sqlite,
            ratio: log / sqlite,
        });
    };

    progress.step("loading documents into the log engine");
    let log = open_log(&log_dir, d)?;
    let started = Instant::now();
    workload::load(&log, config.docs)?;
    let log_load = config.docs as f64 / started.elapsed().as_secs_f64();
    progress.step(&format!(
        "loading documents into {}",
        config.baseline.name()
    ));
    let schema = bench_schema();
    let sqlite = open_baseline(&config.baseline, &sqlite_dir, &schema, d)?;
    let started = Instant::now();
    workload::load(sqlite.as_ref(), config.docs)?;
    let sqlite_load = config.docs as f64 / started.elapsed().as_secs_f64();
    row(
        format!("load {} documents (puts)", config.docs),
        log_load,
        sqlite_load,
    );

    for op in Op::ALL {
        progress.step(op.name());
        // Writes run a fixed count, the same for both drivers, so the reads
        // after them see stores of the same size (a time budget would let
        // the faster driver grow its store more). Reads run for the budget.
        let (time, count) = if op.writes() {
            (Duration::MAX, (config.docs / 4).max(10))
        } else {
            (budget, u64::MAX)
        };
        let per_driver = |store: &dyn Store| {
            let mut rng = Rng::new(9);
            rate(time, count, |i| {
                Ok(op.run(store, &mut rng, i, config.docs)?)
            })
        };
        let (l, s) = (per_driver(&log)?, per_driver(sqlite.as_ref())?);
        row(op.name().to_string(), l, s);
    }
    raw_reads(&log, sqlite.as_ref(), config, progress, &mut row)?;
    blobs::blob_rows(&log, sqlite.as_ref(), budget, progress, &mut row)?;
    let floors = concurrent_rows(
        &log,
        sqlite.as_ref(),
        &thread_counts,
        config,
        tmp.path(),
        progress,
        &mut row,
    )?;
    let (log, sqlite) = reopened(
        log,
        sqlite,
        config,
        &log_dir,
        &sqlite_dir,
        &schema,
        progress,
    )?;
    let (log_open, sqlite_open) = (1.0 / log.1, 1.0 / sqlite.1);
    row("open (opens per second)".to_string(), log_open, sqlite_open);
    let (log, sqlite) = (log.0, sqlite.0);
    // Last, so the puts it adds change no other row's store.
    let readers = readers::rows(&log, config, progress)?;
    close(config, log, sqlite, &schema, progress)?;
    Ok(Report {
        floors,
        readers,
        ..Report::new(
            config,
            &tmp,
            warnings,
            config.docs,
            "chat turn: conversation, author, role, seq, ~300 B text (~400 B JSON); indexes conversation, author",
            rows,
        )
    })
}

/// Closes both stores, drops the PostgreSQL baseline's schema, and ends
/// the progress display.
fn close(
    config: &BenchConfig,
    log: LogStore,
    other: Box<dyn Store>,
    schema: &str,
    progress: &Progress,
) -> anyhow::Result<()> {
    drop((log, other));
    if let Baseline::Postgres { url } = &config.baseline {
        PgStore::open_in_schema(url, schema, options(config.durability))?.drop_schema()?;
    }
    progress.finish();
    Ok(())
}

impl Report {
    /// The report of a run in `tmp` against `config`'s baseline, with
    /// `rows` and no floors or reader rows.
    fn new(
        config: &BenchConfig,
        tmp: &place::Place,
        warnings: Vec<String>,
        documents: u64,
        document_shape: &str,
        rows: Vec<Row>,
    ) -> Report {
        Report {
            driver: config.baseline.name().to_string(),
            documents,
            durability: durability_text(&config.baseline, config.durability),
            document_shape: document_shape.into(),
            cores: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            store_dir: tmp.path().to_path_buf(),
            file_system: tmp.file_system.clone(),
            warnings,
            rows,
            floors: Vec::new(),
            readers: Vec::new(),
        }
    }
}

/// What the run's durability means for each driver, for the report.
fn durability_text(baseline: &Baseline, d: Durability) -> String {
    let (log, driver) = match (baseline, d) {
        (Baseline::Sqlite, Durability::Sync) => ("Sync", "SQLite synchronous=FULL, WAL"),
        (Baseline::Sqlite, Durability::Flush) => ("Flush", "SQLite synchronous=NORMAL, WAL"),
        (Baseline::Postgres { .. }, Durability::Sync) => (
            "Sync",
            "PostgreSQL synchronous_commit=on (durable only if the server runs with fsync=on)",
        ),
        (Baseline::Postgres { .. }, Durability::Flush) => {
            ("Flush", "PostgreSQL synchronous_commit=off")
        }
    };
    let how = match d {
        Durability::Sync => "fdatasync per commit, group commit",
        Durability::Flush => "handed to the OS",
    };
    format!("{log} (log: {how}) vs {driver}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_counts_never_pass_threads() {
        assert_eq!(thread_counts(1), vec![1]);
        assert_eq!(thread_counts(2), vec![1, 2]);
        assert_eq!(thread_counts(4), vec![1, 4]);
        assert_eq!(thread_counts(8), vec![1, 4, 8]);
    }
}
