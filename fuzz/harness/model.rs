//! Fuzz harness `model`: arbitrary operation sequences (documents, blobs,
//! leases, compaction, reopen, and a crash after the Nth I/O call) run on
//! the log engine and on a plain in-memory model. Every result must match
//! the model; after a crash the reopened store must equal the model before
//! or after the interrupted operation, and pass its integrity check.
//! Shared by the fuzz target and the corpus replay in `cargo test`.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use logstore::io::FaultFs;
use logstore::{Acquire, BlobList, BlobPut, Durability, LogStore, ManualClock, Options, Store};
use serde_json::{json, Value};

#[derive(Debug, Clone, Default, PartialEq)]
struct Model {
    docs: BTreeMap<String, (u64, Value)>,
    leases: BTreeMap<String, (String, u64)>,
    blobs: Vec<Vec<u8>>,
}

fn opts(clock: &Arc<ManualClock>) -> Options {
    Options {
        clock: clock.clone(),
        durability: Durability::Sync,
        auto_compact: false,
        segment_bytes: 4096,
        ..Options::default()
    }
}

fn open(fs: &FaultFs, clock: &Arc<ManualClock>) -> LogStore {
    LogStore::open_with_fs(fs.as_vfs(), Path::new("db"), opts(clock)).expect("a healed store opens")
}

/// What the store holds, in the model's terms.
fn observe(store: &LogStore) -> Model {
    let mut model = Model::default();
    let q = logstore::Query::new("c").order_by("id").limit(usize::MAX);
    for doc in store.docs().query(&q).expect("query") {
        model
            .docs
            .insert(doc.id, (doc.version, Value::Object(doc.data)));
    }
    for key in ["k0", "k1", "k2"] {
        if let Some(row) = store.leases().get(key).expect("lease") {
            model
                .leases
                .insert(key.to_string(), (row.owner, row.version));
        }
    }
    let all = BlobList {
        limit: Some(usize::MAX),
        ..Default::default()
    };
    let mut metas = store.blobs().list(&all).expect("list");
    metas.sort_by(|a, b| a.id.cmp(&b.id));
    for meta in metas {
        let (_, mut reader) = store
            .blobs()
            .get(&meta.id)
            .expect("get")
            .expect("listed blob");
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut bytes).expect("read");
        model.blobs.push(bytes);
    }
    model.blobs.sort();
    model
}

/// The model after operation `op` with `arg`; `blob` is the content the
/// store chose to delete (for a blob delete).
fn expected(model: &Model, op: u8, arg: u8, blob: Option<&Vec<u8>>) -> Model {
    let mut next = model.clone();
    let id = format!("d{}", arg % 5);
    match op % 9 {
        0 | 1 => {
            let version = model.docs.get(&id).map_or(1, |(v, _)| v + 1);
            let body = json!({"owner": format!("o{}", arg % 3), "arg": arg});
            next.docs.insert(id, (version, body));
        }
        2 => {
            let expected = u64::from(arg % 3);
            if model.docs.get(&id).is_some_and(|(v, _)| *v == expected) {
                next.docs.insert(id, (expected + 1, json!({"cas": arg})));
            }
        }
        3 => {
            next.docs.remove(&id);
        }
        4 => {
            next.blobs.push(vec![arg; usize::from(arg % 7) * 100]);
            next.blobs.sort();
        }
        5 => {
            if let Some(at) = blob.and_then(|b| next.blobs.iter().position(|x| x == b)) {
                next.blobs.remove(at);
            }
        }
        6 => {
            let key = format!("k{}", arg % 3);
            let owner = format!("run{}", arg % 2);
            match model.leases.get(&key) {
                Some((holder, _)) if holder != &owner => {}
                current => {
                    let version = current.map_or(1, |(_, v)| v + 1);
                    next.leases.insert(key, (owner, version));
                }
            }
        }
        7 => {
            let owner = format!("run{}", arg % 2);
            next.leases.retain(|_, (o, _)| o != &owner);
        }
        _ => {}
    }
    next
}

