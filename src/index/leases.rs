//! Leases in memory: rows by key and an owner index, so `release_all`
//! costs the owner's leases, not all of them.

use std::collections::{BTreeSet, HashMap};

use crate::contract::LeaseRow;
use crate::log::segment::Loc;

/// Every lease row with the location of the record that wrote it, and the
/// keys each owner holds.
#[derive(Debug, Default)]
pub struct Leases {
    rows: HashMap<String, (LeaseRow, Loc)>,
    by_owner: HashMap<String, BTreeSet<String>>,
    live_bytes: u64,
}

impl Leases {
    /// The row of `key`, if any.
    pub fn get(&self, key: &str) -> Option<&LeaseRow> {
        self.rows.get(key).map(|(row, _)| row)
    }

    /// The location of the record that wrote the row of `key`.
    pub fn loc(&self, key: &str) -> Option<Loc> {
        self.rows.get(key).map(|(_, loc)| *loc)
    }

    /// Inserts or replaces a row written by the record at `loc`.
    pub fn set(&mut self, row: LeaseRow, loc: Loc) {
        self.remove(&row.key);
        self.by_owner
            .entry(row.owner.clone())
            .or_default()
            .insert(row.key.clone());
        self.live_bytes += u64::from(loc.len);
        self.rows.insert(row.key.clone(), (row, loc));
    }

    /// Removes the row of `key`; returns it.
    pub fn remove(&mut self, key: &str) -> Option<LeaseRow> {
        let (row, loc) = self.rows.remove(key)?;
        self.live_bytes -= u64::from(loc.len);
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
            if let Some((_, loc)) = self.rows.remove(key) {
                self.live_bytes -= u64::from(loc.len);
            }
        }
        keys.len() as u64
    }

    /// Every row with the location of its record.
    pub fn rows(&self) -> impl Iterator<Item = (&LeaseRow, Loc)> {
        self.rows.values().map(|(row, loc)| (row, *loc))
    }

    /// Points a row at the copy of its record at `to`, if it is still the
    /// record at `from`.
    pub fn relocate(&mut self, key: &str, from: Loc, to: Loc) {
        if let Some((_, loc)) = self.rows.get_mut(key).filter(|(_, loc)| *loc == from) {
            self.live_bytes = self.live_bytes - u64::from(from.len) + u64::from(to.len);
            *loc = to;
        }
    }

    /// Bytes of the records that hold the current rows.
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    /// How many rows there are.
    pub fn len(&self) -> usize {
        self.rows.len()
    }
}
