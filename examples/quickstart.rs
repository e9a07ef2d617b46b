//! A tour of logstore: open a store under `./.pattern-data/`, write and
//! query documents, close, reopen, and print what came back.
//!
//! Run with `cargo run --release --example quickstart`.

use logstore::{LogStore, Options, Query, Store};
use serde_json::json;

fn main() -> logstore::Result<()> {
    let dir = std::path::Path::new(".pattern-data/quickstart");
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());

    let store = LogStore::open(dir, Options::default())?;
    let report = store.recovery_report();
    println!(
        "opened {} ({} segments, {} records replayed)",
        dir.display(),
        report.segments,
        report.records
    );
    let s: &dyn Store = &store;
    s.docs().ensure_collection("msgs", &["owner", "rank"])?;
    for (i, owner) in ["ana", "bo", "ana", "cy", "ana"].iter().enumerate() {
        let id = format!("run{run}-m{i}");
        s.docs().put(
            "msgs",
            &id,
            json!({"owner": owner, "rank": format!("r{i}"), "text": format!("message {i}")}),
            None,
        )?;
    }
    let first = format!("run{run}-m0");
    let row = s.docs().patch("msgs", &first, json!({"rank": "r9"}), 1)?;
    println!("patched {first}: version {:?}", row.map(|d| d.version));
    let stale = s
        .docs()
        .put("msgs", &first, json!({"owner": "x"}), Some(1))?;
    println!("a stale compare-and-swap returns {stale:?}");
    s.close()?;

    let store = LogStore::open(dir, Options::default())?;
    let s: &dyn Store = &store;
    let query = Query::new("msgs")
        .filter("owner", "ana")
        .order_by("rank")
        .desc()
        .limit(3);
    println!("after reopening, ana's newest-ranked messages:");
    for doc in s.docs().query(&query)? {
        println!(
            "  {} v{} {}",
            doc.id,
            doc.version,
            serde_json::Value::Object(doc.data)
        );
    }
    for info in s.docs().list_collections()? {
        println!(
            "collection {}: {} documents, indexes {:?}",
            info.name, info.doc_count, info.indexes
        );
    }
    let ana = s.docs().count(&Query::new("msgs").filter("owner", "ana"))?;
    println!("ana has {ana} messages in all runs");
    s.close()
}
