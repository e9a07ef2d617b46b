//! fsyncgate, in the fault model of TESTING.md: a failed sync drops the
//! dirty pages it covered, and a later sync succeeds without them. Writers
//! waiting on the failed sync all get an error; no path acknowledges, after
//! the failure, a write from before it; and a store reopened from the page
//! cache (the process restarted, the machine did not) does not treat the
//! bytes whose sync failed as durable.

mod common;

use std::io::{Cursor, Read};
use std::sync::Arc;

use common::crash::{dir, open_image, short, Rig};
use common::power_fs::{image_fs, Image};
use common::workload_dump as dump;
use logstore::io::Vfs;
use logstore::{BlobPut, Durability, LogStore, Options, Store};
use serde_json::json;

/// Eight writers with `Durability::Sync`; sync number N fails and drops its
/// pages. Every writer whose record the failed sync covered must get an
/// error, and nothing that returned `Ok` (a put, or the close after) may be
/// missing from what a power loss then leaves.
#[test]
fn a_failed_sync_fails_every_waiting_writer_and_nothing_is_acknowledged_after_it() {
    let mut failures = Vec::new();
    for fail_at in [1, 2, 3, 5, 8, 13, 21] {
        let rig = Rig::without_capture(Durability::Sync, 4096);
        let store = rig.open();
        store.docs().ensure_collection("c", &["t"]).unwrap();
        rig.fs.fail_sync_at(fail_at);
        let results: Vec<(String, bool)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let store = &store;
                    scope.spawn(move || {
                        (0..25)
                            .map(|i| {
                                let id = format!("{t}-{i}");
                                let body = json!({"t": t, "pad": "w".repeat(150)});
                                let ok = store.docs().put("c", &id, body, None).is_ok();
                                (id, ok)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("writer thread"))
                .collect()
        });
        let case = format!("sync {fail_at} fails");
        if rig.fs.failed_syncs() == 0 {
            failures.push(format!("{case}: the workload made fewer syncs"));
            continue;
        }
        if results.iter().all(|(_, ok)| *ok) {
            failures.push(format!("{case}: every put returned Ok"));
        }
        // What the store shows (reads work on a poisoned store) and what
        // its close claims.
        let (view, closed, durable) = rig.close_and_lose_power(store);
        let state = match durable {
            Ok(state) => state,
            Err(why) => {
                failures.push(format!("{case}: after a power loss the store {why}"));
                continue;
            }
        };
        let durable = Arc::new(image_fs(&rig.fs.durable_image()));
        let store = LogStore::open_with_fs(durable, dir(), rig.options).unwrap();
        for (id, ok) in &results {
            let present = store.docs().get("c", id).unwrap().is_some();
            if *ok && !present {
                failures.push(format!(
                    "{case}: put {id} returned Ok but is lost at the power loss"
                ));
            }
        }
        if closed.is_ok() && state != view {
            failures.push(format!(
                "{case}: close returned Ok after the failed sync, but the durable state differs from what the store showed"
            ));
        }
    }
    common::assert_no_failures("group commit under fsyncgate", &failures);
}

/// What the operation under test does after the write whose sync fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    Put,
    PutThatRolls,
    Delete,
    BlobPut,
    LeaseAcquire,
    Compaction,
    Close,
}

const PATHS: [After; 7] = [
    After::Put,
    After::PutThatRolls,
    After::Delete,
    After::BlobPut,
    After::LeaseAcquire,
    After::Compaction,
    After::Close,
];

fn run_path(store: &LogStore, path: After) -> logstore::Result<()> {
    let d = store.docs();
    match path {
        After::Put => d.put("c", "p", json!({"owner": "q"}), None).map(drop),
        After::PutThatRolls => d
            .put("c", "big", json!({"pad": "b".repeat(3900)}), None)
            .map(drop),
        After::Delete => d.delete("c", "a0").map(drop),
        After::BlobPut => store
            .blobs()
            .put(&mut Cursor::new(b"after".to_vec()), BlobPut::default())
            .map(drop),
        After::LeaseAcquire => store.leases().acquire("k2", "run2", 500).map(drop),
        After::Compaction => store.compact().map(drop),
        After::Close => store.close(),
    }
}

