//! Leases in memory: rows by key and an owner index, so `release_all`
//! costs the owner's leases, not all of them.

use std::collections::{BTreeSet, HashMap};

use crate::contract::LeaseRow;

/// Every lease row, and the keys each owner holds.
#[derive(Debug, Default)]
pub struct Leases {
    rows: HashMap<String, LeaseRow>,
    by_owner: HashMap<String, BTreeSet<String>>,
}

impl Leases {
    /// The row of `key`, if any.
    pub fn get(&self, key: &str) -> Option<&LeaseRow> {
        self.rows.get(key)
    }

    /// Inserts or replaces a row.
    pub fn set(&mut self, row: LeaseRow) {
        self.remove(&row.key);
        self.by_owner
            .entry(row.owner.clone())
            .or_default()
            .insert(row.key.clone());
        self.rows.insert(row.key.clone(), row);
    }

    /// Removes the row of `key`; returns it.
    pub fn remove(&mut self, key: &str) -> Option<LeaseRow> {
        let row = self.rows.remove(key)?;
        if let Some(keys) = self.by_owner.get_mut(&row.owner) {
            keys.remove(key);
            if keys.is_empty() {
                self.by_owner.remove(&row.owner);
            }
        }
        Some(row)
    }

    /// How many leases `owner` holds.
    pub fn count_of(&self, owner: &str) -> u64 {
        self.by_owner.get(owner).map_or(0, |keys| keys.len() as u64)
    }

    /// Removes every lease of `owner`; returns how many.
    pub fn release_all(&mut self, owner: &str) -> u64 {
        let Some(keys) = self.by_owner.remove(owner) else {
            return 0;
        };
        for key in &keys {
            self.rows.remove(key);
        }
        keys.len() as u64
    }
}
