//! A crafted store directory cannot make the engine act outside it.
//!
//! Each test plants a symbolic link inside a store (where the engine
//! lists, deletes, stages or replaces files) pointing at a victim outside
//! the store: a folder of regular files, or one file, all with known
//! contents. The store is then opened, verified, written, compacted and
//! closed, as the case needs. Whatever the engine makes of the link (open
//! or the operation may succeed, or refuse with an error), every victim
//! file must still exist with its exact contents, no file may appear in a
//! victim folder, and the planted link must still be a link to where it
//! pointed: the engine never deletes, writes through or replaces an entry
//! it did not make.
//!
//! The relative store path case, which must change the process's working
//! directory, is its own test binary: `relative_path.rs`.

mod common;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::os::unix::fs::{symlink, FileExt};
use std::path::{Path, PathBuf};

use common::{copy_store, log_end, segments};
use logstore::{BlobPut, LogStore, Options, Store};
use serde_json::json;

fn opts() -> Options {
    Options {
        auto_compact: false,
        ..Options::default()
    }
}

/// What a victim file named `name` holds: recognisable, and unlike any
/// file the engine writes.
fn victim_bytes(name: &str) -> Vec<u8> {
    format!("victim file {name}: outside the store, never to change\n")
        .repeat(4)
        .into_bytes()
}

/// A name of 64 lowercase hex digits starting with `prefix`, as a blob's
/// content file is named.
fn hash_like(prefix: &str, seed: &str) -> String {
    let hex = blake3::hash(seed.as_bytes()).to_hex().to_string();
    format!("{prefix}{}", &hex[prefix.len()..])
}

/// A folder outside the store holding regular files with known contents.
struct VictimDir {
    path: PathBuf,
    files: BTreeMap<String, Vec<u8>>,
}

impl VictimDir {
    fn new(path: PathBuf, names: &[String]) -> Self {
        std::fs::create_dir_all(&path).unwrap();
        let mut files = BTreeMap::new();
        for name in names {
            let bytes = victim_bytes(name);
            std::fs::write(path.join(name), &bytes).unwrap();
            files.insert(name.clone(), bytes);
        }
        VictimDir { path, files }
    }

    /// Every file is still there, a regular file with its contents, and
    /// nothing else is.
    fn assert_untouched(&self, when: &str) {
        let mut found = BTreeMap::new();
        for entry in std::fs::read_dir(&self.path).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            let bytes = meta.is_file().then(|| std::fs::read(entry.path()).unwrap());
            found.insert(name, bytes);
        }
        let missing: Vec<&String> = self
            .files
            .keys()
            .filter(|n| !found.contains_key(*n))
            .collect();
        let changed: Vec<&String> = self
            .files
            .iter()
            .filter(|(n, bytes)| found.get(*n).is_some_and(|b| b.as_ref() != Some(bytes)))
            .map(|(n, _)| n)
            .collect();
        let added: Vec<&String> = found
            .keys()
            .filter(|n| !self.files.contains_key(*n))
            .collect();
        assert!(
            missing.is_empty() && changed.is_empty() && added.is_empty(),
            "{when}: the victim folder {} outside the store was touched: \
             deleted {missing:?}, changed {changed:?}, added {added:?}",
            self.path.display()
        );
    }
}

/// One file outside the store with known contents.
struct VictimFile {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl VictimFile {
    fn new(path: PathBuf) -> Self {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = victim_bytes(&name);
        std::fs::write(&path, &bytes).unwrap();
        VictimFile { path, bytes }
    }

