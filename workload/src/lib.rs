//! Deterministic documents of a realistic shape, for benchmarks, examples
//! and the `bench` command: a chat turn with a few short strings, a number
//! and a text of a few hundred bytes, generated from a fixed seed.

use serde_json::{json, Value};

/// The collection the workload writes to.
pub const COLLECTION: &str = "turns";
/// Its declared indexes.
pub const INDEXES: [&str; 2] = ["conversation", "author"];
/// Conversations the turns are spread over.
pub const CONVERSATIONS: u64 = 1_000;
/// Authors the turns are spread over.
pub const AUTHORS: u64 = 50;

const WORDS: [&str; 16] = [
    "store", "log", "segment", "index", "query", "lease", "blob", "crash", "sync", "replay",
    "compact", "snapshot", "version", "owner", "record", "checksum",
];

/// A small, fast, seeded generator (SplitMix64): the same seed gives the
/// same documents on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The id of turn `i`.
pub fn id(i: u64) -> String {
    format!("turn-{i:08}")
}

/// The conversation index value of conversation `c`.
pub fn conversation(c: u64) -> String {
    format!("conv-{c:05}")
}

/// The author index value of author `a`.
pub fn author(a: u64) -> String {
    format!("user-{a:03}")
}

/// Turn `i`: about 400 bytes of JSON.
pub fn turn(rng: &mut Rng, i: u64) -> Value {
    let mut text = String::with_capacity(320);
    while text.len() < 300 {
        text.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
        text.push(' ');
    }
    json!({
        "conversation": conversation(rng.below(CONVERSATIONS)),
        "author": author(rng.below(AUTHORS)),
        "role": if i % 2 == 0 { "user" } else { "assistant" },
        "seq": i,
        "text": text,
    })
}

/// Loads turns `0..n` into `store` (ensuring the collection first).
///
/// # Errors
/// Whatever the store returns.
pub fn load(store: &dyn logstore::Store, n: u64) -> logstore::Result<()> {
    store.docs().ensure_collection(COLLECTION, &INDEXES)?;
    let mut rng = Rng::new(42);
    for i in 0..n {
        store
            .docs()
            .put(COLLECTION, &id(i), turn(&mut rng, i), None)?;
    }
    Ok(())
}

/// One operation of a benchmark workload, run against any driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Put a new document.
    PutNew,
    /// Upsert an existing document (no version check).
    Upsert,
    /// Get a document, then put it back with its version (compare-and-swap).
    CasPut,
    /// Patch one field of an existing document at its version.
    Patch,
    /// Get a random document by id.
    Get,
    /// Query one conversation, default order, limit 20.
    QueryOneFilter,
    /// Query one conversation and one author, limit 20.
    QueryTwoFilters,
    /// Query one author ordered by conversation, limit 20.
    QueryOrdered,
    /// Count one author's turns.
    Count,
    /// Delete a document that exists.
    Delete,
    /// Acquire then release a lease.
    Lease,
}

impl Op {
    /// Every document operation, in the order reports list them.
    pub const ALL: [Op; 11] = [
        Op::PutNew,
        Op::Upsert,
        Op::CasPut,
        Op::Patch,
        Op::Delete,
        Op::Get,
        Op::QueryOneFilter,
        Op::QueryTwoFilters,
        Op::QueryOrdered,
        Op::Count,
        Op::Lease,
    ];

    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Op::PutNew => "put (new)",
            Op::Upsert => "upsert",
            Op::CasPut => "CAS put (get + put)",
            Op::Patch => "patch",
            Op::Get => "get by id",
            Op::QueryOneFilter => "query, 1 filter, limit 20",
            Op::QueryTwoFilters => "query, 2 filters, limit 20",
            Op::QueryOrdered => "query ordered by index field",
            Op::Count => "count, 1 filter",
            Op::Delete => "delete",
            Op::Lease => "lease acquire + release",
        }
    }

    /// True when the operation writes (its rate depends on durability).
    pub fn writes(self) -> bool {
        !matches!(
            self,
            Op::Get | Op::QueryOneFilter | Op::QueryTwoFilters | Op::QueryOrdered | Op::Count
        )
    }

    /// Runs the operation once. `i` numbers the call (from 0); `loaded` is
    /// how many turns `load` wrote. New and deleted ids never collide
    /// between calls of the same run.
    ///
    /// # Errors
    /// Whatever the store returns; a lost compare-and-swap is an error too,
    /// since a benchmark runs alone.
    pub fn run(
        self,
        store: &dyn logstore::Store,
        rng: &mut Rng,
        i: u64,
        loaded: u64,
    ) -> logstore::Result<()> {
        let d = store.docs();
        match self {
            Op::PutNew => {
                let n = loaded + 1_000_000_000 + i;
                d.put(COLLECTION, &id(n), turn(rng, n), None).map(drop)
            }
            Op::Upsert => {
                let target = id(rng.below(loaded.max(1)));
                d.put(COLLECTION, &target, turn(rng, i), None).map(drop)
            }
            Op::CasPut => {
                let target = id(rng.below(loaded.max(1)));
                let row = d
                    .get(COLLECTION, &target)?
                    .ok_or_else(|| logstore::Error::InvalidInput("missing".into()))?;
                let won = d.put(
                    COLLECTION,
                    &target,
                    serde_json::Value::Object(row.data),
                    Some(row.version),
                )?;
                won.map(drop).ok_or_else(|| {
                    logstore::Error::InvalidInput("lost a CAS race with itself".into())
                })
            }
            Op::Patch => {
                let target = id(rng.below(loaded.max(1)));
                let row = d
                    .get(COLLECTION, &target)?
                    .ok_or_else(|| logstore::Error::InvalidInput("missing".into()))?;
                let patch = json!({ "role": if i % 2 == 0 { "user" } else { "assistant" } });
                d.patch(COLLECTION, &target, patch, row.version).map(drop)
            }
            Op::Get => d.get(COLLECTION, &id(rng.below(loaded.max(1)))).map(drop),
            Op::QueryOneFilter => {
                let q = logstore::Query::new(COLLECTION)
                    .filter(INDEXES[0], conversation(rng.below(CONVERSATIONS)))
                    .limit(20);
                d.query(&q).map(drop)
            }
            Op::QueryTwoFilters => {
                let q = logstore::Query::new(COLLECTION)
                    .filter(INDEXES[0], conversation(rng.below(CONVERSATIONS)))
                    .filter(INDEXES[1], author(rng.below(AUTHORS)))
                    .limit(20);
                d.query(&q).map(drop)
            }
            Op::QueryOrdered => {
                let q = logstore::Query::new(COLLECTION)
                    .filter(INDEXES[1], author(rng.below(AUTHORS)))
                    .order_by(INDEXES[0])
                    .limit(20);
                d.query(&q).map(drop)
            }
            Op::Count => {
                let q =
                    logstore::Query::new(COLLECTION).filter(INDEXES[1], author(rng.below(AUTHORS)));
                d.count(&q).map(drop)
            }
            Op::Delete => {
                // Delete turns from the top of the loaded range, one each.
                let target = id(loaded.saturating_sub(1 + i));
                d.delete(COLLECTION, &target).map(drop)
            }
            Op::Lease => {
                let key = format!("lease-{}", rng.below(1_000));
                store.leases().acquire(&key, "bench", 60_000)?;
                store.leases().release(&key, "bench")
            }
        }
    }
}
