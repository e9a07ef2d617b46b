//! `LogStore::batch`, answers that change nothing, `without_waiting` and the
//! active segment's map, driven through the fault model: power loss at every
//! sync point, a failed sync at every sync (fsyncgate), a failed sync racing
//! in-place writes, a segment shortened under a snapshot.
mod common;

use std::io::Cursor;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use common::crash::{allowed, check_images, open_image, Rig};
use common::power_fs::PowerFs;
use logstore::{Acquire, BlobPut, Durability, Error, LogStore, Options, Query, SnapshotUse, Store};
use serde_json::json;

use common::{keys, workload_dump as dump};

/// One step of the workload, by number, through `s` (the store, or the
/// handle a batch gives); a compaction goes through `store` itself.
fn step(s: &dyn Store, store: &LogStore, i: usize) -> logstore::Result<()> {
    common::workload_step_with(s, || store.compact().map(drop), i, 11)
}

const SIZES: [usize; 6] = [3, 1, 5, 2, 4, 6];

/// Batches under the page model: every image must be the state after all
/// acknowledged batches and at most the batch in flight.
fn batch_page_model(durability: Durability) {
    let rig = Rig::new(PowerFs::new(), durability, 4096);
    let (fs, clock) = (&rig.fs, &rig.clock);
    let store = rig.open();
    let mut history = vec![dump(&store)];
    let mut ends = vec![0usize];
    let mut i = 0;
    for b in 0..12 {
        let k = SIZES[b % SIZES.len()];
        let h = store
            .batch(|s| {
                let mut hs = Vec::new();
                for j in i..i + k {
                    clock.advance(1);
                    step(s, &store, j).unwrap();
                    hs.push(common::dump(s, &keys()));
                }
                hs
            })
            .unwrap();
        history.extend(h);
        i += k;
        ends.push(i);
        fs.acked.store(i, Ordering::SeqCst);
    }
    fs.capture_now();
    drop(store);
    fs.capture_now();
    let images = fs.take_labelled_images();
    let last = history.len() - 1;
    let failures = check_images(&images, &rig.options, &history, |acked| {
        let next_end = ends.iter().copied().find(|e| *e > acked).unwrap_or(last);
        allowed(durability, acked, next_end)
    });
    eprintln!("{durability:?}: {} images", images.len());
    common::assert_no_failures("batch", &failures);
}

crash_tests!(batch_page_model:
    batch_page_model_sync(Durability::Sync),
    batch_page_model_flush(Durability::Flush),
);

/// fsyncgate at sync N for every N, under batches; then power loss; then
/// reopen from the page cache, more batches, close, power loss.
#[test]
fn batch_fsyncgate_sweep() {
    let mut failures = Vec::new();
    let mut n = 1;
    loop {
        let rig = Rig::without_capture(Durability::Sync, 4096);
        let (fs, clock) = (&rig.fs, &rig.clock);
        let store = rig.open();
        fs.fail_sync_at(n);
        let mut history = vec![dump(&store)];
        let mut acked = 0;
        let mut i = 0;
        let mut failed_in = None;
        for b in 0..12 {
            let k = SIZES[b % SIZES.len()];
            let before = fs.failed_syncs();
            let r = store.batch(|s| {
                let mut v = Vec::new();
                for j in i..i + k {
                    clock.advance(1);
                    v.push(step(s, &store, j));
                    history.push(common::dump(s, &keys()));
                }
                v
            });
            i += k;
            let all_ok = matches!(&r, Ok(v) if v.iter().all(std::result::Result::is_ok));
            if fs.failed_syncs() > before {
                if all_ok {
                    failures.push(format!("sync {n}: batch {b} all Ok though a sync failed"));
                }
                failed_in = Some(b);
                break;
            }
            assert!(all_ok, "sync {n}: batch {b} failed without fault: {r:?}");
            acked = i;
        }
        let Some(b) = failed_in else { break };
        let case = format!("sync {n} (batch {b})");
        match open_image(&fs.durable_image(), &rig.options) {
            Err(w) => failures.push(format!("{case}: power loss image {w}")),
            Ok(st) => {
                if !history[acked..].contains(&st) {
                    failures.push(format!(
                        "{case}: power loss state not in history[{acked}..] (pos {:?})",
                        history.iter().position(|h| *h == st)
                    ));
                }
            }
        }
        let Some((re, _)) = rig.restart(store, &history, acked, &mut failures, &case) else {
            n += 1;
            continue;
        };
        let mut ok = true;
        for (bb, j0) in [(0usize, 100usize), (1, 105)] {
            let r = re.batch(|s| {
                (j0..j0 + SIZES[bb])
                    .map(|j| {
                        clock.advance(1);
                        step(s, &re, j)
                    })
                    .collect::<Vec<_>>()
            });
            if !matches!(&r, Ok(v) if v.iter().all(std::result::Result::is_ok)) {
                failures.push(format!("{case}: after reopen batch {r:?}"));
                ok = false;
                break;
            }
        }
        for why in rig.check_close_and_power_loss(re, ok) {
            failures.push(format!("{case}: after reopen, {why}"));
        }
        n += 1;
    }
    eprintln!("{} syncs swept", n - 1);
    assert!(n > 10);
    common::assert_no_failures("batch", &failures);
}

