//! What a `NativeStore` handle serves: a log store in a directory (written
//! by this process, or followed read-only) or a PostgreSQL store, and the
//! process-wide table that lets a second open of a directory share the
//! engine of the first.
//!
//! The table lives here, in the addon, rather than in the JavaScript
//! module: a dev server that reloads its modules loads a new copy of the
//! module, but the addon is loaded once per process, so the reloaded copy
//! still finds the engine its predecessor opened. Entries are keyed by the
//! directory itself (its device and inode, which an open of it holds so
//! neither is reused), not by a path: any path that reaches it (a symlink,
//! `..`, a new name after a rename) finds its engine, and a new directory
//! made at an old path does not. Entries count the handles open on them;
//! the engine closes when the last one closes (or is collected unclosed).
//! Read-only handles take no lock on a store and stay out of the table:
//! each follows the directory on its own.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use logstore::{Durability, Error, LogStore, Options, PgStore, Result, Store};

/// The engine behind a handle.
// One per open store, behind an `Arc`: its size costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Engine {
    Log(LogStore),
    Postgres(PgStore),
}

/// The options a directory's engine was opened with: a second open of the
/// directory in this process shares it only when they are the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub durability: Durability,
    pub max_blob_bytes: u64,
    /// A test's manual clock: an engine on one is never shared.
    pub manual_clock: bool,
}

/// An engine and where the table keeps it.
pub struct Shared {
    engine: Engine,
    /// Unique in this process: names the engine to the JavaScript layer,
    /// whose handles on one engine share one write queue.
    id: u64,
    /// The directory under which the table holds it; `None` when it is
    /// not in the table (PostgreSQL, read-only).
    key: Option<DirId>,
}

impl Shared {
    fn new(engine: Engine, key: Option<DirId>) -> Arc<Shared> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Arc::new(Shared { engine, id, key })
    }

    fn alone(engine: Engine) -> Arc<Shared> {
        Shared::new(engine, None)
    }

    /// The engine's id, the same for every handle on it.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn store(&self) -> &dyn Store {
        match &self.engine {
            Engine::Log(s) => s,
            Engine::Postgres(s) => s,
        }
    }

    /// The log store, or `None` for PostgreSQL.
    pub fn log(&self) -> Option<&LogStore> {
        match &self.engine {
            Engine::Log(s) => Some(s),
            Engine::Postgres(_) => None,
        }
    }
}

/// A directory as the file system knows it, whatever path names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DirId {
    dev: u64,
    ino: u64,
}

/// The directory `dir` names, and an open handle on it that keeps its
/// inode from being reused while the table holds it; `None` when it
/// cannot be opened (it does not exist, so no engine is on it).
fn dir_id(dir: &Path) -> Option<(DirId, File)> {
    let file = File::open(dir).ok()?;
    let meta = file.metadata().ok()?;
    meta.is_dir().then_some((
        DirId {
            dev: meta.dev(),
            ino: meta.ino(),
        },
        file,
    ))
}

struct Entry {
    shared: Arc<Shared>,
    settings: Settings,
    handles: usize,
    /// Holds the directory open, so its `DirId` names no other one.
    _dir: File,
}

fn table() -> MutexGuard<'static, HashMap<DirId, Entry>> {
    static TABLE: OnceLock<Mutex<HashMap<DirId, Entry>>> = OnceLock::new();
    let table = TABLE.get_or_init(|| Mutex::new(HashMap::new()));
    // The table's updates cannot panic part way; a poisoned lock holds a
    // consistent map.
    table.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens the store in `dir` for writing, or takes one more handle on the
/// engine this process already has open there.
///
/// The table stays locked while the engine opens or closes (see
/// [`release`]), so an open that races a last close waits for it and then
/// opens afresh rather than finding the directory locked.
///
/// # Errors
/// `InvalidInput` when the directory is open in this process with other
/// settings; whatever `LogStore::open` returns.
pub fn open_dir(dir: &Path, options: Options, settings: Settings) -> Result<Arc<Shared>> {
    let mut table = table();
    // A directory that cannot be opened does not exist, so no engine of
    // this process is on it.
    if let Some((key, _)) = dir_id(dir) {
        if let Some(entry) = table.get_mut(&key) {
            if entry.settings != settings || settings.manual_clock {
                return Err(Error::InvalidInput(format!(
                    "{} is already open in this process with other options ({}); \
                     open it again with the same durability and maxBlobBytes, or close the other handle first",
                    dir.display(),
                    describe(&entry.settings),
                )));
            }
            entry.handles += 1;
            return Ok(entry.shared.clone());
        }
    }
    let store = LogStore::open(dir, options)?;
    let Some((key, held)) = dir_id(dir) else {
        // Removed the moment it was made: serve it, unshared.
        return Ok(Shared::alone(Engine::Log(store)));
    };
    let shared = Shared::new(Engine::Log(store), Some(key));
    table.insert(
        key,
        Entry {
            shared: shared.clone(),
            settings,
            handles: 1,
            _dir: held,
        },
    );
    Ok(shared)
}

fn describe(s: &Settings) -> String {
    let durability = match s.durability {
        Durability::Sync => "sync",
        Durability::Flush => "flush",
    };
    let clock = if s.manual_clock {
        ", a manual clock"
    } else {
        ""
    };
    format!(
        "durability \"{durability}\", maxBlobBytes {}{clock}",
        s.max_blob_bytes
    )
}

/// Opens the store in `dir` for reading only, beside its writer.
pub fn open_read_only(dir: &Path, options: Options) -> Result<Arc<Shared>> {
    Ok(Shared::alone(Engine::Log(LogStore::open_read_only(
        dir, options,
    )?)))
}

/// Opens the PostgreSQL store at `url`, in `schema` when given.
pub fn open_postgres(url: &str, schema: Option<&str>, options: Options) -> Result<Arc<Shared>> {
    let store = match schema {
        Some(schema) => PgStore::open_in_schema(url, schema, options)?,
        None => PgStore::open(url, options)?,
    };
    Ok(Shared::alone(Engine::Postgres(store)))
}

/// Gives up one handle on `shared`; the last one closes the engine (a
/// sync and the index snapshot for a log store).
///
/// # Errors
/// The engine's close error.
pub fn release(shared: &Arc<Shared>) -> Result<()> {
    let Some(key) = &shared.key else {
        return shared.store().close();
    };
    let mut table = table();
    if !forget(&mut table, key, shared) {
        return Ok(());
    }
    shared.store().close()
}

/// Gives up one handle on `shared` without closing the engine, for a
/// handle that is collected unclosed: the engine closes when its last
/// reference goes, as a dropped `LogStore` does.
pub fn drop_handle(shared: &Arc<Shared>) {
    if let Some(key) = &shared.key {
        forget(&mut table(), key, shared);
    }
}

/// Counts one handle of `shared` gone; true when it was the last, and the
/// entry is then removed.
fn forget(table: &mut HashMap<DirId, Entry>, key: &DirId, shared: &Arc<Shared>) -> bool {
    match table.get_mut(key) {
        Some(entry) if Arc::ptr_eq(&entry.shared, shared) => {
            entry.handles -= 1;
            if entry.handles > 0 {
                return false;
            }
            table.remove(key);
            true
        }
        _ => true,
    }
}
