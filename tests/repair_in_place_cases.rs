//! Repair in place on the real file system and on bad input: a store whose
//! manifest rotted is repaired with its originals kept byte for byte, a
//! manifest left mid-relink is kept with them, a folder whose entry a
//! failed sync dropped is never reused, and options out of range or a
//! directory that is not a store change nothing.

mod common;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::repair::{build, dir, expected, open_dump, opts, put, repair, repair_opts, Damage};
use logstore::io::{Entry, EntryKind, LockGuard, MemFs, VFile, Vfs};
use logstore::{Error, LogStore, ManualClock, Options, Query, Salvage, Store};

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

/// A `MemFs` that models folder entries under fsyncgate (`PowerFs` does
/// not model folders): a folder made by `create_dir_all` is pending in its
/// parent until a sync of the parent succeeds; a sync that fails drops it
/// for good, and a later sync that succeeds does not write it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Folder {
    Pending,
    Durable,
    /// Dropped by a failed sync of its parent: never durable.
    Lost,
}

#[derive(Debug, Clone)]
struct FolderGate {
    inner: MemFs,
    folders: Arc<Mutex<BTreeMap<PathBuf, Folder>>>,
    /// Fail the next sync of this folder.
    fail_sync_of: Arc<Mutex<Option<PathBuf>>>,
}

impl Vfs for FolderGate {
    fn create_dir_all(&self, d: &Path) -> io::Result<()> {
        let mut folders = self.folders.lock().unwrap();
        let mut at = Some(d);
        while let Some(p) = at {
            if p.as_os_str().is_empty() || p == dir() {
                break;
            }
            folders.entry(p.to_path_buf()).or_insert(Folder::Pending);
            at = p.parent();
        }
        self.inner.create_dir_all(d)
    }
    fn list(&self, d: &Path) -> io::Result<Vec<String>> {
        self.inner.list(d)
    }
    /// The files, and the folders this file system tracks, as a real one
    /// lists them (a folder's entry shows whether durable or not).
    fn list_entries(&self, d: &Path) -> io::Result<Vec<Entry>> {
        let mut entries = self.inner.list_entries(d)?;
        for folder in self.folders.lock().unwrap().keys() {
            if folder.parent() == Some(d) {
                let name = folder.file_name().unwrap().to_string_lossy().into_owned();
                entries.push(Entry {
                    name,
                    kind: EntryKind::Dir,
                });
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VFile>> {
        self.inner.open(path, create)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }
    fn sync_dir(&self, d: &Path) -> io::Result<()> {
        let fail = self.fail_sync_of.lock().unwrap().as_deref() == Some(d);
        let mut folders = self.folders.lock().unwrap();
        for (p, e) in folders.iter_mut() {
            if p.parent() == Some(d) && *e == Folder::Pending {
                *e = if fail { Folder::Lost } else { Folder::Durable };
            }
        }
        if fail {
            *self.fail_sync_of.lock().unwrap() = None;
            return Err(io::Error::other(format!(
                "injected: sync of {} failed",
                d.display()
            )));
        }
        self.inner.sync_dir(d)
    }
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn LockGuard>>> {
        self.inner.try_lock(path)
    }
}

/// First repair: the sync of `quarantine/` that should make the new
/// `repair-<id>.0` folder durable fails (fsyncgate drops the entry for
/// good). The repair reports the error and removes its copies, leaving the
/// folder. The rerun (a restart, no reboot) must not take that folder: a
/// sync of `quarantine/` would no longer write its entry, and the only
/// copies of the originals would sit in a folder a power loss loses. It
/// makes a new one, whose entry the sync does write.
#[test]
fn a_kept_folder_whose_entry_a_failed_sync_dropped_is_not_reused() {
    let clock = Arc::new(ManualClock::new(1_000));
    let mem = MemFs::new();
    build(Arc::new(mem.clone()), &clock, Damage::Tail);
    let qdir = dir().join("quarantine");
    let fs = FolderGate {
        inner: mem.clone(),
        folders: Arc::new(Mutex::new(BTreeMap::new())),
        fail_sync_of: Arc::new(Mutex::new(Some(qdir.clone()))),
    };
    // quarantine/ exists and is durable already (open made a copy there).
    fs.folders
        .lock()
        .unwrap()
        .insert(qdir.clone(), Folder::Durable);
    let first = repair(Arc::new(fs.clone()), &clock);
    assert!(first.is_err(), "the injected sync failure is reported");
    let report = repair(Arc::new(fs.clone()), &clock).expect("the rerun succeeds");
    let folders = fs.folders.lock().unwrap().clone();
    // The originals left the store directory, so the folder holding their
    // copies must be durable.
    assert_eq!(
        folders.get(&report.originals).copied(),
        Some(Folder::Durable),
        "the folder {} holding the only copies of the originals is not durable",
        report.originals.display()
    );
}
