//! Helpers shared by the engine's integration tests.

#![allow(dead_code)]

pub mod fault_fs;

use std::path::{Path, PathBuf};

use logstore::{Document, DocumentStore, Durability, Options, Query};

/// Options that skip fsync: recovery tests reopen hundreds of times.
pub fn flush_opts() -> Options {
    Options {
        durability: Durability::Flush,
        ..Options::default()
    }
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
