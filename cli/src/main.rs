//! `logstore`: the command-line tool of the logstore engine.
//!
//! Exit codes: 0 success, 1 a problem found or an operation refused, 2 a
//! usage error. Errors are one line on stderr.

mod args;
mod bench;
mod commands;
mod listings;
mod pg;
mod progress;
mod store;
mod transfer;

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::error::ErrorKind;
use clap::{Parser, Subcommand, ValueEnum};
use logstore::Durability;

use crate::commands::Outcome;
use crate::progress::Progress;
use crate::store::Access;

#[derive(Parser)]
#[command(
    name = "logstore",
    version,
    about = "Benchmark, inspect, verify, repair, back up and migrate logstore stores",
    after_help = "A STORE is a directory (a log store), a file ending in .db (an SQLite store in the\nreference layout, with its blobs in blobs/ beside it or in --blob-dir), or a\npostgres:// (or postgresql://) URL (a PostgreSQL store, in the schema `logstore`\nunless the URL's options=-csearch_path%3DNAME names another).\n\nExit codes: 0 success, 1 a problem found or an operation refused, 2 a usage error."
)]
struct Cli {
    /// Where an SQLite store's blob files live (default: blobs/ beside the .db file).
    #[arg(long, global = true)]
    blob_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum DurabilityArg {
    /// Every write is on stable storage before it returns (SQLite: synchronous=FULL).
    Sync,
    /// Every write is handed to the OS before it returns (SQLite: synchronous=NORMAL).
    Flush,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DriverArg {
    /// The SQLite driver, in a temporary folder.
    Sqlite,
    /// The PostgreSQL driver, on the server `--url` names.
    Postgres,
}

#[derive(Subcommand)]
enum Command {
    /// Compare the log engine with the SQLite driver, operation by operation, in one run.
    #[command(
        after_help = "Example:\n  logstore bench --docs 20000 --durability flush --json > bench.json"
    )]
    Bench {
        /// Documents loaded before the operations are timed.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
        docs: u64,
        /// The durability both drivers run at.
        #[arg(long, value_enum, default_value = "sync")]
        durability: DurabilityArg,
        /// The most writer threads of the concurrent puts, which run with 1, 4 and this
        /// many threads, never more than this.
        #[arg(long, default_value_t = 8, value_parser = args::at_least_one)]
        threads: usize,
        /// Seconds each operation is timed for, per driver.
        #[arg(long, default_value_t = 1.0, value_parser = args::seconds)]
        seconds: f64,
        /// The directory the benchmark's stores go in (in a new folder there, removed at
        /// the end); default: the system's temporary folder. Put it on the disk you mean
        /// to measure: on tmpfs, Sync figures are meaningless.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Print the figures as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Print the tables as Markdown, each between `<!-- bench:NAME -->` and
        /// `<!-- /bench:NAME -->` lines (what scripts/bench-docs.sh puts in the docs).
        #[arg(long, conflicts_with = "json")]
        markdown: bool,
        /// The driver the log engine is compared with.
        #[arg(long, value_enum, default_value = "sqlite")]
        driver: DriverArg,
        /// The PostgreSQL server for `--driver postgres` (a schema of its own is made and dropped).
        #[arg(long, required_if_eq("driver", "postgres"), value_parser = args::pg_url)]
        url: Option<String>,
        /// Run only this part of the bench (its rows alone; no documents are loaded).
        #[arg(long, value_enum)]
        only: Option<bench::Part>,
        /// Run the growth benchmark instead, at these document counts (comma-separated;
        /// default 10000,100000,1000000,10000000): put, get and query rates, open time,
        /// memory and disk at each. The largest count needs about 5 GiB of memory and
        /// 15 GiB of disk.
        #[arg(
            long,
            value_name = "COUNTS",
            num_args = 0..=1,
            require_equals = true,
            value_delimiter = ',',
            default_missing_value = "10000,100000,1000000,10000000",
            value_parser = clap::value_parser!(u64).range(1..),
            conflicts_with_all = ["only", "driver", "durability", "threads", "docs"]
        )]
        scale: Option<Vec<u64>>,
    },
    /// Opens a store and prints the open's time and memory as JSON (run by `bench --scale`).
    #[command(hide = true)]
    BenchOpen { store: PathBuf },
    /// Segments, live and dead bytes, space amplification, collections, blobs, leases.
    #[command(after_help = "Example:\n  logstore stats .pattern-data/log --json")]
    Stats {
        store: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check every record checksum, every blob hash, and the index snapshot against the log (log stores).
    #[command(after_help = "Example:\n  logstore verify .pattern-data/log || echo damaged")]
    Verify { store: PathBuf },
    /// Salvage a damaged log store into a clean one, keeping every record that verifies.
    #[command(
        after_help = "Example:\n  logstore repair .pattern-data/log --out .pattern-data/log-fixed"
    )]
    Repair {
        store: PathBuf,
        /// Where to write the repaired store, a directory (default: STORE.repaired beside it).
        #[arg(long, value_parser = args::directory)]
        out: Option<PathBuf>,
        /// Repair the store where it is (the damaged originals are kept in STORE/quarantine/).
        #[arg(long, conflicts_with = "out")]
        in_place: bool,
    },
    /// Rewrite the live records of a log store and drop the rest.
    #[command(after_help = "Example:\n  logstore compact .pattern-data/log")]
    Compact { store: PathBuf },
    /// Write every collection, document, blob and lease as JSON Lines on stdout.
    #[command(after_help = "Example:\n  logstore dump .pattern-data/store.db > backup.jsonl")]
    Dump { store: PathBuf },
    /// Copy a log store, even one in use, into a new directory; the copy is verified.
    ///
    /// The copy is the store as it stood at one moment, while programs may go on
    /// writing to it; it is opened and verified before the command returns.
    #[command(after_help = "Example:\n  logstore backup .pattern-data/log backups/log-monday")]
    Backup {
        store: PathBuf,
        /// The new directory (missing, or empty) to copy into.
        dest: PathBuf,
    },
    /// Read JSON Lines from stdin into a new store.
    ///
    /// The store is built in TARGET.partial beside it and moved into place
    /// once complete; an interrupted run leaves nothing at TARGET, and the
    /// next run removes the leftover.
    #[command(after_help = "Example:\n  logstore load .pattern-data/log < backup.jsonl")]
    Load { store: PathBuf },
    /// Copy a whole store between drivers (SQLite to log, log to SQLite, log to log) into a new target.
    ///
    /// The copy is built in TO.partial beside TO (for an SQLite target also
    /// its blob folder's .partial) and moved into place once complete,
    /// verified and synced; an interrupted run leaves nothing at TO, and the
    /// next run removes the leftover. A PostgreSQL target is built in the
    /// schema SCHEMA_partial and renamed in one transaction.
    #[command(
        after_help = "Example:\n  logstore migrate .pattern-data/store.db .pattern-data/log"
    )]
    Migrate { from: PathBuf, to: PathBuf },
    /// Print a document as JSON (exit 1, "not found: COLLECTION/ID" on stderr, if there is none).
    #[command(after_help = "Example:\n  logstore get .pattern-data/log msgs m1")]
    Get {
        store: PathBuf,
        #[arg(value_parser = args::collection)]
        collection: String,
        #[arg(value_parser = args::doc_id)]
        id: String,
    },
    /// Write a document from JSON (an upsert, or a compare-and-swap with --expected-version).
    #[command(
        after_help = "Example:\n  logstore put .pattern-data/log msgs m1 '{\"owner\":\"a\"}'"
    )]
    Put {
        store: PathBuf,
        #[arg(value_parser = args::collection)]
        collection: String,
        #[arg(value_parser = args::doc_id)]
        id: String,
        /// The document, a JSON object.
        #[arg(value_parser = args::document)]
        json: serde_json::Value,
        /// Only write if the row is at exactly this version; otherwise exit 1 with
        /// "version conflict (current N)".
        #[arg(long)]
        expected_version: Option<u64>,
    },
    /// Delete a document (exit 1, "not found: COLLECTION/ID" on stderr, if there was none).
    #[command(after_help = "Example:\n  logstore delete .pattern-data/log msgs m1")]
    Delete {
        store: PathBuf,
        #[arg(value_parser = args::collection)]
        collection: String,
        #[arg(value_parser = args::doc_id)]
        id: String,
    },
    /// Query a collection; one JSON document per line.
    #[command(
        after_help = "Example:\n  logstore query .pattern-data/log msgs --where owner=a --order-by rank --desc --limit 20"
    )]
    Query {
        store: PathBuf,
        #[arg(value_parser = args::collection)]
        collection: String,
        #[command(flatten)]
        query: QueryArgs,
    },
    /// Count matching documents.
    #[command(after_help = "Example:\n  logstore count .pattern-data/log msgs --where owner=a")]
    Count {
        store: PathBuf,
        #[arg(value_parser = args::collection)]
        collection: String,
        /// An equality condition on a declared index field; repeat for more.
        #[arg(long = "where", value_name = "FIELD=VALUE", value_parser = args::condition)]
        conditions: Vec<args::Condition>,
    },
    /// Declare a collection's index fields (creating it if missing); documents already
    /// stored are indexed too. An index is never dropped.
    #[command(after_help = "Example:\n  logstore ensure .pattern-data/log msgs owner meta.kind")]
    Ensure {
        store: PathBuf,
        #[arg(value_parser = args::collection)]
        collection: String,
        /// Index fields (dotted paths) to add to those already declared.
        #[arg(value_parser = args::index_field, num_args = 0..=logstore::MAX_INDEXES)]
        fields: Vec<String>,
    },
    /// List the collections with their document counts and index fields.
    #[command(after_help = "Example:\n  logstore collections .pattern-data/log")]
    Collections {
        store: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List blobs, newest first: id, size, mime type, owner, creation time.
    #[command(after_help = "Example:\n  logstore blobs .pattern-data/log --owner u1")]
    Blobs {
        store: PathBuf,
        /// Only this owner's blobs.
        #[arg(long, value_name = "OWNER", value_parser = args::owner)]
        owner: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100, value_parser = args::at_least_one)]
        limit: usize,
        /// Skip this many first.
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List every lease: key, owner, expiry (expired ones marked).
    #[command(after_help = "Example:\n  logstore leases .pattern-data/log")]
    Leases {
        store: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct QueryArgs {
    /// An equality condition on a declared index field; repeat for more.
    #[arg(long = "where", value_name = "FIELD=VALUE", value_parser = args::condition)]
    conditions: Vec<args::Condition>,
    /// created_at (default), updated_at, id, or a declared index field (createdAt and
    /// updatedAt are taken too).
    #[arg(long, value_parser = args::order_by)]
    order_by: Option<String>,
    /// Largest first.
    #[arg(long)]
    desc: bool,
    #[arg(long, default_value_t = 100)]
    limit: usize,
    #[arg(long, default_value_t = 0)]
    offset: usize,
}

fn run(cli: Cli) -> Result<Outcome> {
    let blob_dir = cli.blob_dir.as_deref();
    let inspect = |path: &Path| store::open(path, blob_dir, Access::Inspect);
    let write = |path: &Path| store::open(path, blob_dir, Access::Write);
    match cli.command {
        Command::Bench {
            docs,
            durability,
            threads,
            seconds,
            dir,
            json,
            markdown,
            driver,
            url,
            only,
            scale,
        } => {
            if blob_dir.is_some() {
                args::usage(
                    ErrorKind::ArgumentConflict,
                    "--blob-dir names an SQLite store's blob folder; bench makes its own stores (see --dir)",
                );
            }
            if url.is_some() && driver != DriverArg::Postgres {
                args::usage(
                    ErrorKind::ArgumentConflict,
                    "--url is for --driver postgres",
                );
            }
            if let Some(counts) = scale {
                return run_scale(&counts, dir.as_deref(), seconds, json, markdown);
            }
            let config = bench::BenchConfig {
                docs,
                dir,
                durability: match durability {
                    DurabilityArg::Sync => Durability::Sync,
                    DurabilityArg::Flush => Durability::Flush,
                },
                threads,
                seconds_per_op: seconds,
                baseline: match (driver, url) {
                    (DriverArg::Postgres, Some(url)) => bench::Baseline::Postgres { url },
                    _ => bench::Baseline::Sqlite,
                },
                only,
            };
            let format = match (json, markdown) {
                (true, _) => bench::Format::Json,
                (_, true) => bench::Format::Markdown,
                _ => bench::Format::Table,
            };
            run_bench(&config, format)
        }
        Command::BenchOpen { store: path } => {
            store::existing_log_store(&path)?;
            bench::scale::bench_store(&path)?;
            Ok(Outcome {
                stdout: serde_json::to_string(&bench::scale::open_probe(&path)?)? + "\n",
                problem: false,
            })
        }
        Command::Stats { store, json } => commands::stats(&inspect(&store)?, json),
        Command::Verify { store } => spinning("verifying", || commands::verify(&inspect(&store)?)),
        Command::Repair {
            store,
            out,
            in_place,
        } => spinning("salvaging", || {
            commands::repair(&store, out.as_deref(), in_place)
        }),
        Command::Compact { store } => spinning("compacting", || commands::compact(&write(&store)?)),
        Command::Dump { store } => dump(&inspect(&store)?),
        Command::Backup { store, dest } => spinning("backing up", || {
            commands::backup(&inspect(&store)?, &store, &dest)
        }),
        Command::Load { store } => load(&store, blob_dir),
        Command::Migrate { from, to } => migrate(&from, &to, blob_dir),
        Command::Get {
            store,
            collection,
            id,
        } => commands::get(inspect(&store)?.transfer(), &collection, &id),
        Command::Put {
            store,
            collection,
            id,
            json,
            expected_version,
        } => commands::put(
            store::open(&store, blob_dir, Access::Create)?.transfer(),
            &collection,
            &id,
            json,
            expected_version,
        ),
        Command::Delete {
            store,
            collection,
            id,
        } => commands::delete(write(&store)?.transfer(), &collection, &id),
        Command::Query {
            store,
            collection,
            query,
        } => {
            let q = commands::query_of(
                &collection,
                &query.conditions,
                query.order_by.as_deref(),
                query.desc,
                query.limit,
                query.offset,
            );
            commands::query(inspect(&store)?.transfer(), &q, &store)
        }
        Command::Count {
            store,
            collection,
            conditions,
        } => {
            let q = commands::query_of(&collection, &conditions, None, false, usize::MAX, 0);
            commands::count(inspect(&store)?.transfer(), &q, &store)
        }
        Command::Ensure {
            store,
            collection,
            fields,
        } => listings::ensure(
            store::open(&store, blob_dir, Access::Create)?.transfer(),
            &collection,
            &fields,
        ),
        Command::Collections { store, json } => {
            listings::collections(inspect(&store)?.transfer(), json)
        }
        Command::Blobs {
            store,
            owner,
            limit,
            offset,
            json,
        } => listings::blobs(inspect(&store)?.transfer(), owner, limit, offset, json),
        Command::Leases { store, json } => listings::leases(inspect(&store)?.transfer(), json),
    }
}

/// Runs `f` with a spinner named `what` on stderr.
fn spinning(what: &str, f: impl FnOnce() -> Result<Outcome>) -> Result<Outcome> {
    let spinner = Progress::spinner(what);
    let outcome = f();
    spinner.finish();
    outcome
}

fn run_scale(
    counts: &[u64],
    dir: Option<&Path>,
    seconds: f64,
    json: bool,
    markdown: bool,
) -> Result<Outcome> {
    let budget = std::time::Duration::from_secs_f64(seconds);
    let rows = bench::scale::run(counts, dir, budget, &Progress::lines("bench"))?;
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let stdout = if json {
        serde_json::to_string_pretty(&rows)? + "\n"
    } else if markdown {
        bench::scale::markdown(&rows, cores, budget)
    } else {
        bench::scale::table(&rows, budget)
    };
    Ok(Outcome {
        stdout,
        problem: false,
    })
}

fn run_bench(config: &bench::BenchConfig, format: bench::Format) -> Result<Outcome> {
    let report = bench::run(config, &Progress::lines("bench"))?;
    let stdout = match format {
        bench::Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        bench::Format::Markdown => bench::markdown(&report, config),
        bench::Format::Table => bench::table(&report),
    };
    Ok(Outcome {
        stdout,
        problem: false,
    })
}

fn dump(src: &store::Opened) -> Result<Outcome> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    transfer::dump(src.transfer(), &mut out, &Progress::new())?;
    out.flush()?;
    Ok(Outcome {
        stdout: String::new(),
        problem: false,
    })
}

