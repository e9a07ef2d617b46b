//! The lease facility of the log engine: each acquire, renew, release and
//! release-all that changes something is one record; the rules are in
//! `crate::lease_rules` and run under the writer lock.

use super::commit::Decision;
use super::Session;
use crate::contract::{Acquire, LeaseRow, LeaseStore};
use crate::index::apply::Change;
use crate::lease_rules;
use crate::validate;
use crate::Result;

type Rule = fn(Option<&LeaseRow>, &str, &str, i64, i64) -> Result<Acquire>;

impl Session {
    fn claim(&self, key: &str, owner: &str, ttl_ms: i64, rule: Rule) -> Result<Acquire> {
        validate::lease_key(key)?;
        validate::lease_owner(owner)?;
        let clock = &self.inner.opts.clock;
        self.commit(|state| {
            let outcome = rule(state.leases.get(key), key, owner, clock.now_ms(), ttl_ms)?;
            Ok(match &outcome {
                // The state keeps one copy of the row, the caller the other.
                Acquire::Acquired(row) => Decision::Write(Change::LeaseSet(row.clone()), outcome),
                Acquire::Held { .. } => Decision::Unchanged(outcome),
            })
        })
    }
}

impl LeaseStore for Session {
    fn acquire(&self, key: &str, owner: &str, ttl_ms: i64) -> Result<Acquire> {
        self.claim(key, owner, ttl_ms, lease_rules::acquire)
    }

    fn renew(&self, key: &str, owner: &str, ttl_ms: i64) -> Result<Acquire> {
        self.claim(key, owner, ttl_ms, lease_rules::renew)
    }

    fn release(&self, key: &str, owner: &str) -> Result<()> {
        validate::lease_key(key)?;
        validate::lease_owner(owner)?;
        self.commit(|state| {
            let held = state.leases.get(key).is_some_and(|row| row.owner == owner);
            Ok(match held {
                true => Decision::Write(Change::LeaseDelete { key }, ()),
                false => Decision::Unchanged(()),
            })
        })
    }

    fn release_all(&self, owner: &str) -> Result<u64> {
        validate::lease_owner(owner)?;
        self.commit(|state| {
            Ok(match state.leases.count_of(owner) {
                0 => Decision::Unchanged(0),
                count => Decision::Write(Change::LeaseReleaseAll { owner }, count),
            })
        })
    }

    fn get(&self, key: &str) -> Result<Option<LeaseRow>> {
        validate::lease_key(key)?;
        self.inner.check_open()?;
        Ok(self.inner.state.read().leases.get(key).cloned())
    }
}
