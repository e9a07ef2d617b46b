//! `logstore-peers`: logstore against native_db, redb and fjall on the
//! benchmark workload, at equal durability; prints Markdown tables.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use logstore_peers::drivers::Durability;
use logstore_peers::{markdown, run, table, Config};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Durabilities {
    /// Durable commits only.
    Sync,
    /// Commits handed to the OS only.
    Flush,
    /// Both, one table each.
    Both,
}

/// logstore against the Rust stores a user would pick instead.
#[derive(Debug, Parser)]
#[command(name = "logstore-peers")]
struct Args {
    /// Documents loaded into each store.
    #[arg(long, default_value_t = 10_000)]
    docs: u64,
    /// Seconds each read operation runs on each store.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    #[arg(long, value_enum, default_value_t = Durabilities::Both)]
    durability: Durabilities,
    /// The folder the run's stores go in (the system's temporary folder by
    /// default); it should be on the disk whose figures you want.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print the tables between marker lines of BENCHMARKS.md.
    #[arg(long)]
    markdown: bool,
    /// The name of the marked block `--markdown` prints.
    #[arg(long, default_value = "rust-peers", requires = "markdown")]
    block: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !(args.seconds.is_finite() && args.seconds > 0.0) {
        anyhow::bail!("--seconds must be a positive number");
    }
    let durabilities = match args.durability {
        Durabilities::Sync => vec![Durability::Sync],
        Durabilities::Flush => vec![Durability::Flush],
        Durabilities::Both => vec![Durability::Sync, Durability::Flush],
    };
    let config = Config {
        docs: args.docs,
        seconds_per_op: args.seconds,
        durabilities,
        dir: args.dir,
    };
    let report = run(&config)?;
    if args.markdown {
        print!("{}", markdown(&report, &args.block));
    } else {
        print!("{}", table(&report));
    }
    Ok(())
}
