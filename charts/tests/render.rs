//! The command run on a fixture page in the form scripts/bench-docs.sh
//! writes: which files it writes, what text they hold, and that bad input
//! writes nothing.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

const FIXTURE: &str = include_str!("fixture/BENCHMARKS.md");
const MACHINE: &str =
    "Machine: 2 cores (Test CPU Model 9000), 24 GiB; run of 2026-11-30, commit abc1234";

fn run(page: &str, dir: &Path) -> Output {
    let input = dir.join("BENCHMARKS.md");
    fs::write(&input, page).unwrap();
    Command::new(env!("CARGO_BIN_EXE_logstore-charts"))
        .arg(&input)
        .arg(dir.join("charts"))
        .output()
        .unwrap()
}

/// The text of every `<text>` element of an SVG file, unescaped.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .map(|rest| {
            let body = &rest[rest.find('>').unwrap() + 1..rest.find("</text>").unwrap()];
            body.trim()
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&")
        })
        .collect()
}

/// (file, title, the axis text with the unit, legend entries)
const EXPECTED: &[(&str, &str, &str, &[&str])] = &[
    (
        "rust-peers-sync.svg",
        "Rust: logstore against native_db, redb and fjall, durable commits (Sync): operations per second",
        "operations per second (log scale)",
        &[
            "logstore, Sync (fdatasync per commit)",
            "native_db, redb Durability::Immediate (its only mode)",
            "redb, Durability::Immediate",
            "fjall, PersistMode::SyncData (fdatasync)",
        ],
    ),
    (
        "rust-peers-flush.svg",
        "Rust: logstore against redb and fjall, commits not synced (Flush): operations per second",
        "operations per second (log scale)",
        &["logstore, Flush (written to the OS)", "redb, Durability::None", "fjall, PersistMode::Buffer (written to the OS)"],
    ),
    (
        "node-peers-sync.svg",
        "Node.js: logstore against better-sqlite3 and lmdb-js, durable commits: operations per second",
        "operations per second (log scale)",
        &["logstore, durability \"sync\" (fdatasync per commit)", "better-sqlite3, WAL, synchronous=FULL", "lmdb-js, durable commits"],
    ),
    (
        "node-peers-flush.svg",
        "Node.js: logstore against better-sqlite3 and lmdb-js, commits not synced: operations per second",
        "operations per second (log scale)",
        &["logstore, durability \"flush\" (written to the OS)", "better-sqlite3, WAL, synchronous=NORMAL", "lmdb-js, noSync"],
    ),
    (
        "rust-sync.svg",
        "Rust: logstore's log engine against its SQLite driver, durable commits: operations per second",
        "operations per second (log scale)",
        &["log engine, Sync (fdatasync per commit, group commit)", "SQLite driver, WAL, synchronous=FULL"],
    ),
    (
        "scale-rates.svg",
        "logstore as the store grows: put, get and query rates, with SQLite's, operations per second",
        "operations per second (log scale)",
        &["put (new)", "get by id", "query, 1 filter, limit 20", "SQLite driver: put (new)", "SQLite driver: query"],
    ),
    (
        "scale-open.svg",
        "logstore as the store grows: time to open, from the snapshot and by replaying the log, milliseconds",
        "open time, ms (log scale)",
        &["open from the snapshot", "open by replaying the log"],
    ),
    (
        "scale-memory.svg",
        "logstore as the store grows: resident memory (MiB) and index bytes per document",
        "resident memory, MiB (log scale)",
        &["resident memory of the open store", "index per document", "beyond id and index strings"],
    ),
    (
        "scale-disk.svg",
        "logstore as the store grows: size on disk against the live data, MiB, and their ratio",
        "MiB (log scale)",
        &["live data", "on disk before compaction", "on disk after compaction"],
    ),
];