    fn assert_untouched(&self, when: &str) {
        let path = self.path.display();
        let meta = std::fs::symlink_metadata(&self.path)
            .unwrap_or_else(|e| panic!("{when}: the victim file {path} is gone: {e}"));
        assert!(meta.is_file(), "{when}: the victim {path} is no file now");
        let now = std::fs::read(&self.path).unwrap();
        assert!(
            now == self.bytes,
            "{when}: the victim file {path} outside the store was written: \
             {} bytes, was {}; it starts {:?}",
            now.len(),
            self.bytes.len(),
            String::from_utf8_lossy(&now[..now.len().min(16)])
        );
    }
}

/// `link` is still a symbolic link to `target`: not followed and replaced,
/// not removed, not renamed away.
fn assert_link(link: &Path, target: &Path, when: &str) {
    let meta = std::fs::symlink_metadata(link);
    assert!(
        meta.is_ok_and(|m| m.file_type().is_symlink()),
        "{when}: the planted link {} is no longer a link",
        link.display()
    );
    assert_eq!(
        std::fs::read_link(link).unwrap(),
        target,
        "{when}: the planted link {} points elsewhere",
        link.display()
    );
}

/// A file that must not have become a symbolic link (a planted link
/// renamed into its place).
fn assert_not_a_link(path: &Path, when: &str) {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        assert!(
            !meta.file_type().is_symlink(),
            "{when}: {} is now a symbolic link (a planted link was renamed there)",
            path.display()
        );
    }
}

/// The step's value, or `None` when the engine refused it: with a hostile
/// entry in the store, refusing is as good an answer as working around it.
fn attempt<T>(what: &str, result: logstore::Result<T>) -> Option<T> {
    result
        .inspect_err(|e| eprintln!("{what} refused: {e}"))
        .ok()
}

fn put_blob(store: &LogStore, bytes: &[u8]) -> logstore::Result<logstore::BlobMeta> {
    store
        .blobs()
        .put(&mut Cursor::new(bytes.to_vec()), BlobPut::default())
}

fn read_blob(store: &LogStore, id: &str) -> Vec<u8> {
    use std::io::Read;
    let (_, mut reader) = store.blobs().get(id).unwrap().expect("the blob is there");
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    out
}

fn put_docs(store: &LogStore, n: usize) {
    for i in 0..n {
        let body = json!({"n": i, "text": "x".repeat(200)});
        store.docs().put("c", &format!("d{i}"), body, None).unwrap();
    }
}

fn assert_docs(store: &LogStore, n: usize) {
    for i in 0..n {
        let doc = store.docs().get("c", &format!("d{i}")).unwrap();
        assert_eq!(doc.map(|d| d.data["n"].clone()), Some(json!(i)), "d{i}");
    }
}

/// Opens, verifies, optionally writes and compacts, and closes the store,
/// each step allowed to be refused; with open working, the documents
/// `d0..d{docs}` are there.
fn exercise(dir: &Path, docs: usize, write: bool, compact: bool) {
    let Some(store) = attempt("open", LogStore::open(dir, opts())) else {
        return;
    };
    assert_docs(&store, docs);
    attempt("verify", store.verify());
    if write {
        attempt("a blob put", put_blob(&store, b"a blob put after open"));
        attempt("a put", store.docs().put("c", "after", json!({}), None));
    }
    if compact {
        attempt("compact", store.compact());
    }
    attempt("close", store.close());
}

/// `blobs/tmp`, where blob puts stage and whose leftovers open removes, is
/// a link to a folder outside the store: open, verify, a blob put and
/// close leave every file there as it was.
#[test]
fn open_never_deletes_files_behind_a_linked_blob_tmp_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let kept = store_with_a_blob(&dir);

    let names = vec![
        "notes.txt".to_string(),
        "leftover.tmp".to_string(),
        format!("{}.tmp", uuid_like()),
        hash_like("", "victim one"),
    ];
    let victim = VictimDir::new(tmp.path().join("victim"), &names);
    let link = dir.join("blobs").join("tmp");
    if link.exists() {
        std::fs::remove_dir_all(&link).unwrap();
    }
    symlink(&victim.path, &link).unwrap();

    for round in ["the first open", "a second open"] {
        if let Some(store) = attempt("open", LogStore::open(&dir, opts())) {
            assert_docs(&store, 3);
            assert_eq!(read_blob(&store, &kept.id), b"a blob of the store");
            attempt("verify", store.verify());
            attempt("a blob put", put_blob(&store, b"staged somewhere"));
            attempt("close", store.close());
        }
        victim.assert_untouched(&format!("after {round}, a put and close"));
        assert_link(&link, &victim.path, round);
    }
}

