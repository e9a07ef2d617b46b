//! Repair in place (`Salvage::repair_in_place`, behind `logstore repair
//! --in-place`) under the fault model: a power loss before every file
//! operation and at every sync of the repair, with the simulator's choices
//! of what unsynced state survives, and an I/O error at every step. After
//! each, the store holds either what it held before the repair (which a
//! rerun then repairs) or the repaired state, and every damaged original
//! exists, whole, in place or in the folder the repair keeps them in.

mod common;

use std::collections::BTreeMap;
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use common::power_fs::{image_fs, Image, PowerFs};
use logstore::io::{FaultFs, LockGuard, MemFs, VFile, Vfs};
use logstore::{
    BlobPut, Durability, Error, LogStore, ManualClock, Options, Query, Salvage, Store, Transfer,
};
use serde_json::json;

fn dir() -> &'static Path {
    Path::new("db")
}

/// Small segments, so the store spans several; one clock, so every run
/// writes the same times; no background compaction.
fn opts(clock: &Arc<ManualClock>) -> Options {
    Options {
        clock: clock.clone(),
        durability: Durability::Flush,
        segment_bytes: 16 * 1024,
        auto_compact: false,
        ..Options::default()
    }
}

/// The smallest segments for the repair's outputs, so that it writes
/// several (a store's first record starts a page into its segment; a
/// repair's right after the header).
fn repair_opts(clock: &Arc<ManualClock>) -> Options {
    Options {
        segment_bytes: 4096,
        ..opts(clock)
    }
}

/// Everything the store holds, as text: equal dumps, equal stores.
fn dump(store: &LogStore) -> String {
    let d = store.docs();
    let mut out = format!("{:?}\n", d.list_collections().unwrap());
    out += &format!("{:?}\n", store.unensured_collections().unwrap());
    for c in d.list_collections().unwrap() {
        let all = Query::new(&c.name).order_by("id").limit(usize::MAX);
        for doc in d.query(&all).unwrap() {
            out += &format!("{doc:?}\n");
        }
        for field in &c.indexes {
            let q = Query::new(&c.name).order_by(field).limit(usize::MAX);
            let ids: Vec<String> = d.query(&q).unwrap().into_iter().map(|r| r.id).collect();
            out += &format!("{}.{field}: {ids:?}\n", c.name);
        }
    }
    let all = logstore::BlobList {
        limit: Some(usize::MAX),
        ..Default::default()
    };
    for meta in store.blobs().list(&all).unwrap() {
        // A damaged store may hold a blob whose file is gone.
        let bytes = store
            .blobs()
            .get(&meta.id)
            .map_err(|e| e.to_string())
            .and_then(|blob| {
                let mut bytes = Vec::new();
                let (_, mut reader) = blob.expect("listed");
                reader.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
                Ok(bytes)
            });
        out += &format!("{meta:?} {bytes:?}\n");
    }
    out += &format!("{:?}\n", store.all_leases().unwrap());
    out
}

/// A document whose body carries a marker that can be found in the
/// segment bytes (and damaged there).
fn put(store: &LogStore, id: &str, i: usize) {
    let body = json!({"owner": format!("o{}", i % 3), "mark": format!("mark-{id}-"), "pad": "x".repeat(150)});
    store.docs().put("c", id, body, None).unwrap();
}

/// The segment files of `dir` on `fs`, oldest first.
fn segments(fs: &dyn Vfs) -> Vec<PathBuf> {
    let mut names: Vec<PathBuf> = fs
        .list(dir())
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".seg"))
        .map(|n| dir().join(n))
        .collect();
    names.sort();
    names
}

