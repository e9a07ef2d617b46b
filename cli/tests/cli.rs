//! The `logstore` binary on real stores.

use std::io::{Cursor, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use logstore::{BlobPut, LogStore, Options, Store};
use rusqlite::{params, Connection};
use serde_json::json;

fn logstore(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_logstore"))
        .args(args)
        .output()
        .expect("run logstore")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A log store with documents, a blob and a lease; returns the offsets of
/// each document record in its one segment.
fn build_log_store(dir: &Path) -> Vec<u64> {
    // Flush: no page padding between the records (only at close), so each
    // record starts where the last non-zero byte before it ends.
    let opts = Options {
        durability: logstore::Durability::Flush,
        ..Options::default()
    };
    let store = LogStore::open(dir, opts).unwrap();
    store.docs().ensure_collection("msgs", &["owner"]).unwrap();
    let segment = dir.join("00000000000000000001.seg");
    let mut offsets = Vec::new();
    for i in 0..5 {
        // The end of the log so far (the file runs on with reserved zeros).
        let contents = std::fs::read(&segment).unwrap();
        offsets.push(
            contents
                .iter()
                .rposition(|&b| b != 0)
                .map_or(0, |p| p as u64 + 1),
        );
        store
            .docs()
            .put(
                "msgs",
                &format!("m{i}"),
                json!({"owner": "ana", "n": i}),
                None,
            )
            .unwrap();
    }
    let opts = BlobPut {
        mime: Some("text/plain".into()),
        owner_id: Some("ana".into()),
    };
    store
        .blobs()
        .put(&mut Cursor::new(b"blob bytes".to_vec()), opts)
        .unwrap();
    store.leases().acquire("conv:1", "run-a", 60_000).unwrap();
    store.close().unwrap();
    offsets
}

#[test]
fn verify_finds_a_flipped_byte_with_its_offset_and_repair_keeps_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let offsets = build_log_store(&dir);
    let clean = logstore(&["verify", dir.to_str().unwrap()]);
    assert!(clean.status.success(), "{}", text(&clean.stderr));
    assert!(text(&clean.stdout).starts_with("ok:"));

    let segment = dir.join("00000000000000000001.seg");
    let mut bytes = std::fs::read(&segment).unwrap();
    let damaged_at = offsets[2];
    bytes[damaged_at as usize + 20] ^= 0x04;
    std::fs::write(&segment, bytes).unwrap();
    let found = logstore(&["verify", dir.to_str().unwrap()]);
    assert_eq!(found.status.code(), Some(1));
    let report = text(&found.stdout);
    assert!(
        report.contains(&format!("00000000000000000001.seg:{damaged_at}:")),
        "{report}"
    );

    let out = tmp.path().join("fixed");
    let repaired = logstore(&[
        "repair",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        repaired.status.code(),
        Some(1),
        "a repair that lost something says so"
    );
    assert!(
        text(&repaired.stdout).ends_with(
            "1 loss listed above: 1 document could not be recovered \
             (the damaged store's index lists 5); a document may also be back at an earlier version\n"
        ),
        "{}",
        text(&repaired.stdout)
    );
    assert!(
        text(&repaired.stdout).contains(&format!(":{damaged_at}:")),
        "{}",
        text(&repaired.stdout)
    );
    // Without the index snapshot nothing can count what the damaged part
    // held; the repair says so.
    let unsnapshotted = tmp.path().join("no-snapshot");
    std::fs::create_dir(&unsnapshotted).unwrap();
    std::fs::copy(&segment, unsnapshotted.join("00000000000000000001.seg")).unwrap();
    copy_tree(&dir.join("blobs"), &unsnapshotted.join("blobs"));
    let blind = logstore(&["repair", unsnapshotted.to_str().unwrap()]);
    assert_eq!(blind.status.code(), Some(1));
    assert!(
        text(&blind.stdout)
            .contains("1 loss listed above; how many documents were lost cannot be told"),
        "{}",
        text(&blind.stdout)
    );
    let store = LogStore::open(&out, Options::default()).unwrap();
    for i in [0, 1, 3, 4] {
        assert!(
            store
                .docs()
                .get("msgs", &format!("m{i}"))
                .unwrap()
                .is_some(),
            "m{i} kept"
        );
    }
    assert!(store.docs().get("msgs", "m2").unwrap().is_none());
    assert!(store.leases().get("conv:1").unwrap().is_some());
    assert_eq!(store.blobs().list(&Default::default()).unwrap().len(), 1);
    assert!(store.verify().unwrap().is_clean());
    drop(store);
    // The original was not touched.
    let again = logstore(&["verify", dir.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
}

/// Copies the directory `from` and everything under it to `to`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

const T0: i64 = 1_700_000_000_000;

fn reference_db(db: &Path) {
    let blobs = db.parent().unwrap().join("blobs");
    let conn = Connection::open(db).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE _store_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);
         CREATE TABLE store_collections (name TEXT PRIMARY KEY, indexes TEXT NOT NULL DEFAULT '[]', created_at INTEGER NOT NULL);
         CREATE TABLE store_docs (collection TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (collection, id));
         CREATE TABLE store_index (collection TEXT NOT NULL, doc_id TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (collection, doc_id, field));
         CREATE INDEX idx_store_index_lookup ON store_index (collection, field, value);
         CREATE TABLE store_blobs (id TEXT PRIMARY KEY, mime TEXT NOT NULL DEFAULT 'application/octet-stream', size INTEGER NOT NULL, owner_id TEXT, created_at INTEGER NOT NULL);
         CREATE INDEX idx_store_blobs_owner ON store_blobs (owner_id);
         CREATE TABLE store_leases (key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at INTEGER NOT NULL, version INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
         CREATE INDEX idx_store_leases_owner ON store_leases (owner);
         INSERT INTO _store_migrations VALUES (1, 1), (2, 2), (3, 3);
         INSERT INTO store_collections VALUES ('msgs', '[\"owner\",\"meta.kind\"]', 1700000000000);",
    )
    .unwrap();
    let docs = [
        (
            "msgs",
            "m1",
            r#"{"owner":"ana","meta":{"kind":"note"},"n":1.5}"#,
            3,
            T0,
            T0 + 50,
        ),
        (
            "msgs",
            "m2",
            r#"{"owner":"bo","text":"héllo"}"#,
            1,
            T0 + 10,
            T0 + 10,
        ),
        ("loose", "x", r#"{"z":1,"a":2}"#, 7, T0 + 20, T0 + 30),
    ];
    for (c, id, data, v, created, updated) in docs {
        conn.execute(
            "INSERT INTO store_docs VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![c, id, data, v, created, updated],
        )
        .unwrap();
    }
    for (id, field, value) in [
        ("m1", "owner", "ana"),
        ("m1", "meta.kind", "note"),
        ("m2", "owner", "bo"),
    ] {
        conn.execute(
            "INSERT INTO store_index VALUES ('msgs', ?1, ?2, ?3)",
            params![id, field, value],
        )
        .unwrap();
    }
    std::fs::create_dir_all(&blobs).unwrap();
    for (id, bytes, owner) in [
        (
            "0b5e3f0e-6c1a-4c53-9d8e-2d7f1f4e9a10",
            &b"first blob"[..],
            Some("ana"),
        ),
        (
            "9f2c1d3e-1111-4c53-9d8e-2d7f1f4e9a11",
            &[0u8, 1, 2, 255][..],
            None,
        ),
    ] {
        conn.execute(
            "INSERT INTO store_blobs VALUES (?1, 'application/octet-stream', ?2, ?3, ?4)",
            params![id, i64::try_from(bytes.len()).unwrap(), owner, T0],
        )
        .unwrap();
        std::fs::write(blobs.join(id), bytes).unwrap();
    }
    conn.execute(
        "INSERT INTO store_leases VALUES ('conv:1', 'run-a', ?1, 4, ?2, ?3)",
        params![T0 + 60_000, T0, T0 + 5],
    )
    .unwrap();
}

/// Every row of the reference tables but the migrations (whose times are
/// the opener's), and every blob file's bytes.
fn rows(db: &Path) -> Vec<String> {
    let conn = Connection::open(db).unwrap();
    let mut out = Vec::new();
    for (table, order) in [
        ("store_collections", "name"),
        ("store_docs", "collection, id"),
        ("store_index", "collection, doc_id, field"),
        ("store_blobs", "id"),
        ("store_leases", "key"),
    ] {
        let sql = format!("SELECT * FROM {table} ORDER BY {order}");
        let mut stmt = conn.prepare(&sql).unwrap();
        let n = stmt.column_count();
        let found: Vec<String> = stmt
            .query_map([], |r| {
                let cells: Vec<String> = (0..n)
                    .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                    .collect();
                Ok(format!("{table}: {}", cells.join(" | ")))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        out.extend(found);
    }
    let blobs = db.parent().unwrap().join("blobs");
    let mut names: Vec<_> = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for name in names {
        out.push(format!(
            "file {name:?}: {:?}",
            std::fs::read(blobs.join(&name)).unwrap()
        ));
    }
    out
}

#[test]
fn a_reference_database_migrates_to_a_log_store_and_back() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("old").join("store.db");
    std::fs::create_dir_all(source.parent().unwrap()).unwrap();
    reference_db(&source);
    let log = tmp.path().join("log");
    let forward = logstore(&["migrate", source.to_str().unwrap(), log.to_str().unwrap()]);
    assert!(
        forward.status.success(),
        "{}{}",
        text(&forward.stdout),
        text(&forward.stderr)
    );
    assert!(text(&forward.stdout).contains("the target verifies"));

    let store = LogStore::open(&log, Options::default()).unwrap();
    let m1 = store.docs().get("msgs", "m1").unwrap().unwrap();
    assert_eq!((m1.version, m1.created_at, m1.updated_at), (3, T0, T0 + 50));
    assert_eq!(
        store
            .docs()
            .count(&logstore::Query::new("msgs").filter("meta.kind", "note"))
            .unwrap(),
        1
    );
    assert_eq!(store.docs().get("loose", "x").unwrap().unwrap().version, 7);
    drop(store);

    let back = tmp.path().join("new").join("store.db");
    std::fs::create_dir_all(back.parent().unwrap()).unwrap();
    let reverse = logstore(&["migrate", log.to_str().unwrap(), back.to_str().unwrap()]);
    assert!(reverse.status.success(), "{}", text(&reverse.stderr));
    assert_eq!(
        rows(&back),
        rows(&source),
        "rows and bytes survive the round trip"
    );

    let refused = logstore(&["migrate", source.to_str().unwrap(), log.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("not empty"),
        "{}",
        text(&refused.stderr)
    );
}

#[test]
fn dump_then_load_reproduces_a_store_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    build_log_store(&source);
    let dump = logstore(&["dump", source.to_str().unwrap()]);
    assert!(dump.status.success(), "{}", text(&dump.stderr));
    assert!(text(&dump.stdout).lines().count() >= 8);
    for target in [
        tmp.path().join("copy"),
        tmp.path().join("sq").join("store.db"),
    ] {
        std::fs::create_dir_all(tmp.path().join("sq")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_logstore"))
            .args(["load", target.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&dump.stdout).unwrap();
        let loaded = child.wait_with_output().unwrap();
        assert!(loaded.status.success(), "{}", text(&loaded.stderr));
        let again = logstore(&["dump", target.to_str().unwrap()]);
        let normalize = |s: String| {
            s.replace(r#","content_hash":null"#, "")
                .replace(|_: char| false, "")
        };
        let strip_hashes = |s: &str| -> String {
            s.lines()
                .map(|l| {
                    let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                    if let Some(meta) = v.get_mut("meta") {
                        meta["content_hash"] = serde_json::Value::Null;
                    }
                    v.to_string()
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let (a, b) = (
            normalize(text(&dump.stdout)),
            normalize(text(&again.stdout)),
        );
        if target.extension().is_some_and(|e| e == "db") {
            // The SQLite schema has no content hash column.
            assert_eq!(strip_hashes(&a), strip_hashes(&b), "{}", target.display());
        } else {
            assert_eq!(a, b, "{}", target.display());
        }
    }
}

#[test]
fn scripts_get_put_delete_query_and_count() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let d = dir.to_str().unwrap();
    build_log_store(&dir);
    let put = logstore(&["put", d, "msgs", "new", r#"{"owner":"cy","rank":"r1"}"#]);
    assert!(put.status.success(), "{}", text(&put.stderr));
    let row: serde_json::Value = serde_json::from_slice(&put.stdout).unwrap();
    assert_eq!(row["version"], 1);
    let stale = logstore(&["put", d, "msgs", "new", "{}", "--expected-version", "9"]);
    assert_eq!(stale.status.code(), Some(1));
    assert_eq!(text(&stale.stdout), "");
    assert!(text(&stale.stderr).contains("version conflict (current 1)"));
    let got = logstore(&["get", d, "msgs", "new"]);
    assert!(text(&got.stdout).contains(r#""owner":"cy""#));
    let q = logstore(&[
        "query",
        d,
        "msgs",
        "--where",
        "owner=ana",
        "--order-by",
        "id",
        "--desc",
        "--limit",
        "2",
    ]);
    let ids: Vec<String> = text(&q.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, vec!["m4", "m3"]);
    assert_eq!(
        text(&logstore(&["count", d, "msgs", "--where", "owner=ana"]).stdout).trim(),
        "5"
    );
    assert_eq!(
        text(&logstore(&["delete", d, "msgs", "new"]).stdout).trim(),
        "true"
    );
    assert_eq!(
        logstore(&["delete", d, "msgs", "new"]).status.code(),
        Some(1)
    );
    let unindexed = logstore(&["query", d, "msgs", "--where", "rank=r1"]);
    assert_eq!(unindexed.status.code(), Some(1));
    assert!(text(&unindexed.stderr).contains("not indexed"));
    assert!(text(&unindexed.stderr).contains(&format!("`logstore ensure {d} msgs rank`")));
}

#[test]
fn stats_compact_a_held_store_and_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let d = dir.to_str().unwrap();
    build_log_store(&dir);
    let stats = logstore(&["stats", d, "--json"]);
    assert!(stats.status.success(), "{}", text(&stats.stderr));
    let report: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(report["log"]["documents"], 5);
    assert_eq!(report["blobs"]["count"], 1);
    assert_eq!(report["leases"]["held"], 1);
    assert!(report["log"]["space_amplification"].as_f64().unwrap() >= 1.0);
    let compacted = logstore(&["compact", d]);
    assert!(compacted.status.success(), "{}", text(&compacted.stderr));
    assert!(text(&compacted.stdout).starts_with("compacted"));

    // A store another handle holds: inspection reads it, writes are refused.
    let held = LogStore::open(&dir, Options::default()).unwrap();
    let read = logstore(&["stats", d]);
    assert!(read.status.success(), "{}", text(&read.stderr));
    for write in [&["compact", d][..], &["put", d, "msgs", "x", "{}"]] {
        let locked = logstore(write);
        assert_eq!(locked.status.code(), Some(1), "{write:?}");
        assert!(
            text(&locked.stderr).contains("locked"),
            "{}",
            text(&locked.stderr)
        );
    }
    drop(held);

    assert_eq!(logstore(&["stats"]).status.code(), Some(2));
    assert_eq!(logstore(&["frobnicate"]).status.code(), Some(2));
    let help = logstore(&["verify", "--help"]);
    assert!(text(&help.stdout).contains("Example"));
}

/// `repair --in-place` rewrites the store in its own directory (the library
/// switches it in through the manifest) and keeps the damaged originals in
/// the store's quarantine folder, which it names.
#[test]
fn repair_in_place_rewrites_the_store_and_keeps_the_original_in_quarantine() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let offsets = build_log_store(&dir);
    let segment = dir.join("00000000000000000001.seg");
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[offsets[2] as usize + 20] ^= 0x04;
    std::fs::write(&segment, &bytes).unwrap();
    let repaired = logstore(&["repair", dir.to_str().unwrap(), "--in-place"]);
    assert_eq!(
        repaired.status.code(),
        Some(1),
        "{}",
        text(&repaired.stderr)
    );
    let stdout = text(&repaired.stdout);
    assert!(stdout.contains(&format!(":{}:", offsets[2])), "{stdout}");
    assert!(
        stdout.contains("1 document could not be recovered (the damaged store's index lists 5)"),
        "{stdout}"
    );
    let kept = std::fs::canonicalize(&dir)
        .unwrap()
        .join("quarantine/repair-00000000000000000002.0");
    assert!(
        stdout.contains(&format!("originals are kept in {}", kept.display())),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(kept.join("00000000000000000001.seg")).unwrap(),
        bytes,
        "the original is kept as it was"
    );
    assert!(!segment.exists(), "the damaged segment left the log");
    for beside in ["log.damaged", "log.repairing"] {
        assert!(!tmp.path().join(beside).exists());
    }
    let verified = logstore(&["verify", dir.to_str().unwrap()]);
    assert!(verified.status.success(), "{}", text(&verified.stdout));
    assert!(
        !text(&verified.stdout).contains("warning"),
        "the kept folder is the store's own: {}",
        text(&verified.stdout)
    );
    let store = LogStore::open(&dir, Options::default()).unwrap();
    assert!(store.docs().get("msgs", "m4").unwrap().is_some());
    assert!(store.docs().get("msgs", "m2").unwrap().is_none());
    assert!(store.leases().get("conv:1").unwrap().is_some());
    assert_eq!(store.blobs().list(&Default::default()).unwrap().len(), 1);
    drop(store);
    // A second repair finds nothing lost and keeps its own originals
    // beside the first repair's.
    let again = logstore(&["repair", dir.to_str().unwrap(), "--in-place"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains("no documents were lost: every record verified\n"),
        "{}",
        text(&again.stdout)
    );
    assert_eq!(
        std::fs::read(kept.join("00000000000000000001.seg")).unwrap(),
        bytes
    );
    let folders = std::fs::read_dir(dir.join("quarantine")).unwrap().count();
    assert_eq!(folders, 2);
}

/// Entries the store did not make are warnings in `verify`, which still
/// passes, and a count in `stats`.
#[test]
fn verify_warns_of_foreign_entries_and_stats_counts_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let d = dir.to_str().unwrap();
    build_log_store(&dir);
    std::os::unix::fs::symlink("../elsewhere", dir.join("stray-link")).unwrap();
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let verified = logstore(&["verify", d]);
    assert!(verified.status.success(), "{}", text(&verified.stdout));
    let report = text(&verified.stdout);
    assert!(report.starts_with("ok:"), "{report}");
    let link = dir.join("stray-link");
    assert!(
        report.contains(&format!(
            "warning: {}: a symbolic link the store did not make (left alone)",
            link.display()
        )),
        "{report}"
    );
    assert!(report.contains("notes.txt: a file the store did not make"));
    let stats = logstore(&["stats", d]);
    assert!(text(&stats.stdout).contains("foreign entries: 2 ("));
    let json = logstore(&["stats", d, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["log"]["foreign_entries"], 2);
}
