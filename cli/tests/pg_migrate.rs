//! `logstore migrate` through a PostgreSQL server (`LOGSTORE_PG_URL`): a log
//! store to PostgreSQL, on to SQLite, back to PostgreSQL and to a log store
//! again, with every dump along the way the same. Without the variable the
//! test returns at once, except under CI, where it fails.

mod common;
#[path = "../../tests/pg/mod.rs"]
mod pg;

use std::io::Cursor;
use std::path::Path;

use logstore::{BlobPut, LogStore, Options, PgStore, Store, Transfer};
use serde_json::{json, Value};

use common::{logstore, ok};

/// The URL of a fresh schema on the server at `url`, and the schema's name.
fn schema_url_and_name(url: &str) -> (String, String) {
    let schema = pg::fresh_schema();
    let named = pg::with_param(url, &format!("options=-csearch_path%3D{schema}"));
    (named, schema)
}

/// The URL of a fresh schema on the server at `url`.
fn schema_url(url: &str) -> String {
    schema_url_and_name(url).0
}

/// A log store with ensured and unensured collections, odd ids, a blob
/// larger than one PostgreSQL chunk, and leases.
fn build(dir: &Path) {
    let store = LogStore::open(dir, Options::default()).expect("open");
    let d = store.docs();
    d.ensure_collection("msgs", &["owner", "n"])
        .expect("ensure");
    for i in 0..20 {
        let owner = ["ana", "bo"][i % 2];
        let body = json!({"owner": owner, "n": i as f64 / 4.0, "z": 1, "a": {"k": [i]}});
        d.put("msgs", &format!("m{i}"), body, None).expect("put");
    }
    d.put(
        "msgs",
        "m1",
        json!({"owner": "ana", "edited": true}),
        Some(1),
    )
    .expect("cas");
    d.put("loose", "id with \0 nul", json!({"b": 2, "a": 1}), None)
        .expect("unensured");
    let big: Vec<u8> = (0..1_500_000u32).map(|i| (i % 253) as u8).collect();
    let opts = BlobPut {
        mime: Some("application/x-test".into()),
        owner_id: Some("ana".into()),
    };
    store
        .blobs()
        .put(&mut Cursor::new(big), opts)
        .expect("blob");
    store
        .blobs()
        .put(&mut Cursor::new(Vec::new()), BlobPut::default())
        .expect("empty blob");
    store
        .leases()
        .acquire("conv:1", "run-A", 60_000)
        .expect("lease");
    store
        .leases()
        .acquire("conv:2", "run-B", -5)
        .expect("expired lease");
    assert!(!store.is_empty().expect("is_empty"));
    store.close().expect("close");
}

/// A dump with the content hash left out (the SQLite schema has none).
fn normalized_dump(store: &str) -> Vec<Value> {
    ok(&["dump", store])
        .lines()
        .map(|line| {
            let mut item: Value = serde_json::from_str(line).expect("a JSON line");
            if let Some(meta) = item.get_mut("meta").and_then(Value::as_object_mut) {
                meta.remove("content_hash");
            }
            item
        })
        .collect()
}

#[test]
fn migrate_moves_stores_to_postgres_and_back_losslessly() {
    let Some(url) = pg::url() else { return };
    let tmp = tempfile::tempdir().expect("temp dir");
    let log = tmp.path().join("log");
    build(&log);
    let log = log.to_str().expect("path");
    let (pg_a, pg_b) = (schema_url(&url), schema_url(&url));
    let sqlite = tmp.path().join("copy").join("store.db");
    let sqlite = sqlite.to_str().expect("path");
    let back = tmp.path().join("back");
    let back = back.to_str().expect("path");

    let original = normalized_dump(log);
    assert!(original.len() > 20, "{original:?}");
    ok(&["migrate", log, &pg_a]);
    assert_eq!(normalized_dump(&pg_a), original, "log -> PostgreSQL");
    ok(&["migrate", &pg_a, sqlite]);
    assert_eq!(normalized_dump(sqlite), original, "PostgreSQL -> SQLite");
    ok(&["migrate", sqlite, &pg_b]);
    assert_eq!(normalized_dump(&pg_b), original, "SQLite -> PostgreSQL");
    ok(&["migrate", &pg_b, back]);
    assert_eq!(normalized_dump(back), original, "PostgreSQL -> log");

    // A non-empty PostgreSQL target is refused, as any other.
    let refused = logstore(&["migrate", log, &pg_a]);
    assert!(!refused.status.success());
    assert!(
        common::text(&refused.stderr).contains("is not empty"),
        "{}",
        common::text(&refused.stderr)
    );
    // The tool's other commands take the URL too.
    let got = ok(&["get", &pg_a, "msgs", "m1"]);
    assert!(got.contains("edited"), "{got}");
    let counted = ok(&["count", &pg_a, "msgs", "--where", "owner=ana"]);
    assert_eq!(counted.trim(), "11", "m0..m18 even, and m1 after its edit");
}

