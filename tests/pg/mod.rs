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

/// The server's URL with a default transaction isolation of `level`
/// (`serializable`, `repeatable read`) for every connection, as a server,
/// database or role default would set it; `None` as [`url`].
pub fn url_with_default_isolation(level: &str) -> Option<String> {
    // In connection options a space inside a value is escaped with `\`.
    let level = level.replace(' ', "%5C%20");
    url().map(|url| {
        with_param(
            &url,
            &format!("options=-cdefault_transaction_isolation%3D{level}"),
        )
    })
}

/// A store in a fresh schema on the server at `url`.
pub fn open_fresh_at(url: &str, opts: Options) -> (PgStore, String) {
    let schema = fresh_schema();
    let store = PgStore::open_in_schema(url, &schema, opts).expect("open the PostgreSQL store");
    (store, schema)
}

/// Runs `sql` through `psql`, which comes with the server's package (the
/// store offers no way to damage its own rows); returns what it printed.
pub fn psql(sql: &str) -> String {
    let url = url().expect("LOGSTORE_PG_URL");
    let out = std::process::Command::new("psql")
        .args([&url, "-v", "ON_ERROR_STOP=1", "-tAc", sql])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs `f(thread)` on `threads` threads released together; returns what
/// each answered, in thread order.
pub fn race<T: Send>(threads: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = std::sync::Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, f) = (&barrier, &f);
                scope.spawn(move || {
                    barrier.wait();
                    f(t)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("racer"))
            .collect()
    })
}
