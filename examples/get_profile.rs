//! Gets, one-filter queries or puts (argument `get`, `query`, `put`, or
//! `raw` for `get_raw`) on a
//! 10k-document store with Flush durability, for profiling the hot paths (`valgrind --tool=callgrind target/release/examples/get_profile`).

use logstore::{Durability, LogStore, Options};
use logstore_workload::{self as workload, Op, Rng};

fn main() -> logstore::Result<()> {
    let dir = std::env::temp_dir().join(format!("logstore-get-profile-{}", std::process::id()));
    let opts = Options {
        durability: Durability::Flush,
        auto_compact: false,
        ..Options::default()
    };
    let store = LogStore::open(&dir, opts)?;
    workload::load(&store, 10_000)?;
    let mut rng = Rng::new(1);
    let arg = std::env::args().nth(1);
    if arg.as_deref() == Some("raw") {
        use logstore::Store;
        for _ in 0..2_000_000 {
            let id = workload::id(rng.below(10_000));
            std::hint::black_box(store.docs().get_raw(workload::COLLECTION, &id)?);
        }
    } else {
        let op = match arg.as_deref() {
            Some("query") => Op::QueryOneFilter,
            Some("put") => Op::PutNew,
            _ => Op::Get,
        };
        for i in 0..20_000 {
            op.run(&store, &mut rng, i, 10_000)?;
        }
    }
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
