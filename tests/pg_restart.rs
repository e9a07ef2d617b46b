//! The PostgreSQL driver across a server restart: calls fail with a typed
//! connection error while the server is down, work again once it is back
//! (the pool reconnects by itself), and every write that was acknowledged
//! is there afterwards. The server is stopped and started through
//! `LOGSTORE_PG_CTL` (set by `scripts/with-postgres.sh`); this is its own
//! test binary, so no other test runs while the server is down.
#![cfg(feature = "postgres")]

mod pg;

use std::io::{Cursor, Read};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use logstore::{Acquire, BlobPut, Error, Options, PgStore, Store};
use serde_json::json;

/// Held by each test for its whole run: two tests stopping one server at
/// once would see each other's outages.
static SERVER: Mutex<()> = Mutex::new(());

fn ctl(action: &str) {
    let ctl = std::env::var("LOGSTORE_PG_CTL").expect("LOGSTORE_PG_CTL");
    let status = Command::new(&ctl)
        .arg(action)
        .status()
        .expect("run LOGSTORE_PG_CTL");
    assert!(status.success(), "{ctl} {action} failed");
}

/// The server-control command, or `None` when the test should skip (no
/// server configured outside CI); fails in CI when it is missing.
fn control() -> Option<()> {
    pg::url()?;
    if std::env::var_os("LOGSTORE_PG_CTL").is_some() {
        return Some(());
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but LOGSTORE_PG_CTL is not: run the tests under scripts/with-postgres.sh"
    );
    eprintln!("skipped: LOGSTORE_PG_CTL is not set, so the server cannot be restarted");
    None
}

fn is_connection_error(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. }
        if matches!(source.kind(), std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::NotConnected))
}

/// Writes documents `w-0`, `w-1`, ... until `stop`, recording the ids whose
/// put returned `Ok` and checking that every failure is a connection error.
fn writer(store: &PgStore, stop: &AtomicBool, acked: &Mutex<Vec<String>>) {
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        let id = format!("w-{n}");
        match store.docs().put("c", &id, json!({"k": "w", "n": n}), None) {
            Ok(_) => acked.lock().expect("acked").push(id),
            Err(e) => {
                assert!(is_connection_error(&e), "unexpected error: {e:?}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        n += 1;
    }
}

#[test]
fn a_restart_fails_calls_while_down_then_recovers_with_every_acknowledged_write() {
    if control().is_none() {
        return;
    }
    let _server = SERVER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let url = pg::with_param(&pg::url().expect("url"), "connect_timeout=1");
    let schema = pg::fresh_schema();
    let store = PgStore::open_in_schema(&url, &schema, Options::default()).expect("open");
    store.docs().ensure_collection("c", &["k"]).expect("ensure");
    let blob = store
        .blobs()
        .put(&mut Cursor::new(b"before".to_vec()), BlobPut::default())
        .expect("blob");
    assert!(matches!(
        store.leases().acquire("lease", "run-1", 3_600_000),
        Ok(Acquire::Acquired(_))
    ));
    let stop = AtomicBool::new(false);
    let acked = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        let background = scope.spawn(|| writer(&store, &stop, &acked));
        std::thread::sleep(Duration::from_millis(300));
        ctl("stop");
        // Down: every facility answers with a connection error. The first
        // call may find a pooled connection the stop broke
        // (ConnectionAborted); later ones cannot connect (NotConnected).
        for _ in 0..2 {
            let e = store
                .docs()
                .get("c", "w-0")
                .expect_err("the server is down");
            assert!(is_connection_error(&e), "{e:?}");
        }
        let e = store.leases().get("lease").expect_err("down");
        assert!(is_connection_error(&e), "{e:?}");
        let e = store.blobs().get_meta(&blob.id).expect_err("down");
        assert!(is_connection_error(&e), "{e:?}");
        ctl("start");
        // Back: the very next call works.
        let row = store.docs().get("c", "w-0").expect("the server is back");
        assert!(row.is_some(), "w-0 was written before the stop");
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::SeqCst);
        background.join().expect("writer");
    });
    let acked = acked.into_inner().expect("acked");
    assert!(
        acked.len() > 2,
        "the writer wrote before and after: {acked:?}"
    );
    for id in &acked {
        assert!(
            store.docs().get("c", id).expect("get").is_some(),
            "acknowledged write {id} is missing"
        );
    }
    let (_, mut bytes) = store.blobs().get(&blob.id).expect("get").expect("blob");
    let mut read = Vec::new();
    bytes.read_to_end(&mut read).expect("bytes");
    assert_eq!(read, b"before");
    let lease = store.leases().get("lease").expect("get").expect("row");
    assert_eq!(lease.owner, "run-1");
}

#[test]
fn a_quick_restart_costs_at_most_one_failed_call() {
    if control().is_none() {
        return;
    }
    let _server = SERVER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let url = pg::url().expect("url");
    let (store, _schema) = pg::open_fresh(Options::default());
    store.docs().put("c", "1", json!({}), None).expect("put");
    ctl("stop");
    ctl("start");
    // The pooled connection died with the old server: one call reports it
    // and the pool is rebuilt; the next one works.
    match store.docs().get("c", "1") {
        Ok(row) => assert!(row.is_some()),
        Err(e) => {
            assert!(is_connection_error(&e), "{e:?}");
            assert!(store.docs().get("c", "1").expect("recovered").is_some());
        }
    }
    let other = PgStore::open_in_schema(&url, store.schema(), Options::default()).expect("open");
    assert!(other.docs().get("c", "1").expect("get").is_some());
}
