//! Compaction and fast open: compaction keeps exactly the live state and
//! shrinks the log, runs online and automatically, survives a fault at any
//! of its I/O steps, and the index snapshot opens to the same state as a
//! full replay.

mod common;

use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{dump, flush_opts};
use logstore::io::FaultFs;
use logstore::{
    BlobPut, Durability, LogStore, ManualClock, Options, Query, SnapshotRejection, SnapshotUse,
    Store,
};
use serde_json::json;

fn small_opts() -> Options {
    Options {
        segment_bytes: 16 * 1024,
        auto_compact: false,
        ..flush_opts()
    }
}

fn lease_keys() -> Vec<String> {
    (0..6).map(|i| format!("lease-{i}")).collect()
}

/// Overwrites, deletes, leases and blobs: a log that is mostly dead.
fn churn(store: &LogStore, rounds: usize) {
    let d = store.docs();
    d.ensure_collection("msgs", &["owner"]).unwrap();
    for round in 0..rounds {
        for i in 0..40 {
            let body = json!({"owner": format!("o{}", (i + round) % 4), "n": round, "text": "x".repeat(100)});
            d.put("msgs", &format!("m{i:02}"), body, None).unwrap();
        }
        for i in (round % 5..40).step_by(9) {
            d.delete("msgs", &format!("m{i:02}")).unwrap();
        }
        let key = format!("lease-{}", round % 6);
        store
            .leases()
            .acquire(&key, &format!("run-{}", round % 3), 10_000)
            .unwrap();
        if round % 4 == 3 {
            store.leases().release_all("run-0").unwrap();
        }
        let blob = store
            .blobs()
            .put(
                &mut Cursor::new(format!("blob {}", round % 3).into_bytes()),
                BlobPut::default(),
            )
            .unwrap();
        if round % 2 == 0 {
            store.blobs().delete(&blob.id).unwrap();
        }
    }
    d.ensure_collection("msgs", &["n"]).unwrap();
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

#[test]
fn compaction_keeps_the_live_state_and_drops_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = LogStore::open(&dir, small_opts()).unwrap();
    churn(&store, 30);
    let before = dump(&store, &lease_keys());
    let stats = store.stats().unwrap();
    assert!(stats.dead_bytes > stats.live_bytes, "{stats:?}");
    let report = store.compact().unwrap();
    assert!(report.records_dropped > report.records_kept, "{report:?}");
    assert!(report.bytes_after < report.bytes_before / 2, "{report:?}");
    assert!(
        report.segments_compacted >= 2 && report.segments_written >= 1,
        "{report:?}"
    );
    assert_eq!(
        dump(&store, &lease_keys()),
        before,
        "reads are unchanged after the switch"
    );
    let after = store.stats().unwrap();
    assert!(after.space_amplification < 1.5, "{after:?}");
    // Writes go on after compaction; a second compaction is harmless.
    store
        .docs()
        .put("msgs", "late", json!({"owner": "o1"}), None)
        .unwrap();
    let before = dump(&store, &lease_keys());
    store.compact().unwrap();
    assert_eq!(dump(&store, &lease_keys()), before);
    store.close().unwrap();

    let reopened = LogStore::open(&dir, small_opts()).unwrap();
    assert_eq!(reopened.recovery_report().snapshot, SnapshotUse::Loaded);
    assert_eq!(dump(&reopened, &lease_keys()), before);
    drop(reopened);
    std::fs::remove_file(dir.join("SNAPSHOT")).unwrap();
    let replayed = LogStore::open(&dir, small_opts()).unwrap();
    assert_eq!(replayed.recovery_report().snapshot, SnapshotUse::Missing);
    assert_eq!(
        dump(&replayed, &lease_keys()),
        before,
        "a full replay of the compacted log agrees"
    );
}

#[test]
fn after_compaction_the_log_is_at_most_twice_the_live_data_plus_a_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let opts = small_opts();
    let store = LogStore::open(&dir, opts.clone()).unwrap();
    churn(&store, 60);
    let grown = dir_bytes(&dir);
    store.compact().unwrap();
    let stats = store.stats().unwrap();
    let on_disk = dir_bytes(&dir);
    assert!(
        on_disk <= 2 * stats.live_bytes + opts.segment_bytes,
        "{on_disk} on disk, {stats:?}"
    );
    assert!(on_disk * 4 < grown, "{grown} bytes before, {on_disk} after");
    assert_eq!(stats.total_bytes, on_disk, "stats count what is on disk");
}

