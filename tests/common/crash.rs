//! The crash tests' harness: a store over the power-loss simulator with the
//! test's clock and options, the history of a workload (the model after
//! each acknowledged operation), and opening a crash image to check it
//! against that history. Also, on the real file system, a log built
//! record by record to cut and damage.

use std::fs::OpenOptions;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use logstore::{Durability, LogStore, ManualClock, Options, Store};
use serde_json::json;

use super::power_fs::{image_fs, Image, PowerFs};
use super::{all_docs, keys, log_end, segments, test_opts, workload_dump as dump};

/// A timestamp whose little-endian bytes are all ASCII, so that frames
/// carrying it can be strings.
pub const ASCII_TIME: i64 = 0x0101_0101_0101;

/// The store directory of the crash tests, inside their file system.
pub fn dir() -> &'static Path {
    Path::new("db")
}

/// The power-loss simulator, the clock and the options of one crash test.
pub struct Rig {
    pub fs: PowerFs,
    pub clock: Arc<ManualClock>,
    pub options: Options,
}

impl Rig {
    /// `fs` with [`test_opts`] of `durability` and `segment_bytes`, the
    /// clock at 1000.
    pub fn new(fs: PowerFs, durability: Durability, segment_bytes: u64) -> Rig {
        let clock = Arc::new(ManualClock::new(1_000));
        let options = test_opts(&clock, durability, segment_bytes);
        Rig { fs, clock, options }
    }

    /// A rig whose simulator records no images: for the tests that fail a
    /// sync and then read only the durable image.
    pub fn without_capture(durability: Durability, segment_bytes: u64) -> Rig {
        let fs = PowerFs::new();
        fs.set_capture(false);
        Rig::new(fs, durability, segment_bytes)
    }

    /// Opens the store on the simulator (the page-cache view).
    pub fn open(&self) -> LogStore {
        self.reopen().expect("open the store")
    }

    /// Opens the store on the simulator again, as a restarted application
    /// whose machine kept its page cache does.
    pub fn reopen(&self) -> logstore::Result<LogStore> {
        LogStore::open_with_fs(self.fs.as_vfs(), dir(), self.options.clone())
    }

    /// Runs `steps` operations, each acknowledged (it must succeed), one
    /// clock tick apart; returns the history: the model before the first
    /// and after each one.
    pub fn run(
        &self,
        store: &LogStore,
        steps: usize,
        step: impl Fn(&LogStore, usize) -> logstore::Result<()>,
    ) -> Vec<String> {
        let mut history = vec![dump(store)];
        for i in 0..steps {
            self.clock.advance(1);
            step(store, i).unwrap_or_else(|e| panic!("step {i}: {e}"));
            history.push(dump(store));
            self.fs.acked.fetch_add(1, Ordering::SeqCst);
        }
        history
    }

    /// Drops `store` and opens the store again from the page cache (the
    /// application restarted; the machine did not). The state it opens at
    /// must be in `history[from..]`: returns the new store and where in
    /// there it is, and records in `failures` what falls short (`None` if
    /// the store does not open).
    pub fn restart(
        &self,
        store: LogStore,
        history: &[String],
        from: usize,
        failures: &mut Vec<String>,
        case: &str,
    ) -> Option<(LogStore, Option<usize>)> {
        drop(store);
        let reopened = match self.reopen() {
            Ok(store) => store,
            Err(e) => {
                failures.push(format!("{case}: reopening from the page cache fails: {e}"));
                return None;
            }
        };
        let state = dump(&reopened);
        let seen = history[from..].iter().position(|h| *h == state);
        if seen.is_none() {
            failures.push(format!(
                "{case}: the reopened store is not the model after {from} or more operations"
            ));
        }
        Some((reopened, seen.map(|p| from + p)))
    }

    /// Reads the store's view, closes it, and loses power: the view, the
    /// close's result, and what the durable image then opens to.
    pub fn close_and_lose_power(
        &self,
        store: LogStore,
    ) -> (String, logstore::Result<()>, Result<String, String>) {
        let view = dump(&store);
        let closed = store.close();
        drop(store);
        (
            view,
            closed,
            open_image(&self.fs.durable_image(), &self.options),
        )
    }