#[test]
fn every_chart_names_what_it_measures_its_unit_and_the_machine() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(FIXTURE, dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut written: Vec<String> = fs::read_dir(dir.path().join("charts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    written.sort();
    let mut expected: Vec<&str> = EXPECTED.iter().map(|e| e.0).collect();
    expected.sort_unstable();
    assert_eq!(written, expected);
    for &(file, title, unit, legend) in EXPECTED {
        let svg = fs::read_to_string(dir.path().join("charts").join(file)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{file}"
        );
        let texts = texts(&svg);
        for wanted in [title, unit, MACHINE].iter().chain(legend) {
            assert!(
                texts.iter().any(|t| t == wanted),
                "{file}: no text \"{wanted}\" among {texts:?}"
            );
        }
    }
}

#[test]
fn bar_charts_label_each_operation_and_each_absent_figure() {
    let dir = tempfile::tempdir().unwrap();
    assert!(run(FIXTURE, dir.path()).status.success());
    let texts = texts(&fs::read_to_string(dir.path().join("charts/node-peers-sync.svg")).unwrap());
    for operation in [
        "put (new)",
        "get by id",
        "upsert",
        "open (opens per second)",
    ] {
        assert!(texts.iter().any(|t| t == operation), "no label {operation}");
    }
    // lmdb-js runs neither upsert nor open: two cells of n/a.
    assert_eq!(texts.iter().filter(|t| *t == "n/a").count(), 2);
    // 453837 ops/s, lmdb-js's get, at the end of its bar.
    assert!(texts.iter().any(|t| t == "454k"), "{texts:?}");
}

#[test]
fn a_malformed_block_fails_naming_it_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("charts")).unwrap();
    fs::write(dir.path().join("charts/rust-sync.svg"), "earlier").unwrap();
    let page = FIXTURE.replace(
        "| put (new) | 200287 | 36682 |",
        "| put (new) | 200287 | lots |",
    );
    let out = run(&page, dir.path());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("block rust-peers, column \"redb ops/s\", row \"put (new)\": cell \"lots\" is not a number"),
        "{stderr}"
    );
    let left: Vec<_> = fs::read_dir(dir.path().join("charts")).unwrap().collect();
    assert_eq!(left.len(), 1);
    assert_eq!(
        fs::read_to_string(dir.path().join("charts/rust-sync.svg")).unwrap(),
        "earlier"
    );
}

#[test]
fn an_absent_block_leaves_its_charts_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("charts")).unwrap();
    fs::write(dir.path().join("charts/scale-rates.svg"), "earlier").unwrap();
    let start = FIXTURE.find("<!-- bench:scale -->").unwrap();
    let out = run(&FIXTURE[..start], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no block scale"));
    assert_eq!(
        fs::read_to_string(dir.path().join("charts/scale-rates.svg")).unwrap(),
        "earlier"
    );
    assert!(dir.path().join("charts/rust-sync.svg").exists());
    assert!(!dir.path().join("charts/scale-open.svg").exists());
}

#[test]
fn an_empty_block_leaves_its_charts_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let start = FIXTURE.find("<!-- bench:scale -->").unwrap();
    let end = FIXTURE.find("<!-- /bench:scale -->").unwrap();
    // The markers of a block no run has filled yet.
    let page = format!(
        "{}<!-- bench:scale -->\n\n{}",
        &FIXTURE[..start],
        &FIXTURE[end..]
    );
    let out = run(&page, dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("no block scale in"), "{stderr}");
    assert!(stderr.contains("or an empty one"), "{stderr}");
    assert!(dir.path().join("charts/rust-sync.svg").exists());
    assert!(!dir.path().join("charts/scale-rates.svg").exists());
}

#[test]
fn a_link_in_place_of_a_temporary_file_is_not_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    fs::write(&victim, "mine").unwrap();
    fs::create_dir(dir.path().join("charts")).unwrap();
    let link = dir.path().join("charts/rust-sync.svg.tmp");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let out = run(FIXTURE, dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read_to_string(&victim).unwrap(), "mine");
    assert!(fs::symlink_metadata(&link).is_err(), "the link is gone");
    let chart = fs::symlink_metadata(dir.path().join("charts/rust-sync.svg")).unwrap();
    assert!(chart.file_type().is_file());
}

#[test]
fn a_wrong_command_line_is_an_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_logstore-charts"))
        .arg("only-one")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("usage: logstore-charts BENCHMARKS.md OUTPUT_DIR"));
}
