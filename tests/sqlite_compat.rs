//! Compatibility with the reference package's SQLite layout: a database
//! built with plain SQL the way the Node package writes it opens and reads
//! here, and what this driver writes is what the Node package would write.
#![cfg(feature = "sqlite")]

use std::path::Path;
use std::sync::Arc;

use logstore::{ManualClock, Options, Query, SqliteStore, Store};
use rusqlite::{params, Connection};
use serde_json::json;

const T0: i64 = 1_700_000_000_000;

/// The reference package's first migration (documents), as plain SQL.
const REFERENCE_DOCUMENT_TABLES: &str = "
    CREATE TABLE _store_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);
    CREATE TABLE store_collections (name TEXT PRIMARY KEY, indexes TEXT NOT NULL DEFAULT '[]', created_at INTEGER NOT NULL);
    CREATE TABLE store_docs (collection TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (collection, id));
    CREATE TABLE store_index (collection TEXT NOT NULL, doc_id TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (collection, doc_id, field));
    CREATE INDEX idx_store_index_lookup ON store_index (collection, field, value);";

/// (version, applied_at) of every recorded migration.
fn applied_migrations(conn: &Connection) -> Vec<(i64, i64)> {
    conn.prepare("SELECT version, applied_at FROM _store_migrations ORDER BY version")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The reference schema and rows, written with plain SQL.
fn build_reference_db(db: &Path, blobs: &Path) {
    let conn = Connection::open(db).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL;").unwrap();
    conn.execute_batch(REFERENCE_DOCUMENT_TABLES).unwrap();
    conn.execute_batch(
        "CREATE TABLE store_blobs (id TEXT PRIMARY KEY, mime TEXT NOT NULL DEFAULT 'application/octet-stream', size INTEGER NOT NULL, owner_id TEXT, created_at INTEGER NOT NULL);
         CREATE INDEX idx_store_blobs_owner ON store_blobs (owner_id);
         CREATE TABLE store_leases (key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at INTEGER NOT NULL, version INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
         CREATE INDEX idx_store_leases_owner ON store_leases (owner);
         INSERT INTO _store_migrations VALUES (1, 1600000000000), (2, 1600000000001), (3, 1600000000002);",
    )
    .unwrap();
    conn.execute(
        "INSERT INTO store_collections VALUES ('msgs', '[\"owner\",\"meta.kind\"]', ?1)",
        [T0],
    )
    .unwrap();
    let docs = [
        (
            "m1",
            r#"{"owner":"ana","meta":{"kind":"note"},"n":1}"#,
            3,
            T0,
            T0 + 50,
        ),
        ("m2", r#"{"owner":"bo","text":"hi"}"#, 1, T0 + 10, T0 + 10),
        ("m3", r#"{"owner":"ana"}"#, 2, T0 + 20, T0 + 30),
    ];
    for (id, data, version, created, updated) in docs {
        conn.execute(
            "INSERT INTO store_docs VALUES ('msgs', ?1, ?2, ?3, ?4, ?5)",
            params![id, data, version, created, updated],
        )
        .unwrap();
    }
    for (id, field, value) in [
        ("m1", "owner", "ana"),
        ("m1", "meta.kind", "note"),
        ("m2", "owner", "bo"),
        ("m3", "owner", "ana"),
    ] {
        conn.execute(
            "INSERT INTO store_index VALUES ('msgs', ?1, ?2, ?3)",
            params![id, field, value],
        )
        .unwrap();
    }
    let blob_id = "0b5e3f0e-6c1a-4c53-9d8e-2d7f1f4e9a10";
    conn.execute(
        "INSERT INTO store_blobs VALUES (?1, 'text/plain', 5, 'ana', ?2)",
        params![blob_id, T0],
    )
    .unwrap();
    std::fs::create_dir_all(blobs).unwrap();
    std::fs::write(blobs.join(blob_id), b"hello").unwrap();
}

fn opts(clock: &Arc<ManualClock>) -> Options {
    Options {
        clock: clock.clone(),
        ..Options::default()
    }
}

#[test]
fn a_reference_database_opens_and_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store.db");
    let blobs = tmp.path().join("blobs");
    build_reference_db(&db, &blobs);
    let clock = Arc::new(ManualClock::new(T0 + 1_000));
    let store = SqliteStore::open(&db, &blobs, opts(&clock)).unwrap();
    let d = store.docs();

    let cols = d.list_collections().unwrap();
    assert_eq!(cols.len(), 1);
    assert_eq!(cols[0].indexes, vec!["owner", "meta.kind"]);
    assert_eq!(cols[0].doc_count, 3);
    let m1 = d.get("msgs", "m1").unwrap().unwrap();
    assert_eq!((m1.version, m1.created_at, m1.updated_at), (3, T0, T0 + 50));
    assert_eq!(
        serde_json::to_string(&m1.data).unwrap(),
        r#"{"owner":"ana","meta":{"kind":"note"},"n":1}"#
    );
    let ana = d
        .query(&Query::new("msgs").filter("owner", "ana").desc())
        .unwrap();
    assert_eq!(
        ana.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        vec!["m3", "m1"]
    );
    assert_eq!(
        d.count(&Query::new("msgs").filter("meta.kind", "note"))
            .unwrap(),
        1
    );
    store.close().unwrap();

    // Opening did not re-run or re-record migrations, and left the blob alone.
    let conn = Connection::open(&db).unwrap();
    let applied = applied_migrations(&conn);
    assert_eq!(
        applied,
        vec![
            (1, 1_600_000_000_000),
            (2, 1_600_000_000_001),
            (3, 1_600_000_000_002)
        ]
    );
    assert_eq!(
        std::fs::read(blobs.join("0b5e3f0e-6c1a-4c53-9d8e-2d7f1f4e9a10")).unwrap(),
        b"hello"
    );
}

#[test]
fn writes_produce_the_rows_the_reference_package_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store.db");
    let blobs = tmp.path().join("blobs");
    build_reference_db(&db, &blobs);
    let clock = Arc::new(ManualClock::new(T0 + 1_000));
    let store = SqliteStore::open(&db, &blobs, opts(&clock)).unwrap();
    let d = store.docs();
    d.ensure_collection("msgs", &["rank"]).unwrap();
    d.put(
        "msgs",
        "m4",
        json!({"owner": "cy", "rank": 10, "meta": {"kind": ["x"]}}),
        None,
    )
    .unwrap();
    clock.advance(5);
    d.patch("msgs", "m1", json!({"owner": "bo", "rank": true}), 3)
        .unwrap()
        .unwrap();
    assert!(d.delete("msgs", "m2").unwrap());
    d.ensure_collection("users", &[]).unwrap();
    store.close().unwrap();

    let conn = Connection::open(&db).unwrap();
    let cols: Vec<(String, String, i64)> = conn
        .prepare("SELECT name, indexes, created_at FROM store_collections ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        cols,
        vec![
            ("msgs".into(), r#"["owner","meta.kind","rank"]"#.into(), T0),
            ("users".into(), "[]".into(), T0 + 1_005),
        ]
    );
    let docs: Vec<(String, String, i64, i64, i64)> = conn
        .prepare("SELECT id, data, version, created_at, updated_at FROM store_docs WHERE collection = 'msgs' ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        docs,
        vec![
            (
                "m1".into(),
                r#"{"owner":"bo","meta":{"kind":"note"},"n":1,"rank":true}"#.into(),
                4,
                T0,
                T0 + 1_005
            ),
            (
                "m3".into(),
                r#"{"owner":"ana"}"#.into(),
                2,
                T0 + 20,
                T0 + 30
            ),
            (
                "m4".into(),
                r#"{"owner":"cy","rank":10,"meta":{"kind":["x"]}}"#.into(),
                1,
                T0 + 1_000,
                T0 + 1_000
            ),
        ]
    );
    let index: Vec<(String, String, String)> = conn
        .prepare("SELECT doc_id, field, value FROM store_index WHERE collection = 'msgs' ORDER BY doc_id, field")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected: Vec<(String, String, String)> = [
        ("m1", "meta.kind", "note"),
        ("m1", "owner", "bo"),
        ("m1", "rank", "true"),
        ("m3", "owner", "ana"),
        ("m4", "owner", "cy"),
        ("m4", "rank", "10"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(
        index, expected,
        "one row per indexable declared field; m4's array kind has none"
    );
}

#[test]
fn a_new_database_has_the_reference_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store.db");
    let clock = Arc::new(ManualClock::new(T0));
    SqliteStore::open(&db, tmp.path().join("blobs"), opts(&clock))
        .unwrap()
        .close()
        .unwrap();
    let conn = Connection::open(&db).unwrap();
    let objects: Vec<(String, String)> = conn
        .prepare("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let names: Vec<String> = objects.iter().map(|(t, n)| format!("{t} {n}")).collect();
    assert_eq!(
        names,
        vec![
            "index idx_store_blobs_owner",
            "index idx_store_index_lookup",
            "index idx_store_leases_owner",
            "table _store_migrations",
            "table store_blobs",
            "table store_collections",
            "table store_docs",
            "table store_index",
            "table store_leases",
        ]
    );
    let versions: Vec<i64> = conn
        .prepare("SELECT version FROM _store_migrations ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(versions, vec![1, 2, 3]);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('store_docs') ORDER BY cid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        columns,
        vec![
            "collection",
            "id",
            "data",
            "version",
            "created_at",
            "updated_at"
        ]
    );
}

#[test]
fn only_migrations_past_the_recorded_version_are_applied() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store.db");
    {
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(REFERENCE_DOCUMENT_TABLES).unwrap();
        conn.execute_batch(
            "INSERT INTO _store_migrations VALUES (1, 5);
             INSERT INTO store_docs VALUES ('c', 'x', '{}', 1, 5, 5);",
        )
        .unwrap();
    }
    let clock = Arc::new(ManualClock::new(T0));
    let store = SqliteStore::open(&db, tmp.path().join("blobs"), opts(&clock)).unwrap();
    assert_eq!(store.docs().get("c", "x").unwrap().unwrap().created_at, 5);
    store.close().unwrap();
    let conn = Connection::open(&db).unwrap();
    let applied = applied_migrations(&conn);
    assert_eq!(applied, vec![(1, 5), (2, T0), (3, T0)]);
}
