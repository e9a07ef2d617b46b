//! A staging area on disk: its name, its marker, and the file steps
//! (synced) that make, recognise, fill and remove it.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The marker file every staging area holds, written before anything else
/// goes into the area: what proves an area was made by this module.
pub const MARKER: &str = "LOGSTORE-STAGING";

/// The marker's first line, which recognition checks.
pub(super) const MARKER_TEXT: &str = "logstore staging area\n\
This directory holds a store being built by `logstore migrate` or `logstore load`.\n\
It is moved into place when complete; a run interrupted before that leaves it\n\
here, and the next run for the same target removes it.\n";

/// In a database's area: the store was complete, closed and synced before
/// the first rename into place.
pub(super) const COMPLETE: &str = "COMPLETE";

/// The suffix of a staging area's name.
pub(super) const SUFFIX: &str = ".partial";

/// The staging area of the final path `target`: `target.partial` beside it.
///
/// # Errors
/// `InvalidInput` when `target` has no file name (`/`, `..`).
pub fn staging_area(target: &Path) -> Result<PathBuf> {
    let name = target.file_name().ok_or_else(|| {
        Error::invalid(format!(
            "{} names no file or directory to make (it has no final name)",
            target.display()
        ))
    })?;
    let mut area = name.to_os_string();
    area.push(SUFFIX);
    Ok(target.with_file_name(area))
}

pub(super) fn io_at<'a>(what: &str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    let what = what.to_string();
    move |e| Error::io(format!("{what} {}", path.display()), e)
}

/// Syncs the directory `dir` (its entries).
pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_at("syncing", dir))
}

/// The directory holding `path`, for syncing an entry made in it.
pub(super) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A staging area's lock: the marker file, held open with an exclusive
/// `flock` by the run that made the area (or that removes it), for as
/// long as it works in the area. Another run finding the area locked
/// leaves it alone; a killed run's lock goes with its process.
pub(super) enum MarkerLock {
    /// Taken: this run may remove or finish the area.
    Held(File),
    /// Another running process holds it.
    Busy,
    /// The area has no marker (a run killed before writing one).
    NoMarker,
}

/// Takes the lock of the area `area` (never through a link).
pub(super) fn lock_marker(area: &Path) -> Result<MarkerLock> {
    let marker = area.join(MARKER);
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits().cast_signed())
        .open(&marker)
    {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(MarkerLock::NoMarker),
        Err(e) => return Err(Error::io(format!("opening {}", marker.display()), e)),
        Ok(file) => file,
    };
    match file.try_lock() {
        Ok(()) => Ok(MarkerLock::Held(file)),
        Err(fs::TryLockError::WouldBlock) => Ok(MarkerLock::Busy),
        Err(fs::TryLockError::Error(e)) => {
            Err(Error::io(format!("locking {}", marker.display()), e))
        }
    }
}

/// True when `lock` is the lock of the marker now in `area` (the same
/// file, not one another run put there after removing this run's area).
pub(super) fn holds(area: &Path, lock: &File) -> bool {
    match (fs::symlink_metadata(area.join(MARKER)), lock.metadata()) {
        (Ok(now), Ok(held)) => now.dev() == held.dev() && now.ino() == held.ino(),
        _ => false,
    }
}

/// Writes the marker of the new area `area`, synced, locked from the
/// moment it exists; returns the lock.
pub(super) fn write_marker(area: &Path) -> Result<File> {
    let path = area.join(MARKER);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io_at("creating", &path))?;
    file.try_lock()
        .map_err(|e| Error::io(format!("locking {}", path.display()), io::Error::other(e)))?;
    file.write_all(MARKER_TEXT.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_at("writing", &path))?;
    Ok(file)
}

/// Creates `path` with `text`, synced.
pub(super) fn write_synced(path: &Path, text: &str) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_at("creating", path))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_at("writing", path))
}

/// What is at a staging area's path.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum AreaState {
    Missing,
    /// A directory holding the marker: made by a run of this module.
    Ours,
    /// Anything else, and why: never touched.
    Foreign(String),
}

