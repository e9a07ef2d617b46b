//! The PostgreSQL driver: the contract on a server, so several processes on
//! several machines can share one store.
//!
//! The schema is the SQLite driver's, ported, inside one PostgreSQL schema
//! (`logstore` unless the URL's `options=-csearch_path=...` or
//! [`PgStore::open_in_schema`] names another), created by versioned
//! migrations recorded in `_store_migrations`. Where PostgreSQL differs from
//! SQLite the port keeps the contract, not the SQL:
//!
//! - Document bodies are `json`, never `jsonb`: `jsonb` reorders keys and
//!   drops duplicates, and the contract keeps the body as written.
//! - Index values are computed in Rust by `document_rules::index_value`, the code
//!   every driver uses, because PostgreSQL writes numbers differently from
//!   JavaScript's `String(n)`.
//! - Every name, id, key, owner, index field and index value is `bytea`:
//!   PostgreSQL `text` cannot hold NUL, which the contract allows, and
//!   `bytea` compares bytes, which is the order the other drivers sort in
//!   (no collation can creep in). Blob ids, which are ASCII, are
//!   `text COLLATE "C"`.
//! - Timestamps come from `Options::clock`, never the server's `now()`.
//! - Each contract call is one transaction at READ COMMITTED, and every race
//!   is decided by one conditional statement (`UPDATE ... WHERE version = $n
//!   RETURNING`, `INSERT ... ON CONFLICT ... WHERE ... RETURNING`), so a lost
//!   race is `Ok(None)` or `Held`, never a serialization error. The level is
//!   pinned, not inherited: every connection sets it for its session (the
//!   statements that run outside a transaction, such as a lease claim) and
//!   every transaction begins with it, whatever default the server, the
//!   database, the role or the URL's options set. Only a blob reader's
//!   REPEATABLE READ, READ ONLY snapshot differs, on purpose.
//!
//! Connections come from an `r2d2` pool. A connection that breaks (or a
//! server that cannot be reached) is `Error::Io` with kind
//! `ConnectionAborted` or `NotConnected`; the pool is then rebuilt, so the
//! next call connects afresh. `open` connects once directly, so a server
//! that refuses the connection is reported at once, with the reason.

mod blobs;
mod documents;
mod errors;
mod leases;
mod staging;
pub(crate) use staging::StagingLock;
mod transfer;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use postgres::types::ToSql;
use postgres::{Client, Config, GenericClient, IsolationLevel, NoTls, Row, Statement};
use r2d2_postgres::r2d2::{self, PooledConnection};
use r2d2_postgres::PostgresConnectionManager;

use crate::contract::{BlobStore, DocumentStore, LeaseStore, Store};
use crate::options::{Durability, Options};
use crate::{Error, Result};
pub(crate) use errors::fmt_error;
use errors::{connect_error, is_connection_error, unavailable, Described};

/// The schema a store lives in when neither the URL nor the caller names
/// one.
pub const DEFAULT_SCHEMA: &str = "logstore";

/// Connections per store: enough for a few busy threads; a server's
/// default `max_connections` is 100, so many stores can share it.
const POOL_SIZE: u32 = 16;

/// How long a call waits for a connection when the URL sets no
/// `connect_timeout`: long enough for a busy pool, short enough that a
/// server that is down is reported promptly.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// PostgreSQL's longest identifier, in bytes.
const MAX_SCHEMA_BYTES: usize = 63;

