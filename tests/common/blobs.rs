//! The blob tests' helpers: put and read a blob, list content files.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use logstore::{BlobPut, Store};

/// The content files of the blobs of the store at `dir`, sorted.
pub fn content_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir.join("blobs")) else {
        return files;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() && path.file_name().unwrap() != "tmp" {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
    }
    files.sort();
    files
}

/// The content file of the blob `meta` describes, in the store at `dir`.
pub fn content_path(dir: &Path, meta: &logstore::BlobMeta) -> PathBuf {
    let hash = meta.content_hash.clone().unwrap();
    dir.join("blobs").join(&hash[..2]).join(&hash)
}

/// Puts `bytes` as a blob of `store`.
pub fn put(store: &dyn Store, bytes: &[u8]) -> logstore::BlobMeta {
    store
        .blobs()
        .put(&mut Cursor::new(bytes.to_vec()), BlobPut::default())
        .unwrap()
}

/// The bytes of blob `id` of `store`, read to the end.
pub fn read(store: &dyn Store, id: &str) -> Vec<u8> {
    let (_, mut r) = store.blobs().get(id).unwrap().unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    out
}
