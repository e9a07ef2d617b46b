//! Every driver on a tiny workload, and the whole run once: each answer is
//! checked against the documents put (timings are not).

use std::collections::BTreeMap;
use std::path::Path;

use logstore_peers::drivers::{
    Body, DocPeer, Durability, FjallStore, Logstore, NativeDbStore, Peer, RedbStore, Store,
};
use logstore_peers::{markdown, run, Config};
use logstore_workload::{self as workload, Rng};
use serde_json::Value;

const DOCS: u64 = 200;

/// The documents `run::load` puts: (id, body) in id order.
fn expected() -> Vec<(String, Value)> {
    let mut rng = Rng::new(42);
    (0..DOCS)
        .map(|i| (workload::id(i), workload::turn(&mut rng, i)))
        .collect()
}

fn field<'a>(doc: &'a Value, name: &str) -> &'a str {
    doc[name].as_str().expect("a workload turn's string field")
}

/// Every store of a run at `durability`, each in its own place in `dir`.
fn stores(dir: &Path, durability: Durability) -> Vec<Store> {
    let mut stores = vec![Store::Doc(Box::new(
        Logstore::open(&dir.join("log"), durability).unwrap(),
    ))];
    if durability == Durability::Sync {
        let native = NativeDbStore::create(&dir.join("native.redb")).unwrap();
        stores.push(Store::Doc(Box::new(native)));
    }
    stores.push(Store::Kv(Box::new(
        RedbStore::create(&dir.join("kv.redb"), durability).unwrap(),
    )));
    stores.push(Store::Kv(Box::new(
        FjallStore::open(&dir.join("fjall"), durability).unwrap(),
    )));
    stores
}

fn json(body: &Body) -> Value {
    body.to_json().unwrap()
}

/// Gets return the bodies put, a missing id nothing, and each
/// conversation's query its ids.
fn check_reads(peer: &dyn Peer, docs: &[(String, Value)]) {
    let name = peer.name();
    for (id, doc) in docs.iter().step_by(7) {
        let got = peer
            .get(id)
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: {id} missing"));
        assert_eq!(&json(&got), doc, "{name}: get {id}");
    }
    assert!(peer.get("turn-99999999").unwrap().is_none(), "{name}");
    let mut by_conversation: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
    for (id, doc) in docs {
        by_conversation
            .entry(field(doc, "conversation"))
            .or_default()
            .push(id);
    }
    for (conversation, ids) in &by_conversation {
        let rows = peer.query(conversation, 20).unwrap();
        let mut got: Vec<&String> = rows.iter().map(|(id, _)| id).collect();
        got.sort();
        assert_eq!(&got, ids, "{name}: query {conversation}");
        for (id, body) in &rows {
            let want = &docs.iter().find(|(i, _)| i == id).unwrap().1;
            assert_eq!(&json(body), want, "{name}: query row {id}");
        }
    }
    assert!(peer.query("conv-99999", 20).unwrap().is_empty(), "{name}");
}

/// Count, upsert and delete answer as the documents say.
fn check_writes(doc: &dyn DocPeer, docs: &[(String, Value)]) {
    let name = doc.name();
    let author = field(&docs[0].1, "author");
    let written = docs
        .iter()
        .filter(|(_, d)| field(d, "author") == author)
        .count();
    assert_eq!(doc.count(author).unwrap(), written as u64, "{name}: count");

    // An upsert that moves a turn to another conversation moves it in the
    // index too.
    let (id, old) = &docs[3];
    let mut new = old.clone();
    new["conversation"] = Value::from("conv-77777");
    new["text"] = Value::from("rewritten");
    doc.upsert(id, new.clone()).unwrap();
    assert_eq!(json(&doc.get(id).unwrap().unwrap()), new, "{name}: upsert");
    let moved = doc.query("conv-77777", 20).unwrap();
    assert_eq!(moved.len(), 1, "{name}: upsert's new conversation");
    assert_eq!(&moved[0].0, id, "{name}");
    let left = doc.query(field(old, "conversation"), 20).unwrap();
    assert!(
        left.iter().all(|(i, _)| i != id),
        "{name}: upsert's old conversation"
    );

    let (id, _) = &docs[5];
    assert!(doc.delete(id).unwrap(), "{name}: delete");
    assert!(doc.get(id).unwrap().is_none(), "{name}: get after delete");
    assert!(!doc.delete(id).unwrap(), "{name}: delete twice");
}

fn every_driver_at(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let docs = expected();
    let stores = stores(dir.path(), durability);
    for store in &stores {
        logstore_peers::load(std::slice::from_ref(store), DOCS).unwrap();
        check_reads(store.peer(), &docs);
        if let Some(doc) = store.doc() {
            check_writes(doc, &docs);
        }
    }
}

#[test]
fn every_driver_answers_right_with_sync() {
    every_driver_at(Durability::Sync);
}

#[test]
fn every_driver_answers_right_with_flush() {
    every_driver_at(Durability::Flush);
}

#[test]
fn a_tiny_run_measures_every_operation_and_prints_the_block() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        docs: DOCS,
        seconds_per_op: 0.002,
        durabilities: vec![Durability::Sync, Durability::Flush],
        dir: Some(dir.path().to_path_buf()),
    };
    let report = run(&config).unwrap();
    assert_eq!(report.sections.len(), 2);
    let names = |i: usize| -> Vec<&str> {
        report.sections[i]
            .stores
            .iter()
            .map(|(n, _)| n.as_str())
            .collect()
    };
    assert_eq!(names(0), ["logstore", "native_db", "redb", "fjall"]);
    assert_eq!(names(1), ["logstore", "redb", "fjall"]);
    for section in &report.sections {
        assert_eq!(section.rows.len(), 7);
        for row in &section.rows {
            let key_value = [
                "load, 1,000 documents per commit",
                "put (new)",
                "get by id",
                "query, 1 filter, limit 20",
            ]
            .contains(&row.operation.as_str());
            for ((name, _), rate) in section.stores.iter().zip(&row.rates) {
                let offered = key_value || name == "logstore" || name == "native_db";
                assert_eq!(rate.is_some(), offered, "{name}: {}", row.operation);
                if let Some(rate) = rate {
                    assert!(rate.ops_per_sec > 0.0, "{name}: {}", row.operation);
                }
            }
        }
    }
    let text = markdown(&report, "rust-peers-scale");
    assert!(text.starts_with("<!-- bench:rust-peers-scale -->\n"));
    assert!(text.ends_with("<!-- /bench:rust-peers-scale -->\n"));
    assert!(text.contains("| log / native_db |"));
    assert!(text.contains("| goal | lowest ratio | result |"));
    // The run's folder is removed with it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
