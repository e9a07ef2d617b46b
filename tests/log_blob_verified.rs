//! A log-engine get hashes a content file the first time a handle reads it
//! and, while the file's stamp (device, inode, length, change times) stays
//! as it was, later gets check its length alone. These tests pin down what
//! that gives up and what it keeps: damage the file system cannot see
//! (simulated by `RotFs`, whose files never show a change of their times)
//! in a file already hashed is missed by this handle's gets, and still
//! found by `verify`, by another handle's or a fresh open's first read, and
//! by this handle once `verify` found it; a file changed in place or
//! replaced is hashed again.

mod common;

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::blobs::{content_path, put};
use logstore::io::{Access, Entry, LockGuard, MemFs, RealFs, Stamp, VFile, Vfs};
use logstore::{Error, LogStore, Options, Store};

/// The real file system, except that each file's stamp shows fixed times,
/// settled: a change of a file's bytes that keeps its inode and length is
/// invisible to the stamp, as bit rot is.
#[derive(Debug, Clone)]
struct RotFs(Arc<RealFs>);

#[derive(Debug)]
struct RotFile(Arc<dyn VFile>);

impl VFile for RotFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.0.sync_data()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.0.set_len(len)
    }
    fn size(&self) -> std::io::Result<u64> {
        self.0.size()
    }
    fn is_shared(&self) -> bool {
        self.0.is_shared()
    }
    fn stamp(&self) -> std::io::Result<Option<Stamp>> {
        Ok(self.0.stamp()?.map(|real| Stamp {
            modified: 0,
            changed: 0,
            settled: true,
            ..real
        }))
    }
}

impl Vfs for RotFs {
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        self.0.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        self.0.list(dir)
    }
    fn list_entries(&self, dir: &Path) -> std::io::Result<Vec<Entry>> {
        self.0.list_entries(dir)
    }
    fn open(&self, path: &Path, create: bool) -> std::io::Result<Arc<dyn VFile>> {
        Ok(Arc::new(RotFile(self.0.open(path, create)?)))
    }
    fn create_new(&self, path: &Path) -> std::io::Result<Arc<dyn VFile>> {
        Ok(Arc::new(RotFile(self.0.create_new(path)?)))
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
    fn try_lock(&self, path: &Path) -> std::io::Result<Option<Box<dyn LockGuard>>> {
        self.0.try_lock(path)
    }
    fn root_id(&self) -> Option<(u64, u64)> {
        self.0.root_id()
    }
}

fn open_rot(dir: &Path) -> LogStore {
    logstore::io::create_dirs_durable(dir).unwrap();
    let fs = RotFs(Arc::new(RealFs::open_root(dir, Access::ReadWrite).unwrap()));
    LogStore::open_with_fs(Arc::new(fs), dir, Options::default()).unwrap()
}

/// A read-only handle on the store at `dir`, beside its writer.
fn open_rot_read_only(dir: &Path) -> LogStore {
    let fs = RotFs(Arc::new(RealFs::open_root(dir, Access::ReadOnly).unwrap()));
    LogStore::open_read_only_with_fs(Arc::new(fs), dir, Options::default()).unwrap()
}

/// Larger than the blobs read whole before a get returns (64 KiB), and
/// more than one read-ahead piece (256 KiB).
const SIZE: usize = 300 * 1024 + 7;

fn bytes() -> Vec<u8> {
    (0..SIZE).map(|i| (i * 7 % 251) as u8).collect()
}

/// Flips one byte of the file in place: same inode, same length.
fn rot(path: &Path, at: u64) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, at).unwrap();
    file.write_all_at(&[byte[0] ^ 0x40], at).unwrap();
}

/// Puts a damaged copy of the file (one byte flipped, same length) in its
/// place under a new inode, by a rename.
fn replace_damaged(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x40;
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Reads blob `id` to its end: its bytes, or the error the read ended in.
fn get(store: &dyn Store, id: &str) -> Result<Vec<u8>, Error> {
    let (_, mut reader) = store.blobs().get(id)?.expect("the blob exists");
    let mut out = Vec::new();
    match reader.read_to_end(&mut out) {
        Ok(_) => Ok(out),
        Err(e) => Err(e.downcast::<Error>().expect("an Error inside")),
    }
}

#[track_caller]
fn assert_corrupt(got: Result<Vec<u8>, Error>, path: &Path, what: &str) {
    match got {
        Err(Error::Corruption { file, .. }) => assert_eq!(file, path, "{what}"),
        Err(e) => panic!("{what}: expected corruption, got {e}"),
        Ok(_) => panic!("{what}: the damaged bytes were handed out whole"),
    }
}

#[test]
fn damage_the_stamp_cannot_show_after_a_first_read_is_found_by_verify_and_a_fresh_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = open_rot(&dir);
    let meta = put(&store, &bytes());
    let path = content_path(&dir, &meta);
    assert_eq!(get(&store, &meta.id).unwrap(), bytes(), "the first read");
    rot(&path, 1000);
    // What a handle gives up: its own gets trust the file it hashed.
    let trusted = get(&store, &meta.id).expect("read by length alone");
    assert_ne!(trusted, bytes(), "the rotten bytes, unhashed");
    // Another handle, opened now, has hashed nothing yet.
    let reader = open_rot_read_only(&dir);
    assert_corrupt(get(&reader, &meta.id), &path, "another handle's first read");
    drop(reader);
    // The integrity check hashes every file whatever this handle read.
    let report = store.verify().unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].file, path);
    // And once it found the damage, this handle's gets hash again.
    assert_corrupt(get(&store, &meta.id), &path, "a get after verify");
    store.close().unwrap();
    drop(store);
    let store = open_rot(&dir);
    assert_corrupt(get(&store, &meta.id), &path, "a fresh open's first read");
}