/// A closed store in `dir` with three documents and one blob, returned.
fn store_with_a_blob(dir: &Path) -> logstore::BlobMeta {
    let store = LogStore::open(dir, opts()).unwrap();
    put_docs(&store, 3);
    let kept = put_blob(&store, b"a blob of the store").unwrap();
    store.close().unwrap();
    kept
}

/// A UUID-shaped name, as blob puts name their staging files.
fn uuid_like() -> String {
    let hex = blake3::hash(b"uuid").to_hex().to_string();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `blobs/<hh>`, a folder of content files that open and compaction sweep
/// of files no blob refers to, is a link to a folder outside the store
/// holding files named like content files: none of them goes.
#[test]
fn open_never_deletes_files_behind_a_linked_blob_content_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let kept = store_with_a_blob(&dir);

    // A content folder the store's own blob does not use.
    let own = &kept.content_hash.as_deref().unwrap()[..2];
    let prefix = if own == "ab" { "cd" } else { "ab" };
    let names = vec![
        hash_like(prefix, "victim one"),
        hash_like(prefix, "victim two"),
        hash_like("", "victim three"),
        "notes.txt".to_string(),
    ];
    let victim = VictimDir::new(tmp.path().join("victim"), &names);
    let link = dir.join("blobs").join(prefix);
    symlink(&victim.path, &link).unwrap();

    for round in ["the first open", "a second open"] {
        if let Some(store) = attempt("open", LogStore::open(&dir, opts())) {
            assert_docs(&store, 3);
            assert_eq!(read_blob(&store, &kept.id), b"a blob of the store");
            attempt("verify", store.verify());
            attempt("a put", store.docs().put("c", "more", json!({}), None));
            // A blob whose content address is in the linked folder: the
            // put goes nowhere, its staged file stays inside the store.
            if let Some(meta) = attempt("a blob put", put_blob(&store, &bytes_in(prefix))) {
                assert_eq!(read_blob(&store, &meta.id), bytes_in(prefix));
            }
            attempt("compact", store.compact());
            attempt("close", store.close());
        }
        victim.assert_untouched(&format!("after {round}, a blob put, compaction and close"));
        assert_link(&link, &victim.path, round);
    }
}

/// Bytes whose BLAKE3 hash starts with the hex digits `prefix`.
fn bytes_in(prefix: &str) -> Vec<u8> {
    (0u32..)
        .map(|i| format!("a blob in folder {prefix}, try {i}").into_bytes())
        .find(|b| blake3::hash(b).to_hex().starts_with(prefix))
        .unwrap()
}

/// A store of five documents whose newest segment ends in garbage after
/// its last record, a torn tail open cuts and copies into `quarantine/`;
/// returns its directory and the name open gives that copy, learnt by
/// opening a copy of the store.
fn torn_store(tmp: &Path) -> (PathBuf, String) {
    let dir = tmp.join("store");
    let store = LogStore::open(&dir, opts()).unwrap();
    put_docs(&store, 5);
    store.close().unwrap();
    drop(store);
    // Without the snapshot close wrote, open replays every record.
    std::fs::remove_file(dir.join("SNAPSHOT")).unwrap();
    let newest = segments(&dir).pop().unwrap();
    let end = log_end(&std::fs::read(&newest).unwrap());
    let garbage: Vec<u8> = (0..600u32)
        .map(|i| (i.wrapping_mul(37) as u8) | 1)
        .collect();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&newest)
        .unwrap();
    file.write_all_at(&garbage, end.next_multiple_of(4096))
        .unwrap();
    drop(file);

    let probe = tmp.join("probe");
    copy_store(&dir, &probe);
    let store = LogStore::open(&probe, opts()).unwrap();
    let cut = store.recovery_report().truncated.clone();
    let cut = cut.expect("open cuts the torn tail");
    // The name `quarantine` in src/log/recovery.rs gives the first copy.
    let segment = newest.file_name().unwrap().to_string_lossy().into_owned();
    let name = cut
        .quarantined
        .as_deref()
        .and_then(Path::file_name)
        .map_or_else(
            || format!("{segment}.at-{:020}.0", cut.offset),
            |n| n.to_string_lossy().into_owned(),
        );
    drop(store);
    std::fs::remove_dir_all(&probe).unwrap();
    (dir, name)
}

