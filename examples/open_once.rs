//! Opens an existing store once and prints what open did: for profiling
//! open (`perf record ./target/release/examples/open_once DIR`). With a
//! count after the directory (`open_once DIR 30`), opens and closes it that
//! many times with `Durability::Sync`, as `logstore bench` opens its store,
//! and prints the median open and close.

use std::time::{Duration, Instant};

use logstore::{Durability, LogStore, Options, Store};

fn main() -> logstore::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .unwrap_or_else(|| ".pattern-data/quickstart".into());
    if let Some(count) = args.next().and_then(|n| n.parse::<usize>().ok()) {
        return open_and_close(&dir, count.max(1));
    }
    let opts = Options {
        durability: Durability::Flush,
        auto_compact: false,
        ..Options::default()
    };
    let started = Instant::now();
    let store = LogStore::open(&dir, opts)?;
    let took = started.elapsed();
    println!("{:?} in {took:?}", store.recovery_report());
    std::mem::forget(store);
    Ok(())
}

/// Opens and closes the store in `dir` `count` times; prints the medians.
fn open_and_close(dir: &str, count: usize) -> logstore::Result<()> {
    let opts = Options {
        durability: Durability::Sync,
        ..Options::default()
    };
    let (mut opens, mut closes) = (Vec::new(), Vec::new());
    for _ in 0..count {
        let started = Instant::now();
        let store = LogStore::open(dir, opts.clone())?;
        opens.push(started.elapsed());
        let started = Instant::now();
        store.close()?;
        drop(store);
        closes.push(started.elapsed());
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    println!(
        "{count} opens and closes: open {:?}, close {:?} (medians)",
        median(&mut opens),
        median(&mut closes)
    );
    Ok(())
}
