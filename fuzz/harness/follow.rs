//! Fuzz harness `follow`: a read-only handle catching up with a writer
//! over torn and damaged tails. A writer and a reader share one `MemFs`
//! (both on `db`); the input drives a sequence of:
//!
//! - the writer's operations: document puts, deletes and patches, a new
//!   index (a backfill), blob puts and deletes, a lease acquire, a
//!   compaction, and a restart (the process dies; its files are what the
//!   page cache held, and a new writer opens them);
//! - damage to the writer's newest segment past the end of its last
//!   record: bytes of the input, a valid frame copied from elsewhere (it
//!   does not verify at another offset or under another salt), a frame
//!   header that verifies with no payload behind it (its length perhaps
//!   past the file's end), and a frame that verifies under the segment's
//!   salt at its offset but does not decode (what only a writer, one with
//!   a bug, could write there);
//! - a write in progress: the writer's put done, then all of its record
//!   but a prefix zeroed again, or, when the put rolled to a new segment,
//!   all of that segment's header but a prefix (a roll in progress); the
//!   put is not acknowledged while torn;
//! - the damage removed (the bytes put back as the writer wrote them);
//! - the reader refreshing, or opening anew.
//!
//! A writer's operation first removes any damage (it writes only at its
//! own end; a real writer's next write is what the damage stood for). A
//! restart keeps the damage, as a crash would, but for the frame that
//! verifies (no crash writes one), and a write in progress then is lost.
//!
//! Invariants:
//! - Between two refreshes the reader's view does not change.
//! - A refresh succeeds whatever lies past the writer's end, except a
//!   frame right at the end that verifies but does not decode: then it
//!   fails with `Corruption`, and the view stays a state the writer had.
//! - After a refresh that succeeds the reader equals the writer's state
//!   with every acknowledged operation: the current one, or the one before
//!   a write in progress. So it never goes backwards. (With one thread the
//!   writer is idle during a refresh, so "a prefix, at least everything
//!   acknowledged before the refresh began" is exactly that.)
//! - After an error, the view is one of the writer's states at or after
//!   the reader's previous one.
//! - A reader whose view is the writer's current state verifies clean,
//!   unless a frame that verifies lies past the writer's end after one that
//!   does not (damage with a record after it): then `verify` names the cut
//!   the next writable open makes there, and nothing else.
//! - A restarted writer equals the state before the crash (less a write
//!   in progress).
//! - With the damage removed, a refresh catches up with the writer
//!   (checked at the end of every input too).
//!
//! Shared by the fuzz target and the corpus replay in `cargo test`.

use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use logstore::io::{MemFile, MemFs, VFile, Vfs};
use logstore::{
    BlobList, BlobPut, Durability, Error, LogStore, ManualClock, Options, Query, Store,
};
use serde_json::json;

/// At most this many operations per input.
const MAX_OPS: usize = 120;
/// The length of a segment header; frames start after it.
const HEADER: usize = 24;
/// A format-2 frame header: length, header checksum, checksum.
const FRAME_HEADER: usize = 12;
const LEASE_KEYS: [&str; 2] = ["k0", "k1"];
/// The record kind of padding frames (FORMAT.md, "Kind 10").
const PAD: u8 = 10;

fn dir() -> &'static Path {
    Path::new("db")
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

    fn take(&mut self, n: usize) -> &[u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `masked_crc` as FORMAT.md ("Conventions") defines it.
fn masked_crc(parts: &[&[u8]]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    parts.iter().for_each(|p| hasher.update(p));
    hasher.finalize().rotate_right(15).wrapping_add(0xa282_ead8)
}

/// A format-2 frame of `payload` at `offset` under `salt`.
fn frame(salt: &[u8], offset: u64, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_le_bytes();
    let offset = offset.to_le_bytes();
    let mut out = Vec::with_capacity(FRAME_HEADER + payload.len());
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&[salt, &offset, &len]).to_le_bytes());
    out.extend_from_slice(&masked_crc(&[salt, &offset, &len, payload]).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The frames of a segment's bytes, as (start, length with header),
/// following length fields from the header on, and where they end: the
/// end of the log when nothing past it is damaged (zeros follow, or the
/// file's end).
fn frames(bytes: &[u8]) -> (Vec<(usize, usize)>, usize) {
    let mut out = Vec::new();
    let mut at = HEADER;
    while at + FRAME_HEADER <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 || at + FRAME_HEADER + len > bytes.len() {
            break;
        }
        out.push((at, FRAME_HEADER + len));
        at += FRAME_HEADER + len;
    }
    (out, at.min(bytes.len()))
}

