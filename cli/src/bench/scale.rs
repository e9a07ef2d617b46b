//! `logstore bench --scale`: the workload at growing document counts.
//!
//! For each count the run builds a store (`Flush`, the workload's chat
//! turns, two indexes), then measures in this order:
//!
//! 1. put (new) and get and one-filter query rates on the loaded store;
//! 2. a quarter of the documents overwritten (upserts), so the log holds
//!    dead records, then the disk before compaction, the compaction's time
//!    and the disk after it (all regular files of the store directory, the
//!    index snapshot written at close included);
//! 3. two opens, each in a fresh process (`logstore bench-open`, hidden), so
//!    one count's memory does not hide in the next one's figures: one from
//!    the snapshot and one by replay (the snapshot removed first). The
//!    process's anonymous resident memory before and after the open gives
//!    what the open store holds; the page cache is warm (the files were
//!    just written).
//!
//! "Live data" is what the user stored: the ids and JSON text of the live
//! documents. The SQLite driver (synchronous=NORMAL, WAL) runs the same
//! rates beside it at the counts up to [`SQLITE_MOST`]: loading it one put
//! at a time takes minutes beyond that.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use logstore::{Durability, LogStore, SnapshotUse, SqliteStore, Store};
use logstore_workload::{self as workload, Op, Rng};
use serde::{Deserialize, Serialize};

use super::{options, place, rate};
use crate::progress::Progress;

/// The largest count the SQLite driver is measured at.
pub const SQLITE_MOST: u64 = 1_000_000;

/// New documents each put figure times: the same at every count from
/// 10,000 up, twice the count below.
const PUTS: u64 = 20_000;

fn puts(n: u64) -> u64 {
    PUTS.min(2 * n)
}

/// The goals the largest count is held to (issue: "at 10M documents").
const OPEN_GOAL_SECONDS: f64 = 3.0;
const INDEX_GOAL_BYTES: f64 = 70.0;
const RATE_GOAL: f64 = 1.5;
const DISK_GOAL: f64 = 1.2;

/// Put, get and one-filter query rates of one store, in calls per second.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rates {
    pub put: f64,
    pub get: f64,
    pub query: f64,
}

/// What one open of a store cost, as the probe process prints it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Open {
    pub seconds: f64,
    /// Anonymous resident memory the open added (Linux; `None` elsewhere).
    pub resident_bytes: Option<u64>,
    /// `Stats::index_bytes_estimate`.
    pub index_bytes: u64,
}

/// The figures at one document count.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleRow {
    pub documents: u64,
    pub log: Rates,
    /// The SQLite driver's rates, at counts up to [`SQLITE_MOST`].
    pub sqlite: Option<Rates>,
    pub from_snapshot: Open,
    pub by_replay: Open,
    /// Ids and distinct index values: strings any index must hold.
    pub string_bytes: u64,
    /// Ids and JSON text of the live documents.
    pub live_bytes: u64,
    pub disk_before_compaction: u64,
    pub disk_after_compaction: u64,
    /// Of `disk_after_compaction`, the index snapshot written at close.
    pub snapshot_bytes: u64,
    pub compaction_seconds: f64,
}

/// Runs every count in `counts`, smallest first and each once, in a folder
/// made in `parent`.
///
/// # Errors
/// A count whose per-document figures cannot be held in memory (before
/// anything is made), or a failure of the run.
pub fn run(
    counts: &[u64],
    parent: Option<&Path>,
    budget: Duration,
    progress: &Progress,
) -> anyhow::Result<Vec<ScaleRow>> {
    // The goals compare the largest count with the smallest, and the
    // charts draw the rows in order.
    let mut counts = counts.to_vec();
    counts.sort_unstable();
    counts.dedup();
    let counts = &counts[..];
    for &n in counts {
        sizes_for(n)?;
    }
    let place = place::Place::make(parent)?;
    eprintln!("logstore bench --scale: {}", place.describe());
    let with_sqlite = counts.iter().filter(|&&n| n <= SQLITE_MOST).count() as u64;
    progress.start(counts.len() as u64 * 5 + with_sqlite);
    let mut rows = Vec::new();
    for &n in counts {
        let dir = place.path().join(format!("log-{n}"));
        rows.push(one_count(n, &dir, budget, progress)?);
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        if n <= SQLITE_MOST {
            progress.step(&format!("{n} documents: the SQLite driver"));
            let dir = place.path().join(format!("sqlite-{n}"));
            std::fs::create_dir(&dir)?;
            let sqlite = SqliteStore::open(
                dir.join("store.db"),
                dir.join("blobs"),
                options(Durability::Flush),
            )?;
            workload::load(&sqlite, n)?;
            let rates = rates(&sqlite, n, budget)?;
            drop(sqlite);
            std::fs::remove_dir_all(&dir)?;
            if let Some(row) = rows.last_mut() {
                row.sqlite = Some(rates);
            }
        }
    }
    progress.finish();
    Ok(rows)
}

