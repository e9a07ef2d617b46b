//! The lease facility of the log engine: each acquire, renew, release and
//! release-all that changes something is one record; the rules are in
//! `crate::lease_rules` and run under the writer lock.

use super::LogStore;
use crate::contract::{Acquire, LeaseRow, LeaseStore};
use crate::lease_rules;
use crate::log::record::Record;
use crate::validate;
use crate::Result;

type Rule = fn(Option<&LeaseRow>, &str, &str, i64, i64) -> Result<Acquire>;

impl LogStore {
    fn claim(&self, key: &str, owner: &str, ttl_ms: i64, rule: Rule) -> Result<Acquire> {
        validate::lease_key(key)?;
        validate::lease_owner(owner)?;
        let inner = &self.inner;
        let mut writer = inner.writer.lock();
        inner.check_writable()?;
        let now = inner.opts.clock.now_ms();
        let outcome = rule(inner.state.read().leases.get(key), key, owner, now, ttl_ms)?;
        let Acquire::Acquired(row) = &outcome else {
            return Ok(outcome);
        };
        let record = Record::lease_set(row);
        let seq = inner.append_and_apply(&mut writer, &record)?;
        drop(writer);
        inner.wait_durable(seq)?;
        Ok(outcome)
    }
}

impl LeaseStore for LogStore {
    fn acquire(&self, key: &str, owner: &str, ttl_ms: i64) -> Result<Acquire> {
        self.claim(key, owner, ttl_ms, lease_rules::acquire)
    }

    fn renew(&self, key: &str, owner: &str, ttl_ms: i64) -> Result<Acquire> {
        self.claim(key, owner, ttl_ms, lease_rules::renew)
    }

    fn release(&self, key: &str, owner: &str) -> Result<()> {
        validate::lease_key(key)?;
        validate::lease_owner(owner)?;
        let inner = &self.inner;
        let mut writer = inner.writer.lock();
        inner.check_writable()?;
        let held = inner
            .state
            .read()
            .leases
            .get(key)
            .is_some_and(|row| row.owner == owner);
        if !held {
            return Ok(());
        }
        let seq = inner.append_and_apply(&mut writer, &Record::LeaseDelete { key })?;
        drop(writer);
        inner.wait_durable(seq)
    }

    fn release_all(&self, owner: &str) -> Result<u64> {
        validate::lease_owner(owner)?;
        let inner = &self.inner;
        let mut writer = inner.writer.lock();
        inner.check_writable()?;
        let count = inner.state.read().leases.count_of(owner);
        if count == 0 {
            return Ok(0);
        }
        let seq = inner.append_and_apply(&mut writer, &Record::LeaseReleaseAll { owner })?;
        drop(writer);
        inner.wait_durable(seq)?;
        Ok(count)
    }

    fn get(&self, key: &str) -> Result<Option<LeaseRow>> {
        validate::lease_key(key)?;
        self.inner.check_open()?;
        Ok(self.inner.state.read().leases.get(key).cloned())
    }
}
