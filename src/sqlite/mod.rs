//! The SQLite driver: the contract on the reference package's schema, so a
//! `store.db` written by the Node package opens here and one written here
//! opens there. It is the baseline every benchmark compares against and the
//! path users migrate their data along.
//!
//! One connection behind a mutex, as the reference package (a synchronous
//! driver) uses it. WAL journal mode; `Durability::Sync` maps to
//! `synchronous=FULL`, `Durability::Flush` to `synchronous=NORMAL`.

mod blobs;
mod documents;
mod leases;
mod transfer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde_json::{Map, Value};

use crate::contract::{BlobStore, Document, DocumentStore, LeaseStore, Store};
use crate::document_rules;
use crate::io::{Access, RealFs};
use crate::options::{Durability, Options};
use crate::validate::{CheckedQuery, OrderKey};
use crate::{Error, Result};

/// The reference package's migrations, in order: documents, blob metadata,
/// leases. Each is applied in one transaction, only past the recorded
/// version, and recorded in `_store_migrations`.
const MIGRATIONS: [(i64, &str); 3] = [
    (
        1,
        "CREATE TABLE IF NOT EXISTS store_collections (
            name TEXT PRIMARY KEY,
            indexes TEXT NOT NULL DEFAULT '[]',
            created_at INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS store_docs (
            collection TEXT NOT NULL,
            id TEXT NOT NULL,
            data TEXT NOT NULL,
            version INTEGER NOT NULL DEFAULT 1,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (collection, id)
        );
        CREATE TABLE IF NOT EXISTS store_index (
            collection TEXT NOT NULL,
            doc_id TEXT NOT NULL,
            field TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (collection, doc_id, field)
        );
        CREATE INDEX IF NOT EXISTS idx_store_index_lookup ON store_index (collection, field, value);",
    ),
    (
        2,
        "CREATE TABLE IF NOT EXISTS store_blobs (
            id TEXT PRIMARY KEY,
            mime TEXT NOT NULL DEFAULT 'application/octet-stream',
            size INTEGER NOT NULL,
            owner_id TEXT,
            created_at INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS idx_store_blobs_owner ON store_blobs (owner_id);",
    ),
    (
        3,
        "CREATE TABLE IF NOT EXISTS store_leases (
            key TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            expires_at INTEGER NOT NULL,
            version INTEGER NOT NULL DEFAULT 1,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS idx_store_leases_owner ON store_leases (owner);",
    ),
];

/// The contract on an SQLite database in the reference package's schema,
/// with blob bytes as files in a directory beside it.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Option<Connection>>,
    opts: Options,
    blob_dir: PathBuf,
    /// The blob directory, opened once: every blob file is reached through
    /// it, never through a link.
    blob_fs: RealFs,
    /// The database file (`:memory:` for one in memory), named by the
    /// `Corruption` errors of rows that do not decode.
    db_path: PathBuf,
}

impl SqliteStore {
    /// What the database file at `db_path` holds, read without changing
    /// it: a store (it has the store's tables), nothing (a new or empty
    /// file, or a database without tables), or another program's database,
    /// which [`SqliteStore::open`] would add its tables to and which a
    /// caller should refuse instead.
    ///
    /// # Errors
    /// `Sqlite` when the file is not an SQLite database or cannot be read.
    pub fn probe(db_path: impl AsRef<Path>) -> Result<crate::StoreDir> {
        // Read-write without create, though it only reads: a read-only
        // connection to a WAL database makes its `-wal` and `-shm` files and
        // cannot remove them when it closes; this one, as the last
        // connection, removes what it made. (A write-protected file opens
        // read-only.)
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(db_path.as_ref(), flags)?;
        let mut statement = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
        let tables = statement
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(if tables.is_empty() {
            crate::StoreDir::Empty
        } else if tables.iter().any(|t| t == "store_docs") {
            crate::StoreDir::Store
        } else {
            crate::StoreDir::Other
        })
    }

