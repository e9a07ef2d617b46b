//! Persistence: what is written survives close and reopen (in this process
//! and in another one), and one handle owns the directory at a time.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::{all_docs, flush_opts};
use logstore::{Document, Error, LogStore, ManualClock, Options, Query, Store};
use serde_json::json;

const CHILD_DIR: &str = "LOGSTORE_TEST_CHILD_DIR";
const CHILD_ROLE: &str = "LOGSTORE_TEST_CHILD_ROLE";

fn write_sample(store: &LogStore, clock: &ManualClock) -> Vec<Document> {
    let d = store.docs();
    d.put("msgs", "early", json!({"owner": "a", "rank": "r0"}), None)
        .unwrap();
    d.ensure_collection("msgs", &["owner"]).unwrap();
    d.ensure_collection("users", &["email"]).unwrap();
    for i in 0..20 {
        clock.advance(3);
        let owner = if i % 2 == 0 { "a" } else { "b" };
        d.put(
            "msgs",
            &format!("m{i:02}"),
            json!({"owner": owner, "rank": format!("r{i}"), "z": 1, "a": 2}),
            None,
        )
        .unwrap();
    }
    d.ensure_collection("msgs", &["rank"]).unwrap();
    clock.advance(3);
    d.patch("msgs", "m03", json!({"owner": "a"}), 1)
        .unwrap()
        .unwrap();
    d.put("msgs", "m04", json!({"owner": "c"}), Some(1))
        .unwrap()
        .unwrap();
    assert!(d.delete("msgs", "m05").unwrap());
    d.put("users", "u1", json!({"email": "u1@example.com"}), None)
        .unwrap();
    all_docs(d, "msgs")
}

fn check_indexes(store: &LogStore) {
    let d = store.docs();
    assert_eq!(
        d.count(&Query::new("msgs").filter("owner", "a")).unwrap(),
        11
    );
    assert_eq!(
        d.count(&Query::new("msgs").filter("owner", "c")).unwrap(),
        1
    );
    let early = d.query(&Query::new("msgs").filter("rank", "r0")).unwrap();
    assert_eq!(
        early.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        vec!["early", "m00"]
    );
    let cols = d.list_collections().unwrap();
    assert_eq!(
        cols.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        vec!["msgs", "users"]
    );
    assert_eq!(cols[0].indexes, vec!["owner", "rank"]);
    assert_eq!(cols[0].doc_count, 20);
}

#[test]
fn rows_indexes_and_collections_survive_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let clock = Arc::new(ManualClock::new(1_000));
    let opts = Options {
        clock: clock.clone(),
        ..Options::default()
    };
    let before = {
        let store = LogStore::open(&dir, opts.clone()).unwrap();
        let rows = write_sample(&store, &clock);
        store.close().unwrap();
        rows
    };
    let store = LogStore::open(&dir, opts).unwrap();
    assert_eq!(all_docs(store.docs(), "msgs"), before);
    let key_order =
        serde_json::to_string(&store.docs().get("msgs", "m01").unwrap().unwrap().data).unwrap();
    assert_eq!(key_order, r#"{"owner":"b","rank":"r1","z":1,"a":2}"#);
    check_indexes(&store);
}

#[test]
fn dropping_without_close_keeps_flushed_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    {
        let store = LogStore::open(&dir, flush_opts()).unwrap();
        store.docs().put("c", "x", json!({"v": 1}), None).unwrap();
    }
    let store = LogStore::open(&dir, flush_opts()).unwrap();
    assert_eq!(
        store.docs().get("c", "x").unwrap().unwrap().data["v"],
        json!(1)
    );
}

#[test]
fn a_second_open_is_locked_until_close() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = LogStore::open(&dir, Options::default()).unwrap();
    match LogStore::open(&dir, Options::default()) {
        Err(Error::Locked { path }) => {
            assert_eq!(path, dir);
            let message = Error::Locked { path }.to_string();
            assert!(message.contains("locked"), "{message}");
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    store.close().unwrap();
    let again = LogStore::open(&dir, Options::default()).unwrap();
    drop(again);
    LogStore::open(&dir, Options::default()).unwrap();
}

fn child(role: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "child_process_entry",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_DIR, dir)
    .env(CHILD_ROLE, role);
    cmd
}

fn run_child(role: &str, dir: &Path) -> std::process::Output {
    child(role, dir).output().unwrap()
}

#[test]
fn leases_are_locked_to_their_process_and_come_back_after_sigkill() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let mut holder = child("hold-leases", &dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = holder.stdout.take().unwrap();
    let ready = std::io::BufReader::new(stdout)
        .lines()
        .map(|l| l.unwrap())
        .any(|l| l.contains("ready"));
    assert!(ready, "the child acquired its leases");
    assert!(matches!(
        LogStore::open(&dir, Options::default()),
        Err(Error::Locked { .. })
    ));
    holder.kill().unwrap(); // SIGKILL: no destructor runs
    holder.wait().unwrap();
    let store = LogStore::open(&dir, Options::default()).unwrap();
    let lease = store.leases().get("conv:1").unwrap().unwrap();
    assert_eq!((lease.owner.as_str(), lease.expires_at), ("run-a", 65_000));
    assert_eq!(
        store.leases().get("conv:2").unwrap().unwrap().expires_at,
        6_000
    );
}

/// Not a test of its own: the body a child process runs when the parent
/// starts this test binary with the role variables set.
#[test]
#[ignore = "the child processes of the two-process tests, which run it with --ignored"]
fn child_process_entry() {
    let (Some(dir), Ok(role)) = (std::env::var_os(CHILD_DIR), std::env::var(CHILD_ROLE)) else {
        return;
    };
    let dir = PathBuf::from(dir);
    match role.as_str() {
        "expect-locked" => {
            assert!(matches!(
                LogStore::open(&dir, Options::default()),
                Err(Error::Locked { .. })
            ));
        }
        "read-and-write" => {
            let store = LogStore::open(&dir, Options::default()).unwrap();
            check_indexes(&store);
            store
                .docs()
                .put("msgs", "from-child", json!({"owner": "child"}), None)
                .unwrap();
            store.close().unwrap();
        }
        "hold-leases" => {
            let clock = Arc::new(ManualClock::new(5_000));
            let store = LogStore::open(
                &dir,
                Options {
                    clock,
                    ..Options::default()
                },
            )
            .unwrap();
            store.leases().acquire("conv:1", "run-a", 60_000).unwrap();
            store.leases().acquire("conv:2", "run-a", 1_000).unwrap();
            println!("ready");
            std::thread::sleep(std::time::Duration::from_secs(120));
            panic!("the parent should have killed this process");
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn another_process_reads_what_this_one_wrote_and_is_locked_out_meanwhile() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let clock = Arc::new(ManualClock::new(1_000));
    let opts = Options {
        clock: clock.clone(),
        ..Options::default()
    };
    let store = LogStore::open(&dir, opts.clone()).unwrap();
    let before = write_sample(&store, &clock);

    let out = run_child("expect-locked", &dir);
    assert!(
        out.status.success(),
        "child: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    store.close().unwrap();

    let out = run_child("read-and-write", &dir);
    assert!(
        out.status.success(),
        "child: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let store = LogStore::open(&dir, opts).unwrap();
    let mut after = all_docs(store.docs(), "msgs");
    let child_row = after
        .iter()
        .position(|d| d.id == "from-child")
        .expect("child's write is there");
    after.remove(child_row);
    assert_eq!(after, before);
}