fn one_count(
    n: u64,
    dir: &Path,
    budget: Duration,
    progress: &Progress,
) -> anyhow::Result<ScaleRow> {
    progress.step(&format!("{n} documents: loading"));
    let store = LogStore::open(dir, options(Durability::Flush))?;
    store
        .docs()
        .ensure_collection(workload::COLLECTION, &workload::INDEXES)?;
    // Each document's id and JSON length, by number, to sum the live data.
    let mut sizes = sizes_for(n)?;
    let mut rng = Rng::new(42);
    for i in 0..n {
        sizes.push(put(&store, &mut rng, i)?);
    }
    progress.step(&format!("{n} documents: put, get and query rates"));
    let log = rates(&store, n, budget)?;
    progress.step(&format!("{n} documents: overwriting a quarter, compacting"));
    let mut rng = Rng::new(44);
    for _ in 0..n / 4 {
        let i = rng.below(n);
        sizes[i as usize] = put(&store, &mut rng, i)?;
    }
    let disk_before_compaction = disk_bytes(dir)?;
    let compaction = store.compact()?;
    store.close()?;
    drop(store);
    let disk_after_compaction = disk_bytes(dir)?;
    let snapshot_bytes = std::fs::metadata(dir.join("SNAPSHOT"))?.len();

    progress.step(&format!("{n} documents: open from the snapshot"));
    let from_snapshot = probe(dir)?;
    progress.step(&format!("{n} documents: open by replay"));
    std::fs::remove_file(dir.join("SNAPSHOT")).context("removing the snapshot")?;
    let by_replay = probe(dir)?;

    let ids: u64 = (0..n).map(|i| workload::id(i).len() as u64).sum();
    let values = workload::CONVERSATIONS.min(n) * workload::conversation(0).len() as u64
        + workload::AUTHORS.min(n) * workload::author(0).len() as u64;
    Ok(ScaleRow {
        documents: n,
        log,
        sqlite: None,
        from_snapshot,
        by_replay,
        string_bytes: ids + values,
        live_bytes: sizes.iter().map(|&s| u64::from(s)).sum(),
        disk_before_compaction,
        disk_after_compaction,
        snapshot_bytes,
        compaction_seconds: compaction.duration.as_secs_f64(),
    })
}

/// Room for `n` documents' sizes, or an error naming the count when the
/// memory cannot be had.
fn sizes_for(n: u64) -> anyhow::Result<Vec<u32>> {
    let mut sizes = Vec::new();
    usize::try_from(n)
        .ok()
        .and_then(|n| sizes.try_reserve_exact(n).ok())
        .with_context(|| {
            format!("--scale {n}: too many documents to hold each one's size in memory")
        })?;
    Ok(sizes)
}

/// Puts turn `i`; returns the length of its id and JSON text.
fn put(store: &dyn Store, rng: &mut Rng, i: u64) -> anyhow::Result<u32> {
    let doc = workload::turn(rng, i);
    let id = workload::id(i);
    let len = id.len() + serde_json::to_string(&doc)?.len();
    store.docs().put(workload::COLLECTION, &id, doc, None)?;
    Ok(u32::try_from(len)?)
}

