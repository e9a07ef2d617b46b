//! `migrate(from, to)`: the `logstore-migrate` command's native half. It
//! copies a store of the reference SQLite driver (a `.db` file with its
//! blob files in `blobs/` beside it, as `.pattern-data/` holds them) into
//! a new logstore store (a directory), or back, through the library's
//! `logstore::migrate`, which keeps every id, version, timestamp, blob and
//! lease.
//!
//! A path ending in `.db` names an SQLite store; any other path names a
//! logstore directory. Both paths are checked, reading only, before either
//! store is opened: the source must be a store (not a missing path, an
//! empty one, or a database another program made) and the target must be
//! missing or empty, and outside the source (not inside its directory or
//! its blob folder, nor sharing that folder). The target is built beside
//! its final path (`TO.partial`, and for an SQLite target its blob
//! folder's `.partial`) and moved into place once complete, so an
//! interrupted copy leaves nothing at the target; the next run removes
//! what it left. Nothing outside the target is written, except what
//! opening an SQLite source does to its own files when the app that wrote
//! it did not close it (its pending WAL is applied, as any SQLite reader
//! does).

use std::path::{Path, PathBuf};

use logstore::{Durability, LogStore, Options, Place, SqliteStore, Staging, StoreDir, Transfer};
use napi_derive::napi;

/// What a migration copied.
#[napi(object)]
pub struct Migrated {
    pub collections: f64,
    pub documents: f64,
    pub blobs: f64,
    pub blob_bytes: f64,
    pub leases: f64,
    /// True when the target is a logstore directory that verified after
    /// the copy (every record checksum and blob hash); false for an SQLite
    /// target, which has no such check.
    pub verified: bool,
    /// What an interrupted earlier run left beside the target and this run
    /// removed, one sentence each.
    pub removed: Vec<String>,
}

enum Opened {
    Log(LogStore),
    Sqlite(SqliteStore),
}

impl Opened {
    fn transfer(&self) -> &dyn Transfer {
        match self {
            Opened::Log(s) => s,
            Opened::Sqlite(s) => s,
        }
    }
}

fn is_sqlite(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "db")
}

fn options() -> Options {
    Options {
        durability: Durability::Sync,
        auto_compact: false,
        ..Options::default()
    }
}

/// The folder of an SQLite store's blob files: `blobs/` beside the file.
fn blob_dir(db: &Path) -> PathBuf {
    db.parent().unwrap_or(Path::new(".")).join("blobs")
}

fn sqlite_kind(db: &Path) -> Result<StoreDir, String> {
    SqliteStore::probe(db).map_err(|e| format!("{} is not an SQLite database ({e})", db.display()))
}

/// Refuses a source that is not a store, reading without changing it.
fn check_source(path: &Path) -> Result<(), String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{shown} does not exist"),
        _ => format!("cannot read {shown}: {e}"),
    })?;
    if is_sqlite(path) {
        if meta.is_dir() {
            return Err(format!("{shown} is a directory, not an SQLite file"));
        }
        match sqlite_kind(path)? {
            StoreDir::Store => {}
            StoreDir::Empty => return Err(format!("{shown} holds no store (it has no tables)")),
            StoreDir::Other => {
                return Err(format!(
                    "{shown} is an SQLite database but not a store (it has no store_docs table)"
                ))
            }
        }
        return Ok(());
    }
    if !meta.is_dir() {
        return Err(format!("{shown} is a file, not a logstore directory"));
    }
    match LogStore::probe(path).map_err(|e| e.to_string())? {
        StoreDir::Store => {}
        StoreDir::Empty => return Err(format!("{shown} is an empty directory, not a store")),
        StoreDir::Other => {
            return Err(format!(
                "{shown} is not a logstore directory (it has no MANIFEST and no segment file)"
            ))
        }
    }
    Ok(())
}