/// Flips one byte inside the marker of document `id`, in whichever of
/// `files` holds it; returns that file.
fn damage(fs: &dyn Vfs, files: &[PathBuf], id: &str) -> PathBuf {
    let marker = format!("mark-{id}-");
    for path in files {
        let file = fs.open(path, false).unwrap();
        let mut bytes = vec![0u8; file.size().unwrap() as usize];
        file.read_exact_at(&mut bytes, 0).unwrap();
        if let Some(at) = bytes
            .windows(marker.len())
            .position(|w| w == marker.as_bytes())
        {
            file.write_all_at(&[bytes[at + 5] ^ 0x20], at as u64 + 5)
                .unwrap();
            file.sync_data().unwrap();
            return path.clone();
        }
    }
    panic!("no segment holds {marker}");
}

/// How a store is damaged before its repair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    /// A record in the middle of the newest segment: open cuts the log
    /// there and copies the segment into quarantine; more writes follow.
    /// The store opens, without the records after the cut, which the
    /// repair gets back from the quarantine copy.
    Tail,
    /// That, and a record of a sealed segment: the store no longer opens.
    Sealed,
}

/// Builds a damaged store in `dir()` on `fs`: segments, a compaction (a
/// manifest), blobs, leases, deletes, a snapshot, a quarantine copy.
fn build(fs: Arc<dyn Vfs>, clock: &Arc<ManualClock>, damaged: Damage) {
    let store = LogStore::open_with_fs(fs.clone(), dir(), opts(clock)).unwrap();
    store.docs().ensure_collection("c", &["owner"]).unwrap();
    for i in 0..20 {
        put(&store, &format!("d{i}"), i);
    }
    let mut blobs = Vec::new();
    for text in ["blob one", "blob two"] {
        let meta = store
            .blobs()
            .put(
                &mut Cursor::new(text.as_bytes().to_vec()),
                BlobPut::default(),
            )
            .unwrap();
        blobs.push(meta.id);
    }
    store.leases().acquire("k1", "run-a", 60_000).unwrap();
    store.docs().delete("c", "d3").unwrap();
    store.compact().unwrap();
    for i in 20..36 {
        put(&store, &format!("d{i}"), i);
    }
    store.blobs().delete(&blobs[0]).unwrap();
    store.leases().acquire("k2", "run-b", 60_000).unwrap();
    store.close().unwrap();

    // A record of the newest segment (the one the last write went to)
    // with others after it.
    let holds = |path: &Path, id: usize| {
        let file = fs.open(path, false).unwrap();
        let mut bytes = vec![0u8; file.size().unwrap() as usize];
        file.read_exact_at(&mut bytes, 0).unwrap();
        let marker = format!("mark-d{id}-");
        bytes.windows(marker.len()).any(|w| w == marker.as_bytes())
    };
    let newest = segments(fs.as_ref())
        .into_iter()
        .find(|path| holds(path, 35))
        .unwrap();
    let in_newest: Vec<usize> = (20..36).filter(|i| holds(&newest, *i)).collect();
    assert!(in_newest.len() >= 3, "{in_newest:?}");
    damage(
        fs.as_ref(),
        &[newest],
        &format!("d{}", in_newest[in_newest.len() / 2]),
    );
    // As after a crash: no snapshot covers the damaged segment, so open
    // reads it.
    fs.remove(&dir().join("SNAPSHOT")).unwrap();
    let store = LogStore::open_with_fs(fs.clone(), dir(), opts(clock)).unwrap();
    assert!(store.recovery_report().truncated.is_some());
    for i in 0..3 {
        put(&store, &format!("e{i}"), i);
    }
    store.close().unwrap();
    if damaged == Damage::Sealed {
        damage(fs.as_ref(), &segments(fs.as_ref()), "d10");
        fs.remove(&dir().join("SNAPSHOT")).unwrap();
        let reopened = LogStore::open_with_fs(fs.clone(), dir(), opts(clock));
        assert!(matches!(reopened, Err(Error::Corruption { .. })));
    }
}

