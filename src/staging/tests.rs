//! Staging areas: recognition, removal of leftovers, refusals.

use super::*;

/// A run building a log store for `target`, one document in so far.
fn building(target: &Path) -> Staging {
    let run = Staging::begin(Place::Log(target.to_path_buf()), Options::default()).expect("first");
    run.store()
        .expect("store")
        .docs()
        .put("c", "1", serde_json::json!({"a": 1}), None)
        .expect("put");
    run
}

#[test]
fn a_staging_area_without_the_marker_is_refused_and_left_as_it_was() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let target = tmp.path().join("log");
    let area = tmp.path().join("log.partial");
    fs::create_dir(&area).expect("mkdir");
    fs::write(area.join("notes.txt"), "mine").expect("write");
    let err =
        Staging::begin(Place::Log(target.clone()), Options::default()).expect_err("a foreign area");
    assert!(
        matches!(&err, Error::InvalidInput(m) if m.contains("logstore did not make it")
            && m.contains("no LOGSTORE-STAGING marker")),
        "{err}"
    );
    assert_eq!(fs::read(area.join("notes.txt")).expect("kept"), b"mine");
    assert!(!target.exists());

    // A marker file that is not logstore's is not taken as one.
    fs::write(area.join(MARKER), "someone else's file").expect("write");
    let err = Staging::begin(Place::Log(target.clone()), Options::default())
        .expect_err("a foreign marker");
    assert!(err.to_string().contains("not logstore's marker"), "{err}");
    assert!(area.join("notes.txt").exists());
}

#[test]
fn an_area_left_by_an_interrupted_run_is_removed_and_the_store_built() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let target = tmp.path().join("log");
    let first = building(&target);
    // As a killed process leaves it: the area stays, its lock released.
    let mut first = first;
    first.locks.clear();
    std::mem::forget(first);
    let area = tmp.path().join("log.partial");
    assert!(area.join(MARKER).is_file());
    assert!(!target.exists());

    let second = Staging::begin(Place::Log(target.clone()), Options::default()).expect("second");
    assert_eq!(second.leftovers(), &[Leftover::Removed(area.clone())]);
    second
        .store()
        .expect("store")
        .docs()
        .put("c", "2", serde_json::json!({"a": 2}), None)
        .expect("put");
    second.finish().expect("finish");
    assert!(!area.exists());
    let store = LogStore::open(&target, Options::default()).expect("open");
    assert!(store.docs().get("c", "1").expect("get").is_none());
    assert!(store.docs().get("c", "2").expect("get").is_some());
}

#[test]
fn a_failed_build_leaves_the_target_as_it_was() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let target = tmp.path().join("empty");
    fs::create_dir(&target).expect("mkdir");
    let staging = Staging::begin(Place::Log(target.clone()), Options::default()).expect("begin");
    drop(staging);
    assert!(!tmp.path().join("empty.partial").exists());
    assert_eq!(fs::read_dir(&target).expect("list").count(), 0);
}

#[test]
fn a_target_inside_the_source_is_refused() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let src = tmp.path().join("src");
    fs::create_dir(&src).expect("mkdir");
    let source = Place::Log(src.clone());
    let inside = Place::Log(src.join("sub").join("copy"));
    let err = refuse_inside(&inside, &source).expect_err("inside");
    assert!(err.to_string().contains("inside the source"), "{err}");
    let dotted = Place::Log(tmp.path().join("other").join("..").join("src").join("x"));
    assert!(refuse_inside(&dotted, &source).is_err());
    refuse_inside(&Place::Log(tmp.path().join("beside")), &source).expect("beside");
}

#[test]
fn a_second_run_for_the_same_target_refuses_while_the_first_builds() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let target = tmp.path().join("log");
    let first = building(&target);
    let err = Staging::begin(Place::Log(target.clone()), Options::default())
        .expect_err("the first run's area is in use");
    assert!(
        matches!(&err, Error::InvalidInput(m) if m.contains("another run")),
        "{err}"
    );
    assert!(tmp.path().join("log.partial").join(MARKER).is_file());
    first.finish().expect("the first run finishes");
    let store = LogStore::open(&target, Options::default()).expect("open");
    assert!(store.docs().get("c", "1").expect("get").is_some());
}

#[test]
fn a_source_inside_the_targets_staging_area_is_refused() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let target = Place::Log(tmp.path().join("t"));
    let leftover = Place::Log(tmp.path().join("t.partial").join("t"));
    let err = refuse_inside(&target, &leftover).expect_err("the source would be removed");
    assert!(err.to_string().contains("staging area"), "{err}");
}

#[test]
fn a_target_spelled_with_a_trailing_dot_is_built_and_moved_into_place() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let staging = Staging::begin(
        Place::Log(tmp.path().join("t").join(".")),
        Options::default(),
    )
    .expect("begin");
    staging
        .store()
        .expect("store")
        .docs()
        .put("c", "1", serde_json::json!({"a": 1}), None)
        .expect("put");
    staging.finish().expect("finish");
    assert!(!tmp.path().join("t.partial").exists());
    let store = LogStore::open(tmp.path().join("t"), Options::default()).expect("open");
    assert!(store.docs().get("c", "1").expect("get").is_some());
}

