//! The manifest: which compacted segments replay first, and from which
//! segment id on the writer's own segments follow.
//!
//! Compaction writes its output segments as `<id>.seg.tmp`, then commits by
//! replacing `MANIFEST` atomically (write `MANIFEST.tmp`, sync, rename, sync
//! the directory), then renames the outputs to `<id>.seg` and removes its
//! inputs. Open finishes or undoes whatever a crash interrupted (see
//! [`layout`]). FORMAT.md describes the bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::codec::{checked_body, DecodeError, Reader, Writer};
use crate::io::{self, Vfs};
use crate::log::segment::{parse_segment_name, segment_name, SEGMENT_SUFFIX};
use crate::{Error, Result};

/// The manifest's file name.
pub const MANIFEST_FILE: &str = "MANIFEST";
/// The first eight bytes of the manifest.
pub const MANIFEST_MAGIC: [u8; 8] = *b"LOGSTMAN";
/// The manifest's own format version (unchanged since format 1).
pub const MANIFEST_VERSION: u32 = 1;
/// The suffix of a compaction output not yet committed.
pub const TMP_SUFFIX: &str = ".tmp";

/// The committed result of the last compaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Segments of ids at or above this (other than `base`) are the
    /// writer's, and replay after `base` in id order; anything else below it
    /// is a leftover input of a finished compaction.
    pub horizon: u32,
    /// Compacted segments, in replay order.
    pub base: Vec<u32>,
}

impl Manifest {
    /// The largest segment id the manifest names (its horizon included).
    fn max_id(&self) -> u32 {
        self.base
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .max(self.horizon)
    }

    /// `Corruption` unless `present` holds every segment of the base, and
    /// the horizon's own segment: a compaction rolls to it (created and
    /// synced) before it commits the manifest, and nothing removes it while
    /// the manifest stands. A manifest whose horizon segment is missing
    /// was not written by a compaction of this store, and acting on it
    /// (removing every segment below its horizon) would drop the log.
    fn check_present(&self, dir: &Path, present: impl Fn(u32) -> bool) -> Result<()> {
        let missing = |what: String| {
            Err(Error::corruption(
                dir.join(MANIFEST_FILE),
                0,
                format!("the manifest names {what}, which is missing"),
            ))
        };
        if let Some(id) = self.base.iter().find(|id| !present(**id)) {
            return missing(format!("segment {id}{SEGMENT_SUFFIX}"));
        }
        if *self != Manifest::default() && !present(self.horizon) {
            return missing(format!(
                "its horizon segment {}{SEGMENT_SUFFIX}",
                self.horizon
            ));
        }
        Ok(())
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + 4 * self.base.len());
        let mut w = Writer::new(&mut out);
        w.raw(&MANIFEST_MAGIC);
        w.u32(MANIFEST_VERSION);
        w.u32(self.horizon);
        w.count(self.base.len());
        for id in &self.base {
            w.u32(*id);
        }
        w.checksum();
        out
    }

    fn decode(bytes: &[u8]) -> Result<Manifest, DecodeError> {
        if bytes.get(..8) != Some(&MANIFEST_MAGIC[..]) {
            return Err(DecodeError::BadMagic { what: "manifest" });
        }
        let mut r = Reader::new("manifest", checked_body("manifest", bytes)?);
        r.take(8)?;
        let version = r.u32()?;
        if version != MANIFEST_VERSION {
            return Err(DecodeError::Version {
                what: "manifest",
                version,
                reads: "version 1",
            });
        }
        let horizon = r.u32()?;
        let base = (0..r.count(4)?)
            .map(|_| r.u32())
            .collect::<Result<_, _>>()?;
        r.finish()?;
        Ok(Manifest { horizon, base })
    }
}

/// The suffix a file wears for a moment while [`relink`] renames it.
pub const RELINK_SUFFIX: &str = ".relink";