/// The originals a repair must keep: every segment, the manifest and the
/// quarantine copies, by path, with their bytes.
fn originals(files: &[(PathBuf, Vec<u8>)]) -> BTreeMap<PathBuf, Vec<u8>> {
    let quarantine = dir().join("quarantine");
    files
        .iter()
        .filter(|(path, _)| {
            let name = path.file_name().unwrap().to_str().unwrap();
            (path.parent() == Some(dir()) && (name.ends_with(".seg") || name == "MANIFEST"))
                || (path.parent() == Some(quarantine.as_path()) && name.contains(".at-"))
        })
        .cloned()
        .collect()
}

/// A `MemFs` holding `files`.
fn mem_of(files: &[(PathBuf, Vec<u8>)]) -> MemFs {
    let fs = MemFs::new();
    for (path, bytes) in files {
        fs.open(path, true).unwrap().write_all_at(bytes, 0).unwrap();
    }
    fs
}

/// What the store looked like before the repair, and after it.
struct Expected {
    /// The dump of the store as it opens, `None` when it does not.
    before: Option<String>,
    /// The dump of a salvage of it into another store.
    salvaged: String,
    /// The dump of the store repaired in place, uninterrupted.
    repaired: String,
    /// Where that repair kept the originals.
    kept: PathBuf,
    originals: BTreeMap<PathBuf, Vec<u8>>,
}

fn salvage_dump(fs: Arc<dyn Vfs>, clock: &Arc<ManualClock>) -> String {
    let target = LogStore::in_memory(opts(clock)).unwrap();
    Salvage::lock_with_fs(fs, dir())
        .unwrap()
        .run(&target)
        .unwrap();
    dump(&target)
}

/// Opens the store on `fs`: its dump, with what the integrity check finds
/// (a damaged store that opens may hold a blob whose file went with a
/// delete the cut removed), or why it does not open.
fn open_dump(fs: Arc<dyn Vfs>, clock: &Arc<ManualClock>) -> Result<String, Error> {
    let store = LogStore::open_with_fs(fs.clone(), dir(), opts(clock))?;
    let report = store.verify()?;
    assert!(
        report.foreign.is_empty(),
        "every entry is the store's own: {:?}",
        report.foreign
    );
    let leftovers: Vec<String> = fs
        .list(dir())
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "open swept {leftovers:?}");
    let problems: Vec<String> = report.problems.iter().map(|p| format!("{p}\n")).collect();
    Ok(dump(&store) + &problems.concat())
}

fn repair(fs: Arc<dyn Vfs>, clock: &Arc<ManualClock>) -> logstore::Result<logstore::RepairReport> {
    Salvage::lock_with_fs(fs, dir())?.repair_in_place(&repair_opts(clock))
}

fn expected(files: &[(PathBuf, Vec<u8>)], clock: &Arc<ManualClock>) -> Expected {
    let before = match open_dump(Arc::new(mem_of(files)), clock) {
        Ok(dump) => Some(dump),
        Err(Error::Corruption { .. }) => None,
        Err(e) => panic!("the damaged store: {e}"),
    };
    let salvaged = salvage_dump(Arc::new(mem_of(files)), clock);
    let fs = Arc::new(mem_of(files));
    let report = repair(fs.clone(), clock).unwrap();
    assert!(!report.salvage.lost.is_empty(), "{report:?}");
    assert!(report.segments_written > 1, "{report:?}");
    let repaired = open_dump(fs, clock).unwrap();
    assert!(!repaired.contains("is missing"), "{repaired}");
    assert_eq!(
        repaired, salvaged,
        "in place, the repair keeps what a salvage into another store keeps"
    );
    assert_ne!(
        Some(&repaired),
        before.as_ref(),
        "the repair gets records back"
    );
    Expected {
        before,
        salvaged,
        repaired,
        kept: report.originals,
        originals: originals(files),
    }
}

/// The power-loss simulator with a crash image recorded before every file
/// operation (creating, writing, resizing, renaming, removing), besides
/// the ones it records at every sync.
#[derive(Debug, Clone)]
struct EveryStep(PowerFs);

#[derive(Debug)]
struct StepFile {
    file: Arc<dyn VFile>,
    power: PowerFs,
}

