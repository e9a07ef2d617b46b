//! Fuzz harness `recover`: damaged files of a store. Two families of
//! damage:
//!
//! - arbitrary bytes as a segment, the index snapshot or the manifest
//!   (replaced, appended, XORed);
//! - the shapes the fault model allows in the newest segment (FORMAT.md,
//!   "The fault model"): each 4096-byte page independently new, reverted
//!   to its bytes at an earlier sync, or zeroed; a page torn at 512-byte
//!   sectors; junk written after the log's end or the file's end; a frame
//!   declaring a huge length (with a header checksum that verifies under
//!   the segment's salt, or not); the tail of the segment header zeroed.
//!
//! Open must return a store or a clean error: never panic, hang, or
//! allocate without bound. A read-only open of the same files first must
//! change no byte of them and, when both open, serve the same state as
//! the writable open. Once a store opens, recovery must be
//! idempotent: a second open succeeds, cuts nothing more and finds the
//! same documents, leases and blobs. For the fault-model shapes the
//! integrity check of the reopened store must find nothing wrong with the
//! rows it kept. Then the store must answer reads, take a write and
//! compact. Shared by the fuzz target and the corpus replay in
//! `cargo test`.

use std::path::Path;
use std::sync::Arc;

use logstore::io::{MemFs, Vfs};
use logstore::{BlobList, Durability, LogStore, Options, Query, Store};

const PAGE: usize = 4096;
const SECTOR: usize = 512;

fn opts(segment_bytes: u64) -> Options {
    Options {
        durability: Durability::Flush,
        auto_compact: false,
        segment_bytes,
        ..Options::default()
    }
}

/// The small store's only segment.
const SEGMENT: &str = "db/00000000000000000001.seg";
/// Segment size of the store the fault-model shapes damage: large enough
/// for a newest segment of several pages.
const BIG_SEGMENT: u64 = 64 * 1024;

fn open(fs: &MemFs, segment_bytes: u64) -> logstore::Result<LogStore> {
    LogStore::open_with_fs(Arc::new(fs.clone()), Path::new("db"), opts(segment_bytes))
}

/// A small real store, so mutations start from valid files.
fn base_store(fs: &MemFs) {
    let store = open(fs, 4096).expect("base store");
    let d = store.docs();
    d.ensure_collection("c", &["owner"]).expect("ensure");
    for i in 0..3 {
        let body = serde_json::json!({"owner": format!("o{i}"), "n": i});
        d.put("c", &format!("d{i}"), body, None).expect("put");
    }
    store.leases().acquire("k", "run", 1000).expect("lease");
    store.close().expect("close");
}

/// The newest segment of the store in `fs`.
fn newest_segment(fs: &MemFs) -> String {
    let mut segs: Vec<String> = fs
        .list(Path::new("db"))
        .expect("list")
        .into_iter()
        .filter(|n| n.ends_with(".seg"))
        .collect();
    segs.sort();
    format!("db/{}", segs.last().expect("a segment"))
}

/// A store whose newest segment spans several pages. Returns that
/// segment's path, its bytes at an earlier point ("old": what a page
/// reverts to) and its bytes at close ("new").
fn paged_store(fs: &MemFs) -> (String, Vec<u8>, Vec<u8>) {
    let store = open(fs, BIG_SEGMENT).expect("paged store");
    let d = store.docs();
    d.ensure_collection("c", &["owner"]).expect("ensure");
    let pad = "p".repeat(150);
    for i in 0..24 {
        let body = serde_json::json!({"owner": format!("o{}", i % 4), "n": i, "pad": pad});
        d.put("c", &format!("d{}", i % 16), body, None)
            .expect("put");
    }
    store.leases().acquire("k", "run", 1000).expect("lease");
    let path = newest_segment(fs);
    let old = fs.file(Path::new(&path)).expect("segment").contents();
    for i in 0..24 {
        let body = serde_json::json!({"owner": format!("o{}", i % 3), "m": i, "pad": pad});
        d.put("c", &format!("d{}", i % 20), body, None)
            .expect("put");
        if i % 5 == 0 {
            d.delete("c", &format!("d{}", i / 2)).expect("delete");
        }
    }
    store.leases().acquire("k2", "run", 1000).expect("lease");
    store.close().expect("close");
    // The power loss comes before close wrote the index snapshot: with
    // `Durability::Flush` nothing after the segment's header was synced,
    // so every shape below is one a power loss may leave (a snapshot
    // would make the damaged frames bit rot under synced data instead).
    let _ = fs.remove(Path::new("db/SNAPSHOT"));
    assert_eq!(
        newest_segment(fs),
        path,
        "the paged store stays in one segment"
    );
    let new = fs.file(Path::new(&path)).expect("segment").contents();
    (path, old, new)
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

/// Reads fuzzer bytes one at a time, zeros once they run out.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.next(), self.next(), self.next(), self.next()])
    }
}