/// Makes the directory entry of `name` durable even if an earlier sync of
/// the directory failed and the kernel dropped it: the entry is removed
/// and made anew by two renames, then the directory is synced. A crash in
/// between leaves `name.relink`, which [`layout`] renames back.
pub fn relink(fs: &dyn Vfs, dir: &Path, name: &str) -> Result<()> {
    let path = dir.join(name);
    let aside = dir.join(format!("{name}{RELINK_SUFFIX}"));
    fs.rename(&path, &aside)
        .and_then(|()| fs.rename(&aside, &path))
        .and_then(|()| fs.sync_dir(dir))
        .map_err(|e| Error::io(format!("relinking {}", path.display()), e))
}

/// Writes and syncs `MANIFEST.tmp`; the manifest in force is untouched.
pub fn prepare(fs: &dyn Vfs, dir: &Path, manifest: &Manifest) -> Result<()> {
    io::write_temp(fs, dir, MANIFEST_FILE, &manifest.encode())
}

/// Renames the prepared manifest into place and syncs the directory: the
/// commit point of a compaction. After an error here the new manifest may
/// or may not be in force; only the next open can tell.
pub fn commit(fs: &dyn Vfs, dir: &Path) -> Result<()> {
    io::rename_temp(fs, dir, MANIFEST_FILE, || {
        fs.sync_dir(dir)
            .map_err(|e| Error::io(format!("syncing {} after the manifest", dir.display()), e))
    })
}

/// The manifest in force (an empty one when there is none), checked.
pub fn read(fs: &dyn Vfs, dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    let file = match fs.open(&path, false) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A crash (or a live writer) inside `relink` leaves the manifest
            // under its passing name for a moment.
            match fs.open(&dir.join(format!("{MANIFEST_FILE}{RELINK_SUFFIX}")), false) {
                Ok(file) => file,
                Err(_) => return Ok(Manifest::default()),
            }
        }
        Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
    };
    let len = file
        .size()
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    // A manifest lists segment ids; anything near this size is damage.
    if len > 64 * 1024 * 1024 {
        return Err(Error::corruption(
            &path,
            0,
            format!("a {len}-byte manifest"),
        ));
    }
    let mut bytes = vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, 0)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    Manifest::decode(&bytes).map_err(|reason| Error::corruption(&path, 0, reason))
}

/// The segments of a store in replay order, after open has finished or
/// undone an interrupted compaction.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub manifest: Manifest,
    /// Every live segment id, in replay order.
    pub order: Vec<u32>,
    /// The largest segment id seen, live or not, so new ids never repeat.
    pub max_id: u32,
    /// Live segments whose file is not (yet) under its own name: a
    /// read-only open settles nothing, so it reads a committed compaction
    /// output as `<id>.seg.tmp` and a file caught mid-relink as
    /// `<id>.seg.relink`.
    pub names: BTreeMap<u32, String>,
}

impl Layout {
    /// The file name segment `id` is read under.
    pub fn file_name(&self, id: u32) -> String {
        self.names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| segment_name(id))
    }
}

