//! Crash safety through the file-system seam:
//! - power loss at every sync point (the images `PowerFs` records): every
//!   acknowledged write survives and the state equals the model after some
//!   prefix of the history, for documents, segment rolls, blobs, leases and
//!   compaction; once over the prefix model's images (a prefix of each
//!   file's writes), then over the page model's (every unsynced page old,
//!   new, zero or torn at a sector, every unsynced directory operation kept
//!   or lost), with `Durability::Sync` and with `Durability::Flush`;
//! - power loss after a write that lands while a compaction copies (the
//!   snapshot it writes covers only durable records), and after open made a
//!   replayed delete durable (no later append writes into that page);
//! - an I/O error at the Nth call, for N = 1, 2, ... until the operation
//!   completes, for every kind of operation and for open: an error, never a
//!   panic, and after reopening a clean integrity check and the state before
//!   or after the operation;
//! - a crash during recovery: opening twice gives the same state.

mod common;

use common::workload_dump as dump;

use std::io::Cursor;
use std::sync::Arc;

use common::crash::{allowed, check_images, dir, open_image, put_padded_docs, Rig, ASCII_TIME};
use common::power_fs::{image_fs, PowerFs};
use logstore::io::FaultFs;
use logstore::io::{VFile, Vfs};
use logstore::{BlobPut, Durability, LogStore, ManualClock, Options, Store};
use serde_json::json;

fn opts(clock: &Arc<ManualClock>) -> Options {
    common::test_opts(clock, Durability::Sync, 4096)
}

/// One step of the workload, by number.
fn step(store: &LogStore, i: usize) -> logstore::Result<()> {
    common::workload_step(store, i, 9)
}

// ---------------------------------------------------------------------
// Power loss at every sync point
// ---------------------------------------------------------------------

#[test]
fn power_loss_at_every_sync_point_keeps_every_acknowledged_write() {
    let rig = Rig::new(PowerFs::prefix_model(), Durability::Sync, 4096);
    let store = rig.open();
    let history = rig.run(&store, 40, step);
    drop(store);
    let images = rig.fs.take_labelled_images();
    assert!(images.len() > 100, "{} crash images", images.len());
    // The model after every acknowledged operation, or after more.
    let last = history.len() - 1;
    let failures = check_images(&images, &rig.options, &history, |acked| acked..=last);
    common::assert_no_failures("prefix-model power loss", &failures);
}

/// The workload over the page model's crash images. With `Sync`, every
/// image must be the model after every acknowledged operation (and perhaps
/// the one in flight); with `Flush`, which promises survival of a process
/// crash only, the model after any prefix of the history.
fn page_model_power_loss(durability: Durability) {
    let started = std::time::Instant::now();
    let rig = Rig::new(PowerFs::new(), durability, 4096);
    let store = rig.open();
    let history = rig.run(&store, 40, step);
    // A power loss after the last operation, before and after the close.
    rig.fs.capture_now();
    drop(store);
    rig.fs.capture_now();
    let stats = rig.fs.stats();
    let images = rig.fs.take_labelled_images();
    let last = history.len() - 1;
    let failures = check_images(&images, &rig.options, &history, |acked| {
        allowed(durability, acked, (acked + 1).min(last))
    });
    eprintln!(
        "{durability:?}: {} sync points, {} images generated, {} distinct checked, in {:.1?}",
        stats.sync_points,
        stats.generated,
        images.len(),
        started.elapsed()
    );
    assert!(images.len() > 400, "{} crash images", images.len());
    common::assert_no_failures(
        &format!("{durability:?}, {} crash images", images.len()),
        &failures,
    );
}

crash_tests!(page_model_power_loss:
    page_model_power_loss_with_sync_keeps_every_acknowledged_write(Durability::Sync),
    page_model_power_loss_with_flush_opens_at_a_prefix(Durability::Flush),
);

// ---------------------------------------------------------------------
// A snapshot never covers a record that is not durable
// ---------------------------------------------------------------------

/// With `Durability::Flush`, a write that lands while a compaction copies
/// is not synced by the compaction's roll; the snapshot the compaction then
/// writes must not cover it unless the log was synced first. Every power
/// loss image must open with a clean integrity check (a snapshot covering
/// lost bytes reads as corruption).
#[test]
fn a_snapshot_written_by_compaction_covers_only_durable_records() {
    let power = PowerFs::new();
    let clock = Arc::new(ManualClock::new(ASCII_TIME));
    let options = common::test_opts(&clock, Durability::Flush, 1 << 20);
    let cell: Arc<std::sync::OnceLock<Arc<LogStore>>> = Arc::new(std::sync::OnceLock::new());
    let hook_cell = cell.clone();
    let fs = common::wrap_fs::WrapFs::new(power.as_vfs());
    // The first compaction output is created between the compaction's roll
    // and its snapshot: a write lands there.
    fs.on_open(".seg.tmp", move || {
        let store = hook_cell.get().expect("store is set");
        store
            .docs()
            .put("c", "during", json!({"owner": "late"}), None)
            .expect("put during compaction");
    });
    let store = Arc::new(LogStore::open_with_fs(Arc::new(fs), dir(), options.clone()).unwrap());
    let _ = cell.set(store.clone());
    put_padded_docs(store.as_ref(), 5, "x");
    store.compact().unwrap();
    assert!(
        store.docs().get("c", "during").unwrap().is_some(),
        "the hook ran"
    );
    let images = power.take_labelled_images();
    assert!(!images.is_empty());
    let mut failures = Vec::new();
    for (image, _, label) in &images {
        if let Err(why) = open_image(image, &options) {
            failures.push(format!("{label}: {why}"));
        }
    }
    common::assert_no_failures("snapshot after a write during compaction", &failures);
}

