//! A sorted list of document numbers whose order the caller defines: the
//! primary map (by id), the default order and every posting list (by
//! `created_at`, then id) are each one of these.
//!
//! Entries are 4-byte document numbers in chunks of at most [`CHUNK`], so a
//! document costs 4 bytes per list instead of a B-tree entry holding its
//! key; the key is looked up through the number when the list is searched
//! (the comparator the caller passes). Appends at the end, the common case
//! for a new document's creation time, fill chunks completely; an insert
//! into a full chunk in the middle splits it in two.

use std::cmp::Ordering;

/// The most entries a chunk holds: big enough that the chunk headers and
/// the outer vector are small beside the entries, small enough that an
/// insert moves at most 2 KiB.
pub const CHUNK: usize = 512;

/// Where a key not in a list would go: a chunk and a position in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    chunk: usize,
    at: usize,
}

/// Document numbers in the order of a key the caller compares.
#[derive(Debug, Default, Clone)]
pub struct OrderList {
    chunks: Vec<Vec<u32>>,
    len: usize,
}

impl OrderList {
    /// A list of `sorted`, already in order (the caller checked it). A list
    /// that fits one chunk keeps the vector as it is, without a copy.
    pub fn from_sorted(sorted: Vec<u32>) -> Self {
        let len = sorted.len();
        let chunks = if len == 0 {
            Vec::new()
        } else if len <= CHUNK {
            vec![sorted]
        } else {
            sorted.chunks(CHUNK).map(<[u32]>::to_vec).collect()
        };
        OrderList { chunks, len }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The number of chunks: what skipping to an offset may walk.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// True when the list holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entries in order (reversible for descending queries).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = u32> + '_ {
        self.chunks.iter().flatten().copied()
    }