/// The migrations, in order: documents, blobs, leases. All of them run in
/// one transaction under an advisory lock, only past the recorded version,
/// and each is recorded in `_store_migrations`.
const MIGRATIONS: [(i64, &str); 3] = [
    (
        1,
        "CREATE TABLE IF NOT EXISTS store_collections (
            name bytea PRIMARY KEY,
            indexes json NOT NULL,
            created_at bigint NOT NULL
        );
        CREATE TABLE IF NOT EXISTS store_docs (
            collection bytea NOT NULL,
            id bytea NOT NULL,
            data json NOT NULL,
            version bigint NOT NULL DEFAULT 1,
            created_at bigint NOT NULL,
            updated_at bigint NOT NULL,
            PRIMARY KEY (collection, id)
        );
        CREATE INDEX IF NOT EXISTS store_docs_created ON store_docs (collection, created_at, id);
        CREATE TABLE IF NOT EXISTS store_index (
            collection bytea NOT NULL,
            doc_id bytea NOT NULL,
            field bytea NOT NULL,
            value bytea NOT NULL,
            PRIMARY KEY (collection, doc_id, field)
        );
        CREATE INDEX IF NOT EXISTS store_index_lookup ON store_index (collection, field, value);",
    ),
    (
        2,
        "CREATE TABLE IF NOT EXISTS store_blobs (
            id text COLLATE \"C\" PRIMARY KEY,
            mime bytea NOT NULL,
            size bigint NOT NULL,
            owner_id bytea,
            created_at bigint NOT NULL,
            content_hash text COLLATE \"C\" NOT NULL
        );
        CREATE INDEX IF NOT EXISTS store_blobs_newest ON store_blobs (created_at, id);
        CREATE INDEX IF NOT EXISTS store_blobs_owner ON store_blobs (owner_id, created_at, id);
        CREATE TABLE IF NOT EXISTS store_blob_chunks (
            blob_id text COLLATE \"C\" NOT NULL,
            seq integer NOT NULL,
            bytes bytea NOT NULL,
            PRIMARY KEY (blob_id, seq)
        );
        ALTER TABLE store_blob_chunks ALTER COLUMN bytes SET STORAGE EXTERNAL;",
    ),
    (
        3,
        "CREATE TABLE IF NOT EXISTS store_leases (
            key bytea PRIMARY KEY,
            owner bytea NOT NULL,
            expires_at bigint NOT NULL,
            version bigint NOT NULL DEFAULT 1,
            created_at bigint NOT NULL,
            updated_at bigint NOT NULL
        );
        CREATE INDEX IF NOT EXISTS store_leases_owner ON store_leases (owner);",
    ),
];

/// The highest version a row holds: its column is a signed 64-bit integer.
const MAX_VERSION: u64 = i64::MAX as u64;

/// A version past `i64::MAX` cannot be stored, so it matches no row.
fn version_arg(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(-1)
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

type Pool = r2d2::Pool<Manager>;

/// The pool's connection manager: `r2d2_postgres`'s, with a statement
/// cache per connection, so each SQL text is parsed once per connection
/// instead of once per call (a round trip saved on every statement).
#[derive(Debug)]
pub(crate) struct Manager(PostgresConnectionManager<NoTls>);

/// A pooled connection and its prepared statements.
pub(crate) struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
    /// Set when the connection must not be reused (a transaction could not
    /// be ended), so the pool drops it instead of handing it out.
    broken: bool,
}

/// The statement every connection runs first: the contract's races are
/// decided at READ COMMITTED (a conditional statement that waited on a row
/// re-checks its condition on the committed row), and a server default of
/// REPEATABLE READ or SERIALIZABLE would turn a lost race into SQLSTATE
/// 40001 instead.
const SESSION_SQL: &str =
    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED";

/// A new connection with the session settings every call relies on.
fn connect(manager: &PostgresConnectionManager<NoTls>) -> Result<Conn, postgres::Error> {
    let mut client = r2d2::ManageConnection::connect(manager)?;
    client.batch_execute(SESSION_SQL)?;
    Ok(Conn {
        client,
        statements: HashMap::new(),
        broken: false,
    })
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = Described;

    fn connect(&self) -> Result<Conn, Described> {
        connect(&self.0).map_err(Described)
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), Described> {
        self.0.is_valid(&mut conn.client).map_err(Described)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.broken || conn.client.is_closed()
    }
}

/// Statements through the per-connection cache, on a connection or inside
/// a transaction.
pub(crate) trait Sql {
    /// The client statements run on.
    type Client: GenericClient;

    /// The client and the connection's statement cache.
    fn parts(&mut self) -> (&mut Self::Client, &mut HashMap<String, Statement>);

