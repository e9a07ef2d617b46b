//! A read-only handle beside the writer, on the same store in the same
//! run (`LogStore::open_read_only`, `refresh`): the writer's put alone
//! against its put followed by a reader's refresh that reads it, a refresh
//! that finds nothing new, and reads (get by id, one-filter query) from
//! the reader against the same reads from the writer. Each pair of
//! figures is taken in alternating slices, so a moment of load on the
//! shared machine slows both alike.

use std::time::{Duration, Instant};

use logstore::{LogStore, Store};
use logstore_workload::{self as workload, Op, Rng};
use serde::Serialize;

use super::{options, rate, BenchConfig};
use crate::progress::Progress;

/// The progress steps `rows` takes.
pub const STEPS: u64 = 2;

/// Alternating slices per pair of figures.
const SLICES: u32 = 4;

/// Ids of the puts here: above every other row's.
const PUT_IDS: u64 = 3_000_000_000;
const PUT_AND_REFRESH_IDS: u64 = 3_500_000_000;

/// One row: the writer's figure (none where only a reader has one) beside
/// the reader's.
#[derive(Debug, Clone, Serialize)]
pub struct ReaderRow {
    pub operation: String,
    pub writer_ops_per_sec: Option<f64>,
    pub reader_ops_per_sec: f64,
}

/// Runs `a` and `b` in `SLICES` alternating slices of `budget / SLICES`
/// each (at least one call per slice); returns each one's calls per
/// second. Each gets its own count of calls, from 0.
fn alternating(
    budget: Duration,
    mut a: impl FnMut(u64) -> anyhow::Result<()>,
    mut b: impl FnMut(u64) -> anyhow::Result<()>,
) -> anyhow::Result<(f64, f64)> {
    let slice = budget / SLICES;
    let mut totals = [(0u64, Duration::ZERO); 2];
    let mut each: [&mut dyn FnMut(u64) -> anyhow::Result<()>; 2] = [&mut a, &mut b];
    for _ in 0..SLICES {
        for (f, total) in each.iter_mut().zip(totals.iter_mut()) {
            let started = Instant::now();
            let mut n = 0;
            while n == 0 || started.elapsed() < slice {
                f(total.0 + n)?;
                n += 1;
            }
            *total = (total.0 + n, total.1 + started.elapsed());
        }
    }
    let per_second = |(n, took): (u64, Duration)| n as f64 / took.as_secs_f64();
    Ok((per_second(totals[0]), per_second(totals[1])))
}

/// A put of a new document, its id numbered from `base`.
fn put(store: &LogStore, base: u64, i: u64) -> anyhow::Result<()> {
    let n = base + i;
    let mut rng = Rng::new(n);
    store.docs().put(
        workload::COLLECTION,
        &workload::id(n),
        workload::turn(&mut rng, n),
        None,
    )?;
    Ok(())
}

/// The rows, measured on the writer `log` and a reader opened on its
/// directory.
pub fn rows(
    log: &LogStore,
    config: &BenchConfig,
    progress: &Progress,
) -> anyhow::Result<Vec<ReaderRow>> {
    let budget = Duration::from_secs_f64(config.seconds_per_op);
    let reader = LogStore::open_read_only(log.path(), options(config.durability))?;
    let mut rows = Vec::new();

    progress.step("a reader's refresh after each put");
    let (alone, with_refresh) = alternating(budget, &mut |i| put(log, PUT_IDS, i), &mut |i| {
        put(log, PUT_AND_REFRESH_IDS, i)?;
        reader.refresh()?;
        Ok(())
    })?;
    rows.push(ReaderRow {
        operation: "put (new), then a reader's refresh that reads it (writer: the put alone)"
            .into(),
        writer_ops_per_sec: Some(alone),
        reader_ops_per_sec: with_refresh,
    });
    reader.refresh()?;
    let idle = rate(budget, u64::MAX, |_| Ok(reader.refresh()?))?;
    rows.push(ReaderRow {
        operation: "refresh, nothing new".into(),
        writer_ops_per_sec: None,
        reader_ops_per_sec: idle,
    });

    progress.step("reads from a reader");
    for op in [Op::Get, Op::QueryOneFilter] {
        let (mut on_writer, mut on_reader) = (Rng::new(9), Rng::new(9));
        let (w, r) = alternating(
            budget,
            |i| Ok(op.run(log, &mut on_writer, i, config.docs)?),
            |i| Ok(op.run(&reader, &mut on_reader, i, config.docs)?),
        )?;
        rows.push(ReaderRow {
            operation: op.name().into(),
            writer_ops_per_sec: Some(w),
            reader_ops_per_sec: r,
        });
    }
    reader.close()?;
    Ok(rows)
}

/// What the readers' table measures, in one line.
pub const CAPTION: &str =
    "A read-only handle beside the writer (open_read_only, refresh): the same store, same run";

/// The rows as a Markdown table.
pub fn table(rows: &[ReaderRow]) -> String {
    let mut out = "| operation | writer ops/s | reader ops/s | reader / writer |\n".to_string();
    out += "| --- | ---: | ---: | ---: |\n";
    for row in rows {
        let (writer, ratio) = match row.writer_ops_per_sec {
            Some(w) => (
                format!("{w:.0}"),
                format!("{:.2}x", row.reader_ops_per_sec / w),
            ),
            None => ("-".into(), "-".into()),
        };
        out += &format!(
            "| {} | {writer} | {:.0} | {ratio} |\n",
            row.operation, row.reader_ops_per_sec
        );
    }
    out
}