/// A write `b`, then operation `path` (run whether `b` failed or not), with
/// sync number N (N = 1, 2, ...
/// until no sync fails) failing under fsyncgate. Checks:
/// - an operation during which a sync failed returns an error;
/// - an operation that returned `Ok` and promises durability (any with
///   `Sync`; close and compaction with `Flush`) is in what a power loss
///   leaves, together with everything written before it;
/// - the power-loss image opens, verifies clean, and is a prefix of the
///   history (before `b`, after `b`, after `path`).
fn no_path_acknowledges_a_write_whose_sync_failed(durability: Durability) {
    let mut failures = Vec::new();
    let mut cases = 0;
    for path in PATHS {
        for n in 1.. {
            cases += 1;
            let rig = Rig::without_capture(durability, 4096);
            let fs = &rig.fs;
            let sync_opts = Options {
                durability: Durability::Sync,
                ..rig.options.clone()
            };
            {
                let store = LogStore::open_with_fs(fs.as_vfs(), dir(), sync_opts).unwrap();
                store.docs().ensure_collection("c", &["owner"]).unwrap();
                for i in 0..3 {
                    let body = json!({"owner": "o", "pad": "a".repeat(200)});
                    store.docs().put("c", &format!("a{i}"), body, None).unwrap();
                }
                store.leases().acquire("k1", "run1", 500).unwrap();
                store.close().unwrap();
            }
            let store = rig.open();
            let s0 = dump(&store);
            fs.fail_sync_at(n);
            let case = format!("{durability:?}, {path:?}, sync {n} fails");
            let rb = store.docs().put(
                "c",
                "b",
                json!({"owner": "b", "pad": "b".repeat(300)}),
                None,
            );
            let failed_in_b = fs.failed_syncs();
            let s1 = dump(&store);
            let rp = run_path(&store, path);
            let failed = fs.failed_syncs();
            let s2 = match store.docs().list_collections() {
                Ok(_) => dump(&store),
                Err(_) => s1.clone(),
            };
            drop(store);
            if failed_in_b > 0 && rb.is_ok() {
                failures.push(format!("{case}: the put whose sync failed returned Ok"));
            }
            if failed > failed_in_b && rp.is_ok() {
                failures.push(format!(
                    "{case}: {path:?} returned Ok although one of its syncs failed"
                ));
            }
            match open_image(&fs.durable_image(), &rig.options) {
                Err(why) => failures.push(format!("{case}: after a power loss the store {why}")),
                Ok(state) => {
                    let position = [&s0, &s1, &s2].iter().position(|s| **s == state);
                    let durable_ack = durability == Durability::Sync
                        || matches!(path, After::Close | After::Compaction);
                    if position.is_none() {
                        failures.push(format!(
                            "{case}: the durable state is not a prefix of the history: {}",
                            short(&state)
                        ));
                    } else if rb.is_ok() && durability == Durability::Sync && position == Some(0) {
                        failures.push(format!(
                            "{case}: the put of b returned Ok with Sync but b is lost"
                        ));
                    } else if rp.is_ok() && durable_ack && state != s2 {
                        failures.push(format!(
                            "{case}: {path:?} returned Ok, but a power loss then leaves the model after {} of the 2 operations (b, {path:?})",
                            position.unwrap_or(0)
                        ));
                    }
                }
            }
            if failed == 0 {
                break;
            }
        }
    }
    eprintln!("{durability:?}: {cases} cases");
    common::assert_no_failures(
        &format!("{durability:?}: acknowledgements after a failed sync"),
        &failures,
    );
}

crash_tests!(no_path_acknowledges_a_write_whose_sync_failed:
    no_path_acknowledges_a_write_whose_sync_failed_with_sync(Durability::Sync),
    no_path_acknowledges_a_write_whose_sync_failed_with_flush(Durability::Flush),
);

/// The workload of the reopen test, one operation per call.
fn reopen_step(store: &LogStore, i: usize) -> logstore::Result<()> {
    let d = store.docs();
    match i {
        0 => d.ensure_collection("c", &["owner"]),
        1..=7 => d
            .put(
                "c",
                &format!("d{i}"),
                json!({"owner": format!("o{}", i % 3), "pad": "x".repeat(600)}),
                None,
            )
            .map(drop),
        8 => store
            .blobs()
            .put(&mut Cursor::new(b"blob bytes".to_vec()), BlobPut::default())
            .map(drop),
        9 => store.leases().acquire("k1", "run1", 1_000).map(drop),
        10 => d.delete("c", "d2").map(drop),
        11 => store.compact().map(drop),
        // A record spanning pages (and, with small segments, alone in one).
        12 => d
            .put("c", "wide", json!({"pad": "w".repeat(9000)}), None)
            .map(drop),
        _ => d
            .put("c", &format!("e{i}"), json!({"owner": "o1"}), None)
            .map(drop),
    }
}

const REOPEN_STEPS: usize = 16;

