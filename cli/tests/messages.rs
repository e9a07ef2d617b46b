//! What the tool says as a user meets it: declaring indexes with `ensure`,
//! the listings, one-line messages for a missing document and a lost
//! compare-and-swap, usage errors (exit 2) and the help texts.

mod common;

use std::io::Cursor;
use std::path::Path;

use common::{logstore, ok, text, tree};
use logstore::{BlobPut, LogStore, Options, Store};
use serde_json::{json, Value};

/// Runs the tool, which must fail with `code` and `message` on stderr and
/// print nothing on stdout.
fn fails(args: &[&str], code: i32, message: &str) {
    let out = logstore(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains(message),
        "{args:?}: {}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "", "{args:?}");
}

#[test]
fn ensure_declares_an_index_over_documents_already_there() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let d = dir.to_str().unwrap();
    ok(&[
        "put",
        d,
        "msgs",
        "m1",
        r#"{"owner":"ana","meta":{"kind":"note"}}"#,
    ]);
    ok(&["put", d, "msgs", "m2", r#"{"owner":"bo"}"#]);

    let hint = format!("`logstore ensure {d} msgs owner`");
    fails(
        &["query", d, "msgs", "--where", "owner=ana"],
        1,
        "field owner is not indexed in collection msgs",
    );
    fails(&["query", d, "msgs", "--where", "owner=ana"], 1, &hint);
    fails(&["count", d, "msgs", "--where", "owner=ana"], 1, &hint);
    // Every missing field is named once, the order field too.
    fails(
        &[
            "query",
            d,
            "msgs",
            "--where",
            "owner=ana",
            "--order-by",
            "meta.kind",
        ],
        1,
        &format!("`logstore ensure {d} msgs owner meta.kind`"),
    );

    assert_eq!(
        ok(&["ensure", d, "msgs", "owner"]),
        "msgs: declared index owner (2 documents indexed); indexes owner\n"
    );
    let rows = ok(&["query", d, "msgs", "--where", "owner=ana"]);
    let ids: Vec<String> = rows
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].to_string())
        .collect();
    assert_eq!(ids, vec!["\"m1\""]);
    assert_eq!(ok(&["count", d, "msgs", "--where", "owner=bo"]), "1\n");

    assert_eq!(
        ok(&["ensure", d, "msgs", "owner"]),
        "msgs: nothing new to declare (2 documents); indexes owner\n"
    );
    assert_eq!(
        ok(&["ensure", d, "msgs", "owner", "meta.kind"]),
        "msgs: declared index meta.kind (2 documents indexed); indexes owner, meta.kind\n"
    );
    assert_eq!(
        ok(&["count", d, "msgs", "--where", "meta.kind=note"]),
        "1\n"
    );
    assert_eq!(
        ok(&["ensure", d, "empty"]),
        "empty: declared the collection (0 documents); no indexes\n"
    );

    // Like `put`, `ensure` makes a store only in a missing or empty directory.
    let fresh = tmp.path().join("fresh");
    let out = logstore(&["ensure", fresh.to_str().unwrap(), "msgs", "owner", "rank"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("created a new store in"));
    assert_eq!(
        text(&out.stdout),
        "msgs: declared indexes owner, rank (0 documents indexed); indexes owner, rank\n"
    );
}

/// A store with two declared collections and one that was never declared,
/// three blobs (two of ana's), a live lease and an expired one.
fn listed_store(dir: &Path) {
    let store = LogStore::open(dir, Options::default()).unwrap();
    let docs = store.docs();
    docs.ensure_collection("msgs", &["owner", "meta.kind"])
        .unwrap();
    docs.ensure_collection("empty", &[]).unwrap();
    for i in 0..3 {
        docs.put("msgs", &format!("m{i}"), json!({"owner": "ana"}), None)
            .unwrap();
    }
    docs.put("loose", "x", json!({}), None).unwrap();
    for (bytes, owner) in [
        (&b"one"[..], Some("ana")),
        (b"two!", None),
        (b"three", Some("ana")),
    ] {
        let opts = BlobPut {
            mime: Some("text/plain".into()),
            owner_id: owner.map(Into::into),
        };
        store
            .blobs()
            .put(&mut Cursor::new(bytes.to_vec()), opts)
            .unwrap();
    }
    store
        .leases()
        .acquire("conv:live", "run-a", 3_600_000)
        .unwrap();
    store.leases().acquire("conv:old", "run-b", 1).unwrap();
    // The second lease's millisecond passes.
    std::thread::sleep(std::time::Duration::from_millis(20));
    store.close().unwrap();
}

#[test]
fn collections_blobs_and_leases_are_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let d = dir.to_str().unwrap();
    listed_store(&dir);
    let before = tree(&dir);

    assert_eq!(
        ok(&["collections", d]),
        "empty: 0 documents; no indexes\n\
         loose: 1 document; never declared, no indexes (`logstore ensure` declares them)\n\
         msgs: 3 documents; indexes owner, meta.kind\n"
    );
    let json: Value = serde_json::from_str(&ok(&["collections", d, "--json"])).unwrap();
    assert_eq!(
        json[2],
        json!({"name": "msgs", "documents": 3, "indexes": ["owner", "meta.kind"], "declared": true})
    );
    assert_eq!(json[1]["declared"], false);

    let all = ok(&["blobs", d]);
    assert_eq!(all.lines().count(), 3, "{all}");
    let first = all.lines().next().unwrap();
    assert!(
        first.contains("  5 bytes  text/plain  owner ana  created 20"),
        "{first}"
    );
    assert!(
        all.contains("  4 bytes  text/plain  no owner  created "),
        "{all}"
    );
    let anas = ok(&["blobs", d, "--owner", "ana"]);
    assert_eq!(anas.lines().count(), 2, "{anas}");
    assert!(anas.lines().all(|l| l.contains("owner ana")), "{anas}");
    assert_eq!(ok(&["blobs", d, "--owner", "cy"]), "no blobs owned by cy\n");
    let page = ok(&["blobs", d, "--limit", "2"]);
    assert_eq!(page.lines().last(), Some("more blobs follow: --offset 2"));
    assert_eq!(ok(&["blobs", d, "--offset", "2"]).lines().count(), 1);
    let metas: Value = serde_json::from_str(&ok(&["blobs", d, "--json"])).unwrap();
    assert_eq!(metas.as_array().unwrap().len(), 3);
    assert_eq!(metas[0]["size"], 5);

    let leases = ok(&["leases", d]);
    let lines: Vec<&str> = leases.lines().collect();
    assert_eq!(lines.len(), 2, "{leases}");
    assert!(
        lines[0].starts_with("conv:live  owner run-a  expires 20"),
        "{leases}"
    );
    // An hour ahead, less the moments the test took.
    assert!(
        lines[0].contains(" UTC (in ") && lines[0].ends_with(" min)"),
        "{leases}"
    );
    assert!(
        lines[1].starts_with("conv:old  owner run-b  expired 20"),
        "{leases}"
    );
    assert!(lines[1].ends_with(" ago)"), "{leases}");
    let rows: Value = serde_json::from_str(&ok(&["leases", d, "--json"])).unwrap();
    assert_eq!(rows[0]["expired"], false);
    assert_eq!(rows[1]["expired"], true);
    assert_eq!(rows[1]["owner"], "run-b");

    assert_eq!(tree(&dir), before, "the listings wrote nothing");

    let empty = tmp.path().join("empty-store");
    ok(&["ensure", empty.to_str().unwrap(), "msgs"]);
    let e = empty.to_str().unwrap();
    assert_eq!(ok(&["blobs", e]), "no blobs\n");
    assert_eq!(ok(&["leases", e]), "no leases\n");
}

