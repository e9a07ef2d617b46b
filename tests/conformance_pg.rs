//! The conformance suite against the PostgreSQL driver on a real server
//! (`LOGSTORE_PG_URL`), each test in a schema of its own: once as the
//! server is set up, once under a default isolation of SERIALIZABLE.
#![cfg(feature = "postgres")]

mod conformance;
mod pg;

use logstore::Options;

fn in_fresh_schema(opts: Options) -> (Box<dyn conformance::Driver>, Option<tempfile::TempDir>) {
    let (store, _schema) = pg::open_fresh(opts);
    (Box::new(store), None)
}

/// A store on a server whose default isolation is SERIALIZABLE (set in the
/// URL, as a server, database or role default would set it): the driver
/// pins READ COMMITTED, so every rule holds the same.
fn in_fresh_serializable_schema(
    opts: Options,
) -> (Box<dyn conformance::Driver>, Option<tempfile::TempDir>) {
    let url = pg::url_with_default_isolation("serializable").expect("LOGSTORE_PG_URL");
    let (store, _schema) = pg::open_fresh_at(&url, opts);
    (Box::new(store), None)
}

conformance_suite!(postgres, crate::in_fresh_schema, when crate::pg::available());
conformance_suite!(
    postgres_serializable,
    crate::in_fresh_serializable_schema,
    when crate::pg::available()
);
