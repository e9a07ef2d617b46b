//! Recovery: torn tails are cut back to the longest whole prefix; damage
//! anywhere else is `Error::Corruption` with the file and offset.

mod common;

use std::fs::OpenOptions;
use std::path::Path;

use common::{all_docs, copy_store, flush_opts, log_end, segments};
use logstore::{Error, LogStore, Options, Query, Store};
use serde_json::json;

/// Writes `n` documents and returns the newest segment's length after each
/// write (the record boundaries).
fn build(dir: &Path, n: usize, opts: Options) -> Vec<u64> {
    let store = LogStore::open(dir, opts).unwrap();
    store.docs().ensure_collection("c", &["owner"]).unwrap();
    let mut ends = Vec::new();
    for i in 0..n {
        let body = json!({"owner": format!("o{}", i % 3), "text": "x".repeat(i * 7)});
        store
            .docs()
            .put("c", &format!("d{i:03}"), body, None)
            .unwrap();
        // Where the log ends in its newest segment (the file itself runs on
        // with the zeros the writer reserves ahead).
        let newest = segments(dir).pop().unwrap();
        ends.push(log_end(&std::fs::read(newest).unwrap()));
    }
    store.close().unwrap();
    // Trim the reserved zeros, so the file ends with its last record.
    let newest = segments(dir).pop().unwrap();
    truncate(&newest, *ends.last().unwrap());
    // These tests are about replaying the log; without the index snapshot
    // that close writes, open reads every record.
    std::fs::remove_file(dir.join("SNAPSHOT")).unwrap();
    ends
}

fn truncate(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn flip_bit(path: &Path, offset: u64, bit: u8) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 1 << bit;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn truncation_at_every_offset_keeps_the_longest_whole_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    let ends = build(&base, 6, flush_opts());
    let segment_name = segments(&base)
        .pop()
        .unwrap()
        .file_name()
        .unwrap()
        .to_owned();
    // Every byte of the last three records, and their boundaries.
    let first = ends[2];
    let last = *ends.last().unwrap();
    assert!(
        last - first > 60,
        "the sweep covers the last records: {first}..{last}"
    );
    for cut in first..=last {
        let dir = tmp.path().join(format!("cut{cut}"));
        copy_store(&base, &dir);
        truncate(&dir.join(&segment_name), cut);
        let whole = ends.iter().filter(|&&end| end <= cut).count();
        {
            let store = LogStore::open(&dir, flush_opts()).unwrap();
            let report = store.recovery_report().clone();
            assert_eq!(
                report.truncated.is_some(),
                !ends.contains(&cut),
                "cut at {cut}"
            );
            if let Some(t) = &report.truncated {
                assert_eq!(
                    t.offset,
                    ends[whole - 1],
                    "cut back to the last whole record"
                );
                assert_eq!(t.bytes_cut, cut - t.offset);
            }
            let docs = all_docs(store.docs(), "c");
            let expected: Vec<String> = (0..whole).map(|i| format!("d{i:03}")).collect();
            let got: Vec<String> = docs.iter().map(|d| d.id.clone()).collect();
            assert_eq!(got, expected, "cut at {cut}");
            store
                .docs()
                .put("c", "after", json!({"owner": "o0"}), None)
                .unwrap();
            store.close().unwrap();
        }
        let store = LogStore::open(&dir, flush_opts()).unwrap();
        assert!(
            store.recovery_report().truncated.is_none(),
            "the second open finds a clean log"
        );
        assert_eq!(all_docs(store.docs(), "c").len(), whole + 1);
        assert!(store.docs().get("c", "after").unwrap().is_some());
        let owners = store
            .docs()
            .count(&Query::new("c").filter("owner", "o0"))
            .unwrap();
        assert_eq!(
            owners as usize,
            (0..whole).filter(|i| i % 3 == 0).count() + 1
        );
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn tail_junk_is_cut_without_changing_state() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    build(&base, 4, flush_opts());
    let mut huge_header = vec![0u8; 8];
    huge_header[..4].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    huge_header[4..].copy_from_slice(&0x1234_5678u32.to_le_bytes());
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for (name, junk) in [
        ("zeros", vec![0u8; 10_000]),
        ("random", random),
        ("huge", huge_header),
    ] {
        let dir = tmp.path().join(name);
        copy_store(&base, &dir);
        let seg = segments(&dir).pop().unwrap();
        let clean_len = std::fs::metadata(&seg).unwrap().len();
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes.extend_from_slice(&junk);
        std::fs::write(&seg, bytes).unwrap();
        let store = LogStore::open(&dir, flush_opts()).unwrap();
        if name == "zeros" {
            // Zeros to the end are space reserved for appends, not a torn
            // record: nothing to cut, and appends resume after the log.
            assert_eq!(store.recovery_report().truncated, None);
        } else {
            let cut = store
                .recovery_report()
                .truncated
                .clone()
                .expect("junk was cut");
            assert_eq!(cut.offset, clean_len, "{name}");
            assert!(
                std::fs::metadata(&seg).unwrap().len() <= clean_len + (1 << 20),
                "{name}"
            );
        }
        assert_eq!(all_docs(store.docs(), "c").len(), 4, "{name}");
        store
            .docs()
            .put("c", "after", json!({"owner": "o0"}), None)
            .unwrap();
        drop(store);
        let store = LogStore::open(&dir, flush_opts()).unwrap();
        assert_eq!(all_docs(store.docs(), "c").len(), 5, "{name}");
    }
}

#[test]
fn damage_followed_by_good_records_is_corruption_with_the_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    let ends = build(&base, 5, flush_opts());
    let segment_name = segments(&base)
        .pop()
        .unwrap()
        .file_name()
        .unwrap()
        .to_owned();
    // The third document's record starts where the second one ended.
    let start = ends[1];
    let payload_byte = start + 8 + 5;
    for (what, offset, bit) in [
        ("length", start, 0),
        ("length high bit", start + 3, 7),
        ("checksum", start + 4, 3),
        ("payload", payload_byte, 1),
    ] {
        let dir = tmp.path().join(what.replace(' ', "_"));
        copy_store(&base, &dir);
        let seg = dir.join(&segment_name);
        let before = std::fs::read(&seg).unwrap();
        flip_bit(&seg, offset, bit);
        match LogStore::open(&dir, flush_opts()) {
            Err(Error::Corruption { file, offset, .. }) => {
                assert_eq!(file, seg, "{what}");
                assert_eq!(offset, start, "{what}");
            }
            other => panic!("{what}: expected corruption, got {other:?}"),
        }
        let mut after = std::fs::read(&seg).unwrap();
        after[(offset) as usize] ^= 1 << bit;
        assert_eq!(after, before, "{what}: a failed open changes nothing");
    }
}