    /// The entries after the first `skip`, skipping whole chunks at once so
    /// a deep page does not walk every entry before it.
    pub fn iter_from(&self, mut skip: usize) -> impl Iterator<Item = u32> + '_ {
        let mut first = 0;
        while let Some(chunk) = self.chunks.get(first).filter(|c| c.len() <= skip) {
            skip -= chunk.len();
            first += 1;
        }
        self.chunks[first.min(self.chunks.len())..]
            .iter()
            .flatten()
            .copied()
            .skip(skip)
    }

    /// Heap bytes the list holds (capacity, not length).
    pub fn heap_bytes(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Vec<u32>>()
            + self.chunks.iter().map(|c| c.capacity() * 4).sum::<usize>()
    }

    /// The chunk that holds, or would hold, the key `cmp` compares against:
    /// the first whose last entry is not below it (the last chunk if none).
    fn chunk_of(&self, cmp: &impl Fn(u32) -> Ordering) -> usize {
        let at = self
            .chunks
            .partition_point(|c| c.last().is_some_and(|&e| cmp(e) == Ordering::Less));
        at.min(self.chunks.len().saturating_sub(1))
    }

    /// The entry equal to the key: `cmp(entry)` orders an entry against it.
    pub fn find(&self, cmp: impl Fn(u32) -> Ordering) -> Option<u32> {
        self.search(cmp).ok()
    }

    /// The entry equal to the key, or where the key would go: one search
    /// serves a lookup and the insert that follows a miss (the place stays
    /// right as long as the list is not changed in between).
    pub fn search(&self, cmp: impl Fn(u32) -> Ordering) -> Result<u32, Place> {
        if self.chunks.is_empty() {
            return Err(Place { chunk: 0, at: 0 });
        }
        let index = self.chunk_of(&cmp);
        let chunk = &self.chunks[index];
        match chunk.binary_search_by(|&e| cmp(e)) {
            Ok(at) => Ok(chunk[at]),
            Err(at) => Err(Place { chunk: index, at }),
        }
    }

    /// Inserts `doc` where its key belongs; `cmp(entry)` orders an entry
    /// against the key of `doc` (which is not in the list yet).
    pub fn insert(&mut self, doc: u32, cmp: impl Fn(u32) -> Ordering) {
        let place = if self.chunks.is_empty() {
            Place { chunk: 0, at: 0 }
        } else {
            let index = self.chunk_of(&cmp);
            let at = self.chunks[index].partition_point(|&e| cmp(e) == Ordering::Less);
            Place { chunk: index, at }
        };
        self.insert_at(place, doc);
    }

    /// Inserts `doc` at `place`, from [`OrderList::search`] on this list as
    /// it is now.
    pub fn insert_at(&mut self, place: Place, doc: u32) {
        self.len += 1;
        if self.chunks.is_empty() {
            self.chunks.push(vec![doc]);
            return;
        }
        let Place { chunk: index, at } = place;
        let last = index + 1 == self.chunks.len();
        let chunk = &mut self.chunks[index];
        if chunk.len() < CHUNK {
            chunk.insert(at, doc);
        } else if last && at == chunk.len() {
            // Appending: start a new chunk, keeping the full one full.
            self.chunks.push(vec![doc]);
        } else {
            let mut tail = chunk.split_off(CHUNK / 2);
            if at <= CHUNK / 2 {
                chunk.insert(at, doc);
            } else {
                tail.insert(at - CHUNK / 2, doc);
            }
            self.chunks.insert(index + 1, tail);
        }
    }

    /// Removes the entry equal to the key `cmp` compares against; true if
    /// it was there.
    pub fn remove(&mut self, cmp: impl Fn(u32) -> Ordering) -> bool {
        if self.chunks.is_empty() {
            return false;
        }
        let index = self.chunk_of(&cmp);
        let chunk = &mut self.chunks[index];
        let Ok(at) = chunk.binary_search_by(|&e| cmp(e)) else {
            return false;
        };
        chunk.remove(at);
        self.len -= 1;
        if chunk.is_empty() {
            self.chunks.remove(index);
        } else if chunk.len() < chunk.capacity() / 4 {
            // Deletes give memory back instead of keeping every chunk at
            // the size it once had.
            chunk.shrink_to(chunk.capacity() / 2);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys by document number: the list under test orders numbers by
    /// `keys[doc]`, then by number.
    fn by_key(keys: &[u64], doc: u32) -> impl Fn(u32) -> Ordering + '_ {
        move |e| (keys[e as usize], e).cmp(&(keys[doc as usize], doc))
    }

    /// A key per number with many ties, the numbers in a scrambled insert
    /// order, and the order the list must end in.
    struct Scrambled {
        keys: Vec<u64>,
        inserts: Vec<u32>,
        expected: Vec<u32>,
    }

    fn scrambled() -> Scrambled {
        let n = 5 * CHUNK as u32 + 17;
        let keys: Vec<u64> = (0..n)
            .map(|d| u64::from(d.wrapping_mul(7919) % 97))
            .collect();
        // 7 and n share no factor, so this visits each number once.
        let inserts = (0..n).map(|i| (i * 7 + 3) % n).collect();
        let mut expected: Vec<u32> = (0..n).collect();
        expected.sort_by_key(|&d| (keys[d as usize], d));
        Scrambled {
            keys,
            inserts,
            expected,
        }
    }

    /// The list holds `expected`, in chunks none empty or over `CHUNK`.
    fn assert_holds(list: &OrderList, expected: &[u32]) {
        assert_eq!(list.len(), expected.len());
        assert_eq!(list.iter().collect::<Vec<_>>(), expected);
        assert!(list
            .chunks
            .iter()
            .all(|c| !c.is_empty() && c.len() <= CHUNK));
    }

    #[test]
    fn inserts_and_removes_keep_the_order_across_chunk_splits() {
        let Scrambled {
            keys,
            inserts,
            expected,
        } = scrambled();
        let n = inserts.len() as u32;
        let mut list = OrderList::default();
        for &doc in &inserts {
            list.insert(doc, by_key(&keys, doc));
        }
        assert_holds(&list, &expected);
        for skip in [
            0,
            1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 3,
            n as usize,
            n as usize + 5,
        ] {
            let page: Vec<u32> = list.iter_from(skip).collect();
            assert_eq!(page, expected.get(skip..).unwrap_or_default(), "{skip}");
        }
        for &doc in expected.iter().step_by(3) {
            assert_eq!(list.find(by_key(&keys, doc)), Some(doc));
            assert!(list.remove(by_key(&keys, doc)));
            assert!(!list.remove(by_key(&keys, doc)));
            assert_eq!(list.find(by_key(&keys, doc)), None);
        }
        let left: Vec<u32> = expected
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 != 0)
            .map(|(_, d)| *d)
            .collect();
        assert_eq!(list.iter().collect::<Vec<_>>(), left);
        assert_eq!(list.len(), left.len());
    }

    /// A search that misses gives the place an insert would use: inserting
    /// there keeps the order across chunk splits, and a search that hits
    /// finds the entry.
    #[test]
    fn a_missed_search_places_the_insert() {
        let Scrambled {
            keys,
            inserts,
            expected,
        } = scrambled();
        let mut list = OrderList::default();
        for &doc in &inserts {
            let place = list.search(by_key(&keys, doc)).expect_err("not there yet");
            list.insert_at(place, doc);
            assert_eq!(list.search(by_key(&keys, doc)), Ok(doc));
        }
        assert_holds(&list, &expected);
    }

    #[test]
    fn appends_fill_chunks_completely() {
        let keys: Vec<u64> = (0..3 * CHUNK as u64).collect();
        let mut list = OrderList::default();
        for doc in 0..keys.len() as u32 {
            list.insert(doc, by_key(&keys, doc));
        }
        assert_eq!(list.chunks.len(), 3);
        assert!(list.chunks.iter().all(|c| c.len() == CHUNK));
        let built = OrderList::from_sorted((0..keys.len() as u32).collect());
        assert_eq!(
            built.iter().collect::<Vec<_>>(),
            list.iter().collect::<Vec<_>>()
        );
        assert_eq!(built.heap_bytes(), 3 * CHUNK * 4 + 3 * 24);
    }
}
