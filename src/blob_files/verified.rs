//! The content files a store handle has hashed whole and found to match
//! their address, each with the [`Stamp`] it had before its bytes were
//! read: what lets a get skip hashing a file it already checked.
//!
//! A content file never changes once written (a put of the same bytes
//! renames a new file over it), so a file whose stamp is what it was when
//! its bytes hashed right has those bytes still, as far as the file system
//! can tell. A get whose file matches its entry here checks the length
//! alone (as the SQLite driver does); any other get hashes the file as it
//! streams and, when the whole matches, adds it. What this gives up: a
//! change the file system does not see (a bit flipped on the medium, a
//! write to the raw device, a write through a shared map into a page
//! already dirty; see [`Stamp`]) in a file this handle already hashed is
//! not found by this handle's gets, only by `verify` and by a fresh open's
//! first read. The set lives in memory with the handle: every open starts
//! empty, so the first read of each file after an open hashes it.
//!
//! The alternative, a cheaper checksum per chunk kept beside the content
//! address, would change the format and still cost every read a pass over
//! its bytes; skipping the pass for a file already checked costs one
//! `fstat` a get, which the length check needs anyway.

use std::collections::BTreeMap;

use parking_lot::Mutex;

use crate::io::Stamp;
use crate::log::record::BLOB_HASH_LEN;

/// How many content files the set remembers (about 100 bytes each): past
/// this, remembering one more forgets another, so a handle reading more
/// distinct blobs than this hashes some of them again.
pub const CAPACITY: usize = 1 << 16;

/// Content hashes and the stamps their files had when they were hashed
/// whole.
#[derive(Debug, Default)]
pub struct Verified {
    files: Mutex<BTreeMap<[u8; BLOB_HASH_LEN], Stamp>>,
}

impl Verified {
    /// Whether the content file of `hash`, whose stamp is `now`, was
    /// hashed whole by this handle with that same stamp: unchanged since,
    /// as far as the file system can tell.
    pub fn holds(&self, hash: &[u8; BLOB_HASH_LEN], now: &Stamp) -> bool {
        now.settled && self.files.lock().get(hash) == Some(now)
    }

    /// Records that the content file of `hash` hashed whole to `hash`,
    /// having had stamp `before` before its first byte was read. A stamp
    /// that is not settled is not recorded: a change right after it might
    /// not show in the stamp.
    pub fn insert(&self, hash: [u8; BLOB_HASH_LEN], before: Stamp) {
        if !before.settled {
            return;
        }
        let mut files = self.files.lock();
        if files.len() >= CAPACITY && !files.contains_key(&hash) {
            // Content hashes are spread evenly, so the entry after `hash`
            // is as good as a random pick, found without a scan.
            let victim = files
                .range(hash..)
                .next()
                .or_else(|| files.iter().next())
                .map(|(key, _)| *key);
            if let Some(victim) = victim {
                files.remove(&victim);
            }
        }
        files.insert(hash, before);
    }

    /// Forgets the content file of `hash`: its next read hashes it again.
    /// Called when a read or the integrity check finds it damaged.
    pub fn forget(&self, hash: &[u8; BLOB_HASH_LEN]) {
        self.files.lock().remove(hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(ino: u64, settled: bool) -> Stamp {
        Stamp {
            file: (1, ino),
            len: 10,
            modified: 5,
            changed: 7,
            settled,
        }
    }

    #[test]
    fn a_file_is_held_only_with_the_stamp_it_was_hashed_with() {
        let set = Verified::default();
        let hash = [3u8; BLOB_HASH_LEN];
        set.insert(hash, stamp(1, true));
        assert!(set.holds(&hash, &stamp(1, true)));
        assert!(!set.holds(&hash, &stamp(2, true)), "another inode");
        let longer = Stamp {
            len: 11,
            ..stamp(1, true)
        };
        assert!(!set.holds(&hash, &longer));
        let touched = Stamp {
            changed: 8,
            ..stamp(1, true)
        };
        assert!(!set.holds(&hash, &touched));
        assert!(!set.holds(&[4u8; BLOB_HASH_LEN], &stamp(1, true)));
        set.forget(&hash);
        assert!(!set.holds(&hash, &stamp(1, true)));
    }

    #[test]
    fn an_unsettled_stamp_is_never_recorded() {
        let set = Verified::default();
        let hash = [3u8; BLOB_HASH_LEN];
        set.insert(hash, stamp(1, false));
        assert!(!set.holds(&hash, &stamp(1, false)));
        assert!(!set.holds(&hash, &stamp(1, true)));
        assert!(set.files.lock().is_empty());
    }

    #[test]
    fn the_set_stays_within_its_capacity() {
        let set = Verified::default();
        for i in 0..CAPACITY + 100 {
            let mut hash = [0u8; BLOB_HASH_LEN];
            hash[..8]
                .copy_from_slice(&(i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
            set.insert(hash, stamp(i as u64, true));
        }
        assert_eq!(set.files.lock().len(), CAPACITY);
        // The newest entry is always kept.
        let mut last = [0u8; BLOB_HASH_LEN];
        let i = (CAPACITY + 99) as u64;
        last[..8].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
        assert!(set.holds(&last, &stamp(i, true)));
    }
}
