//! Salvage (`logstore::salvage`, behind `logstore repair`) on damaged
//! stores: it reads what open would, trusts nothing that does not verify,
//! and reports every byte range it could not use.

mod common;

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use common::count_fs::CountFs;
use common::{all_docs, doc_put_payload, flush_opts, frame_v2, log_end, salt_of, segments};
use logstore::{LogStore, Options, Salvage, Store};
use serde_json::json;

fn opts() -> Options {
    Options {
        auto_compact: false,
        ..flush_opts()
    }
}

fn put_docs(store: &LogStore, prefix: &str, n: usize) {
    for i in 0..n {
        let id = format!("{prefix}{i}");
        store.docs().put("c", &id, json!({"i": i}), None).unwrap();
    }
}

/// A closed store at `src` holding documents `a0..a{n}` of collection `c`.
fn closed_store(src: &Path, n: usize) {
    let store = LogStore::open(src, opts()).unwrap();
    put_docs(&store, "a", n);
    store.close().unwrap();
}

fn salvaged(src: &Path, dst: &Path) -> (LogStore, logstore::SalvageReport) {
    let store = LogStore::open(dst, opts()).unwrap();
    let report = logstore::salvage(src, &store).unwrap();
    (store, report)
}

/// A manifest that does not verify is reported, and every segment is
/// salvaged in id order: nothing is dropped on the word of damaged bytes.
#[test]
fn a_damaged_manifest_is_reported_and_every_segment_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let store = LogStore::open(&src, opts()).unwrap();
    put_docs(&store, "a", 10);
    store.compact().unwrap();
    put_docs(&store, "b", 10);
    store.close().unwrap();
    let manifest = src.join("MANIFEST");
    let mut bytes = std::fs::read(&manifest).unwrap();
    bytes[15] ^= 0x01; // one bit of the horizon
    std::fs::write(&manifest, &bytes).unwrap();
    assert!(LogStore::open(&src, opts()).is_err());
    let (dst, report) = salvaged(&src, &tmp.path().join("dst"));
    assert_eq!(all_docs(dst.docs(), "c").len(), 20);
    assert!(report.lost.iter().any(|p| p.file == manifest), "{report:?}");
}

/// A segment header whose checksum rotted still names its salt: salvage
/// tries it, keeps every record, and reports the header.
#[test]
fn a_segment_with_a_damaged_header_is_still_read() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    closed_store(&src, 10);
    let seg = segments(&src).remove(0);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[21] ^= 0x01; // the header checksum
    std::fs::write(&seg, &bytes).unwrap();
    let (dst, report) = salvaged(&src, &tmp.path().join("dst"));
    assert_eq!(all_docs(dst.docs(), "c").len(), 10);
    assert!(report.lost.iter().any(|p| p.file == seg && p.offset == 0));
}

/// A crash inside open's re-link leaves the newest segment under its
/// `.relink` name: open and salvage both read it there.
#[test]
fn a_segment_left_under_its_relink_name_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    closed_store(&src, 10);
    let seg = segments(&src).remove(0);
    let mut aside = seg.clone().into_os_string();
    aside.push(".relink");
    std::fs::rename(&seg, &aside).unwrap();
    let (dst, _) = salvaged(&src, &tmp.path().join("dst"));
    assert_eq!(all_docs(dst.docs(), "c").len(), 10);
    drop(dst);
    let reopened = LogStore::open(&src, opts()).unwrap();
    assert_eq!(all_docs(reopened.docs(), "c").len(), 10);
}

/// The integrity check reads SNAPSHOT through a window first: a huge
/// sparse file is reported, never allocated.
#[test]
fn verify_does_not_read_a_huge_snapshot_into_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let store = LogStore::open(&src, opts()).unwrap();
    put_docs(&store, "a", 3);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(src.join("SNAPSHOT"))
        .unwrap();
    file.set_len(1 << 42).unwrap(); // 4 TiB, sparse
    let report = store.verify().unwrap();
    assert_eq!(report.records, 4);
}

/// Salvage holds the store's lock: a store a program has open is refused,
/// and one it closed is read.
#[test]
fn salvage_refuses_a_store_that_is_open_and_reads_it_once_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let store = LogStore::open(&src, opts()).unwrap();
    put_docs(&store, "a", 3);
    let dst = LogStore::open(tmp.path().join("dst"), opts()).unwrap();
    let refused = logstore::salvage(&src, &dst).unwrap_err();
    assert!(
        matches!(refused, logstore::Error::Locked { .. }),
        "{refused}"
    );
    store.close().unwrap();
    let report = logstore::salvage(&src, &dst).unwrap();
    assert!(report.lost.is_empty(), "{report:?}");
    assert_eq!(all_docs(dst.docs(), "c").len(), 3);
}

/// The real file system, but the lock file cannot be opened for writing:
/// what a read-only mount or a store owned by another user gives.
#[derive(Debug)]
struct ReadOnlyLock(logstore::io::RealFs);

