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
//! its blob folder, nor sharing that folder). Nothing outside the target
//! is written, except what opening an SQLite source does to its own files
//! when the app that wrote it did not close it (its pending WAL is
//! applied, as any SQLite reader does).

use std::path::{Path, PathBuf};

use logstore::{Durability, LogStore, Options, SqliteStore, StoreDir, Transfer};
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

/// Opens (creating it) the store to copy into.
fn open_target(path: &Path) -> Result<Opened, String> {
    let opened = if is_sqlite(path) {
        SqliteStore::open(path, blob_dir(path), options()).map(Opened::Sqlite)
    } else {
        LogStore::open(path, options()).map(Opened::Log)
    };
    opened.map_err(|e| format!("creating {}: {e}", path.display()))
}

/// `path` made absolute with its longest existing prefix resolved
/// (symlinks, `.` and `..`, as the OS would follow them) and the missing
/// rest normalized by its components, so paths that would name the same
/// place compare equal.
fn resolve(path: &Path) -> Result<PathBuf, String> {
    let absolute =
        std::path::absolute(path).map_err(|e| format!("cannot resolve {}: {e}", path.display()))?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    let mut resolved = loop {
        match std::fs::canonicalize(existing) {
            Ok(real) => break real,
            Err(_) => match (existing.parent(), existing.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name.to_owned());
                    existing = parent;
                }
                // `..` or `/` last: resolve what is left by its components.
                _ => break PathBuf::from(existing),
            },
        }
    };
    for name in rest.into_iter().rev() {
        if name == ".." {
            resolved.pop();
        } else if name != "." {
            resolved.push(name);
        }
    }
    Ok(resolved)
}

/// The places a store at `path` writes: its directory, or an SQLite file
/// and its blob folder, each as the user named it and resolved.
fn places(path: &Path) -> Result<Vec<(PathBuf, PathBuf)>, String> {
    let mut named = vec![path.to_path_buf()];
    if is_sqlite(path) {
        named.push(blob_dir(path));
    }
    named
        .into_iter()
        .map(|p| resolve(&p).map(|real| (p, real)))
        .collect()
}

/// Refuses a target that is the source, lies inside it, or would keep its
/// blobs there: the copy would write into the store it reads. (A source
/// inside the target is left to `check_target`: the target is not empty.)
fn check_apart(from: &Path, to: &Path) -> Result<(), String> {
    let (source, target) = (places(from)?, places(to)?);
    if source[0].1 == target[0].1 {
        return Err("the source and the target are the same path".into());
    }
    let (from_shown, to_shown) = (from.display(), to.display());
    for (i, (dst_named, dst)) in target.iter().enumerate() {
        for (j, (src_named, src)) in source.iter().enumerate() {
            if !dst.starts_with(src) {
                continue;
            }
            let (dst_shown, src_shown) = (dst_named.display(), src_named.display());
            let place = match (i, j) {
                (0, 0) => format!("{to_shown} is inside {from_shown}"),
                (0, _) => {
                    format!("{to_shown} is inside {src_shown}, where {from_shown} keeps its blobs")
                }
                (_, 0) => {
                    format!("{to_shown} would keep its blobs in {dst_shown}, inside {from_shown}")
                }
                _ => {
                    format!("{to_shown} would keep its blobs in {dst_shown}, as {from_shown} does")
                }
            };
            return Err(format!("{place}; the target must be outside the source"));
        }
    }
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<Migrated, String> {
    check_source(from)?;
    check_apart(from, to)?;
    check_target(to)?;
    let src = open_source(from)?;
    let dst = open_target(to)?;
    let incomplete = |e: logstore::Error| {
        format!(
            "copying {} to {}: {e}; {} is incomplete: remove it before trying again",
            from.display(),
            to.display(),
            to.display()
        )
    };
    let copied =
        logstore::migrate(src.transfer(), dst.transfer(), |_| {}, |_| {}).map_err(incomplete)?;
    let verified = match &dst {
        Opened::Log(log) => {
            let report = log.verify().map_err(incomplete)?;
            if !report.is_clean() {
                let problems: Vec<String> =
                    report.problems.iter().map(ToString::to_string).collect();
                return Err(format!(
                    "{} does not verify after the copy: {}",
                    to.display(),
                    problems.join("; ")
                ));
            }
            true
        }
        Opened::Sqlite(_) => false,
    };
    dst.transfer()
        .close()
        .map_err(|e| format!("closing {}: {e}", to.display()))?;
    src.transfer()
        .close()
        .map_err(|e| format!("closing {}: {e}", from.display()))?;
    Ok(Migrated {
        collections: copied.collections as f64,
        documents: copied.documents as f64,
        blobs: copied.blobs as f64,
        blob_bytes: copied.blob_bytes as f64,
        leases: copied.leases as f64,
        verified,
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
