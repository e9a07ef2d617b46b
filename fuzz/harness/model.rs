//! Fuzz harness `model`: arbitrary operation sequences (documents, blobs,
//! leases, compaction, reopen, and a crash after the Nth I/O call) run on
//! the log engine and on a plain in-memory model. Every result must match
//! the model; after a crash the reopened store must equal the model before
//! or after the interrupted operation, and pass its integrity check.
//!
//! Besides plain names, operations use the inputs the fault model lets an
//! attacker choose (FORMAT.md, "The fault model"): document ids,
//! collection names, lease keys, blob mimes and document bodies holding
//! NUL and control bytes, strings around and past the length limits, the
//! bytes of complete log frames (a format-1 frame, and a format-2 frame
//! under a guessed salt and offset, each a document write of its own),
//! and bodies nested around and far past the nesting limit. The store may
//! refuse such an input (`Error::InvalidInput`, nothing changes); what it
//! acknowledges must read back, after every step and after every reopen,
//! and no such input may change what recovery decides.
//! Shared by the fuzz target and the corpus replay in `cargo test`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use logstore::io::FaultFs;
use logstore::{
    Acquire, BlobList, BlobPut, Durability, Error, LogStore, ManualClock, Options, Store,
    DEFAULT_MIME,
};
use serde_json::{json, Value};

