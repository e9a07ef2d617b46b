//! Open time against document count: from the index snapshot, and by full
//! replay of the log. 10k and 100k documents by default; set
//! `LOGSTORE_BENCH_LARGE=1` to add 1M (about 450 MB of log).
//!
//! `cargo bench --bench open`

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use logstore::{Durability, LogStore, Options, Store};
use logstore_workload as workload;

fn opts() -> Options {
    Options {
        durability: Durability::Flush,
        auto_compact: false,
        ..Options::default()
    }
}

fn build(dir: &Path, n: u64) {
    let store = LogStore::open(dir, opts()).expect("open");
    workload::load(&store, n).expect("load");
    store.close().expect("close");
}

fn counts() -> Vec<u64> {
    let mut counts = vec![10_000, 100_000];
    if std::env::var_os("LOGSTORE_BENCH_LARGE").is_some() {
        counts.push(1_000_000);
    }
    counts
}

fn open(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("open");
    group.sample_size(10);
    for n in counts() {
        let dir: PathBuf = tmp.path().join(n.to_string());
        build(&dir, n);
        let snapshot = std::fs::read(dir.join("SNAPSHOT")).expect("snapshot");
        group.bench_with_input(BenchmarkId::new("snapshot", n), &dir, |b, dir| {
            b.iter_batched(
                || std::fs::write(dir.join("SNAPSHOT"), &snapshot).expect("restore snapshot"),
                |()| LogStore::open(dir, opts()).expect("open"),
                BatchSize::PerIteration,
            );
        });
        group.bench_with_input(BenchmarkId::new("full_replay", n), &dir, |b, dir| {
            b.iter_batched(
                || std::fs::remove_file(dir.join("SNAPSHOT")).expect("remove snapshot"),
                |()| LogStore::open(dir, opts()).expect("open"),
                BatchSize::PerIteration,
            );
        });
        std::fs::write(dir.join("SNAPSHOT"), &snapshot).expect("restore snapshot");
    }
    group.finish();
}

criterion_group!(benches, open);
criterion_main!(benches);