/// Sync number N fails (N = 1, 2, ... over every sync of a workload with
/// documents, segment rolls, a blob, a lease, a delete, a compaction and a
/// record spanning pages). Then the store is dropped and reopened from the
/// page cache (the application restarted; the machine did not), writes and
/// makes `writes` more writes (none: a close with nothing of its own to
/// sync), and closes; then the power fails. Every write the reopened store
/// acknowledged must be in what the power loss leaves, and that state must
/// be a prefix of the history: in particular, if the reopened store showed
/// the write whose sync failed, it must have made it durable.
fn reopen_after_a_failed_sync((segment_bytes, writes): (u64, usize)) {
    let mut failures = Vec::new();
    let mut n = 1;
    loop {
        let rig = Rig::without_capture(Durability::Sync, segment_bytes);
        let (fs, clock) = (&rig.fs, &rig.clock);
        let store = rig.open();
        fs.fail_sync_at(n);
        let mut history = vec![dump(&store)];
        let mut failed_step = None;
        for i in 0..REOPEN_STEPS {
            clock.advance(1);
            let before = fs.failed_syncs();
            let result = reopen_step(&store, i);
            history.push(dump(&store));
            if fs.failed_syncs() > before {
                if result.is_ok() {
                    failures.push(format!(
                        "sync {n} fails: step {i} returned Ok although one of its syncs failed"
                    ));
                }
                failed_step = Some(i);
                break;
            }
            if let Err(e) = result {
                panic!("sync {n}: step {i} failed without an injected fault: {e}");
            }
        }
        let Some(k) = failed_step else {
            drop(store);
            break;
        };
        let case = format!(
            "segment_bytes {segment_bytes}, {writes} writes after, sync {n} fails (in step {k})"
        );
        // The application restarts; the page cache still holds the bytes
        // whose sync failed.
        let Some((reopened, seen)) = rig.restart(store, &history, 0, &mut failures, &case) else {
            n += 1;
            continue;
        };
        let mut acknowledged = true;
        for (j, i) in (REOPEN_STEPS..REOPEN_STEPS + writes).enumerate() {
            clock.advance(1);
            let result = if j == 1 {
                reopened
                    .docs()
                    .put("c", "after-wide", json!({"pad": "v".repeat(5000)}), None)
                    .map(drop)
            } else {
                reopen_step(&reopened, i)
            };
            if let Err(e) = result {
                failures.push(format!("{case}: a write after the reopen fails: {e}"));
                acknowledged = false;
                break;
            }
        }
        // The store closes; the power fails.
        let note = if seen == Some(k + 1) {
            " (it had replayed the write whose sync failed as if durable)"
        } else {
            ""
        };
        for why in rig.check_close_and_power_loss(reopened, acknowledged) {
            failures.push(format!("{case}: after the reopen, {why}{note}"));
        }
        n += 1;
    }
    eprintln!(
        "segment_bytes {segment_bytes}, {writes} writes after: {} syncs swept",
        n - 1
    );
    assert!(n > 10, "the workload syncs: {n}");
    common::assert_no_failures("reopen from the page cache after fsyncgate", &failures);
}

crash_tests!(reopen_after_a_failed_sync:
    reopen_after_a_failed_sync_with_one_page_segments((4096, 3)),
    reopen_after_a_failed_sync_with_multi_page_segments((64 * 1024, 3)),
    reopen_after_a_failed_sync_then_a_close_without_writes((64 * 1024, 0)),
    reopen_after_a_failed_sync_with_one_page_segments_then_a_close_without_writes((4096, 0)),
);

/// Opens `image`, verifies it clean and reads `blob`: whether it is still
/// there (with its bytes).
fn check_blob_image(
    image: &Image,
    options: &Options,
    blob: &str,
    bytes: &[u8],
) -> Result<bool, String> {
    let fs = Arc::new(image_fs(image)) as Arc<dyn Vfs>;
    let store =
        LogStore::open_with_fs(fs, dir(), options.clone()).map_err(|e| format!("open: {e}"))?;
    let report = store.verify().map_err(|e| format!("verify: {e}"))?;
    if !report.is_clean() {
        return Err(format!("not clean: {:?}", report.problems));
    }
    match store.blobs().get(blob).map_err(|e| format!("get: {e}"))? {
        None => Ok(false),
        Some((_, mut r)) => {
            let mut got = Vec::new();
            r.read_to_end(&mut got).map_err(|e| format!("read: {e}"))?;
            if got != bytes {
                return Err("the blob's bytes differ".into());
            }
            Ok(true)
        }
    }
}