fn load(to: &Path, blob_dir: Option<&Path>) -> Result<Outcome> {
    let mut input = BufReader::new(std::io::stdin().lock());
    let place = store::new_place(to, blob_dir, "load")?;
    let n = build_new(place, to, |dst| {
        transfer::load(dst, &mut input, &Progress::new())
    })?;
    eprintln!("loaded {n} items");
    Ok(Outcome {
        stdout: String::new(),
        problem: false,
    })
}

/// Builds a new store at `place` (named `to` on the command line) with
/// `fill`: in a staging area beside it, moved into place once complete,
/// verified and synced. On an error nothing is left at `to`.
fn build_new<T>(
    place: logstore::Place,
    to: &Path,
    fill: impl FnOnce(&dyn logstore::Transfer) -> Result<T>,
) -> Result<T> {
    let shown = match crate::pg::url_of(to) {
        Some(url) => crate::pg::redacted(url),
        None => to.display().to_string(),
    };
    let made = match &place {
        logstore::Place::Sqlite { .. } => format!("created a new SQLite store at {shown}"),
        logstore::Place::Postgres { .. } => format!("created a new PostgreSQL store at {shown}"),
        logstore::Place::Log(_) => format!("created a new store in {shown}"),
    };
    let nothing = || format!("nothing was made at {shown}");
    // A retry that finishes an interrupted run's move into place refuses
    // with the store in place: then something was made.
    let absent = std::fs::symlink_metadata(to).is_err();
    let staging = match logstore::Staging::begin(place, store::options()) {
        Ok(staging) => staging,
        Err(e) if absent && std::fs::symlink_metadata(to).is_ok() => return Err(e.into()),
        Err(e) => return Err(e).with_context(nothing),
    };
    for leftover in staging.leftovers() {
        eprintln!("{leftover}");
    }
    let filled = fill(staging.store()?).with_context(nothing)?;
    staging.finish().with_context(nothing)?;
    eprintln!("{made}");
    Ok(filled)
}