// ---------------------------------------------------------------------
// Open leaves the log on a page boundary
// ---------------------------------------------------------------------

/// A blob delete is written but its pad before the sync fails (no space),
/// and the process ends. The restarted store replays the delete, makes it
/// durable and removes the orphaned content file. Open pads the log to a
/// page boundary first, so the next session's appends never write into the
/// page holding that delete: no power loss afterwards can bring back the
/// blob's metadata without its file.
#[test]
fn what_open_made_durable_is_never_in_a_page_written_again() {
    use common::wrap_fs::WrapFs;
    let power = PowerFs::new();
    power.set_capture(false);
    let fs = WrapFs::new(power.as_vfs());
    let clock = Arc::new(ManualClock::new(ASCII_TIME));
    let options = common::test_opts(&clock, Durability::Sync, 1 << 20);
    let first = LogStore::open_with_fs(Arc::new(fs.clone()), dir(), options.clone()).unwrap();
    let meta = first
        .blobs()
        .put(&mut Cursor::new(b"hello blob".to_vec()), BlobPut::default())
        .unwrap();
    // The delete's record is written; the padding before its sync is not.
    fs.fail_writes_after(1);
    assert!(first.blobs().delete(&meta.id).is_err());
    drop(first);
    fs.heal();
    let second = LogStore::open_with_fs(Arc::new(fs.clone()), dir(), options.clone()).unwrap();
    assert!(second.blobs().get_meta(&meta.id).unwrap().is_none());
    power.set_capture(true);
    second.docs().put("c", "x", json!({"a": 1}), None).unwrap();
    drop(second);
    let mut failures = Vec::new();
    for (image, _, label) in power.take_labelled_images() {
        let store = match LogStore::open_with_fs(Arc::new(image_fs(&image)), dir(), options.clone())
        {
            Ok(store) => store,
            Err(e) => {
                failures.push(format!("{label}: does not open: {e}"));
                continue;
            }
        };
        if store.blobs().get_meta(&meta.id).unwrap().is_some() {
            failures.push(format!("{label}: the deleted blob is back"));
        }
    }
    common::assert_no_failures("after open acted on a replayed delete", &failures);
}

// ---------------------------------------------------------------------
// An I/O error at any step
// ---------------------------------------------------------------------

/// Runs operation `op` on a store whose Nth mutating I/O call fails, for
/// N = 1, 2, ... until it succeeds; each time the store reopens clean, at
/// the state before or after the operation.
fn nth_io_error_loop(
    name: &str,
    setup: impl Fn(&LogStore),
    op: impl Fn(&LogStore) -> logstore::Result<()>,
) {
    let clock = Arc::new(ManualClock::new(1_000));
    let mut n = 1;
    loop {
        let fs = FaultFs::new();
        let store = LogStore::open_with_fs(fs.as_vfs(), dir(), opts(&clock)).unwrap();
        setup(&store);
        let before = dump(&store);
        fs.fail_at(n, false);
        let result = op(&store);
        let faulted = fs.injected() > 0;
        // A closed store cannot be read; closing changes nothing anyway.
        let after_in_memory = match store.docs().list_collections() {
            Err(logstore::Error::Closed) => before.clone(),
            _ => dump(&store),
        };
        drop(store);
        fs.heal();
        let store = LogStore::open_with_fs(fs.as_vfs(), dir(), opts(&clock))
            .unwrap_or_else(|e| panic!("{name}, fault {n}: reopen failed: {e}"));
        let report = store.verify().unwrap();
        assert!(
            report.is_clean(),
            "{name}, fault {n}: {:?}",
            report.problems
        );
        let state = dump(&store);
        if result.is_ok() {
            assert!(
                state == after_in_memory,
                "{name}, fault {n}: an acknowledged operation was lost"
            );
        } else {
            assert!(
                state == before || state == after_in_memory,
                "{name}, fault {n}: neither before nor after"
            );
        }
        if !faulted {
            assert!(result.is_ok(), "{name}: {result:?}");
            break;
        }
        assert!(
            result.is_err(),
            "{name}, fault {n}: the injected failure was not reported"
        );
        n += 1;
    }
    assert!(n > 1, "{name} did some I/O");
}

