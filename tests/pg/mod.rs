//! Shared setup of the PostgreSQL tests: the server comes from
//! `LOGSTORE_PG_URL` (set by `scripts/with-postgres.sh`), and each test
//! works in a schema of its own.
//!
//! Without the variable the tests return at once, so a developer without a
//! server can run the rest of the suite; when `CI` is set they fail
//! instead, so a CI run cannot pass them by skipping.

#![allow(dead_code)]

use logstore::{Options, PgStore};

/// The server's URL, or `None` (after saying so) when the tests should
/// skip. Panics when `CI` is set and no URL is given.
pub fn url() -> Option<String> {
    match std::env::var("LOGSTORE_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but LOGSTORE_PG_URL is not: run the tests under scripts/with-postgres.sh"
            );
            eprintln!(
                "skipped: LOGSTORE_PG_URL is not set (see README, \"The PostgreSQL driver\")"
            );
            None
        }
    }
}

/// True when a server is configured (see [`url`]).
pub fn available() -> bool {
    url().is_some()
}

/// A fresh schema name, so tests never see each other's rows.
pub fn fresh_schema() -> String {
    format!("t_{}", uuid::Uuid::new_v4().simple())
}

/// A store in a fresh schema.
pub fn open_fresh(opts: Options) -> (PgStore, String) {
    let schema = fresh_schema();
    let url = url().expect("LOGSTORE_PG_URL");
    let store = PgStore::open_in_schema(&url, &schema, opts).expect("open the PostgreSQL store");
    (store, schema)
}

/// `url` with one more query parameter.
pub fn with_param(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}
