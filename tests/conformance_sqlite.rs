//! The conformance suite against the SQLite driver, on a file and in memory.
#![cfg(feature = "sqlite")]

mod conformance;

use logstore::{Options, SqliteStore};

fn on_file(opts: Options) -> (Box<dyn conformance::Driver>, Option<tempfile::TempDir>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("store.db");
    let store = SqliteStore::open(&db, dir.path().join("blobs"), opts).expect("open");
    (Box::new(store), Some(dir))
}

fn in_memory(opts: Options) -> (Box<dyn conformance::Driver>, Option<tempfile::TempDir>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(":memory:", dir.path().join("blobs"), opts).expect("open");
    (Box::new(store), Some(dir))
}

conformance_suite!(sqlite_on_file, crate::on_file);
conformance_suite!(sqlite_in_memory, crate::in_memory);
