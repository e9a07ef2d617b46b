//! Helpers shared by the engine's integration tests.

#![allow(dead_code)]

pub mod blobs;
pub mod churn;
pub mod count_fs;
pub mod crash;
pub mod power_fs;
pub mod repair;
pub mod wrap_fs;

use std::path::{Path, PathBuf};

use logstore::{Document, DocumentStore, Durability, ManualClock, Options, Query};

/// The number in environment variable `name`, if it holds one.
pub fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

/// Options that skip fsync: recovery tests reopen hundreds of times.
pub fn flush_opts() -> Options {
    Options {
        durability: Durability::Flush,
        ..Options::default()
    }
}

/// Where the log ends in a segment's bytes: after the last non-zero byte
/// (the newest segment runs on with zeros the writer reserves ahead).
pub fn log_end(segment_bytes: &[u8]) -> u64 {
    segment_bytes
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |p| p as u64 + 1)
}

/// The segment files of a store directory, oldest first.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read store dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

/// Copies every file of a store directory into a new directory.
pub fn copy_store(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy dir");
    for entry in std::fs::read_dir(from).expect("read store dir") {
        let entry = entry.expect("dir entry");
        if entry.file_type().expect("file type").is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy file");
        }
    }
}

/// Every document of a collection, in id order.
pub fn all_docs(docs: &dyn DocumentStore, collection: &str) -> Vec<Document> {
    docs.query(&Query::new(collection).order_by("id").limit(usize::MAX))
        .expect("query all")
}

/// Everything a store holds that the contract can read back: collections,
/// every document, every index field's order, every blob (with its bytes)
/// and the leases of `lease_keys`. Two stores with equal dumps are equal to
/// every reader.
pub fn dump(store: &dyn logstore::Store, lease_keys: &[String]) -> String {
    use std::fmt::Write as _;
    use std::io::Read as _;
    let mut out = String::new();
    let d = store.docs();
    let cols = d.list_collections().expect("list collections");
    writeln!(out, "{cols:?}").unwrap();
    for col in &cols {
        for doc in all_docs(d, &col.name) {
            writeln!(out, "{doc:?}").unwrap();
        }
        for field in &col.indexes {
            let q = Query::new(&col.name).order_by(field).limit(usize::MAX);
            let ids: Vec<String> = d
                .query(&q)
                .expect("query")
                .into_iter()
                .map(|r| r.id)
                .collect();
            writeln!(out, "{}.{field}: {ids:?}", col.name).unwrap();
        }
    }
    let all = logstore::BlobList {
        limit: Some(usize::MAX),
        ..Default::default()
    };
    for meta in store.blobs().list(&all).expect("list blobs") {
        let (_, mut reader) = store
            .blobs()
            .get(&meta.id)
            .expect("get blob")
            .expect("blob exists");
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).expect("read blob");
        writeln!(
            out,
            "{meta:?} {} bytes, hash {}",
            bytes.len(),
            blake3::hash(&bytes)
        )
        .unwrap();
    }
    for key in lease_keys {
        writeln!(out, "{key}: {:?}", store.leases().get(key).expect("lease")).unwrap();
    }
    out
}

/// Fails the test with the count and the first few of `failures`, if any.
pub fn assert_no_failures(what: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{what}: {} failures; the first:\n{}",
        failures.len(),
        failures[..failures.len().min(8)].join("\n")
    );
}

/// Step `i` of the crash tests' workload over `kinds` kinds of step: an
/// ensure, puts, a delete, a blob put, a lease acquire and a release-all,
/// then with `kinds` above 9 a compare-and-swap put that may change nothing
/// and a blob delete that may orphan its file, and last a compaction.
pub fn workload_step(store: &logstore::LogStore, i: usize, kinds: usize) -> logstore::Result<()> {
    workload_step_with(store, || store.compact().map(drop), i, kinds)
}

