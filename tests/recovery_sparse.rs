//! Recovery over sparse files: a newest segment or SNAPSHOT that runs on
//! into gigabytes of holes (reserved space grown past anything the writer
//! makes, or a crafted or damaged directory) is read through a bounded
//! window. Open neither allocates nor reads the holes: only zeros after the
//! log are skipped, and a frame after a hole is cut, quarantined in a copy
//! that stays sparse and salvaged from it.

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;

use common::count_fs::CountFs;
use common::crash::{built, truncate, write_survives_reopen};
use common::{all_docs, doc_put_payload, flush_opts, frame_v2, salt_of};
use logstore::{LogStore, Salvage, Store};

/// The peak resident memory of this process, from /proc (Linux).
fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// A huge sparse tail of zeros (the format's reserved space, grown past
/// anything the writer makes) and a huge sparse SNAPSHOT are read through
/// a bounded window: open neither aborts on allocation nor holds the file
/// in memory.
#[test]
fn a_huge_sparse_tail_and_snapshot_open_in_bounded_memory() {
    let (_tmp, dir, _, seg) = built("store", 3, flush_opts());
    let huge = 2u64 << 30;
    truncate(&seg, huge);
    std::fs::write(dir.join("SNAPSHOT"), b"").unwrap();
    truncate(&dir.join("SNAPSHOT"), huge);
    let before = peak_rss_bytes();
    let store = LogStore::open(&dir, flush_opts()).unwrap();
    let grew = peak_rss_bytes().saturating_sub(before);
    assert!(grew < 256 << 20, "open grew the peak RSS by {grew} bytes");
    assert_eq!(all_docs(store.docs(), "c").len(), 3);
    assert!(matches!(
        store.recovery_report().snapshot,
        logstore::SnapshotUse::Rejected(_)
    ));
}

const GIB: u64 = 1 << 30;
/// What open or salvage of a small store may read: its few files, and the
/// zeros the writer reserves ahead of the log, a window at a time. A read
/// past it fails (`CountFs`), so a scan that reads a hole stops at once.
const READ_BUDGET: u64 = 64 << 20;
/// What they do read of such a store, holes skipped.
const READ_BOUND: u64 = 8 << 20;

/// Opens the store at `dir` through a file system that counts what it
/// reads and writes (and fails a read past [`READ_BUDGET`]): open reads and
/// writes less than [`READ_BOUND`].
fn open_counting(dir: &Path) -> LogStore {
    let fs = CountFs::new(Arc::new(common::real_fs(dir)), READ_BUDGET);
    let store = LogStore::open_with_fs(fs.as_vfs(), dir, flush_opts()).unwrap();
    assert!(fs.read() < READ_BOUND, "open read {} bytes", fs.read());
    assert!(
        fs.written() < READ_BOUND,
        "open wrote {} bytes",
        fs.written()
    );
    store
}

/// A newest segment that runs on into 64 GiB of holes (a crafted or
/// damaged directory) opens without reading them: only zeros follow the
/// log, so nothing is cut, every record is kept, and the store takes
/// writes.
#[test]
fn a_64_gib_sparse_tail_is_skipped_not_read() {
    let (_tmp, dir, _, seg) = built("store", 3, flush_opts());
    truncate(&seg, 64 * GIB);
    let store = open_counting(&dir);
    assert_eq!(all_docs(store.docs(), "c").len(), 3);
    assert_eq!(store.recovery_report().truncated, None);
    // The padding of the segment's first page, the collection, 3 documents.
    assert_eq!(store.recovery_report().records, 5);
    write_survives_reopen(store, &dir, flush_opts(), 3);
}

