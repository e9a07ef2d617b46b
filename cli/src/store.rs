//! Naming a store on the command line: a directory is a log store; a file
//! ending in `.db` is an SQLite store whose blobs live in `blobs/` beside
//! it (as the reference package lays out `.pattern-data/`), or in
//! `--blob-dir`; a `postgres://` URL is a PostgreSQL store (`crate::pg`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use logstore::{Durability, LogStore, Options, PgStore, SqliteStore, Transfer};

/// An open store of either kind.
pub enum Opened {
    Log(LogStore),
    Sqlite(SqliteStore),
    Pg(PgStore),
}

impl Opened {
    /// The store as the export/import interface every driver has.
    pub fn transfer(&self) -> &dyn Transfer {
        match self {
            Opened::Log(s) => s,
            Opened::Sqlite(s) => s,
            Opened::Pg(s) => s,
        }
    }

    /// The log store, or an error naming the command for SQLite stores.
    pub fn log(&self, command: &str) -> Result<&LogStore> {
        match self {
            Opened::Log(s) => Ok(s),
            Opened::Sqlite(_) | Opened::Pg(_) => bail!(
                "`{command}` works on log stores (a directory), not on SQLite files or PostgreSQL"
            ),
        }
    }
}

/// True when `path` names an SQLite store.
pub fn is_sqlite(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "db")
}

fn options() -> Options {
    Options {
        durability: Durability::Sync,
        // A tool run is short; it compacts only when asked to.
        auto_compact: false,
        ..Options::default()
    }
}

/// Opens the store at `path`; `create` allows a new one.
pub fn open(path: &Path, blob_dir: Option<&Path>, create: bool) -> Result<Opened> {
    if let Some(url) = crate::pg::url_of(path) {
        return crate::pg::open(url).map(Opened::Pg);
    }
    if !create && !path.exists() {
        bail!("no store at {}", path.display());
    }
    if is_sqlite(path) {
        let blobs: PathBuf = match blob_dir {
            Some(dir) => dir.to_path_buf(),
            None => path.parent().unwrap_or(Path::new(".")).join("blobs"),
        };
        Ok(SqliteStore::open(path, blobs, options()).map(Opened::Sqlite)?)
    } else {
        if !create && !path.is_dir() {
            bail!(
                "{} is neither a log store directory nor a .db file",
                path.display()
            );
        }
        Ok(LogStore::open(path, options()).map(Opened::Log)?)
    }
}