/// The layout as a read-only handle sees it: the same segments, in the
/// same order, that [`layout`] would keep, without renaming or removing
/// anything. A committed compaction's output still under its temporary
/// name, and a file caught mid-relink, are read under the name they have;
/// an uncommitted output, and a compacted input not yet removed, are
/// ignored.
///
/// # Errors
/// `Corruption` when the manifest names a segment that is not there (a
/// live writer can be in the middle of a compaction: the caller reads the
/// manifest again and retries); `Io` from the file system.
pub fn layout_read_only(fs: &dyn Vfs, dir: &Path) -> Result<Layout> {
    let manifest = read(fs, dir)?;
    let base: BTreeSet<u32> = manifest.base.iter().copied().collect();
    let mut max_id = manifest.max_id();
    let mut present: BTreeMap<u32, String> = BTreeMap::new();
    for name in settled_listing(fs, dir)? {
        let (id, own) = if let Some(id) = parse_segment_name(&name) {
            (id, true)
        } else if let Some(id) = name
            .strip_suffix(RELINK_SUFFIX)
            .and_then(parse_segment_name)
        {
            (id, false)
        } else if let Some(id) = name
            .strip_suffix(TMP_SUFFIX)
            .and_then(parse_segment_name)
            .filter(|id| base.contains(id))
        {
            (id, false)
        } else {
            continue;
        };
        max_id = max_id.max(id);
        if own || !present.contains_key(&id) {
            present.insert(id, name);
        }
    }
    manifest.check_present(dir, |id| present.contains_key(&id))?;
    let mut order = manifest.base.clone();
    order.extend(
        present
            .keys()
            .filter(|id| **id >= manifest.horizon && !base.contains(id)),
    );
    let names = present
        .into_iter()
        .filter(|(id, name)| *name != segment_name(*id) && order.contains(id))
        .collect();
    Ok(Layout {
        manifest,
        order,
        max_id,
        names,
    })
}

/// Reads the manifest and settles the directory:
/// - an output named by the manifest that is still `<id>.seg.tmp` is
///   renamed to `<id>.seg` (the compaction had committed);
/// - any other `<id>.seg.tmp` is removed (it had not);
/// - a segment below the horizon that the manifest does not name is removed
///   (an input of a committed compaction).
pub fn layout(fs: &dyn Vfs, dir: &Path) -> Result<Layout> {
    let manifest = read(fs, dir)?;
    let base: BTreeSet<u32> = manifest.base.iter().copied().collect();
    let mut max_id = manifest.max_id();
    let mut names = listing(fs, dir)?;
    let mut changed = restore_relinked(fs, dir, &names)?;
    if changed {
        names = listing(fs, dir)?;
    }
    let present: BTreeSet<u32> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
    // A segment of the base may still be under its `.seg.tmp` name (it is
    // renamed below), the horizon too: an in-place repair names its last
    // output as the horizon, since no segment above the damaged ones may
    // exist before its commit.
    let committed: BTreeSet<u32> = names
        .iter()
        .filter_map(|n| n.strip_suffix(TMP_SUFFIX).and_then(parse_segment_name))
        .filter(|id| base.contains(id))
        .collect();
    let found = |id: u32| present.contains(&id) || committed.contains(&id);
    // Checked before anything below the horizon is removed on the
    // manifest's word.
    if manifest != Manifest::default() && !found(manifest.horizon) {
        manifest.check_present(dir, found)?;
    }
    let settles = names.iter().any(|n| n.ends_with(TMP_SUFFIX))
        || present
            .iter()
            .any(|id| *id < manifest.horizon && !base.contains(id));
    if settles && manifest != Manifest::default() {
        // Open is about to act on the manifest (rename outputs, remove
        // inputs). Its own directory entry may never have reached the disk
        // (the sync after its rename may have failed, and the kernel still
        // shows it), so it is committed again first.
        prepare(fs, dir, &manifest)?;
        commit(fs, dir)?;
        names = listing(fs, dir)?;
    }
    for name in &names {
        if let Some(id) = settle_tmp(fs, dir, name, &base, &present)? {
            max_id = max_id.max(id);
            changed = true;
        }
    }
    let mut regular = Vec::new();
    for id in listing(fs, dir)?
        .iter()
        .filter_map(|n| parse_segment_name(n))
    {
        max_id = max_id.max(id);
        if base.contains(&id) {
            continue;
        }
        if id >= manifest.horizon {
            regular.push(id);
        } else {
            let path = dir.join(segment_name(id));
            fs.remove(&path)
                .map_err(|e| Error::io(format!("removing compacted {}", path.display()), e))?;
            changed = true;
        }
    }
    regular.sort_unstable();
    manifest.check_present(dir, |id| {
        fs.open(&dir.join(segment_name(id)), false).is_ok()
    })?;
    if changed {
        fs.sync_dir(dir)
            .map_err(|e| Error::io(format!("syncing {}", dir.display()), e))?;
    }
    let mut order = manifest.base.clone();
    order.extend(regular);
    Ok(Layout {
        manifest,
        order,
        max_id,
        names: BTreeMap::new(),
    })
}

