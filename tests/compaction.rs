//! Compaction and fast open: compaction keeps exactly the live state and
//! shrinks the log, runs online and automatically, survives a fault at any
//! of its I/O steps, and the index snapshot opens to the same state as a
//! full replay. Its races with close, rolls, directory syncs and readers
//! are in compaction_races.rs.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::churn::{churn, lease_keys, small_opts};
use common::{dump, flush_opts};
use logstore::io::FaultFs;
use logstore::{
    Durability, LogStore, ManualClock, Options, Query, SnapshotRejection, SnapshotUse, Store,
};
use serde_json::json;

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
    let steps = common::crash::at_every_step(|step| {
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
        (faulted, result)
    });
    assert!(steps > 8, "compaction has many I/O steps: {steps}");
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
