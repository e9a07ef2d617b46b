//! Reading blobs of the log engine: a get or verify racing the delete of
//! its blob, and streams of large blobs that end in `Error::Corruption`
//! when the content file is damaged or changes length (also in the SQLite
//! driver, which checks the length alone).

mod common;

use std::io::{self, Read};
use std::path::Path;
use std::sync::{mpsc, Arc};

use common::blobs::{content_files, content_path, put, read};
use logstore::io::RealFs;
use logstore::{BlobMeta, Error, LogStore, Options, Store};

/// A store on the real file system whose hook, the first time the content
/// file of `bytes` is opened, deletes that blob from another thread and
/// waits (up to a second) for the delete to finish. Returns the store, the
/// blob, and the delete's result once the hook ran.
fn store_deleting_on_open(
    dir: &Path,
    bytes: &[u8],
) -> (Arc<LogStore>, BlobMeta, mpsc::Receiver<bool>) {
    use common::wrap_fs::WrapFs;
    logstore::io::create_dirs_durable(dir).unwrap();
    let fs = WrapFs::new(Arc::new(
        RealFs::open_root(dir, logstore::io::Access::ReadWrite).unwrap(),
    ));
    let store =
        Arc::new(LogStore::open_with_fs(Arc::new(fs.clone()), dir, Options::default()).unwrap());
    let meta = put(store.as_ref(), bytes);
    let (done_tx, done_rx) = mpsc::channel();
    let (result_tx, result_rx) = mpsc::channel();
    let deleter = Arc::downgrade(&store);
    let id = meta.id.clone();
    fs.on_open(meta.content_hash.as_deref().unwrap(), move || {
        std::thread::spawn(move || {
            let deleted = deleter
                .upgrade()
                .is_some_and(|store| store.blobs().delete(&id).unwrap());
            let _ = done_tx.send(());
            let _ = result_tx.send(deleted);
        });
        // Without the file handle taken under the state lock, the delete
        // finishes (and removes the file) here, before the open. With it,
        // the delete waits for the reader, and this times out.
        let _ = done_rx.recv_timeout(std::time::Duration::from_secs(1));
    });
    (store, meta, result_rx)
}

#[test]
fn a_get_racing_the_delete_of_its_blob_never_reports_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let (store, meta, deleted) = store_deleting_on_open(&dir, b"raced bytes");
    match store.blobs().get(&meta.id) {
        Ok(Some((got, mut reader))) => {
            assert_eq!(got, meta);
            let mut bytes = Vec::new();
            reader.read_to_end(&mut bytes).unwrap();
            assert_eq!(bytes, b"raced bytes", "a blob read is whole");
        }
        Ok(None) => {}
        Err(e) => panic!("a blob deleted meanwhile is not damage: {e}"),
    }
    assert!(deleted.recv().unwrap(), "the delete went through");
    assert!(store.blobs().get(&meta.id).unwrap().is_none());
    assert!(
        content_files(&dir).is_empty(),
        "the delete removed the file"
    );
}

#[test]
fn verify_racing_the_delete_of_a_blob_finds_no_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let (store, _, deleted) = store_deleting_on_open(&dir, b"raced bytes");
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert!(report.blobs <= 1);
    assert!(deleted.recv().unwrap(), "the delete went through");
    assert!(store.verify().unwrap().is_clean());
    assert!(
        content_files(&dir).is_empty(),
        "the delete removed the file"
    );
}

/// A blob larger than the size checked before the first byte (64 KiB), and
/// spanning several of the reader's read-ahead pieces (256 KiB).
const LARGE: usize = 700 * 1024 + 3;

fn large_bytes() -> Vec<u8> {
    (0..LARGE).map(|i| (i * 13 % 241) as u8).collect()
}

/// Reads `reader` to its end in 8 KiB pieces (as `io::copy` does), keeping
/// what it handed out; returns those bytes and how the stream ended.
fn drain(reader: &mut dyn Read) -> (Vec<u8>, io::Result<()>) {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return (got, Err(e)),
        }
    }
}

/// The `Error::Corruption` a blob reader's error carries, naming `path`.
fn assert_corruption(e: io::Error, path: &Path) {
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    match e.downcast::<Error>() {
        Ok(Error::Corruption { file, .. }) => assert_eq!(file, path),
        other => panic!("expected Error::Corruption inside, got {other:?}"),
    }
}

fn flip_a_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn an_intact_large_blob_streams_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LogStore::open(tmp.path().join("store"), Options::default()).unwrap();
    let bytes = large_bytes();
    let meta = put(&store, &bytes);
    assert_eq!(read(&store, &meta.id), bytes, "read_to_end");
    let (_, mut reader) = store.blobs().get(&meta.id).unwrap().unwrap();
    let (got, end) = drain(reader.as_mut());
    assert!(end.is_ok() && got == bytes, "8 KiB reads");
    let (_, mut reader) = store.blobs().get(&meta.id).unwrap().unwrap();
    let mut exact = vec![0u8; LARGE];
    reader.read_exact(&mut exact).unwrap();
    assert!(exact == bytes, "one read_exact of the whole");
    assert_eq!(reader.read(&mut [0u8; 8]).unwrap(), 0);
}

