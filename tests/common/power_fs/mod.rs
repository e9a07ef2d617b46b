//! The power-loss simulator: a file system that keeps what was written (the
//! page cache) apart from what is durable, for file contents and for
//! directory entries, and generates the images a power loss could leave.
//!
//! The fault model is the one in TESTING.md ("The fault model"):
//! - bytes made durable by a successful sync stay, and so do directory
//!   entries made durable by a sync of their directory;
//! - every page (4096 bytes) written since its file's last successful sync
//!   may hold its old bytes, its new bytes or zeros, independently of the
//!   other pages, and may be torn at sector (512 byte) boundaries;
//! - a file's length may be its durable length or its written length;
//! - every directory operation (create, rename, remove) not yet covered by a
//!   sync of its directory may be kept or lost, independently (a rename is
//!   atomic: the old name or the new one);
//! - fsyncgate: a failed sync may drop the dirty pages it covered; they are
//!   clean from then on, so reads still return them but no later sync
//!   persists them ([`PowerFs::fail_sync_at`]).
//!
//! At every sync point (a file sync or a directory sync) the simulator
//! records, before the sync takes effect:
//! - the images of the prefix model it started with: only the synced state;
//!   the synced state plus each prefix of the syncing file's later writes,
//!   also with the last write of the prefix torn in half; the file extended
//!   with zeros to its written length; for a directory sync, the directory's
//!   new entries over synced contents;
//! - unless built with [`PowerFs::prefix_model`], the images of the page
//!   model over every file and directory: the systematic extremes (all old,
//!   all new, all zero, contents new without the directory operations,
//!   contents old with them, each single dirty page zero with the rest new,
//!   each dirty page torn after each sector with the rest new, each single
//!   directory operation lost) and a bounded number of combinations drawn
//!   with a seeded xorshift generator (`LOGSTORE_POWER_SAMPLES` per sync
//!   point, 8 by default; `LOGSTORE_POWER_SEED` changes the seed).
//!
//! Identical images (same files, same acknowledged count) are kept once.
//! Each image is a set of files, which `image_fs` turns into a `MemFs` that
//! a store can open.
//!
//! Here the simulator's interface; in `state` what it keeps of each file
//! and directory, in `images` the images of both models, in `vfs` the file
//! system a store runs on.

mod images;
mod state;
mod vfs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use logstore::io::{MemFs, Vfs};
use parking_lot::Mutex;

use super::env_number;
use state::State;

/// The unit of write-back: a page either reaches the disk or it does not.
pub const PAGE: usize = 4096;
/// The unit a page may be torn at.
pub const SECTOR: usize = 512;
const SECTORS: usize = PAGE / SECTOR;
/// Random combinations drawn per sync point unless `LOGSTORE_POWER_SAMPLES`
/// says otherwise.
pub const DEFAULT_SAMPLES: usize = 8;
const DEFAULT_SEED: u64 = 0x5eed_1e55_c0ff_ee01;
/// Pages torn after each sector are enumerated only while a sync point has
/// at most this many dirty pages (the random draws cover the rest).
const TEAR_ENUMERATION_PAGES: usize = 16;

/// Files by path, as a crash would leave them. Contents are shared between
/// images where they do not differ.
pub type Image = BTreeMap<PathBuf, Arc<Vec<u8>>>;

/// A tiny deterministic generator (xorshift64*).
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

/// Random combinations per sync point: `LOGSTORE_POWER_SAMPLES` or 8.
pub fn samples_from_env() -> usize {
    env_number("LOGSTORE_POWER_SAMPLES").map_or(DEFAULT_SAMPLES, |n| n as usize)
}

/// Counters of what the simulator did.
#[derive(Debug, Clone, Copy, Default)]
pub struct PowerStats {
    /// Sync points seen while capturing.
    pub sync_points: u64,
    /// Images generated (before removing duplicates).
    pub generated: u64,
    /// Distinct images kept.
    pub kept: u64,
}

/// What is being synced at a sync point.
enum SyncOf<'a> {
    File(u64),
    Dir(&'a Path),
    Nothing,
}

/// The simulator; clones share state.
#[derive(Debug, Clone, Default)]
pub struct PowerFs {
    state: Arc<Mutex<State>>,
    /// Operations acknowledged so far; the test bumps it after each one.
    pub acked: Arc<AtomicUsize>,
}

impl PowerFs {
    /// A simulator that records the images of both models.
    pub fn new() -> Self {
        Self::default()
    }

    /// A simulator that records only the prefix model's images (the model
    /// the engine was first tested against).
    pub fn prefix_model() -> Self {
        let fs = Self::default();
        fs.state.lock().page_model = false;
        fs
    }

    pub fn as_vfs(&self) -> Arc<dyn Vfs> {
        Arc::new(self.clone())
    }

    /// Random combinations drawn per sync point.
    pub fn set_samples(&self, samples: usize) {
        self.state.lock().samples = samples;
    }

    /// Whether sync points record images (on by default; tests that only
    /// need the durable image at the end switch it off).
    pub fn set_capture(&self, on: bool) {
        self.state.lock().capture = on;
    }

    /// fsyncgate: sync number `n` from now (file or directory syncs, 1 is
    /// the next) fails, and the dirty pages (or directory operations) it
    /// covered are dropped: they stay in the page-cache view, which reads
    /// and `list` return, but never become durable, and later syncs succeed
    /// without them. `0` disarms.
    pub fn fail_sync_at(&self, n: u64) {
        let mut state = self.state.lock();
        state.syncs = 0;
        state.fail_at = n;
    }

    /// Syncs failed so far.
    pub fn failed_syncs(&self) -> u64 {
        self.state.lock().failed
    }

    /// Syncs counted since the last `fail_sync_at`.
    pub fn syncs(&self) -> u64 {
        self.state.lock().syncs
    }

    /// What a power loss at this moment leaves for sure: the durable state,
    /// nothing of what is only in the page cache.
    pub fn durable_image(&self) -> Image {
        self.state.lock().durable_image()
    }

    /// Records the images of a power loss at this moment, as at a sync
    /// point.
    pub fn capture_now(&self) {
        let mut state = self.state.lock();
        self.capture(&mut state, SyncOf::Nothing);
    }

    /// Every crash image recorded, with the acknowledged count at its time.
    pub fn take_images(&self) -> Vec<(Image, usize)> {
        self.take_labelled_images()
            .into_iter()
            .map(|(image, acked, _)| (image, acked))
            .collect()
    }

    /// Every crash image recorded, with the acknowledged count at its time
    /// and what the crash did to make it.
    pub fn take_labelled_images(&self) -> Vec<(Image, usize, String)> {
        std::mem::take(&mut self.state.lock().images)
    }

    pub fn stats(&self) -> PowerStats {
        self.state.lock().stats
    }

    fn capture(&self, state: &mut State, what: SyncOf<'_>) {
        if !state.capture {
            return;
        }
        state.stats.sync_points += 1;
        let acked = self.acked.load(Ordering::SeqCst);
        match what {
            SyncOf::File(id) => state.prefix_model_file_images(id, acked),
            SyncOf::Dir(dir) => state.prefix_model_dir_images(dir, acked),
            SyncOf::Nothing => {
                let base = state.durable_image();
                state.record(base, acked, "synced state".to_string());
            }
        }
        if state.page_model {
            state.page_model_images(acked);
        }
    }
}

/// A `MemFs` holding an image's files.
pub fn image_fs(image: &Image) -> MemFs {
    let fs = MemFs::new();
    for (path, content) in image {
        let file = fs.open(path, true).expect("create image file");
        file.write_all_at(content, 0).expect("fill image file");
    }
    fs
}