/// Opens the store to copy from (a logstore directory read-only).
fn open_source(path: &Path) -> Result<Opened, String> {
    let opened = if is_sqlite(path) {
        SqliteStore::open(path, blob_dir(path), options()).map(Opened::Sqlite)
    } else {
        LogStore::open_read_only(path, options()).map(Opened::Log)
    };
    opened.map_err(|e| format!("opening {}: {e}", path.display()))
}

/// Refuses a target that is not new: it must be a missing path, an empty
/// directory or an SQLite file without tables.
fn check_target(path: &Path) -> Result<(), String> {
    let shown = path.display();
    let exists = match std::fs::metadata(path) {
        Ok(meta) => {
            if is_sqlite(path) == meta.is_dir() {
                let what = if meta.is_dir() {
                    "a directory"
                } else {
                    "a file"
                };
                return Err(format!("{shown} already exists as {what}"));
            }
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(format!("cannot read {shown}: {e}")),
    };
    let not_empty = || format!("{shown} is not empty; the target must be a new store");
    let kind = match (exists, is_sqlite(path)) {
        (false, _) => StoreDir::Empty,
        (true, true) => sqlite_kind(path)?,
        (true, false) => LogStore::probe(path).map_err(|e| e.to_string())?,
    };
    if kind != StoreDir::Empty {
        return Err(not_empty());
    }
    if is_sqlite(path) {
        let blobs = blob_dir(path);
        let used = match std::fs::read_dir(&blobs) {
            Ok(mut entries) => entries.next().is_some(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(format!("cannot read {}: {e}", blobs.display())),
        };
        if used {
            return Err(format!(
                "{} (where {shown} keeps its blobs) is not empty; the target must be a new store",
                blobs.display()
            ));
        }
    }
    Ok(())
}

/// Where the store at `path` keeps its files.
fn place_of(path: &Path) -> Place {
    if is_sqlite(path) {
        Place::Sqlite {
            db: path.to_path_buf(),
            blobs: blob_dir(path),
        }
    } else {
        Place::Log(path.to_path_buf())
    }
}

fn copy(from: &Path, to: &Path) -> Result<Migrated, String> {
    check_source(from)?;
    let place = place_of(to);
    logstore::refuse_inside(&place, &place_of(from)).map_err(|e| match e {
        logstore::Error::InvalidInput(message) => message,
        e => e.to_string(),
    })?;
    check_target(to)?;
    let src = open_source(from)?;
    let failed = |e: logstore::Error| {
        format!(
            "copying {} to {}: {e}; nothing was made at {}",
            from.display(),
            to.display(),
            to.display()
        )
    };
    // Built beside the target and moved into place once complete,
    // verified (a logstore directory), closed and synced; dropped on an
    // error, the staging area goes and the target stays as it was.
    let staging = Staging::begin(place, options()).map_err(failed)?;
    let removed = staging
        .leftovers()
        .iter()
        .map(ToString::to_string)
        .collect();
    let dst = staging.store().map_err(failed)?;
    let copied = logstore::migrate(src.transfer(), dst, |_| {}, |_| {}).map_err(failed)?;
    staging.finish().map_err(failed)?;
    src.transfer()
        .close()
        .map_err(|e| format!("closing {}: {e}", from.display()))?;
    Ok(Migrated {
        collections: copied.collections as f64,
        documents: copied.documents as f64,
        blobs: copied.blobs as f64,
        blob_bytes: copied.blob_bytes as f64,
        leases: copied.leases as f64,
        verified: !is_sqlite(to),
        removed,
    })
}

/// Copies the store at `from` into a new store at `to` (synchronous: the
/// `logstore-migrate` command's whole work). A path ending in `.db` is an
/// SQLite store of the reference layout; any other path is a logstore
/// directory. Throws an `Error` whose message names the path and the
/// reason when either path is refused or the copy fails.
#[napi]
pub fn migrate(from: String, to: String) -> napi::Result<Migrated> {
    copy(Path::new(&from), Path::new(&to)).map_err(napi::Error::from_reason)
}