#[test]
fn a_large_blob_with_flipped_bytes_streams_into_a_corruption_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = LogStore::open(&dir, Options::default()).unwrap();
    let meta = put(&store, &large_bytes());
    let path = content_path(&dir, &meta);
    // Same length, one byte changed: only the hash can tell.
    flip_a_byte(&path, 300 * 1024);
    let (_, mut reader) = store.blobs().get(&meta.id).unwrap().unwrap();
    let (got, end) = drain(reader.as_mut());
    assert_corruption(end.unwrap_err(), &path);
    assert!(
        got.len() < LARGE,
        "the read that would hand out the last bytes fails instead"
    );
    let again = reader.read(&mut [0u8; 8192]).unwrap_err();
    assert_corruption(again, &path);
    // A reader of exactly the blob's size sees the error too.
    let (_, mut reader) = store.blobs().get(&meta.id).unwrap().unwrap();
    let mut exact = vec![0u8; LARGE];
    assert_corruption(reader.read_exact(&mut exact).unwrap_err(), &path);
    // The integrity check still hashes the whole file.
    let report = store.verify().unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].file, path);
}

#[test]
fn a_large_blob_whose_file_changes_length_fails_before_or_while_streaming() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = LogStore::open(&dir, Options::default()).unwrap();
    let meta = put(&store, &large_bytes());
    let path = content_path(&dir, &meta);
    let set_len = |len: u64| {
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len).unwrap();
    };
    // Damaged before the get: the get itself fails.
    for len in [LARGE as u64 - 1, LARGE as u64 + 1] {
        set_len(len);
        match store.blobs().get(&meta.id) {
            Err(Error::Corruption { file, .. }) => assert_eq!(file, path),
            other => panic!("{len} bytes: {:?}", other.map(|o| o.map(|(m, _)| m))),
        }
    }
    // Damaged while a reader streams it (the file is changed in place, as
    // rot or a stray writer would): the stream ends in the error.
    for (len, name) in [(100 * 1024, "truncated"), (LARGE as u64 + 5, "extended")] {
        set_len(LARGE as u64);
        std::fs::write(&path, large_bytes()).unwrap();
        let (_, mut reader) = store.blobs().get(&meta.id).unwrap().unwrap();
        let mut first = [0u8; 4096];
        reader.read_exact(&mut first).unwrap();
        set_len(len);
        let (got, end) = drain(reader.as_mut());
        let err = end.expect_err(name);
        assert_corruption(err, &path);
        assert!(4096 + got.len() < LARGE, "{name}: not handed out whole");
    }
}

#[test]
fn a_small_damaged_blob_fails_before_the_first_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = LogStore::open(&dir, Options::default()).unwrap();
    // The largest blob still checked whole before the get returns.
    let bytes: Vec<u8> = (0..64 * 1024u32)
        .map(|i| u8::try_from(i % 199).unwrap())
        .collect();
    let meta = put(&store, &bytes);
    let path = content_path(&dir, &meta);
    flip_a_byte(&path, 64 * 1024 - 1);
    match store.blobs().get(&meta.id) {
        Err(Error::Corruption { file, .. }) => assert_eq!(file, path),
        other => panic!(
            "expected corruption, got {:?}",
            other.map(|o| o.map(|(m, _)| m))
        ),
    }
}

/// The SQLite driver uses the same reader, checking the length alone (its
/// schema keeps no hash): a file that changes length while it streams ends
/// the stream in the error.
#[cfg(feature = "sqlite")]
#[test]
fn the_sqlite_driver_checks_a_streamed_blob_s_length_at_the_end() {
    let tmp = tempfile::tempdir().unwrap();
    let blob_dir = tmp.path().join("blobs");
    let store =
        logstore::SqliteStore::open(tmp.path().join("store.db"), &blob_dir, Options::default())
            .unwrap();
    let bytes = large_bytes();
    let meta = put(&store, &bytes);
    assert_eq!(read(&store, &meta.id), bytes);
    let path = blob_dir.join(&meta.id);
    let (_, mut reader) = store.blobs().get(&meta.id).unwrap().unwrap();
    let mut first = [0u8; 4096];
    reader.read_exact(&mut first).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(LARGE as u64 + 1).unwrap();
    let (_, end) = drain(reader.as_mut());
    assert_corruption(end.unwrap_err(), &path);
    assert!(matches!(
        store.blobs().get(&meta.id),
        Err(Error::Corruption { .. })
    ));
}