/// The segment id a file name stands for, under any of the names the
/// engine gives a segment (its own, `.tmp`, `.relink`).
pub fn segment_id(name: &str) -> Option<u32> {
    parse_segment_name(name)
        .or_else(|| name.strip_suffix(TMP_SUFFIX).and_then(parse_segment_name))
        .or_else(|| {
            name.strip_suffix(RELINK_SUFFIX)
                .and_then(parse_segment_name)
        })
}

/// A listing of `dir` for a reader beside a live writer. A directory read
/// while entries are added may leave out one added during it yet show a
/// later one (POSIX leaves it unspecified; ext4's hashed directories do
/// it), which would leave a gap in the log. So the directory is listed
/// twice: every segment up to the highest id the first listing shows was
/// created before the second began (the writer's ids grow with time), so
/// the second shows all of them; newer ones wait for the next listing.
pub fn settled_listing(fs: &dyn Vfs, dir: &Path) -> Result<Vec<String>> {
    let first = listing(fs, dir)?;
    let Some(highest) = first.iter().filter_map(|n| segment_id(n)).max() else {
        return listing(fs, dir);
    };
    let mut names = listing(fs, dir)?;
    names.retain(|n| segment_id(n).is_none_or(|id| id <= highest));
    Ok(names)
}

fn listing(fs: &dyn Vfs, dir: &Path) -> Result<Vec<String>> {
    fs.list(dir)
        .map_err(|e| Error::io(format!("listing {}", dir.display()), e))
}

/// Renames back every file a crash inside [`relink`] left under its
/// `.relink` name; true if there was one.
pub(crate) fn restore_relinked(fs: &dyn Vfs, dir: &Path, names: &[String]) -> Result<bool> {
    let mut changed = false;
    for name in names {
        if let Some(original) = name.strip_suffix(RELINK_SUFFIX) {
            fs.rename(&dir.join(name), &dir.join(original))
                .map_err(|e| Error::io(format!("restoring {name}"), e))?;
            changed = true;
        }
    }
    Ok(changed)
}

/// Settles one leftover temporary file: `MANIFEST.tmp` (a compaction that
/// failed before its commit) is removed; an output `<id>.seg.tmp` the
/// manifest names and that is not yet in place is renamed to `<id>.seg`,
/// any other is removed. Returns the segment id of a settled output.
fn settle_tmp(
    fs: &dyn Vfs,
    dir: &Path,
    name: &str,
    base: &BTreeSet<u32>,
    present: &BTreeSet<u32>,
) -> Result<Option<u32>> {
    if name == io::temp_name(MANIFEST_FILE) {
        fs.remove(&dir.join(name))
            .map_err(|e| Error::io(format!("removing {name}"), e))?;
        return Ok(None);
    }
    let Some(id) = name.strip_suffix(TMP_SUFFIX).and_then(parse_segment_name) else {
        return Ok(None);
    };
    let tmp = dir.join(name);
    let result = if base.contains(&id) && !present.contains(&id) {
        fs.rename(&tmp, &dir.join(segment_name(id)))
    } else {
        fs.remove(&tmp)
    };
    result.map_err(|e| Error::io(format!("settling {}", tmp.display()), e))?;
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_round_trip_and_reject_damage() {
        let m = Manifest {
            horizon: 9,
            base: vec![10, 11],
        };
        let bytes = m.encode();
        assert_eq!(Manifest::decode(&bytes), Ok(m));
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(Manifest::decode(&bad).is_err(), "byte {i}");
        }
        assert!(Manifest::decode(&bytes[..bytes.len() - 1]).is_err());
    }
}
