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