/// Puts [`puts`]`(n)` new documents (numbers `n..`), timed, and deletes them
/// again, untimed, so the store holds `n` documents; then gets and
/// one-filter queries for `budget` each.
fn rates(store: &dyn Store, n: u64, budget: Duration) -> anyhow::Result<Rates> {
    let mut rng = Rng::new(43);
    let started = Instant::now();
    let puts = puts(n);
    for i in n..n + puts {
        let doc = workload::turn(&mut rng, i);
        store
            .docs()
            .put(workload::COLLECTION, &workload::id(i), doc, None)?;
    }
    let put = puts as f64 / started.elapsed().as_secs_f64();
    for i in n..n + puts {
        store
            .docs()
            .delete(workload::COLLECTION, &workload::id(i))?;
    }
    let read = |op: Op| {
        let mut rng = Rng::new(9);
        rate(budget, u64::MAX, |i| Ok(op.run(store, &mut rng, i, n)?))
    };
    Ok(Rates {
        put,
        get: read(Op::Get)?,
        query: read(Op::QueryOneFilter)?,
    })
}

/// Bytes of the regular files in `dir` and its folders.
fn disk_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            total += disk_bytes(&entry.path())?;
        } else if kind.is_file() {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

/// Opens the store at `dir` in a fresh process of this program
/// (`logstore bench-open DIR`) and reads what the open cost.
fn probe(dir: &Path) -> anyhow::Result<Open> {
    let exe = std::env::current_exe().context("finding this program to run its open probe")?;
    let out = std::process::Command::new(exe)
        .arg("bench-open")
        .arg(dir)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running the open probe")?;
    if !out.status.success() {
        bail!("the open probe of {} failed: {}", dir.display(), out.status);
    }
    serde_json::from_slice(&out.stdout).context("reading the open probe's answer")
}

/// Refuses `dir` unless it is a store a scale run built: a directory, not
/// a link, named `log-N` in a `logstore-bench-*` folder. The probe opens
/// as a writer, which writes the index snapshot at close (and cuts a torn
/// tail), so it keeps away from every other store.
///
/// # Errors
/// Any other path, named in the error.
pub fn bench_store(dir: &Path) -> anyhow::Result<()> {
    let named = |path: Option<&Path>, prefix: &str| {
        path.and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(prefix))
    };
    let real_dir = std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_dir());
    if real_dir && named(Some(dir), "log-") && named(dir.parent(), "logstore-bench-") {
        return Ok(());
    }
    bail!(
        "{} is not a store `logstore bench --scale` made (a log-N directory in a \
         logstore-bench-* folder): the open probe opens as a writer, so it opens no other",
        dir.display()
    )
}

/// The probe's side: opens `dir` (`Flush`, as the run built it), checks
/// the snapshot was used exactly when one exists, and returns the cost.
///
/// # Errors
/// An open that fails, or a snapshot that exists but was not used.
pub fn open_probe(dir: &Path) -> anyhow::Result<Open> {
    let had_snapshot = dir.join("SNAPSHOT").exists();
    let before = resident_anon();
    let started = Instant::now();
    let store = LogStore::open(dir, options(Durability::Flush))?;
    let seconds = started.elapsed().as_secs_f64();
    let after = resident_anon();
    let used = &store.recovery_report().snapshot;
    if had_snapshot && *used != SnapshotUse::Loaded {
        bail!("the snapshot was not used: {used:?}");
    }
    let index_bytes = store.stats()?.index_bytes_estimate;
    store.close()?;
    Ok(Open {
        seconds,
        resident_bytes: before.zip(after).map(|(b, a)| a.saturating_sub(b)),
        index_bytes,
    })
}