/// Runs operation `op` on the store and checks its result against the
/// model. Returns whether the store succeeded, and the blob content a
/// blob delete chose.
fn step(store: &LogStore, model: &Model, op: u8, arg: u8) -> (bool, Option<Vec<u8>>) {
    let id = format!("d{}", arg % 5);
    let d = store.docs();
    let after = expected(model, op, arg, None);
    let ok = match op % 9 {
        0 | 1 => {
            let body = json!({"owner": format!("o{}", arg % 3), "arg": arg});
            d.put("c", &id, body, None)
                .map(|row| assert_eq!(row.map(|r| r.version), after.docs.get(&id).map(|(v, _)| *v)))
                .is_ok()
        }
        2 => {
            let won = after.docs.get(&id) != model.docs.get(&id);
            d.put("c", &id, json!({"cas": arg}), Some(u64::from(arg % 3)))
                .map(|row| assert_eq!(row.is_some(), won))
                .is_ok()
        }
        3 => d
            .delete("c", &id)
            .map(|existed| assert_eq!(existed, model.docs.contains_key(&id)))
            .is_ok(),
        4 => {
            let bytes = vec![arg; usize::from(arg % 7) * 100];
            store
                .blobs()
                .put(&mut Cursor::new(bytes), BlobPut::default())
                .is_ok()
        }
        5 => {
            let all = BlobList {
                limit: Some(usize::MAX),
                ..Default::default()
            };
            let mut metas = store.blobs().list(&all).expect("list");
            if metas.is_empty() {
                return (true, None);
            }
            metas.sort_by(|a, b| a.id.cmp(&b.id));
            let meta = &metas[usize::from(arg) % metas.len()];
            let (_, mut reader) = store.blobs().get(&meta.id).expect("get").expect("listed");
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut reader, &mut bytes).expect("read");
            let ok = store.blobs().delete(&meta.id).is_ok();
            return (ok, Some(bytes));
        }
        6 => {
            let key = format!("k{}", arg % 3);
            match store
                .leases()
                .acquire(&key, &format!("run{}", arg % 2), 1_000)
            {
                Ok(Acquire::Acquired(row)) => {
                    assert_eq!(Some(row.version), after.leases.get(&key).map(|(_, v)| *v));
                    true
                }
                Ok(Acquire::Held { owner, .. }) => {
                    assert_eq!(Some(&owner), model.leases.get(&key).map(|(o, _)| o));
                    true
                }
                Err(_) => false,
            }
        }
        7 => {
            let owner = format!("run{}", arg % 2);
            store
                .leases()
                .release_all(&owner)
                .map(|n| assert_eq!(n as usize, model.leases.len() - after.leases.len()))
                .is_ok()
        }
        _ => store.compact().is_ok(),
    };
    (ok, None)
}

/// Runs one input: pairs of bytes are operations; an operation byte of
/// 0xF0 or more reopens the store, first arming a fault after `arg` I/O
/// calls when it is 0xF8 or more.
pub fn run(data: &[u8]) {
    let fs = FaultFs::new();
    let clock = Arc::new(ManualClock::new(1_000));
    let mut store = open(&fs, &clock);
    let mut model = Model::default();
    let mut armed = false;
    for pair in data.chunks_exact(2).take(64) {
        let (op, arg) = (pair[0], pair[1]);
        if op >= 0xF0 {
            if op >= 0xF8 && !armed {
                fs.fail_at(u64::from(arg % 16) + 1, true);
                armed = true;
                continue;
            }
            drop(store);
            fs.heal();
            armed = false;
            store = open(&fs, &clock);
            assert_eq!(observe(&store), model, "reopen changed the state");
            continue;
        }
        let (ok, blob) = step(&store, &model, op, arg);
        let after = expected(&model, op, arg, blob.as_ref());
        if ok {
            model = after;
            continue;
        }
        // A fault: the operation may or may not have happened. Reopen: the
        // log must hold the state before it or after it.
        drop(store);
        fs.heal();
        armed = false;
        store = open(&fs, &clock);
        let found = observe(&store);
        let report = store.verify().expect("verify");
        assert!(report.is_clean(), "{:?}", report.problems);
        assert!(
            found == model || found == after,
            "after a fault the state is neither before nor after"
        );
        model = found;
    }
}
