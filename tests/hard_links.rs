//! Hard links in a store directory: a hard link to a file outside the
//! store is a regular file under an engine name, which no `O_NOFOLLOW`
//! catches. The engine reads such a file but never writes it: a victim
//! linked in as a segment or the lock file keeps its bytes, and a store
//! whose newest segment is shared (a copy made with `cp -al`) refuses a
//! writable open with a message saying why, while a read-only open works.

use std::path::Path;

use logstore::{Error, LogStore, Options, Store};
use serde_json::json;

fn opts() -> Options {
    Options {
        auto_compact: false,
        ..Options::default()
    }
}

/// Opens `store` for writing (allowed to be refused), writes a document
/// and closes it: what an app would do.
fn open_and_write(store: &Path) {
    if let Ok(s) = LogStore::open(store, opts()) {
        let _ = s.docs().put("c", "b", json!({"v": 2}), None);
        let _ = s.close();
    }
}

/// A victim shorter than a segment header, linked in as the only segment:
/// open would take it for a segment whose header never reached the disk
/// and write a fresh one over it.
#[test]
fn a_short_victim_linked_in_as_the_only_segment_keeps_its_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let victim = tmp.path().join("victim.conf");
    std::fs::write(&victim, b"token=s3cret-value\n").unwrap();
    std::fs::hard_link(&victim, store.join("00000000000000000001.seg")).unwrap();
    open_and_write(&store);
    assert_eq!(std::fs::read(&victim).unwrap(), b"token=s3cret-value\n");
}

/// A victim of zeros past its first bytes (a preallocated image), linked
/// in as the only segment: open would restart it and append records.
#[test]
fn a_zero_filled_victim_linked_in_as_the_only_segment_keeps_its_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let victim = tmp.path().join("disk.img");
    let mut bytes = b"IMG HEADER v1 not-a-seg".to_vec();
    bytes.resize(64 * 1024, 0);
    std::fs::write(&victim, &bytes).unwrap();
    std::fs::hard_link(&victim, store.join("00000000000000000001.seg")).unwrap();
    open_and_write(&store);
    assert_eq!(std::fs::read(&victim).unwrap(), bytes);
}

/// The lock file linked to a victim: taking the lock writes nothing.
#[test]
fn a_victim_linked_in_as_the_lock_file_keeps_its_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    open_and_write(&store);
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, b"victim bytes\n").unwrap();
    std::fs::remove_file(store.join("LOCK")).unwrap();
    std::fs::hard_link(&victim, store.join("LOCK")).unwrap();
    open_and_write(&store);
    assert_eq!(std::fs::read(&victim).unwrap(), b"victim bytes\n");
}

/// A copy made with `cp -al` shares every segment with the store: a
/// writable open of either would append to both, so it is refused, saying
/// why; a read-only open reads it; the copy keeps its bytes.
#[test]
fn a_store_sharing_its_newest_segment_opens_read_only_but_not_for_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let s = LogStore::open(&store, opts()).unwrap();
    s.docs().put("c", "a", json!({"v": 1}), None).unwrap();
    s.close().unwrap();
    drop(s);
    let copy = tmp.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    let mut linked = Vec::new();
    for entry in std::fs::read_dir(&store).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let to = copy.join(path.file_name().unwrap());
            std::fs::hard_link(&path, &to).unwrap();
            linked.push((to.clone(), std::fs::read(&to).unwrap()));
        }
    }
    let refused = LogStore::open(&store, opts()).unwrap_err();
    assert!(
        matches!(&refused, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied),
        "{refused}"
    );
    assert!(refused.to_string().contains("hard links"), "{refused}");
    let reader = LogStore::open_read_only(&store, opts()).unwrap();
    assert_eq!(reader.docs().get("c", "a").unwrap().unwrap().data["v"], 1);
    for (path, bytes) in linked {
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{}", path.display());
    }
}