    /// The prepared statement for `sql`, parsed on first use.
    fn statement(&mut self, sql: &str) -> Result<Statement> {
        let (client, cache) = self.parts();
        if let Some(statement) = cache.get(sql) {
            return Ok(statement.clone());
        }
        let statement = client.prepare(sql)?;
        cache.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let statement = self.statement(sql)?;
        Ok(self.parts().0.query(&statement, params)?)
    }

    fn query_opt(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>> {
        let statement = self.statement(sql)?;
        Ok(self.parts().0.query_opt(&statement, params)?)
    }

    fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        let statement = self.statement(sql)?;
        Ok(self.parts().0.query_one(&statement, params)?)
    }

    fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let statement = self.statement(sql)?;
        Ok(self.parts().0.execute(&statement, params)?)
    }
}

impl Sql for Conn {
    type Client = Client;

    fn parts(&mut self) -> (&mut Client, &mut HashMap<String, Statement>) {
        (&mut self.client, &mut self.statements)
    }
}

/// One open transaction on a pooled connection.
pub(crate) struct Session<'a> {
    tx: postgres::Transaction<'a>,
    statements: &'a mut HashMap<String, Statement>,
}

impl<'a> Sql for Session<'a> {
    type Client = postgres::Transaction<'a>;

    fn parts(&mut self) -> (&mut Self::Client, &mut HashMap<String, Statement>) {
        (&mut self.tx, self.statements)
    }
}

impl Conn {
    fn begin(&mut self) -> Result<Session<'_>> {
        let Conn {
            client, statements, ..
        } = self;
        Ok(Session {
            // Named, not left to the session's default, so the level holds
            // even if something reset the session's characteristics.
            tx: client
                .build_transaction()
                .isolation_level(IsolationLevel::ReadCommitted)
                .start()?,
            statements,
        })
    }
}