#[test]
fn compaction_runs_online_without_losing_or_resurrecting_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LogStore::open(tmp.path().join("store"), small_opts()).unwrap();
    store.docs().ensure_collection("c", &["w"]).unwrap();
    let done = AtomicBool::new(false);
    let finals: Vec<Vec<(String, Option<u64>)>> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..3)
            .map(|w| {
                let store = &store;
                scope.spawn(move || {
                    // Each writer owns its ids: the last acknowledged state
                    // of each is known exactly.
                    let mut last = vec![None; 20];
                    for step in 0..400u64 {
                        let i = (step * 7 % 20) as usize;
                        let id = format!("w{w}-{i}");
                        if step % 5 == 4 {
                            store.docs().delete("c", &id).unwrap();
                            last[i] = None;
                        } else {
                            let row = store
                                .docs()
                                .put("c", &id, json!({"w": w.to_string(), "step": step}), None)
                                .unwrap()
                                .unwrap();
                            last[i] = Some(row.version);
                            // A read always sees the newest acknowledged version.
                            let read = store.docs().get("c", &id).unwrap().unwrap();
                            assert_eq!(read.data["step"], json!(step));
                        }
                    }
                    (0..20)
                        .map(|i| (format!("w{w}-{i}"), last[i]))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let reader = scope.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                let n = store
                    .docs()
                    .query(&Query::new("c").filter("w", "1").limit(1000))
                    .unwrap()
                    .len();
                assert!(n <= 20);
            }
        });
        let compactor = scope.spawn(|| {
            let mut runs = 0;
            while !done.load(Ordering::SeqCst) || runs < 3 {
                store.compact().unwrap();
                runs += 1;
            }
            runs
        });
        let finals = writers.into_iter().map(|h| h.join().unwrap()).collect();
        done.store(true, Ordering::SeqCst);
        reader.join().unwrap();
        assert!(compactor.join().unwrap() >= 3);
        finals
    });
    let check = |store: &LogStore| {
        for (id, version) in finals.iter().flatten() {
            let got = store.docs().get("c", id).unwrap().map(|d| d.version);
            assert_eq!(got.is_some(), version.is_some(), "{id}");
        }
    };
    check(&store);
    store.close().unwrap();
    let reopened = LogStore::open(store_path(&tmp), small_opts()).unwrap();
    check(&reopened);
}

fn store_path(tmp: &tempfile::TempDir) -> std::path::PathBuf {
    tmp.path().join("store")
}

#[test]
fn automatic_compaction_runs_when_dead_bytes_pass_the_threshold() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = Options {
        segment_bytes: 16 * 1024,
        auto_compact: true,
        compaction_min_bytes: 64 * 1024,
        compaction_threshold: 0.5,
        ..flush_opts()
    };
    let store = LogStore::open(tmp.path().join("store"), opts).unwrap();
    for round in 0..400 {
        store
            .docs()
            .put(
                "c",
                "hot",
                json!({"round": round, "pad": "p".repeat(500)}),
                None,
            )
            .unwrap();
    }
    // The compactor runs on its own thread: give it time, without any
    // timing assertion beyond "eventually". About 290 KiB were written (400
    // records of ~580 bytes, and a header page per 16 KiB segment); the
    // compactor is woken every 64 writes and runs once dead bytes pass half
    // of at least 64 KiB, so after the last run less than 64 writes' worth
    // plus the minimum remain.
    let bound = 128 * 1024;
    let mut stats = store.stats().unwrap();
    for _ in 0..600 {
        if stats.total_bytes < bound {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        stats = store.stats().unwrap();
    }
    assert!(
        stats.total_bytes < bound,
        "the log was compacted: {stats:?}"
    );
    assert_eq!(
        store.docs().get("c", "hot").unwrap().unwrap().data["round"],
        json!(399)
    );
}

fn fault_opts(clock: &Arc<ManualClock>) -> Options {
    Options {
        clock: clock.clone(),
        durability: Durability::Sync,
        ..small_opts()
    }
}

