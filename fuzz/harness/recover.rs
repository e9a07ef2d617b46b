//! Fuzz harness `recover`: arbitrary bytes as the files of a store (a
//! segment, the index snapshot, the manifest). Open must return a store or
//! a clean error: never panic, hang, or allocate without bound; a store it
//! returns must answer reads and pass or report its integrity check.
//! Shared by the fuzz target and the corpus replay in `cargo test`.

use std::path::Path;
use std::sync::Arc;

use logstore::io::{MemFs, Vfs};
use logstore::{Durability, LogStore, Options, Query, Store};

fn opts() -> Options {
    Options {
        durability: Durability::Flush,
        auto_compact: false,
        segment_bytes: 4096,
        ..Options::default()
    }
}

const SEGMENT: &str = "db/00000000000000000001.seg";

/// A small real store, so mutations start from valid files.
fn base_store(fs: &MemFs) {
    let store =
        LogStore::open_with_fs(Arc::new(fs.clone()), Path::new("db"), opts()).expect("base store");
    let d = store.docs();
    d.ensure_collection("c", &["owner"]).expect("ensure");
    for i in 0..3 {
        let body = serde_json::json!({"owner": format!("o{i}"), "n": i});
        d.put("c", &format!("d{i}"), body, None).expect("put");
    }
    store.leases().acquire("k", "run", 1000).expect("lease");
    store.close().expect("close");
}

fn replace(fs: &MemFs, path: &str, bytes: &[u8]) {
    let file = fs.open(Path::new(path), true).expect("file");
    file.set_len(0).expect("truncate");
    file.write_all_at(bytes, 0).expect("write");
}

fn append(fs: &MemFs, path: &str, bytes: &[u8]) {
    let file = fs.open(Path::new(path), true).expect("file");
    let len = file.size().expect("size");
    file.write_all_at(bytes, len).expect("append");
}

fn xor(fs: &MemFs, path: &str, mask: &[u8]) {
    if mask.is_empty() {
        return;
    }
    if let Some(file) = fs.file(Path::new(path)) {
        let mut bytes = file.contents();
        for (i, b) in bytes.iter_mut().enumerate() {
            *b ^= mask[i % mask.len()];
        }
        replace(fs, path, &bytes);
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let fs = MemFs::new();
    base_store(&fs);
    match mode % 6 {
        0 => replace(&fs, SEGMENT, rest),
        1 => append(&fs, SEGMENT, rest),
        2 => replace(&fs, "db/SNAPSHOT", rest),
        3 => xor(&fs, "db/SNAPSHOT", rest),
        4 => replace(&fs, "db/MANIFEST", rest),
        _ => {
            let half = rest.len() / 2;
            xor(&fs, SEGMENT, &rest[..half]);
            xor(&fs, "db/SNAPSHOT", &rest[half..]);
        }
    }
    let Ok(store) = LogStore::open_with_fs(Arc::new(fs), Path::new("db"), opts()) else {
        return;
    };
    if let Ok(cols) = store.docs().list_collections() {
        for col in cols {
            let _ = store.docs().query(&Query::new(&col.name).limit(1000));
            for field in &col.indexes {
                let _ = store.docs().query(&Query::new(&col.name).order_by(field));
            }
        }
    }
    let _ = store.leases().get("k");
    let _ = store.verify();
    let _ = store
        .docs()
        .put("c", "after", serde_json::json!({"owner": "z"}), None);
    let _ = store.compact();
}
