//! Compaction racing the rest of the store: a close while it runs, writers
//! rolling segments as it starts, a failed directory sync under it, and
//! readers of the mapped segments its switch removes.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::churn::{churn, lease_keys, small_opts};
use common::{dump, flush_opts};
use logstore::io::FaultFs;
use logstore::{LogStore, Options, Query, Store};
use serde_json::json;

/// `close` while a manual compaction runs on another thread: close waits
/// for it (or the compaction finds the store closed before its switch), so
/// a compaction never commits after its handle gave up the directory. Then
/// another handle opens the directory and the store still opens after it.
#[test]
fn close_during_a_compaction_never_lets_it_commit_after_the_lock_is_gone() {
    let tmp = tempfile::tempdir().unwrap();
    for round in 0..6 {
        let dir = tmp.path().join(format!("round{round}"));
        let store = Arc::new(LogStore::open(&dir, small_opts()).unwrap());
        churn(&store, 3);
        let expected = dump(store.as_ref(), &lease_keys());
        let started = Arc::new(std::sync::Barrier::new(2));
        let compactor = {
            let (store, started) = (store.clone(), started.clone());
            std::thread::spawn(move || {
                started.wait();
                store.compact()
            })
        };
        started.wait();
        // Vary where the close lands in the compaction.
        std::thread::sleep(std::time::Duration::from_micros(200 * round));
        store.close().unwrap();
        // The directory is free now: another handle takes it (removing any
        // temporary outputs) while the first handle's thread finishes.
        let other = LogStore::open(&dir, small_opts()).unwrap();
        match compactor.join().unwrap() {
            Ok(_) | Err(logstore::Error::Closed) => {}
            Err(e) => panic!("round {round}: compaction failed with {e}"),
        }
        assert_eq!(dump(&other, &lease_keys()), expected, "round {round}");
        other.close().unwrap();
        drop(store);
        let again = LogStore::open(&dir, small_opts()).unwrap();
        assert_eq!(dump(&again, &lease_keys()), expected, "round {round}");
        assert!(again.verify().unwrap().problems.is_empty());
    }
}

