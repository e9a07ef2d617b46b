//! `logstore`: the command-line tool of the logstore engine.

mod bench;
mod progress;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use logstore::Durability;

#[derive(Parser)]
#[command(
    name = "logstore",
    version,
    about = "Benchmark, inspect, verify, repair and migrate logstore stores"
)]
struct Cli {
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
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench {
            docs,
            durability,
            threads,
            seconds,
            json,
        } => {
            let config = bench::BenchConfig {
                docs,
                durability: match durability {
                    DurabilityArg::Sync => Durability::Sync,
                    DurabilityArg::Flush => Durability::Flush,
                },
                threads,
                seconds_per_op: seconds,
            };
            bench::run(&config, &progress::Progress::new()).map(|report| {
                if json {
                    match serde_json::to_string_pretty(&report) {
                        Ok(text) => println!("{text}"),
                        Err(e) => eprintln!("logstore: {e}"),
                    }
                } else {
                    bench::print_table(&report);
                }
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("logstore: {e}");
            ExitCode::from(1)
        }
    }
}
