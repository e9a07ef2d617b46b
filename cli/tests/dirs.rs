//! Which directories each command takes: every command that needs a store
//! refuses a path that holds none (missing, empty, other files, a file)
//! and changes nothing there; only `put`, `ensure`, `load` and a `migrate`
//! target make a store, only in a missing or empty directory, and say so.

mod common;

use std::path::Path;

use common::{logstore, logstore_with_input, text, tree};

/// Every command that needs an existing store, on `store`; whatever else
/// a command names (a copy's target) is under `aside`.
fn needing_a_store(store: &str, aside: &Path) -> Vec<Vec<String>> {
    let to = |name: &str| aside.join(name).to_str().unwrap().to_string();
    owned(vec![
        vec!["stats", store],
        vec!["stats", store, "--json"],
        vec!["verify", store],
        vec!["dump", store],
        vec!["get", store, "msgs", "m1"],
        vec!["query", store, "msgs"],
        vec!["count", store, "msgs"],
        vec!["collections", store],
        vec!["blobs", store],
        vec!["leases", store],
        vec!["delete", store, "msgs", "m1"],
        vec!["compact", store],
        vec!["repair", store],
        vec!["repair", store, "--out", &to("repaired")],
        vec!["repair", store, "--in-place"],
        vec!["migrate", store, &to("migrated")],
        vec!["backup", store, &to("backup")],
    ])
}

/// Command lines as owned strings.
fn owned(lines: Vec<Vec<&str>>) -> Vec<Vec<String>> {
    lines
        .into_iter()
        .map(|args| args.into_iter().map(String::from).collect())
        .collect()
}

/// Runs `args`, which must be refused with `message` on stderr.
fn refused(args: &[String], message: &str) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = logstore(&args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?}: {}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains(message),
        "{args:?}: {}",
        text(&out.stderr)
    );
}

/// The commands that make a store, each of which must refuse `dir`.
fn making_a_store(dir: &str, source: &str) -> Vec<Vec<String>> {
    owned(vec![
        vec!["put", dir, "msgs", "m1", "{}"],
        vec!["ensure", dir, "msgs", "owner"],
        vec!["load", dir],
        vec!["migrate", source, dir],
    ])
}

#[test]
fn a_directory_of_other_files_is_refused_by_every_command_and_left_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    std::fs::create_dir_all(plain.join("sub")).unwrap();
    std::fs::write(plain.join("notes.txt"), "some notes\n").unwrap();
    std::fs::write(plain.join("sub").join("data.bin"), [0u8, 1, 2, 3]).unwrap();
    // Names the engine uses for blobs, in a folder that holds no store.
    let blobby = tmp.path().join("blobby");
    let hash = format!("ab{}", "0".repeat(62));
    std::fs::create_dir_all(blobby.join("blobs").join("ab")).unwrap();
    std::fs::create_dir_all(blobby.join("blobs").join("tmp")).unwrap();
    std::fs::write(blobby.join("blobs").join("ab").join(&hash), "bytes").unwrap();
    std::fs::write(blobby.join("blobs").join("tmp").join("x.tmp"), "staged").unwrap();
    // A real store, as the source of a migrate into the plain folders.
    let source = tmp.path().join("source");
    let made = logstore(&["put", source.to_str().unwrap(), "msgs", "m1", "{}"]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let before = tree(tmp.path());

    let stats = logstore(&["stats", plain.to_str().unwrap()]);
    assert_eq!(stats.status.code(), Some(1));
    assert!(
        text(&stats.stderr).contains(&format!("{} is not a logstore directory", plain.display())),
        "{}",
        text(&stats.stderr)
    );
    assert_eq!(tree(tmp.path()), before);

    for dir in [&plain, &blobby] {
        let d = dir.to_str().unwrap();
        for args in needing_a_store(d, tmp.path()) {
            refused(&args, "is not a logstore directory");
        }
        for args in making_a_store(d, source.to_str().unwrap()) {
            refused(&args, "is not a logstore directory");
        }
    }
    assert_eq!(tree(tmp.path()), before, "nothing made, changed or removed");
}