impl logstore::io::Vfs for ReadOnlyLock {
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        self.0.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        self.0.list(dir)
    }
    fn open(
        &self,
        path: &Path,
        create: bool,
    ) -> std::io::Result<std::sync::Arc<dyn logstore::io::VFile>> {
        self.0.open(path, create)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.0.rename(from, to)
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        self.0.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        self.0.sync_dir(dir)
    }
    fn try_lock(&self, _path: &Path) -> std::io::Result<Option<Box<dyn logstore::io::LockGuard>>> {
        Err(std::io::ErrorKind::ReadOnlyFilesystem.into())
    }
}

/// A store this user cannot write to is still salvaged (read without its
/// lock), where any other failure to take the lock is an error.
#[test]
fn a_store_on_a_read_only_file_system_is_still_salvaged() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    closed_store(&src, 5);
    let dst = LogStore::open(tmp.path().join("dst"), opts()).unwrap();
    let salvage = logstore::Salvage::lock_with_fs(
        std::sync::Arc::new(ReadOnlyLock(
            logstore::io::RealFs::open_root(&src, logstore::io::Access::ReadWrite).unwrap(),
        )),
        &src,
    )
    .unwrap();
    let report = salvage.run(&dst).unwrap();
    assert!(report.lost.is_empty(), "{report:?}");
    assert_eq!(all_docs(dst.docs(), "c").len(), 5);
}

const GIB: u64 = 1 << 30;
/// What salvage of a small store may read: its few files, and the zeros
/// the writer reserves ahead of the log, a window at a time. A read past it
/// fails (`CountFs`), so a scan that reads a hole stops at once.
const READ_BUDGET: u64 = 64 << 20;
/// What it does read of such a store, holes skipped.
const READ_BOUND: u64 = 8 << 20;

/// Salvages `src` into a new store at `dst` through a file system that
/// counts (and bounds) the bytes read; returns the bytes read too.
fn salvaged_counting(src: &Path, dst: &Path) -> (LogStore, logstore::SalvageReport, u64) {
    let fs = CountFs::new(Arc::new(common::real_fs(src)), READ_BUDGET);
    let store = LogStore::open(dst, opts()).unwrap();
    let report = Salvage::lock_with_fs(fs.as_vfs(), src)
        .unwrap()
        .run(&store)
        .unwrap();
    (store, report, fs.read())
}

/// A newest segment that runs on into 64 GiB of holes is salvaged without
/// reading them: only zeros follow the log, so every record is kept and
/// nothing is reported lost.
#[test]
fn a_64_gib_sparse_tail_is_salvaged_without_reading_it() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    closed_store(&src, 10);
    let seg = segments(&src).pop().unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(64 * GIB)
        .unwrap();
    let (dst, report, read) = salvaged_counting(&src, &tmp.path().join("dst"));
    assert!(read < READ_BOUND, "salvage read {read} bytes");
    assert_eq!(all_docs(dst.docs(), "c").len(), 10);
    assert!(report.lost.is_empty(), "{report:?}");
}

/// Damage, then a 64 GiB hole with a whole frame in its middle: salvage
/// skips the damaged record, finds the next one, and then the frame past
/// 32 GiB of holes, reading only the file's data; it reports the damaged
/// record and the hole.
#[test]
fn salvage_finds_a_frame_past_damage_and_a_64_gib_hole_without_reading_the_hole() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    closed_store(&src, 10);
    let seg = segments(&src).pop().unwrap();
    let bytes = std::fs::read(&seg).unwrap();
    let end = log_end(&bytes);
    let salt = salt_of(&bytes);
    // Damage the record of a5: its body `{"i":5}` is the only one with a 5.
    let body = br#"{"i":5}"#;
    let damaged = bytes
        .windows(body.len())
        .position(|w| w == body)
        .expect("a5 is in the newest segment") as u64;
    let at = 32 * GIB;
    let frame = frame_v2(salt, at, &doc_put_payload("c", "late", 1, b"{}"));
    let file = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    file.write_all_at(b"#", damaged + 5).unwrap();
    file.write_all_at(&frame, at).unwrap();
    file.set_len(64 * GIB).unwrap();
    drop(file);
    let (dst, report, read) = salvaged_counting(&src, &tmp.path().join("dst"));
    assert!(read < READ_BOUND, "salvage read {read} bytes");
    let ids: Vec<String> = all_docs(dst.docs(), "c")
        .into_iter()
        .map(|d| d.id)
        .collect();
    let mut expected: Vec<String> = (0..10)
        .filter(|i| *i != 5)
        .map(|i| format!("a{i}"))
        .collect();
    expected.push("late".into());
    assert_eq!(ids, expected);
    let lost: Vec<(&Path, u64)> = report
        .lost
        .iter()
        .map(|p| (p.file.as_path(), p.offset))
        .collect();
    assert_eq!(lost.len(), 2, "{report:?}");
    assert!(lost[0].0 == seg && lost[0].1 < damaged, "{report:?}");
    // The log ends at a page boundary (close pads it), and its last
    // non-zero byte is in that page.
    assert_eq!(lost[1], (seg.as_path(), end.next_multiple_of(4096)));
    let skipped = format!("{} bytes skipped", at - lost[1].1);
    assert!(report.lost[1].description.ends_with(&skipped), "{report:?}");
}