/// The contract on a PostgreSQL server: documents, blobs (bytes in the
/// database, in chunks) and leases in the tables of one schema.
///
/// `PgStore` is `Send + Sync`; calls from many threads run on up to 16
/// pooled connections. Several processes may open the same schema at once:
/// the server decides every race.
pub struct PgStore {
    /// `None` once closed. Swapped for a fresh pool when a connection
    /// breaks, so the connections to a restarted server are not tried one
    /// by one.
    pool: RwLock<Option<Arc<Pool>>>,
    config: Config,
    schema: String,
    opts: Options,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the server at `url` (`postgres://user:pass@host/db`, or
    /// the key-value form) and opens the store in the schema the URL's
    /// `options=-csearch_path=NAME` names, or `logstore`, creating the
    /// schema and its tables when missing.
    ///
    /// # Errors
    /// `InvalidInput` for a malformed URL, schema name or options; `Io`
    /// (kind `NotConnected`) when the server cannot be reached, at once and
    /// with the reason (connection refused, no server's socket in that
    /// directory); `Postgres` when the server refuses the connection (a
    /// wrong password, a missing database) or the migrations.
    pub fn open(url: &str, opts: Options) -> Result<PgStore> {
        let config = parse_url(url)?;
        let schema = config
            .get_options()
            .and_then(search_path)
            .unwrap_or_else(|| DEFAULT_SCHEMA.to_string());
        PgStore::open_config(config, &schema, opts)
    }

    /// As [`PgStore::open`], in the schema `schema` (ASCII letters, digits
    /// and `_`, not starting with a digit, at most 63 bytes), whatever the
    /// URL says.
    ///
    /// # Errors
    /// As [`PgStore::open`].
    pub fn open_in_schema(url: &str, schema: &str, opts: Options) -> Result<PgStore> {
        PgStore::open_config(parse_url(url)?, schema, opts)
    }

    fn open_config(mut config: Config, schema: &str, opts: Options) -> Result<PgStore> {
        opts.validate()?;
        schema_name(schema)?;
        configure(&mut config, schema, &opts);
        // One connection made here rather than through the pool: the pool
        // retries a failed connect until its timeout and then reports only
        // that it timed out, where this reports the reason (refused, no such
        // socket, authentication failed) at once.
        let manager = PostgresConnectionManager::new(config.clone(), NoTls);
        let mut first = connect(&manager).map_err(connect_error)?;
        migrate(&mut first, schema, opts.clock.now_ms())?;
        drop(first);
        Ok(PgStore {
            pool: RwLock::new(Some(build_pool(&config))),
            config,
            schema: schema.to_string(),
            opts,
        })
    }

    /// The schema the store's tables live in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Drops the store's schema with everything in it, then closes the
    /// store: for throwaway stores (benchmarks, tests) on a shared server.
    ///
    /// # Errors
    /// `Closed`, or the server's error (the schema is then untouched).
    pub fn drop_schema(&self) -> Result<()> {
        let schema = &self.schema;
        self.with_conn(|conn| {
            conn.client
                .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))?;
            Ok(())
        })?;
        self.close()
    }

    /// Runs `f` on a pooled connection. A connection error rebuilds the
    /// pool, so the next call connects afresh.
    fn with_conn<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        let (pool, mut conn) = self.checkout()?;
        let result = f(&mut conn);
        if let Err(e) = &result {
            self.release_after(pool, conn, e);
        }
        result
    }

    /// A connection from the current pool, with the pool it came from.
    fn checkout(&self) -> Result<(Arc<Pool>, PooledConnection<Manager>)> {
        let pool = self.pool.read().clone().ok_or(Error::Closed)?;
        let conn = pool.get().map_err(unavailable)?;
        Ok((pool, conn))
    }

    /// Returns a connection after a call failed with `e`: a connection
    /// error drops it and rebuilds the pool.
    fn release_after(&self, pool: Arc<Pool>, mut conn: PooledConnection<Manager>, e: &Error) {
        if is_connection_error(e) {
            conn.broken = true;
            drop(conn);
            self.reset_pool(&pool);
        }
    }

    /// Runs `f` in one transaction, committed when `f` succeeds and rolled
    /// back otherwise.
    fn with_tx<T>(&self, f: impl FnOnce(&mut Session<'_>) -> Result<T>) -> Result<T> {
        self.with_conn(|conn| {
            let mut session = conn.begin()?;
            let value = f(&mut session)?;
            session.tx.commit()?;
            Ok(value)
        })
    }

    fn reset_pool(&self, broken: &Arc<Pool>) {
        let mut guard = self.pool.write();
        if guard.as_ref().is_some_and(|p| Arc::ptr_eq(p, broken)) {
            *guard = Some(build_pool(&self.config));
        }
    }

    /// The advisory-lock key of a collection in this schema. `put` and
    /// `delete` hold it shared and `ensure_collection` exclusively, so a
    /// backfill never misses a document written while it runs.
    fn collection_lock(&self, collection: &str) -> i64 {
        lock_key(&[b"collection", self.schema.as_bytes(), collection.as_bytes()])
    }
}

/// Sets the connection options every connection of a store in `schema`
/// starts with.
fn configure(config: &mut Config, schema: &str, opts: &Options) {
    // A connection attempt to a host that never answers waits this long,
    // not for the operating system's TCP timeout.
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
    }
    // Every connection starts with the schema first on its search
    // path, so the SQL names tables without a schema, and with the
    // commit durability `Options` asks for: `Sync` waits for the WAL
    // flush (synchronous_commit=on), `Flush` does not (off; a server
    // crash may lose the last commits, as a power loss may with the
    // other drivers).
    let commit = match opts.durability {
        Durability::Sync => "on",
        Durability::Flush => "off",
    };
    // Quoted: the server folds an unquoted search_path to lower case,
    // which would put schema `App` in `app` (another store's tables,
    // or none, failing every CREATE), while CREATE SCHEMA and
    // drop_schema quote the name.
    let ours = format!("-csearch_path=\"{schema}\" -csynchronous_commit={commit}");
    let options = match config.get_options() {
        Some(existing) => format!("{existing} {ours}"),
        None => ours,
    };
    config.options(&options);
}

fn build_pool(config: &Config) -> Arc<Pool> {
    let timeout = config
        .get_connect_timeout()
        .copied()
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let manager = Manager(PostgresConnectionManager::new(config.clone(), NoTls));
    // No connection is made here, so a pool can be rebuilt while the server
    // is down; `min_idle(0)` keeps a store that is idle from holding
    // connections it does not use beyond the idle timeout.
    Arc::new(
        r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(0))
            // A checkout test would cost a round trip per call; a broken
            // connection is found by the call itself and the pool rebuilt.
            .test_on_check_out(false)
            .connection_timeout(timeout)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(manager),
    )
}

