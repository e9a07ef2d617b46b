//! `logstore bench` on a tiny run: where its stores go (`--dir`) and on
//! what file system, its legend, `--threads`, and progress lines when
//! stderr is not a terminal. Only the printed text is checked, never a
//! figure.

mod common;

use std::path::Path;

use common::{logstore, text};

/// A run of a few documents and a hundredth of a second per operation.
fn tiny(dir: &Path, more: &[&str]) -> (String, String) {
    let mut args = vec![
        "bench",
        "--docs",
        "20",
        "--seconds",
        "0.01",
        "--dir",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(more);
    let out = logstore(&args);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    (text(&out.stdout), text(&out.stderr))
}

/// The mount point of a tmpfs this test may write in, if there is one.
fn a_tmpfs() -> Option<&'static Path> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    let shm = mounts
        .lines()
        .any(|l| l.split(' ').nth(1) == Some("/dev/shm") && l.split(' ').nth(2) == Some("tmpfs"));
    let dir = Path::new("/dev/shm");
    let writable = tempfile::tempdir_in(dir).is_ok();
    (shm && writable).then_some(dir)
}

#[test]
fn bench_says_where_its_stores_are_and_runs_the_threads_asked_for() {
    let tmp = tempfile::tempdir().unwrap();
    let (stdout, stderr) = tiny(tmp.path(), &["--threads", "2", "--durability", "flush"]);
    let lines: Vec<&str> = stdout.lines().collect();
    let prefix = format!(
        "stores in {}/logstore-bench-",
        tmp.path().canonicalize().unwrap().display()
    );
    let plain = format!("stores in {}/logstore-bench-", tmp.path().display());
    assert!(
        lines[1].starts_with(&prefix) || lines[1].starts_with(&plain),
        "{stdout}"
    );
    assert!(lines[1].contains(" (file system: "), "{stdout}");
    assert!(
        lines[2].starts_with("log / SQLite is the log engine's rate over SQLite's"),
        "{stdout}"
    );
    assert!(lines[2].contains("one run on this machine"), "{stdout}");
    assert!(lines[2].contains("noisy"), "{stdout}");
    assert!(stdout.contains("| put (new), 1 thread |"), "{stdout}");
    assert!(stdout.contains("| put (new), 2 threads |"), "{stdout}");
    assert!(!stdout.contains("4 threads"), "{stdout}");
    assert!(
        !stdout.contains("warning"),
        "Flush warns of nothing: {stdout}"
    );

    assert!(stderr.starts_with("logstore bench: stores in "), "{stderr}");
    let steps: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("bench: step "))
        .collect();
    assert_eq!(
        steps
            .first()
            .map(|l| l.ends_with(": loading documents into the log engine")),
        Some(true),
        "{stderr}"
    );
    // 2 loads, 11 operations, raw reads, 4 blob sizes, 2 thread counts,
    // the reopen and 2 reader steps.
    assert_eq!(steps.len(), 23, "{stderr}");
    assert!(
        steps[22].starts_with("bench: step 23 of 23, at "),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "the run's folder is removed"
    );

    let (json, _) = tiny(
        tmp.path(),
        &["--threads", "1", "--durability", "flush", "--json"],
    );
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(report["store_dir"]
        .as_str()
        .unwrap()
        .contains("/logstore-bench-"));
    assert!(report["file_system"]["name"].is_string());
    let threads: Vec<&str> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["operation"].as_str())
        .filter(|op| op.starts_with("put (new), "))
        .collect();
    assert_eq!(threads, ["put (new), 1 thread"]);
}

#[test]
fn bench_warns_that_sync_figures_on_tmpfs_mean_nothing() {
    let Some(shm) = a_tmpfs() else {
        eprintln!("no writable tmpfs at /dev/shm: skipped");
        return;
    };
    let tmp = tempfile::tempdir_in(shm).unwrap();
    let (stdout, stderr) = tiny(tmp.path(), &["--threads", "1"]);
    let warning = "is on tmpfs, in memory: fdatasync reaches no disk there, so the Sync figures are meaningless";
    assert!(stdout.contains("(file system: tmpfs)"), "{stdout}");
    assert!(stdout.contains(warning), "{stdout}");
    assert!(stderr.contains(warning), "{stderr}");
}