#[test]
fn a_missing_document_and_a_lost_compare_and_swap_say_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let d = dir.to_str().unwrap();
    ok(&["put", d, "msgs", "m1", r#"{"owner":"ana"}"#]);
    ok(&["put", d, "msgs", "m1", r#"{"owner":"bo"}"#]);

    fails(&["get", d, "msgs", "nosuch"], 1, "not found: msgs/nosuch");
    fails(
        &["delete", d, "msgs", "nosuch"],
        1,
        "not found: msgs/nosuch",
    );
    fails(
        &["put", d, "msgs", "m1", "{}", "--expected-version", "1"],
        1,
        "version conflict (current 2)",
    );
    fails(
        &["put", d, "msgs", "m9", "{}", "--expected-version", "1"],
        1,
        "version conflict (the document does not exist)",
    );
    let row: Value = serde_json::from_str(&ok(&["get", d, "msgs", "m1"])).unwrap();
    assert_eq!(
        (row["version"].as_u64(), row["data"]["owner"].as_str()),
        (Some(2), Some("bo"))
    );
    fails(&["get", d, "msgs", "m9"], 1, "not found: msgs/m9");
    let won = ok(&["put", d, "msgs", "m1", "{}", "--expected-version", "2"]);
    assert_eq!(serde_json::from_str::<Value>(&won).unwrap()["version"], 3);
}

/// `created_at` and `updated_at` as every row prints them, in `--order-by`
/// too (the contract's `createdAt` and `updatedAt` still work).
#[test]
fn timestamps_have_one_spelling() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let d = dir.to_str().unwrap();
    // m1 is made first and written last, each write in a later
    // millisecond than the one before.
    for (id, body) in [("m1", "{}"), ("m2", "{}"), ("m1", r#"{"a":1}"#)] {
        std::thread::sleep(std::time::Duration::from_millis(5));
        ok(&["put", d, "msgs", id, body]);
    }
    let row = ok(&["get", d, "msgs", "m1"]);
    assert!(
        row.contains(r#""created_at":"#) && row.contains(r#""updated_at":"#),
        "{row}"
    );
    assert!(
        !row.contains("createdAt") && !row.contains("updatedAt"),
        "{row}"
    );
    let order = |by: &str| -> Vec<String> {
        ok(&["query", d, "msgs", "--order-by", by, "--desc"])
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(order("created_at"), ["m2", "m1"]);
    assert_eq!(order("createdAt"), ["m2", "m1"]);
    assert_eq!(order("updated_at"), ["m1", "m2"]);
    assert_eq!(order("updatedAt"), ["m1", "m2"]);
    let help = ok(&["query", "--help"]);
    assert!(
        help.contains("created_at (default), updated_at, id"),
        "{help}"
    );
}

#[test]
fn usage_errors_exit_2_before_any_store_is_touched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let d = dir.to_str().unwrap();
    ok(&["put", d, "msgs", "m1", r#"{"owner":"ana"}"#]);
    ok(&["ensure", d, "msgs", "owner"]);
    let before = tree(&dir);
    let missing = tmp.path().join("missing");
    let m = missing.to_str().unwrap();
    let long_id = "x".repeat(logstore::MAX_ID_BYTES + 1);
    let many: Vec<String> = (0..=logstore::MAX_INDEXES)
        .map(|i| format!("f{i}"))
        .collect();
    let mut too_many = vec!["ensure", m, "msgs"];
    too_many.extend(many.iter().map(String::as_str));
    let lines: Vec<Vec<&str>> = vec![
        vec!["query", d, "msgs", "--where", "ownerana"],
        vec!["query", d, "msgs", "--where", "=ana"],
        vec!["count", d, "msgs", "--where", "owner"],
        vec!["query", d, "msgs", "--order-by", ""],
        vec!["count", d, "msgs", "--limit", "2"],
        vec!["put", d, "msgs", "m2", "{not json"],
        vec!["put", d, "msgs", "m2", "[1, 2]"],
        vec!["put", m, "msgs", "m2", "\"text\""],
        vec!["put", d, "", "m2", "{}"],
        vec!["put", m, "msgs", &long_id, "{}"],
        vec!["get", d, "msgs", ""],
        vec!["delete", d, "", "m1"],
        vec!["ensure", m, "msgs", "meta..kind"],
        vec!["ensure", m, "msgs", ""],
        vec!["blobs", d, "--owner", ""],
        vec!["blobs", d, "--limit", "0"],
        vec!["repair", d, "--out", "fixed.db"],
        vec!["repair", d, "--out", "postgres://h/db"],
        vec!["bench", "--seconds", "-1", "--dir", m],
        vec!["bench", "--seconds", "nan", "--dir", m],
        vec!["bench", "--seconds", "1e30", "--dir", m],
        vec!["bench", "--threads", "0", "--dir", m],
        vec!["bench", "--docs", "0", "--dir", m],
        vec!["bench", "--url", "postgres://h/db", "--dir", m],
        vec!["bench", "--blob-dir", m, "--dir", m],
        vec!["bench", "--driver", "postgres", "--url", "h/db", "--dir", m],
        too_many,
        vec!["frobnicate"],
        vec!["stats"],
    ];
    for args in &lines {
        let out = logstore(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let stderr = text(&out.stderr);
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(stderr.contains("try '--help'"), "{args:?}: {stderr}");
        assert!(!missing.exists(), "{args:?} made {m}");
    }
    assert_eq!(tree(&dir), before, "a usage error changes nothing");
}

#[test]
fn the_help_says_what_a_user_needs() {
    let count = ok(&["count", "--help"]);
    assert!(count.contains("--where <FIELD=VALUE>"), "{count}");
    for flag in ["--order-by", "--desc", "--limit", "--offset"] {
        assert!(!count.contains(flag), "count --help lists {flag}: {count}");
    }
    let query = ok(&["query", "--help"]);
    for flag in ["--where", "--order-by", "--desc", "--limit", "--offset"] {
        assert!(query.contains(flag), "query --help lacks {flag}: {query}");
    }
    let top = ok(&["--help"]);
    assert!(top.contains("postgres://"), "{top}");
    assert!(top.contains("2 a usage error"), "{top}");
    for command in ["ensure", "collections", "blobs", "leases"] {
        assert!(
            top.lines().any(|l| l.trim_start().starts_with(command)),
            "{command}: {top}"
        );
    }
}
