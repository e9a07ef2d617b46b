//! Opens an existing store once and prints what open did: for profiling
//! open (`perf record ./target/release/examples/open_once DIR`).

use logstore::{Durability, LogStore, Options};

fn main() -> logstore::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| ".pattern-data/quickstart".into());
    let opts = Options {
        durability: Durability::Flush,
        auto_compact: false,
        ..Options::default()
    };
    let started = std::time::Instant::now();
    let store = LogStore::open(&dir, opts)?;
    let took = started.elapsed();
    println!("{:?} in {took:?}", store.recovery_report());
    std::mem::forget(store);
    Ok(())
}