#[derive(Debug, Clone, Default, PartialEq)]
struct Model {
    /// (collection, id) to (version, body).
    docs: BTreeMap<(String, String), (u64, Value)>,
    leases: BTreeMap<String, (String, u64)>,
    /// (content, mime), sorted.
    blobs: Vec<(Vec<u8>, String)>,
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

// --- Hostile inputs -------------------------------------------------------

/// `masked_crc` as FORMAT.md ("Conventions") defines it: CRC-32 (IEEE),
/// rotated right by 15 bits, plus `CRC_MASK_DELTA`.
fn masked_crc(parts: &[&[u8]]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    parts.iter().for_each(|p| hasher.update(p));
    hasher.finalize().rotate_right(15).wrapping_add(0xa282_ead8)
}

/// A `KIND_DOC_PUT` record writing `{"owner":"injected","n":n}` as version
/// 7 of document `d0` in collection `c`: what a forged frame would replay.
/// Every byte is below 0x80.
fn injected_record(n: u32) -> Vec<u8> {
    let mut rec = vec![2u8];
    for s in ["c", "d0"] {
        rec.extend_from_slice(&(s.len() as u32).to_le_bytes());
        rec.extend_from_slice(s.as_bytes());
    }
    rec.extend_from_slice(&7u64.to_le_bytes());
    rec.extend_from_slice(&0x7f_i64.to_le_bytes());
    rec.extend_from_slice(&0x7f_i64.to_le_bytes());
    let body = format!(r#"{{"owner":"injected","n":{n:08}}}"#);
    rec.extend_from_slice(&(body.len() as u32).to_le_bytes());
    rec.extend_from_slice(body.as_bytes());
    rec
}

/// A format-1 frame: `len`, `masked_crc(len ++ payload)`, payload.
fn frame_v1(n: u32) -> Vec<u8> {
    let payload = injected_record(n);
    let len = (payload.len() as u32).to_le_bytes();
    let mut frame = len.to_vec();
    frame.extend_from_slice(&masked_crc(&[&len, &payload]).to_le_bytes());
    frame.extend_from_slice(&payload);
    frame
}

/// A format-2 frame as it would verify at `offset` of a segment whose salt
/// is `salt`.
fn frame_v2(salt: u32, offset: u64, n: u32) -> Vec<u8> {
    let payload = injected_record(n);
    let len = (payload.len() as u32).to_le_bytes();
    let (salt, offset) = (salt.to_le_bytes(), offset.to_le_bytes());
    let mut frame = len.to_vec();
    frame.extend_from_slice(&masked_crc(&[&salt, &offset, &len]).to_le_bytes());
    frame.extend_from_slice(&masked_crc(&[&salt, &offset, &len, &payload]).to_le_bytes());
    frame.extend_from_slice(&payload);
    frame
}

fn utf8(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok()
}

/// A format-1 frame whose bytes are valid UTF-8, so that it can be a
/// document id: the body's counter is stepped until the checksum is.
fn utf8_frame_v1(seed: u32) -> String {
    (0..100_000)
        .map(|i| frame_v1(seed.wrapping_mul(7919).wrapping_add(i)))
        .find_map(|f| String::from_utf8(f).ok())
        .expect("a UTF-8 format-1 frame")
}

/// A format-2 frame, valid UTF-8, under a guessed salt (stepped from
/// `seed` until the header checksum is UTF-8; no guess knows the real one)
/// at a guessed offset: where the id would sit if its record were the
/// segment's first frame, or a later one.
fn utf8_frame_v2(seed: u32, slot: u64) -> String {
    // Segment header, frame header, kind, `str` collection "c", `str` length.
    let offset = 24 + 12 + 1 + 4 + 1 + 4 + 64 * slot;
    let len = (injected_record(0).len() as u32).to_le_bytes();
    let salt = (0..100_000u32)
        .map(|i| seed.wrapping_mul(2_654_435_761).wrapping_add(i))
        .find(|s| utf8(&masked_crc(&[&s.to_le_bytes(), &offset.to_le_bytes(), &len]).to_le_bytes()))
        .expect("a salt guess");
    (0..100_000u32)
        .map(|n| frame_v2(salt, offset, n))
        .find_map(|f| String::from_utf8(f).ok())
        .expect("a UTF-8 format-2 frame")
}

/// Lengths around the limits of FORMAT.md's strings (`MAX_MIME_BYTES`
/// 255, `MAX_COLLECTION_NAME_BYTES` 256, `MAX_ID_BYTES` and `MAX_KEY_BYTES`
/// 1024) and far past them.
const LENGTHS: [usize; 8] = [255, 256, 257, 1023, 1024, 1025, 4096, 70_000];

/// The hostile string for `arg`: its low 4 bits pick a shape, its high 4
/// bits a variant of it.
fn make_hostile(arg: u8) -> String {
    let v = usize::from(arg >> 4);
    let pick = |list: &[&str]| list[v % list.len()].to_string();
    match arg & 15 {
        0 => String::new(),
        1 => "\0".repeat(1 + v),
        2 => format!("a\0b{v}\0"),
        3 => "x".repeat(LENGTHS[v % 8]),
        4 => utf8_frame_v1(v as u32),
        5 => utf8_frame_v2(v as u32, v as u64 % 4),
        6 => "\0".repeat(12) + &utf8_frame_v2(v as u32, 1),
        7 => "LOGSTSEG\u{2}\0\0\0".to_string() + &utf8_frame_v2(v as u32 + 16, 0),
        8 => {
            // The raw bytes of a frame, as lossy UTF-8.
            String::from_utf8_lossy(&frame_v2(v as u32, 24, v as u32)).into_owned()
        }
        9 => pick(&[
            "é",
            "☃",
            "😀",
            "\u{FEFF}",
            "\u{10FFFF}",
            "\u{FFFD}",
            "a\u{300}",
            "\u{202E}x",
        ]),
        10 => pick(&["..", ".", "/", "../../x", "a/b", "\\", "CON", "quarantine"]),
        11 => pick(&["\"", "\"}", "{\"a\":1}", "\n", "\r\n", "\t", "\\u0000", "'"]),
        12 => (1u8..32).map(char::from).skip(v).collect(),
        13 => utf8_frame_v1(v as u32) + &utf8_frame_v2(v as u32, 0) + &utf8_frame_v1(v as u32 + 1),
        // Multi-byte characters ending at, or straddling, a byte limit.
        14 => "é".repeat(if v % 2 == 0 { 512 } else { 128 }) + if v >= 8 { "a" } else { "" },
        _ => format!("d{}", v % 5),
    }
}

/// `make_hostile` for every byte, computed once.
fn hostile(arg: u8) -> &'static str {
    static TABLE: OnceLock<Vec<String>> = OnceLock::new();
    &TABLE.get_or_init(|| (0..=255).map(make_hostile).collect())[usize::from(arg)]
}

/// Every name an operation can give a collection or a lease key (only
/// ensured collections are listed, so observing the store asks for each).
fn names() -> &'static BTreeSet<String> {
    static NAMES: OnceLock<BTreeSet<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names: BTreeSet<String> = (0..=255).map(|a| hostile(a).to_string()).collect();
        names.extend(["c", "k0", "k1", "k2"].map(String::from));
        names
    })
}

