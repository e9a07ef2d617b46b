//! Recovery: the newest segment is cut back to the longest whole prefix,
//! with whatever followed kept in quarantine; damage to a sealed segment is
//! `Error::Corruption` with the file and offset. No byte a user chose, no
//! page persisted out of order and no file length decides more than that.

mod common;

use common::crash::{built, flip_bit, truncate, write_survives_reopen};
use common::{all_docs, copy_store, flush_opts, frame_v2, log_end, salt_of, segments};
use logstore::{Error, LogStore, Options, Query, Store};
use serde_json::json;

/// Options with segments of 4 KiB, so a few dozen documents roll several.
fn small_segments() -> Options {
    Options {
        segment_bytes: 4096,
        ..flush_opts()
    }
}

#[test]
fn truncation_at_every_offset_keeps_the_longest_whole_prefix() {
    let (tmp, base, ends, newest) = built("base", 6, flush_opts());
    let segment_name = newest.file_name().unwrap();
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
        truncate(&dir.join(segment_name), cut);
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
                // What was cut runs to the last non-zero byte, and a copy
                // of the segment up to there is kept in quarantine.
                assert!(t.bytes_cut <= cut - t.offset && t.bytes_cut > 0);
                let copy = t.quarantined.as_ref().expect("the cut bytes are kept");
                let kept = std::fs::read(copy).unwrap();
                assert_eq!(kept.len() as u64, t.offset + t.bytes_cut);
                assert_eq!(
                    &kept[..],
                    &std::fs::read(base.join(segment_name)).unwrap()[..kept.len()]
                );
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
    let (tmp, base, _, _) = built("base", 4, flush_opts());
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

/// Damage in the newest segment followed by whole records is either debris
/// of unsynced writes (pages persist in any order) or damage to synced
/// bytes; recovery cannot tell which, so the store opens with the log cut
/// at the damage and every byte after it kept in quarantine, named in the
/// report, never dropped silently.
#[test]
fn damage_followed_by_good_records_is_cut_and_quarantined() {
    let (tmp, base, ends, newest) = built("base", 5, flush_opts());
    let segment_name = newest.file_name().unwrap();
    // The third document's record starts where the second one ended.
    let start = ends[1];
    let payload_byte = start + 12 + 5;
    for (what, offset, bit) in [
        ("length", start, 0),
        ("length high bit", start + 3, 7),
        ("header checksum", start + 4, 3),
        ("checksum", start + 8, 3),
        ("payload", payload_byte, 1),
    ] {
        let dir = tmp.path().join(what.replace(' ', "_"));
        copy_store(&base, &dir);
        let seg = dir.join(segment_name);
        flip_bit(&seg, offset, bit);
        let damaged = std::fs::read(&seg).unwrap();
        let store = LogStore::open(&dir, flush_opts()).unwrap();
        let cut = store.recovery_report().truncated.clone().expect("a cut");
        assert_eq!(cut.file, seg, "{what}");
        assert_eq!(cut.offset, start, "{what}");
        let copy = cut.quarantined.expect("the bytes after the cut are kept");
        let kept = std::fs::read(&copy).unwrap();
        assert_eq!(kept, damaged[..kept.len()], "{what}");
        assert!(kept.len() as u64 >= *ends.last().unwrap(), "{what}");
        let ids: Vec<String> = all_docs(store.docs(), "c")
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(ids, ["d000", "d001"], "{what}: the log is a prefix");
    }
}

#[test]
fn damage_in_a_sealed_segment_is_corruption_even_at_its_end() {
    let opts = small_segments();
    let (_tmp, dir, _, _) = built("store", 60, opts.clone());
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
    let (_tmp, dir, ends, seg) = built("store", 5, flush_opts());
    // Open and close once more to write a snapshot covering every record.
    LogStore::open(&dir, flush_opts()).unwrap().close().unwrap();
    flip_bit(&seg, ends[1] + 12 + 5, 1);
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
    let opts = small_segments();
    let (_tmp, dir, _, next) = built("store", 60, opts.clone());
    // A crash while the next segment was being created: a short header.
    // A roll trims the sealed segment's reserved zeros before it creates
    // the next one; do the same here.
    truncate(&next, log_end(&std::fs::read(&next).unwrap()));
    let stem: u64 = next.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let torn = dir.join(format!("{:020}.seg", stem + 1));
    std::fs::write(&torn, b"LOGST").unwrap();
    let store = LogStore::open(&dir, opts.clone()).unwrap();
    assert!(store.recovery_report().truncated.is_some());
    assert_eq!(all_docs(store.docs(), "c").len(), 60);
    write_survives_reopen(store, &dir, opts, 60);
}

/// An id that holds a complete, valid frame (even one built with the real
/// salt, which an attacker cannot know) changes nothing: a torn append of
/// that record is cut like any other, and the store opens.
#[test]
fn an_id_holding_a_valid_frame_cannot_turn_a_torn_tail_into_damage() {
    let (_tmp, dir, ends, seg) = built("store", 3, flush_opts());
    let salt = salt_of(&std::fs::read(&seg).unwrap());
    // The next record starts at ends[2]; its id starts after the 12-byte
    // frame header, kind (1), collection "c" (4 + 1) and the id length (4).
    let id_at = ends[2] + 12 + 1 + 5 + 4;
    // A doc-delete record of collection "c", id "d000", as a frame placed
    // exactly where it would sit inside the id (ids are UTF-8, so the
    // attacker's bytes must be too: try salts until the frame is ASCII-free
    // of invalid sequences is not needed; a lossy id is still the test).
    let mut payload = vec![3u8];
    payload.extend_from_slice(&1u32.to_le_bytes());
    payload.extend_from_slice(b"c");
    payload.extend_from_slice(&4u32.to_le_bytes());
    payload.extend_from_slice(b"d000");
    let crafted = frame_v2(salt, id_at, &payload);
    let id = String::from_utf8_lossy(&crafted).into_owned();
    let store = LogStore::open(&dir, flush_opts()).unwrap();
    store
        .docs()
        .put("c", &id, json!({"owner": "o1"}), None)
        .unwrap();
    store.close().unwrap();
    let bytes = std::fs::read(&seg).unwrap();
    // The carrier record ends with its body (close padded the log after it).
    let body = br#"{"owner":"o1"}"#;
    let end = bytes
        .windows(body.len())
        .rposition(|w| w == body)
        .expect("the record is in the segment")
        + body.len();
    // Tear the append: keep its first part (with the crafted id), lose the
    // rest.
    truncate(&seg, end as u64 - 5);
    std::fs::remove_file(dir.join("SNAPSHOT")).unwrap();
    let store = LogStore::open(&dir, flush_opts()).unwrap();
    let ids: Vec<String> = all_docs(store.docs(), "c")
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids, ["d000", "d001", "d002"]);
    assert!(store.recovery_report().truncated.is_some());
}