fn parse_url(url: &str) -> Result<Config> {
    url.parse::<Config>()
        .map_err(|e| Error::invalid(format!("not a PostgreSQL connection URL: {e}")))
}

/// The first schema of a `search_path` set in connection options
/// (`-csearch_path=a,b`, `-c search_path=a`, `--search_path=a`).
fn search_path(options: &str) -> Option<String> {
    let mut words = options.split_whitespace().peekable();
    while let Some(word) = words.next() {
        let setting = match word {
            "-c" => words.next().unwrap_or_default(),
            w => w
                .strip_prefix("-c")
                .or_else(|| w.strip_prefix("--"))
                .unwrap_or_default(),
        };
        // Dashes stand for underscores in the name only: a value keeps
        // its own, so `search_path=a-b` is refused, not read as `a_b`.
        let Some((name, value)) = setting.split_once('=') else {
            continue;
        };
        if name.replace('-', "_") == "search_path" {
            let first = value.split(',').next().unwrap_or_default().trim();
            // As the server reads it: a quoted name is exact, an unquoted
            // one is folded to lower case.
            return Some(
                match first.strip_prefix('"').and_then(|f| f.strip_suffix('"')) {
                    Some(quoted) => quoted.to_string(),
                    None => first.to_ascii_lowercase(),
                },
            );
        }
    }
    None
}

/// A schema name is spliced into SQL and connection options, so only plain
/// identifiers are accepted.
fn schema_name(schema: &str) -> Result<()> {
    let mut bytes = schema.bytes();
    let valid = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && schema.len() <= MAX_SCHEMA_BYTES;
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "schema name \"{schema}\" must be 1 to {MAX_SCHEMA_BYTES} ASCII letters, digits and '_', not starting with a digit"
        )))
    }
}

/// A 64-bit advisory-lock key from its parts (BLAKE3, so keys of distinct
/// parts collide only by chance, and a collision only serializes calls).
fn lock_key(parts: &[&[u8]]) -> i64 {
    let mut hasher = blake3::Hasher::new();
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    let mut first = [0u8; 8];
    first.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
    i64::from_le_bytes(first)
}

fn migrate(conn: &mut Conn, schema: &str, now: i64) -> Result<()> {
    let lock = lock_key(&[b"migrate", schema.as_bytes()]);
    let mut s = conn.begin()?;
    // Two processes opening a new schema at once would race on CREATE
    // SCHEMA and CREATE TABLE; the lock makes the second wait and then
    // find everything in place.
    s.tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock])?;
    let exists =
        s.tx.query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])?
            .is_some();
    if !exists {
        s.tx.batch_execute(&format!("CREATE SCHEMA \"{schema}\""))?;
    }
    s.tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS _store_migrations (
            version bigint PRIMARY KEY,
            applied_at bigint NOT NULL
        )",
    )?;
    let applied: i64 =
        s.tx.query_one(
            "SELECT COALESCE(MAX(version), 0)::bigint FROM _store_migrations",
            &[],
        )?
        .try_get(0)?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > applied) {
        s.tx.batch_execute(sql)?;
        s.tx.execute(
            "INSERT INTO _store_migrations (version, applied_at) VALUES ($1, $2)",
            &[version, &now],
        )?;
    }
    s.tx.commit()?;
    Ok(())
}

/// A `bytea` column holding UTF-8 text (every name, id, key and owner).
fn text_column(row: &Row, idx: usize) -> Result<String> {
    let bytes: Vec<u8> = row.try_get(idx)?;
    String::from_utf8(bytes).map_err(|e| {
        Error::invalid(format!(
            "column {} holds bytes that are not UTF-8 (written by something other than logstore?): {e}",
            row.columns().get(idx).map_or("?", |c| c.name())
        ))
    })
}