/// This process's anonymous resident memory (`RssAnon` of
/// `/proc/self/status`), in bytes; `None` where there is no such file.
fn resident_anon() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The rows as Markdown: the `scale` block (rates and opens, then memory
/// and disk) with the goals at the largest count below the tables.
pub fn markdown(rows: &[ScaleRow], cores: usize, budget: Duration) -> String {
    let mut out = format!(
        "`logstore bench --scale`: the workload at each count in a new store (`Flush`; \
         put (new) times {PUTS} puts, twice the count below {}, get and query run {} s each); \
         SQLite driver (synchronous=NORMAL, WAL) up to {SQLITE_MOST} documents; {cores} cores.\n\n",
        PUTS / 2,
        budget.as_secs_f64(),
    );
    out += "| documents | put ops/s | get ops/s | query ops/s | SQLite put ops/s | SQLite get ops/s | SQLite query ops/s | open from snapshot | open by replay |\n";
    out += "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
    for r in rows {
        let sqlite = |f: fn(&Rates) -> f64| {
            r.sqlite
                .as_ref()
                .map_or("n/a".into(), |s| format!("{:.0}", f(s)))
        };
        out += &format!(
            "| {} | {:.0} | {:.0} | {:.0} | {} | {} | {} | {} | {} |\n",
            r.documents,
            r.log.put,
            r.log.get,
            r.log.query,
            sqlite(|s| s.put),
            sqlite(|s| s.get),
            sqlite(|s| s.query),
            seconds(r.from_snapshot.seconds),
            seconds(r.by_replay.seconds),
        );
    }
    out += "\n| documents | resident memory | index per document | beyond strings | live data | disk before compaction | disk after compaction | of which snapshot | compaction |\n";
    out += "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
    for r in rows {
        let per_doc = |b: u64| b as f64 / r.documents as f64;
        out += &format!(
            "| {} | {} | {:.1} B | {:.1} B | {} | {} | {} | {} | {} |\n",
            r.documents,
            r.from_snapshot.resident_bytes.map_or("n/a".into(), bytes),
            per_doc(r.from_snapshot.index_bytes),
            per_doc(r.from_snapshot.index_bytes.saturating_sub(r.string_bytes)),
            bytes(r.live_bytes),
            bytes(r.disk_before_compaction),
            bytes(r.disk_after_compaction),
            bytes(r.snapshot_bytes),
            seconds(r.compaction_seconds),
        );
    }
    if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        out += &ceiling(last);
        out += &format!("\n{}", goals(first, last));
    }
    super::print::block("scale", &out)
}

/// The memory ceiling in words: what the largest count's open store holds,
/// and what 100 million documents would at the same cost a document.
fn ceiling(last: &ScaleRow) -> String {
    let Some(resident) = last.from_snapshot.resident_bytes else {
        return String::new();
    };
    let per_doc = resident as f64 / last.documents as f64;
    format!(
        "\nThe index lives in memory: at {} documents the open store holds {} of anonymous \
         resident memory, {per_doc:.0} B a document (ids and index values included). At that \
         cost, 100000000 documents hold {}. Documents stay in the log, read through the page \
         cache, which the kernel reclaims as it needs.\n",
        last.documents,
        bytes(resident),
        bytes(
            u64::try_from(u128::from(resident) * 100_000_000 / u128::from(last.documents))
                .unwrap_or(u64::MAX)
        ),
    )
}

/// The goals at the largest count (`last`), rates against the smallest.
fn goals(first: &ScaleRow, last: &ScaleRow) -> String {
    let n = last.documents;
    let beyond = last
        .from_snapshot
        .index_bytes
        .saturating_sub(last.string_bytes) as f64
        / n as f64;
    let disk = last.disk_after_compaction as f64 / last.live_bytes as f64;
    let log = (last.disk_after_compaction - last.snapshot_bytes) as f64 / last.live_bytes as f64;
    let put = last.log.put / first.log.put;
    let get = last.log.get / first.log.get;
    let met = |ok: bool| if ok { "met" } else { "missed" };
    let mut out =
        format!("| at {n} documents | goal | measured | result |\n| --- | --- | --- | --- |\n");
    let mut goal = |figure: &str, want: String, got: String, ok: bool| {
        out += &format!("| {figure} | {want} | {got} | {} |\n", met(ok));
    };
    let open = last.from_snapshot.seconds;
    goal(
        "open from the snapshot",
        format!("under {OPEN_GOAL_SECONDS} s"),
        seconds(open),
        open < OPEN_GOAL_SECONDS,
    );
    goal(
        "index per document beyond ids and index strings",
        format!("under {INDEX_GOAL_BYTES} B"),
        format!("{beyond:.1} B"),
        beyond < INDEX_GOAL_BYTES,
    );
    let floor = 1.0 / RATE_GOAL;
    let at = first.documents;
    goal(
        "put rate against the rate at the smallest count",
        format!("within {RATE_GOAL}x of {at}"),
        format!("{put:.2}x"),
        put >= floor,
    );
    goal(
        "get rate against the rate at the smallest count",
        format!("within {RATE_GOAL}x of {at}"),
        format!("{get:.2}x"),
        get >= floor,
    );
    goal(
        "disk after compaction over live data",
        format!("under {DISK_GOAL}x"),
        format!("{disk:.2}x"),
        disk < DISK_GOAL,
    );
    goal(
        "the log alone (no snapshot) over live data",
        format!("under {DISK_GOAL}x"),
        format!("{log:.2}x"),
        log < DISK_GOAL,
    );
    out
}