    /// [`Rig::close_and_lose_power`], checked: a line for each way the
    /// durable image falls short. The close must return `Ok` and the image
    /// open clean; if the store `acknowledged` every write it took, the
    /// image must also be what the store showed before its close.
    pub fn check_close_and_power_loss(&self, store: LogStore, acknowledged: bool) -> Vec<String> {
        let (view, closed, durable) = self.close_and_lose_power(store);
        let mut failures = Vec::new();
        if let Err(e) = &closed {
            failures.push(format!("the close fails: {e}"));
        }
        match durable {
            Err(why) => failures.push(format!("after the power loss the store {why}")),
            Ok(state) if acknowledged && closed.is_ok() && state != view => failures.push(format!(
                "the power loss does not leave what the store acknowledged: {}",
                diff(&view, &state)
            )),
            Ok(_) => {}
        }
        failures
    }
}

/// One `#[test]` for each argument of `check`, under the name given with
/// it: the variants of one crash test.
#[macro_export]
macro_rules! crash_tests {
    ($check:ident: $($name:ident($arg:expr)),+ $(,)?) => {
        $(
            #[test]
            fn $name() {
                $check($arg);
            }
        )+
    };
}

/// Ensures collection `c` (indexed by owner) and puts documents `d0` to
/// `d{n-1}` of owner `o`, each padded with 200 of `pad`.
pub fn put_padded_docs(store: &dyn Store, n: usize, pad: &str) {
    store.docs().ensure_collection("c", &["owner"]).unwrap();
    for i in 0..n {
        let body = json!({"owner": "o", "pad": pad.repeat(200)});
        store.docs().put("c", &format!("d{i}"), body, None).unwrap();
    }
}

/// What a panic said.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| {
            panic
                .downcast_ref::<&str>()
                .map(std::string::ToString::to_string)
        })
        .unwrap_or_default()
}

/// Opens a crash image: the store's [`super::dump`] over `lease_keys`, or
/// why it does not open (a panic included), with a clean integrity check
/// required.
pub fn open_image_with(
    image: &Image,
    options: &Options,
    lease_keys: &[String],
) -> Result<String, String> {
    let fs = Arc::new(image_fs(image));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let store = LogStore::open_with_fs(fs, dir(), options.clone())
            .map_err(|e| format!("does not open: {e}"))?;
        let state = super::dump(&store, lease_keys);
        let report = store.verify().map_err(|e| format!("verify: {e}"))?;
        if !report.is_clean() {
            return Err(format!("verify: {:?}", report.problems));
        }
        Ok(state)
    }));
    outcome.unwrap_or_else(|panic| Err(format!("panicked: {}", panic_message(&*panic))))
}

/// [`open_image_with`] over the lease keys of the crash tests' workload.
pub fn open_image(image: &Image, options: &Options) -> Result<String, String> {
    open_image_with(image, options, &keys())
}

/// The states a crash image may hold, as indexes into the history, when
/// `acked` operations were acknowledged and those up to `in_flight` may
/// have been written: with `Sync`, every acknowledged one and perhaps
/// those in flight; with `Flush`, which promises survival of a process
/// crash only, any prefix up to them.
pub fn allowed(durability: Durability, acked: usize, in_flight: usize) -> RangeInclusive<usize> {
    match durability {
        Durability::Sync => acked..=in_flight,
        Durability::Flush => 0..=in_flight,
    }
}

/// Checks every crash image against `history`: it must open, verify clean,
/// and be the model after one of the operations `allowed(acked)` names.
/// Returns a line for each image that is not.
pub fn check_images(
    images: &[(Image, usize, String)],
    options: &Options,
    history: &[String],
    allowed: impl Fn(usize) -> RangeInclusive<usize>,
) -> Vec<String> {
    let mut failures = Vec::new();
    for (n, (image, acked, label)) in images.iter().enumerate() {
        let allowed = allowed(*acked);
        let why = match open_image(image, options) {
            Err(why) => why,
            Ok(state) if history[allowed.clone()].contains(&state) => continue,
            Ok(state) => format!(
                "the state is not the model after operations {allowed:?} (it is the model after {:?}): {:?}",
                history.iter().position(|h| *h == state),
                short(&state)
            ),
        };
        failures.push(format!(
            "image {n} (after {acked} acknowledged; {label}): {why}"
        ));
    }
    failures
}