#[test]
fn a_file_damaged_before_its_first_read_fails_that_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = open_rot(&dir);
    // Put in this handle, so a put that counted as a read would show.
    let meta = put(&store, &bytes());
    let path = content_path(&dir, &meta);
    rot(&path, SIZE as u64 - 1);
    assert_corrupt(get(&store, &meta.id), &path, "the first read");
    assert_corrupt(get(&store, &meta.id), &path, "the second read");
}

#[test]
fn a_file_replaced_after_its_first_read_is_hashed_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    // Times never move here: only the new inode tells the files apart.
    let store = open_rot(&dir);
    let meta = put(&store, &bytes());
    let path = content_path(&dir, &meta);
    assert_eq!(get(&store, &meta.id).unwrap(), bytes());
    replace_damaged(&path, 5000);
    assert_corrupt(get(&store, &meta.id), &path, "the read after the swap");
}

/// How long the test waits at most for a fresh file's stamp to settle: a
/// file system with one- or two-second times needs about two seconds.
const SETTLE: Duration = Duration::from_secs(5);

/// Waits until the file at `path` has a settled stamp, so that a read of
/// it is remembered.
fn wait_settled(dir: &Path, path: &Path) {
    let fs = RealFs::open_root(dir, Access::ReadOnly).unwrap();
    let file = fs.open(path, false).unwrap();
    let started = Instant::now();
    while !file.stamp().unwrap().unwrap().settled {
        assert!(started.elapsed() < SETTLE, "the stamp never settled");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_file_changed_in_place_after_its_first_read_is_hashed_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = LogStore::open(&dir, Options::default()).unwrap();
    let meta = put(&store, &bytes());
    let path = content_path(&dir, &meta);
    wait_settled(&dir, &path);
    assert_eq!(get(&store, &meta.id).unwrap(), bytes(), "hashed and kept");
    // Same inode, same length: only the change time moves. Settled again
    // before the read, so that only the times tell the stamps apart.
    rot(&path, 2000);
    wait_settled(&dir, &path);
    assert_corrupt(get(&store, &meta.id), &path, "the read after the write");
}

#[test]
fn a_file_of_the_in_memory_store_written_after_its_first_read_is_hashed_again() {
    let fs = MemFs::new();
    let dir = Path::new("memory");
    let store = LogStore::open_with_fs(Arc::new(fs.clone()), dir, Options::default()).unwrap();
    let meta = put(&store, &bytes());
    let path = content_path(dir, &meta);
    assert_eq!(get(&store, &meta.id).unwrap(), bytes());
    let file = fs.file(&path).unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, 7).unwrap();
    file.write_all_at(&[byte[0] ^ 1], 7).unwrap();
    assert_corrupt(get(&store, &meta.id), &path, "the read after the write");
}

#[test]
fn a_content_file_swapped_for_a_link_after_its_first_read_is_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    // Times never move here: the stamp cannot tell the link's target apart
    // by them, and a copy of the right bytes sits behind it.
    let store = open_rot(&dir);
    let meta = put(&store, &bytes());
    let path = content_path(&dir, &meta);
    assert_eq!(get(&store, &meta.id).unwrap(), bytes(), "hashed and kept");
    let outside = tmp.path().join("outside");
    std::fs::rename(&path, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, &path).unwrap();
    match get(&store, &meta.id) {
        Err(Error::Corruption { .. } | Error::Io { .. }) => {}
        other => panic!("a get through the link: {other:?}"),
    }
    assert!(
        std::fs::symlink_metadata(&path).unwrap().is_symlink(),
        "the link is left alone"
    );
    assert_eq!(
        std::fs::read(&outside).unwrap(),
        bytes(),
        "the target is untouched"
    );
}

/// What a handle gives up must not spread: a migration from a handle that
/// already read a blob, whose file then rotted where the stamp cannot see,
/// gets the rotten bytes by length alone. The log engine's import hashes
/// them anyway, and refuses bytes whose hash is not the content hash the
/// metadata names, so the copy never holds them as a blob that verifies.
#[test]
fn a_migration_never_takes_in_rot_a_handle_read_by_length_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = open_rot(&dir);
    let meta = put(&store, &bytes());
    let path = content_path(&dir, &meta);
    assert_eq!(get(&store, &meta.id).unwrap(), bytes(), "hashed and kept");
    rot(&path, 3000);
    let target = LogStore::open_with_fs(
        Arc::new(MemFs::new()),
        Path::new("copy"),
        Options::default(),
    )
    .unwrap();
    match logstore::migrate(&store, &target, |_| {}, |_| {}) {
        Err(Error::InvalidInput(why)) => assert!(why.contains(&meta.id), "{why}"),
        other => panic!("a migration of rotten bytes: {other:?}"),
    }
    assert!(
        target.blobs().get_meta(&meta.id).unwrap().is_none(),
        "the copy holds no blob of the rotten bytes"
    );
    assert!(target.verify().unwrap().is_clean());
}