/// A link to a file outside the store at the name open gives the
/// quarantine copy of a torn tail (`quarantine/<segment>.at-<offset>.0`):
/// the segment's bytes never land in that file. (Open may pick another
/// name for its copy, so only the victim is checked.)
#[test]
fn open_never_writes_a_torn_tail_through_a_linked_quarantine_name() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, name) = torn_store(tmp.path());
    let victim = VictimFile::new(tmp.path().join("victim.txt"));
    std::fs::create_dir(dir.join("quarantine")).unwrap();
    symlink(&victim.path, dir.join("quarantine").join(&name)).unwrap();

    exercise(&dir, 5, true, false);
    victim.assert_untouched("after open, verify, a put and close");
    exercise(&dir, 5, false, false);
    victim.assert_untouched("after a second open");
}

/// `quarantine` itself is a link to a folder outside the store: open of a
/// store with a torn tail puts no copy of it there.
#[test]
fn open_never_quarantines_a_torn_tail_into_a_linked_quarantine_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, name) = torn_store(tmp.path());
    let names = vec!["notes.txt".to_string(), name];
    let victim = VictimDir::new(tmp.path().join("victim"), &names);
    let link = dir.join("quarantine");
    symlink(&victim.path, &link).unwrap();

    exercise(&dir, 5, true, false);
    victim.assert_untouched("after open, verify, a put and close");
    assert_link(&link, &victim.path, "after open");
    exercise(&dir, 5, false, false);
    victim.assert_untouched("after a second open");
    assert_link(&link, &victim.path, "after a second open");
}

/// `SNAPSHOT.tmp`, where close writes the index snapshot before renaming
/// it into place, is a link to a file outside the store (planted while the
/// store is open, so it is there when close comes): close neither
/// truncates nor writes that file, and does not rename the link into
/// `SNAPSHOT`.
#[test]
fn close_never_writes_the_snapshot_through_a_linked_snapshot_tmp() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let victim = VictimFile::new(tmp.path().join("victim.txt"));
    let link = dir.join("SNAPSHOT.tmp");

    let store = LogStore::open(&dir, opts()).unwrap();
    put_docs(&store, 5);
    symlink(&victim.path, &link).unwrap();
    attempt("close", store.close());
    drop(store);
    victim.assert_untouched("after close");
    assert_link(&link, &victim.path, "after close");
    assert_not_a_link(&dir.join("SNAPSHOT"), "after close");

    // The log itself was synced before the snapshot: the documents stay.
    exercise(&dir, 5, true, false);
    victim.assert_untouched("after a second open and close");
    assert_link(&link, &victim.path, "after a second open and close");
    assert_not_a_link(&dir.join("SNAPSHOT"), "after a second open and close");
}

