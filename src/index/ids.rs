//! A collection's document ids, stored back to back in one buffer.
//!
//! A document refers to its id by a `u32` offset instead of owning a string
//! (16 bytes of handle and an allocation each): an id costs its bytes and
//! one or two bytes of length. The snapshot stores the same bytes, so open
//! copies them in one piece. Removed ids leave garbage that
//! [`IdArena::compact`] reclaims once it is half the buffer.

/// The offset that marks a free document number (no id).
pub const NO_ID: u32 = u32::MAX;

/// Ids as `length, bytes` entries; the length is one byte below 128, else
/// two (low seven bits with the high bit set, then the rest), which covers
/// `MAX_ID_BYTES`.
#[derive(Debug, Default, Clone)]
pub struct IdArena {
    bytes: Vec<u8>,
    /// Bytes of removed entries.
    garbage: usize,
}

/// The length of the entry at the start of `bytes` and the bytes its header
/// takes; `None` if the header is cut short or not in its shortest form.
pub fn entry_len(bytes: &[u8]) -> Option<(usize, usize)> {
    let first = *bytes.first()?;
    if first < 0x80 {
        return Some((usize::from(first), 1));
    }
    let second = *bytes.get(1)?;
    if second == 0 || second >= 0x80 {
        return None;
    }
    Some((usize::from(first & 0x7f) | usize::from(second) << 7, 2))
}

/// Appends the header of an entry of `len` bytes (below 16384).
pub fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        out.push((len & 0x7f) as u8 | 0x80);
        out.push((len >> 7) as u8);
    }
}

impl IdArena {
    /// An arena over `bytes`, entries the caller has checked with
    /// [`entry_len`] (the snapshot loader).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        IdArena { bytes, garbage: 0 }
    }

    /// The buffer, entries back to back.
    #[cfg(test)]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Adds an id; its offset, or `None` when the buffer would pass the
    /// 4 GiB a `u32` offset reaches.
    pub fn push(&mut self, id: &str) -> Option<u32> {
        let at = u32::try_from(self.bytes.len()).ok()?;
        let end = self.bytes.len() + 2 + id.len();
        if u32::try_from(end).ok()? == NO_ID {
            return None;
        }
        push_len(&mut self.bytes, id.len());
        self.bytes.extend_from_slice(id.as_bytes());
        Some(at)
    }

    /// The id at `at`, as bytes (byte order is the contract's id order).
    pub fn get(&self, at: u32) -> &[u8] {
        let rest = self.bytes.get(at as usize..).unwrap_or_default();
        match entry_len(rest) {
            Some((len, header)) => rest.get(header..header + len).unwrap_or_default(),
            None => &[],
        }
    }

    /// The id at `at` as a string.
    pub fn get_str(&self, at: u32) -> &str {
        // Every entry came from a `&str` or was checked as UTF-8 at load.
        std::str::from_utf8(self.get(at)).unwrap_or_default()
    }

    /// The bytes the entry at `at` takes, header included.
    fn entry_bytes(&self, at: u32) -> usize {
        let len = self.get(at).len();
        len + if len < 0x80 { 1 } else { 2 }
    }

    /// Marks the entry at `at` as garbage.
    pub fn remove(&mut self, at: u32) {
        self.garbage += self.entry_bytes(at);
    }

    /// True when removed entries take half the buffer (and enough of it to
    /// be worth a copy).
    pub fn wants_compaction(&self) -> bool {
        self.garbage > 4096 && self.garbage * 2 > self.bytes.len()
    }

    /// True when removing the entry at `at` would make the arena want a
    /// compaction: a copy of every live id, in proportion to their number.
    pub fn compacts_after_removing(&self, at: u32) -> bool {
        let garbage = self.garbage + self.entry_bytes(at);
        garbage > 4096 && garbage * 2 > self.bytes.len()
    }

    /// True when adding an id of `len` bytes would grow the buffer past
    /// its capacity (a copy of it).
    pub fn push_grows(&self, len: usize) -> bool {
        self.bytes.len() + len + 2 > self.bytes.capacity()
    }

    /// The buffer's capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Copies the live entries into a fresh buffer, updating each offset
    /// `offsets` yields ([`NO_ID`] ones are skipped).
    pub fn compact<'a>(&mut self, offsets: impl Iterator<Item = &'a mut u32>) {
        let mut fresh = IdArena {
            bytes: Vec::with_capacity(self.bytes.len() - self.garbage),
            garbage: 0,
        };
        for offset in offsets.filter(|o| **o != NO_ID) {
            // The live ids fit before, so they fit in a smaller buffer.
            *offset = fresh.push(self.get_str(*offset)).unwrap_or(NO_ID);
        }
        *self = fresh;
    }

    /// Heap bytes held (capacity).
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_with_short_and_long_lengths() {
        let mut arena = IdArena::default();
        let long = "x".repeat(1024);
        let ids = ["", "a", &"b".repeat(127), &"c".repeat(128), &long];
        let at: Vec<u32> = ids.iter().map(|id| arena.push(id).unwrap()).collect();
        for (id, at) in ids.iter().zip(&at) {
            assert_eq!(arena.get_str(*at), *id);
        }
        assert_eq!(arena.bytes().len(), 1 + 2 + 128 + 130 + 1026);
        assert_eq!(entry_len(&[0x80, 0]), None, "not the shortest form");
        assert_eq!(entry_len(&[0x81]), None, "cut short");
        assert_eq!(entry_len(&[0x80, 8]), Some((1024, 2)));
    }

    #[test]
    fn compaction_keeps_live_ids_and_drops_garbage() {
        let mut arena = IdArena::default();
        let mut offsets: Vec<u32> = (0..2000)
            .map(|i| arena.push(&format!("doc-{i:05}")).unwrap())
            .collect();
        for offset in offsets.iter_mut().skip(1).step_by(2) {
            arena.remove(*offset);
            *offset = NO_ID;
        }
        assert!(
            !arena.wants_compaction(),
            "half the entries are not more than half"
        );
        for offset in offsets.iter_mut().step_by(4) {
            arena.remove(*offset);
            *offset = NO_ID;
        }
        assert!(arena.wants_compaction());
        arena.compact(offsets.iter_mut());
        assert_eq!(arena.bytes().len(), 500 * 10);
        let live: Vec<&str> = offsets
            .iter()
            .filter(|o| **o != NO_ID)
            .map(|o| arena.get_str(*o))
            .collect();
        assert_eq!(live.len(), 500);
        assert_eq!(live[0], "doc-00002");
        assert_eq!(live[499], "doc-01998");
    }
}