/// A whole frame 32 GiB into a 64 GiB hole (debris of a write after the
/// last sync, or a crafted file) is cut and quarantined like any tail that
/// is not all zeros, without reading the hole: open reads and writes a few
/// MiB, its quarantine copy keeps the hole a hole, and salvage finds the
/// frame in the copy, again without reading the hole.
#[test]
fn a_frame_after_a_64_gib_hole_is_quarantined_and_salvaged_without_reading_the_hole() {
    let (tmp, dir, ends, seg) = built("store", 3, flush_opts());
    let at = 32 * GIB;
    let salt = salt_of(&std::fs::read(&seg).unwrap());
    let frame = frame_v2(salt, at, &doc_put_payload("c", "late", 1, b"{}"));
    let file = OpenOptions::new().write(true).open(&seg).unwrap();
    file.write_all_at(&frame, at).unwrap();
    file.set_len(64 * GIB).unwrap();
    drop(file);
    let last = at + frame.len() as u64;

    let store = open_counting(&dir);
    // Nothing after the hole is replayed: the state is a prefix.
    let ids: Vec<String> = all_docs(store.docs(), "c")
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids, ["d000", "d001", "d002"]);
    let cut = store.recovery_report().truncated.clone().expect("a cut");
    assert_eq!(cut.offset, *ends.last().unwrap());
    assert_eq!(cut.bytes_cut, last - cut.offset);
    let copy = cut.quarantined.clone().expect("a quarantine copy");
    let meta = std::fs::metadata(&copy).unwrap();
    assert_eq!(meta.len(), last, "the copy runs to the last non-zero byte");
    let stored = meta.blocks() * 512;
    assert!(stored < READ_BOUND, "the copy takes {stored} bytes on disk");
    let mut copied = vec![0u8; frame.len()];
    std::fs::File::open(&copy)
        .unwrap()
        .read_exact_at(&mut copied, at)
        .unwrap();
    assert_eq!(copied, frame);
    drop(store);

    let fs = CountFs::new(Arc::new(common::real_fs(&dir)), READ_BUDGET);
    let dst = LogStore::open(tmp.path().join("dst"), flush_opts()).unwrap();
    let report = Salvage::lock_with_fs(fs.as_vfs(), &dir)
        .unwrap()
        .run(&dst)
        .unwrap();
    assert!(fs.read() < READ_BOUND, "salvage read {} bytes", fs.read());
    let ids: Vec<String> = all_docs(dst.docs(), "c")
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids, ["d000", "d001", "d002", "late"]);
    let lost: Vec<(&Path, u64)> = report
        .lost
        .iter()
        .map(|p| (p.file.as_path(), p.offset))
        .collect();
    assert_eq!(lost, [(copy.as_path(), cut.offset)], "{report:?}");
}

/// A format-1 newest segment whose torn tail runs on into 4 MiB of bytes
/// that each declare a long frame (format-1 headers carry no checksum of
/// their own, so every offset would cost a read of the length it declares):
/// a read-only open reads a bounded amount, and, as a writable open does,
/// keeps the log before the tear.
#[test]
fn a_read_only_open_of_a_crafted_format_1_tail_reads_a_bounded_amount() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    std::fs::create_dir(&dir).unwrap();
    for entry in std::fs::read_dir("tests/fixtures/v1-store").unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    let segment = dir.join("00000000000000000001.seg");
    let mut bytes = std::fs::read(&segment).unwrap();
    // A torn frame: a 100-byte length and a checksum that does not match.
    bytes.extend_from_slice(&100u32.to_le_bytes());
    bytes.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    bytes.extend(std::iter::repeat_n([0x00, 0x00, 0x10, 0x00], 1 << 20).flatten());
    std::fs::write(&segment, bytes).unwrap();

    let fs = CountFs::new(Arc::new(common::real_fs(&dir)), READ_BUDGET);
    let reader = LogStore::open_read_only_with_fs(fs.as_vfs(), &dir, flush_opts()).unwrap();
    assert!(fs.read() < READ_BOUND, "the open read {} bytes", fs.read());
    let writer = LogStore::open(&dir, flush_opts()).unwrap();
    assert!(writer.recovery_report().truncated.is_some());
    for collection in writer.docs().list_collections().unwrap() {
        assert_eq!(
            all_docs(reader.docs(), &collection.name),
            all_docs(writer.docs(), &collection.name)
        );
    }
}
