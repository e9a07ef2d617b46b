//! Old-format stores must keep opening. `tests/fixtures/v1-*` were written by
//! format version 1 and `tests/fixtures/v2-*` by version 2; every later
//! version must read them to the same rows. (Write a fixture only for a new
//! format version, into a new directory:
//! `cargo test --test fixtures -- --ignored write_v2_fixture`.)

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{all_docs, copy_store, flush_opts};
use logstore::{LogStore, ManualClock, Options, Query, Store};
use serde_json::json;

fn fixture_dir(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/v{version}-store"))
}

/// The format version in the header of every segment of a fixture, so a
/// fixture is known to hold what its name says.
fn segment_versions(dir: &Path) -> Vec<u32> {
    common::segments(dir)
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).unwrap();
            u32::from_le_bytes(bytes[8..12].try_into().unwrap())
        })
        .collect()
}

fn write_contents(store: &LogStore, clock: &ManualClock) {
    let d = store.docs();
    d.ensure_collection("msgs", &["owner", "meta.kind"])
        .unwrap();
    d.put(
        "msgs",
        "m1",
        json!({"owner": "a", "meta": {"kind": "note"}, "n": 1.5}),
        None,
    )
    .unwrap();
    clock.advance(1_000);
    d.put(
        "msgs",
        "m2",
        json!({"owner": "b", "text": "héllo ✓", "tags": [1, 2]}),
        None,
    )
    .unwrap();
    clock.advance(1_000);
    d.put("msgs", "m3", json!({"owner": "a", "gone": true}), None)
        .unwrap();
    d.patch("msgs", "m1", json!({"owner": "b", "extra": null}), 1)
        .unwrap()
        .unwrap();
    assert!(d.delete("msgs", "m3").unwrap());
    d.put("loose", "x", json!({"z": 1, "a": 2}), None).unwrap();
    d.ensure_collection("msgs", &["rank"]).unwrap();
}

#[test]
#[ignore = "writes the committed fixture; run only to create a new format's fixture"]
fn write_v2_fixture() {
    let dir = fixture_dir(2);
    assert!(
        !dir.exists(),
        "fixtures are never rewritten; remove it by hand if you mean it"
    );
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store = LogStore::open(
        &dir,
        Options {
            clock: clock.clone(),
            ..flush_opts()
        },
    )
    .unwrap();
    write_contents(&store, &clock);
    store.close().unwrap();
    std::fs::remove_file(dir.join("LOCK")).unwrap();
}

#[test]
fn v1_fixture_opens_with_every_row() {
    assert_eq!(segment_versions(&fixture_dir(1)), [1]);
    check_store_fixture(&fixture_dir(1));
}

#[test]
fn v2_fixture_opens_with_every_row() {
    assert!(segment_versions(&fixture_dir(2)).iter().all(|&v| v == 2));
    check_store_fixture(&fixture_dir(2));
}

fn check_store_fixture(fixture: &Path) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    copy_store(fixture, &dir);
    let store = LogStore::open(&dir, flush_opts()).unwrap();
    assert!(store.recovery_report().truncated.is_none());
    let d = store.docs();
    let cols = d.list_collections().unwrap();
    assert_eq!(cols.len(), 1);
    assert_eq!(cols[0].name, "msgs");
    assert_eq!(cols[0].indexes, vec!["owner", "meta.kind", "rank"]);
    assert_eq!(cols[0].doc_count, 2);

    let msgs = all_docs(d, "msgs");
    assert_eq!(msgs.len(), 2);
    let m1 = &msgs[0];
    assert_eq!((m1.id.as_str(), m1.version), ("m1", 2));
    assert_eq!(
        (m1.created_at, m1.updated_at),
        (1_700_000_000_000, 1_700_000_002_000)
    );
    assert_eq!(
        serde_json::to_string(&m1.data).unwrap(),
        r#"{"owner":"b","meta":{"kind":"note"},"n":1.5,"extra":null}"#
    );
    let m2 = &msgs[1];
    assert_eq!(
        (m2.id.as_str(), m2.version, m2.created_at),
        ("m2", 1, 1_700_000_001_000)
    );
    assert_eq!(m2.data["text"], json!("héllo ✓"));

    assert_eq!(
        d.count(&Query::new("msgs").filter("owner", "b")).unwrap(),
        2
    );
    assert_eq!(
        d.count(&Query::new("msgs").filter("owner", "a")).unwrap(),
        0
    );
    let notes = d
        .query(&Query::new("msgs").filter("meta.kind", "note"))
        .unwrap();
    assert_eq!(
        notes.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        vec!["m1"]
    );
    assert_eq!(d.get("msgs", "m3").unwrap(), None);
    let loose = d.get("loose", "x").unwrap().unwrap();
    assert_eq!(
        serde_json::to_string(&loose.data).unwrap(),
        r#"{"z":1,"a":2}"#
    );
}