fn segment_id(name: &str) -> Option<u32> {
    let digits = name.strip_suffix(".seg")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse::<u64>().ok())
        .flatten()
        .and_then(|id| u32::try_from(id).ok())
}

fn segment_path(id: u32) -> PathBuf {
    dir().join(format!("{id:020}.seg"))
}

/// The segments of the store, in id order.
fn segments(fs: &MemFs) -> Vec<u32> {
    let mut ids: Vec<u32> = fs
        .list(dir())
        .expect("list")
        .iter()
        .filter_map(|n| segment_id(n))
        .collect();
    ids.sort_unstable();
    ids
}

/// The compaction outputs the manifest lists (FORMAT.md, "The manifest").
fn manifest_base(fs: &MemFs) -> BTreeSet<u32> {
    let Some(file) = fs.file(&dir().join("MANIFEST")) else {
        return BTreeSet::new();
    };
    let bytes = file.contents();
    let n = bytes
        .get(16..20)
        .map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap()) as usize);
    (0..n)
        .filter_map(|i| bytes.get(20 + 4 * i..24 + 4 * i))
        .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// The writer's newest segment: the highest id that is not a compaction
/// output (those take ids above the writer's segment of the moment).
fn active_segment(fs: &MemFs) -> u32 {
    let base = manifest_base(fs);
    segments(fs)
        .into_iter()
        .filter(|id| !base.contains(id))
        .max()
        .expect("the writer has a segment")
}

/// Everything the test compares, cheap to build: every document of every
/// collection, blob metadata, leases.
fn dump(store: &LogStore) -> String {
    let mut out = String::new();
    let d = store.docs();
    for col in d.list_collections().expect("collections") {
        out += &format!("{col:?}\n");
        let q = Query::new(&col.name).order_by("id").limit(usize::MAX);
        out += &format!("{:?}\n", d.query(&q).expect("query"));
        for field in &col.indexes {
            let q = Query::new(&col.name).order_by(field).limit(usize::MAX);
            let ids: Vec<String> = d
                .query(&q)
                .expect("query")
                .into_iter()
                .map(|r| r.id)
                .collect();
            out += &format!("{field}: {ids:?}\n");
        }
    }
    let all = BlobList {
        limit: Some(usize::MAX),
        ..Default::default()
    };
    out += &format!("{:?}\n", store.blobs().list(&all).expect("blobs"));
    for key in LEASE_KEYS {
        out += &format!("{key}: {:?}\n", store.leases().get(key).expect("lease"));
    }
    out
}

/// Damage in place, and how to take it back.
struct Damage {
    /// The writer's newest segment and its bytes as the writer left them.
    segment: PathBuf,
    original: Vec<u8>,
    /// Where the writer's records end in it.
    end: usize,
    /// The writer's last operation is torn (a write in progress).
    torn: bool,
    /// Torn in the header of the segment it rolled to.
    header_torn: bool,
}

struct Run {
    fs: MemFs,
    clock: Arc<ManualClock>,
    options: Options,
    writer: LogStore,
    reader: LogStore,
    /// The writer's state after each operation that changed it.
    history: Vec<String>,
    /// The reader's view: its dump and the history entry it equals.
    view: String,
    at: usize,
    /// The last refresh failed: the view is a prefix of the log, but may
    /// hold records past the handle's position until the next refresh
    /// rebuilds it (`LogStore::refresh`, "Errors"), which `verify` would
    /// report.
    failed: bool,
    damage: Option<Damage>,
    blobs: Vec<String>,
    indexed_j: bool,
    n: u64,
}