#[test]
fn an_empty_or_missing_directory_is_refused_and_nothing_is_made() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let missing = tmp.path().join("missing");
    let before = tree(tmp.path());
    for dir in [&empty, &missing] {
        for args in needing_a_store(dir.to_str().unwrap(), tmp.path()) {
            refused(&args, "is not a logstore directory");
            assert_eq!(tree(tmp.path()), before, "{args:?}");
        }
    }
}

#[test]
fn a_file_is_named_as_one_and_a_missing_db_is_not_made() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("notes");
    std::fs::write(&file, "not a store\n").unwrap();
    let f = file.to_str().unwrap();
    let db = tmp.path().join("store.db");
    let before = tree(tmp.path());
    for args in needing_a_store(f, tmp.path()) {
        refused(&args, "is a file, not a logstore directory");
    }
    refused(
        &making_a_store(f, f)[0],
        "is a file, not a logstore directory",
    );
    let db = db.to_str().unwrap();
    for args in [["stats", db], ["dump", db]] {
        refused(&args.map(String::from), "no SQLite store at");
    }
    refused(
        &["count", db, "msgs"].map(String::from),
        "no SQLite store at",
    );
    assert_eq!(tree(tmp.path()), before, "no .db file and no blobs/ made");
}

#[test]
fn put_load_and_migrate_make_a_store_only_where_there_is_none_and_say_so() {
    let tmp = tempfile::tempdir().unwrap();
    let new = tmp.path().join("new");
    let n = new.to_str().unwrap();
    let first = logstore(&["put", n, "msgs", "m1", r#"{"a":1}"#]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stderr).contains(&format!("created a new store in {n}")),
        "{}",
        text(&first.stderr)
    );
    let second = logstore(&["put", n, "msgs", "m2", r#"{"a":2}"#]);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert_eq!(text(&second.stderr), "", "no message for an existing store");
    assert_eq!(text(&logstore(&["count", n, "msgs"]).stdout), "2\n");

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let put = logstore(&["put", empty.to_str().unwrap(), "msgs", "m1", "{}"]);
    assert!(put.status.success(), "{}", text(&put.stderr));
    assert!(text(&put.stderr).contains("created a new store in"));

    let dump = logstore(&["dump", n]);
    assert!(dump.status.success(), "{}", text(&dump.stderr));
    let loaded_into = tmp.path().join("loaded");
    let load = logstore_with_input(&["load", loaded_into.to_str().unwrap()], &dump.stdout);
    assert!(load.status.success(), "{}", text(&load.stderr));
    assert!(text(&load.stderr).contains("created a new store in"));

    let migrated = tmp.path().join("migrated");
    std::fs::create_dir(&migrated).unwrap();
    let migrate = logstore(&["migrate", n, migrated.to_str().unwrap()]);
    assert!(migrate.status.success(), "{}", text(&migrate.stderr));
    assert!(text(&migrate.stderr).contains("created a new store in"));
    for copy in [&loaded_into, &migrated] {
        let got = logstore(&["get", copy.to_str().unwrap(), "msgs", "m2"]);
        assert!(text(&got.stdout).contains(r#""a":2"#), "{}", copy.display());
    }

    let plain = tmp.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    std::fs::write(plain.join("keep.txt"), "mine").unwrap();
    let before = tree(&plain);
    refused(
        &making_a_store(plain.to_str().unwrap(), n)[0],
        "is not a logstore directory",
    );
    assert_eq!(tree(&plain), before);
}

/// An SQLite database that is not a store (another program's) is refused
/// by every command, reading or writing, and left byte for byte as it was:
/// opening it as a store would add the store's tables and switch it to
/// WAL. A `.db` file with no tables is refused by the commands that read.
#[test]
fn another_programs_sqlite_database_is_refused_and_left_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app.db");
    let conn = rusqlite::Connection::open(&app).unwrap();
    conn.execute_batch("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('alice');")
        .unwrap();
    drop(conn);
    let empty = tmp.path().join("empty.db");
    std::fs::write(&empty, "").unwrap();
    let source = tmp.path().join("source");
    let made = logstore(&["put", source.to_str().unwrap(), "msgs", "m1", "{}"]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let before = tree(tmp.path());

    let db = app.to_str().unwrap();
    let reads = owned(vec![
        vec!["stats", db],
        vec!["dump", db],
        vec!["get", db, "msgs", "m1"],
        vec!["query", db, "msgs"],
        vec!["count", db, "msgs"],
        vec!["delete", db, "msgs", "m1"],
    ]);
    for args in reads
        .iter()
        .chain(&making_a_store(db, source.to_str().unwrap()))
    {
        refused(args, "is an SQLite database but not a store");
    }
    let db = empty.to_str().unwrap();
    for args in owned(vec![
        vec!["stats", db],
        vec!["dump", db],
        vec!["count", db, "msgs"],
    ]) {
        refused(&args, "holds no store");
    }
    assert_eq!(tree(tmp.path()), before, "nothing made, changed or removed");
}

/// `migrate` and `load` build beside the target: a `.partial` directory
/// that logstore did not make (it has no marker) is refused and left as it
/// is; one an interrupted run left is removed, saying so, and the copy
/// made.
#[test]
fn a_staging_area_is_removed_only_when_logstore_made_it() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    let s = source.to_str().unwrap();
    let made = logstore(&["put", s, "msgs", "m1", r#"{"a":1}"#]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let target = tmp.path().join("copy");
    let t = target.to_str().unwrap();
    let area = tmp.path().join("copy.partial");
    std::fs::create_dir(&area).unwrap();
    std::fs::write(area.join("notes.txt"), "mine").unwrap();
    let before = tree(tmp.path());
    let dump = logstore(&["dump", s]);
    for args in [vec!["migrate", s, t], vec!["load", t]] {
        let out = logstore_with_input(&args, &dump.stdout);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("copy.partial exists, and logstore did not make it")
                && err.contains("move it away or remove it"),
            "{err}"
        );
        assert_eq!(tree(tmp.path()), before, "{args:?}");
    }

    // The start of a marker and nothing else, as a run killed while
    // writing it leaves the area.
    std::fs::remove_file(area.join("notes.txt")).unwrap();
    std::fs::write(area.join(logstore::MARKER), "logstore staging area\n").unwrap();
    let out = logstore(&["migrate", s, t]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("removed")
            && text(&out.stderr).contains("left by an interrupted run"),
        "{}",
        text(&out.stderr)
    );
    assert!(!area.exists());
    assert!(text(&logstore(&["get", t, "msgs", "m1"]).stdout).contains(r#""a":1"#));
}

#[test]
fn a_target_inside_the_source_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    let s = source.to_str().unwrap();
    let made = logstore(&["put", s, "msgs", "m1", "{}"]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let sqlite = tmp.path().join("old").join("store.db");
    let db = sqlite.to_str().unwrap();
    std::fs::create_dir_all(sqlite.parent().unwrap()).unwrap();
    common::ok(&["migrate", s, db]);
    let before = tree(tmp.path());
    let inside = source.join("copy");
    let in_blobs = tmp.path().join("old").join("blobs").join("copy");
    // A new database beside the old one would share its blob folder.
    let beside = tmp.path().join("old").join("new.db");
    for (from, to) in [(s, &inside), (db, &in_blobs), (db, &beside)] {
        let out = logstore(&["migrate", from, to.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{from} -> {}", to.display());
        assert!(
            text(&out.stderr).contains("inside the source"),
            "{}",
            text(&out.stderr)
        );
        assert_eq!(tree(tmp.path()), before);
    }
}

/// A `load` that fails part way (a line the store refuses) leaves nothing
/// at the target and no staging area, and names the lines of the chunk.
#[test]
fn a_failed_load_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let mut input = String::new();
    for i in 0..5 {
        input += &format!(
            r#"{{"type":"document","id":"m{i}","collection":"msgs","data":{{"n":{i}}},"version":1,"created_at":1,"updated_at":1}}"#
        );
        input += "\n";
    }
    input += r#"{"type":"document","id":"","collection":"msgs","data":{},"version":1,"created_at":1,"updated_at":1}"#;
    input += "\n";
    for target in [tmp.path().join("log"), tmp.path().join("store.db")] {
        let t = target.to_str().unwrap();
        let out = logstore_with_input(&["load", t], input.as_bytes());
        assert_eq!(out.status.code(), Some(1), "{t}");
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!("nothing was made at {t}")) && err.contains("lines 1 to 6"),
            "{err}"
        );
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert!(left.is_empty(), "{t}: {left:?}");
    }
}