impl VFile for StepFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.power.capture_now();
        self.file.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.power.capture_now();
        self.file.set_len(len)
    }
    fn size(&self) -> io::Result<u64> {
        self.file.size()
    }
}

impl Vfs for EveryStep {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.0.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.0.list(dir)
    }
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VFile>> {
        if create && self.0.open(path, false).is_err() {
            self.0.capture_now();
        }
        let file = self.0.open(path, create)?;
        Ok(Arc::new(StepFile {
            file,
            power: self.0.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.capture_now();
        self.0.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.0.capture_now();
        self.0.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.0.sync_dir(dir)
    }
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn LockGuard>>> {
        self.0.try_lock(path)
    }
}

/// Puts `files` on the simulator, every byte and name durable.
fn load(power: &PowerFs, files: &[(PathBuf, Vec<u8>)]) {
    power.set_capture(false);
    for (path, bytes) in files {
        let file = power.open(path, true).unwrap();
        file.write_all_at(bytes, 0).unwrap();
        file.sync_data().unwrap();
    }
    let mut dirs: Vec<PathBuf> = files
        .iter()
        .map(|(path, _)| path.parent().unwrap().to_path_buf())
        .collect();
    dirs.dedup();
    for d in dirs {
        power.sync_dir(&d).unwrap();
    }
    power.set_capture(true);
}

/// What a crash image holds.
#[derive(Debug, Default)]
struct Tally {
    before: usize,
    repaired: usize,
}

/// Checks one crash image; `finished` when the repair had returned.
fn check_image(
    image: &Image,
    finished: bool,
    want: &Expected,
    clock: &Arc<ManualClock>,
    tally: &mut Tally,
) -> Result<(), String> {
    let fresh = || Arc::new(image_fs(image)) as Arc<dyn Vfs>;
    let committed = match open_dump(fresh(), clock) {
        Ok(dump) if dump == want.repaired => true,
        Ok(dump) if Some(&dump) == want.before.as_ref() => false,
        Ok(dump) => return Err(format!("opens to neither state:\n{dump}")),
        Err(Error::Corruption { .. }) if want.before.is_none() => false,
        Err(e) => return Err(format!("does not open: {e}")),
    };
    if finished && !committed {
        return Err("the repair returned before its switch was durable".into());
    }
    // Every original exists whole: in place, or kept.
    for (path, bytes) in &want.originals {
        let here = image.get(path).map(|b| b.as_slice());
        let kept = image
            .get(&want.kept.join(path.file_name().unwrap()))
            .map(|b| b.as_slice());
        let whole = |b: Option<&[u8]>| b == Some(bytes.as_slice());
        if committed && !whole(here) && !whole(kept) {
            return Err(format!("{} is lost", path.display()));
        }
        if !committed && !whole(here) {
            return Err(format!(
                "{} changed before the switch was durable",
                path.display()
            ));
        }
    }
    if committed {
        tally.repaired += 1;
    } else {
        tally.before += 1;
        let salvaged = salvage_dump(fresh(), clock);
        if salvaged != want.salvaged {
            return Err(format!("salvages to another state:\n{salvaged}"));
        }
    }
    // Whatever the crash left, running the repair again completes it.
    let fs = fresh();
    repair(fs.clone(), clock).map_err(|e| format!("the rerun failed: {e}"))?;
    match open_dump(fs, clock) {
        Ok(dump) if dump == want.repaired => Ok(()),
        Ok(dump) => Err(format!("the rerun repaired to another state:\n{dump}")),
        Err(e) => Err(format!("the rerun left a store that does not open: {e}")),
    }
}

fn power_loss_at_every_step(damaged: Damage) {
    let clock = Arc::new(ManualClock::new(1_000));
    let built = MemFs::new();
    build(Arc::new(built.clone()), &clock, damaged);
    let files = built.snapshot();
    let want = expected(&files, &clock);

    let power = PowerFs::new();
    load(&power, &files);
    let fs: Arc<dyn Vfs> = Arc::new(EveryStep(power.clone()));
    let report = repair(fs, &clock).unwrap();
    assert_eq!(report.originals, want.kept);
    power.acked.store(1, Ordering::SeqCst);
    power.capture_now();

    let stats = power.stats();
    let images = power.take_labelled_images();
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    for (image, acked, label) in &images {
        if let Err(why) = check_image(image, *acked == 1, &want, &clock, &mut tally) {
            failures.push(format!("{label} (finished: {}): {why}", *acked == 1));
        }
    }
    eprintln!(
        "{damaged:?}: {} crash points, {} distinct images: {} before the switch, {} after",
        stats.sync_points,
        images.len(),
        tally.before,
        tally.repaired
    );
    assert!(
        failures.is_empty(),
        "{} of {} images fail; the first:\n{}",
        failures.len(),
        images.len(),
        failures[..failures.len().min(5)].join("\n")
    );
    assert!(tally.before > 0 && tally.repaired > 0, "{tally:?}");
}

/// A store that opens (its newest segment was cut at damage) repaired in
/// place, with a power loss at every step: it opens as it was or as
/// repaired, and keeps its originals throughout.
#[test]
fn a_power_loss_at_every_step_of_a_repair_leaves_the_store_before_or_repaired() {
    power_loss_at_every_step(Damage::Tail);
}

/// The same for a store that no longer opens (a sealed segment is
/// damaged): before the switch it fails to open as before and salvages as
/// before.
#[test]
fn a_power_loss_at_every_step_of_repairing_a_store_that_does_not_open() {
    power_loss_at_every_step(Damage::Sealed);
}

/// An I/O error at each file operation of the repair, in turn: the repair
/// reports it, the store opens before or repaired (or, not yet switched,
/// fails to open as it did), and a rerun completes the repair.
#[test]
fn an_io_error_at_every_step_of_a_repair_leaves_the_store_openable_and_a_rerun_completes() {
    for damaged in [Damage::Tail, Damage::Sealed] {
        let clock = Arc::new(ManualClock::new(1_000));
        let built = MemFs::new();
        build(Arc::new(built.clone()), &clock, damaged);
        let files = built.snapshot();
        let want = expected(&files, &clock);
        let mut step = 1;
        loop {
            let fs = FaultFs::new();
            for (path, bytes) in &files {
                fs.open(path, true).unwrap().write_all_at(bytes, 0).unwrap();
            }
            fs.fail_at(step, false);
            let result = repair(fs.as_vfs(), &clock);
            let faulted = fs.injected() > 0;
            fs.heal();
            match open_dump(fs.as_vfs(), &clock) {
                Ok(dump) => assert!(
                    dump == want.repaired || Some(&dump) == want.before.as_ref(),
                    "{damaged:?} step {step}: opens to neither state:\n{dump}"
                ),
                Err(Error::Corruption { .. }) if want.before.is_none() => {}
                Err(e) => panic!("{damaged:?} step {step}: does not open: {e}"),
            }
            repair(fs.as_vfs(), &clock)
                .unwrap_or_else(|e| panic!("{damaged:?} step {step}: the rerun: {e}"));
            assert_eq!(
                open_dump(fs.as_vfs(), &clock).unwrap(),
                want.repaired,
                "{damaged:?} step {step}"
            );
            if !faulted {
                result.unwrap();
                break;
            }
            assert!(result.is_err(), "{damaged:?} step {step}: reported");
            step += 1;
        }
        eprintln!("{damaged:?}: an I/O error at each of {step} steps");
        assert!(step > 20, "a repair has many steps: {step}");
    }
}

/// On the real file system: a store whose manifest rotted (it no longer
/// opens) is repaired in place; the damaged originals, the manifest among
/// them, are kept byte for byte in the folder the report names, and the
/// log keeps only the repaired segments.
#[test]
fn a_store_with_a_damaged_manifest_is_repaired_in_place_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db");
    let clock = Arc::new(ManualClock::new(1_000));
    let store = LogStore::open(&path, opts(&clock)).unwrap();
    for i in 0..30 {
        put(&store, &format!("d{i}"), i);
    }
    store.compact().unwrap();
    put(&store, "after", 0);
    store.close().unwrap();
    let manifest = path.join("MANIFEST");
    let mut bytes = std::fs::read(&manifest).unwrap();
    bytes[15] ^= 0x01; // one bit of the horizon
    std::fs::write(&manifest, &bytes).unwrap();
    assert!(LogStore::open(&path, opts(&clock)).is_err());
    let before: Vec<(String, Vec<u8>)> = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .filter(|(name, _)| name.ends_with(".seg") || name == "MANIFEST")
        .collect();

    let report = Salvage::lock(&path)
        .unwrap()
        .repair_in_place(&repair_opts(&clock))
        .unwrap();
    assert!(report.salvage.lost.iter().any(|p| p.file == manifest));
    assert!(report.originals.starts_with(path.join("quarantine")));
    for (name, bytes) in &before {
        assert_eq!(&std::fs::read(report.originals.join(name)).unwrap(), bytes);
        if name.ends_with(".seg") {
            assert!(!path.join(name).exists(), "{name} left the log");
        }
    }
    let store = LogStore::open(&path, opts(&clock)).unwrap();
    let report = store.verify().unwrap();
    assert!(report.is_clean() && report.foreign.is_empty(), "{report:?}");
    assert_eq!(store.docs().count(&Query::new("c")).unwrap(), 31);
    // The repaired store takes writes and compacts as any other.
    put(&store, "later", 1);
    store.compact().unwrap();
    drop(store);
    let store = LogStore::open(&path, opts(&clock)).unwrap();
    assert_eq!(store.docs().count(&Query::new("c")).unwrap(), 32);
}

/// A crash inside open's re-link of the manifest leaves it named
/// `MANIFEST.relink`: the repair renames it back first, as open does, so it
/// is kept with the other originals and cannot come back later.
#[test]
fn a_manifest_left_mid_relink_is_kept_with_the_originals() {
    let clock = Arc::new(ManualClock::new(1_000));
    let fs = MemFs::new();
    build(Arc::new(fs.clone()), &clock, Damage::Tail);
    let want = expected(&fs.snapshot(), &clock);
    let manifest = fs.file(&dir().join("MANIFEST")).unwrap().contents();
    fs.rename(&dir().join("MANIFEST"), &dir().join("MANIFEST.relink"))
        .unwrap();
    let report = repair(Arc::new(fs.clone()), &clock).unwrap();
    let kept = fs.file(&report.originals.join("MANIFEST")).unwrap();
    assert_eq!(kept.contents(), manifest);
    assert!(fs.file(&dir().join("MANIFEST.relink")).is_none());
    assert_eq!(open_dump(Arc::new(fs), &clock).unwrap(), want.repaired);
}

/// Bad input changes nothing: options out of range, and a directory that
/// is not a store, are refused before anything is written.
#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let clock = Arc::new(ManualClock::new(1_000));
    let fs = MemFs::new();
    build(Arc::new(fs.clone()), &clock, Damage::Tail);
    let before = fs.snapshot();
    let bad = Options {
        segment_bytes: 1,
        ..opts(&clock)
    };
    let result = Salvage::lock_with_fs(Arc::new(fs.clone()), dir())
        .unwrap()
        .repair_in_place(&bad);
    assert!(matches!(result, Err(Error::InvalidInput(_))), "{result:?}");
    assert_eq!(fs.snapshot(), before);

    let empty = MemFs::new();
    let result = Salvage::lock_with_fs(Arc::new(empty.clone()), dir())
        .unwrap()
        .repair_in_place(&repair_opts(&clock));
    assert!(matches!(result, Err(Error::NotAStore { .. })), "{result:?}");
    assert!(empty.snapshot().is_empty());
}
