//! The compaction tests' workload: a log that is mostly dead, over small
//! segments.

use std::io::Cursor;

use logstore::{BlobPut, LogStore, Options, Store};
use serde_json::json;

use super::flush_opts;

/// Segments of 16 KiB, no background compaction, no fsync.
pub fn small_opts() -> Options {
    Options {
        segment_bytes: 16 * 1024,
        auto_compact: false,
        ..flush_opts()
    }
}

/// The lease keys `churn` uses.
pub fn lease_keys() -> Vec<String> {
    (0..6).map(|i| format!("lease-{i}")).collect()
}

/// Overwrites, deletes, leases and blobs: a log that is mostly dead.
pub fn churn(store: &LogStore, rounds: usize) {
    let d = store.docs();
    d.ensure_collection("msgs", &["owner"]).unwrap();
    for round in 0..rounds {
        for i in 0..40 {
            let body = json!({"owner": format!("o{}", (i + round) % 4), "n": round, "text": "x".repeat(100)});
            d.put("msgs", &format!("m{i:02}"), body, None).unwrap();
        }
        for i in (round % 5..40).step_by(9) {
            d.delete("msgs", &format!("m{i:02}")).unwrap();
        }
        let key = format!("lease-{}", round % 6);
        store
            .leases()
            .acquire(&key, &format!("run-{}", round % 3), 10_000)
            .unwrap();
        if round % 4 == 3 {
            store.leases().release_all("run-0").unwrap();
        }
        let blob = store
            .blobs()
            .put(
                &mut Cursor::new(format!("blob {}", round % 3).into_bytes()),
                BlobPut::default(),
            )
            .unwrap();
        if round % 2 == 0 {
            store.blobs().delete(&blob.id).unwrap();
        }
    }
    d.ensure_collection("msgs", &["n"]).unwrap();
}
