//! `logstore`: the command-line tool of the logstore engine.
//!
//! Exit codes: 0 success, 1 a problem found or an operation refused, 2 a
//! usage error. Errors are one line on stderr.

mod bench;
mod commands;
mod pg;
mod progress;
mod store;
mod transfer;

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
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
    after_help = "A STORE is a directory (a log store) or a file ending in .db (an SQLite store in the\nreference layout, with its blobs in blobs/ beside it or in --blob-dir)."
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
        #[arg(long, default_value_t = 10_000)]
        docs: u64,
        /// The durability both drivers run at.
        #[arg(long, value_enum, default_value = "sync")]
        durability: DurabilityArg,
        /// The largest writer-thread count of the concurrent put test (1 and 4 always run).
        #[arg(long, default_value_t = 8)]
        threads: usize,
        /// Seconds each operation is timed for, per driver.
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
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
        #[arg(long, required_if_eq("driver", "postgres"))]
        url: Option<String>,
        /// Run only this part of the bench (its rows alone; no documents are loaded).
        #[arg(long, value_enum)]
        only: Option<bench::Part>,
    },
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
        /// Where to write the repaired store (default: STORE.repaired beside it).
        #[arg(long)]
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
    /// Read JSON Lines from stdin into an empty store.
    #[command(after_help = "Example:\n  logstore load .pattern-data/log < backup.jsonl")]
    Load { store: PathBuf },
    /// Copy a whole store between drivers (SQLite to log, log to SQLite, log to log) into an empty target.
    #[command(
        after_help = "Example:\n  logstore migrate .pattern-data/store.db .pattern-data/log"
    )]
    Migrate { from: PathBuf, to: PathBuf },
    /// Print a document as JSON.
    #[command(after_help = "Example:\n  logstore get .pattern-data/log msgs m1")]
    Get {
        store: PathBuf,
        collection: String,
        id: String,
    },
    /// Write a document from JSON (an upsert, or a compare-and-swap with --expected-version).
    #[command(
        after_help = "Example:\n  logstore put .pattern-data/log msgs m1 '{\"owner\":\"a\"}'"
    )]
    Put {
        store: PathBuf,
        collection: String,
        id: String,
        /// The document, a JSON object.
        json: String,
        /// Only write if the row is at exactly this version.
        #[arg(long)]
        expected_version: Option<u64>,
    },
    /// Delete a document (exit 1 if there was none).
    #[command(after_help = "Example:\n  logstore delete .pattern-data/log msgs m1")]
    Delete {
        store: PathBuf,
        collection: String,
        id: String,
    },
    /// Query a collection; one JSON document per line.
    #[command(
        after_help = "Example:\n  logstore query .pattern-data/log msgs --where owner=a --order-by rank --desc --limit 20"
    )]
    Query {
        store: PathBuf,
        collection: String,
        #[command(flatten)]
        query: QueryArgs,
    },
    /// Count matching documents.
    #[command(after_help = "Example:\n  logstore count .pattern-data/log msgs --where owner=a")]
    Count {
        store: PathBuf,
        collection: String,
        #[command(flatten)]
        query: QueryArgs,
    },
}

#[derive(clap::Args)]
struct QueryArgs {
    /// An equality condition on a declared index field; repeat for more.
    #[arg(long = "where", value_name = "FIELD=VALUE")]
    conditions: Vec<String>,
    /// createdAt (default), updatedAt, id, or a declared index field.
    #[arg(long)]
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
            json,
            markdown,
            driver,
            url,
            only,
        } => {
            let config = bench::BenchConfig {
                docs,
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
        Command::Load { store } => load(&store::open(&store, blob_dir, Access::Create)?),
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
            &json,
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
            )?;
            commands::query(inspect(&store)?.transfer(), &q)
        }
        Command::Count {
            store,
            collection,
            query,
        } => {
            let q = commands::query_of(&collection, &query.conditions, None, false, usize::MAX, 0)?;
            commands::count(inspect(&store)?.transfer(), &q)
        }
    }
}

/// Runs `f` with a spinner named `what` on stderr.
fn spinning(what: &str, f: impl FnOnce() -> Result<Outcome>) -> Result<Outcome> {
    let spinner = Progress::spinner(what);
    let outcome = f();
    spinner.finish();
    outcome
}

fn run_bench(config: &bench::BenchConfig, format: bench::Format) -> Result<Outcome> {
    let report = bench::run(config, &Progress::new())?;
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

fn load(dst: &store::Opened) -> Result<Outcome> {
    let mut input = BufReader::new(std::io::stdin().lock());
    let n = transfer::load(dst.transfer(), &mut input, &Progress::new())?;
    eprintln!("loaded {n} items");
    Ok(Outcome {
        stdout: String::new(),
        problem: false,
    })
}

/// Copies `from` into the empty store `to`; a log-store target is verified
/// afterwards, and its problems make the outcome a problem.
fn migrate(from: &Path, to: &Path, blob_dir: Option<&Path>) -> Result<Outcome> {
    let src = store::open(from, blob_dir, Access::Inspect)?;
    let dst = store::open(to, blob_dir, Access::Create)?;
    let n = transfer::migrate(src.transfer(), dst.transfer(), &Progress::new())?;
    let mut stdout = format!(
        "copied {n} items from {} to {}\n",
        from.display(),
        to.display()
    );
    if let store::Opened::Log(log) = &dst {
        let report = log.verify()?;
        if !report.is_clean() {
            for p in &report.problems {
                stdout += &format!("{p}\n");
            }
            return Ok(Outcome {
                stdout,
                problem: true,
            });
        }
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