/// Sync N of a blob delete that orphans its file fails (the delete's
/// record is synced before the file goes), for each N; the application
/// restarts without a reboot, reads the blob, writes and closes; the power
/// fails. Every image, during the delete and the durable one at the end,
/// opens, verifies clean, and a blob it lists has its bytes.
fn blob_delete_under_fsyncgate(durability: Durability) {
    let mut failures = Vec::new();
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut tried = 0;
    for n in 1.. {
        let rig = Rig::new(common::power_fs::PowerFs::new(), durability, 64 * 1024);
        rig.fs.set_capture(false);
        let store = rig.open();
        let blob = common::blobs::put(&store, &bytes).id;
        store
            .docs()
            .put("c", "x", serde_json::json!({"a": 1}), None)
            .unwrap();
        rig.fs.set_capture(true);
        rig.fs.fail_sync_at(n);
        let deleted = store.blobs().delete(&blob);
        let failed = rig.fs.failed_syncs() > 0;
        rig.fs.fail_sync_at(0);
        if !failed {
            // The delete succeeded: a power loss right after the removal.
            assert!(deleted.is_ok(), "{deleted:?}");
            rig.fs.capture_now();
            for (image, _, label) in rig.fs.take_labelled_images() {
                if let Err(why) = check_blob_image(&image, &rig.options, &blob, &bytes) {
                    failures.push(format!("ok delete, crash at {label}: {why}"));
                }
            }
            break;
        }
        rig.fs.set_capture(false);
        tried += 1;
        if deleted.is_ok() {
            failures.push(format!(
                "sync {n}: the delete returned Ok after a failed sync"
            ));
        }
        for (image, _, label) in rig.fs.take_labelled_images() {
            if let Err(why) = check_blob_image(&image, &rig.options, &blob, &bytes) {
                failures.push(format!("sync {n}, crash at {label}: {why}"));
            }
        }
        drop(store);
        // Restart without a reboot.
        match rig.reopen() {
            Ok(store) => {
                if let Ok(Some((_, mut r))) = store.blobs().get(&blob) {
                    let mut got = Vec::new();
                    if r.read_to_end(&mut got).is_err() || got != bytes {
                        failures.push(format!(
                            "sync {n}: after restart the blob is listed but unreadable"
                        ));
                    }
                }
                let _ = store
                    .docs()
                    .put("c", "y", serde_json::json!({"b": 2}), None);
                let _ = store.close();
            }
            Err(e) => failures.push(format!("sync {n}: restart does not open: {e}")),
        }
        if let Err(why) = check_blob_image(&rig.fs.durable_image(), &rig.options, &blob, &bytes) {
            failures.push(format!("sync {n}, power loss after restart: {why}"));
        }
    }
    assert!(tried > 0, "the delete synced");
    common::assert_no_failures("blob delete under fsyncgate", &failures);
}

#[test]
fn a_blob_delete_whose_sync_fails_keeps_its_file_with_flush() {
    blob_delete_under_fsyncgate(Durability::Flush);
}

#[test]
fn a_blob_delete_whose_sync_fails_keeps_its_file_with_sync() {
    blob_delete_under_fsyncgate(Durability::Sync);
}

/// Sync N of a store's first blob put fails (the staged file's, the blob
/// folders', the content file's rename), for each N: the put is refused,
/// and what that sync covered is in the page cache only. The application
/// restarts without a reboot and puts the same bytes, into the folders the
/// failed session made, and closes; the power fails. The durable image
/// must open clean with the blob the restarted store acknowledged.
/// (`PowerFs` keeps file entries only: a folder is never lost.)
#[test]
fn a_blob_put_into_folders_whose_sync_failed_is_durable_after_a_restart() {
    let mut failures = Vec::new();
    let bytes: Vec<u8> = (0..10_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let mut tried = 0;
    for n in 1.. {
        let rig = Rig::without_capture(Durability::Sync, 64 * 1024);
        let store = rig.open();
        store
            .docs()
            .put("c", "x", serde_json::json!({"a": 1}), None)
            .unwrap();
        rig.fs.fail_sync_at(n);
        let first = store
            .blobs()
            .put(&mut Cursor::new(bytes.clone()), BlobPut::default());
        let failed = rig.fs.failed_syncs() > 0;
        rig.fs.fail_sync_at(0);
        if !failed {
            assert!(first.is_ok(), "{first:?}");
            break;
        }
        tried += 1;
        if first.is_ok() {
            failures.push(format!("sync {n}: the put returned Ok after a failed sync"));
        }
        drop(store);
        let store = match rig.reopen() {
            Ok(store) => store,
            Err(e) => {
                failures.push(format!("sync {n}: restart does not open: {e}"));
                continue;
            }
        };
        let blob = match store
            .blobs()
            .put(&mut Cursor::new(bytes.clone()), BlobPut::default())
        {
            Ok(meta) => meta.id,
            Err(e) => {
                failures.push(format!("sync {n}: the put after the restart fails: {e}"));
                continue;
            }
        };
        if let Err(e) = store.close() {
            failures.push(format!("sync {n}: the close fails: {e}"));
        }
        drop(store);
        match check_blob_image(&rig.fs.durable_image(), &rig.options, &blob, &bytes) {
            Ok(true) => {}
            Ok(false) => failures.push(format!(
                "sync {n}: the power loss lost the acknowledged blob"
            )),
            Err(why) => failures.push(format!("sync {n}, power loss after restart: {why}")),
        }
    }
    assert!(tried > 2, "the put syncs its file and folders: {tried}");
    common::assert_no_failures("a blob put into folders whose sync failed", &failures);
}