/// A body nested `depth` levels deep (the body's own object is level 1),
/// alternating objects and arrays.
fn nested(depth: usize) -> Value {
    let mut value = json!("leaf");
    for level in (2..=depth).rev() {
        value = if level % 2 == 0 {
            json!([value])
        } else {
            json!({ "n": value })
        };
    }
    json!({ "deep": value })
}

/// Depths around the nesting limit (`MAX_DOCUMENT_DEPTH`, 64 when this was
/// written) and from 100 to 200.
fn depth(arg: u8) -> usize {
    if arg < 128 {
        58 + usize::from(arg % 12)
    } else {
        100 + usize::from(arg - 128) * 100 / 127
    }
}

// --- Operations -----------------------------------------------------------

#[derive(Debug)]
enum Op {
    Put {
        collection: String,
        id: String,
        body: Value,
    },
    Cas {
        id: String,
        body: Value,
        expected: u64,
    },
    Delete {
        collection: String,
        id: String,
    },
    BlobPut {
        bytes: Vec<u8>,
        mime: Option<String>,
    },
    /// Deletes one of the blobs the store lists, picked by `pick`.
    BlobDelete {
        pick: u8,
    },
    Acquire {
        key: String,
        owner: String,
    },
    ReleaseAll {
        owner: String,
    },
    Compact,
}

/// Operation bytes below 0xC0 use plain names (`c`, `d0`..`d4`, `k0`..`k2`);
/// 0xC0..0xEF use the hostile ones.
fn decode(op: u8, arg: u8) -> Op {
    let id = format!("d{}", arg % 5);
    let c = || "c".to_string();
    let body = || json!({"owner": format!("o{}", arg % 3), "arg": arg});
    let h = |a: u8| hostile(a).to_string();
    if op >= 0xC0 {
        return match (op - 0xC0) % 8 {
            0 => Op::Put {
                collection: c(),
                id: h(arg),
                body: body(),
            },
            1 => Op::Put {
                collection: h(arg),
                id,
                body: body(),
            },
            2 => Op::Delete {
                collection: c(),
                id: h(arg),
            },
            3 => Op::Acquire {
                key: h(arg),
                owner: format!("run{}", arg % 2),
            },
            4 => Op::BlobPut {
                bytes: vec![arg; usize::from(arg % 7) * 100],
                mime: Some(h(arg)),
            },
            5 => Op::Put {
                collection: c(),
                id,
                body: nested(depth(arg)),
            },
            6 => Op::Put {
                collection: h(arg),
                id: h(arg.rotate_left(4)),
                body: json!({ "v": h(arg) }),
            },
            _ => Op::Put {
                collection: c(),
                id,
                body: json!({ "owner": h(arg), "frame": h(arg.rotate_left(4)), h(arg): 1 }),
            },
        };
    }
    match op % 9 {
        0 | 1 => Op::Put {
            collection: c(),
            id,
            body: body(),
        },
        2 => Op::Cas {
            id,
            body: json!({"cas": arg}),
            expected: u64::from(arg % 3),
        },
        3 => Op::Delete {
            collection: c(),
            id,
        },
        4 => Op::BlobPut {
            bytes: vec![arg; usize::from(arg % 7) * 100],
            mime: None,
        },
        5 => Op::BlobDelete { pick: arg },
        6 => Op::Acquire {
            key: format!("k{}", arg % 3),
            owner: format!("run{}", arg % 2),
        },
        7 => Op::ReleaseAll {
            owner: format!("run{}", arg % 2),
        },
        _ => Op::Compact,
    }
}

