//! Old-format stores must keep opening. `tests/fixtures/v1-store` was written
//! by format version 1; every later version must read it to the same rows.
//! (Regenerate only for a new format version, into a new directory:
//! `cargo test --test fixtures -- --ignored write_v1_fixture`.)

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{all_docs, copy_store, flush_opts};
use logstore::{LogStore, ManualClock, Options, Query, Store};
use serde_json::json;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-store")
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
fn write_v1_fixture() {
    let dir = fixture_dir();
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
    std::fs::remove_file(dir.join(logstore::LOCK_FILE)).unwrap();
}

#[test]
fn v1_fixture_opens_with_every_row() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    copy_store(&fixture_dir(), &dir);
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