impl Run {
    fn new(options: Options, clock: Arc<ManualClock>) -> Run {
        let fs = MemFs::new();
        let writer =
            LogStore::open_with_fs(Arc::new(fs.clone()), dir(), options.clone()).expect("open");
        writer
            .docs()
            .ensure_collection("c", &["k"])
            .expect("ensure");
        let reader = LogStore::open_read_only_with_fs(Arc::new(fs.clone()), dir(), options.clone())
            .expect("a read-only open of a new store");
        let state = dump(&writer);
        assert_eq!(dump(&reader), state, "a new reader differs from the writer");
        Run {
            fs,
            clock,
            options,
            writer,
            reader,
            history: vec![state.clone()],
            view: state,
            at: 0,
            failed: false,
            damage: None,
            blobs: Vec::new(),
            indexed_j: false,
            n: 0,
        }
    }

    /// The writer's state with every acknowledged operation.
    fn acknowledged(&self) -> usize {
        let torn = self.damage.as_ref().is_some_and(|d| d.torn);
        self.history.len() - 1 - usize::from(torn)
    }

    fn record(&mut self) {
        let state = dump(&self.writer);
        if self.history.last() != Some(&state) {
            self.history.push(state);
        }
    }

    /// Puts the damaged bytes back as the writer wrote them.
    fn restore(&mut self) {
        let Some(damage) = self.damage.take() else {
            return;
        };
        let file = self.fs.file(&damage.segment).expect("damaged segment");
        file.set_len(damage.original.len() as u64).expect("set_len");
        file.write_all_at(&damage.original, 0).expect("write");
    }

    /// Starts damage on the writer's newest segment (or adds to it);
    /// returns the segment's file, its bytes as the writer wrote them and
    /// the end of its records.
    fn damage(&mut self) -> (Arc<MemFile>, Vec<u8>, usize) {
        if self.damage.is_none() {
            let segment = segment_path(active_segment(&self.fs));
            let original = self.fs.file(&segment).expect("segment").contents();
            let end = frames(&original).1;
            self.damage = Some(Damage {
                segment,
                original,
                end,
                header_torn: false,
                torn: false,
            });
        }
        let damage = self.damage.as_ref().unwrap();
        let file = self.fs.file(&damage.segment).expect("segment");
        (file, damage.original.clone(), damage.end)
    }

    /// One of the writer's operations.
    fn write(&mut self, op: u8, input: &mut Bytes<'_>) {
        self.restore();
        self.clock.advance(1 + i64::from(input.next() % 3));
        self.n += 1;
        let n = self.n;
        let (w, arg) = (&self.writer, input.next());
        let id = format!("d{}", arg % 8);
        match op {
            0 | 1 => {
                let body = json!({"k": arg % 3, "j": arg % 5, "n": n, "pad": "x".repeat(usize::from(input.next()))});
                w.docs().put("c", &id, body, None).expect("put");
            }
            2 => {
                w.docs().delete("c", &id).expect("delete");
            }
            3 => {
                if let Some(doc) = w.docs().get("c", &id).expect("get") {
                    let patch = json!({"k": arg % 4, "p": n});
                    let done = w.docs().patch("c", &id, patch, doc.version);
                    assert!(done.expect("patch").is_some(), "a patch at its version");
                }
            }
            4 => {
                let len = usize::from(input.next()) * 7;
                let bytes: Vec<u8> = (0..len).map(|i| (i as u64 * 31 + n) as u8).collect();
                let put = BlobPut {
                    owner_id: Some(format!("o{}", arg % 3)),
                    ..Default::default()
                };
                let meta = w
                    .blobs()
                    .put(&mut Cursor::new(bytes), put)
                    .expect("blob put");
                self.blobs.push(meta.id);
            }
            5 => {
                if !self.blobs.is_empty() {
                    let id = self.blobs.remove(usize::from(arg) % self.blobs.len());
                    assert!(w.blobs().delete(&id).expect("blob delete"));
                }
            }
            6 => {
                let key = LEASE_KEYS[usize::from(arg % 2)];
                w.leases()
                    .acquire(key, &format!("o{}", arg % 3), 60_000)
                    .expect("acquire");
            }
            7 => {
                if self.indexed_j {
                    w.docs().ensure_collection("e", &[]).expect("ensure");
                    w.docs().put("e", &id, json!({"n": n}), None).expect("put");
                } else {
                    self.indexed_j = true;
                    w.docs()
                        .ensure_collection("c", &["k", "j"])
                        .expect("ensure");
                }
            }
            _ => {
                w.compact().expect("compact");
            }
        }
        self.record();
    }

