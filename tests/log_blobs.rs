//! Blob files and leases of the log engine: content addressing, reference
//! counts, orphan collection, damage detection, persistence, and the crash
//! windows of a blob put and delete (a fault injected at every I/O step).
//! Staging files and blob directories are in log_blob_files.rs, reads
//! racing a delete and streams of damaged blobs in log_blob_reads.rs.

mod common;

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use common::blobs::{content_files, content_path, put, read};
use logstore::io::FaultFs;
use logstore::{
    Acquire, BlobList, BlobPut, Durability, Error, LogStore, ManualClock, Options, Store,
};

#[test]
fn identical_bytes_share_one_file_until_the_last_reference_goes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = LogStore::open(&dir, Options::default()).unwrap();
    let a = put(&store, b"shared");
    let b = put(&store, b"shared");
    let c = put(&store, b"other");
    let files = content_files(&dir);
    assert_eq!(files.len(), 2);
    let shared = content_path(&dir, &a);
    assert!(
        files.contains(&shared),
        "content address is blobs/<2 hex>/<hash>"
    );
    assert!(store.blobs().delete(&a.id).unwrap());
    assert!(shared.exists(), "b still refers to it");
    assert!(store.blobs().delete(&b.id).unwrap());
    assert!(!shared.exists(), "removed with its last reference");
    assert_eq!(read(&store, &c.id), b"other");
}

#[test]
fn open_collects_orphan_and_staged_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let kept = {
        let store = LogStore::open(&dir, Options::default()).unwrap();
        put(&store, b"kept")
    };
    // A crash between a file's rename and its metadata record; and one
    // while a put was still staging its bytes.
    let orphan_hash = blake3::hash(b"orphan").to_hex().to_string();
    let folder = dir.join("blobs").join(&orphan_hash[..2]);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join(&orphan_hash), b"orphan").unwrap();
    std::fs::write(
        dir.join("blobs/tmp/0b6a4ab5-54c1-4a7e-9d53-2f2d3c1a9e10.tmp"),
        b"half",
    )
    .unwrap();
    let store = LogStore::open(&dir, Options::default()).unwrap();
    assert_eq!(store.recovery_report().orphan_blobs_removed, 1);
    assert_eq!(store.recovery_report().temp_files_removed, 1);
    assert!(!folder.join(&orphan_hash).exists());
    assert_eq!(read(&store, &kept.id), b"kept");
    assert_eq!(content_files(&dir).len(), 1);
}

#[test]
fn a_damaged_or_missing_file_reads_as_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = LogStore::open(&dir, Options::default()).unwrap();
    let meta = put(&store, b"precious bytes");
    let path = content_path(&dir, &meta);
    std::fs::write(&path, b"PRECIOUS BYTES").unwrap();
    assert!(
        matches!(store.blobs().get(&meta.id), Err(Error::Corruption { .. })),
        "same length, other bytes"
    );
    std::fs::write(&path, b"short").unwrap();
    assert!(
        matches!(store.blobs().get(&meta.id), Err(Error::Corruption { .. })),
        "other length"
    );
    std::fs::remove_file(&path).unwrap();
    match store.blobs().get(&meta.id) {
        Err(Error::Corruption { file, .. }) => assert_eq!(file, path),
        other => panic!(
            "expected corruption, got {:?}",
            other.map(|o| o.map(|(m, _)| m))
        ),
    }
    assert!(
        store.blobs().get_meta(&meta.id).unwrap().is_some(),
        "metadata is still reported"
    );
}