fn seeded(store: &LogStore) {
    put_padded_docs(store, 30, "p");
    store
        .blobs()
        .put(&mut Cursor::new(b"seed".to_vec()), BlobPut::default())
        .unwrap();
    store.leases().acquire("k1", "run1", 100).unwrap();
}

#[test]
fn an_io_error_at_any_step_of_any_operation_is_reported_and_recoverable() {
    nth_io_error_loop("put", seeded, |s| {
        s.docs()
            .put("c", "new", json!({"owner": "p"}), None)
            .map(drop)
    });
    nth_io_error_loop("put that rolls a segment", seeded, |s| {
        s.docs()
            .put("c", "big", json!({"pad": "b".repeat(3000)}), None)
            .map(drop)
    });
    nth_io_error_loop("delete", seeded, |s| s.docs().delete("c", "d3").map(drop));
    nth_io_error_loop("patch", seeded, |s| {
        s.docs()
            .patch("c", "d4", json!({"owner": "q"}), 1)
            .map(drop)
    });
    nth_io_error_loop("ensure_collection", seeded, |s| {
        s.docs().ensure_collection("c", &["pad"])
    });
    nth_io_error_loop("blob put", seeded, |s| {
        s.blobs()
            .put(
                &mut Cursor::new(b"fresh bytes".to_vec()),
                BlobPut::default(),
            )
            .map(drop)
    });
    nth_io_error_loop("blob delete", seeded, |s| {
        let id = s.blobs().list(&Default::default())?[0].id.clone();
        s.blobs().delete(&id).map(drop)
    });
    nth_io_error_loop("lease acquire", seeded, |s| {
        s.leases().acquire("k2", "run2", 50).map(drop)
    });
    nth_io_error_loop("lease renew", seeded, |s| {
        s.leases().renew("k1", "run1", 50).map(drop)
    });
    nth_io_error_loop("lease release", seeded, |s| {
        s.leases().release("k1", "run1")
    });
    nth_io_error_loop("lease release_all", seeded, |s| {
        s.leases().release_all("run1").map(drop)
    });
    nth_io_error_loop("compaction", seeded, |s| s.compact().map(drop));
    nth_io_error_loop("close", seeded, logstore::Store::close);
}

// ---------------------------------------------------------------------
// A crash during recovery
// ---------------------------------------------------------------------

/// A store left by a crash: a torn tail to cut, a compaction output to
/// settle, an orphan blob and a staged file to remove.
fn crashed_store(fs: &FaultFs, clock: &Arc<ManualClock>) {
    let store = LogStore::open_with_fs(fs.as_vfs(), dir(), opts(clock)).unwrap();
    seeded(&store);
    store
        .docs()
        .put("c", "last", json!({"owner": "z"}), None)
        .unwrap();
    drop(store);
    let mem = fs.mem();
    let names = mem.list(dir()).unwrap();
    let newest = names
        .iter()
        .filter(|n| n.ends_with(".seg"))
        .max()
        .unwrap()
        .clone();
    let file = mem.file(&dir().join(&newest)).unwrap();
    // Cut into the last record (the writer keeps zeros reserved after it).
    file.set_len(common::log_end(&file.contents()) - 5).unwrap();
    let stray = mem
        .open(
            &dir().join("blobs/tmp/0b6a4ab5-54c1-4a7e-9d53-2f2d3c1a9e10.tmp"),
            true,
        )
        .unwrap();
    stray.write_all_at(b"half a blob", 0).unwrap();
}

#[test]
fn a_crash_during_recovery_then_a_second_open_gives_the_same_state() {
    let clock = Arc::new(ManualClock::new(1_000));
    let mut n = 1;
    loop {
        let fs = FaultFs::new();
        crashed_store(&fs, &clock);
        // What a recovery that is not interrupted makes of this crash.
        let reference = {
            let copy = Arc::new(fs.mem().deep_copy());
            let store = LogStore::open_with_fs(copy, dir(), opts(&clock)).unwrap();
            assert!(store.recovery_report().truncated.is_some());
            assert_eq!(store.recovery_report().temp_files_removed, 1);
            dump(&store)
        };
        fs.fail_at(n, false);
        let first = LogStore::open_with_fs(fs.as_vfs(), dir(), opts(&clock));
        let faulted = fs.injected() > 0;
        fs.heal();
        match first {
            Ok(store) => {
                assert!(
                    dump(&store) == reference,
                    "fault {n}: the first open differs"
                );
                drop(store);
            }
            Err(e) => assert!(faulted, "open failed without a fault: {e}"),
        }
        let second = LogStore::open_with_fs(fs.as_vfs(), dir(), opts(&clock)).unwrap();
        assert!(
            dump(&second) == reference,
            "fault {n}: the second open differs"
        );
        drop(second);
        let third = LogStore::open_with_fs(fs.as_vfs(), dir(), opts(&clock)).unwrap();
        assert!(
            dump(&third) == reference,
            "fault {n}: opening again differs"
        );
        if !faulted {
            break;
        }
        n += 1;
    }
    assert!(n > 2, "recovery did I/O: {n}");
}