    /// A write in progress: a document put done, then undone but for a
    /// prefix: of its record (the rest zeros again), or, when the put
    /// rolled to a new segment, of that segment's header (a roll in
    /// progress: the file as long as the prefix).
    fn torn_write(&mut self, input: &mut Bytes<'_>) {
        self.restore();
        let before = segment_path(active_segment(&self.fs));
        let start = frames(&self.fs.file(&before).expect("segment").contents()).1;
        let states = self.history.len();
        self.write(0, input);
        if self.history.len() == states {
            return;
        }
        let (file, original, end) = self.damage();
        let rolled = self.damage.as_ref().unwrap().segment != before;
        let record = if rolled {
            if input.next().is_multiple_of(2) {
                let keep = usize::from(input.next()) % HEADER;
                file.set_len(keep as u64).expect("set_len");
                let damage = self.damage.as_mut().unwrap();
                damage.torn = true;
                damage.header_torn = true;
                return;
            }
            // The first frame after the new segment's padding.
            let (found, _) = frames(&original);
            match found
                .iter()
                .find(|(at, _)| original[at + FRAME_HEADER] != PAD)
            {
                Some(&(at, _)) => at,
                None => return,
            }
        } else {
            start
        };
        let len = u32::from_le_bytes(original[record..record + 4].try_into().unwrap()) as usize
            + FRAME_HEADER;
        let keep = usize::from(input.next()) * len / 256;
        let zeros = vec![0u8; end - record - keep];
        file.write_all_at(&zeros, (record + keep) as u64)
            .expect("write");
        let damage = self.damage.as_mut().unwrap();
        // The records now end where the torn one starts.
        damage.end = record;
        damage.torn = true;
    }

    /// Damage past the writer's end, of the kind `kind` picks.
    fn damage_tail(&mut self, kind: u8, input: &mut Bytes<'_>) {
        let (file, original, end) = self.damage();
        if self.damage.as_ref().unwrap().header_torn {
            // No frame is read before the header is whole.
            return;
        }
        let gap = match input.next() % 4 {
            0 | 1 => 0,
            2 => usize::from(input.next() % 16),
            _ => usize::from(input.next()) * 8,
        };
        let at = end + gap;
        match kind % 4 {
            0 => {
                // Bytes of the input.
                let len = usize::from(input.next()) + 1;
                let bytes = input.take(len).to_vec();
                file.write_all_at(&bytes, at as u64).expect("write");
            }
            1 => {
                // A whole valid frame from elsewhere: another place in
                // this segment, or another segment (another salt).
                let ids = segments(&self.fs);
                let id = ids[usize::from(input.next()) % ids.len()];
                let bytes = self.fs.file(&segment_path(id)).expect("seg").contents();
                let (found, _) = frames(&bytes);
                if let Some(&(from, len)) =
                    found.get(usize::from(input.next()) % found.len().max(1))
                {
                    if from != at || segment_path(id) != self.damage.as_ref().unwrap().segment {
                        file.write_all_at(&bytes[from..from + len], at as u64)
                            .expect("write");
                    }
                }
            }
            2 => {
                // A frame that verifies here but does not decode: a kind
                // no record has.
                let salt = original[16..20].to_vec();
                let kind = [0u8, 11, 77, 255][usize::from(input.next() % 4)];
                let len = usize::from(input.next() % 64);
                let mut payload = vec![kind];
                payload.extend_from_slice(input.take(len));
                file.write_all_at(&frame(&salt, at as u64, &payload), at as u64)
                    .expect("write");
            }
            _ => {
                // A frame header that verifies here, declaring a length
                // the input picks (past the file's end, say), and no
                // payload yet.
                let salt = original[16..20].to_vec();
                let len =
                    u32::from_le_bytes([input.next(), input.next(), input.next(), input.next()]);
                let len = len.to_le_bytes();
                let offset = (at as u64).to_le_bytes();
                let mut head = len.to_vec();
                head.extend_from_slice(&masked_crc(&[&salt, &offset, &len]).to_le_bytes());
                file.write_all_at(&head, at as u64).expect("write");
            }
        }
    }

