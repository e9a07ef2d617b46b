//! Blob metadata in memory: by id, newest-first listings (all blobs and per
//! owner), and reference counts per content hash.

use std::collections::{BTreeSet, HashMap};

use crate::contract::BlobMeta;

type Newest = BTreeSet<(i64, String)>;

/// Every blob's metadata and how many blobs share each content file.
#[derive(Debug, Default)]
pub struct Blobs {
    by_id: HashMap<String, BlobMeta>,
    all: Newest,
    by_owner: HashMap<String, Newest>,
    refs: HashMap<String, u32>,
}

impl Blobs {
    /// The metadata of `id`.
    pub fn get(&self, id: &str) -> Option<&BlobMeta> {
        self.by_id.get(id)
    }

    /// How many blobs refer to the content file `hash`.
    pub fn refs(&self, hash: &str) -> u32 {
        self.refs.get(hash).copied().unwrap_or(0)
    }

    /// Adds a blob (replacing one with the same id).
    pub fn insert(&mut self, meta: BlobMeta) {
        self.remove(&meta.id);
        let entry = (meta.created_at, meta.id.clone());
        self.all.insert(entry.clone());
        if let Some(owner) = &meta.owner_id {
            self.by_owner
                .entry(owner.clone())
                .or_default()
                .insert(entry);
        }
        if let Some(hash) = &meta.content_hash {
            *self.refs.entry(hash.clone()).or_default() += 1;
        }
        self.by_id.insert(meta.id.clone(), meta);
    }

    /// Removes a blob. Returns its metadata and whether its content file
    /// lost its last reference.
    pub fn remove(&mut self, id: &str) -> Option<(BlobMeta, bool)> {
        let meta = self.by_id.remove(id)?;
        let entry = (meta.created_at, meta.id.clone());
        self.all.remove(&entry);
        if let Some(owner) = &meta.owner_id {
            if let Some(set) = self.by_owner.get_mut(owner) {
                set.remove(&entry);
                if set.is_empty() {
                    self.by_owner.remove(owner);
                }
            }
        }
        let mut last = false;
        if let Some(hash) = &meta.content_hash {
            if let Some(count) = self.refs.get_mut(hash) {
                *count -= 1;
                if *count == 0 {
                    self.refs.remove(hash);
                    last = true;
                }
            }
        }
        Some((meta, last))
    }

    /// One page, newest first (ties by id descending), of every blob or of
    /// one owner's.
    pub fn list(&self, owner: Option<&str>, limit: usize, offset: usize) -> Vec<BlobMeta> {
        let set = match owner {
            Some(owner) => match self.by_owner.get(owner) {
                Some(set) => set,
                None => return Vec::new(),
            },
            None => &self.all,
        };
        set.iter()
            .rev()
            .skip(offset)
            .take(limit)
            .filter_map(|(_, id)| self.by_id.get(id).cloned())
            .collect()
    }
}