/// `MANIFEST.tmp`, which compaction writes and renames over `MANIFEST` to
/// commit, and `SNAPSHOT.tmp`, which it writes after, are links to files
/// outside the store (planted after open, which would settle a leftover
/// `MANIFEST.tmp`): compaction and close write through neither, and
/// neither link becomes the manifest or the snapshot.
#[test]
fn compact_never_writes_the_manifest_through_a_linked_manifest_tmp() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let manifest_victim = VictimFile::new(tmp.path().join("manifest-victim.txt"));
    let snapshot_victim = VictimFile::new(tmp.path().join("snapshot-victim.txt"));
    let manifest_link = dir.join("MANIFEST.tmp");
    let snapshot_link = dir.join("SNAPSHOT.tmp");

    let store = LogStore::open(&dir, opts()).unwrap();
    put_docs(&store, 5);
    // Overwrites, so compaction has dead records to drop.
    put_docs(&store, 5);
    symlink(&manifest_victim.path, &manifest_link).unwrap();
    symlink(&snapshot_victim.path, &snapshot_link).unwrap();
    attempt("compact", store.compact());
    attempt("verify", store.verify());
    attempt("close", store.close());
    drop(store);
    let check = |when: &str| {
        manifest_victim.assert_untouched(when);
        snapshot_victim.assert_untouched(when);
        assert_link(&manifest_link, &manifest_victim.path, when);
        assert_link(&snapshot_link, &snapshot_victim.path, when);
        assert_not_a_link(&dir.join("MANIFEST"), when);
        assert_not_a_link(&dir.join("SNAPSHOT"), when);
    };
    check("after compaction and close");
    exercise(&dir, 5, true, true);
    check("after a second open, compaction and close");
}

/// Links to files outside the store at the names the engine gives its
/// next segments, planted in a closed store: `<next>.seg` (the segment
/// compaction rolls the log to) and `<next + 1>.seg.tmp` (compaction's
/// output before it is committed). Open, compaction and close write
/// through neither.
#[test]
fn compact_never_writes_segments_through_links_at_the_next_segment_names() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = LogStore::open(&dir, opts()).unwrap();
    put_docs(&store, 5);
    put_docs(&store, 5);
    store.close().unwrap();
    drop(store);
    let newest = segments(&dir).pop().unwrap();
    let stem = newest.file_stem().unwrap().to_string_lossy().into_owned();
    let id: u32 = stem.parse().unwrap();
    let roll_link = dir.join(format!("{:020}.seg", id + 1));
    let output_link = dir.join(format!("{:020}.seg.tmp", id + 2));
    let roll_victim = VictimFile::new(tmp.path().join("roll-victim.txt"));
    let output_victim = VictimFile::new(tmp.path().join("output-victim.txt"));
    symlink(&roll_victim.path, &roll_link).unwrap();
    symlink(&output_victim.path, &output_link).unwrap();

    for when in ["after open, compaction and close", "after a second round"] {
        exercise(&dir, 5, true, true);
        roll_victim.assert_untouched(when);
        output_victim.assert_untouched(when);
        assert_link(&roll_link, &roll_victim.path, when);
        assert_link(&output_link, &output_victim.path, when);
    }
}

/// The SQLite driver's import stages a blob's bytes under the predictable
/// name `.<id>.tmp` in its blob folder; a link there to a file outside
/// the store is neither written through nor renamed into the blob's place.
#[cfg(feature = "sqlite")]
#[test]
fn sqlite_blob_import_never_writes_through_a_linked_staging_name() {
    use logstore::{BlobMeta, SqliteStore, Transfer};
    let tmp = tempfile::tempdir().unwrap();
    let blob_dir = tmp.path().join("blobs");
    let store = SqliteStore::open(tmp.path().join("store.db"), &blob_dir, opts()).unwrap();
    let victim = VictimFile::new(tmp.path().join("victim.txt"));
    let link = blob_dir.join(".imported.tmp");
    symlink(&victim.path, &link).unwrap();

    let bytes = b"the bytes of an imported blob";
    let meta = BlobMeta {
        id: "imported".into(),
        mime: "text/plain".into(),
        size: bytes.len() as u64,
        owner_id: None,
        created_at: 1,
        content_hash: None,
    };
    let imported = attempt(
        "import",
        store.import_blob(&meta, &mut Cursor::new(bytes.to_vec())),
    );
    victim.assert_untouched("after the import");
    assert_link(&link, &victim.path, "after the import");
    assert_not_a_link(&blob_dir.join("imported"), "after the import");
    if imported.is_some() {
        use std::io::Read;
        let (_, mut reader) = store.blobs().get("imported").unwrap().unwrap();
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, bytes);
    }
    attempt("close", store.close());
    victim.assert_untouched("after close");
}
