//! The engine's own tests of what the integration tests cannot reach: its
//! maps and its write modes.

use super::*;
use crate::options::{Durability, MIN_SEGMENT_BYTES};
use crate::Blocked;

/// Which segments are mapped: on the real file system every one, sealed
/// (rolled, compacted, or found sealed at open) and active (mapped ahead,
/// after open, and each new one the writer rolls to); none on the
/// in-memory file system.
#[test]
fn every_segment_is_mapped_on_the_real_file_system() {
    let mapped = |store: &LogStore| -> Vec<(u32, bool)> {
        let files = store.inner().files.read();
        files.iter().map(|(id, f)| (*id, f.is_mapped())).collect()
    };
    let fill = |store: &LogStore| {
        store.docs().ensure_collection("c", &["k"]).unwrap();
        for i in 0..200 {
            let body = serde_json::json!({"k": i % 3, "text": "x".repeat(500)});
            store.docs().put("c", &format!("{i}"), body, None).unwrap();
        }
    };
    let check = |store: &LogStore| {
        let segments = mapped(store);
        assert!(segments.len() > 2, "{segments:?}");
        assert!(segments.iter().all(|(_, m)| *m), "{segments:?}");
        for i in 0..200 {
            let doc = store.docs().get("c", &format!("{i}")).unwrap().unwrap();
            assert_eq!(doc.data["k"], i % 3);
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let opts = || Options {
        segment_bytes: 4 * MIN_SEGMENT_BYTES,
        auto_compact: false,
        ..Options::default()
    };
    let store = LogStore::open(dir.path(), opts()).unwrap();
    fill(&store);
    check(&store);
    store.compact().unwrap();
    fill(&store);
    check(&store);
    store.close().unwrap();
    drop(store);
    let store = LogStore::open(dir.path(), opts()).unwrap();
    check(&store);

    let memory = LogStore::in_memory(opts()).unwrap();
    fill(&memory);
    assert!(mapped(&memory).iter().all(|(_, m)| !m));
}

/// `without_waiting` appends what needs no wait and refuses, writing
/// nothing and poisoning nothing, each write that would wait: every
/// write under Sync; under Flush one that finds the writer lock held,
/// one that would roll the log or write zeros ahead of the tail, a blob
/// put or import, and a blob delete that orphans its file, each with its
/// reason. Outside it, the same writes run as usual.
#[test]
fn without_waiting_refuses_exactly_the_writes_that_would_wait() {
    use crate::contract::BlobPut;
    let body = |n: usize| serde_json::json!({"text": "x".repeat(n)});
    let refused = |r: Result<Option<crate::Document>>, why: Blocked| matches!(r, Err(Error::WouldBlock(w)) if w == why);

    let sync = LogStore::in_memory(Options::default()).unwrap();
    let put = sync.without_waiting(|s| s.docs().put("c", "a", body(10), None));
    assert!(refused(put, Blocked::SyncEveryWrite));
    assert!(sync.docs().get("c", "a").unwrap().is_none());

    let opts = Options {
        durability: Durability::Flush,
        segment_bytes: 4 * MIN_SEGMENT_BYTES,
        auto_compact: false,
        ..Options::default()
    };
    let store = LogStore::in_memory(opts).unwrap();
    // A new segment has no zeros written ahead of its tail yet.
    let first = store.without_waiting(|s| s.docs().put("c", "a", body(10), None));
    assert!(refused(first, Blocked::Reserve));
    assert!(store.docs().get("c", "a").unwrap().is_none());
    store.docs().put("c", "first", body(10), None).unwrap();
    let done = store.without_waiting(|s| s.docs().put("c", "a", body(10), None));
    assert_eq!(done.unwrap().unwrap().version, 1);
    assert_eq!(
        store.docs().get("c", "a").unwrap().unwrap().data["text"],
        "x".repeat(10)
    );

    // Another writer holds the lock (here, this thread).
    let held = store.inner().writer.lock();
    let busy = store.without_waiting(|s| s.docs().put("c", "b", body(10), None));
    assert!(refused(busy, Blocked::WriterBusy));
    drop(held);

    // Fill the segment until the next record would roll it.
    let segments = || store.inner().files.read().len();
    let before = segments();
    let fill = |n: usize| {
        let put = store.without_waiting(|s| s.docs().put("c", &format!("f{n}"), body(900), None));
        refused(put, Blocked::Roll)
    };
    let n = (0..100)
        .find(|&n| fill(n))
        .expect("a put that would roll is refused");
    assert!(n > 5, "{n} records fit a 16 KiB segment");
    assert_eq!(segments(), before, "a refused roll rolls nothing");
    assert!(store.docs().get("c", &format!("f{n}")).unwrap().is_none());
    // Not poisoned; the ordinary write rolls.
    store
        .docs()
        .put("c", &format!("f{n}"), body(900), None)
        .unwrap();
    assert_eq!(segments(), before + 1);

    let blob = store.without_waiting(|s| s.blobs().put(&mut &b"bytes"[..], BlobPut::default()));
    assert!(matches!(blob, Err(Error::WouldBlock(Blocked::BlobFile))));
    let meta = crate::contract::BlobMeta {
        id: "imported".into(),
        mime: "text/plain".into(),
        size: 5,
        owner_id: None,
        created_at: 1,
        content_hash: None,
    };
    use crate::Transfer;
    let import = store.without_waiting(|s| s.import_blob(&meta, &mut &b"bytes"[..]));
    assert!(matches!(import, Err(Error::WouldBlock(Blocked::BlobFile))));
    assert!(store.blobs().list(&Default::default()).unwrap().is_empty());
    let meta = store
        .blobs()
        .put(&mut &b"bytes"[..], BlobPut::default())
        .unwrap();
    let delete = store.without_waiting(|s| s.blobs().delete(&meta.id));
    assert!(matches!(
        delete,
        Err(Error::WouldBlock(Blocked::BlobRemoval))
    ));
    assert!(store.blobs().get_meta(&meta.id).unwrap().is_some());

    // The mode is the session's: the store's own calls wait as before.
    assert!(store.docs().delete("c", "a").unwrap());
    let put = sync.docs().put("c", "a", body(10), None);
    assert_eq!(put.unwrap().unwrap().version, 1);
}

/// A `without_waiting` write that finds the in-memory state locked by
/// another thread (a long query reading it) is refused with `StateBusy`
/// before its record is appended: the log ends where it ended, and once
/// the lock is free the same write goes through.
#[test]
fn without_waiting_refuses_a_write_while_another_thread_reads_the_state() {
    use std::sync::mpsc;
    let opts = Options {
        durability: Durability::Flush,
        auto_compact: false,
        ..Options::default()
    };
    let store = LogStore::in_memory(opts).unwrap();
    store
        .docs()
        .put("c", "first", serde_json::json!({"n": 1}), None)
        .unwrap();
    let tail = || {
        let writer = store.inner().writer.lock();
        (writer.last_seq(), writer.total_bytes())
    };
    let before = tail();
    let put = || store.without_waiting(|s| s.docs().put("c", "b", serde_json::json!({}), None));
    std::thread::scope(|scope| {
        let (held_tx, held_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let shared = &store;
        let reader = scope.spawn(move || {
            let _read = shared.inner().state.read();
            held_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        });
        held_rx.recv().unwrap();
        let busy = put();
        assert!(
            matches!(busy, Err(Error::WouldBlock(Blocked::StateBusy))),
            "{busy:?}"
        );
        // A write that changes nothing answers from the state it reads.
        let unchanged = store.without_waiting(|s| s.docs().delete("c", "missing"));
        assert!(!unchanged.unwrap());
        release_tx.send(()).unwrap();
        reader.join().unwrap();
    });
    assert_eq!(tail(), before, "nothing was appended");
    assert!(store.docs().get("c", "b").unwrap().is_none());
    assert_eq!(put().unwrap().unwrap().version, 1);
    assert_eq!(tail().0, before.0 + 1);
}

/// One write, made in place or through the store.
type StoreWrite = Box<dyn Fn(&dyn Store) -> Result<()>>;

/// Makes each of `writes` in place on `store`, and through the store's own
/// call when that is refused (having written nothing, which it checks);
/// the indexes of the writes refused for `why`.
fn refused_for(
    store: &LogStore,
    why: Blocked,
    writes: impl Iterator<Item = (usize, StoreWrite)>,
) -> Vec<usize> {
    let seq = || store.inner().writer.lock().last_seq();
    let mut refused = Vec::new();
    for (i, write) in writes {
        let before = seq();
        match store.without_waiting(|s| write(s)) {
            Ok(()) => {}
            Err(Error::WouldBlock(w)) => {
                assert_eq!(seq(), before, "a refused write writes nothing");
                if w == why {
                    refused.push(i);
                }
                write(store).unwrap();
            }
            Err(e) => panic!("{i}: {e}"),
        }
    }
    refused
}

fn flush_store() -> LogStore {
    let opts = Options {
        durability: Durability::Flush,
        auto_compact: false,
        ..Options::default()
    };
    LogStore::in_memory(opts).unwrap()
}

/// A `without_waiting` put of a new document that would grow one of its
/// collection's large tables past its capacity (a copy in proportion to
/// the collection's size) is refused with `LargeCopy`; the store's own put
/// makes it. Small tables grow in place.
#[test]
fn without_waiting_refuses_a_put_that_would_copy_a_large_table() {
    let store = flush_store();
    let id = |i: usize| format!("a-document-id-{i:06}");
    store
        .docs()
        .put("c", &id(0), serde_json::json!({}), None)
        .unwrap();
    let puts = (1..20_000).map(|i| {
        let put: StoreWrite = Box::new(move |s| {
            s.docs()
                .put("c", &id(i), serde_json::json!({}), None)
                .map(drop)
        });
        (i, put)
    });
    let refused = refused_for(&store, Blocked::LargeCopy, puts);
    // The slots (40 bytes each) double past 64 KiB at 2,048 documents and
    // at each power of two after; the ids (21 bytes each) a few times
    // between them. Nothing below 64 KiB is refused.
    for doubling in [2_048, 4_096, 8_192, 16_384] {
        assert!(refused.contains(&doubling), "{refused:?}");
    }
    assert!(refused.len() <= 8, "{refused:?}");
    assert!(refused[0] >= 1_639, "{refused:?}");
    assert_eq!(store.docs().count(&Query::new("c")).unwrap(), 20_000);
}

/// A `without_waiting` delete that would compact the ids of a large
/// collection (its removed ids reaching half of their buffer: a copy of
/// every live one and a walk of every slot) or grow its large list of free
/// numbers is refused with `LargeCopy`, writing nothing; the store's own
/// delete makes it.
#[test]
fn without_waiting_refuses_a_delete_that_would_copy_every_id() {
    let store = flush_store();
    let id = |i: usize| format!("a-document-id-{i:06}");
    store
        .batch(|s| {
            for i in 0..20_000 {
                s.docs()
                    .put("c", &id(i), serde_json::json!({}), None)
                    .unwrap();
            }
        })
        .unwrap();
    let deletes = (0..20_000).map(|i| {
        let delete: StoreWrite =
            Box::new(move |s| s.docs().delete("c", &id(i)).map(|done| assert!(done)));
        (i, delete)
    });
    let refused = refused_for(&store, Blocked::LargeCopy, deletes);
    // 20,000 ids of 21 bytes: half of them are garbage at the 10,001st
    // delete, and again each time half of what a compaction kept is gone
    // (each walks the 20,000 slots), until too little is left to compact;
    // the free numbers' list passes 64 KiB at the 16,385th.
    assert_eq!(refused[0], 10_000, "{refused:?}");
    assert!(refused.contains(&15_000), "{refused:?}");
    assert!(refused.contains(&16_384), "{refused:?}");
    assert!(refused.len() <= 12, "{refused:?}");
    assert_eq!(store.docs().count(&Query::new("c")).unwrap(), 0);
}

/// A clock that, once armed, lets another thread queue on the writer
/// lock while a write (which reads the clock under that lock) holds it.
#[derive(Debug, Default)]
struct QueueingClock {
    armed: AtomicBool,
    go: AtomicBool,
}

impl crate::options::Clock for QueueingClock {
    fn now_ms(&self) -> i64 {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.go.store(true, Ordering::SeqCst);
            // Long enough for the other thread to block on the lock.
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        1_000
    }
}

/// A `without_waiting` write that got the writer lock never takes it
/// again (the compactor check of every 64th write included): it returns
/// while another thread, queued behind it, holds the lock.
#[test]
fn without_waiting_never_waits_for_the_writer_lock_after_writing() {
    use std::time::{Duration, Instant};
    let clock = Arc::new(QueueingClock::default());
    let opts = Options {
        durability: Durability::Flush,
        auto_compact: true,
        compaction_min_bytes: u64::MAX / 2,
        clock: clock.clone(),
        ..Options::default()
    };
    let store = LogStore::in_memory(opts).unwrap();
    for i in 0..63 {
        let body = serde_json::json!({"i": i});
        store.docs().put("c", &format!("{i}"), body, None).unwrap();
    }
    let done = AtomicBool::new(false);
    let returned_while_held = std::thread::scope(|scope| {
        let holder = scope.spawn(|| {
            while !clock.go.load(Ordering::SeqCst) {
                std::hint::spin_loop();
            }
            let _held = store.inner().writer.lock();
            let deadline = Instant::now() + Duration::from_secs(10);
            while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            done.load(Ordering::SeqCst)
        });
        clock.armed.store(true, Ordering::SeqCst);
        let put = store.without_waiting(|s| s.docs().put("c", "64th", serde_json::json!({}), None));
        done.store(true, Ordering::SeqCst);
        assert!(put.unwrap().is_some());
        holder.join().unwrap()
    });
    assert!(
        returned_while_held,
        "the write waited for the lock it had released"
    );
}

/// `batch` defers each write's sync to its end: inside it, with the
/// next sync set to fail, every put still answers (nothing synced
/// yet), the batch returns the sync's error, and the store is poisoned.
/// With the sync healthy, one batch's writes are all there after a
/// reopen. Writes to another store inside the batch wait as usual.
#[test]
fn batch_defers_the_syncs_of_its_writes_to_its_end() {
    use crate::io::FaultFs;
    let fs = FaultFs::new();
    let open = || LogStore::open_with_fs(fs.as_vfs(), Path::new("s"), Options::default());
    let store = open().unwrap();
    store
        .docs()
        .put("c", "before", serde_json::json!({}), None)
        .unwrap();
    let other = LogStore::in_memory(Options::default()).unwrap();

    let answers = store
        .batch(|s| {
            (0..5)
                .map(|i| {
                    s.docs()
                        .put("c", &format!("{i}"), serde_json::json!({"i": i}), None)
                })
                .collect::<Vec<_>>()
        })
        .unwrap();
    assert!(answers.iter().all(|a| matches!(a, Ok(Some(_)))));
    // A session cannot close the store that handed it out.
    let closed = store.batch(Store::close).unwrap();
    assert!(matches!(closed, Err(Error::InvalidInput(_))), "{closed:?}");
    assert!(store.docs().get("c", "0").unwrap().is_some());

    fs.fail_next("sync");
    let mut inside = Vec::new();
    let failed = store.batch(|s| {
        for i in 5..10 {
            inside.push(
                s.docs()
                    .put("c", &format!("{i}"), serde_json::json!({}), None),
            );
        }
        // Another store's write is not the batch's: it syncs now.
        other
            .docs()
            .put("c", "x", serde_json::json!({}), None)
            .unwrap();
    });
    assert!(
        inside.iter().all(|a| matches!(a, Ok(Some(_)))),
        "{inside:?}"
    );
    assert!(matches!(failed, Err(Error::Io { .. })), "{failed:?}");
    assert!(matches!(
        store.docs().put("c", "after", serde_json::json!({}), None),
        Err(Error::Poisoned)
    ));
    drop(store);
    fs.heal();
    let store = open().unwrap();
    for i in 0..5 {
        assert!(store.docs().get("c", &format!("{i}")).unwrap().is_some());
    }
}

/// A write that changes nothing answers from the state, which may hold
/// another writer's record not yet synced: it answers only once that
/// record is durable. Here a lease taken inside a batch (its sync
/// deferred) makes a second acquire from another thread wait for that
/// sync, which fails: the second caller gets the error, never "held by
/// me" for a lease that was never durable.
#[test]
fn an_unchanged_answer_waits_for_the_records_it_rests_on() {
    use crate::io::FaultFs;
    let fs = FaultFs::new();
    let store = LogStore::open_with_fs(fs.as_vfs(), Path::new("s"), Options::default()).unwrap();
    store
        .docs()
        .put("c", "warm", serde_json::json!({}), None)
        .unwrap();
    fs.fail_next("sync");
    let mut other = None;
    let batch = store.batch(|s| {
        let taken = s.leases().acquire("k", "me", 60_000);
        assert!(
            matches!(taken, Ok(crate::Acquire::Acquired(_))),
            "{taken:?}"
        );
        other = Some(std::thread::scope(|scope| {
            scope
                .spawn(|| store.leases().acquire("k", "other", 60_000))
                .join()
                .unwrap()
        }));
    });
    let other = other.unwrap();
    assert!(
        other.is_err(),
        "answered from a record never durable: {other:?}"
    );
    assert!(batch.is_err(), "the batch's sync failed too: {batch:?}");
    assert_eq!(fs.injected(), 1);
}

/// A `flush` store with `n` documents in "c" (indexed on `owner`, `rank`
/// and `half`): all but every tenth owned by "a", the rest by "b", ranks
/// unique and scrambled, `half` "x" or "y".
fn ranked_store(n: usize) -> LogStore {
    let opts = Options {
        durability: Durability::Flush,
        auto_compact: false,
        ..Options::default()
    };
    let store = LogStore::in_memory(opts).unwrap();
    store
        .docs()
        .ensure_collection("c", &["owner", "rank", "half"])
        .unwrap();
    store
        .batch(|s| {
            for i in 0..n {
                let owner = if i % 10 == 0 { "b" } else { "a" };
                let rank = format!("{:08}", (i * 7919) % n);
                let half = if i % 2 == 0 { "x" } else { "y" };
                let body = serde_json::json!({"owner": owner, "rank": rank, "half": half});
                s.docs().put("c", &format!("d{i:06}"), body, None).unwrap();
            }
        })
        .unwrap();
    store
}

fn query(filter: &[(&str, &str)], order_by: Option<&str>, desc: bool, limit: usize) -> Query {
    let mut q = Query::new("c");
    q.filter = filter
        .iter()
        .map(|(f, v)| (f.to_string(), serde_json::json!(v)))
        .collect();
    q.order_by = order_by.map(str::to_string);
    q.order_dir = if desc {
        crate::OrderDir::Desc
    } else {
        crate::OrderDir::Asc
    };
    q.limit = limit;
    q
}

const UNLIMITED: Budget = Budget {
    entries: u64::MAX,
    rows: u64::MAX,
    bytes: u64::MAX,
};

/// `query_raw_within` declines, reading nothing, a query whose plan sorts
/// the whole collection even for a 10-row page, and runs a page walked
/// straight from an index at the same cost whatever the collection's
/// size; what it answers is what `query_raw` answers.
#[test]
fn query_within_a_budget_is_decided_by_the_plan_not_the_page() {
    let small_budget = Budget {
        entries: 500,
        rows: 100,
        bytes: 64 * 1024,
    };
    for n in [2_000, 20_000] {
        let store = ranked_store(n);
        let inner = store.inner();
        let work = |q: &Query| {
            let state = inner.state.read();
            let checked = crate::validate::query(q, state.indexes("c")).unwrap();
            state.query_work("c", &checked)
        };
        // Ordered by a field: every candidate is collected and sorted.
        let sorted = query(&[("owner", "a")], Some("rank"), false, 10);
        assert!(work(&sorted) >= (n * 9 / 10) as u64, "{n}");
        assert_eq!(store.query_raw_within(&sorted, small_budget).unwrap(), None);
        let everything = query(&[], Some("rank"), true, 10);
        assert!(work(&everything) >= n as u64);
        assert_eq!(
            store.query_raw_within(&everything, small_budget).unwrap(),
            None
        );
        // Two filters in the default order may check every candidate.
        let two = query(&[("owner", "a"), ("half", "x")], None, false, 10);
        assert_eq!(store.query_raw_within(&two, small_budget).unwrap(), None);

        // Walked from an index: the page's length (and a skip of whole
        // chunks), at 2,000 documents as at 20,000.
        let pages = [
            query(&[("owner", "b")], None, false, 10),
            query(&[("owner", "a")], None, true, 10),
            query(&[], None, false, 10),
            query(&[], Some("id"), true, 10),
            query(
                &[("owner", "a"), ("rank", "00000001")],
                Some("rank"),
                false,
                10,
            ),
        ];
        for q in &pages {
            assert!(work(q) <= 20, "{q:?} costs {}", work(q));
            let within = store.query_raw_within(q, small_budget).unwrap();
            let rows = within.expect("under the budget");
            assert!(!rows.is_empty());
            assert_eq!(rows, store.docs().query_raw(q).unwrap());
        }
        // A deep page of the default order skips whole chunks.
        let mut deep = query(&[], None, false, 10);
        deep.offset = n - 5;
        assert!(work(&deep) <= 10 + (n / 512 + 1) as u64);
        assert_eq!(
            store
                .query_raw_within(&deep, small_budget)
                .unwrap()
                .unwrap(),
            store.docs().query_raw(&deep).unwrap()
        );

        // With room for the work, every shape answers as `query_raw`.
        for q in [&sorted, &everything, &two].into_iter().chain(&pages) {
            assert_eq!(
                store.query_raw_within(q, UNLIMITED).unwrap().unwrap(),
                store.docs().query_raw(q).unwrap()
            );
        }
    }
}

/// The rows count too: a page walked from an index with more rows than the
/// budget's, or whose records hold more than its bytes, is declined; an
/// invalid query is still an error.
#[test]
fn query_within_a_budget_counts_the_bytes_of_the_rows() {
    let store = ranked_store(1_000);
    let page = query(&[], None, false, 500);
    let rows = store.docs().query_raw(&page).unwrap();
    let held = {
        let state = store.inner().state.read();
        let checked = crate::validate::query(&page, state.indexes("c")).unwrap();
        state
            .query("c", &checked)
            .iter()
            .map(|loc| u64::from(loc.len))
            .sum::<u64>()
    };
    let exact = Budget {
        entries: 1_000,
        rows: 500,
        bytes: held,
    };
    assert_eq!(store.query_raw_within(&page, exact).unwrap().unwrap(), rows);
    let short = Budget {
        bytes: held - 1,
        ..exact
    };
    assert_eq!(store.query_raw_within(&page, short).unwrap(), None);
    let fewer = Budget { rows: 499, ..exact };
    assert_eq!(store.query_raw_within(&page, fewer).unwrap(), None);
    let invalid = query(&[("missing", "x")], None, false, 10);
    assert!(matches!(
        store.query_raw_within(&invalid, exact),
        Err(Error::InvalidInput(_))
    ));
}

/// A count with one filter or none reads the size of a list, so it fits
/// any budget; with two it walks the smaller filter's documents and is
/// declined past the budget; under it, it answers as `count`.
#[test]
fn count_within_a_budget_declines_only_a_walk() {
    let store = ranked_store(5_000);
    let tiny = Budget {
        entries: 1,
        rows: 0,
        bytes: 0,
    };
    for q in [
        query(&[], None, false, 0),
        query(&[("owner", "a")], None, false, 0),
    ] {
        let count = store.count_within(&q, tiny).unwrap();
        assert_eq!(count, Some(store.docs().count(&q).unwrap()));
    }
    let two = query(&[("owner", "a"), ("half", "x")], None, false, 0);
    let budget = Budget {
        entries: 2_000,
        rows: 0,
        bytes: 0,
    };
    assert_eq!(store.count_within(&two, budget).unwrap(), None);
    let rare = query(&[("owner", "b"), ("rank", "00000001")], None, false, 0);
    assert_eq!(
        store.count_within(&rare, budget).unwrap(),
        Some(store.docs().count(&rare).unwrap())
    );
    assert_eq!(
        store.count_within(&two, UNLIMITED).unwrap(),
        Some(store.docs().count(&two).unwrap())
    );
}

/// A read within a budget never waits for the state lock: while a writer
/// holds it (a compaction's switch), it declines; once free, it answers.
#[test]
fn reads_within_a_budget_decline_while_the_state_is_write_locked() {
    let store = ranked_store(100);
    let q = query(&[("owner", "a")], None, false, 10);
    let held = store.inner().state.write();
    assert_eq!(store.query_raw_within(&q, UNLIMITED).unwrap(), None);
    assert_eq!(store.count_within(&q, UNLIMITED).unwrap(), None);
    drop(held);
    assert_eq!(
        store
            .query_raw_within(&q, UNLIMITED)
            .unwrap()
            .unwrap()
            .len(),
        10
    );
    assert_eq!(store.count_within(&q, UNLIMITED).unwrap(), Some(90));
}

/// `get_raw_within` answers as `get_raw` (a missing document is
/// `Some(None)`), and declines, reading nothing, a record over the budget's
/// bytes or a state another thread write-locks.
#[test]
fn get_within_a_budget_declines_a_large_record_or_a_busy_state() {
    let store = flush_store();
    store
        .docs()
        .put("c", "small", serde_json::json!({"t": "x"}), None)
        .unwrap();
    let text = "x".repeat(100_000);
    store
        .docs()
        .put("c", "large", serde_json::json!({ "t": text }), None)
        .unwrap();
    let budget = Budget {
        entries: 1,
        rows: 1,
        bytes: 64 * 1024,
    };
    let small = store.get_raw_within("c", "small", budget).unwrap();
    assert_eq!(small, Some(store.docs().get_raw("c", "small").unwrap()));
    assert!(small.unwrap().is_some());
    assert_eq!(
        store.get_raw_within("c", "none", budget).unwrap(),
        Some(None)
    );
    assert_eq!(store.get_raw_within("c", "large", budget).unwrap(), None);
    assert!(store
        .get_raw_within("c", "large", UNLIMITED)
        .unwrap()
        .is_some());
    let held = store.inner().state.write();
    assert_eq!(store.get_raw_within("c", "small", budget).unwrap(), None);
    drop(held);
    assert!(matches!(
        store.get_raw_within("", "small", budget),
        Err(Error::InvalidInput(_))
    ));
}

/// `blob_get_within` answers as `get` (a missing blob is `Some(None)`),
/// and declines, reading nothing, a blob over its byte limit or a state
/// another thread write-locks.
#[test]
fn blob_get_within_declines_a_large_blob_or_a_busy_state() {
    use crate::contract::BlobPut;
    use std::io::Read;
    let store = flush_store();
    let put = |bytes: &[u8]| {
        store
            .blobs()
            .put(&mut &bytes[..], BlobPut::default())
            .unwrap()
    };
    let small = put(b"four");
    let large = put(&[7u8; 5000]);
    let read = |found: Option<(BlobMeta, BlobReader)>| {
        let (meta, mut reader) = found.unwrap();
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).unwrap();
        (meta, bytes)
    };
    let (meta, bytes) = read(store.blob_get_within(&small.id, 4096).unwrap().unwrap());
    assert_eq!((meta, bytes), (small.clone(), b"four".to_vec()));
    assert!(store.blob_get_within(&large.id, 4096).unwrap().is_none());
    let (meta, bytes) = read(store.blob_get_within(&large.id, 5000).unwrap().unwrap());
    assert_eq!((meta, bytes), (large, vec![7u8; 5000]));
    let none = "00000000-0000-0000-0000-000000000000";
    assert!(matches!(store.blob_get_within(none, 4096), Ok(Some(None))));
    let held = store.inner().state.write();
    assert!(store.blob_get_within(&small.id, 4096).unwrap().is_none());
    drop(held);
    assert!(matches!(
        store.blob_get_within("abc.png", 4096),
        Err(Error::InvalidInput(_))
    ));
    store.close().unwrap();
    assert!(matches!(
        store.blob_get_within(&small.id, 4096),
        Err(Error::Closed)
    ));
}
