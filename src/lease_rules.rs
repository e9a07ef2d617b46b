//! The lease rules of the contract, as pure functions of the current row.
//! The log engine applies them under its writer lock; the SQLite driver
//! states the same rules as conditional SQL.

use crate::contract::{Acquire, LeaseRow};
use crate::document_rules;
use crate::Result;

/// The expiry of a lease taken at `now` for `ttl_ms` (negative allowed: the
/// lease is born expired); saturates instead of overflowing.
pub(crate) fn expiry(now: i64, ttl_ms: i64) -> i64 {
    now.saturating_add(ttl_ms)
}

/// The row a grant writes; `InvalidInput` when the current row's version
/// has no successor (versions never wrap).
fn granted(
    current: Option<&LeaseRow>,
    key: &str,
    owner: &str,
    now: i64,
    ttl_ms: i64,
) -> Result<Acquire> {
    Ok(Acquire::Acquired(LeaseRow {
        key: key.to_string(),
        owner: owner.to_string(),
        expires_at: expiry(now, ttl_ms),
        version: current.map_or(Ok(1), |row| document_rules::next_version(row.version))?,
        created_at: current.map_or(now, |row| row.created_at),
        updated_at: now,
    }))
}

fn held(row: &LeaseRow) -> Acquire {
    Acquire::Held {
        owner: row.owner.clone(),
        expires_at: row.expires_at,
    }
}

/// `acquire`: granted when the key is free, expired (`expires_at < now`) or
/// already held by `owner`.
pub(crate) fn acquire(
    current: Option<&LeaseRow>,
    key: &str,
    owner: &str,
    now: i64,
    ttl_ms: i64,
) -> Result<Acquire> {
    match current {
        Some(row) if row.owner != owner && row.expires_at >= now => Ok(held(row)),
        _ => granted(current, key, owner, now, ttl_ms),
    }
}

/// `renew`: granted only when `owner` holds an unexpired lease.
pub(crate) fn renew(
    current: Option<&LeaseRow>,
    key: &str,
    owner: &str,
    now: i64,
    ttl_ms: i64,
) -> Result<Acquire> {
    match current {
        Some(row) if row.owner == owner && row.expires_at >= now => {
            granted(current, key, owner, now, ttl_ms)
        }
        Some(row) => Ok(held(row)),
        None => Ok(Acquire::Held {
            owner: String::new(),
            expires_at: 0,
        }),
    }
}