    /// Opens (or creates) the database at `db_path` (`":memory:"` for one in
    /// memory) with blob files in `blob_dir`, applying any migrations it
    /// lacks.
    ///
    /// # Errors
    /// `Sqlite` if the database cannot be opened or migrated; `Io` if the
    /// blob directory cannot be created; `InvalidInput` for bad options.
    pub fn open(
        db_path: impl AsRef<Path>,
        blob_dir: impl AsRef<Path>,
        opts: Options,
    ) -> Result<SqliteStore> {
        opts.validate()?;
        let db_path = db_path.as_ref();
        let blob_dir = blob_dir.as_ref().to_path_buf();
        let mut conn = if db_path == Path::new(":memory:") {
            Connection::open_in_memory()?
        } else {
            if let Some(parent) = db_path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
            }
            Connection::open(db_path)?
        };
        crate::io::create_dirs_durable(&blob_dir)
            .map_err(|e| Error::io(format!("creating {}", blob_dir.display()), e))?;
        let blob_fs = RealFs::open_root(&blob_dir, Access::ReadWrite)
            .map_err(|e| Error::io(format!("opening {}", blob_dir.display()), e))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // An in-memory database answers "memory"; a file answers "wal".
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        let synchronous = match opts.durability {
            Durability::Sync => "FULL",
            Durability::Flush => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", synchronous)?;
        migrate(&mut conn, opts.clock.now_ms())?;
        Ok(SqliteStore {
            conn: Mutex::new(Some(conn)),
            opts,
            blob_dir,
            blob_fs,
            db_path: db_path.to_path_buf(),
        })
    }

    /// The directory that holds blob files.
    pub fn blob_dir(&self) -> &Path {
        &self.blob_dir
    }

    /// Runs `f` on the open connection. A damaged row found inside it
    /// ([`corrupt_row`]) is reported against this store's database file.
    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut guard = self.conn.lock();
        let conn = guard.as_mut().ok_or(Error::Closed)?;
        f(conn).map_err(|e| match e {
            Error::Corruption {
                file,
                offset,
                reason,
            } if file.as_os_str().is_empty() => Error::Corruption {
                file: self.db_path.clone(),
                offset,
                reason,
            },
            e => e,
        })
    }
}

/// A row of the database that does not decode (a column that should hold
/// JSON does not). The code that reads rows does not know the database
/// path, so the file is left empty and [`SqliteStore::with_conn`] fills it
/// in; SQLite has no byte offset to give, so it is 0.
/// A version column: versions start at 1 and never wrap, so a smaller
/// stored value (written by something other than a driver) is an error,
/// and a write over such a row fails before its transaction commits.
pub(crate) fn version_at(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let stored: i64 = row.get(idx)?;
    u64::try_from(stored)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or(rusqlite::Error::IntegralValueOutOfRange(idx, stored))
}

fn corrupt_row(reason: String) -> Error {
    Error::corruption(PathBuf::new(), 0, reason)
}

/// Serialized JSON is UTF-8; a failure here is a bug.
fn json_text(body: Vec<u8>) -> Result<String> {
    String::from_utf8(body)
        .map_err(|e| Error::Internal(format!("serialized JSON is not UTF-8: {e}")))
}

fn migrate(conn: &mut Connection, now: i64) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _store_migrations (
            version INTEGER PRIMARY KEY,
            applied_at INTEGER NOT NULL
        );",
    )?;
    let applied: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM _store_migrations",
        [],
        |r| r.get(0),
    )?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > applied) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO _store_migrations (version, applied_at) VALUES (?1, ?2)",
            params![version, now],
        )?;
        tx.commit()?;
    }
    Ok(())
}

