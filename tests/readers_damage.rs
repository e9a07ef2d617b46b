//! A read-only handle on a store whose newest segment is damaged where a
//! writable open will cut it: the reader serves the same prefix, and its
//! recovery report and `verify` name the records the cut will take, while
//! a record caught half-written beside a live writer is still no damage.
//!
//! The store is the one a user reported: a writer under `Durability::Sync`
//! killed after a compaction (so the manifest's base segment has an id
//! above the horizon, and the writer's segment is not the highest-numbered
//! file), then one byte flipped 8 KiB before the end of the writer's
//! segment.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::wrap_fs::WrapFs;
use logstore::io::{MemFs, VFile};
use logstore::{Durability, LogStore, ManualClock, Options, Store};
use serde_json::json;

/// Small segments, so that the writer's segment fills up: its file is
/// then `SEGMENT` long, zeros reserved up to there.
const SEGMENT: u64 = 64 * 1024;

fn opts() -> Options {
    let clock = Arc::new(ManualClock::new(1_000));
    common::test_opts(&clock, Durability::Sync, SEGMENT)
}

fn dir() -> &'static Path {
    Path::new("db")
}

fn segment_path(id: u32) -> PathBuf {
    dir().join(format!("{id:020}.seg"))
}

fn docs(store: &LogStore) -> usize {
    common::all_docs(store.docs(), "c").len()
}

/// A killed writer's files: documents and blobs, a compaction, then
/// documents in the writer's segment until its records reach `records_to`
/// (each one padded to a page by its sync). Returns the files, how many
/// documents were acknowledged, and the writer's segment.
fn killed_writer(records_to: u64) -> (MemFs, usize, PathBuf) {
    let fs = MemFs::new();
    let store = LogStore::open_with_fs(Arc::new(fs.clone()), dir(), opts()).unwrap();
    store.docs().ensure_collection("c", &["owner"]).unwrap();
    for i in 0..300 {
        let body = json!({"owner": "o", "pad": "x".repeat(300)});
        store
            .docs()
            .put("c", &format!("d{}", i % 150), body, None)
            .unwrap();
        if i % 40 == 0 {
            common::blobs::put(&store, format!("blob {i}").as_bytes());
        }
    }
    store.compact().unwrap();
    let manifest = fs.file(&dir().join("MANIFEST")).unwrap().contents();
    let horizon = u32::from_le_bytes(manifest[12..16].try_into().unwrap());
    let ids = common::segment_ids(&fs, dir());
    assert_eq!(
        ids,
        [horizon, horizon + 1],
        "the compaction's output is above the horizon"
    );
    let active = segment_path(horizon);
    let mut acked = 150;
    while common::log_end(&fs.file(&active).unwrap().contents()) < records_to {
        let body = json!({"owner": "o", "pad": "y".repeat(300)});
        store
            .docs()
            .put("c", &format!("e{acked}"), body, None)
            .unwrap();
        acked += 1;
        assert_eq!(common::segment_ids(&fs, dir()), ids, "the writer rolled");
    }
    let image = fs.deep_copy();
    // SIGKILL: no close, no snapshot at the end.
    std::mem::forget(store);
    (image, acked, active)
}

/// Flips the byte 8 KiB before the end of the file at `path`; returns
/// its offset.
fn flip_8k_before_the_end(fs: &MemFs, path: &Path) -> u64 {
    let file = fs.file(path).unwrap();
    let at = file.size().unwrap() - 8192;
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, at).unwrap();
    file.write_all_at(&[byte[0] ^ 0xff], at).unwrap();
    at
}

/// The reported case: the byte is among the last records (the segment is
/// nearly full). A writable open cuts there and quarantines the records
/// after it; the read-only open serves the same prefix, writes nothing,
/// and both its recovery report and `verify` name that cut.
#[test]
fn a_read_only_open_reports_records_after_damage_that_a_writable_open_cuts() {
    let (image, acked, active) = killed_writer(SEGMENT - 4000);
    assert_eq!(image.file(&active).unwrap().size().unwrap(), SEGMENT);
    let at = flip_8k_before_the_end(&image, &active);
    let before = image.snapshot();

    let reader = LogStore::open_read_only_with_fs(Arc::new(image.clone()), dir(), opts()).unwrap();
    let seen = reader.recovery_report().truncated.clone();
    let verified = reader.verify().unwrap();
    let read_only_docs = docs(&reader);
    drop(reader);
    assert!(image.snapshot() == before, "the read-only open wrote");

    let writer = LogStore::open_with_fs(Arc::new(image.deep_copy()), dir(), opts()).unwrap();
    let cut = writer
        .recovery_report()
        .truncated
        .clone()
        .expect("a writable open cuts");
    assert!(
        cut.offset <= at && at < cut.offset + cut.bytes_cut,
        "{cut:?}"
    );
    assert!(
        docs(&writer) < acked,
        "the damage is among acknowledged records"
    );
    assert_eq!(read_only_docs, docs(&writer), "the same prefix");

    let seen = seen.expect("the read-only report names the tail a writable open cuts");
    assert_eq!(
        (
            &seen.file,
            seen.offset,
            seen.bytes_cut,
            seen.quarantined.as_ref()
        ),
        (&cut.file, cut.offset, cut.bytes_cut, None)
    );
    assert!(!verified.is_clean(), "verify says ok: {verified:?}");
    assert!(
        verified
            .problems
            .iter()
            .any(|p| p.file == active && p.offset == cut.offset),
        "{:?}",
        verified.problems
    );
}

/// The other place 8 KiB before the end can be: the zeros reserved past
/// the last record. Both opens end the log at its last record, and no
/// acknowledged document is lost.
#[test]
fn a_flipped_byte_in_the_reserved_zeros_loses_no_record() {
    let (image, acked, active) = killed_writer(SEGMENT - 3 * 4096);
    let at = flip_8k_before_the_end(&image, &active);
    assert!(common::log_end(&image.file(&active).unwrap().contents()) == at + 1);
    let reader = LogStore::open_read_only_with_fs(Arc::new(image.clone()), dir(), opts()).unwrap();
    assert_eq!(docs(&reader), acked);
    let writer = LogStore::open_with_fs(Arc::new(image.deep_copy()), dir(), opts()).unwrap();
    assert_eq!(docs(&writer), acked);
    assert_eq!(
        common::workload_dump(&reader),
        common::workload_dump(&writer)
    );
}

/// Beside a live writer a read may find a record not yet whole and the
/// next one whole after it. Read again, the first is whole: that is an
/// append in progress, not damage. The view ends before it, nothing is
/// reported, and a refresh reads on.
#[test]
fn a_record_read_half_written_with_the_next_whole_is_not_damage() {
    let (image, acked, active) = killed_writer(SEGMENT - 4000);
    // The second-last record: every record fills a page of its own.
    let record = (common::log_end(&image.file(&active).unwrap().contents()) / 4096 - 1) * 4096;
    // The first read of the record shows its header as zeros, as a read
    // racing its append may (its first page not yet written, its later
    // ones and the next append already).
    let fs = WrapFs::new(Arc::new(image));
    fs.hide_once(&active, record, record + 12);
    let reader = LogStore::open_read_only_with_fs(Arc::new(fs.clone()), dir(), opts()).unwrap();
    assert!(!fs.hidden_pending(), "the read saw the record half-written");
    assert_eq!(reader.recovery_report().truncated, None);
    assert_eq!(docs(&reader), acked - 2);
    let verified = reader.verify().unwrap();
    assert!(verified.is_clean(), "{:?}", verified.problems);
    reader.refresh().unwrap();
    assert_eq!(docs(&reader), acked);
}