/// Copies `from` into a new store at `to`: built beside it (a staging
/// schema for PostgreSQL) and moved into place whole, a log store verified
/// first.
fn migrate(from: &Path, to: &Path, blob_dir: Option<&Path>) -> Result<Outcome> {
    // Both checks read only, before the source is opened.
    let place = store::new_place(to, blob_dir, "migrate")?;
    if crate::pg::url_of(from).is_none() {
        logstore::refuse_inside(&place, &store::place_of(from, blob_dir))?;
    }
    let src = store::open(from, blob_dir, Access::Inspect)?;
    let n = build_new(place, to, |dst| {
        transfer::migrate(src.transfer(), dst, &Progress::new())
    })?;
    let mut stdout = format!(
        "copied {n} items from {} to {}\n",
        from.display(),
        to.display()
    );
    if crate::pg::url_of(to).is_none() && !store::is_sqlite(to) {
        stdout += "the target verifies\n";
    }
    Ok(Outcome {
        stdout,
        problem: false,
    })
}

/// The error as one line: each context, then each cause whose text the
/// line does not already hold (the store's errors already name their
/// operating-system cause).
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line += ": ";
        }
        line += &text;
    }
    line
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(outcome) => {
            print!("{}", outcome.stdout);
            if outcome.problem {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("logstore: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}