#[test]
fn bench_refuses_a_dir_that_is_not_one() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    let out = logstore(&["bench", "--docs", "20", "--dir", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(&format!("--dir {}", missing.display())),
        "{}",
        text(&out.stderr)
    );
    assert!(!missing.exists());
    let file = tmp.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let out = logstore(&["bench", "--docs", "20", "--dir", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("is not a directory"));
}

#[test]
fn scale_runs_each_count_and_prints_its_block_and_goals() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let out = logstore(&[
        "bench",
        "--scale=200,400",
        "--seconds",
        "0.01",
        "--dir",
        dir,
        "--markdown",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.starts_with("<!-- bench:scale -->\n"), "{stdout}");
    assert!(stdout.ends_with("<!-- /bench:scale -->\n"), "{stdout}");
    for n in ["200", "400"] {
        let rows = stdout
            .lines()
            .filter(|l| l.starts_with(&format!("| {n} |")));
        // One row in the rates table and one in the memory table.
        assert_eq!(rows.count(), 2, "{n}: {stdout}");
        assert!(
            stderr.contains(&format!("{n} documents: open by replay")),
            "{stderr}"
        );
    }
    assert!(
        stdout.contains("| at 400 documents | goal | measured | result |"),
        "{stdout}"
    );
    // Each open ran in the probe process and found the store it built.
    assert!(!stdout.contains("| 400 | n/a | n/a | n/a |"), "{stdout}");
    // The run's folder is gone with it.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn the_open_probe_refuses_a_directory_that_is_not_a_store_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
    for dir in [tmp.path().to_path_buf(), tmp.path().join("missing")] {
        let out = logstore(&["bench-open", dir.to_str().unwrap()]);
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("is not a logstore directory"),
            "{}",
            text(&out.stderr)
        );
    }
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("notes.txt")]);
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<std::ffi::OsString> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    names
}

#[test]
fn the_open_probe_opens_no_store_but_one_a_scale_run_made() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("mine");
    let made = logstore(&["put", store.to_str().unwrap(), "c", "a", r#"{"x":1}"#]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    // Without its snapshot, a writer's open and close would write one.
    std::fs::remove_file(store.join("SNAPSHOT")).unwrap();
    let before = names(&store);
    // The store itself, and a link with a scale run's names to it.
    let run = tmp.path().join("logstore-bench-x");
    std::fs::create_dir(&run).unwrap();
    std::os::unix::fs::symlink(&store, run.join("log-1")).unwrap();
    for dir in [store.clone(), run.join("log-1")] {
        let out = logstore(&["bench-open", dir.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
        assert!(
            text(&out.stderr).contains("is not a store `logstore bench --scale` made"),
            "{}",
            text(&out.stderr)
        );
        assert_eq!(names(&store), before, "{dir:?}");
    }
}

#[test]
fn scale_runs_each_count_once_smallest_first() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let out = logstore(&[
        "bench",
        "--scale=400,200,200",
        "--seconds",
        "0.01",
        "--dir",
        dir,
        "--markdown",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let counts: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("| ")?.split(' ').next())
        .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    // Rates, then memory and disk: each count once, smallest first.
    assert_eq!(counts, ["200", "400", "200", "400"], "{stdout}");
    assert!(stdout.contains("get and query run 0.01 s each"), "{stdout}");
    assert!(
        stdout.contains("| put rate against the rate at the smallest count | within 1.5x of 200 |"),
        "{stdout}"
    );
}

#[test]
fn scale_refuses_a_count_too_large_to_hold_before_making_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let out = logstore(&[
        "bench",
        "--scale=200,18446744073709551615",
        "--dir",
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(
            "--scale 18446744073709551615: too many documents to hold each one's size in memory"
        ),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !text(&out.stderr).contains("200 documents"),
        "refused before the first count ran: {}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}
