//! Attacker-chosen bytes, in the fault model of TESTING.md: a document id,
//! collection name, lease key or blob mime type holding a complete valid
//! frame, followed by a torn append, still opens, to the state before the
//! torn write; and documents whose ids hold valid frames survive every
//! power-loss image.

mod common;

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;

use common::crash::{check_images, dir, short, Rig, ASCII_TIME};
use common::power_fs::PowerFs;
use common::{keys, test_opts as opts};
use logstore::io::{MemFs, VFile, Vfs};
use logstore::{BlobPut, Durability, LogStore, ManualClock, Store};
use serde_json::json;

/// `masked_crc` of FORMAT.md.
fn masked_crc(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
        .rotate_right(15)
        .wrapping_add(0xa282_ead8)
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// A `KIND_DOC_PUT` frame as FORMAT.md describes it.
fn doc_put_frame(collection: &str, id: &str, body: &[u8]) -> Vec<u8> {
    let mut payload = vec![2u8];
    put_bytes(&mut payload, collection.as_bytes());
    put_bytes(&mut payload, id.as_bytes());
    payload.extend_from_slice(&1u64.to_le_bytes());
    payload.extend_from_slice(&ASCII_TIME.to_le_bytes());
    payload.extend_from_slice(&ASCII_TIME.to_le_bytes());
    put_bytes(&mut payload, body);
    let len = (payload.len() as u32).to_le_bytes();
    let mut checked = len.to_vec();
    checked.extend_from_slice(&payload);
    let mut frame = len.to_vec();
    frame.extend_from_slice(&masked_crc(&checked).to_le_bytes());
    frame.extend_from_slice(&payload);
    frame
}

/// A frame of the documented format whose every byte is valid UTF-8 (the
/// body is varied until the checksum is), so it can be a string.
fn documented_frame(seed: u64) -> String {
    (seed..)
        .find_map(|n| {
            String::from_utf8(doc_put_frame("c", "x", format!("{{\"a\":{n}}}").as_bytes())).ok()
        })
        .expect("some body gives a UTF-8 frame")
}

fn newest_segment(mem: &MemFs) -> PathBuf {
    let names = mem.list(dir()).unwrap();
    let newest = names
        .iter()
        .filter(|n| n.ends_with(".seg"))
        .max()
        .expect("a segment");
    dir().join(newest)
}

/// A frame as the engine itself wrote it (whatever its format is today),
/// taken from a scratch store, whose bytes are valid UTF-8; `None` if no
/// such frame turns up.
fn engine_frame() -> Option<String> {
    let mem = MemFs::new();
    let clock = Arc::new(ManualClock::new(ASCII_TIME));
    let store = LogStore::open_with_fs(
        Arc::new(mem.clone()),
        dir(),
        opts(&clock, Durability::Flush, 64 << 20),
    )
    .unwrap();
    store.docs().ensure_collection("c", &[]).unwrap();
    let segment = newest_segment(&mem);
    for n in 0..4000 {
        let start = common::log_end(&mem.file(&segment).unwrap().contents()) as usize;
        store.docs().put("c", "x", json!({"a": n}), None).unwrap();
        let bytes = mem.file(&segment).unwrap().contents();
        let end = common::log_end(&bytes) as usize;
        if let Ok(frame) = String::from_utf8(bytes[start..end].to_vec()) {
            return Some(frame);
        }
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// Which string of a record carries the crafted bytes.
#[derive(Debug, Clone, Copy)]
enum Carrier {
    DocumentId,
    CollectionName,
    LeaseKey,
    BlobMime,
}

fn carry(store: &LogStore, carrier: Carrier, text: &str) -> logstore::Result<()> {
    match carrier {
        Carrier::DocumentId => store
            .docs()
            .put("c", text, json!({"owner": "o"}), None)
            .map(drop),
        Carrier::CollectionName => store.docs().ensure_collection(text, &["owner"]),
        Carrier::LeaseKey => store.leases().acquire(text, "run1", 1_000).map(drop),
        Carrier::BlobMime => store
            .blobs()
            .put(
                &mut Cursor::new(b"crafted".to_vec()),
                BlobPut {
                    mime: Some(text.to_string()),
                    owner_id: None,
                },
            )
            .map(drop),
    }
}

/// A store whose newest record carries `text` (a frame followed by
/// padding), with `filler` bytes of padding in the record before it:
/// a copy of its files taken before close, the state before the crafted
/// write, and where the carried frame ends in the newest segment.
fn crafted_store(
    carrier: Carrier,
    frame: &str,
    filler: usize,
) -> (MemFs, String, usize, usize, Vec<String>) {
    let mem = MemFs::new();
    let clock = Arc::new(ManualClock::new(1_000));
    let store = LogStore::open_with_fs(
        Arc::new(mem.clone()),
        dir(),
        opts(&clock, Durability::Flush, 64 << 20),
    )
    .unwrap();
    store.docs().ensure_collection("c", &["owner"]).unwrap();
    store
        .docs()
        .put("c", "filler", json!({"pad": "f".repeat(filler)}), None)
        .unwrap();
    let text = format!("{frame}{}", "y".repeat(100));
    let mut lease_keys = keys();
    lease_keys.push(text.clone());
    let before = common::dump(&store, &lease_keys);
    carry(&store, carrier, &text).unwrap();
    let copy = mem.deep_copy();
    drop(store);
    let bytes = copy.file(&newest_segment(&copy)).unwrap().contents();
    let frame_end = find(&bytes, frame.as_bytes()).expect("the frame is in the log") + frame.len();
    let record_end = common::log_end(&bytes) as usize;
    (copy, before, frame_end, record_end, lease_keys)
}

/// The crafted record is torn right after the frame it carries (at a sector
/// boundary: the padding before it is chosen so), the rest of it zeros, as
/// a power loss can leave it. The store must open, at the state before the
/// torn write, and take writes after it.
fn torn_after_embedded_frame(carrier: Carrier, frame: &str) -> Result<(), String> {
    let (_, _, frame_end, _, _) = crafted_store(carrier, frame, 10);
    let filler = 10 + (512 - frame_end % 512) % 512;
    let (copy, before, frame_end, record_end, lease_keys) = crafted_store(carrier, frame, filler);
    assert_eq!(frame_end % 512, 0, "the frame ends at a sector boundary");
    assert!(record_end > frame_end);
    let segment = newest_segment(&copy);
    let file = copy.file(&segment).unwrap();
    file.write_all_at(&vec![0; record_end - frame_end], frame_end as u64)
        .unwrap();
    let clock = Arc::new(ManualClock::new(2_000));
    let options = opts(&clock, Durability::Sync, 64 << 20);
    let store = LogStore::open_with_fs(Arc::new(copy.clone()), dir(), options.clone())
        .map_err(|e| format!("does not open: {e}"))?;
    let state = common::dump(&store, &lease_keys);
    if state != before {
        return Err(format!(
            "opens at a state that is not the one before the torn write: {}",
            short(&state)
        ));
    }
    store
        .docs()
        .put("c", "after", json!({"owner": "o"}), None)
        .map_err(|e| format!("a write after the open fails: {e}"))?;
    drop(store);
    let store = LogStore::open_with_fs(Arc::new(copy), dir(), options)
        .map_err(|e| format!("the second open fails: {e}"))?;
    if store.docs().get("c", "after").unwrap().is_none() {
        return Err("the write after the open is lost".into());
    }
    Ok(())
}

#[test]
fn strings_holding_a_valid_frame_then_a_torn_append_still_open() {
    let mut frames = vec![("documented-format", documented_frame(0))];
    match engine_frame() {
        Some(frame) => frames.push(("engine-written", frame)),
        None => eprintln!("no frame the engine wrote was valid UTF-8; tested the documented one"),
    }
    let mut failures = Vec::new();
    for (origin, frame) in &frames {
        for carrier in [
            Carrier::DocumentId,
            Carrier::CollectionName,
            Carrier::LeaseKey,
            Carrier::BlobMime,
        ] {
            if let Err(why) = torn_after_embedded_frame(carrier, frame) {
                failures.push(format!("a {origin} frame in a {carrier:?}: {why}"));
            }
        }
    }
    common::assert_no_failures("crafted strings", &failures);
}

type Step = Box<dyn Fn(&LogStore) -> logstore::Result<()>>;

/// Documents whose ids hold valid frames, written with `Durability::Sync`
/// over the power-loss simulator: every crash image opens, keeps every
/// acknowledged write, and is the model after a prefix of the history.
#[test]
fn crafted_ids_survive_every_power_loss_image() {
    let rig = Rig::new(PowerFs::new(), Durability::Sync, 4096);
    let store = rig.open();
    let mut steps: Vec<Step> = vec![Box::new(|s| s.docs().ensure_collection("c", &["owner"]))];
    for i in 0..12u64 {
        let frame = documented_frame(i * 1000);
        let id = format!(
            "{}{frame}{}",
            "i".repeat((i as usize * 37) % 200),
            "z".repeat(300)
        );
        steps.push(Box::new(move |s| {
            s.docs()
                .put(
                    "c",
                    &id,
                    json!({"owner": "o", "pad": "p".repeat(100)}),
                    None,
                )
                .map(drop)
        }));
    }
    let history = rig.run(&store, steps.len(), |s, i| steps[i](s));
    rig.fs.capture_now();
    drop(store);
    let images = rig.fs.take_labelled_images();
    let last = history.len() - 1;
    let failures = check_images(&images, &rig.options, &history, |acked| {
        acked..=(acked + 1).min(last)
    });
    eprintln!("{} images", images.len());
    assert!(images.len() > 50, "{} images", images.len());
    common::assert_no_failures("crafted ids over power-loss images", &failures);
}