#[test]
fn damage_in_a_sealed_segment_is_corruption_even_at_its_end() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let opts = Options {
        segment_bytes: 4096,
        ..flush_opts()
    };
    build(&dir, 60, opts.clone());
    let segs = segments(&dir);
    assert!(segs.len() >= 3, "small segments roll: {}", segs.len());
    let sealed = &segs[0];
    let len = std::fs::metadata(sealed).unwrap().len();
    flip_bit(sealed, len - 1, 0);
    match LogStore::open(&dir, opts.clone()) {
        Err(Error::Corruption { file, .. }) => assert_eq!(&file, sealed),
        other => panic!("expected corruption, got {other:?}"),
    }
    // A sealed segment cut short is damage too, never a shorter store.
    flip_bit(sealed, len - 1, 0);
    truncate(sealed, len - 3);
    assert!(matches!(
        LogStore::open(&dir, opts),
        Err(Error::Corruption { .. })
    ));
}

#[test]
fn with_a_snapshot_damage_is_reported_when_the_record_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let ends = build(&dir, 5, flush_opts());
    // Open and close once more to write a snapshot covering every record.
    LogStore::open(&dir, flush_opts()).unwrap().close().unwrap();
    let seg = segments(&dir).pop().unwrap();
    flip_bit(&seg, ends[1] + 8 + 5, 1);
    let store = LogStore::open(&dir, flush_opts()).unwrap();
    assert_eq!(
        store.recovery_report().snapshot,
        logstore::SnapshotUse::Loaded
    );
    match store.docs().get("c", "d002") {
        Err(Error::Corruption { file, offset, .. }) => assert_eq!((file, offset), (seg, ends[1])),
        other => panic!("expected corruption, got {other:?}"),
    }
    assert!(store.docs().get("c", "d001").unwrap().is_some());
}

#[test]
fn a_torn_segment_header_is_rebuilt_when_nothing_follows() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let opts = Options {
        segment_bytes: 4096,
        ..flush_opts()
    };
    build(&dir, 60, opts.clone());
    // A crash while the next segment was being created: a short header.
    // A roll trims the sealed segment's reserved zeros before it creates
    // the next one; do the same here.
    let next = segments(&dir).pop().unwrap();
    truncate(&next, log_end(&std::fs::read(&next).unwrap()));
    let stem: u64 = next.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let torn = dir.join(format!("{:020}.seg", stem + 1));
    std::fs::write(&torn, b"LOGST").unwrap();
    let store = LogStore::open(&dir, opts.clone()).unwrap();
    assert!(store.recovery_report().truncated.is_some());
    assert_eq!(all_docs(store.docs(), "c").len(), 60);
    store.docs().put("c", "new", json!({}), None).unwrap();
    store.close().unwrap();
    let store = LogStore::open(&dir, opts).unwrap();
    assert_eq!(all_docs(store.docs(), "c").len(), 61);
}