/// Seconds as "12.3 ms" below 10 s, else "12.3 s".
fn seconds(s: f64) -> String {
    if s < 10.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.1} s")
    }
}

/// Bytes in the largest binary unit that keeps the number at least 1.
fn bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// The rows as plain text, for a terminal.
pub fn table(rows: &[ScaleRow], budget: Duration) -> String {
    markdown(
        rows,
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        budget,
    )
    .lines()
    .filter(|l| !l.starts_with("<!--"))
    .collect::<Vec<_>>()
    .join("\n")
        + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: u64, put: f64, open: f64, index: u64) -> ScaleRow {
        let o = Open {
            seconds: open,
            resident_bytes: Some(3 * 1024 * 1024),
            index_bytes: index,
        };
        ScaleRow {
            documents: n,
            log: Rates {
                put,
                get: 100.0,
                query: 10.0,
            },
            sqlite: None,
            from_snapshot: o,
            by_replay: o,
            string_bytes: 13 * n,
            live_bytes: 400 * n,
            disk_before_compaction: 600 * n,
            disk_after_compaction: 450 * n,
            snapshot_bytes: 50 * n,
            compaction_seconds: 0.25,
        }
    }

    #[test]
    fn units_read_as_the_docs_print_them() {
        assert_eq!(seconds(0.0123), "12.3 ms");
        assert_eq!(seconds(12.34), "12.3 s");
        assert_eq!(bytes(900), "900 B");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(bytes(5 * 1024 * 1024 * 1024 + 1024 * 1024 * 512), "5.5 GiB");
    }

    #[test]
    fn the_goals_compare_the_largest_count_with_the_smallest() {
        let md = markdown(
            &[
                row(10, 1000.0, 0.001, 90 * 10),
                row(1000, 500.0, 4.0, 60 * 1000),
            ],
            2,
            Duration::from_millis(250),
        );
        assert!(md.starts_with("<!-- bench:scale -->\n"));
        assert!(md.contains(
            "put (new) times 20000 puts, twice the count below 10000, get and query run 0.25 s each"
        ));
        assert!(md.contains("at 1000 documents the open store holds 3.0 MiB of anonymous resident memory, 3146 B a document"));
        assert!(md.contains("100000000 documents hold 293.0 GiB."));
        assert!(md.contains("| 1000 | 3.0 MiB | 60.0 B | 47.0 B | 390.6 KiB | 585.9 KiB | 439.5 KiB | 48.8 KiB | 250.0 ms |"));
        assert!(md.contains("| open from the snapshot | under 3 s | 4000.0 ms | missed |"));
        assert!(md.contains(
            "| index per document beyond ids and index strings | under 70 B | 47.0 B | met |"
        ));
        assert!(md.contains("| put rate against the rate at the smallest count | within 1.5x of 10 | 0.50x | missed |"));
        assert!(md.contains(
            "| get rate against the rate at the smallest count | within 1.5x of 10 | 1.00x | met |"
        ));
        assert!(md.contains("| disk after compaction over live data | under 1.2x | 1.12x | met |"));
        assert!(md
            .contains("| the log alone (no snapshot) over live data | under 1.2x | 1.00x | met |"));
        assert!(md.contains("| 10 | 1000 | 100 | 10 | n/a | n/a | n/a | 1.0 ms | 1.0 ms |"));
    }
}