/// [`workload_step`] through anything with the store traits (a batch's
/// handle, say), with `compact` for its compaction step.
pub fn workload_step_with(
    store: &dyn logstore::Store,
    compact: impl FnOnce() -> logstore::Result<()>,
    i: usize,
    kinds: usize,
) -> logstore::Result<()> {
    use logstore::BlobPut;
    use serde_json::json;
    let d = store.docs();
    let lease_keys = ["k1", "k2"];
    match i % kinds {
        0 => d.ensure_collection("c", &["owner"]),
        1..=3 => d
            .put(
                "c",
                &format!("d{}", i % 7),
                json!({"owner": format!("o{}", i % 3), "pad": "x".repeat(300)}),
                None,
            )
            .map(drop),
        4 => d.delete("c", &format!("d{}", (i + 3) % 7)).map(drop),
        5 => store
            .blobs()
            .put(
                &mut std::io::Cursor::new(format!("blob {}", i % 4).into_bytes()),
                BlobPut::default(),
            )
            .map(drop),
        6 => store
            .leases()
            .acquire(lease_keys[i % 2], &format!("run{}", i % 3), 1_000)
            .map(drop),
        7 => store.leases().release_all("run1").map(drop),
        8 if kinds > 9 => d.put("c", "d1", json!({"cas": i}), Some(1)).map(drop),
        9 if kinds > 9 => match store.blobs().list(&Default::default())?.first() {
            Some(m) => store.blobs().delete(&m.id).map(drop),
            None => Ok(()),
        },
        _ => compact(),
    }
}

/// The segment's salt, from its header (bytes 16..20 in format 2).
pub fn salt_of(segment: &[u8]) -> u32 {
    u32::from_le_bytes(segment[16..20].try_into().unwrap())
}

/// A format-2 frame of `payload` valid at `offset` under `salt`, built from
/// FORMAT.md's description.
pub fn frame_v2(salt: u32, offset: u64, payload: &[u8]) -> Vec<u8> {
    let masked = |crc: u32| crc.rotate_right(15).wrapping_add(0xa282_ead8);
    let len = (payload.len() as u32).to_le_bytes();
    let mut head = crc32fast::Hasher::new();
    head.update(&salt.to_le_bytes());
    head.update(&offset.to_le_bytes());
    head.update(&len);
    let mut whole = head.clone();
    whole.update(payload);
    let mut frame = len.to_vec();
    frame.extend_from_slice(&masked(head.finalize()).to_le_bytes());
    frame.extend_from_slice(&masked(whole.finalize()).to_le_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// The payload of a document record (kind 2) with both timestamps 1, as
/// FORMAT.md lays it out.
pub fn doc_put_payload(collection: &str, id: &str, version: u64, body: &[u8]) -> Vec<u8> {
    let mut payload = vec![2u8];
    for field in [collection.as_bytes(), id.as_bytes()] {
        payload.extend_from_slice(&(field.len() as u32).to_le_bytes());
        payload.extend_from_slice(field);
    }
    payload.extend_from_slice(&version.to_le_bytes());
    payload.extend_from_slice(&1i64.to_le_bytes());
    payload.extend_from_slice(&1i64.to_le_bytes());
    payload.extend_from_slice(&(body.len() as u32).to_le_bytes());
    payload.extend_from_slice(body);
    payload
}

/// The real file system confined to the store directory `dir`, which it
/// creates when missing.
pub fn real_fs(dir: &std::path::Path) -> logstore::io::RealFs {
    logstore::io::create_dirs_durable(dir).unwrap();
    logstore::io::RealFs::open_root(dir, logstore::io::Access::ReadWrite).unwrap()
}

/// The options of the crash tests: `durability`, segments of
/// `segment_bytes`, the test's clock, and no background compaction (so
/// every compaction is one the test asked for).
pub fn test_opts(
    clock: &std::sync::Arc<ManualClock>,
    durability: Durability,
    segment_bytes: u64,
) -> Options {
    Options {
        clock: clock.clone(),
        durability,
        segment_bytes,
        auto_compact: false,
        ..Options::default()
    }
}

/// The lease keys `workload_step` uses.
pub fn keys() -> Vec<String> {
    vec!["k1".into(), "k2".into()]
}

/// [`dump`] over the lease keys `workload_step` uses.
pub fn workload_dump(store: &logstore::LogStore) -> String {
    dump(store, &keys())
}

/// The ids of the `.seg` files in `dir` of `fs`, in order.
pub fn segment_ids(fs: &logstore::io::MemFs, dir: &std::path::Path) -> Vec<u32> {
    use logstore::io::Vfs;
    let mut ids: Vec<u32> = fs
        .list(dir)
        .unwrap()
        .iter()
        .filter_map(|n| n.strip_suffix(".seg")?.parse().ok())
        .collect();
    ids.sort_unstable();
    ids
}
