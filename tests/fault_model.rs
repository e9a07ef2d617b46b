//! The parts of the fault model (TESTING.md) beyond plain power loss:
//! - fsyncgate: a failed sync drops the dirty pages it covered, and a later
//!   sync succeeds without them. Writers waiting on the failed sync all get
//!   an error; no path acknowledges, after the failure, a write from before
//!   it; and a store reopened from the page cache (the process restarted,
//!   the machine did not) does not treat the bytes whose sync failed as
//!   durable;
//! - attacker-chosen bytes: a document id, collection name, lease key or
//!   blob mime type holding a complete valid frame, followed by a torn
//!   append, still opens, to the state before the torn write.

mod common;

use common::crash::{check_images, dir, open_image, put_padded_docs, short, Rig};
use common::{keys, workload_dump as dump};

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;

use common::power_fs::{image_fs, PowerFs};
use logstore::io::{MemFs, VFile, Vfs};
use logstore::{BlobPut, Durability, LogStore, ManualClock, Options, Store};
use serde_json::json;

/// A timestamp whose little-endian bytes are all ASCII, so that frames
/// carrying it can be strings.
const ASCII_TIME: i64 = 0x0101_0101_0101;

use common::test_opts as opts;

// ---------------------------------------------------------------------
// fsyncgate
// ---------------------------------------------------------------------

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
/// syncs more, and closes; then the power fails. Every write the reopened
/// store acknowledged must be in what the power loss leaves, and that state
/// must be a prefix of the history: in particular, if the reopened store
/// showed the write whose sync failed, it must have made it durable.
fn reopen_after_a_failed_sync(segment_bytes: u64) {
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
        let case = format!("segment_bytes {segment_bytes}, sync {n} fails (in step {k})");
        // The application restarts; the page cache still holds the bytes
        // whose sync failed.
        let Some((reopened, seen)) = rig.restart(store, &history, 0, &mut failures, &case) else {
            n += 1;
            continue;
        };
        let mut acknowledged = true;
        for (j, i) in (REOPEN_STEPS..REOPEN_STEPS + 3).enumerate() {
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
    eprintln!("segment_bytes {segment_bytes}: {} syncs swept", n - 1);
    assert!(n > 10, "the workload syncs: {n}");
    common::assert_no_failures("reopen from the page cache after fsyncgate", &failures);
}

crash_tests!(reopen_after_a_failed_sync:
    reopen_after_a_failed_sync_with_one_page_segments(4096),
    reopen_after_a_failed_sync_with_multi_page_segments(64 * 1024),
);

// ---------------------------------------------------------------------
// Attacker-chosen bytes
// ---------------------------------------------------------------------

/// `masked_crc` of FORMAT.md.
fn masked_crc(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
        .rotate_right(15)
        .wrapping_add(0xa282_ead8)
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// A `KIND_DOC_PUT` frame as FORMAT.md describes it.
fn doc_put_frame(collection: &str, id: &str, body: &[u8]) -> Vec<u8> {
    let mut payload = vec![2u8];
    put_bytes(&mut payload, collection.as_bytes());
    put_bytes(&mut payload, id.as_bytes());
    payload.extend_from_slice(&1u64.to_le_bytes());
    payload.extend_from_slice(&ASCII_TIME.to_le_bytes());
    payload.extend_from_slice(&ASCII_TIME.to_le_bytes());
    put_bytes(&mut payload, body);
    let len = (payload.len() as u32).to_le_bytes();
    let mut checked = len.to_vec();
    checked.extend_from_slice(&payload);
    let mut frame = len.to_vec();
    frame.extend_from_slice(&masked_crc(&checked).to_le_bytes());
    frame.extend_from_slice(&payload);
    frame
}

/// A frame of the documented format whose every byte is valid UTF-8 (the
/// body is varied until the checksum is), so it can be a string.
fn documented_frame(seed: u64) -> String {
    (seed..)
        .find_map(|n| {
            String::from_utf8(doc_put_frame("c", "x", format!("{{\"a\":{n}}}").as_bytes())).ok()
        })
        .expect("some body gives a UTF-8 frame")
}

fn newest_segment(mem: &MemFs) -> PathBuf {
    let names = mem.list(dir()).unwrap();
    let newest = names
        .iter()
        .filter(|n| n.ends_with(".seg"))
        .max()
        .expect("a segment");
    dir().join(newest)
}

/// A frame as the engine itself wrote it (whatever its format is today),
/// taken from a scratch store, whose bytes are valid UTF-8; `None` if no
/// such frame turns up.
fn engine_frame() -> Option<String> {
    let mem = MemFs::new();
    let clock = Arc::new(ManualClock::new(ASCII_TIME));
    let store = LogStore::open_with_fs(
        Arc::new(mem.clone()),
        dir(),
        opts(&clock, Durability::Flush, 64 << 20),
    )
    .unwrap();
    store.docs().ensure_collection("c", &[]).unwrap();
    let segment = newest_segment(&mem);
    for n in 0..4000 {
        let start = common::log_end(&mem.file(&segment).unwrap().contents()) as usize;
        store.docs().put("c", "x", json!({"a": n}), None).unwrap();
        let bytes = mem.file(&segment).unwrap().contents();
        let end = common::log_end(&bytes) as usize;
        if let Ok(frame) = String::from_utf8(bytes[start..end].to_vec()) {
            return Some(frame);
        }
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// Which string of a record carries the crafted bytes.
#[derive(Debug, Clone, Copy)]
enum Carrier {
    DocumentId,
    CollectionName,
    LeaseKey,
    BlobMime,
}

fn carry(store: &LogStore, carrier: Carrier, text: &str) -> logstore::Result<()> {
    match carrier {
        Carrier::DocumentId => store
            .docs()
            .put("c", text, json!({"owner": "o"}), None)
            .map(drop),
        Carrier::CollectionName => store.docs().ensure_collection(text, &["owner"]),
        Carrier::LeaseKey => store.leases().acquire(text, "run1", 1_000).map(drop),
        Carrier::BlobMime => store
            .blobs()
            .put(
                &mut Cursor::new(b"crafted".to_vec()),
                BlobPut {
                    mime: Some(text.to_string()),
                    owner_id: None,
                },
            )
            .map(drop),
    }
}

/// A store whose newest record carries `text` (a frame followed by
/// padding), with `filler` bytes of padding in the record before it:
/// a copy of its files taken before close, the state before the crafted
/// write, and where the carried frame ends in the newest segment.
fn crafted_store(
    carrier: Carrier,
    frame: &str,
    filler: usize,
) -> (MemFs, String, usize, usize, Vec<String>) {
    let mem = MemFs::new();
    let clock = Arc::new(ManualClock::new(1_000));
    let store = LogStore::open_with_fs(
        Arc::new(mem.clone()),
        dir(),
        opts(&clock, Durability::Flush, 64 << 20),
    )
    .unwrap();
    store.docs().ensure_collection("c", &["owner"]).unwrap();
    store
        .docs()
        .put("c", "filler", json!({"pad": "f".repeat(filler)}), None)
        .unwrap();
    let text = format!("{frame}{}", "y".repeat(100));
    let mut lease_keys = keys();
    lease_keys.push(text.clone());
    let before = common::dump(&store, &lease_keys);
    carry(&store, carrier, &text).unwrap();
    let copy = mem.deep_copy();
    drop(store);
    let bytes = copy.file(&newest_segment(&copy)).unwrap().contents();
    let frame_end = find(&bytes, frame.as_bytes()).expect("the frame is in the log") + frame.len();
    let record_end = common::log_end(&bytes) as usize;
    (copy, before, frame_end, record_end, lease_keys)
}

/// The crafted record is torn right after the frame it carries (at a sector
/// boundary: the padding before it is chosen so), the rest of it zeros, as
/// a power loss can leave it. The store must open, at the state before the
/// torn write, and take writes after it.
fn torn_after_embedded_frame(carrier: Carrier, frame: &str) -> Result<(), String> {
    let (_, _, frame_end, _, _) = crafted_store(carrier, frame, 10);
    let filler = 10 + (512 - frame_end % 512) % 512;
    let (copy, before, frame_end, record_end, lease_keys) = crafted_store(carrier, frame, filler);
    assert_eq!(frame_end % 512, 0, "the frame ends at a sector boundary");
    assert!(record_end > frame_end);
    let segment = newest_segment(&copy);
    let file = copy.file(&segment).unwrap();
    file.write_all_at(&vec![0; record_end - frame_end], frame_end as u64)
        .unwrap();
    let clock = Arc::new(ManualClock::new(2_000));
    let options = opts(&clock, Durability::Sync, 64 << 20);
    let store = LogStore::open_with_fs(Arc::new(copy.clone()), dir(), options.clone())
        .map_err(|e| format!("does not open: {e}"))?;
    let state = common::dump(&store, &lease_keys);
    if state != before {
        return Err(format!(
            "opens at a state that is not the one before the torn write: {}",
            short(&state)
        ));
    }
    store
        .docs()
        .put("c", "after", json!({"owner": "o"}), None)
        .map_err(|e| format!("a write after the open fails: {e}"))?;
    drop(store);
    let store = LogStore::open_with_fs(Arc::new(copy), dir(), options)
        .map_err(|e| format!("the second open fails: {e}"))?;
    if store.docs().get("c", "after").unwrap().is_none() {
        return Err("the write after the open is lost".into());
    }
    Ok(())
}

#[test]
fn strings_holding_a_valid_frame_then_a_torn_append_still_open() {
    let mut frames = vec![("documented-format", documented_frame(0))];
    match engine_frame() {
        Some(frame) => frames.push(("engine-written", frame)),
        None => eprintln!("no frame the engine wrote was valid UTF-8; tested the documented one"),
    }
    let mut failures = Vec::new();
    for (origin, frame) in &frames {
        for carrier in [
            Carrier::DocumentId,
            Carrier::CollectionName,
            Carrier::LeaseKey,
            Carrier::BlobMime,
        ] {
            if let Err(why) = torn_after_embedded_frame(carrier, frame) {
                failures.push(format!("a {origin} frame in a {carrier:?}: {why}"));
            }
        }
    }
    common::assert_no_failures("crafted strings", &failures);
}

type Step = Box<dyn Fn(&LogStore) -> logstore::Result<()>>;

/// Documents whose ids hold valid frames, written with `Durability::Sync`
/// over the power-loss simulator: every crash image opens, keeps every
/// acknowledged write, and is the model after a prefix of the history.
#[test]
fn crafted_ids_survive_every_power_loss_image() {
    let rig = Rig::new(PowerFs::new(), Durability::Sync, 4096);
    let store = rig.open();
    let mut steps: Vec<Step> = vec![Box::new(|s| s.docs().ensure_collection("c", &["owner"]))];
    for i in 0..12u64 {
        let frame = documented_frame(i * 1000);
        let id = format!(
            "{}{frame}{}",
            "i".repeat((i as usize * 37) % 200),
            "z".repeat(300)
        );
        steps.push(Box::new(move |s| {
            s.docs()
                .put(
                    "c",
                    &id,
                    json!({"owner": "o", "pad": "p".repeat(100)}),
                    None,
                )
                .map(drop)
        }));
    }
    let history = rig.run(&store, steps.len(), |s, i| steps[i](s));
    rig.fs.capture_now();
    drop(store);
    let images = rig.fs.take_labelled_images();
    let last = history.len() - 1;
    let failures = check_images(&images, &rig.options, &history, |acked| {
        acked..=(acked + 1).min(last)
    });
    eprintln!("{} images", images.len());
    assert!(images.len() > 50, "{} images", images.len());
    common::assert_no_failures("crafted ids over power-loss images", &failures);
}

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
    let options = opts(&clock, Durability::Flush, 1 << 20);
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
    let options = opts(&clock, Durability::Sync, 1 << 20);
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
