//! The lease facility of the SQLite driver: each rule is one conditional
//! statement, so the database itself decides races.

use rusqlite::{params, Connection, OptionalExtension};

use super::{SqliteStore, MAX_VERSION};
use crate::contract::{Acquire, LeaseRow, LeaseStore};
use crate::document_rules;
use crate::lease_rules::{self, expiry};
use crate::validate;
use crate::Result;

/// A lease rule as the log engine applies it; here it only tells why a
/// claim took nothing.
type Rule = fn(Option<&LeaseRow>, &str, &str, i64, i64) -> Result<Acquire>;

pub(super) const LEASE_COLUMNS: &str = "key, owner, expires_at, version, created_at, updated_at";

pub(super) fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<LeaseRow> {
    Ok(LeaseRow {
        key: row.get(0)?,
        owner: row.get(1)?,
        expires_at: row.get(2)?,
        version: super::version_at(row, 3)?,
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
    })
}

/// The answer for a claim that took nothing: who holds the key, or, when
/// the rule grants the claim but the row is at the top version (which the
/// statements skip), an overflow error.
fn refused(conn: &Connection, claim: &Claim<'_>) -> Result<Acquire> {
    let current: Option<LeaseRow> = conn
        .prepare_cached(&format!(
            "SELECT {LEASE_COLUMNS} FROM store_leases WHERE key = ?1"
        ))?
        .query_row([claim.key], read_row)
        .optional()?;
    if let Some(row) = current.as_ref().filter(|row| row.version >= MAX_VERSION) {
        let outcome = (claim.rule)(Some(row), claim.key, claim.owner, claim.now, claim.ttl_ms)?;
        if matches!(outcome, Acquire::Acquired(_)) {
            return Err(document_rules::version_overflow(row.version));
        }
    }
    let (owner, expires_at) = current.map_or_else(Default::default, |r| (r.owner, r.expires_at));
    Ok(Acquire::Held { owner, expires_at })
}

/// The arguments of one acquire or renew.
struct Claim<'a> {
    key: &'a str,
    owner: &'a str,
    now: i64,
    ttl_ms: i64,
    rule: Rule,
}

fn checked(key: &str, owner: &str) -> Result<()> {
    validate::lease_key(key)?;
    validate::lease_owner(owner)
}

/// Acquire: one upsert that only takes the row when it is free, expired, or
/// already the caller's, and its version (`i64::MAX` at most) can grow.
const ACQUIRE_SQL: &str =
    "INSERT INTO store_leases (key, owner, expires_at, version, created_at, updated_at)
     VALUES (?1, ?2, ?3, 1, ?4, ?4)
     ON CONFLICT (key) DO UPDATE SET
        owner = excluded.owner,
        expires_at = excluded.expires_at,
        version = store_leases.version + 1,
        updated_at = excluded.updated_at
     WHERE (store_leases.owner = excluded.owner
        OR store_leases.expires_at < excluded.updated_at)
        AND store_leases.version < 9223372036854775807
     RETURNING key, owner, expires_at, version, created_at, updated_at";

/// Renew: one update of the caller's unexpired row whose version can grow.
const RENEW_SQL: &str =
    "UPDATE store_leases SET expires_at = ?3, version = version + 1, updated_at = ?4
     WHERE key = ?1 AND owner = ?2 AND expires_at >= ?4 AND version < 9223372036854775807
     RETURNING key, owner, expires_at, version, created_at, updated_at";

impl SqliteStore {
    /// Runs a conditional claim (`?1` key, `?2` owner, `?3` new expiry,
    /// `?4` now) that states `rule`, and answers with the row it returned,
    /// or why it took nothing.
    fn claim(&self, sql: &str, rule: Rule, key: &str, owner: &str, ttl_ms: i64) -> Result<Acquire> {
        checked(key, owner)?;
        let now = self.opts.clock.now_ms();
        let claim = Claim {
            key,
            owner,
            now,
            ttl_ms,
            rule,
        };
        self.with_conn(|conn| {
            let tx = conn.transaction()?;
            let row = tx
                .prepare_cached(sql)?
                .query_row(params![key, owner, expiry(now, ttl_ms), now], read_row)
                .optional()?;
            let outcome = match row {
                Some(row) => Acquire::Acquired(row),
                None => refused(&tx, &claim)?,
            };
            tx.commit()?;
            Ok(outcome)
        })
    }
}

impl LeaseStore for SqliteStore {
    fn acquire(&self, key: &str, owner: &str, ttl_ms: i64) -> Result<Acquire> {
        self.claim(ACQUIRE_SQL, lease_rules::acquire, key, owner, ttl_ms)
    }

    fn renew(&self, key: &str, owner: &str, ttl_ms: i64) -> Result<Acquire> {
        self.claim(RENEW_SQL, lease_rules::renew, key, owner, ttl_ms)
    }

    fn release(&self, key: &str, owner: &str) -> Result<()> {
        checked(key, owner)?;
        self.with_conn(|conn| {
            conn.prepare_cached("DELETE FROM store_leases WHERE key = ?1 AND owner = ?2")?
                .execute([key, owner])?;
            Ok(())
        })
    }

    fn release_all(&self, owner: &str) -> Result<u64> {
        validate::lease_owner(owner)?;
        self.with_conn(|conn| {
            let n = conn
                .prepare_cached("DELETE FROM store_leases WHERE owner = ?1")?
                .execute([owner])?;
            Ok(n as u64)
        })
    }

    fn get(&self, key: &str) -> Result<Option<LeaseRow>> {
        validate::lease_key(key)?;
        self.with_conn(|conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {LEASE_COLUMNS} FROM store_leases WHERE key = ?1"
                ))?
                .query_row([key], read_row)
                .optional()?)
        })
    }
}
