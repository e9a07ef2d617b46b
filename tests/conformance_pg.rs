//! The conformance suite against the PostgreSQL driver on a real server
//! (`LOGSTORE_PG_URL`), each test in a schema of its own.
#![cfg(feature = "postgres")]

mod conformance;
mod pg;

use logstore::Options;

fn in_fresh_schema(opts: Options) -> (Box<dyn conformance::Driver>, Option<tempfile::TempDir>) {
    let (store, _schema) = pg::open_fresh(opts);
    (Box::new(store), None)
}

conformance_suite!(postgres, crate::in_fresh_schema, when crate::pg::available());