/// Writers roll segments while a compaction starts: the horizon is the
/// segment the compaction's own roll created, read under the same lock, so
/// no segment a writer rolled to meanwhile lies below it (open would remove
/// it as a finished compaction's input). Syncs are slowed to widen the race.
#[test]
fn segments_rolled_while_a_compaction_starts_survive_the_next_open() {
    use common::wrap_fs::WrapFs;
    use std::sync::atomic::AtomicU64;
    for attempt in 0..6 {
        let fs = WrapFs::new(Arc::new(logstore::io::MemFs::new()));
        fs.sync_sleep_us.store(2000, Ordering::SeqCst);
        let opts = Options {
            segment_bytes: 4096,
            auto_compact: false,
            ..flush_opts()
        };
        let dir = Path::new("db");
        let store =
            Arc::new(LogStore::open_with_fs(Arc::new(fs.clone()), dir, opts.clone()).unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let writers: Vec<_> = (0..6)
            .map(|t| {
                let (store, stop, written) = (store.clone(), stop.clone(), written.clone());
                std::thread::spawn(move || {
                    let mut i = 0;
                    while !stop.load(Ordering::SeqCst) {
                        let id = format!("t{t}-{i}");
                        store.docs().put("c", &id, json!({"i": i}), None).unwrap();
                        written.fetch_add(1, Ordering::SeqCst);
                        i += 1;
                    }
                })
            })
            .collect();
        for _ in 0..5 {
            store.compact().unwrap();
        }
        stop.store(true, Ordering::SeqCst);
        for writer in writers {
            writer.join().unwrap();
        }
        let acknowledged = written.load(Ordering::SeqCst) as usize;
        Arc::try_unwrap(store).unwrap().close().unwrap();
        fs.sync_sleep_us.store(0, Ordering::SeqCst);
        let reopened = LogStore::open_with_fs(Arc::new(fs.clone()), dir, opts).unwrap();
        let count = reopened.docs().count(&Query::new("c")).unwrap() as usize;
        assert_eq!(count, acknowledged, "attempt {attempt}");
    }
}

/// A failed sync of the store directory during compaction may have dropped
/// every entry pending there, a segment a writer just rolled to among them:
/// the store is poisoned, so no write is acknowledged into a segment whose
/// entry may never reach the disk.
#[test]
fn a_failed_directory_sync_during_compaction_poisons_the_store() {
    use common::wrap_fs::WrapFs;
    let faults = FaultFs::new();
    let fs = WrapFs::new(faults.as_vfs());
    let store =
        LogStore::open_with_fs(Arc::new(fs.clone()), Path::new("db"), small_opts()).unwrap();
    churn(&store, 2);
    // Once the first output exists, the next directory sync is the one
    // that makes the outputs durable; it fails.
    let injector = faults.clone();
    fs.on_open(".seg.tmp", move || injector.fail_next("sync_dir"));
    assert!(store.compact().is_err());
    assert!(matches!(
        store
            .docs()
            .put("msgs", "after", json!({"owner": "x"}), None),
        Err(logstore::Error::Poisoned)
    ));
}

/// The body of document `i` at generation `gen`: every field follows from
/// the two, so a reader can tell a correct document from a torn or foreign
/// one.
fn generation_body(i: u64, gen: u64) -> serde_json::Value {
    let text: String = (0..40)
        .map(|k| char::from(b'a' + ((i * 31 + gen * 7 + k) % 26) as u8))
        .collect();
    json!({"i": i, "gen": gen, "text": text, "owner": format!("o{}", i % 4)})
}

/// Checks that `data` is a correct body of document `i` no older than
/// `seen`; returns its generation.
fn check_generation(i: u64, data: &serde_json::Map<String, serde_json::Value>, seen: u64) -> u64 {
    let gen = data["gen"].as_u64().expect("a generation");
    assert_eq!(
        serde_json::Value::Object(data.clone()),
        generation_body(i, gen),
        "document {i}"
    );
    assert!(
        gen >= seen,
        "document {i} went back from generation {seen} to {gen}"
    );
    gen
}

/// Readers loop over gets and queries (parsed and raw) while a writer
/// overwrites documents and compaction runs again and again, each run
/// removing the segments (mapped, on the real file system) the readers were
/// reading from. The freshest documents sit in the active segment, which is
/// mapped ahead of its end while the writer appends to it and cuts off its
/// reserved zeros at every roll. Every read must return a verified, correct
/// and current document: no torn or foreign record, and no SIGBUS (which
/// would kill the test process).
#[test]
fn readers_of_mapped_segments_survive_the_switch_that_removes_them() {
    const DOCS: u64 = 200;
    let tmp = tempfile::tempdir().unwrap();
    let store = LogStore::open(tmp.path().join("store"), small_opts()).unwrap();
    let d = store.docs();
    d.ensure_collection("c", &["owner"]).unwrap();
    for i in 0..DOCS {
        d.put("c", &format!("d{i:03}"), generation_body(i, 0), None)
            .unwrap();
    }
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..3u64)
            .map(|r| {
                let (store, done) = (&store, &done);
                scope.spawn(move || {
                    let mut seen = vec![0u64; DOCS as usize];
                    let mut reads = 0u64;
                    while !done.load(Ordering::SeqCst) {
                        let i = (reads * 13 + r * 7) % DOCS;
                        let id = format!("d{i:03}");
                        let doc = store.docs().get("c", &id).unwrap().expect("present");
                        seen[i as usize] = check_generation(i, &doc.data, seen[i as usize]);
                        let raw = store.docs().get_raw("c", &id).unwrap().expect("present");
                        let data = serde_json::from_str(&raw.data).unwrap();
                        seen[i as usize] = check_generation(i, &data, seen[i as usize]);
                        let q = Query::new("c")
                            .filter("owner", format!("o{}", i % 4))
                            .limit(20);
                        for doc in store.docs().query(&q).unwrap() {
                            let n: u64 = doc.id[1..].parse().unwrap();
                            check_generation(n, &doc.data, 0);
                        }
                        for raw in store.docs().query_raw(&q).unwrap() {
                            let n: u64 = raw.id[1..].parse().unwrap();
                            check_generation(n, &serde_json::from_str(&raw.data).unwrap(), 0);
                        }
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        let writer = scope.spawn(|| {
            let mut gen = 1;
            while !done.load(Ordering::SeqCst) {
                for i in (gen % 3..DOCS).step_by(3) {
                    store
                        .docs()
                        .put("c", &format!("d{i:03}"), generation_body(i, gen), None)
                        .unwrap();
                }
                gen += 1;
            }
        });
        let mut removed = 0;
        for _ in 0..12 {
            let report = store.compact().unwrap();
            assert!(report.segments_compacted > 0);
            removed += report.segments_compacted;
        }
        done.store(true, Ordering::SeqCst);
        writer.join().unwrap();
        for reader in readers {
            assert!(reader.join().unwrap() > 0, "every reader read");
        }
        assert!(removed >= 12, "{removed} segments removed");
    });
    for i in 0..DOCS {
        let doc = store.docs().get("c", &format!("d{i:03}")).unwrap().unwrap();
        check_generation(i, &doc.data, 0);
    }
    assert!(store.verify().unwrap().is_clean());
}
