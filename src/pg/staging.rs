//! A new store built in a staging schema and renamed into place in one
//! transaction: what `migrate` and `load` do for a PostgreSQL target (the
//! file-system side is `crate::staging`).
//!
//! The staging schema of schema `S` is `S_partial`. It is created in one
//! transaction with the table `logstore_staging`, which marks it as made
//! here: a run that finds a staging schema with the marker (left by an
//! interrupted run) drops it and starts over; one without it is refused
//! and left as it is. At the end one transaction drops `S` if it holds an
//! empty store (as opening a URL leaves it), drops the marker and renames
//! `S_partial` to `S`: the server shows either no store or the whole one.
//! A run holds a session advisory lock on its staging schema, on a
//! connection of its own, until it ends, so a second run for the same
//! target refuses a staging schema still in use instead of dropping it.

use parking_lot::RwLock;
use postgres::{Client, NoTls, Transaction};

use super::{
    build_pool, configure, lock_key, migrate, parse_url, schema_name, search_path, PgStore,
    DEFAULT_SCHEMA,
};
use crate::options::Options;
use crate::{Error, Result};

/// A run's hold on its staging schema: a connection of its own holding a
/// session advisory lock, released when it is dropped or the process dies.
pub(crate) struct StagingLock {
    _session: Box<Client>,
}

/// The table that marks a staging schema as made here.
const MARKER_TABLE: &str = "logstore_staging";

/// Every table a store's schema holds.
const STORE_TABLES: [&str; 7] = [
    "_store_migrations",
    "store_collections",
    "store_docs",
    "store_index",
    "store_blobs",
    "store_blob_chunks",
    "store_leases",
];

fn schema_exists(tx: &mut Transaction<'_>, schema: &str) -> Result<bool> {
    Ok(tx
        .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])?
        .is_some())
}

/// Refuses `schema` unless it is missing or holds an empty store (the
/// store's tables, with no rows but their migrations, and nothing else).
fn check_new_schema(tx: &mut Transaction<'_>, schema: &str) -> Result<()> {
    if !schema_exists(tx, schema)? {
        return Ok(());
    }
    let not_new = |why: String| {
        Err(Error::invalid(format!(
            "schema {schema} {why}; a new store is made only in a missing schema or an empty store"
        )))
    };
    let others: i64 = tx
        .query_one(
            "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = $1 AND c.relkind IN ('v', 'm', 'f', 'p'))
                  + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                     WHERE n.nspname = $1)",
            &[&schema],
        )?
        .try_get(0)?;
    if others > 0 {
        return not_new("holds views or functions, not only a store".into());
    }
    let tables: Vec<String> = tx
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY tablename",
            &[&schema],
        )?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<std::result::Result<_, _>>()?;
    for table in tables {
        if !STORE_TABLES.contains(&table.as_str()) {
            return not_new(format!("holds the table {table}, which is not a store's"));
        }
        if table == "_store_migrations" {
            continue;
        }
        let used = tx
            .query_opt(&format!("SELECT 1 FROM \"{schema}\".{table} LIMIT 1"), &[])?
            .is_some();
        if used {
            return not_new("is not empty (it holds a store)".into());
        }
    }
    Ok(())
}

impl PgStore {
    /// Opens a new store in the staging schema of the schema `url` names
    /// (its `options=-csearch_path=`, or `logstore`), which must be
    /// missing or an empty store. Returns the store, the target schema,
    /// the staging schema an interrupted run left if one was dropped, and
    /// the lock to hold while the store is built.
    pub(crate) fn open_staging(
        url: &str,
        opts: Options,
    ) -> Result<(PgStore, String, Option<String>, StagingLock)> {
        opts.validate()?;
        let mut config = parse_url(url)?;
        let target = config
            .get_options()
            .and_then(search_path)
            .unwrap_or_else(|| DEFAULT_SCHEMA.to_string());
        schema_name(&target)?;
        let staging = format!("{target}_partial");
        schema_name(&staging)?;
        configure(&mut config, &staging, &opts);
        let mut held = config
            .connect(NoTls)
            .map_err(super::errors::connect_error)?;
        let key = lock_key(&[b"staging", staging.as_bytes()]);
        let locked: bool = held
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])?
            .get(0);
        if !locked {
            return Err(Error::invalid(format!(
                "another run of logstore is building schema {target} in {staging}, so it was \
                 left as it is; wait for that run to end, then run again"
            )));
        }
        let store = PgStore {
            pool: RwLock::new(Some(build_pool(&config))),
            config,
            schema: staging.clone(),
            opts,
        };
        let dropped = store.with_conn(|conn| {
            let mut s = conn.begin()?;
            let lock = lock_key(&[b"migrate", staging.as_bytes()]);
            s.tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock])?;
            let dropped = if schema_exists(&mut s.tx, &staging)? {
                let marked =
                    s.tx.query_opt(
                        "SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2",
                        &[&staging, &MARKER_TABLE],
                    )?
                    .is_some();
                if !marked {
                    return Err(Error::invalid(format!(
                        "schema {staging} exists, and logstore did not make it (it has no \
                         {MARKER_TABLE} table), so it was left as it is; drop or rename it, \
                         then run again to build schema {target}"
                    )));
                }
                s.tx.batch_execute(&format!("DROP SCHEMA \"{staging}\" CASCADE"))?;
                Some(staging.clone())
            } else {
                None
            };
            check_new_schema(&mut s.tx, &target)?;
            s.tx.batch_execute(&format!(
                "CREATE SCHEMA \"{staging}\";
                 CREATE TABLE \"{staging}\".{MARKER_TABLE} (made_at bigint NOT NULL)"
            ))?;
            s.tx.commit()?;
            Ok(dropped)
        })?;
        let now = store.opts.clock.now_ms();
        store.with_conn(|conn| migrate(conn, &store.schema, now))?;
        Ok((
            store,
            target,
            dropped,
            StagingLock {
                _session: Box::new(held),
            },
        ))
    }

    /// Renames this staging store's schema to `target` in one
    /// transaction (dropping `target` first if it holds an empty store),
    /// then closes the store.
    pub(crate) fn promote(&self, target: &str) -> Result<()> {
        let staging = self.schema.clone();
        self.with_conn(|conn| {
            let mut s = conn.begin()?;
            let lock = lock_key(&[b"migrate", target.as_bytes()]);
            s.tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock])?;
            if schema_exists(&mut s.tx, target)? {
                check_new_schema(&mut s.tx, target)?;
                s.tx.batch_execute(&format!("DROP SCHEMA \"{target}\" CASCADE"))?;
            }
            s.tx.batch_execute(&format!(
                "DROP TABLE \"{staging}\".{MARKER_TABLE};
                 ALTER SCHEMA \"{staging}\" RENAME TO \"{target}\""
            ))?;
            s.tx.commit()?;
            Ok(())
        })?;
        crate::contract::Store::close(self)
    }
}