#[test]
fn blobs_and_leases_survive_reopen_with_their_expiries() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let clock = Arc::new(ManualClock::new(1_000));
    let opts = Options {
        clock: clock.clone(),
        ..Options::default()
    };
    let (blob, lease) = {
        let store = LogStore::open(&dir, opts.clone()).unwrap();
        let owned = BlobPut {
            mime: Some("text/plain".into()),
            owner_id: Some("u".into()),
        };
        let blob = store
            .blobs()
            .put(&mut Cursor::new(b"abc".to_vec()), owned)
            .unwrap();
        let gone = put(&store, b"gone");
        store.blobs().delete(&gone.id).unwrap();
        let Acquire::Acquired(lease) = store.leases().acquire("k1", "run", 500).unwrap() else {
            panic!()
        };
        store.leases().acquire("k2", "run", 500).unwrap();
        store.leases().acquire("k3", "other", 500).unwrap();
        store.leases().release("k2", "run").unwrap();
        store.leases().acquire("k4", "gone", 5).unwrap();
        store.leases().release_all("gone").unwrap();
        store.close().unwrap();
        (blob, lease)
    };
    let store = LogStore::open(&dir, opts).unwrap();
    assert_eq!(
        store.blobs().get_meta(&blob.id).unwrap(),
        Some(blob.clone())
    );
    assert_eq!(read(&store, &blob.id), b"abc");
    let listed = store
        .blobs()
        .list(&BlobList {
            owner_id: Some("u".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(listed, vec![blob]);
    assert_eq!(store.blobs().list(&BlobList::default()).unwrap().len(), 1);
    assert_eq!(store.leases().get("k1").unwrap(), Some(lease));
    assert_eq!(store.leases().get("k2").unwrap(), None);
    assert_eq!(store.leases().get("k4").unwrap(), None);
    assert_eq!(
        store.leases().acquire("k1", "thief", 10).unwrap(),
        Acquire::Held {
            owner: "run".into(),
            expires_at: 1_500
        },
        "the expiry came back with the lease"
    );
    clock.advance(501);
    assert!(matches!(
        store.leases().acquire("k1", "thief", 10).unwrap(),
        Acquire::Acquired(_)
    ));
    assert_eq!(store.leases().release_all("other").unwrap(), 1);
}

/// The store's blobs after reopening `fs` cleanly, each read through to the
/// end (so every metadata row has its bytes), with no orphan file left.
fn reopened_blobs(fs: &FaultFs) -> Vec<(String, Vec<u8>)> {
    fs.heal();
    let store = LogStore::open_with_fs(fs.as_vfs(), Path::new("db"), Options::default()).unwrap();
    let mut out = Vec::new();
    for meta in store
        .blobs()
        .list(&BlobList {
            limit: Some(usize::MAX),
            ..Default::default()
        })
        .unwrap()
    {
        out.push((meta.id.clone(), read(&store, &meta.id)));
    }
    drop(store);
    let again = LogStore::open_with_fs(fs.as_vfs(), Path::new("db"), Options::default()).unwrap();
    assert_eq!(
        again.recovery_report().orphan_blobs_removed,
        0,
        "the first open collected every orphan"
    );
    assert_eq!(again.recovery_report().temp_files_removed, 0);
    out.sort();
    out
}

#[test]
fn a_fault_at_every_step_of_a_blob_put_leaves_the_old_state_or_the_new() {
    for durability in [Durability::Sync, Durability::Flush] {
        let mut step = 1;
        loop {
            let fs = FaultFs::new();
            let opts = Options {
                durability,
                ..Options::default()
            };
            let store = LogStore::open_with_fs(fs.as_vfs(), Path::new("db"), opts).unwrap();
            let before = put(&store, b"existing");
            fs.fail_at(step, true);
            let result = store
                .blobs()
                .put(&mut Cursor::new(b"new bytes".to_vec()), BlobPut::default());
            let faulted = fs.injected() > 0;
            drop(store);
            let blobs = reopened_blobs(&fs);
            assert!(
                blobs.contains(&(before.id.clone(), b"existing".to_vec())),
                "step {step}"
            );
            match &result {
                Ok(meta) => assert!(
                    blobs.contains(&(meta.id.clone(), b"new bytes".to_vec())),
                    "step {step}"
                ),
                Err(_) => assert!(
                    blobs.len() <= 2,
                    "step {step}: at most the unacknowledged blob appears"
                ),
            }
            if !faulted {
                assert!(result.is_ok());
                break;
            }
            assert!(result.is_err(), "step {step}: a fault is reported");
            step += 1;
        }
        assert!(step > 5, "a put has several I/O steps: {step}");
    }
}

#[test]
fn a_fault_at_every_step_of_a_blob_delete_never_leaves_a_dangling_row() {
    let mut step = 1;
    loop {
        let fs = FaultFs::new();
        let store =
            LogStore::open_with_fs(fs.as_vfs(), Path::new("db"), Options::default()).unwrap();
        let doomed = put(&store, b"doomed");
        let twin = put(&store, b"twin");
        fs.fail_at(step, true);
        let result = store.blobs().delete(&doomed.id);
        let faulted = fs.injected() > 0;
        drop(store);
        // reopened_blobs reads every listed blob: a row without its bytes
        // would fail there with Corruption.
        let blobs = reopened_blobs(&fs);
        assert!(
            blobs.contains(&(twin.id.clone(), b"twin".to_vec())),
            "step {step}"
        );
        if result.is_ok() {
            assert!(!blobs.iter().any(|(id, _)| id == &doomed.id), "step {step}");
        }
        if !faulted {
            assert!(result.unwrap());
            break;
        }
        step += 1;
    }
    assert!(step > 2, "a delete has several I/O steps: {step}");
}

#[test]
fn a_failed_directory_sync_after_installing_a_blob_poisons_the_store() {
    let fs = FaultFs::new();
    let store = LogStore::open_with_fs(fs.as_vfs(), Path::new("db"), Options::default()).unwrap();
    store.docs().ensure_collection("c", &[]).unwrap();
    // The sync of blobs/HH/ after the staged file was renamed there.
    fs.fail_next("sync_dir");
    let first = store
        .blobs()
        .put(&mut Cursor::new(b"bytes".to_vec()), BlobPut::default());
    assert_eq!(fs.injected(), 1);
    assert!(matches!(first, Err(Error::Io { .. })), "{first:?}");
    // The renamed file is there, its directory entry maybe not on disk: a
    // put of the same bytes must not be acknowledged on the strength of it.
    let again = store
        .blobs()
        .put(&mut Cursor::new(b"bytes".to_vec()), BlobPut::default());
    assert!(matches!(again, Err(Error::Poisoned)), "{again:?}");
    assert!(matches!(
        store.docs().put("c", "d", serde_json::json!({}), None),
        Err(Error::Poisoned)
    ));
    drop(store);
    assert!(reopened_blobs(&fs).is_empty(), "nothing was acknowledged");
}

#[test]
fn putting_the_same_bytes_again_repairs_a_damaged_content_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = LogStore::open(&dir, Options::default()).unwrap();
    let old = put(&store, b"precious bytes");
    let path = content_path(&dir, &old);
    std::fs::write(&path, b"PRECIOUS BYTES").unwrap();
    assert!(matches!(
        store.blobs().get(&old.id),
        Err(Error::Corruption { .. })
    ));
    let new = put(&store, b"precious bytes");
    assert_eq!(new.content_hash, old.content_hash);
    assert_eq!(read(&store, &new.id), b"precious bytes");
    assert_eq!(read(&store, &old.id), b"precious bytes", "the shared file");
    assert_eq!(content_files(&dir), vec![path]);
    assert!(store.verify().unwrap().problems.is_empty());
}