pub(super) fn area_state(area: &Path) -> Result<AreaState> {
    let meta = match fs::symlink_metadata(area) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(AreaState::Missing),
        Err(e) => return Err(Error::io(format!("reading {}", area.display()), e)),
        Ok(meta) => meta,
    };
    if meta.file_type().is_symlink() {
        return Ok(AreaState::Foreign("it is a symbolic link".into()));
    }
    if !meta.is_dir() {
        return Ok(AreaState::Foreign("it is not a directory".into()));
    }
    let entries = fs::read_dir(area)
        .map_err(io_at("listing", area))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<Vec<_>>>()
        .map_err(io_at("listing", area))?;
    // An empty directory holds nothing to lose: a run killed between
    // making the area and writing its marker leaves one.
    if entries.is_empty() {
        return Ok(AreaState::Ours);
    }
    let marker = area.join(MARKER);
    match fs::symlink_metadata(&marker) {
        Ok(m) if m.is_file() => {}
        _ => {
            return Ok(AreaState::Foreign(
                "it has no LOGSTORE-STAGING marker".into(),
            ))
        }
    }
    // No more than a marker holds: a planted file may be any size.
    let mut text = Vec::new();
    File::open(&marker)
        .and_then(|f| f.take(MARKER_TEXT.len() as u64 + 1).read_to_end(&mut text))
        .map_err(io_at("reading", &marker))?;
    // The whole marker; or, alone in the area, the start of one (a run
    // killed while writing it: nothing goes into an area before its
    // marker is whole and synced). A power loss before the marker's sync
    // may leave its written length with any sector still zeros, so a byte
    // of a lone marker is its text's byte or zero.
    let whole = text == MARKER_TEXT.as_bytes();
    let started = entries.len() == 1
        && text.len() <= MARKER_TEXT.len()
        && text
            .iter()
            .zip(MARKER_TEXT.as_bytes())
            .all(|(&got, &want)| got == want || got == 0);
    if !(whole || started) {
        return Ok(AreaState::Foreign(
            "its LOGSTORE-STAGING file is not logstore's marker".into(),
        ));
    }
    // A run puts nothing else there: a marker among other files (copied
    // into a directory of one's own) does not make them a leftover.
    if let Some(other) = entries.iter().find(|e| !made_in(area, e)) {
        return Ok(AreaState::Foreign(format!(
            "it holds {}, which logstore does not put there",
            other.to_string_lossy()
        )));
    }
    Ok(AreaState::Ours)
}

/// True when `entry` is a name a run puts in `area`: the marker, the
/// completion mark, and the store under its final name (with an SQLite
/// database's journal files beside it).
fn made_in(area: &Path, entry: &std::ffi::OsStr) -> bool {
    if entry == MARKER || entry == COMPLETE {
        return true;
    }
    let Some(name) = area
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(SUFFIX))
    else {
        return false;
    };
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .any(|tail| entry.to_str() == Some(&format!("{name}{tail}")))
}

/// The content of `final_path` inside its area.
pub(super) fn content_of(area: &Path, final_path: &Path) -> Result<PathBuf> {
    let name = final_path
        .file_name()
        .ok_or_else(|| Error::invalid(format!("{} has no final name", final_path.display())))?;
    Ok(area.join(name))
}

/// Removes an area of ours and syncs its parent.
///
/// The marker goes last, after the removal of everything else is synced:
/// an area cut short (a kill, or a power loss keeping some unsynced
/// removes and not others) still holds its marker, so the next run takes
/// it for a leftover instead of refusing it as foreign.
pub(super) fn remove_area(area: &Path) -> Result<()> {
    let entries = fs::read_dir(area)
        .map_err(io_at("listing", area))?
        .collect::<io::Result<Vec<_>>>()
        .map_err(io_at("listing", area))?;
    for entry in entries {
        if entry.file_name() == MARKER {
            continue;
        }
        let path = entry.path();
        // Never through a link: a link planted inside is removed, never
        // what it points at (`remove_dir_all` does not follow links).
        let is_dir = entry.file_type().map_err(io_at("reading", &path))?.is_dir();
        if is_dir {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        }
        .map_err(io_at("removing", &path))?;
    }
    sync_dir(area)?;
    let marker = area.join(MARKER);
    match fs::remove_file(&marker) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(Error::io(format!("removing {}", marker.display()), e))
        }
        _ => {}
    }
    fs::remove_dir(area).map_err(io_at("removing", area))?;
    sync_dir(parent_of(area))
}

/// Refuses `path` unless it is missing, an empty directory (`dir`) or a
/// file without tables (an SQLite database).
pub(super) fn check_new(path: &Path, dir: bool, what: &str) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        Ok(meta) => meta,
    };
    let not_new = |why: &str| {
        Err(Error::invalid(format!(
            "{}{what} {why}; a new store is made only where there is none",
            path.display()
        )))
    };
    if meta.file_type().is_symlink() {
        return not_new("is a symbolic link");
    }
    if dir {
        if !meta.is_dir() {
            return not_new("is a file, not a directory");
        }
        if fs::read_dir(path)
            .map_err(io_at("listing", path))?
            .next()
            .is_some()
        {
            return not_new("is not empty");
        }
        return Ok(());
    }
    if meta.is_dir() {
        return not_new("is a directory");
    }
    if is_empty_database(path)? {
        return Ok(());
    }
    not_new("is not empty")
}

/// True when the file at `path` is an SQLite database without tables.
#[cfg(feature = "sqlite")]
pub(super) fn is_empty_database(path: &Path) -> Result<bool> {
    Ok(crate::SqliteStore::probe(path)? == crate::StoreDir::Empty)
}

#[cfg(not(feature = "sqlite"))]
pub(super) fn is_empty_database(_path: &Path) -> Result<bool> {
    Ok(false)
}
