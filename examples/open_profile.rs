//! Open time and index memory against document count, for BENCHMARKS.md.
//!
//! `cargo run --release --example open_profile -- 10000 100000 1000000`
//!
//! For each count it builds a store of chat-turn documents with two indexes
//! (Flush durability, compacted, closed so a snapshot exists), then opens
//! it from the snapshot and by full replay, and measures the heap the open
//! store holds with a counting allocator. "Beyond strings" takes from that
//! heap the strings any design must hold: every id, and each distinct index
//! value once (the index stores a value once however many documents hold
//! it); "estimate" is `Stats::index_bytes_estimate`, from the structures'
//! capacities.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use logstore::{Durability, LogStore, Options, Store};
use logstore_workload as workload;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn opts() -> Options {
    Options {
        durability: Durability::Flush,
        auto_compact: false,
        ..Options::default()
    }
}

fn build(dir: &std::path::Path, n: u64) -> std::io::Result<()> {
    let store = LogStore::open(dir, opts()).map_err(std::io::Error::other)?;
    workload::load(&store, n).map_err(std::io::Error::other)?;
    store.close().map_err(std::io::Error::other)
}

fn main() -> std::io::Result<()> {
    let counts: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let counts = if counts.is_empty() {
        vec![10_000, 100_000]
    } else {
        counts
    };
    let tmp = std::env::temp_dir().join(format!("logstore-open-profile-{}", std::process::id()));
    println!("| documents | open from snapshot | full replay | heap per document | of which id strings | beyond strings | estimate |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for n in counts {
        let dir = tmp.join(n.to_string());
        build(&dir, n)?;
        let before = LIVE.load(Ordering::Relaxed);
        let started = Instant::now();
        let store = LogStore::open(&dir, opts()).map_err(std::io::Error::other)?;
        let snapshot_time = started.elapsed();
        assert_eq!(
            store.recovery_report().snapshot,
            logstore::SnapshotUse::Loaded
        );
        let heap = LIVE.load(Ordering::Relaxed).saturating_sub(before);
        let estimate = store
            .stats()
            .map_err(std::io::Error::other)?
            .index_bytes_estimate;
        drop(store);
        // Strings the index must hold whatever its design: each id, and
        // each distinct index value once.
        let ids = n as usize * workload::id(0).len();
        let values = (workload::CONVERSATIONS.min(n) as usize * workload::conversation(0).len())
            + (workload::AUTHORS.min(n) as usize * workload::author(0).len());
        std::fs::remove_file(dir.join("SNAPSHOT"))?;
        let started = Instant::now();
        let store = LogStore::open(&dir, opts()).map_err(std::io::Error::other)?;
        let replay_time = started.elapsed();
        drop(store);
        let per_doc = |bytes: usize| bytes as f64 / n as f64;
        println!(
            "| {n} | {:.1} ms | {:.1} ms | {:.1} B | {:.1} B | {:.1} B | {:.1} B |",
            snapshot_time.as_secs_f64() * 1e3,
            replay_time.as_secs_f64() * 1e3,
            per_doc(heap),
            per_doc(ids),
            per_doc(heap.saturating_sub(ids + values)),
            per_doc(estimate as usize),
        );
        if std::env::var_os("KEEP").is_none() {
            std::fs::remove_dir_all(&dir)?;
        } else {
            println!("kept {}", dir.display());
        }
    }
    if std::env::var_os("KEEP").is_none() {
        std::fs::remove_dir_all(&tmp).ok();
    }
    Ok(())
}
