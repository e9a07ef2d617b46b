//! `logstore migrate` on a large store, for BENCHMARKS.md.
//!
//! `cargo build --release -p logstore-cli && cargo run --release --features sqlite --example migrate_profile -- 200000`
//!
//! Writes an SQLite store of chat-turn documents from `workload/` (about
//! 400 bytes of JSON each, two indexes), then times the release build of
//! the command-line tool (`target/release/logstore`, beside this example)
//! copying it to a log store and that log store back to a new SQLite
//! store, both at `Durability::Sync` as the tool runs them. Prints a
//! Markdown table.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use logstore::{Document, Durability, Options, Row, SqliteStore, Store, Transfer};
use logstore_workload as workload;

fn fail(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// The SQLite source: `n` turns, written in chunks at `Flush`.
fn source(db: &Path, n: u64) -> std::io::Result<()> {
    let opts = Options {
        durability: Durability::Flush,
        ..Options::default()
    };
    let store = SqliteStore::open(db, db.with_file_name("blobs"), opts).map_err(fail)?;
    store
        .docs()
        .ensure_collection(workload::COLLECTION, &workload::INDEXES)
        .map_err(fail)?;
    let mut rng = workload::Rng::new(42);
    let start = 1_765_000_000_000i64;
    let mut chunk = Vec::new();
    for i in 0..n {
        let serde_json::Value::Object(data) = workload::turn(&mut rng, i) else {
            return Err(fail("a turn is a JSON object"));
        };
        let at = start + i64::try_from(i).map_err(fail)?;
        chunk.push(Row::Document(Document {
            collection: workload::COLLECTION.into(),
            id: workload::id(i),
            data,
            version: 1,
            created_at: at,
            updated_at: at,
        }));
        if chunk.len() == 10_000 || i + 1 == n {
            store.import_rows(&chunk).map_err(fail)?;
            chunk.clear();
        }
    }
    store.close().map_err(fail)
}

/// Runs the tool's `migrate`, which must succeed, and times it.
fn migrate(tool: &Path, from: &Path, to: &Path) -> std::io::Result<Duration> {
    let started = Instant::now();
    let out = Command::new(tool)
        .arg("migrate")
        .arg(from)
        .arg(to)
        .output()?;
    let took = started.elapsed();
    if !out.status.success() {
        return Err(fail(String::from_utf8_lossy(&out.stderr)));
    }
    Ok(took)
}

fn main() -> std::io::Result<()> {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let exe = std::env::current_exe()?;
    // target/release/examples/migrate_profile -> target/release/logstore
    let tool: PathBuf = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("logstore"))
        .filter(|p| p.exists())
        .ok_or_else(|| fail("build the tool first: cargo build --release -p logstore-cli"))?;
    let tmp = std::env::temp_dir().join(format!("logstore-migrate-profile-{}", std::process::id()));
    let db = tmp.join("source").join("store.db");
    std::fs::create_dir_all(db.parent().unwrap_or(&tmp))?;
    source(&db, n)?;
    let log = tmp.join("log");
    let back = tmp.join("back").join("store.db");
    std::fs::create_dir_all(back.parent().unwrap_or(&tmp))?;
    let forward = migrate(&tool, &db, &log)?;
    let reverse = migrate(&tool, &log, &back)?;
    std::fs::remove_dir_all(&tmp)?;
    println!("| copy | documents | time | documents per second | goal |");
    println!("| --- | ---: | ---: | ---: | --- |");
    for (what, took, goal) in [
        ("SQLite to log store", forward, "under 5 s"),
        ("log store to SQLite", reverse, "under 15 s"),
    ] {
        println!(
            "| {what} | {n} | {:.1} s | {:.0} | {goal} |",
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64()
        );
    }
    Ok(())
}