/// Pages written after the last sync persist in any order: a zeroed page
/// followed by pages of whole records is a legal crash state, and the store
/// opens with the prefix before the hole.
#[test]
fn a_zero_page_before_later_records_is_a_crash_state_that_opens() {
    let (tmp, base, ends, newest) = built("base", 80, flush_opts());
    let seg_name = newest.file_name().unwrap();
    assert!(
        *ends.last().unwrap() > 3 * 4096,
        "the log spans several pages"
    );
    for page in 1..(*ends.last().unwrap() / 4096) {
        let dir = tmp.path().join(format!("page{page}"));
        copy_store(&base, &dir);
        let seg = dir.join(seg_name);
        let mut bytes = std::fs::read(&seg).unwrap();
        let hole = (page * 4096) as usize;
        bytes[hole..hole + 4096].fill(0);
        std::fs::write(&seg, &bytes).unwrap();
        let store = LogStore::open(&dir, flush_opts()).unwrap();
        let whole = ends.iter().filter(|&&e| e <= hole as u64).count();
        if whole == 0 {
            // The hole is in the first page of records: nothing to keep.
            continue;
        }
        let docs = all_docs(store.docs(), "c");
        assert_eq!(docs.len(), whole, "hole at page {page}");
        let cut = store.recovery_report().truncated.clone().expect("cut");
        assert_eq!(cut.offset, ends[whole - 1], "page {page}");
        assert!(cut.quarantined.is_some());
    }
}