    /// Whether a frame that verifies sits where the writer's records end:
    /// one of the forged frames that do not decode (later damage may have
    /// broken it again).
    fn forged_at_end(&self) -> bool {
        let Some(damage) = &self.damage else {
            return false;
        };
        if damage.header_torn {
            return false;
        }
        let bytes = self.fs.file(&damage.segment).expect("segment").contents();
        let (salt, end) = (&bytes[16..20], damage.end);
        let Some(head) = bytes.get(end..end + FRAME_HEADER) else {
            return false;
        };
        let len = u32::from_le_bytes(head[0..4].try_into().unwrap()) as usize;
        let Some(payload) = bytes.get(end + FRAME_HEADER..end + FRAME_HEADER + len) else {
            return false;
        };
        len > 0 && frame(salt, end as u64, payload) == bytes[end..end + FRAME_HEADER + len]
    }

    /// The reader refreshes; checks the invariants.
    fn refresh(&mut self) {
        assert_eq!(
            dump(&self.reader),
            self.view,
            "the reader's view changed between refreshes"
        );
        let forged = self.forged_at_end();
        match self.reader.refresh() {
            Ok(()) => {
                assert!(
                    !forged,
                    "a refresh took a frame that verifies but does not decode"
                );
                let expected = self.acknowledged();
                self.view = dump(&self.reader);
                assert!(
                    self.view == self.history[expected],
                    "after a refresh the reader is not the writer's acknowledged state \
                     (state {expected} of {}):\nreader:\n{}\nwriter:\n{}",
                    self.history.len(),
                    self.view,
                    self.history[expected]
                );
                assert!(expected >= self.at, "the view went backwards");
                self.at = expected;
                self.failed = false;
            }
            Err(Error::Corruption { .. }) if forged => {
                self.view = dump(&self.reader);
                let found = self.history[self.at..]
                    .iter()
                    .position(|s| *s == self.view)
                    .unwrap_or_else(|| {
                        panic!(
                            "after a failed refresh the reader is no state of the writer at \
                             or after its previous one:\n{}",
                            self.view
                        )
                    });
                self.at += found;
                self.failed = true;
            }
            Err(e) => panic!("a refresh failed: {e}"),
        }
    }

    /// A new read-only handle, in place of the old one.
    fn reopen_reader(&mut self) {
        let forged = self.forged_at_end();
        match LogStore::open_read_only_with_fs(
            Arc::new(self.fs.clone()),
            dir(),
            self.options.clone(),
        ) {
            Ok(reader) => {
                assert!(
                    !forged,
                    "a read-only open took a frame that does not decode"
                );
                let expected = self.acknowledged();
                let view = dump(&reader);
                assert!(
                    view == self.history[expected],
                    "a new reader is not the writer's acknowledged state"
                );
                self.reader = reader;
                self.view = view;
                self.at = expected;
                self.failed = false;
            }
            Err(Error::Corruption { .. }) if forged => {}
            Err(e) => panic!("a read-only open failed: {e}"),
        }
    }

