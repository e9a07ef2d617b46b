//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the
//! same harnesses the fuzzers run, so `cargo test` exercises every input
//! the fuzzers kept, and every regression input they found, without the
//! fuzzer itself.

#[path = "../fuzz/harness/follow.rs"]
mod follow;
#[path = "../fuzz/harness/model.rs"]
mod model;
#[path = "../fuzz/harness/recover.rs"]
mod recover;

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    inputs.sort();
    for input in &inputs {
        let data = std::fs::read(input).unwrap();
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{} panicked", input.display());
    }
    inputs.len()
}

#[test]
fn the_recover_corpus_replays_cleanly() {
    assert!(replay("recover", recover::run) > 0);
}

#[test]
fn the_model_corpus_replays_cleanly() {
    assert!(replay("model", model::run) > 0);
}

#[test]
fn the_follow_corpus_replays_cleanly() {
    assert!(replay("follow", follow::run) > 0);
}
