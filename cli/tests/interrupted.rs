//! An interrupted `logstore migrate` leaves either no target or the whole
//! store, and a retry succeeds: the tool is killed (SIGKILL) at seeded
//! random moments of copies from SQLite to a log store and back, and what
//! it left is read with the library.
//!
//! `LOGSTORE_MIGRATE_KILL_RUNS` sets the number of runs (20 by default) and
//! `LOGSTORE_MIGRATE_KILL_SEED` the seed; a failure names the run and its kill moment.

mod common;
#[path = "../../tests/items/mod.rs"]
mod items;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use logstore::{BlobPut, LogStore, Options, SqliteStore, Store, Transfer};
use serde_json::json;

use common::{logstore, text};
use items::items;

/// A small xorshift generator: the kill moments, from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An SQLite store with indexed documents, blobs and leases, and the same
/// store as a log store; returns their paths and items.
fn sources(dir: &Path) -> (PathBuf, PathBuf, Vec<String>) {
    let db = dir.join("src").join("store.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let sqlite = SqliteStore::open(&db, dir.join("src").join("blobs"), Options::default()).unwrap();
    sqlite
        .docs()
        .ensure_collection("msgs", &["owner", "n"])
        .unwrap();
    let rows: Vec<logstore::Row> = (0..4000u32)
        .map(|i| {
            logstore::Row::Document(logstore::Document {
                collection: "msgs".into(),
                id: format!("m{i:05}"),
                data: json!({"owner": format!("o{}", i % 7), "n": i, "text": "x".repeat(300)})
                    .as_object()
                    .unwrap()
                    .clone(),
                version: 1 + u64::from(i % 3),
                created_at: 1_700_000_000_000 + i64::from(i),
                updated_at: 1_700_000_000_500 + i64::from(i),
            })
        })
        .collect();
    sqlite.import_rows(&rows).unwrap();
    for i in 0..4u8 {
        let bytes = vec![i; 40_000];
        sqlite
            .blobs()
            .put(&mut Cursor::new(bytes), BlobPut::default())
            .unwrap();
    }
    sqlite.leases().acquire("conv:1", "run-a", 60_000).unwrap();
    let log = dir.join("src-log");
    let copy = LogStore::open(&log, Options::default()).unwrap();
    logstore::migrate(&sqlite, &copy, |_| {}, |_| {}).unwrap();
    let original = items(&sqlite);
    assert_eq!(items(&copy), original);
    copy.close().unwrap();
    sqlite.close().unwrap();
    (db, log, original)
}

/// The items at `to`, or `None` when no store is there.
fn target_items(to: &Path) -> Option<Vec<String>> {
    if to.extension().is_some_and(|e| e == "db") {
        if !to.exists() {
            return None;
        }
        let s = SqliteStore::open(to, to.with_file_name("blobs"), Options::default()).unwrap();
        let got = items(&s);
        s.close().unwrap();
        Some(got)
    } else {
        if !to.exists() {
            return None;
        }
        let s = LogStore::open_read_only(to, Options::default()).unwrap();
        Some(items(&s))
    }
}

fn migrate(from: &Path, to: &Path) -> std::process::Output {
    logstore(&["migrate", from.to_str().unwrap(), to.to_str().unwrap()])
}

#[test]
fn a_killed_migrate_leaves_no_target_or_a_whole_one_and_a_retry_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, log, original) = sources(tmp.path());
    // How long a whole copy takes here, so the kills spread over it.
    let started = Instant::now();
    let full = migrate(&db, &tmp.path().join("timing"));
    assert!(full.status.success(), "{}", text(&full.stderr));
    let span = started.elapsed().as_micros() as u64 + 1;

    let runs = env_u64("LOGSTORE_MIGRATE_KILL_RUNS", 20);
    let mut rng = Rng(env_u64("LOGSTORE_MIGRATE_KILL_SEED", 0x5eed_1234_abcd_0042) | 1);
    let (mut none, mut whole) = (0, 0);
    for run in 0..runs {
        let dir = tmp.path().join(format!("run{run}"));
        std::fs::create_dir(&dir).unwrap();
        let (from, to) = if run % 2 == 0 {
            (&db, dir.join("log"))
        } else {
            (&log, dir.join("store.db"))
        };
        let wait = rng.next() % (span + span / 5);
        let mut child = Command::new(env!("CARGO_BIN_EXE_logstore"))
            .args(["migrate", from.to_str().unwrap(), to.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(wait));
        let _ = child.kill();
        child.wait().unwrap();
        let context = format!(
            "run {run} ({} -> {}, killed after {wait} us)",
            from.display(),
            to.display()
        );
        match target_items(&to) {
            None => {
                none += 1;
                let retry = migrate(from, &to);
                // Killed between an SQLite store's two renames, the retry
                // finishes the move and says so instead of copying again.
                let finished = text(&retry.stderr).contains("the move is now finished");
                assert!(
                    retry.status.success() || finished,
                    "{context}: the retry failed: {}",
                    text(&retry.stderr)
                );
                assert_eq!(target_items(&to).as_ref(), Some(&original), "{context}");
            }
            Some(got) => {
                whole += 1;
                assert_eq!(got, original, "{context}: a target that is there is whole");
            }
        }
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".partial"))
            .collect();
        // Only a kill after the last rename, before the area's removal,
        // leaves one; it holds nothing but its marker.
        for name in left {
            let area = dir.join(&name);
            let entries: Vec<_> = std::fs::read_dir(&area)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert!(
                entries
                    .iter()
                    .all(|n| n == logstore::MARKER || n == "COMPLETE"),
                "{context}: {name} holds {entries:?}"
            );
        }
    }
    eprintln!("{runs} runs: {none} left no target (then retried), {whole} left a whole store");
}

/// A run killed between an SQLite store's two renames (the blob folder in
/// place, the complete database still in its area): the retry finishes
/// the move and says the store is in place, not that nothing was made.
#[test]
fn a_retry_after_a_kill_between_the_renames_says_the_store_is_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, log, original) = sources(tmp.path());
    let dir = tmp.path().join("to");
    std::fs::create_dir(&dir).unwrap();
    let db = dir.join("store.db");
    assert!(migrate(&log, &db).status.success());
    // The marker a run writes, read from a staging area while it exists.
    let probe = logstore::Staging::begin(
        logstore::Place::Log(tmp.path().join("probe")),
        Options::default(),
    )
    .unwrap();
    let marker = std::fs::read(tmp.path().join("probe.partial").join(logstore::MARKER)).unwrap();
    drop(probe);
    let db_area = dir.join("store.db.partial");
    let blob_area = dir.join("blobs.partial");
    for area in [&db_area, &blob_area] {
        std::fs::create_dir(area).unwrap();
        std::fs::write(area.join(logstore::MARKER), &marker).unwrap();
    }
    std::fs::rename(&db, db_area.join("store.db")).unwrap();
    std::fs::write(db_area.join("COMPLETE"), "complete\n").unwrap();

    let out = migrate(&log, &db);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("holds that store"), "{err}");
    assert!(!err.contains("nothing was made"), "{err}");
    assert!(!db_area.exists() && !blob_area.exists());
    assert_eq!(target_items(&db), Some(original));
}