    /// The writer process dies and a new one opens its files: a crash
    /// image of the page cache, less the frame that verifies (no crash
    /// writes one). A write in progress is lost.
    fn restart_writer(&mut self) {
        if self.forged_at_end() {
            self.restore();
        }
        let image = self.fs.snapshot();
        let torn = self.damage.take().is_some_and(|d| d.torn);
        // The old handle's shutdown writes; the crash image is put back
        // over it in place, so the reader's open files stay the same.
        let old = std::mem::replace(
            &mut self.writer,
            LogStore::in_memory(self.options.clone()).expect("placeholder"),
        );
        drop(old);
        let kept: BTreeSet<&PathBuf> = image.iter().map(|(p, _)| p).collect();
        for (path, _) in self.fs.snapshot() {
            if !kept.contains(&path) {
                self.fs.remove(&path).expect("remove");
            }
        }
        for (path, bytes) in &image {
            let file = self.fs.open(path, true).expect("open");
            file.set_len(bytes.len() as u64).expect("set_len");
            file.write_all_at(bytes, 0).expect("write");
        }
        if torn {
            self.history.pop();
        }
        self.writer =
            LogStore::open_with_fs(Arc::new(self.fs.clone()), dir(), self.options.clone())
                .expect("a writer opens the files of one that died");
        assert_eq!(
            &dump(&self.writer),
            self.history.last().unwrap(),
            "the restarted writer lost or gained an operation"
        );
    }

    /// Where a frame that verifies lies past the writer's end, after a
    /// frame that does not at the end: the segment and the end.
    fn verifies_after_end(&self) -> Option<(PathBuf, usize)> {
        let damage = self.damage.as_ref().filter(|d| !d.header_torn)?;
        if self.forged_at_end() {
            return None;
        }
        let bytes = self.fs.file(&damage.segment).expect("segment").contents();
        let salt = &bytes[16..20];
        let verifies = |at: usize| {
            let Some(head) = bytes.get(at..at + FRAME_HEADER) else {
                return false;
            };
            let len = u32::from_le_bytes(head[0..4].try_into().unwrap()) as usize;
            let Some(payload) = bytes.get(at + FRAME_HEADER..at + FRAME_HEADER + len) else {
                return false;
            };
            len > 0 && frame(salt, at as u64, payload) == bytes[at..at + FRAME_HEADER + len]
        };
        (damage.end + 1..bytes.len())
            .any(verifies)
            .then(|| (damage.segment.clone(), damage.end))
    }

    fn verify_reader(&self) {
        if self.at == self.history.len() - 1 && !self.failed {
            let report = self.reader.verify().expect("verify");
            match self.verifies_after_end() {
                None => assert!(report.is_clean(), "reader: {:?}", report.problems),
                Some((segment, end)) => assert!(
                    matches!(&report.problems[..], [p] if p.file == segment && p.offset == end as u64),
                    "reader, with a frame that verifies past damage at {end}: {:?}",
                    report.problems
                ),
            }
        }
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Bytes(data);
    let mode = input.next();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let options = Options {
        durability: if mode.is_multiple_of(2) {
            Durability::Flush
        } else {
            Durability::Sync
        },
        segment_bytes: if mode & 2 == 0 { 8192 } else { 64 * 1024 },
        auto_compact: false,
        clock: clock.clone(),
        ..Options::default()
    };
    let mut run = Run::new(options, clock);
    // `LOGSTORE_FOLLOW_TRACE=1` prints each operation and the segments
    // before it, to read a failing input.
    let trace = std::env::var_os("LOGSTORE_FOLLOW_TRACE").is_some();
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        let op = input.next();
        if trace {
            eprintln!("op {} {:?}", op % 24, segments(&run.fs));
        }
        match op % 24 {
            o @ 0..=8 => run.write(o, &mut input),
            9 => run.torn_write(&mut input),
            o @ 10..=13 => run.damage_tail(o, &mut input),
            14 => run.restore(),
            15 => run.restart_writer(),
            16 => run.reopen_reader(),
            17 => run.verify_reader(),
            _ => run.refresh(),
        }
    }
    // With the damage gone the reader catches up with everything.
    run.restore();
    run.refresh();
    assert_eq!(run.at, run.history.len() - 1);
    run.verify_reader();
}