#[cfg(feature = "sqlite")]
#[test]
fn a_store_made_at_the_target_during_the_build_is_not_replaced() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let db = tmp.path().join("s.db");
    let blobs = tmp.path().join("blobs");
    let place = Place::Sqlite {
        db: db.clone(),
        blobs: blobs.clone(),
    };
    let staging = Staging::begin(place, Options::default()).expect("begin");
    // Someone makes a store at the target while the copy runs.
    let theirs = crate::SqliteStore::open(&db, tmp.path().join("their-blobs"), Options::default())
        .expect("open theirs");
    theirs
        .docs()
        .put("mine", "1", serde_json::json!({"precious": true}), None)
        .expect("put");
    theirs.close().expect("close");
    drop(theirs);
    let err = staging.finish().expect_err("the target is no longer new");
    assert!(err.to_string().contains("not empty"), "{err}");
    let theirs = crate::SqliteStore::open(&db, tmp.path().join("their-blobs"), Options::default())
        .expect("reopen theirs");
    assert!(theirs.docs().get("mine", "1").expect("get").is_some());
    assert!(!tmp.path().join("s.db.partial").exists());
    assert!(!tmp.path().join("blobs.partial").exists());
}

#[test]
fn a_marker_among_files_logstore_does_not_make_is_not_taken_for_a_leftover() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let target = tmp.path().join("log");
    let area = tmp.path().join("log.partial");
    fs::create_dir(&area).expect("mkdir");
    fs::write(area.join(MARKER), area::MARKER_TEXT).expect("a copied marker");
    fs::write(area.join("thesis.tex"), "mine").expect("write");
    let err = Staging::begin(Place::Log(target.clone()), Options::default())
        .expect_err("a user's directory holding a marker");
    assert!(
        matches!(&err, Error::InvalidInput(m) if m.contains("thesis.tex")),
        "{err}"
    );
    assert_eq!(fs::read(area.join("thesis.tex")).expect("kept"), b"mine");
    assert!(!target.exists());
}

#[cfg(feature = "sqlite")]
#[test]
fn a_link_in_a_complete_area_is_not_moved_into_place() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let db = tmp.path().join("s.db");
    let blobs = tmp.path().join("blobs");
    let theirs = tmp.path().join("theirs.db");
    fs::write(&theirs, "someone's file").expect("write");
    for area in ["s.db.partial", "blobs.partial"] {
        let area = tmp.path().join(area);
        fs::create_dir(&area).expect("mkdir");
        fs::write(area.join(MARKER), area::MARKER_TEXT).expect("marker");
    }
    let db_area = tmp.path().join("s.db.partial");
    fs::write(db_area.join(COMPLETE), "complete\n").expect("complete");
    std::os::unix::fs::symlink(&theirs, db_area.join("s.db")).expect("link");
    let place = Place::Sqlite {
        db: db.clone(),
        blobs: blobs.clone(),
    };
    let staging = Staging::begin(place, Options::default()).expect("a leftover, removed");
    drop(staging);
    assert!(
        fs::symlink_metadata(&db).is_err(),
        "the link was moved to {db:?}"
    );
    assert_eq!(fs::read(&theirs).expect("kept"), b"someone's file");
}

#[test]
fn an_area_whose_marker_lost_its_unsynced_bytes_is_a_leftover() {
    // A power loss between writing the marker and its sync may leave the
    // marker at its written length holding zeros, or a prefix of its text.
    for text in [
        vec![0u8; area::MARKER_TEXT.len()],
        area::MARKER_TEXT.as_bytes()[..10].to_vec(),
    ] {
        let tmp = tempfile::tempdir().expect("temp dir");
        let target = tmp.path().join("log");
        let area = tmp.path().join("log.partial");
        fs::create_dir(&area).expect("mkdir");
        fs::write(area.join(MARKER), &text).expect("write");
        let staging =
            Staging::begin(Place::Log(target.clone()), Options::default()).expect("a leftover");
        assert_eq!(staging.leftovers(), &[Leftover::Removed(area.clone())]);
        staging.finish().expect("finish");
        assert!(LogStore::open(&target, Options::default()).is_ok());
    }

    // Zeros beside anything else are still not taken for a marker.
    let tmp = tempfile::tempdir().expect("temp dir");
    let area = tmp.path().join("log.partial");
    fs::create_dir(&area).expect("mkdir");
    fs::write(area.join(MARKER), vec![0u8; 8]).expect("write");
    fs::write(area.join("log"), "mine").expect("write");
    let err = Staging::begin(Place::Log(tmp.path().join("log")), Options::default())
        .expect_err("a foreign area");
    assert!(err.to_string().contains("not logstore's marker"), "{err}");
    assert!(area.join("log").exists());
}
