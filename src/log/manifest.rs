//! The manifest: which compacted segments replay first, and from which
//! segment id on the writer's own segments follow.
//!
//! Compaction writes its output segments as `<id>.seg.tmp`, then commits by
//! replacing `MANIFEST` atomically (write `MANIFEST.tmp`, sync, rename, sync
//! the directory), then renames the outputs to `<id>.seg` and removes its
//! inputs. Open finishes or undoes whatever a crash interrupted (see
//! [`layout`]). FORMAT.md describes the bytes.

use std::collections::BTreeSet;
use std::io;
use std::path::Path;

use crate::io::Vfs;
use crate::log::record::mask;
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
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + 4 * self.base.len());
        out.extend_from_slice(&MANIFEST_MAGIC);
        out.extend_from_slice(&MANIFEST_VERSION.to_le_bytes());
        out.extend_from_slice(&self.horizon.to_le_bytes());
        out.extend_from_slice(&(self.base.len() as u32).to_le_bytes());
        for id in &self.base {
            out.extend_from_slice(&id.to_le_bytes());
        }
        let crc = mask(crc32fast::hash(&out));
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> std::result::Result<Manifest, String> {
        let word = |at: usize| -> std::result::Result<u32, String> {
            bytes
                .get(at..at + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| format!("the manifest ends at byte {}", bytes.len()))
        };
        if bytes.get(..8) != Some(&MANIFEST_MAGIC[..]) {
            return Err("the manifest does not start with its magic".into());
        }
        let count = word(16)? as usize;
        let end = 20 + 4 * count;
        if bytes.len() != end + 4 {
            return Err(format!(
                "the manifest is {} bytes, expected {}",
                bytes.len(),
                end + 4
            ));
        }
        if mask(crc32fast::hash(&bytes[..end])) != word(end)? {
            return Err("the manifest checksum does not match".into());
        }
        let version = word(8)?;
        if version != MANIFEST_VERSION {
            return Err(format!(
                "manifest format version {version} is not supported"
            ));
        }
        let base = (0..count)
            .map(|i| word(20 + 4 * i))
            .collect::<std::result::Result<_, _>>()?;
        Ok(Manifest {
            horizon: word(12)?,
            base,
        })
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
    let tmp = dir.join(format!("{MANIFEST_FILE}{TMP_SUFFIX}"));
    let context = || format!("writing {}", tmp.display());
    let file = fs.open(&tmp, true).map_err(|e| Error::io(context(), e))?;
    let bytes = manifest.encode();
    file.set_len(0)
        .and_then(|()| file.write_all_at(&bytes, 0))
        .and_then(|()| file.sync_data())
        .map_err(|e| Error::io(context(), e))
}

/// Renames the prepared manifest into place and syncs the directory: the
/// commit point of a compaction. After an error here the new manifest may
/// or may not be in force; only the next open can tell.
pub fn commit(fs: &dyn Vfs, dir: &Path) -> Result<()> {
    let tmp = dir.join(format!("{MANIFEST_FILE}{TMP_SUFFIX}"));
    let path = dir.join(MANIFEST_FILE);
    let context = || format!("committing {}", path.display());
    fs.rename(&tmp, &path)
        .map_err(|e| Error::io(context(), e))?;
    fs.sync_dir(dir).map_err(|e| Error::io(context(), e))
}

/// The manifest in force (an empty one when there is none), checked.
pub fn read(fs: &dyn Vfs, dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    let file = match fs.open(&path, false) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Manifest::default()),
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
}

/// Reads the manifest and settles the directory:
/// - an output named by the manifest that is still `<id>.seg.tmp` is
///   renamed to `<id>.seg` (the compaction had committed);
/// - any other `<id>.seg.tmp` is removed (it had not);
/// - a segment below the horizon that the manifest does not name is removed
///   (an input of a committed compaction).
pub fn layout(fs: &dyn Vfs, dir: &Path) -> Result<Layout> {
    let manifest = read(fs, dir)?;
    let listing = |fs: &dyn Vfs| {
        fs.list(dir)
            .map_err(|e| Error::io(format!("listing {}", dir.display()), e))
    };
    let base: BTreeSet<u32> = manifest.base.iter().copied().collect();
    let mut max_id = manifest
        .base
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(manifest.horizon);
    let mut changed = false;
    let mut names = listing(fs)?;
    // A crash inside `relink` leaves the file under its `.relink` name.
    for name in &names {
        if let Some(original) = name.strip_suffix(RELINK_SUFFIX) {
            fs.rename(&dir.join(name), &dir.join(original))
                .map_err(|e| Error::io(format!("restoring {name}"), e))?;
            changed = true;
        }
    }
    if changed {
        names = listing(fs)?;
    }
    let present: BTreeSet<u32> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
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
        names = listing(fs)?;
    }
    for name in &names {
        if name == &format!("{MANIFEST_FILE}{TMP_SUFFIX}") {
            // A compaction that failed before its commit.
            fs.remove(&dir.join(name))
                .map_err(|e| Error::io(format!("removing {name}"), e))?;
            continue;
        }
        let Some(id) = name.strip_suffix(TMP_SUFFIX).and_then(parse_segment_name) else {
            continue;
        };
        max_id = max_id.max(id);
        let tmp = dir.join(name);
        let result = if base.contains(&id) && !present.contains(&id) {
            fs.rename(&tmp, &dir.join(segment_name(id)))
        } else {
            fs.remove(&tmp)
        };
        result.map_err(|e| Error::io(format!("settling {}", tmp.display()), e))?;
        changed = true;
    }
    let mut regular = Vec::new();
    for id in listing(fs)?.iter().filter_map(|n| parse_segment_name(n)) {
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
    for id in &manifest.base {
        if fs.open(&dir.join(segment_name(*id)), false).is_err() {
            return Err(Error::corruption(
                dir.join(MANIFEST_FILE),
                0,
                format!("the manifest names segment {id}{SEGMENT_SUFFIX}, which is missing"),
            ));
        }
    }
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
    })
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
