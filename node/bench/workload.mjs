// The workload both node/bench programs share: `logstore bench`'s chat turns
// (workload/src/lib.rs) of about 400 bytes of JSON, made from a seeded
// generator, and the rate loop that times them.

export const COLLECTION = "turns";
export const CONVERSATIONS = 1000;
export const AUTHORS = 50;
const WORDS = ["store", "log", "segment", "index", "query", "lease", "blob", "crash", "sync", "replay",
  "compact", "snapshot", "version", "owner", "record", "checksum"];

// xorshift32, seeded, on plain numbers rather than BigInt, so making
// bodies stays cheap (the Rust workload's numbers differ).
export function rng(seed) {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}
export const id = (i) => `turn-${String(i).padStart(8, "0")}`;
export const conversation = (c) => `conv-${String(c).padStart(5, "0")}`;
export const author = (a) => `user-${String(a).padStart(3, "0")}`;
export function turn(below, i) {
  let text = "";
  while (text.length < 300) text += WORDS[below(WORDS.length)] + " ";
  return {
    conversation: conversation(below(CONVERSATIONS)),
    author: author(below(AUTHORS)),
    role: i % 2 === 0 ? "user" : "assistant",
    seq: i,
    text,
  };
}

/** `count` bodies, numbered from `from`, made before any clock starts. */
export const bodies = (below, from, count) => Array.from({ length: count }, (_, i) => turn(below, from + i));

/** ops/s of `fn(i)` run `count` times or for the budget, whichever ends first. */
export async function rate(fn, { count = Infinity, budget = Infinity } = {}) {
  const start = performance.now();
  let i = 0;
  while (i < count) {
    await fn(i);
    i++;
    if ((i & 15) === 0 && performance.now() - start > budget) break;
  }
  return (i * 1000) / (performance.now() - start);
}
