//! The lease facility of the PostgreSQL driver: each rule is one
//! conditional statement, so the server decides races. At READ COMMITTED
//! a claim that waited on another's row lock re-checks its condition on the
//! row the other committed, so of many racing claims exactly one takes the
//! key and the others see it held.

use postgres::Row;

use super::{text_column, version_column, Conn, PgStore, Sql, MAX_VERSION};
use crate::contract::{Acquire, LeaseRow, LeaseStore};
use crate::document_rules;
use crate::lease_rules::{self, expiry};
use crate::validate;
use crate::{Error, Result};

/// A lease rule as the log engine applies it; here it only tells why a
/// claim took nothing.
type Rule = fn(Option<&LeaseRow>, &str, &str, i64, i64) -> Result<Acquire>;

pub(super) const LEASE_COLUMNS: &str = "key, owner, expires_at, version, created_at, updated_at";

pub(super) fn read_row(row: &Row) -> Result<LeaseRow> {
    Ok(LeaseRow {
        key: text_column(row, 0)?,
        owner: text_column(row, 1)?,
        expires_at: row.try_get(2)?,
        version: version_column(row, 3)?,
        created_at: row.try_get(4)?,
        updated_at: row.try_get(5)?,
    })
}

/// The arguments of one acquire or renew.
struct Claim<'a> {
    key: &'a str,
    owner: &'a str,
    now: i64,
    ttl_ms: i64,
    rule: Rule,
}

fn current(conn: &mut Conn, key: &str) -> Result<Option<LeaseRow>> {
    conn.query_opt(
        &format!("SELECT {LEASE_COLUMNS} FROM store_leases WHERE key = $1"),
        &[&key.as_bytes()],
    )?
    .map(|row| read_row(&row))
    .transpose()
}

/// The answer for a claim that took nothing: who holds the key, or, when
/// the rule grants the claim but the row is at the top version (which the
/// statements skip), an overflow error. `None` when the row read now would
/// be granted: it changed after the statement ran (released, say), so the
/// claim is tried again rather than reported as held by nobody.
fn refused(conn: &mut Conn, claim: &Claim<'_>) -> Result<Option<Acquire>> {
    let current = current(conn, claim.key)?;
    let outcome = (claim.rule)(
        current.as_ref(),
        claim.key,
        claim.owner,
        claim.now,
        claim.ttl_ms,
    )?;
    match (outcome, current) {
        (Acquire::Acquired(_), Some(row)) if row.version >= MAX_VERSION => {
            Err(document_rules::version_overflow(row.version))
        }
        (Acquire::Acquired(_), _) => Ok(None),
        (held, _) => Ok(Some(held)),
    }
}

/// How often a claim is tried when the row keeps changing under it.
const CLAIM_ATTEMPTS: usize = 16;

fn checked(key: &str, owner: &str) -> Result<()> {
    validate::lease_key(key)?;
    validate::lease_owner(owner)
}

/// Acquire: one upsert that only takes the row when it is free, expired, or
/// already the caller's, and its version (`i64::MAX` at most) can grow.
const ACQUIRE_SQL: &str =
    "INSERT INTO store_leases AS l (key, owner, expires_at, version, created_at, updated_at)
     VALUES ($1, $2, $3, 1, $4, $4)
     ON CONFLICT (key) DO UPDATE SET
        owner = excluded.owner,
        expires_at = excluded.expires_at,
        version = l.version + 1,
        updated_at = excluded.updated_at
     WHERE (l.owner = excluded.owner OR l.expires_at < excluded.updated_at)
        AND l.version < 9223372036854775807
     RETURNING key, owner, expires_at, version, created_at, updated_at";

/// Renew: one update of the caller's unexpired row whose version can grow.
const RENEW_SQL: &str =
    "UPDATE store_leases SET expires_at = $3, version = version + 1, updated_at = $4
     WHERE key = $1 AND owner = $2 AND expires_at >= $4 AND version < 9223372036854775807
     RETURNING key, owner, expires_at, version, created_at, updated_at";

impl PgStore {
    /// Runs a conditional claim (`$1` key, `$2` owner, `$3` new expiry,
    /// `$4` now) that states `rule`, and answers with the row it returned,
    /// or why it took nothing. The claim is one statement, so it needs no
    /// transaction of its own; the read that explains a refusal only
    /// reports.
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
            // Each retry means another claim or release changed the row
            // between the statement and the re-read; a few always settle.
            for _ in 0..CLAIM_ATTEMPTS {
                let row = conn.query_opt(
                    sql,
                    &[
                        &key.as_bytes(),
                        &owner.as_bytes(),
                        &expiry(now, ttl_ms),
                        &now,
                    ],
                )?;
                if let Some(row) = row {
                    return Ok(Acquire::Acquired(read_row(&row)?));
                }
                if let Some(held) = refused(conn, &claim)? {
                    return Ok(held);
                }
            }
            Err(Error::Internal(format!(
                "lease {key}: the row changed under {CLAIM_ATTEMPTS} claims in a row"
            )))
        })
    }
}

impl LeaseStore for PgStore {
    fn acquire(&self, key: &str, owner: &str, ttl_ms: i64) -> Result<Acquire> {
        self.claim(ACQUIRE_SQL, lease_rules::acquire, key, owner, ttl_ms)
    }

    fn renew(&self, key: &str, owner: &str, ttl_ms: i64) -> Result<Acquire> {
        self.claim(RENEW_SQL, lease_rules::renew, key, owner, ttl_ms)
    }

    fn release(&self, key: &str, owner: &str) -> Result<()> {
        checked(key, owner)?;
        self.with_conn(|conn| {
            conn.execute(
                "DELETE FROM store_leases WHERE key = $1 AND owner = $2",
                &[&key.as_bytes(), &owner.as_bytes()],
            )?;
            Ok(())
        })
    }

    fn release_all(&self, owner: &str) -> Result<u64> {
        validate::lease_owner(owner)?;
        self.with_conn(|conn| {
            conn.execute(
                "DELETE FROM store_leases WHERE owner = $1",
                &[&owner.as_bytes()],
            )
        })
    }

    fn get(&self, key: &str) -> Result<Option<LeaseRow>> {
        validate::lease_key(key)?;
        self.with_conn(|conn| current(conn, key))
    }
}