/// The declared indexes of a collection, and whether it was ensured.
fn collection_indexes(tx: &Connection, name: &str) -> Result<Option<Vec<String>>> {
    let text: Option<String> = tx
        .prepare_cached("SELECT indexes FROM store_collections WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| {
            corrupt_row(format!(
                "store_collections.indexes of \"{name}\" is not a JSON array of strings: {e}"
            ))
        })
    })
    .transpose()
}

/// Rewrites the index rows of one document.
pub(super) fn write_index_rows(
    tx: &Transaction<'_>,
    collection: &str,
    id: &str,
    data: &Map<String, Value>,
) -> Result<()> {
    tx.prepare_cached("DELETE FROM store_index WHERE collection = ?1 AND doc_id = ?2")?
        .execute(params![collection, id])?;
    let indexes = collection_indexes(tx, collection)?.unwrap_or_default();
    insert_index_rows(tx, collection, id, data, &indexes)
}

fn insert_index_rows(
    tx: &Transaction<'_>,
    collection: &str,
    id: &str,
    data: &Map<String, Value>,
    fields: &[String],
) -> Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT OR REPLACE INTO store_index (collection, doc_id, field, value) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for field in fields {
        if let Some(value) = document_rules::index_value(data, field) {
            insert.execute(params![collection, id, field, value])?;
        }
    }
    Ok(())
}

fn parse_data(collection: &str, id: &str, text: &str) -> Result<Map<String, Value>> {
    serde_json::from_str(text).map_err(|e| {
        corrupt_row(format!(
            "store_docs.data of \"{collection}\"/\"{id}\" is not a JSON object: {e}"
        ))
    })
}

const DOC_COLUMNS: &str = "d.id, d.collection, d.data, d.version, d.created_at, d.updated_at";

fn read_doc(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Document, String)> {
    let text: String = row.get(2)?;
    let doc = Document {
        id: row.get(0)?,
        collection: row.get(1)?,
        data: Map::new(),
        version: version_at(row, 3)?,
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
    };
    Ok((doc, text))
}

fn finish_doc((mut doc, text): (Document, String)) -> Result<Document> {
    doc.data = parse_data(&doc.collection, &doc.id, &text)?;
    Ok(doc)
}

/// The FROM and WHERE clauses of a checked query, with their parameters.
fn query_clauses(collection: &str, q: &CheckedQuery) -> (String, Vec<SqlValue>) {
    let mut sql = String::from(" FROM store_docs d");
    let mut args = Vec::new();
    for (i, (_, field, value)) in q.filters.iter().enumerate() {
        sql.push_str(&format!(
            " JOIN store_index f{i} ON f{i}.collection = d.collection AND f{i}.doc_id = d.id AND f{i}.field = ? AND f{i}.value = ?"
        ));
        args.push(SqlValue::Text(field.clone()));
        args.push(SqlValue::Text(value.clone()));
    }
    if let OrderKey::Field(_, field) = &q.order {
        sql.push_str(
            " LEFT JOIN store_index o ON o.collection = d.collection AND o.doc_id = d.id AND o.field = ?",
        );
        args.push(SqlValue::Text(field.clone()));
    }
    sql.push_str(" WHERE d.collection = ?");
    args.push(SqlValue::Text(collection.to_string()));
    (sql, args)
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The highest version an SQLite row holds: its column is a signed 64-bit
/// integer. A write past it is refused (SQLite would turn the sum into a
/// float).
const MAX_VERSION: u64 = i64::MAX as u64;

// A version past i64::MAX cannot be stored, so it matches no row.
fn version_arg(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(-1)
}

impl Store for SqliteStore {
    fn docs(&self) -> &dyn DocumentStore {
        self
    }

    fn blobs(&self) -> &dyn BlobStore {
        self
    }

    fn leases(&self) -> &dyn LeaseStore {
        self
    }

    fn close(&self) -> Result<()> {
        match self.conn.lock().take() {
            Some(conn) => conn.close().map_err(|(_, e)| Error::Sqlite(e)),
            None => Ok(()),
        }
    }
}