/// An unsigned number (a size, a count) stored in a signed column: a
/// negative value was written by something other than logstore.
fn unsigned_column(row: &Row, idx: usize) -> Result<u64> {
    at_least(row, idx, 0)
}

/// A version column: versions start at 1 and never wrap, so a smaller
/// stored value is corruption, and a write over such a row fails before
/// its transaction commits.
fn version_column(row: &Row, idx: usize) -> Result<u64> {
    at_least(row, idx, 1)
}

fn at_least(row: &Row, idx: usize, least: u64) -> Result<u64> {
    let value: i64 = row.try_get(idx)?;
    u64::try_from(value).ok().filter(|v| *v >= least).ok_or_else(|| {
        Error::corruption(
            std::path::PathBuf::new(),
            0,
            format!(
                "column {} holds {value}, which no writer stores (written by something other than logstore?)",
                row.columns().get(idx).map_or("?", |c| c.name())
            ),
        )
    })
}

fn opt_text_column(row: &Row, idx: usize) -> Result<Option<String>> {
    let bytes: Option<Vec<u8>> = row.try_get(idx)?;
    bytes
        .map(|b| {
            String::from_utf8(b).map_err(|e| {
                Error::invalid(format!("a column holds bytes that are not UTF-8: {e}"))
            })
        })
        .transpose()
}

impl Store for PgStore {
    fn docs(&self) -> &dyn DocumentStore {
        self
    }

    fn blobs(&self) -> &dyn BlobStore {
        self
    }

    fn leases(&self) -> &dyn LeaseStore {
        self
    }

    /// Closes the pool's connections. Every write was committed when its
    /// call returned, so there is nothing to flush.
    fn close(&self) -> Result<()> {
        self.pool.write().take();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_path_is_read_from_connection_options() {
        assert_eq!(search_path("-csearch_path=app").as_deref(), Some("app"));
        assert_eq!(search_path("-c search_path=a,b").as_deref(), Some("a"));
        assert_eq!(
            search_path("-cstatement_timeout=5 --search-path=x").as_deref(),
            Some("x")
        );
        assert_eq!(search_path("-cstatement_timeout=5"), None);
        assert_eq!(search_path("-csearch_path=App").as_deref(), Some("app"));
        assert_eq!(search_path("-csearch_path=a-b").as_deref(), Some("a-b"));
        assert_eq!(search_path("-csearch_path=\"App\"").as_deref(), Some("App"));
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(schema_name("logstore").is_ok());
        assert!(schema_name("_t1").is_ok());
        for bad in ["", "1a", "a-b", "a\"b", "a b", &"s".repeat(64)] {
            assert!(schema_name(bad).is_err(), "{bad}");
        }
    }

    /// The error of opening `url`, where nothing listens: `Io` of kind
    /// `NotConnected`, whose text is returned.
    fn not_connected(url: &str) -> String {
        let err = PgStore::open(url, Options::default()).expect_err(url);
        match &err {
            Error::Io { source, .. } => {
                assert_eq!(source.kind(), std::io::ErrorKind::NotConnected, "{err}");
            }
            other => panic!("{url}: expected Io NotConnected, got {other:?}"),
        }
        err.to_string()
    }

    #[test]
    fn open_reports_a_refused_connection_with_its_reason() {
        // A port that was just free: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let text = not_connected(&format!("postgresql://u@127.0.0.1:{port}/db"));
        assert!(text.contains("Connection refused"), "{text}");
        assert!(!text.contains("timed out"), "{text}");
    }

    #[test]
    fn open_reports_a_socket_directory_without_a_server() {
        let dir = tempfile::tempdir().expect("temp dir");
        let host = dir.path().to_str().expect("path").replace('/', "%2F");
        let text = not_connected(&format!("postgresql://u@{host}/db"));
        assert!(text.contains("No such file or directory"), "{text}");
        assert!(!text.contains("timed out"), "{text}");
    }

    #[test]
    fn lock_keys_separate_their_parts() {
        assert_ne!(lock_key(&[b"ab", b"c"]), lock_key(&[b"a", b"bc"]));
        assert_eq!(lock_key(&[b"x"]), lock_key(&[b"x"]));
    }
}
