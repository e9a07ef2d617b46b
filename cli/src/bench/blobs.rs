//! The blob rows: puts and gets of blobs of each size on both drivers,
//! the gets of the two drivers in alternating slices.

use std::io::Cursor;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use logstore::{BlobPut, Store};

use super::{bench_schema, close, open_baseline, open_log, place, rate, BenchConfig, Report, Row};
use crate::progress::Progress;

/// The blob sizes the bench puts and gets, with their row labels.
pub(super) const BLOB_SIZES: [(usize, &str); 4] = [
    (4 * 1024, "4 KiB"),
    (64 * 1024, "64 KiB"),
    (1024 * 1024, "1 MiB"),
    (16 * 1024 * 1024, "16 MiB"),
];

/// The most bytes the blob puts of one size write into each store: enough
/// calls to time (never fewer than 10), without filling the disk at the
/// largest size.
const BLOB_BYTES_PER_SIZE: usize = 512 * 1024 * 1024;

/// Puts blobs of `size` bytes (distinct contents) for `budget`; returns
/// the rate and the ids.
fn blob_puts(
    store: &dyn Store,
    size: usize,
    budget: Duration,
) -> anyhow::Result<(f64, Vec<String>)> {
    let bytes: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    let mut ids = Vec::new();
    let most = (BLOB_BYTES_PER_SIZE / size).clamp(10, 100_000) as u64;
    let put = rate(budget, most, |i| {
        let mut data = bytes.clone();
        data[0] = i as u8; // distinct content, so each put stores its bytes
        data[1] = (i >> 8) as u8;
        let meta = store
            .blobs()
            .put(&mut Cursor::new(data), BlobPut::default())?;
        ids.push(meta.id);
        Ok(())
    })?;
    Ok((put, ids))
}

/// Gets of `ids` in turn, each read to its end, for `budget`; returns how
/// many and the time taken.
fn blob_gets(
    store: &dyn Store,
    ids: &[String],
    budget: Duration,
) -> anyhow::Result<(u64, Duration)> {
    let started = Instant::now();
    let mut n = 0u64;
    while n < 10 || started.elapsed() < budget {
        let id = &ids[n as usize % ids.len()];
        let (_, mut reader) = store
            .blobs()
            .get(id)?
            .ok_or_else(|| anyhow!("blob {id} vanished during the benchmark"))?;
        std::io::copy(&mut reader, &mut std::io::sink()).context("reading a blob")?;
        n += 1;
    }
    Ok((n, started.elapsed()))
}

/// Blob puts, then gets, of `size` bytes on both drivers: the gets in eight
/// alternating slices, so a moment of load on the shared machine slows both
/// alike. Returns the log engine's and the other driver's put and get rates.
fn blob_rates(
    log: &dyn Store,
    other: &dyn Store,
    size: usize,
    budget: Duration,
) -> anyhow::Result<[(f64, f64); 2]> {
    let (log_put, log_ids) = blob_puts(log, size, budget)?;
    let (other_put, other_ids) = blob_puts(other, size, budget)?;
    let slice = budget / 8;
    let mut totals = [(0u64, Duration::ZERO); 2];
    for _ in 0..8 {
        for (total, (store, ids)) in totals
            .iter_mut()
            .zip([(log, &log_ids), (other, &other_ids)])
        {
            let (n, took) = blob_gets(store, ids, slice)?;
            *total = (total.0 + n, total.1 + took);
        }
    }
    let get = |(n, took): (u64, Duration)| n as f64 / took.as_secs_f64();
    Ok([(log_put, get(totals[0])), (other_put, get(totals[1]))])
}

/// Blob puts and gets of every size in [`BLOB_SIZES`] on both drivers, as
/// rows.
pub(super) fn blob_rows(
    log: &dyn Store,
    other: &dyn Store,
    budget: Duration,
    progress: &Progress,
    row: &mut dyn FnMut(String, f64, f64),
) -> anyhow::Result<()> {
    for (size, label) in BLOB_SIZES {
        progress.step(&format!("blobs of {label}"));
        let [(lp, lg), (sp, sg)] = blob_rates(log, other, size, budget)?;
        row(format!("blob put, {label}"), lp, sp);
        row(format!("blob get, {label}"), lg, sg);
    }
    Ok(())
}

/// The blob rows alone (`--only blobs`), on two stores that hold nothing
/// else.
pub(super) fn run_blobs(
    config: &BenchConfig,
    progress: &Progress,
    tmp: &place::Place,
    warnings: Vec<String>,
) -> anyhow::Result<Report> {
    let budget = Duration::from_secs_f64(config.seconds_per_op);
    let d = config.durability;
    progress.start(BLOB_SIZES.len() as u64);
    let schema = bench_schema();
    let log = open_log(&tmp.path().join("log-engine"), d)?;
    let other = open_baseline(&config.baseline, &tmp.path().join("sqlite"), &schema, d)?;
    let mut rows = Vec::new();
    blob_rows(
        &log,
        other.as_ref(),
        budget,
        progress,
        &mut |operation, l, o| {
            rows.push(Row {
                operation,
                log_ops_per_sec: l,
                driver_ops_per_sec: o,
                ratio: l / o,
            });
        },
    )?;
    close(config, log, other, &schema, progress)?;
    Ok(Report::new(
        config,
        tmp,
        warnings,
        0,
        "blobs only: distinct contents of each size",
        rows,
    ))
}