/// A `store_blobs` row whose size a foreign writer set to 2^62, or to a
/// negative number: `dump` and `migrate` report the damaged row as
/// corruption and exit 1, and never allocate the recorded size (an
/// allocation that large aborts the process).
#[test]
fn dump_and_migrate_report_a_damaged_blob_row_as_corruption() {
    let Some(url) = pg::url() else { return };
    let tmp = tempfile::tempdir().expect("temp dir");
    for size in ["4611686018427387904", "-1", "size + 1"] {
        let (store_url, schema) = schema_url_and_name(&url);
        let store = logstore::PgStore::open(&store_url, Options::default()).expect("open");
        store
            .docs()
            .put("msgs", "m1", json!({"a": 1}), None)
            .expect("put");
        let meta = store
            .blobs()
            .put(&mut Cursor::new(b"hello".to_vec()), BlobPut::default())
            .expect("blob");
        store.close().expect("close");
        pg::psql(&format!(
            "UPDATE {schema}.store_blobs SET size = {size} WHERE id = '{}'",
            meta.id
        ));
        let target = tmp.path().join(format!("copy-{}", meta.id));
        let target = target.to_str().expect("path");
        for args in [
            vec!["dump", store_url.as_str()],
            vec!["migrate", store_url.as_str(), target],
        ] {
            let out = logstore(&args);
            let stderr = common::text(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{args:?} with size {size}: {stderr}"
            );
            assert!(
                stderr.contains("corruption") && stderr.contains(&meta.id),
                "{args:?} with size {size}: {stderr}"
            );
        }
        pg::psql(&format!("DROP SCHEMA {schema} CASCADE"));
    }
}

/// The new schema is built in `SCHEMA_partial` and renamed whole: none is
/// left after a copy, and one that logstore did not make (it lacks the
/// marker table) is refused and left as it is.
#[test]
fn a_staging_schema_is_used_only_when_logstore_made_it() {
    let Some(url) = pg::url() else { return };
    let tmp = tempfile::tempdir().expect("temp dir");
    let log = tmp.path().join("log");
    build(&log);
    let log = log.to_str().expect("path");
    let target = schema_url(&url);
    let schema = target.rsplit("%3D").next().expect("schema").to_string();
    let partial = format!("{schema}_partial");
    // Someone else's schema under the staging name.
    let foreign = PgStore::open_in_schema(&url, &partial, Options::default()).expect("open");
    foreign
        .docs()
        .put("mine", "1", json!({"keep": true}), None)
        .expect("put");
    let refused = logstore(&["migrate", log, &target]);
    assert_eq!(refused.status.code(), Some(1));
    let err = common::text(&refused.stderr);
    assert!(
        err.contains(&format!(
            "schema {partial} exists, and logstore did not make it"
        )),
        "{err}"
    );
    assert!(foreign.docs().get("mine", "1").expect("get").is_some());
    foreign.drop_schema().expect("drop");

    ok(&["migrate", log, &target]);
    assert_eq!(normalized_dump(&target), normalized_dump(log));
    let again = PgStore::open_in_schema(&url, &partial, Options::default()).expect("open");
    assert!(
        again.is_empty().expect("is_empty"),
        "the staging schema was renamed away"
    );
    again.drop_schema().expect("drop");
    PgStore::open(&target, Options::default())
        .expect("open")
        .drop_schema()
        .expect("drop");
}

#[test]
fn a_second_run_leaves_a_staging_schema_in_use_alone() {
    let Some(url) = pg::url() else { return };
    let to = schema_url(&url);
    let place = || logstore::Place::Postgres { url: to.clone() };
    let first = logstore::Staging::begin(place(), Options::default()).expect("first run");
    first
        .store()
        .expect("store")
        .docs()
        .put("c", "1", json!({"a": 1}), None)
        .expect("put");
    let err = logstore::Staging::begin(place(), Options::default())
        .expect_err("the first run's schema is in use");
    assert!(err.to_string().contains("another run"), "{err}");
    first.finish().expect("the first run finishes");
    let store = PgStore::open(&to, Options::default()).expect("open");
    assert!(store.docs().get("c", "1").expect("get").is_some());
    store.drop_schema().expect("drop");
}