/// The start of a dump, for a failure message.
pub fn short(state: &str) -> String {
    state.chars().take(120).collect()
}

/// The lines of two dumps that differ, shortened.
pub fn diff(expected: &str, got: &str) -> String {
    let missing: Vec<String> = expected
        .lines()
        .filter(|l| !got.lines().any(|g| g == *l))
        .map(short)
        .collect();
    let extra: Vec<String> = got
        .lines()
        .filter(|l| !expected.lines().any(|e| e == *l))
        .map(short)
        .collect();
    format!("missing {missing:?}, unexpected {extra:?}")
}

/// Writes `n` documents into a new store at `dir` on the real file system
/// and returns the newest segment's length after each write (the record
/// boundaries). The reserved zeros after the last record are trimmed and
/// the index snapshot removed, so open replays every record of a file that
/// ends with its last one.
pub fn build(dir: &Path, n: usize, opts: Options) -> Vec<u64> {
    let store = LogStore::open(dir, opts).unwrap();
    store.docs().ensure_collection("c", &["owner"]).unwrap();
    let mut ends = Vec::new();
    for i in 0..n {
        let body = json!({"owner": format!("o{}", i % 3), "text": "x".repeat(i * 7)});
        store
            .docs()
            .put("c", &format!("d{i:03}"), body, None)
            .unwrap();
        // Where the log ends in its newest segment (the file itself runs on
        // with the zeros the writer reserves ahead).
        let newest = segments(dir).pop().unwrap();
        ends.push(log_end(&std::fs::read(newest).unwrap()));
    }
    store.close().unwrap();
    // Trim the reserved zeros, so the file ends with its last record.
    let newest = segments(dir).pop().unwrap();
    truncate(&newest, *ends.last().unwrap());
    // These tests are about replaying the log; without the index snapshot
    // that close writes, open reads every record.
    std::fs::remove_file(dir.join("SNAPSHOT")).unwrap();
    ends
}

/// [`build`] of `n` documents into folder `name` of a new temporary
/// folder: the temporary folder (removed when dropped), the store
/// directory, the record boundaries and the newest segment file.
pub fn built(
    name: &str,
    n: usize,
    opts: Options,
) -> (tempfile::TempDir, PathBuf, Vec<u64>, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    let ends = build(&dir, n, opts);
    let newest = segments(&dir).pop().unwrap();
    (tmp, dir, ends, newest)
}

/// Puts document `new` into `store` (which holds `docs` documents in
/// collection `c`), closes it and opens `dir` again: the write is kept.
pub fn write_survives_reopen(store: LogStore, dir: &Path, opts: Options, docs: usize) {
    store.docs().put("c", "new", json!({}), None).unwrap();
    store.close().unwrap();
    let store = LogStore::open(dir, opts).unwrap();
    assert_eq!(all_docs(store.docs(), "c").len(), docs + 1);
}

/// Sets the length of the file at `path`.
pub fn truncate(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// Flips bit `bit` of the byte at `offset` of the file at `path`.
pub fn flip_bit(path: &Path, offset: u64, bit: u8) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 1 << bit;
    std::fs::write(path, bytes).unwrap();
}

/// Runs `attempt` with an I/O error injected at step 1, 2, ... until a run
/// in which none was (`attempt` returns whether one was, with the
/// operation's result, after checking what it left): a faulted run must
/// have reported the fault, the clean one succeeded. Returns the number of
/// steps.
pub fn at_every_step<T: std::fmt::Debug>(
    mut attempt: impl FnMut(u64) -> (bool, logstore::Result<T>),
) -> u64 {
    let mut step = 1;
    loop {
        let (faulted, result) = attempt(step);
        if !faulted {
            result.unwrap();
            return step;
        }
        assert!(result.is_err(), "step {step}: the fault was reported");
        step += 1;
    }
}
