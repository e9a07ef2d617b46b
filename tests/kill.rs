//! The kill harness: a child process writes documents, blobs and leases in
//! a loop and reports each acknowledgement on a pipe; the parent SIGKILLs
//! it at a random moment, reopens the store and checks every acknowledged
//! write and its index entries, then runs the integrity check. Runs
//! alternate between Sync and Flush durability (a SIGKILL is a process
//! crash, which Flush survives too).
//!
//! 100 kills by default; `LOGSTORE_KILL_RUNS=1000` for a longer run.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use logstore::{Acquire, Durability, LogStore, Options, Query, Store};
use logstore_workload::Rng;
use serde_json::json;

const DIR_VAR: &str = "LOGSTORE_KILL_DIR";
const RUN_VAR: &str = "LOGSTORE_KILL_RUN";

fn opts(run: u64) -> Options {
    Options {
        durability: if run.is_multiple_of(2) {
            Durability::Sync
        } else {
            Durability::Flush
        },
        segment_bytes: 64 * 1024,
        compaction_min_bytes: 256 * 1024,
        ..Options::default()
    }
}

/// The child's body: write until killed, one acknowledgement per line.
#[test]
#[ignore = "the child process of sigkill_at_random_moments_loses_nothing_acknowledged, which runs it with --ignored"]
fn kill_child_entry() {
    let (Some(dir), Some(run)) = (std::env::var_os(DIR_VAR), std::env::var(RUN_VAR).ok()) else {
        return;
    };
    let run: u64 = run.parse().unwrap();
    let store = LogStore::open(PathBuf::from(dir), opts(run)).unwrap();
    store
        .docs()
        .ensure_collection("docs", &["run", "parity"])
        .unwrap();
    let mut out = std::io::stdout().lock();
    use std::io::Write as _;
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    let mut rng = Rng::new(run);
    for n in 0u64.. {
        match rng.below(10) {
            0..=5 => {
                let id = format!("r{run}-{n}");
                let body = json!({"run": run.to_string(), "parity": (n % 2).to_string(), "pad": "p".repeat(rng.below(400) as usize)});
                store.docs().put("docs", &id, body, None).unwrap();
                writeln!(out, "doc {id}").unwrap();
            }
            6 => {
                let row = store
                    .docs()
                    .put("docs", "counter", json!({"n": n}), None)
                    .unwrap()
                    .unwrap();
                writeln!(out, "counter {}", row.version).unwrap();
            }
            7 => {
                let bytes = format!("run {run} blob {n} ").repeat(1 + rng.below(50) as usize);
                let meta = common::blobs::put(&store, bytes.as_bytes());
                writeln!(out, "blob {} {}", meta.id, blake3::hash(bytes.as_bytes())).unwrap();
            }
            _ => {
                let key = format!("lease-{}", rng.below(4));
                if let Acquire::Acquired(row) = store
                    .leases()
                    .acquire(&key, &format!("run-{run}"), 3_600_000)
                    .unwrap()
                {
                    writeln!(out, "lease {key} {} {}", row.owner, row.version).unwrap();
                }
            }
        }
        out.flush().unwrap();
    }
}

#[derive(Default)]
struct Acked {
    docs: Vec<(u64, String)>,
    counter: u64,
    blobs: Vec<(String, String)>,
    /// Per key: the highest acknowledged version and its owner.
    leases: HashMap<String, (u64, String)>,
}

fn check(dir: &Path, acked: &Acked, run: u64) {
    let store = LogStore::open(dir, opts(run)).unwrap();
    let d = store.docs();
    for (_, id) in &acked.docs {
        assert!(
            d.get("docs", id).unwrap().is_some(),
            "run {run}: acknowledged {id} is lost"
        );
    }
    let mut per_run: HashMap<u64, u64> = HashMap::new();
    for (r, _) in &acked.docs {
        *per_run.entry(*r).or_default() += 1;
    }
    for (r, n) in per_run {
        let indexed = d
            .count(&Query::new("docs").filter("run", r.to_string()))
            .unwrap();
        assert!(
            indexed >= n,
            "run {run}: the index holds {indexed} of run {r}'s {n} acknowledged documents"
        );
    }
    if acked.counter > 0 {
        let version = d.get("docs", "counter").unwrap().map_or(0, |c| c.version);
        assert!(
            version >= acked.counter,
            "run {run}: counter at {version}, {} acknowledged",
            acked.counter
        );
    }
    for (id, hash) in &acked.blobs {
        let (_, mut reader) = store
            .blobs()
            .get(id)
            .unwrap()
            .unwrap_or_else(|| panic!("run {run}: blob {id} lost"));
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).unwrap();
        assert_eq!(
            &blake3::hash(&bytes).to_string(),
            hash,
            "run {run}: blob {id}"
        );
    }
    for (key, (version, owner)) in &acked.leases {
        let row = store
            .leases()
            .get(key)
            .unwrap()
            .unwrap_or_else(|| panic!("run {run}: lease {key} lost"));
        assert!(
            row.version >= *version,
            "run {run}: lease {key} at version {}",
            row.version
        );
        if row.version == *version {
            assert_eq!(&row.owner, owner);
        }
    }
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "run {run}: {:?}", report.problems);
}

#[test]
fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    let runs = common::env_number("LOGSTORE_KILL_RUNS").unwrap_or(100);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let mut acked = Acked::default();
    let mut rng = Rng::new(7);
    for run in 0..runs {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "kill_child_entry",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR_VAR, &dir)
            .env(RUN_VAR, run.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(20 + rng.below(80)));
        child.kill().unwrap();
        child.wait().unwrap();
        for line in reader.join().unwrap() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                ["doc", id] => acked.docs.push((run, id.to_string())),
                ["counter", v] => acked.counter = acked.counter.max(v.parse().unwrap()),
                ["blob", id, hash] => acked.blobs.push((id.to_string(), hash.to_string())),
                ["lease", key, owner, v] => {
                    let v: u64 = v.parse().unwrap();
                    let entry = acked.leases.entry(key.to_string()).or_default();
                    if v >= entry.0 {
                        *entry = (v, owner.to_string());
                    }
                }
                _ => {}
            }
        }
        check(&dir, &acked, run);
    }
    assert!(
        acked.docs.len() as u64 > runs,
        "the children wrote: {} documents",
        acked.docs.len()
    );
}
