//! A store opened by a relative path stays the directory it named when it
//! was opened: a later change of the process's working directory moves
//! none of its files (new segments, blob files, the snapshot) elsewhere.
//!
//! The working directory belongs to the whole process, so this file holds
//! one test and no other test binary changes it.

use std::io::{Cursor, Read};
use std::path::PathBuf;

use logstore::{BlobPut, LogStore, Options, Store, MIN_SEGMENT_BYTES};
use serde_json::json;

/// Puts the working directory back however the test ends.
struct RestoreCwd(PathBuf);

impl Drop for RestoreCwd {
    fn drop(&mut self) {
        let _ = std::env::set_current_dir(&self.0);
    }
}

fn opts() -> Options {
    Options {
        // Small segments: the puts below roll the log several times, each
        // roll creating a segment file after the working directory changed.
        segment_bytes: 4 * MIN_SEGMENT_BYTES,
        auto_compact: false,
        ..Options::default()
    }
}

#[test]
fn a_store_opened_by_a_relative_path_keeps_its_files_there_after_a_chdir() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    let _restore = RestoreCwd(std::env::current_dir().unwrap());

    std::env::set_current_dir(&home).unwrap();
    let store = LogStore::open("data/log", opts()).unwrap();
    std::env::set_current_dir(&elsewhere).unwrap();

    let body = |i: usize| json!({"n": i, "text": "x".repeat(400)});
    for i in 0..200 {
        store
            .docs()
            .put("c", &format!("d{i}"), body(i), None)
            .unwrap_or_else(|e| panic!("put {i} after the working directory changed: {e}"));
    }
    let blob_bytes = b"a blob put after the working directory changed".to_vec();
    let blob = store
        .blobs()
        .put(&mut Cursor::new(blob_bytes.clone()), BlobPut::default())
        .unwrap_or_else(|e| panic!("a blob put after the working directory changed: {e}"));
    store
        .close()
        .unwrap_or_else(|e| panic!("close after the working directory changed: {e}"));
    drop(store);

    let strays: Vec<String> = std::fs::read_dir(&elsewhere)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        strays.is_empty(),
        "the store wrote under the new working directory: {strays:?}"
    );

    std::env::set_current_dir(&home).unwrap();
    let store = LogStore::open("data/log", opts()).unwrap();
    let missing: Vec<usize> = (0..200)
        .filter(|&i| {
            let doc = store.docs().get("c", &format!("d{i}"));
            let data = doc
                .ok()
                .flatten()
                .map(|d| serde_json::Value::Object(d.data));
            data != Some(body(i))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{} of 200 documents are missing after a reopen, the first {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let got = store.blobs().get(&blob.id);
    let (_, mut reader) = got
        .unwrap_or_else(|e| panic!("reading the blob after a reopen: {e}"))
        .expect("the blob is there after a reopen");
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).unwrap();
    assert_eq!(bytes, blob_bytes);
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    store.close().unwrap();
}