/// Byte `i` of `bytes`, or zero past its end.
fn at(bytes: &[u8], i: usize) -> u8 {
    bytes.get(i).copied().unwrap_or(0)
}

/// Offset just after the last non-zero byte: where the log ends, or near.
fn log_end(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1)
}

/// Frame starts of a format-2 segment, following length fields without
/// checking checksums.
fn frame_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut off = 24;
    while off + 12 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        starts.push(off);
        off += 12 + len;
    }
    starts.push(off.min(bytes.len()));
    starts
}

/// `masked_crc` as FORMAT.md ("Conventions") defines it.
fn masked_crc(parts: &[&[u8]]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    parts.iter().for_each(|p| hasher.update(p));
    hasher.finalize().rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Applies one fault-model shape to the newest segment of the paged store.
fn fault_shape(fs: &MemFs, shape: u8, input: &[u8]) {
    let (path, old, new) = paged_store(fs);
    let mut input = Bytes(input);
    let mut bytes = new.clone();
    match shape % 6 {
        0 => {
            // Each page new, old or zeros, independently; the length the
            // old or the new one.
            if input.next() % 2 == 1 {
                bytes.resize(old.len(), 0);
            }
            for (page, chunk) in bytes.chunks_mut(PAGE).enumerate() {
                let base = page * PAGE;
                match input.next() % 4 {
                    0 => {}
                    1 => chunk
                        .iter_mut()
                        .enumerate()
                        .for_each(|(i, b)| *b = at(&old, base + i)),
                    2 => chunk.fill(0),
                    _ => {
                        // Torn at sector boundaries: each sector new, old
                        // or zeros.
                        for (s, sector) in chunk.chunks_mut(SECTOR).enumerate() {
                            let from = base + s * SECTOR;
                            match input.next() % 3 {
                                0 => {}
                                1 => sector
                                    .iter_mut()
                                    .enumerate()
                                    .for_each(|(i, b)| *b = at(&old, from + i)),
                                _ => sector.fill(0),
                            }
                        }
                    }
                }
            }
        }
        1 => {
            // One sector of the page holding the log's end torn: old or
            // zeros, the rest of the file new.
            let end = log_end(&new).max(1) - 1;
            let pages = bytes.len().div_ceil(PAGE).max(1);
            let page = match input.next() % 2 {
                0 => end / PAGE,
                _ => usize::from(input.next()) % pages,
            };
            let sector = usize::from(input.next() % 8);
            let from = (page * PAGE + sector * SECTOR).min(bytes.len());
            let to = (from + SECTOR).min(bytes.len());
            let zero = input.next() % 2 == 1;
            for (i, b) in bytes[from..to].iter_mut().enumerate() {
                *b = if zero { 0 } else { at(&old, from + i) };
            }
        }
        2 => {
            // Junk after the log's end (at a gap the input picks), or after
            // the file's end.
            let junk: Vec<u8> = input.0.iter().skip(2).copied().collect();
            let (a, b) = (input.next(), input.next());
            let at_end = a % 2 == 1;
            let from = if at_end {
                bytes.len()
            } else {
                log_end(&bytes) + usize::from(b) * 8
            };
            if bytes.len() < from + junk.len() {
                bytes.resize(from + junk.len(), 0);
            }
            bytes[from..from + junk.len()].copy_from_slice(&junk);
        }
        3 => {
            // A huge declared length at a frame start or at the log's end.
            let starts = frame_starts(&bytes);
            let off = starts[usize::from(input.next()) % starts.len()];
            let huge = [
                u32::MAX,
                0x2000_0000 + 0x2_0000, // MAX_PAYLOAD_LEN
                0x2000_0000 + 0x2_0001,
                0x8000_0000,
                1 << 20, // WINDOW
                (1 << 20) + 1,
                BIG_SEGMENT as u32,
                input.u32(),
            ][usize::from(input.next() % 8)];
            if bytes.len() < off + 12 {
                bytes.resize(off + 12, 0);
            }
            let len = huge.to_le_bytes();
            bytes[off..off + 4].copy_from_slice(&len);
            if input.next() % 2 == 1 {
                // A header checksum that verifies under the real salt: only
                // the length, checked against what remains, stops it.
                let salt: [u8; 4] = bytes[16..20].try_into().unwrap();
                let crc = masked_crc(&[&salt, &(off as u64).to_le_bytes(), &len]);
                bytes[off + 4..off + 8].copy_from_slice(&crc.to_le_bytes());
            }
        }
        4 => {
            // The segment header's tail zeroed, the rest kept or cut.
            let from = usize::from(input.next() % 24);
            bytes[from..24].fill(0);
            match input.next() % 3 {
                0 => {}
                1 => bytes.truncate(24),
                _ => bytes[24..].fill(0),
            }
        }
        _ => {
            // Arbitrary bytes written over the newest segment at an offset
            // the input picks.
            let off = usize::from(input.next()) << 4 | usize::from(input.next() >> 4);
            let patch = input.0;
            if bytes.len() < off + patch.len() {
                bytes.resize(off + patch.len(), 0);
            }
            bytes[off..off + patch.len()].copy_from_slice(patch);
        }
    }
    replace(fs, &path, &bytes);
}

/// Everything the store answers: documents of every collection, the
/// leases the base stores took, blob metadata.
fn state(store: &LogStore) -> String {
    let mut out = String::new();
    if let Ok(cols) = store.docs().list_collections() {
        for col in cols {
            out += &format!("{col:?}\n");
            let q = Query::new(&col.name).order_by("id").limit(usize::MAX);
            out += &format!("{:?}\n", store.docs().query(&q).map_err(|e| e.to_string()));
        }
    }
    for key in ["k", "k2"] {
        out += &format!("{:?}\n", store.leases().get(key).map_err(|e| e.to_string()));
    }
    let all = BlobList {
        limit: Some(usize::MAX),
        ..Default::default()
    };
    out += &format!(
        "{:?}\n",
        store.blobs().list(&all).map_err(|e| e.to_string())
    );
    out
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let fs = MemFs::new();
    let fault_model = mode % 12 >= 6;
    let segment_bytes = if fault_model {
        fault_shape(&fs, mode % 12 - 6, rest);
        BIG_SEGMENT
    } else {
        base_store(&fs);
        match mode % 12 {
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
        4096
    };
    let before = fs.snapshot();
    let read_only = LogStore::open_read_only_with_fs(
        Arc::new(fs.clone()),
        Path::new("db"),
        opts(segment_bytes),
    );
    let seen = read_only.as_ref().ok().map(state);
    drop(read_only);
    assert!(
        fs.snapshot() == before,
        "a read-only open changed the files"
    );
    let Ok(store) = open(&fs, segment_bytes) else {
        assert!(
            seen.is_none(),
            "a read-only open read a store a writable open refuses"
        );
        return;
    };
    if let Some(seen) = seen {
        assert_eq!(
            seen,
            state(&store),
            "the read-only view differs from the writable open"
        );
    }
    // Recovery is idempotent: open again, nothing more is cut and the
    // state is the same.
    let first = state(&store);
    drop(store);
    let store = match open(&fs, segment_bytes) {
        Ok(store) => store,
        Err(e) => panic!("a store that opened once does not open again: {e}"),
    };
    assert_eq!(
        store.recovery_report().truncated,
        None,
        "a second open cut the log again"
    );
    assert_eq!(state(&store), first, "a second open found another state");
    let report = store.verify();
    if fault_model {
        let report = report.expect("verify");
        assert!(
            report.is_clean(),
            "recovery kept rows the integrity check calls damaged: {:?}",
            report.problems
        );
    }
    if let Ok(cols) = store.docs().list_collections() {
        for col in cols {
            for field in &col.indexes {
                let _ = store.docs().query(&Query::new(&col.name).order_by(field));
            }
        }
    }
    let _ = store
        .docs()
        .put("c", "after", serde_json::json!({"owner": "z"}), None);
    let _ = store.compact();
}
