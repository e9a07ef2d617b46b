//! Naming a store on the command line: a directory is a log store; a file
//! ending in `.db` is an SQLite store whose blobs live in `blobs/` beside
//! it (as the reference package lays out `.pattern-data/`), or in
//! `--blob-dir`; a `postgres://` URL is a PostgreSQL store (`crate::pg`).
//!
//! Only commands that fill a new store (`put`, `load`, a `migrate` target)
//! make one, and only in a missing or empty directory; every other command
//! refuses a path that holds no store, so a mistyped path never becomes an
//! empty store. Commands that only read open a log store read-only: they
//! write nothing, and work beside a program that has the store open.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use logstore::{Durability, LogStore, Options, PgStore, Place, SqliteStore, StoreDir, Transfer};

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

/// What a command does with the store it names.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads an existing store and writes nothing: a log store is opened
    /// read-only.
    Inspect,
    /// Writes to an existing store.
    Write,
    /// Writes, and makes a new store in a missing or empty directory (or a
    /// missing `.db` file), saying so on stderr.
    Create,
}

/// True when `path` names an SQLite store.
pub fn is_sqlite(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "db")
}

pub fn options() -> Options {
    Options {
        durability: Durability::Sync,
        // A tool run is short; it compacts only when asked to.
        auto_compact: false,
        ..Options::default()
    }
}

/// What a path names, as a log store directory.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Found {
    Missing,
    /// Something other than a directory.
    File,
    Dir(StoreDir),
}

/// Looks at `path` without changing anything.
pub fn look(path: &Path) -> Result<Found> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Found::Missing),
        Err(e) => Err(anyhow::Error::new(e).context(format!("reading {}", path.display()))),
        Ok(meta) if !meta.is_dir() => Ok(Found::File),
        Ok(_) => Ok(Found::Dir(LogStore::probe(path)?)),
    }
}

/// Refuses `path` unless it is a log store directory.
pub fn existing_log_store(path: &Path) -> Result<()> {
    let why = match look(path)? {
        Found::Dir(StoreDir::Store) => return Ok(()),
        Found::File => bail!("{} is a file, not a logstore directory", path.display()),
        Found::Missing => "it does not exist",
        Found::Dir(StoreDir::Empty) => "it is empty",
        Found::Dir(StoreDir::Other) => "it has no MANIFEST and no segment file",
    };
    bail!("{} is not a logstore directory ({why})", path.display())
}

/// Opens the store at `path` as `access` allows.
pub fn open(path: &Path, blob_dir: Option<&Path>, access: Access) -> Result<Opened> {
    if let Some(url) = crate::pg::url_of(path) {
        return crate::pg::open(url).map(Opened::Pg);
    }
    if is_sqlite(path) {
        return open_sqlite(path, blob_dir, access);
    }
    if access == Access::Create {
        match look(path)? {
            Found::Missing | Found::Dir(StoreDir::Empty) => {
                let store = LogStore::open(path, options())?;
                eprintln!("created a new store in {}", path.display());
                return Ok(Opened::Log(store));
            }
            Found::Dir(StoreDir::Other) => bail!(
                "{} is not a logstore directory (it holds other files); a new store is made only in a missing or empty directory",
                path.display()
            ),
            Found::File | Found::Dir(StoreDir::Store) => {}
        }
    }
    existing_log_store(path)?;
    Ok(Opened::Log(if access == Access::Inspect {
        LogStore::open_read_only(path, options())?
    } else {
        LogStore::open(path, options())?
    }))
}

fn open_sqlite(path: &Path, blob_dir: Option<&Path>, access: Access) -> Result<Opened> {
    let exists = path.exists();
    if !exists && access != Access::Create {
        bail!(
            "no SQLite store at {} (the file does not exist)",
            path.display()
        );
    }
    // Another program's database is left as it is: opening it as a store
    // would add tables and switch it to WAL.
    let found = if exists {
        SqliteStore::probe(path)
            .with_context(|| format!("reading {} as an SQLite database", path.display()))?
    } else {
        StoreDir::Empty
    };
    match found {
        StoreDir::Other => bail!(
            "{} is an SQLite database but not a store (it has no store_docs table); it was left as it is",
            path.display()
        ),
        StoreDir::Empty if exists && access != Access::Create => bail!(
            "{} holds no store (it has no tables); it was left as it is",
            path.display()
        ),
        _ => {}
    }
    let store = SqliteStore::open(path, blobs_of(path, blob_dir), options())?;
    if !exists {
        eprintln!("created a new SQLite store at {}", path.display());
    }
    Ok(Opened::Sqlite(store))
}

/// The blob folder of the SQLite store `db`: `--blob-dir`, or `blobs/`
/// beside the file.
fn blobs_of(db: &Path, blob_dir: Option<&Path>) -> PathBuf {
    match blob_dir {
        Some(dir) => dir.to_path_buf(),
        None => db.parent().unwrap_or(Path::new(".")).join("blobs"),
    }
}

/// Where the store at `path` keeps its files (not a PostgreSQL URL).
pub fn place_of(path: &Path, blob_dir: Option<&Path>) -> Place {
    if is_sqlite(path) {
        Place::Sqlite {
            db: path.to_path_buf(),
            blobs: blobs_of(path, blob_dir),
        }
    } else {
        Place::Log(path.to_path_buf())
    }
}

/// The place of a new store that `command` makes at `path`, refused with
/// the reason unless `path` is missing or empty. Reads only.
pub fn new_place(path: &Path, blob_dir: Option<&Path>, command: &str) -> Result<Place> {
    if let Some(url) = crate::pg::url_of(path) {
        // The server's schemas are checked where the staging schema is
        // made, in one transaction.
        return Ok(Place::Postgres {
            url: url.to_string(),
        });
    }
    let shown = path.display();
    if is_sqlite(path) {
        if path.exists() {
            let found = SqliteStore::probe(path)
                .with_context(|| format!("reading {shown} as an SQLite database"))?;
            match found {
                StoreDir::Empty => {}
                StoreDir::Other => bail!(
                    "{shown} is an SQLite database but not a store (it has no store_docs table); it was left as it is"
                ),
                StoreDir::Store => bail!(
                    "{shown} is not empty (it holds a store); {command} makes a new store only where there is none"
                ),
            }
        }
        return Ok(place_of(path, blob_dir));
    }
    match look(path)? {
        Found::Missing | Found::Dir(StoreDir::Empty) => Ok(Place::Log(path.to_path_buf())),
        Found::Dir(StoreDir::Other) => bail!(
            "{shown} is not a logstore directory (it holds other files); a new store is made only in a missing or empty directory"
        ),
        Found::Dir(StoreDir::Store) => bail!(
            "{shown} is not empty (it holds a store); {command} makes a new store only in a missing or empty directory"
        ),
        Found::File => bail!("{shown} is a file, not a logstore directory"),
    }
}