fn blobs_and_leases_dir(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/v{version}-blobs-leases"))
}

/// The id of the blob each version's fixture keeps.
fn fixture_blob_id(version: u32) -> &'static str {
    match version {
        1 => "67112d51-f218-4681-ad72-efbae9a39172",
        _ => include_str!("fixtures/v2-blobs-leases.blob-id").trim(),
    }
}

#[test]
#[ignore = "writes the committed fixture; run only to create a new format's fixture"]
fn write_v2_blobs_and_leases_fixture() {
    use std::io::Cursor;
    let dir = blobs_and_leases_dir(2);
    assert!(
        !dir.exists(),
        "fixtures are never rewritten; remove it by hand if you mean it"
    );
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store = LogStore::open(
        &dir,
        Options {
            clock: clock.clone(),
            ..flush_opts()
        },
    )
    .unwrap();
    let put = |bytes: &[u8], owner: Option<&str>| {
        let opts = logstore::BlobPut {
            mime: Some("text/plain".into()),
            owner_id: owner.map(Into::into),
        };
        store
            .blobs()
            .put(&mut Cursor::new(bytes.to_vec()), opts)
            .unwrap()
    };
    let kept = put(b"fixture bytes", Some("u1"));
    let twin = put(b"fixture bytes", None);
    let gone = put(b"deleted bytes", None);
    store.blobs().delete(&gone.id).unwrap();
    store.blobs().delete(&twin.id).unwrap();
    store.leases().acquire("conv:1", "run-a", 60_000).unwrap();
    clock.advance(10);
    store.leases().renew("conv:1", "run-a", 60_000).unwrap();
    store.leases().acquire("conv:2", "run-b", 5).unwrap();
    store.leases().acquire("conv:3", "run-c", 5).unwrap();
    store.leases().release("conv:2", "run-b").unwrap();
    store.leases().release_all("run-c").unwrap();
    store.close().unwrap();
    std::fs::remove_file(dir.join("LOCK")).unwrap();
    std::fs::write(dir.with_extension("blob-id"), format!("{}\n", kept.id)).unwrap();
}

#[test]
fn v1_blobs_and_leases_fixture_opens() {
    assert_eq!(segment_versions(&blobs_and_leases_dir(1)), [1]);
    check_blobs_and_leases_fixture(1);
}

#[test]
fn v2_blobs_and_leases_fixture_opens() {
    assert!(segment_versions(&blobs_and_leases_dir(2))
        .iter()
        .all(|&v| v == 2));
    check_blobs_and_leases_fixture(2);
}

fn check_blobs_and_leases_fixture(version: u32) {
    use std::io::Read;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    copy_tree(&blobs_and_leases_dir(version), &dir);
    let store = LogStore::open(&dir, flush_opts()).unwrap();
    assert_eq!(store.recovery_report().orphan_blobs_removed, 0);
    let all = store.blobs().list(&logstore::BlobList::default()).unwrap();
    assert_eq!(all.len(), 1);
    let meta = &all[0];
    assert_eq!(meta.id, fixture_blob_id(version));
    assert_eq!(
        (meta.mime.as_str(), meta.size, meta.owner_id.as_deref()),
        ("text/plain", 13, Some("u1"))
    );
    assert_eq!(
        meta.content_hash.as_deref(),
        Some(blake3::hash(b"fixture bytes").to_hex().as_str())
    );
    let (_, mut reader) = store.blobs().get(&meta.id).unwrap().unwrap();
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).unwrap();
    assert_eq!(bytes, b"fixture bytes");
    let lease = store.leases().get("conv:1").unwrap().unwrap();
    assert_eq!(
        (lease.owner.as_str(), lease.version, lease.expires_at),
        ("run-a", 2, 1_700_000_060_010)
    );
    assert_eq!(lease.created_at, 1_700_000_000_000);
    assert!(store.leases().get("conv:2").unwrap().is_none());
    assert!(store.leases().get("conv:3").unwrap().is_none());
}

/// Copies a directory tree (the blob fixture has folders).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