/// Thread A's batch writes; its final sync fails. Thread B, meanwhile, asks
/// questions whose answers change nothing but rest on A's records. None
/// may come back Ok.
#[test]
fn unchanged_answers_resting_on_a_failed_batch() {
    let mut bad = Vec::new();
    for probe in 0..6 {
        let rig = Rig::without_capture(Durability::Sync, 64 * 1024);
        let store = rig.open();
        store.docs().ensure_collection("c", &[]).unwrap();
        store.docs().put("c", "x", json!({"v": 1}), None).unwrap();
        store.leases().acquire("k1", "b", 60_000).unwrap();
        rig.fs.fail_sync_at(1);
        let mut answer = String::new();
        let batch = store.batch(|s| {
            // A's writes: v2 of x, delete of y (absent anyway), lease k1 released, k2 taken
            s.docs().put("c", "x", json!({"v": 2}), None).unwrap();
            s.docs().put("c", "z", json!({}), None).unwrap();
            s.leases().release("k1", "b").unwrap();
            s.leases().acquire("k2", "a", 60_000).unwrap();
            answer = std::thread::scope(|sc| {
                sc.spawn(|| {
                    let (d, l) = (store.docs(), store.leases());
                    let held = |a: logstore::Result<Acquire>| {
                        format!("{:?}", a.map(|a| matches!(a, Acquire::Held { .. })))
                    };
                    match probe {
                        // CAS fails on v2
                        0 => format!(
                            "{:?}",
                            d.put("c", "x", json!({}), Some(1)).map(|o| o.is_none())
                        ),
                        1 => held(l.acquire("k2", "b", 1000)),
                        2 => held(l.renew("k1", "b", 1000)),
                        3 => format!("{:?}", l.release_all("b")),
                        4 => format!("{:?}", d.patch("c", "x", json!({}), 1).map(|o| o.is_none())),
                        _ => format!(
                            "{:?}",
                            store.without_waiting(|s| s.docs().delete("c", "nope"))
                        ),
                    }
                })
                .join()
                .unwrap()
            });
        });
        eprintln!("probe {probe}: {answer} batch {batch:?}");
        let ok_answer = answer.starts_with("Ok");
        if ok_answer && !(probe == 5 && answer.contains("WouldBlock")) {
            bad.push(format!(
                "probe {probe}: answered {answer} resting on a batch whose sync failed ({batch:?})"
            ));
        }
        assert!(batch.is_err());
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

/// Flush store: one thread runs without_waiting puts in a loop; another
/// does blob deletes that orphan (synced) while the Nth sync fails. Each
/// refused write must be absent, each Ok one present after a reopen from
/// the page cache, no Ok after poison was observed, and nothing poisoned by
/// a refusal.
#[test]
fn without_waiting_flush_against_a_failed_sync() {
    let mut bad = Vec::new();
    for n in 1..=8u64 {
        let rig = Rig::without_capture(Durability::Flush, 16 * 1024);
        let fs = &rig.fs;
        let store = rig.open();
        store.docs().ensure_collection("c", &[]).unwrap();
        fs.fail_sync_at(n);
        let stop = AtomicBool::new(false);
        let poisoned_seen = AtomicBool::new(false);
        let results = Mutex::new(Vec::new());
        let count = AtomicUsize::new(0);
        std::thread::scope(|sc| {
            sc.spawn(|| {
                for i in 0..40 {
                    let m = store.blobs().put(
                        &mut Cursor::new(format!("b{i}").into_bytes()),
                        BlobPut::default(),
                    );
                    let r = m.and_then(|m| store.blobs().delete(&m.id));
                    if r.is_err() {
                        let probe = store.docs().put("c", "probe", json!({}), None);
                        if matches!(probe, Err(Error::Poisoned)) {
                            poisoned_seen.store(true, Ordering::SeqCst);
                            break;
                        }
                    }
                    let _ = store.docs().put(
                        "c",
                        &format!("big{i}"),
                        json!({"p": "q".repeat(1500)}),
                        None,
                    );
                }
                stop.store(true, Ordering::SeqCst);
            });
            sc.spawn(|| {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) || i < 50 {
                    let was_poisoned = poisoned_seen.load(Ordering::SeqCst);
                    let id = format!("w{i}");
                    let r =
                        store.without_waiting(|s| s.docs().put("c", &id, json!({"i": i}), None));
                    if was_poisoned && r.is_ok() {
                        results
                            .lock()
                            .unwrap()
                            .push((id.clone(), "ok-after-poison".to_string()));
                    }
                    let tag = match &r {
                        Ok(_) => "ok",
                        Err(Error::WouldBlock(_)) => "wb",
                        Err(_) => "err",
                    };
                    results.lock().unwrap().push((id, tag.to_string()));
                    count.fetch_add(1, Ordering::SeqCst);
                    i += 1;
                    if i > 5000 {
                        break;
                    }
                }
            });
        });
        if fs.failed_syncs() == 0 {
            continue;
        }
        let res = results.into_inner().unwrap();
        let c = |t: &str| res.iter().filter(|(_, x)| x == t).count();
        eprintln!(
            "n {n}: failed {} poisoned {} ok {} wb {} err {}",
            fs.failed_syncs(),
            poisoned_seen.load(Ordering::SeqCst),
            c("ok"),
            c("wb"),
            c("err")
        );
        drop(store);
        let re = rig.open();
        for (id, tag) in &res {
            let present = re.docs().get("c", id).unwrap().is_some();
            match tag.as_str() {
                "ok" if !present => bad.push(format!("n {n}: {id} Ok but missing after restart")),
                "wb" if present => bad.push(format!("n {n}: {id} WouldBlock but written")),
                "ok-after-poison" => bad.push(format!("n {n}: {id} Ok after poison seen")),
                _ => {}
            }
        }
        let v = re.verify().unwrap();
        if !v.is_clean() {
            bad.push(format!("n {n}: verify {:?}", v.problems));
        }
    }
    assert!(bad.is_empty(), "{:#?}", &bad[..bad.len().min(10)]);
}

/// Out of the fault model (a file shortened behind a valid snapshot): the
/// active map must not be read past the file's end. The snapshot covers
/// bytes the newest segment no longer has, so open rejects it and replays
/// the log as it is: every read answers, from what a full replay of the
/// shortened segment holds.
#[test]
fn active_map_with_a_snapshot_past_a_shortened_segment() {
    let d = tempfile::tempdir().unwrap();
    let o = Options {
        auto_compact: false,
        ..Options::default()
    };
    {
        let s = LogStore::open(d.path(), o.clone()).unwrap();
        s.docs().ensure_collection("c", &[]).unwrap();
        for i in 0..200 {
            s.docs()
                .put("c", &format!("{i}"), json!({"p": "z".repeat(500)}), None)
                .unwrap();
        }
        s.close().unwrap();
    }
    let segs = common::segments(d.path());
    let newest = segs.last().unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(newest)
        .unwrap();
    f.set_len(8192).unwrap();
    drop(f);
    // The same shortened log without the snapshot: what a full replay
    // holds.
    let replayed = tempfile::tempdir().unwrap();
    common::copy_store(d.path(), replayed.path());
    std::fs::remove_file(replayed.path().join("SNAPSHOT")).unwrap();
    let full = LogStore::open(replayed.path(), o.clone()).unwrap();
    assert_eq!(full.recovery_report().snapshot, SnapshotUse::Missing);

    let s = LogStore::open(d.path(), o).expect("the shortened store opens");
    assert!(
        matches!(s.recovery_report().snapshot, SnapshotUse::Rejected(_)),
        "a snapshot past the segment's end is not used: {:?}",
        s.recovery_report()
    );
    for i in 0..200 {
        let id = format!("{i}");
        assert_eq!(
            s.docs().get("c", &id).unwrap(),
            full.docs().get("c", &id).unwrap(),
            "document {i}"
        );
    }
    assert_eq!(dump(&s), dump(&full));
    let left = s.docs().count(&Query::new("c")).unwrap();
    assert!(left < 200, "the shortening cut documents off: {left} left");
    let report = s.verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}
