//! Gets, one-filter queries or puts (argument `get`, `query`, `put`, or
//! `raw` for `get_raw`) on a store of 10k documents (or the count given
//! as the second argument) with Flush durability, for profiling the hot
//! paths (`valgrind --tool=callgrind target/release/examples/get_profile`,
//! or `perf record` on `get_profile get 3000000` for a store past the
//! CPU's caches).

use logstore::{Durability, LogStore, Options};
use logstore_workload::{self as workload, Op, Rng};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("logstore-get-profile-{}", std::process::id()));
    let opts = Options {
        durability: Durability::Flush,
        auto_compact: false,
        ..Options::default()
    };
    let docs: u64 = match std::env::args().nth(2) {
        Some(n) => n
            .parse()
            .map_err(|_| format!("not a document count: {n}"))?,
        None => 10_000,
    };
    let store = LogStore::open(&dir, opts)?;
    workload::load(&store, docs)?;
    let mut rng = Rng::new(1);
    let arg = std::env::args().nth(1);
    if arg.as_deref() == Some("raw") {
        use logstore::Store;
        for _ in 0..2_000_000 {
            let id = workload::id(rng.below(docs));
            std::hint::black_box(store.docs().get_raw(workload::COLLECTION, &id)?);
        }
    } else {
        let op = match arg.as_deref() {
            Some("query") => Op::QueryOneFilter,
            Some("put") => Op::PutNew,
            _ => Op::Get,
        };
        for i in 0..20_000 {
            op.run(&store, &mut rng, i, docs)?;
        }
    }
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
