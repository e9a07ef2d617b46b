//! A damaged store to repair in place, and what a repair of it must give:
//! shared by the repair tests.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use logstore::io::{MemFs, Vfs};
use logstore::{
    Durability, Error, LogStore, ManualClock, Options, Query, Salvage, Store, Transfer,
};
use serde_json::json;

pub fn dir() -> &'static Path {
    Path::new("db")
}

/// Small segments, so the store spans several; one clock, so every run
/// writes the same times; no background compaction.
pub fn opts(clock: &Arc<ManualClock>) -> Options {
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
pub fn repair_opts(clock: &Arc<ManualClock>) -> Options {
    Options {
        segment_bytes: 4096,
        ..opts(clock)
    }
}

/// Everything the store holds, as text: equal dumps, equal stores.
pub fn dump(store: &LogStore) -> String {
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
pub fn put(store: &LogStore, id: &str, i: usize) {
    let body = json!({"owner": format!("o{}", i % 3), "mark": format!("mark-{id}-"), "pad": "x".repeat(150)});
    store.docs().put("c", id, body, None).unwrap();
}

/// The segment files of `dir` on `fs`, oldest first.
pub fn segments(fs: &dyn Vfs) -> Vec<PathBuf> {
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
pub fn damage(fs: &dyn Vfs, files: &[PathBuf], id: &str) -> PathBuf {
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
pub enum Damage {
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
pub fn build(fs: Arc<dyn Vfs>, clock: &Arc<ManualClock>, damaged: Damage) {
    let store = LogStore::open_with_fs(fs.clone(), dir(), opts(clock)).unwrap();
    store.docs().ensure_collection("c", &["owner"]).unwrap();
    for i in 0..20 {
        put(&store, &format!("d{i}"), i);
    }
    let mut blobs = Vec::new();
    for text in ["blob one", "blob two"] {
        blobs.push(super::blobs::put(&store, text.as_bytes()).id);
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
pub fn originals(files: &[(PathBuf, Vec<u8>)]) -> BTreeMap<PathBuf, Vec<u8>> {
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
pub fn mem_of(files: &[(PathBuf, Vec<u8>)]) -> MemFs {
    let fs = MemFs::new();
    for (path, bytes) in files {
        fs.open(path, true).unwrap().write_all_at(bytes, 0).unwrap();
    }
    fs
}

/// What the store looked like before the repair, and after it.
pub struct Expected {
    /// The dump of the store as it opens, `None` when it does not.
    pub before: Option<String>,
    /// The dump of a salvage of it into another store.
    pub salvaged: String,
    /// The dump of the store repaired in place, uninterrupted.
    pub repaired: String,
    /// Where that repair kept the originals.
    pub kept: PathBuf,
    pub originals: BTreeMap<PathBuf, Vec<u8>>,
}

pub fn salvage_dump(fs: Arc<dyn Vfs>, clock: &Arc<ManualClock>) -> String {
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
pub fn open_dump(fs: Arc<dyn Vfs>, clock: &Arc<ManualClock>) -> Result<String, Error> {
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

pub fn repair(
    fs: Arc<dyn Vfs>,
    clock: &Arc<ManualClock>,
) -> logstore::Result<logstore::RepairReport> {
    Salvage::lock_with_fs(fs, dir())?.repair_in_place(&repair_opts(clock))
}

pub fn expected(files: &[(PathBuf, Vec<u8>)], clock: &Arc<ManualClock>) -> Expected {
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

/// Puts `files` on the simulator, every byte and name durable, with no
/// crash image taken meanwhile (capture is left off).
pub fn load(power: &super::power_fs::PowerFs, files: &[(PathBuf, Vec<u8>)]) {
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
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        power.sync_dir(&d).unwrap();
    }
}

/// A store's files and their bytes.
pub type Files = Vec<(PathBuf, Vec<u8>)>;

/// A store damaged as `damaged` says, built on a `MemFs`: its clock, its
/// files, and what a repair of it must give.
pub fn damaged_store(damaged: Damage) -> (Arc<ManualClock>, Files, Expected) {
    let clock = Arc::new(ManualClock::new(1_000));
    let built = MemFs::new();
    build(Arc::new(built.clone()), &clock, damaged);
    let files = built.snapshot();
    let want = expected(&files, &clock);
    (clock, files, want)
}