/// A torn header of a new segment (its second half never reached the
/// disk) with nothing after it opens; one with records after it is damage.
#[test]
fn a_torn_header_of_a_new_segment_is_rebuilt_and_a_damaged_one_is_reported() {
    let (tmp, base, _, seg) = built("base", 3, flush_opts());
    let stem: u64 = seg.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let header = std::fs::read(&seg).unwrap()[..24].to_vec();
    let next = format!("{:020}.seg", stem + 1);
    for (what, tail) in [("zeros after", 1usize << 20), ("nothing after", 0)] {
        let dir = tmp.path().join(what.replace(' ', "_"));
        copy_store(&base, &dir);
        let mut torn = header[..12].to_vec();
        torn.resize(24 + tail, 0);
        std::fs::write(dir.join(&next), &torn).unwrap();
        let store = LogStore::open(&dir, flush_opts()).unwrap();
        assert_eq!(all_docs(store.docs(), "c").len(), 3, "{what}");
        store.docs().put("c", "new", json!({}), None).unwrap();
        drop(store);
        let store = LogStore::open(&dir, flush_opts()).unwrap();
        assert_eq!(all_docs(store.docs(), "c").len(), 4, "{what}");
    }
    let dir = tmp.path().join("records_after");
    copy_store(&base, &dir);
    let mut damaged = header[..12].to_vec();
    damaged.resize(24, 0);
    damaged.extend_from_slice(&[7u8; 100]);
    std::fs::write(dir.join(&next), &damaged).unwrap();
    match LogStore::open(&dir, flush_opts()) {
        Err(Error::Corruption { file, offset, .. }) => {
            assert_eq!((file, offset), (dir.join(&next), 0));
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

/// A document record whose body cannot be parsed back (nested past what
/// the parser takes; the engine now refuses such bodies at `put`, but
/// stores written before the limit may hold one) never stops open: the
/// store opens, the document reads as `Corruption` naming its place, and
/// the integrity check lists it.
#[test]
fn a_stored_body_that_does_not_parse_never_stops_open() {
    let (_tmp, dir, ends, seg) = built("store", 2, flush_opts());
    let mut bytes = std::fs::read(&seg).unwrap();
    let salt = salt_of(&bytes);
    let depth = 200;
    let body = format!(
        "{{\"owner\":\"o0\",\"d\":{}{}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let mut payload = vec![2u8];
    for s in [&b"c"[..], b"deep"] {
        payload.extend_from_slice(&(s.len() as u32).to_le_bytes());
        payload.extend_from_slice(s);
    }
    payload.extend_from_slice(&1u64.to_le_bytes());
    payload.extend_from_slice(&1_700_000_000_000i64.to_le_bytes());
    payload.extend_from_slice(&1_700_000_000_000i64.to_le_bytes());
    payload.extend_from_slice(&(body.len() as u32).to_le_bytes());
    payload.extend_from_slice(body.as_bytes());
    let at = *ends.last().unwrap();
    bytes.truncate(at as usize);
    bytes.extend_from_slice(&frame_v2(salt, at, &payload));
    std::fs::write(&seg, &bytes).unwrap();
    let store = LogStore::open(&dir, flush_opts()).unwrap();
    match store.docs().get("c", "deep") {
        Err(Error::Corruption { file, offset, .. }) => assert_eq!((file, offset), (seg, at)),
        other => panic!("expected corruption, got {other:?}"),
    }
    assert!(store.docs().get("c", "d001").unwrap().is_some());
    let problems = store.verify().unwrap().problems;
    assert!(
        problems.iter().any(|p| p.offset == at),
        "the check lists the unreadable body: {problems:?}"
    );
    // A new index over the collection backfills past it, too.
    store
        .docs()
        .ensure_collection("c", &["owner", "d"])
        .unwrap();
    drop(store);
    LogStore::open(&dir, flush_opts()).unwrap();
}