/// What the store holds, in the model's terms: every document of every
/// collection, every lease an operation can name, every blob.
fn observe(store: &LogStore) -> Model {
    let mut model = Model::default();
    for name in names() {
        let q = logstore::Query::new(name).order_by("id").limit(usize::MAX);
        let docs = match store.docs().query(&q) {
            Ok(docs) => docs,
            // A name the store refuses cannot hold documents.
            Err(Error::InvalidInput(_)) => continue,
            Err(e) => panic!("query {name:?}: {e}"),
        };
        for doc in docs {
            assert_eq!(&doc.collection, name);
            let got = store
                .docs()
                .get(name, &doc.id)
                .expect("get")
                .expect("a queried document");
            assert_eq!((got.version, &got.data), (doc.version, &doc.data));
            model.docs.insert(
                (name.clone(), doc.id),
                (doc.version, Value::Object(doc.data)),
            );
        }
    }
    for key in names() {
        match store.leases().get(key) {
            Ok(Some(row)) => {
                model.leases.insert(key.clone(), (row.owner, row.version));
            }
            // A key the store refuses cannot hold a lease.
            Ok(None) | Err(Error::InvalidInput(_)) => {}
            Err(e) => panic!("lease {key:?}: {e}"),
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
        model.blobs.push((bytes, meta.mime));
    }
    model.blobs.sort();
    model
}

/// The model after `op`; `blob` is the content the store chose to delete
/// (for a blob delete).
fn expected(model: &Model, op: &Op, blob: Option<&(Vec<u8>, String)>) -> Model {
    let mut next = model.clone();
    match op {
        Op::Put {
            collection,
            id,
            body,
        } => {
            let key = (collection.clone(), id.clone());
            let version = model.docs.get(&key).map_or(1, |(v, _)| v + 1);
            next.docs.insert(key, (version, body.clone()));
        }
        Op::Cas { id, body, expected } => {
            let key = ("c".to_string(), id.clone());
            if model.docs.get(&key).is_some_and(|(v, _)| v == expected) {
                next.docs.insert(key, (expected + 1, body.clone()));
            }
        }
        Op::Delete { collection, id } => {
            next.docs.remove(&(collection.clone(), id.clone()));
        }
        Op::BlobPut { bytes, mime } => {
            let mime = mime.clone().unwrap_or_else(|| DEFAULT_MIME.to_string());
            next.blobs.push((bytes.clone(), mime));
            next.blobs.sort();
        }
        Op::BlobDelete { .. } => {
            if let Some(at) = blob.and_then(|b| next.blobs.iter().position(|x| x == b)) {
                next.blobs.remove(at);
            }
        }
        Op::Acquire { key, owner } => match model.leases.get(key) {
            Some((holder, _)) if holder != owner => {}
            current => {
                let version = current.map_or(1, |(_, v)| v + 1);
                next.leases.insert(key.clone(), (owner.clone(), version));
            }
        },
        Op::ReleaseAll { owner } => next.leases.retain(|_, (o, _)| o != owner),
        Op::Compact => {}
    }
    next
}

/// How an operation ended.
enum Outcome {
    /// Done, and its result matched the model.
    Done,
    /// Refused as invalid input: nothing changed.
    Refused,
    /// Failed otherwise (an injected fault): it may or may not have
    /// happened.
    Failed,
}

fn outcome<T>(result: logstore::Result<T>, check: impl FnOnce(T)) -> Outcome {
    match result {
        Ok(value) => {
            check(value);
            Outcome::Done
        }
        Err(Error::InvalidInput(_)) => Outcome::Refused,
        Err(_) => Outcome::Failed,
    }
}

/// Runs `op` on the store and checks its result against the model.
/// Returns how it ended, and the blob content a blob delete chose.
fn step(store: &LogStore, model: &Model, op: &Op) -> (Outcome, Option<(Vec<u8>, String)>) {
    let d = store.docs();
    let after = expected(model, op, None);
    let ended = match op {
        Op::Put {
            collection,
            id,
            body,
        } => {
            let key = (collection.clone(), id.clone());
            let ended = outcome(d.put(collection, id, body.clone(), None), |row| {
                assert_eq!(
                    row.map(|r| r.version),
                    after.docs.get(&key).map(|(v, _)| *v)
                );
            });
            if matches!(ended, Outcome::Done) {
                // An acknowledged write reads back at once.
                let got = d.get(collection, id).expect("get").expect("written");
                assert_eq!(
                    Some(&(got.version, Value::Object(got.data))),
                    after.docs.get(&key)
                );
            }
            ended
        }
        Op::Cas { id, body, expected } => {
            let key = ("c".to_string(), id.clone());
            let won = after.docs.get(&key) != model.docs.get(&key);
            outcome(d.put("c", id, body.clone(), Some(*expected)), |row| {
                assert_eq!(row.is_some(), won);
            })
        }
        Op::Delete { collection, id } => {
            let existed = model.docs.contains_key(&(collection.clone(), id.clone()));
            outcome(d.delete(collection, id), |found| assert_eq!(found, existed))
        }
        Op::BlobPut { bytes, mime } => {
            let opts = BlobPut {
                mime: mime.clone(),
                ..Default::default()
            };
            let ended = outcome(store.blobs().put(&mut Cursor::new(bytes), opts), |meta| {
                assert_eq!(meta.size, bytes.len() as u64);
                if let Some(mime) = mime {
                    assert_eq!(&meta.mime, mime);
                }
            });
            return (ended, None);
        }
        Op::BlobDelete { pick } => {
            let all = BlobList {
                limit: Some(usize::MAX),
                ..Default::default()
            };
            let mut metas = store.blobs().list(&all).expect("list");
            if metas.is_empty() {
                return (Outcome::Done, None);
            }
            metas.sort_by(|a, b| a.id.cmp(&b.id));
            let meta = &metas[usize::from(*pick) % metas.len()];
            let (_, mut reader) = store.blobs().get(&meta.id).expect("get").expect("listed");
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut reader, &mut bytes).expect("read");
            let ended = outcome(store.blobs().delete(&meta.id), |_| {});
            return (ended, Some((bytes, meta.mime.clone())));
        }
        Op::Acquire { key, owner } => {
            outcome(store.leases().acquire(key, owner, 1_000), |acq| match acq {
                Acquire::Acquired(row) => {
                    assert_eq!(Some(row.version), after.leases.get(key).map(|(_, v)| *v));
                }
                Acquire::Held { owner, .. } => {
                    assert_eq!(Some(&owner), model.leases.get(key).map(|(o, _)| o));
                }
            })
        }
        Op::ReleaseAll { owner } => outcome(store.leases().release_all(owner), |n| {
            assert_eq!(n as usize, model.leases.len() - after.leases.len());
        }),
        Op::Compact => outcome(store.compact(), |_| {}),
    };
    (ended, None)
}

/// Runs one input: pairs of bytes are operations; an operation byte of
/// 0xF0 or more reopens the store, first arming a fault after `arg` I/O
/// calls when it is 0xF8 or more. Every reopen must find the model's
/// state; after a fault, the state before or after the operation, and a
/// clean integrity check.
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
        let op = decode(op, arg);
        let (ended, blob) = step(&store, &model, &op);
        let after = expected(&model, &op, blob.as_ref());
        match ended {
            Outcome::Done => {
                model = after;
                continue;
            }
            Outcome::Refused => continue,
            Outcome::Failed => {}
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
            "after a fault during {op:?} the state is neither before nor after:\n\
             before {model:?}\nafter {after:?}\nfound {found:?}"
        );
        model = found;
    }
    // The end of the input is a crash too: whatever was acknowledged
    // survives a reopen of the files as they are.
    drop(store);
    fs.heal();
    let store = open(&fs, &clock);
    assert_eq!(observe(&store), model, "reopen changed the state");
}