#[test]
fn a_fault_at_every_step_of_compaction_leaves_the_store_as_before() {
    let mut step = 1;
    loop {
        let fs = FaultFs::new();
        let clock = Arc::new(ManualClock::new(1_000));
        let store =
            LogStore::open_with_fs(fs.as_vfs(), Path::new("db"), fault_opts(&clock)).unwrap();
        churn(&store, 12);
        let expected = dump(&store, &lease_keys());
        fs.fail_at(step, false);
        let result = store.compact();
        let faulted = fs.injected() > 0;
        drop(store);
        fs.heal();
        let reopened =
            LogStore::open_with_fs(fs.as_vfs(), Path::new("db"), fault_opts(&clock)).unwrap();
        assert_eq!(dump(&reopened, &lease_keys()), expected, "step {step}");
        // Running it again is harmless and the store still takes writes.
        reopened.compact().unwrap();
        reopened
            .docs()
            .put("msgs", "after", json!({"owner": "o2"}), None)
            .unwrap();
        drop(reopened);
        let again =
            LogStore::open_with_fs(fs.as_vfs(), Path::new("db"), fault_opts(&clock)).unwrap();
        assert!(
            again.docs().get("msgs", "after").unwrap().is_some(),
            "step {step}"
        );
        if !faulted {
            result.unwrap();
            break;
        }
        assert!(result.is_err(), "step {step}: the fault was reported");
        step += 1;
    }
    assert!(step > 8, "compaction has many I/O steps: {step}");
}

#[test]
fn a_snapshot_open_equals_a_full_replay_and_bad_snapshots_fall_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let clock = Arc::new(ManualClock::new(1_000));
    let opts = Options {
        clock: clock.clone(),
        ..small_opts()
    };
    {
        let store = LogStore::open(&dir, opts.clone()).unwrap();
        churn(&store, 20);
        store.compact().unwrap();
        churn(&store, 5);
        store.close().unwrap();
    }
    // Writes after the snapshot are replayed on top of it: put back the
    // snapshot from before them, as a crash before close would leave it.
    let behind = std::fs::read(dir.join("SNAPSHOT")).unwrap();
    {
        let store = LogStore::open(&dir, opts.clone()).unwrap();
        assert_eq!(store.recovery_report().snapshot, SnapshotUse::Loaded);
        store
            .docs()
            .put("msgs", "after-snapshot", json!({"owner": "o3"}), None)
            .unwrap();
        store.leases().acquire("lease-5", "late", 5).unwrap();
        store.close().unwrap();
    }
    std::fs::write(dir.join("SNAPSHOT"), &behind).unwrap();
    let snapshot = std::fs::read(dir.join("SNAPSHOT")).unwrap();
    let from_snapshot = {
        let store = LogStore::open(&dir, opts.clone()).unwrap();
        assert_eq!(store.recovery_report().snapshot, SnapshotUse::Loaded);
        dump(&store, &lease_keys())
    };
    assert!(from_snapshot.contains("after-snapshot"));
    std::fs::remove_file(dir.join("SNAPSHOT")).unwrap();
    let replayed = {
        let store = LogStore::open(&dir, opts.clone()).unwrap();
        assert_eq!(store.recovery_report().snapshot, SnapshotUse::Missing);
        dump(&store, &lease_keys())
    };
    assert_eq!(from_snapshot, replayed);

    // A damaged snapshot is rejected, with the same result: a bit flipped
    // anywhere (header, ids, document fields, value columns, order,
    // checksum) or the file cut short anywhere.
    let len = snapshot.len();
    let mut damaged_copies: Vec<Vec<u8>> = (0..12)
        .map(|i| {
            let mut damaged = snapshot.clone();
            damaged[(i * len / 12 + 5).min(len - 1)] ^= 0x40;
            damaged
        })
        .collect();
    damaged_copies.extend(
        [0, 7, 8, 40, len / 3, len / 2, len - 5, len - 1].map(|cut| snapshot[..cut].to_vec()),
    );
    for damaged in damaged_copies {
        std::fs::write(dir.join("SNAPSHOT"), &damaged).unwrap();
        let store = LogStore::open(&dir, opts.clone()).unwrap();
        assert!(matches!(
            store.recovery_report().snapshot,
            SnapshotUse::Rejected(_)
        ));
        assert_eq!(dump(&store, &lease_keys()), replayed);
        // Dropping may write a good snapshot; each case writes its own
        // damaged copy before it opens.
        drop(store);
    }

    // A stale one (from before a later compaction) is rejected too.
    let store = LogStore::open(&dir, opts.clone()).unwrap();
    let current_snapshot = std::fs::read(dir.join("SNAPSHOT")).unwrap();
    store.compact().unwrap();
    store.close().unwrap();
    std::fs::write(dir.join("SNAPSHOT"), &current_snapshot).unwrap();
    let store = LogStore::open(&dir, opts).unwrap();
    match &store.recovery_report().snapshot {
        SnapshotUse::Rejected(reason) => assert_eq!(reason, &SnapshotRejection::BeforeCompaction),
        other => panic!("expected a stale snapshot, got {other:?}"),
    }
    assert_eq!(dump(&store, &lease_keys()), replayed);
}

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
    let store = LogStore::open(store_path(&tmp), small_opts()).unwrap();
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
