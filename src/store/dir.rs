//! What a store directory holds: whether it is a store at all, and which
//! of its entries the engine did not make.
//!
//! Open refuses a directory that holds something but no store (so a
//! mistyped path never turns a folder of other files into a store, and an
//! inspection never writes there), and `verify` and `stats` report every
//! entry that is not one the engine makes, by name and kind: a link, a
//! FIFO, a folder where a file belongs, a stray file. The engine never
//! reads, writes or removes such an entry (`io::RealFs` refuses to).

use std::path::{Path, PathBuf};

use crate::blob_files::{is_content_name, is_folder_name, is_staging_name, BLOB_DIR, TMP_DIR};
use crate::io::{EntryKind, Vfs};
use crate::log::manifest::{segment_id, MANIFEST_FILE, RELINK_SUFFIX, TMP_SUFFIX};
use crate::log::recovery::QUARANTINE_DIR;
use crate::{Error, Result};

use super::snapshot_file::SNAPSHOT_FILE;
use super::LOCK_FILE;

/// What a directory is, to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreDir {
    /// It has a manifest or a segment file: a store.
    Store,
    /// It is empty (a lock file alone counts as empty: a first open that
    /// stopped before its first segment): a store may be made there.
    Empty,
    /// It holds other things and no store.
    Other,
}

/// Whether the directory `dir` of `fs` holds a store.
///
/// # Errors
/// `Io` when it cannot be listed.
pub(crate) fn classify(fs: &dyn Vfs, dir: &Path) -> Result<StoreDir> {
    let entries = fs
        .list_entries(dir)
        .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
    let is_file = |kind| kind == EntryKind::File;
    if entries
        .iter()
        .any(|e| is_file(e.kind) && (e.name == MANIFEST_FILE || segment_id(&e.name).is_some()))
    {
        return Ok(StoreDir::Store);
    }
    if entries
        .iter()
        .all(|e| is_file(e.kind) && e.name == LOCK_FILE)
    {
        return Ok(StoreDir::Empty);
    }
    Ok(StoreDir::Other)
}

/// An entry of a store directory that the engine did not make: never
/// read, written or removed by it, and reported by `verify` and `stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignEntry {
    /// Where it is.
    pub path: PathBuf,
    /// What it is: "a symbolic link", "a directory", "a file" or "a special
    /// file".
    pub kind: &'static str,
}

impl std::fmt::Display for ForeignEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} the store did not make (left alone)",
            self.path.display(),
            self.kind
        )
    }
}

/// Every entry under `dir` that the engine does not make, in a stable
/// order. Folders the engine does not make are not entered.
///
/// # Errors
/// `Io` when a folder of the engine's cannot be listed.
pub(crate) fn foreign_entries(fs: &dyn Vfs, dir: &Path) -> Result<Vec<ForeignEntry>> {
    Ok(foreign_kinds(fs, dir)?
        .into_iter()
        .map(|(path, kind)| ForeignEntry {
            path,
            kind: match kind {
                EntryKind::File => "a file",
                EntryKind::Dir => "a directory",
                EntryKind::Link => "a symbolic link",
                EntryKind::Other => "a special file",
            },
        })
        .collect())
}

fn foreign_kinds(fs: &dyn Vfs, dir: &Path) -> Result<Vec<(PathBuf, EntryKind)>> {
    let list = |at: &Path| {
        fs.list_entries(at)
            .map_err(|e| Error::io(format!("listing {}", at.display()), e))
    };
    let mut foreign = Vec::new();
    for entry in list(dir)? {
        let name = entry.name.as_str();
        let path = dir.join(name);
        let ours = match entry.kind {
            EntryKind::File => {
                [LOCK_FILE, MANIFEST_FILE, SNAPSHOT_FILE].contains(&name)
                    || name == format!("{MANIFEST_FILE}{TMP_SUFFIX}")
                    || name == format!("{SNAPSHOT_FILE}{TMP_SUFFIX}")
                    || name == format!("{MANIFEST_FILE}{RELINK_SUFFIX}")
                    || segment_id(name).is_some()
            }
            EntryKind::Dir if name == BLOB_DIR => {
                blob_entries(fs, &path, &mut foreign)?;
                true
            }
            EntryKind::Dir if name == QUARANTINE_DIR => {
                for inner in list(&path)? {
                    let ours = match inner.kind {
                        EntryKind::File => inner.name.contains(".at-"),
                        // The originals a repair in place kept.
                        EntryKind::Dir => super::repair::is_kept_folder(&inner.name),
                        _ => false,
                    };
                    if !ours {
                        foreign.push((path.join(&inner.name), inner.kind));
                    }
                }
                true
            }
            _ => false,
        };
        if !ours {
            foreign.push((path, entry.kind));
        }
    }
    Ok(foreign)
}

fn blob_entries(fs: &dyn Vfs, root: &Path, foreign: &mut Vec<(PathBuf, EntryKind)>) -> Result<()> {
    let list = |at: &Path| {
        fs.list_entries(at)
            .map_err(|e| Error::io(format!("listing {}", at.display()), e))
    };
    for entry in list(root)? {
        let path = root.join(&entry.name);
        let folder = entry.name.as_str();
        let ours_dir =
            entry.kind == EntryKind::Dir && (folder == TMP_DIR || is_folder_name(folder));
        if !ours_dir {
            foreign.push((path, entry.kind));
            continue;
        }
        for inner in list(&path)? {
            let ours = inner.kind == EntryKind::File
                && if folder == TMP_DIR {
                    is_staging_name(&inner.name)
                } else {
                    is_content_name(folder, &inner.name)
                };
            if !ours {
                foreign.push((path.join(&inner.name), inner.kind));
            }
        }
    }
    Ok(())
}
