//! Blob metadata in memory: by id, newest-first listings (all blobs and per
//! owner), and reference counts per content hash.

use std::collections::{BTreeSet, HashMap};

use crate::contract::BlobMeta;
use crate::log::segment::Loc;

type Newest = BTreeSet<(i64, String)>;

/// Every blob's metadata and how many blobs share each content file.
#[derive(Debug, Default)]
pub struct Blobs {
    by_id: HashMap<String, (BlobMeta, Loc)>,
    live_bytes: u64,
    all: Newest,
    by_owner: HashMap<String, Newest>,
    refs: HashMap<String, u32>,
}

impl Blobs {
    /// The metadata of `id`.
    pub fn get(&self, id: &str) -> Option<&BlobMeta> {
        self.by_id.get(id).map(|(meta, _)| meta)
    }

    /// The location of the record of blob `id`.
    pub fn loc(&self, id: &str) -> Option<Loc> {
        self.by_id.get(id).map(|(_, loc)| *loc)
    }

    /// How many blobs refer to the content file `hash`.
    pub fn refs(&self, hash: &str) -> u32 {
        self.refs.get(hash).copied().unwrap_or(0)
    }

    /// Adds a blob whose record is at `loc` (replacing one with the same id).
    pub fn insert(&mut self, meta: BlobMeta, loc: Loc) {
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
        self.live_bytes += u64::from(loc.len);
        self.by_id.insert(meta.id.clone(), (meta, loc));
    }

    /// Removes a blob. Returns its metadata and whether its content file
    /// lost its last reference.
    pub fn remove(&mut self, id: &str) -> Option<(BlobMeta, bool)> {
        let (meta, loc) = self.by_id.remove(id)?;
        self.live_bytes -= u64::from(loc.len);
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
            .filter_map(|(_, id)| self.get(id).cloned())
            .collect()
    }

    /// Every blob with the location of its record.
    pub fn entries(&self) -> impl Iterator<Item = (&BlobMeta, Loc)> {
        self.by_id.values().map(|(meta, loc)| (meta, *loc))
    }

    /// Points a blob at the copy of its record at `to`, if it is still the
    /// record at `from`.
    pub fn relocate(&mut self, id: &str, from: Loc, to: Loc) {
        if let Some((_, loc)) = self.by_id.get_mut(id).filter(|(_, loc)| *loc == from) {
            self.live_bytes = self.live_bytes - u64::from(from.len) + u64::from(to.len);
            *loc = to;
        }
    }

    /// Bytes of the records that hold the current blobs.
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    /// How many blobs there are.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Every content hash with at least one reference, with its count.
    pub fn contents(&self) -> impl Iterator<Item = (&String, u32)> {
        self.refs.iter().map(|(hash, count)| (hash, *count))
    }
}
