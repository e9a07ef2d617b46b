//! Every workload of `logstore_workload`, through `&dyn Store`, for the log
//! engine and the SQLite driver in the same run at equal durability
//! (`Flush` against `synchronous=NORMAL` by default;
//! `LOGSTORE_BENCH_DURABILITY=sync` for `Sync` against `FULL`).
//!
//! `cargo bench --bench drivers --features sqlite`

use std::io::Cursor;

use criterion::{criterion_group, criterion_main, Criterion};
use logstore::{BlobPut, Durability, LogStore, Options, Query, SqliteStore, Store};
use logstore_workload::{self as workload, Op, Rng};

const DOCS: u64 = 10_000;

fn durability() -> Durability {
    match std::env::var("LOGSTORE_BENCH_DURABILITY").as_deref() {
        Ok("sync") => Durability::Sync,
        _ => Durability::Flush,
    }
}

fn opts() -> Options {
    Options {
        durability: durability(),
        auto_compact: false,
        ..Options::default()
    }
}

fn drivers(dir: &std::path::Path) -> Vec<(&'static str, Box<dyn Store>)> {
    let log = LogStore::open(dir.join("log"), opts()).expect("open log");
    let sqlite =
        SqliteStore::open(dir.join("store.db"), dir.join("blobs"), opts()).expect("open sqlite");
    let stores: Vec<(&'static str, Box<dyn Store>)> =
        vec![("log", Box::new(log)), ("sqlite", Box::new(sqlite))];
    for (_, store) in &stores {
        workload::load(store.as_ref(), DOCS).expect("load");
    }
    stores
}

fn operations(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let stores = drivers(tmp.path());
    for op in Op::ALL {
        let mut group = c.benchmark_group(op.name());
        for (name, store) in &stores {
            let mut rng = Rng::new(9);
            let mut i = 0u64;
            group.bench_function(*name, |b| {
                b.iter(|| {
                    // Deletes consume documents: wrap within the loaded half.
                    let n = if op == Op::Delete { i % (DOCS / 2) } else { i };
                    let _ = op.run(store.as_ref(), &mut rng, n, DOCS);
                    i += 1;
                });
            });
        }
        group.finish();
    }
    for size in [4 * 1024, 1024 * 1024] {
        let bytes = vec![7u8; size];
        let mut group = c.benchmark_group(format!("blob {size} B"));
        for (name, store) in &stores {
            let meta = store
                .blobs()
                .put(&mut Cursor::new(bytes.clone()), BlobPut::default())
                .expect("put");
            group.bench_function(format!("{name} put"), |b| {
                b.iter(|| {
                    store
                        .blobs()
                        .put(&mut Cursor::new(bytes.clone()), BlobPut::default())
                        .expect("put")
                });
            });
            group.bench_function(format!("{name} get"), |b| {
                b.iter(|| {
                    let (_, mut reader) =
                        store.blobs().get(&meta.id).expect("get").expect("exists");
                    std::io::copy(&mut reader, &mut std::io::sink()).expect("read")
                });
            });
        }
        group.finish();
    }
}

fn concurrent_puts(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let stores = drivers(tmp.path());
    let mut group = c.benchmark_group("concurrent puts (8 per iteration)");
    for threads in [1usize, 4, 8] {
        for (name, store) in &stores {
            let mut next = 0u64;
            group.bench_function(format!("{name}, {threads} threads"), |b| {
                b.iter(|| {
                    let base = next;
                    next += 8;
                    std::thread::scope(|scope| {
                        for t in 0..threads {
                            let store = store.as_ref();
                            scope.spawn(move || {
                                let mut rng = Rng::new(t as u64);
                                for k in (t..8).step_by(threads) {
                                    let i = 3_000_000_000 + base + k as u64;
                                    store
                                        .docs()
                                        .put(
                                            workload::COLLECTION,
                                            &workload::id(i),
                                            workload::turn(&mut rng, i),
                                            None,
                                        )
                                        .expect("put");
                                }
                            });
                        }
                    });
                });
            });
        }
    }
    group.finish();
}

/// Gets and one-filter queries (limit 20), parsed and raw (`get_raw`,
/// `query_raw`: the stored JSON text, unparsed), on the log engine as
/// loaded (every record in the active segment, read with `pread`), on the
/// log engine after a compaction (every record in a sealed, mapped
/// segment) and on the SQLite driver.
fn raw_reads(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut stores = drivers(tmp.path());
    let mapped = LogStore::open(tmp.path().join("log-mapped"), opts()).expect("open log");
    workload::load(&mapped, DOCS).expect("load");
    mapped.compact().expect("compact");
    stores.insert(1, ("log mapped", Box::new(mapped)));
    let query = |rng: &mut Rng| {
        Query::new(workload::COLLECTION)
            .filter(
                workload::INDEXES[0],
                workload::conversation(rng.below(workload::CONVERSATIONS)),
            )
            .limit(20)
    };
    let mut group = c.benchmark_group("raw reads");
    for (name, store) in &stores {
        let d = store.docs();
        let mut rng = Rng::new(9);
        group.bench_function(format!("{name} get"), |b| {
            b.iter(|| {
                d.get(workload::COLLECTION, &workload::id(rng.below(DOCS)))
                    .expect("get")
            });
        });
        group.bench_function(format!("{name} get_raw"), |b| {
            b.iter(|| {
                d.get_raw(workload::COLLECTION, &workload::id(rng.below(DOCS)))
                    .expect("get")
            });
        });
        group.bench_function(format!("{name} query"), |b| {
            b.iter(|| d.query(&query(&mut rng)).expect("query"));
        });
        group.bench_function(format!("{name} query_raw"), |b| {
            b.iter(|| d.query_raw(&query(&mut rng)).expect("query"));
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = operations, concurrent_puts, raw_reads
}
criterion_main!(benches);
